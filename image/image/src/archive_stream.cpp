#include "archive_stream.hpp"

// GObject boilerplate, as ostree's own ostree-libarchive-input-stream.c does it.
struct StormArchiveStream {
    GInputStream parent;
    struct archive* archive;
};
struct StormArchiveStreamClass {
    GInputStreamClass parent_class;
};

G_DEFINE_TYPE(StormArchiveStream, storm_archive_stream, G_TYPE_INPUT_STREAM)

namespace {

gssize read_fn(GInputStream* stream, void* buffer, gsize count, GCancellable* cancellable, GError** error) {
    auto* self = reinterpret_cast<StormArchiveStream*>(stream);
    if (g_cancellable_set_error_if_cancelled(cancellable, error)) {
        return -1;
    }
    const la_ssize_t n = archive_read_data(self->archive, buffer, count);
    if (n < 0) {
        const char* text = archive_error_string(self->archive);
        g_set_error(
            error, G_IO_ERROR, G_IO_ERROR_FAILED, "%s", text != nullptr ? text : "libarchive read error");
        return -1;
    }
    return n;
}

gboolean close_fn(GInputStream*, GCancellable*, GError**) {
    return TRUE;  // the archive belongs to the importer
}

}  // namespace

static void storm_archive_stream_class_init(StormArchiveStreamClass* klass) {
    auto* stream_class = G_INPUT_STREAM_CLASS(klass);
    stream_class->read_fn = read_fn;
    stream_class->close_fn = close_fn;
}

static void storm_archive_stream_init(StormArchiveStream* self) {
    self->archive = nullptr;
}

namespace stormnode::image {

GInputStream* archive_input_stream_new(struct archive* a) {
    auto* self = static_cast<StormArchiveStream*>(g_object_new(storm_archive_stream_get_type(), nullptr));
    self->archive = a;
    return G_INPUT_STREAM(self);
}

}  // namespace stormnode::image
