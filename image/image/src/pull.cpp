#include "stormnode/image/pull.hpp"

#include <string_view>

namespace stormnode::image {
namespace {

using AsyncProgress = CHandle<OstreeAsyncProgress, gobject_unref>;

void on_pull_progress(OstreeAsyncProgress* p, gpointer user_data) {
    auto* sink = static_cast<ProgressSink*>(user_data);
    sink->advance(ostree_async_progress_get_uint(p, "fetched"));
}

// libostree reports a missing or untrusted signature under several domains (OSTREE_GPG_ERROR, or
// G_IO_ERROR with the GPG result's text): its words are the one thing they share.
bool is_signature_error(const GError* error) {
    if (error == nullptr) {
        return false;
    }
    if (error->domain == OSTREE_GPG_ERROR) {
        return true;
    }
    const std::string_view message = error->message;
    for (const std::string_view word : {"GPG", "signature", "public key"}) {
        if (message.find(word) != std::string_view::npos) {
            return true;
        }
    }
    return false;
}

}  // namespace

PullStats pull_ref(
    OstreeRepo* repo, const std::string& remote, const std::string& ref, ProgressSink& progress) {
    GVariantBuilder b;
    g_variant_builder_init(&b, G_VARIANT_TYPE("a{sv}"));
    const char* refs[] = {ref.c_str(), nullptr};
    g_variant_builder_add(&b, "{s@v}", "refs", g_variant_new_variant(g_variant_new_strv(refs, -1)));
    g_variant_builder_add(&b, "{s@v}", "gpg-verify", g_variant_new_variant(g_variant_new_boolean(TRUE)));
    auto options = take_variant(g_variant_builder_end(&b));
    AsyncProgress async(ostree_async_progress_new_and_connect(on_pull_progress, &progress));
    GErrorPtr error;
    const gboolean ok =
        ostree_repo_pull_with_options(repo, remote.c_str(), options.get(), async.get(), nullptr, out(error));
    ostree_async_progress_finish(async.get());
    if (!ok) {
        if (is_signature_error(error.get())) {
            throw Error(
                Errc::refused,
                "refusing commit of '" + ref + "': it is not signed by the stormnode key (" + error->message +
                    ")");
        }
        // libostree's own words can be bare ("Data is corrupt" from a damaged delta part): say where from.
        std::string what = "pulling '" + ref + "' from remote '" + remote + "'";
        char* url = nullptr;
        if (ostree_repo_remote_get_url(repo, remote.c_str(), &url, nullptr)) {
            const GCharPtr owned(url);
            what += std::string(" (") + owned.get() + ")";
        }
        throw_gerror(error, what);
    }
    // The pull sets these keys on its last progress update, which it makes only when bytes came over
    // the network; a local or no-op pull leaves them unset (read as 0).
    PullStats stats;
    stats.bytes = ostree_async_progress_get_uint64(async.get(), "bytes-transferred");
    stats.delta_parts = ostree_async_progress_get_uint(async.get(), "fetched-delta-parts");
    stats.delta_fallbacks = ostree_async_progress_get_uint(async.get(), "fetched-delta-fallbacks");
    stats.objects = ostree_async_progress_get_uint(async.get(), "fetched");
    return stats;
}

}  // namespace stormnode::image
