// Network boot artifacts (stormctl pxe build) and the boot configurations they carry.
//
// DIR/ is both the TFTP root and the HTTP root of `pxe serve`:
//   vmlinuz, initrd.img, squashfs.img        make_live_artifacts(): one squashfs, fetched once into RAM
//   boot.ipxe                                 iPXE clients (qemu's NIC ROM, ipxe.efi): chains the per-MAC
//   script grub/i386-pc/core.0, grub/x86_64-efi/core.efi   GRUB netboot images (grub-mknetdir), BIOS and UEFI
//   grub/grub.cfg                             one config for both: loads the per-MAC config over HTTP
//   artifacts.yaml                            the commit, version and kernel they were made from
// The static configs hold no server address: they use the DHCP next-server (GRUB $net_default_server,
// iPXE ${next-server}); what a MAC boots (install or live) is decided per request by pxe serve.
#pragma once

#include "stormnode/iso/live_artifacts.hpp"

#include <stormnode/common/progress.hpp>

#include <filesystem>
#include <string>

namespace stormnode::iso {

// What a machine boots into.
enum class BootAction {
    install,  // a known MAC: live system that runs the unattended install with its answer file
    live,     // an unknown MAC ("discovered"): live system, the console asks
    local,    // the inventory ignores unknown MACs: leave the network boot, try the next device
};

struct BootParams {
    std::string server;  // "10.10.0.1", "10.10.0.1:8080", or a boot-loader variable expression
    std::string mac;     // literal, or a boot-loader variable expression ("${net_default_mac}")
    std::string extra_kargs;
};

// The kernel command line: live root over HTTP, network in the initrd, serial console, and for
// install the answer file URL; every action reports back to http://SERVER/report.
std::string kernel_args(BootAction action, const BootParams& params);

// grub/grub.cfg: `insmod http`, then the per-MAC config from the server, else the live entry.
std::string render_grub_cfg(int http_port);
// boot.ipxe: chain the per-MAC script, else boot live.
std::string render_ipxe_script(int http_port);
// What pxe serve answers at /boot/grub/<mac>.cfg and /boot/ipxe/<mac>.ipxe.
std::string render_grub_entry(BootAction action, const BootParams& params);
std::string render_ipxe_entry(BootAction action, const BootParams& params);

struct PxeBuildOptions {
    LiveArtifactsOptions live;  // repo, ref, output_dir
    int http_port = 80;         // where pxe serve will listen: baked into the static configs
    bool skip_live = false;     // only the boot loader files and configs (artifacts already there)
};

struct PxeArtifacts {
    LiveArtifacts live;
    std::filesystem::path bios_boot_file;  // relative to the output dir: grub/i386-pc/core.0
    std::filesystem::path uefi_boot_file;  // grub/x86_64-efi/core.efi
    std::filesystem::path ipxe_script;     // boot.ipxe
};

inline constexpr const char* kBiosBootFile = "grub/i386-pc/core.0";
inline constexpr const char* kUefiBootFile = "grub/x86_64-efi/core.efi";
inline constexpr const char* kIpxeScript = "boot.ipxe";

PxeArtifacts build_pxe(const PxeBuildOptions& options, ProgressSink& progress);

// Writes only the boot loader part (grub-mknetdir, grub.cfg, boot.ipxe) into dir.
void write_boot_loaders(const std::filesystem::path& dir, int http_port, ProgressSink& progress);

}  // namespace stormnode::iso
