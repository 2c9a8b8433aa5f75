#pragma once

#include <archive.h>
#include <gio/gio.h>

namespace stormnode::image {

// A GInputStream reading the current entry's data of a libarchive reader, so libostree can checksum
// and store a file straight from the tar stream. The archive must outlive the stream.
GInputStream* archive_input_stream_new(struct archive* a);

}  // namespace stormnode::image
