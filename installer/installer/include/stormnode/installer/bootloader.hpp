// The bootloader path (Debian's GRUB 2.06 has no blscfg): ostree writes Boot Loader Specification
// entries into /boot/loader/entries with sysroot.bootloader=none, and we turn them into a plain
// grub.cfg — the default deployment first, the rollback second. The same code serves install, upgrade
// and rollback. BIOS: a core image in the BIOS boot partition and boot.img in the MBR. UEFI: a standalone
// GRUB image whose early config finds the /boot partition by label, copied to the ESP with mtools (never
// mounted: the machine building a node may have no vfat).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace stormnode::installer {

inline constexpr const char* kBootLabel = "stormnode-boot";
inline constexpr const char* kRootLabel = "stormnode-root";

struct BlsEntry {
    std::string file;  // file name, for messages
    std::string title;
    std::string version;  // ostree: higher is newer; the default deployment has the highest
    std::string linux_path;
    std::string initrd;
    std::string options;
};

// Parses one entry; Error(invalid_input) naming file:line when it has no linux line.
BlsEntry parse_bls_entry(const std::string& text, const std::string& file_name);
// Every *.conf in dir, default first (version descending, numerically when numbers).
std::vector<BlsEntry> read_bls_entries(const std::filesystem::path& dir);

struct GrubConfigOptions {
    std::string path_prefix;  // "" when /boot is its own partition (ours), "/boot" when it is on the root
    int timeout_seconds = 5;
    bool serial = true;  // console and ttyS0 both: a rack without a screen still sees the menu
};

// grub.cfg text: one menuentry per BLS entry in the given order; the first is the default. Titles
// say which is the rollback.
std::string render_grub_cfg(const std::vector<BlsEntry>& entries, const GrubConfigOptions& options = {});

// Reads boot_dir/loader/entries and writes boot_dir/grub/grub.cfg atomically. Error(not_found) when
// there is no entry. Returns the entries written.
std::vector<BlsEntry> write_grub_cfg(
    const std::filesystem::path& boot_dir, const GrubConfigOptions& options = {});

// GRUB for BIOS (what grub-install --target=i386-pc does on GPT): a core image that finds /boot by
// label, written into the BIOS boot partition (at bios_boot_lba, at most bios_boot_bytes); boot.img's
// code into the protective MBR, pointing at it; the modules into boot_dir/grub/i386-pc.
void install_grub_bios(
    const std::filesystem::path& disk,
    const std::filesystem::path& boot_dir,
    std::uint64_t bios_boot_lba,
    std::uint64_t bios_boot_bytes,
    const std::filesystem::path& grub_lib = "/usr/lib/grub/i386-pc");
// The early config embedded into core.img.
std::string bios_early_config();

// The early config embedded into BOOTX64.EFI: find /boot by label, hand over to its grub.cfg.
std::string uefi_early_config();
// grub-mkstandalone -O x86_64-efi, then mmd/mcopy to EFI/BOOT/BOOTX64.EFI on the ESP device.
void install_grub_uefi(const std::filesystem::path& esp_device);

}  // namespace stormnode::installer
