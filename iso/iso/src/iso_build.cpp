#include "stormnode/iso/iso_build.hpp"

#include <stormnode/common/error.hpp>
#include <stormnode/common/subprocess.hpp>
#include <stormnode/common/temp_dir.hpp>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <string>
#include <vector>

namespace stormnode::iso {
namespace {

namespace fs = std::filesystem;

struct Entry {
    std::string title;
    std::string kargs;
};

// Removes a half-made output unless released: an interrupted build leaves nothing behind.
class PartialPath {
public:
    explicit PartialPath(fs::path path) : path_(std::move(path)) {}
    PartialPath(const PartialPath&) = delete;
    PartialPath& operator=(const PartialPath&) = delete;
    PartialPath(PartialPath&&) = delete;
    PartialPath& operator=(PartialPath&&) = delete;
    ~PartialPath() {
        std::error_code ignored;
        fs::remove_all(path_, ignored);
    }
    [[nodiscard]] const fs::path& path() const noexcept { return path_; }

private:
    fs::path path_;
};

}  // namespace

bool valid_volume_label(const std::string& label) {
    return !label.empty() && label.size() <= 32 && std::all_of(label.begin(), label.end(), [](char c) {
        return std::isupper(static_cast<unsigned char>(c)) != 0 ||
               std::isdigit(static_cast<unsigned char>(c)) != 0 || c == '_' || c == '-';
    });
}

std::string render_iso_grub_cfg(const MenuOptions& options) {
    const std::string live =
        "root=live:CDLABEL=" + options.label + " rd.live.image rd.live.overlay.overlayfs=1";
    const std::string serial = " console=tty0 console=ttyS0,115200";
    std::vector<Entry> entries;
    if (options.has_answers) {
        entries.push_back(
            {"Install stormnode unattended (answer file on this medium)", "stormnode.install=unattended"});
    }
    entries.push_back({"Install stormnode (console menu)", "stormnode.install=interactive"});
    entries.push_back({"Live system / rescue", ""});
    const std::size_t count = entries.size();
    for (std::size_t i = 0; i < count; ++i) {
        entries.push_back({entries[i].title + " - serial console ttyS0", entries[i].kargs + serial});
    }
    // Unattended is first when there is an answer file; the serial variants follow the VGA ones.
    const std::size_t default_entry = options.serial_default ? count : 0;
    std::string cfg =
        "# stormnode ISO boot menu (stormctl iso build)\n"
        "serial --unit=0 --speed=115200\n"
        "terminal_input console serial\n"
        "terminal_output console serial\n"
        "set default=" +
        std::to_string(default_entry) + "\nset timeout=" + (options.has_answers ? "3" : "10") + "\n\n";
    for (const auto& e : entries) {
        std::string kargs = live;
        if (!e.kargs.empty()) {
            kargs += " " + e.kargs;
        }
        cfg += "menuentry '" + e.title + "' {\n    linux /boot/vmlinuz " + kargs +
               "\n    initrd /boot/initrd.img\n}\n";
    }
    return cfg;
}

IsoResult build_iso(const IsoOptions& options, ProgressSink& progress) {
    if (!valid_volume_label(options.label)) {
        throw Error(
            Errc::invalid_input, "--label '" + options.label + "': use 1 to 32 of A-Z, 0-9, '_' and '-'");
    }
    if (!options.answers.empty() && !fs::is_regular_file(options.answers)) {
        throw Error(Errc::invalid_input, options.answers.string() + ": no such answer file");
    }
    const fs::path output = fs::absolute(options.output);
    const PartialPath staging(output.string() + ".staging");
    const PartialPath partial_iso(output.string() + ".partial");
    fs::remove_all(staging.path());
    fs::create_directories(staging.path() / "boot/grub");
    fs::create_directories(staging.path() / "LiveOS");

    IsoResult result;
    result.live = make_live_artifacts(
        {.repo = options.repo,
         .ref = options.ref,
         .output_dir = staging.path() / "LiveOS",
         .squashfs_zstd_level = options.squashfs_zstd_level,
         .media_kernel_path = "boot/vmlinuz",
         .media_initramfs_path = "boot/initrd.img"},
        progress);
    fs::rename(result.live.kernel, staging.path() / "boot/vmlinuz");
    fs::rename(result.live.initramfs, staging.path() / "boot/initrd.img");

    progress.phase("iso", 0, "");
    if (!options.answers.empty()) {
        fs::create_directories(staging.path() / "stormnode");
        fs::copy_file(options.answers, staging.path() / "stormnode/answers.yaml");
    }
    write_file_atomic(
        staging.path() / "boot/grub/grub.cfg",
        render_iso_grub_cfg(
            {.label = options.label,
             .has_answers = !options.answers.empty(),
             .serial_default = options.serial_default}));
    run_checked(
        {.argv = {
             "grub-mkrescue",
             "-o",
             partial_iso.path().string(),
             // The menu is text on the console and serial: GRUB's translations, fonts and themes
             // (11 MiB) would only make the ISO bigger.
             "--locales=",
             "--fonts=",
             "--themes=",
             staging.path().string(),
             "--",
             "-volid",
             options.label}});
    fs::rename(partial_iso.path(), output);
    result.size = fs::file_size(output);
    result.live.kernel = "/boot/vmlinuz";
    result.live.initramfs = "/boot/initrd.img";
    result.live.squashfs = "/LiveOS/squashfs.img";
    return result;
}

}  // namespace stormnode::iso
