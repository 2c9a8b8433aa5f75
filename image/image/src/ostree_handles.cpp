#include "stormnode/image/ostree_handles.hpp"

namespace stormnode::image {

void throw_gerror(GErrorPtr& error, std::string_view what, Errc code) {
    if (!error) {
        throw Error(code, std::string(what) + ": failed without an error message");
    }
    throw GlibError(code, std::string(what) + ": " + error->message, error->domain, error->code);
}

int check_archive(int rc, struct archive* a, std::string_view what) {
    if (rc == ARCHIVE_OK || rc == ARCHIVE_WARN || rc == ARCHIVE_EOF) {
        return rc;
    }
    const char* text = archive_error_string(a);
    const int err = archive_errno(a);
    throw Error(
        Errc::archive,
        std::string(what) + ": " + (text != nullptr ? text : "libarchive error"),
        err > 0 ? std::error_code(err, std::system_category()) : std::error_code());
}

}  // namespace stormnode::image
