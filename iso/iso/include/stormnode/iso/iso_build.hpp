// The hybrid node ISO (stormctl iso build): GRUB for BIOS (El Torito, i386-pc) and UEFI (x86_64-efi in
// an embedded ESP) made by grub-mkrescue, bootable as a CD and as a USB disk:
//   boot/vmlinuz, boot/initrd.img     the commit's kernel and initramfs (dracut dmsquash-live)
//   LiveOS/squashfs.img               make_live_artifacts(): live root + offline-install repo, stored once
//   boot/grub/grub.cfg                Install / Install unattended / Live, each also on the serial console
//   stormnode/answers.yaml            optional: the answer file of the unattended install
#pragma once

#include "stormnode/iso/live_artifacts.hpp"

#include <stormnode/common/progress.hpp>

#include <filesystem>
#include <string>

namespace stormnode::iso {

struct IsoOptions {
    std::filesystem::path repo;
    std::string ref;
    std::filesystem::path output;   // the .iso; written under a temporary name, renamed when complete
    std::filesystem::path answers;  // empty: none (validate it first: the caller has the catalog)
    std::string label = "STORMNODE";
    bool serial_default = false;  // the default entry is the serial-console variant (headless racks)
    int squashfs_zstd_level = 3;
};

struct MenuOptions {
    std::string label;
    bool has_answers = false;
    bool serial_default = false;
};

// The ISO's boot/grub/grub.cfg.
std::string render_iso_grub_cfg(const MenuOptions& options);

// A volume label dracut finds as CDLABEL=: 1..32 of A-Z 0-9 _ - (nothing a kernel argument would split).
bool valid_volume_label(const std::string& label);

struct IsoResult {
    LiveArtifacts live;
    std::uintmax_t size = 0;
};

IsoResult build_iso(const IsoOptions& options, ProgressSink& progress);

}  // namespace stormnode::iso
