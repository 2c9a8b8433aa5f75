// C handles of GLib, libostree and libarchive, owned by unique_ptr with stateless deleters, and the one
// place their errors become stormnode::Error.
#pragma once

#include <stormnode/common/c_handle.hpp>
#include <stormnode/common/error.hpp>

#include <archive.h>
#include <archive_entry.h>
#include <ostree.h>

#include <string>
#include <string_view>

namespace stormnode::image {

// GError keeps its domain and code so a caller can ask what kind of failure it was.
class GlibError : public Error {
public:
    GlibError(Errc code, const std::string& message, GQuark domain, int gcode)
        : Error(code, message),
          domain_(domain),
          gcode_(gcode) {}
    [[nodiscard]] bool matches(GQuark domain, int gcode) const noexcept {
        return domain_ == domain && gcode_ == gcode;
    }

private:
    GQuark domain_;
    int gcode_;
};

inline void gobject_unref(gpointer p) {
    g_object_unref(p);
}

using GErrorPtr = CHandle<GError, g_error_free>;
using Repo = CHandle<OstreeRepo, gobject_unref>;
using MutableTree = CHandle<OstreeMutableTree, gobject_unref>;
using GFilePtr = CHandle<GFile, gobject_unref>;
using GFileInfoPtr = CHandle<GFileInfo, gobject_unref>;
using GInputStreamPtr = CHandle<GInputStream, gobject_unref>;
using GpgVerifyResult = CHandle<OstreeGpgVerifyResult, gobject_unref>;
using GVariantPtr = CHandle<GVariant, g_variant_unref>;
using GBytesPtr = CHandle<GBytes, g_bytes_unref>;
using GPtrArrayPtr = CHandle<GPtrArray, g_ptr_array_unref>;
using GCharPtr = CHandle<gchar, g_free>;
using ArchiveIn = CHandle<struct archive, archive_read_free>;
using ArchiveOut = CHandle<struct archive, archive_write_free>;
using ArchiveEntry = CHandle<struct archive_entry, archive_entry_free>;

// "what: message" as GlibError (Errc::ostree unless told otherwise); call when a GLib call returned FALSE.
[[noreturn]] void throw_gerror(GErrorPtr& error, std::string_view what, Errc code = Errc::ostree);

// Throws unless rc is ARCHIVE_OK or ARCHIVE_WARN (warnings are kept out of errors: libarchive warns
// about harmless things like unknown extended header keywords).
int check_archive(int rc, struct archive* a, std::string_view what);

// prepare, then commit; aborted on unwind so no half transaction stays open.
class RepoTransaction {
public:
    explicit RepoTransaction(OstreeRepo* repo) : repo_(repo) {
        GErrorPtr error;
        if (!ostree_repo_prepare_transaction(repo_, nullptr, nullptr, out(error))) {
            throw_gerror(error, "starting a repo transaction");
        }
    }
    RepoTransaction(const RepoTransaction&) = delete;
    RepoTransaction& operator=(const RepoTransaction&) = delete;
    RepoTransaction(RepoTransaction&&) = delete;
    RepoTransaction& operator=(RepoTransaction&&) = delete;
    ~RepoTransaction() {
        if (open_) {
            (void)ostree_repo_abort_transaction(repo_, nullptr, nullptr);
        }
    }
    OstreeRepoTransactionStats commit() {
        OstreeRepoTransactionStats stats{};
        GErrorPtr error;
        open_ = false;
        if (!ostree_repo_commit_transaction(repo_, &stats, nullptr, out(error))) {
            (void)ostree_repo_abort_transaction(repo_, nullptr, nullptr);
            throw_gerror(error, "committing the repo transaction");
        }
        return stats;
    }

private:
    OstreeRepo* repo_;
    bool open_ = true;
};

// Takes ownership of a floating or full reference to a GVariant.
inline GVariantPtr take_variant(GVariant* v) {
    return GVariantPtr(g_variant_ref_sink(v));
}

}  // namespace stormnode::image
