// Streams a root filesystem tar into an OSTree mutable tree, applying the OSTree layout on the way,
// without unpacking anything to disk (design §4.3).
#pragma once

#include <stormnode/common/progress.hpp>
#include <stormnode/image/ostree_handles.hpp>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace stormnode::image {

// A file added to the tree after the import (path relative to the tree root, e.g. usr/share/...).
struct ExtraFile {
    std::string path;
    std::string content;
    unsigned mode = 0644;
};

struct ImportOptions {
    std::vector<ExtraFile> extra_files;
};

struct ImportStats {
    std::uint64_t entries = 0;  // tar entries read
    std::uint64_t files = 0;    // regular files written (content objects)
    std::uint64_t symlinks = 0;
    std::uint64_t hardlinks = 0;  // entries that reused another entry's content object
    std::uint64_t directories = 0;
    std::uint64_t bytes = 0;        // file content bytes
    std::uint64_t skipped = 0;      // device nodes, fifos, sockets, /dev /proc /sys /run /tmp content
    std::uint64_t var_entries = 0;  // /var entries turned into tmpfiles.d lines
    std::string kernel_version;     // from boot/vmlinuz-<kver>; empty when the tar has no kernel
    std::map<std::string, std::string> packages;  // name -> version, from the dpkg status file
    std::string tmpfiles;                         // the generated usr/lib/tmpfiles.d/stormnode-var.conf
};

// Where the tmpfiles.d lines for /var go, and where the dpkg database is kept.
inline constexpr const char* kVarTmpfilesPath = "usr/lib/tmpfiles.d/stormnode-var.conf";
inline constexpr const char* kDpkgDbPath = "usr/share/dpkg-db";
inline constexpr const char* kFactoryVarPath = "usr/share/factory/var";

// Reads the tar (any compression libarchive knows) from fd, a file or a pipe, to its end, writing
// content objects into repo (which must be inside a transaction) and the layout into root.
// Throws Error(archive) for a broken stream, Error(ostree) when the repo refuses a write.
ImportStats import_tar(
    OstreeRepo* repo, OstreeMutableTree* root, int fd, const ImportOptions& options, ProgressSink& progress);

// Package name -> version from a dpkg status file's text (installed packages only).
std::map<std::string, std::string> parse_dpkg_status(std::string_view text);

}  // namespace stormnode::image
