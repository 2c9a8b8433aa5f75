#pragma once
// The boot artifacts of one image commit, shared by the ISO (iso build) and network boot (pxe build):
// the kernel and initramfs from the commit's usr/lib/modules/<kver>/, and one squashfs holding the
// live root (a hardlinked checkout of the commit) and a bare OSTree repo (real owners and modes) with that
// commit, so the image's content is stored once and the installer deploys from the repo inside the live root.
#include "stormnode/common/progress.hpp"

#include <filesystem>
#include <string>

namespace stormnode::iso {

struct LiveArtifactsOptions {
    std::filesystem::path repo;        // source repo (the build repo, archive mode)
    std::string ref;                   // e.g. stormnode/bookworm/x86_64/node
    std::filesystem::path output_dir;  // receives vmlinuz, initrd.img, squashfs.img
    int squashfs_zstd_level = 3;
    // Where the kernel and initramfs will sit on the boot media, relative to its root (the ISO:
    // "boot/vmlinuz", "boot/initrd.img"). When set, the squashfs leaves their repo objects out and its repo
    // lists them in image::kMediaObjectsFile: stored once, on the media. Empty: kept in the squashfs
    // (network boot, where the live system has no media to read them from).
    std::string media_kernel_path;
    std::string media_initramfs_path;
};

struct LiveArtifacts {
    std::filesystem::path kernel;     // output_dir/vmlinuz
    std::filesystem::path initramfs;  // output_dir/initrd.img
    std::filesystem::path squashfs;   // output_dir/squashfs.img
    std::string commit;               // checksum of the commit they were made from
    std::string version;              // the commit's version metadata
    std::string kernel_version;       // <kver>
};

// Inside the live root, the repo lives at /ostree/repo (the checkout's ostree -> sysroot/ostree link
// resolves into the squashfs) and holds `ref` and the commit's signature.
inline constexpr const char* kLiveRepoPath = "sysroot/ostree/repo";

LiveArtifacts make_live_artifacts(const LiveArtifactsOptions& options, ProgressSink& progress);

}  // namespace stormnode::iso
