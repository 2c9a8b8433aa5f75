#include "stormnode/installer/bootloader.hpp"

#include <stormnode/common/c_handle.hpp>
#include <stormnode/common/error.hpp>
#include <stormnode/common/subprocess.hpp>
#include <stormnode/common/temp_dir.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <sstream>

namespace stormnode::installer {
namespace fs = std::filesystem;
namespace {

// "12" < "9" as text, not as numbers: compare digit runs as numbers.
bool version_greater(const std::string& a, const std::string& b) {
    const bool a_num = !a.empty() && std::all_of(a.begin(), a.end(), ::isdigit);
    const bool b_num = !b.empty() && std::all_of(b.begin(), b.end(), ::isdigit);
    if (a_num && b_num) {
        return a.size() != b.size() ? a.size() > b.size() : a > b;
    }
    return a > b;
}

// GRUB's single-quoted strings cannot contain a quote: close, escape, reopen.
std::string grub_quote(const std::string& text) {
    std::string out = "'";
    for (const char c : text) {
        out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    }
    return out + "'";
}

}  // namespace

BlsEntry parse_bls_entry(const std::string& text, const std::string& file_name) {
    BlsEntry e;
    e.file = file_name;
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
        const auto start = line.find_first_not_of(" \t");
        if (start == std::string::npos || line[start] == '#') {
            continue;
        }
        const auto key_end = line.find_first_of(" \t", start);
        const auto key =
            line.substr(start, key_end == std::string::npos ? std::string::npos : key_end - start);
        std::string value;
        if (key_end != std::string::npos) {
            const auto v = line.find_first_not_of(" \t", key_end);
            value = v == std::string::npos ? "" : line.substr(v);
        }
        while (!value.empty() && (value.back() == '\r' || value.back() == ' ')) {
            value.pop_back();
        }
        if (key == "title") {
            e.title = value;
        } else if (key == "version") {
            e.version = value;
        } else if (key == "linux") {
            e.linux_path = value;
        } else if (key == "initrd") {
            e.initrd = value;
        } else if (key == "options") {
            e.options = e.options.empty() ? value : e.options + " " + value;
        }
    }
    if (e.linux_path.empty()) {
        throw Error(Errc::invalid_input, file_name + ": boot entry has no 'linux' line");
    }
    if (e.title.empty()) {
        e.title = fs::path(file_name).stem().string();
    }
    return e;
}

std::vector<BlsEntry> read_bls_entries(const fs::path& dir) {
    std::vector<BlsEntry> entries;
    std::error_code ec;
    for (const auto& f : fs::directory_iterator(dir, ec)) {
        if (f.path().extension() == ".conf" && f.is_regular_file()) {
            entries.push_back(parse_bls_entry(read_file(f.path()), f.path().string()));
        }
    }
    std::stable_sort(entries.begin(), entries.end(), [](const BlsEntry& a, const BlsEntry& b) {
        return a.version != b.version ? version_greater(a.version, b.version) : a.file < b.file;
    });
    return entries;
}

std::string render_grub_cfg(const std::vector<BlsEntry>& entries, const GrubConfigOptions& options) {
    std::ostringstream o;
    o << "# Written by stormctl from the boot entries in /boot/loader/entries: the default deployment\n"
         "# first, the rollback deployment second. Regenerated on every upgrade and rollback.\n";
    if (options.serial) {
        o << "serial --unit=0 --speed=115200 --word=8 --parity=no --stop=1\n"
             "terminal_input console serial\n"
             "terminal_output console serial\n";
    }
    o << "set default=0\n"
      << "set timeout=" << options.timeout_seconds << "\n"
      << "insmod part_gpt\ninsmod ext2\n"
      << "search --no-floppy --label " << kBootLabel << " --set=root\n";
    for (std::size_t i = 0; i < entries.size(); ++i) {
        const auto& e = entries[i];
        const std::string title = e.title + (i == 1 ? " (rollback)" : "");
        o << "\nmenuentry " << grub_quote(title) << " --id " << grub_quote("stormnode-" + std::to_string(i))
          << " {\n"
          << "    linux " << options.path_prefix << e.linux_path << (e.options.empty() ? "" : " ")
          << e.options << "\n";
        if (!e.initrd.empty()) {
            o << "    initrd " << options.path_prefix << e.initrd << "\n";
        }
        o << "}\n";
    }
    return o.str();
}

std::vector<BlsEntry> write_grub_cfg(const fs::path& boot_dir, const GrubConfigOptions& options) {
    auto entries = read_bls_entries(boot_dir / "loader" / "entries");
    if (entries.empty()) {
        throw Error(Errc::not_found, "no boot entries in " + (boot_dir / "loader" / "entries").string());
    }
    fs::create_directories(boot_dir / "grub");
    write_file_atomic(boot_dir / "grub" / "grub.cfg", render_grub_cfg(entries, options), 0644);
    return entries;
}

namespace {

// Offsets in GRUB's boot.img and in the first sector of core.img (diskboot.img), from
// include/grub/i386/pc/boot.h: where boot.img finds core.img, and core.img's blocklist.
constexpr std::size_t kBpbStart = 0x3;
constexpr std::size_t kBpbEnd = 0x5a;
constexpr std::size_t kKernelSector = 0x5c;
constexpr std::size_t kBootDrive = 0x64;
constexpr std::size_t kDriveCheck = 0x66;
constexpr std::size_t kWindowsNtMagic = 0x1b8;
constexpr std::size_t kBlocklistStart = 0x1f4;
constexpr std::size_t kBlocklistLen = 0x1fc;
constexpr std::size_t kBlocklistSegment = 0x1fe;
constexpr std::uint16_t kCoreSecondSectorSegment = 0x820;

void put_le(std::string& bytes, std::size_t at, std::uint64_t value, int size) {
    for (int i = 0; i < size; ++i) {
        bytes[at + static_cast<std::size_t>(i)] = static_cast<char>((value >> (8 * i)) & 0xffU);
    }
}

void pwrite_all(int fd, const std::string& bytes, std::uint64_t offset, const std::string& what) {
    std::size_t done = 0;
    while (done < bytes.size()) {
        const ssize_t n =
            ::pwrite(fd, bytes.data() + done, bytes.size() - done, static_cast<off_t>(offset + done));
        if (n < 0 && errno == EINTR) {
            continue;
        }
        check_errno(n < 0 ? -1 : 0, "writing " + what);
        done += static_cast<std::size_t>(n);
    }
}

}  // namespace

std::string bios_early_config() {
    return std::string("search --no-floppy --label ") + kBootLabel + " --set=root\nset prefix=($root)/grub\n";
}

// What grub-install does for i386-pc on a GPT disk, done here because grub-install and grub-bios-setup
// cannot map a partition that partx added to a loop device (no HDIO_GETGEO) and so refuse to install
// to a disk image: core.img (which finds /boot by label) into the BIOS boot partition, boot.img's code
// into the protective MBR pointing at it, the modules into /boot/grub/i386-pc.
void install_grub_bios(
    const fs::path& disk,
    const fs::path& boot_dir,
    std::uint64_t bios_boot_lba,
    std::uint64_t bios_boot_bytes,
    const fs::path& grub_lib) {
    const auto modules = boot_dir / "grub" / "i386-pc";
    fs::create_directories(modules);
    for (const auto& f : fs::directory_iterator(grub_lib)) {
        const auto ext = f.path().extension();
        if (ext == ".mod" || ext == ".lst") {
            fs::copy_file(f.path(), modules / f.path().filename(), fs::copy_options::overwrite_existing);
        }
    }
    TempDir work("stormnode-grub-pc");
    write_file_atomic(work.path() / "early.cfg", bios_early_config(), 0644);
    const auto core_path = work.path() / "core.img";
    run_checked(
        {.argv = {
             "grub-mkimage",
             "-O",
             "i386-pc",
             "-d",
             grub_lib.string(),
             "-o",
             core_path.string(),
             "-c",
             (work.path() / "early.cfg").string(),
             "-p",
             "/grub",
             "biosdisk",
             "part_gpt",
             "ext2",
             "search",
             "search_label",
             "configfile",
             "normal"}});
    std::string core = read_file(core_path);
    const std::uint64_t sectors = (core.size() + 511) / 512;
    core.resize(sectors * 512, '\0');
    if (core.size() > bios_boot_bytes) {
        throw Error(
            Errc::io,
            "GRUB's core image (" + std::to_string(core.size()) +
                " bytes) does not fit the BIOS boot partition");
    }
    // One contiguous block: the sectors after the first, loaded after it in memory.
    put_le(core, kBlocklistStart, bios_boot_lba + 1, 8);
    put_le(core, kBlocklistLen, sectors - 1, 2);
    put_le(core, kBlocklistSegment, kCoreSecondSectorSegment, 2);

    std::string boot = read_file(grub_lib / "boot.img");
    if (boot.size() != 512) {
        throw Error(Errc::io, (grub_lib / "boot.img").string() + " is not one sector");
    }
    UniqueFd fd(::open(disk.c_str(), O_RDWR | O_CLOEXEC));
    check_errno(fd.get(), "opening " + disk.string());
    std::string mbr(512, '\0');
    check_errno(
        ::pread(fd.get(), mbr.data(), mbr.size(), 0) == 512 ? 0 : -1, "reading the MBR of " + disk.string());
    std::copy(mbr.begin() + kBpbStart, mbr.begin() + kBpbEnd, boot.begin() + kBpbStart);
    put_le(boot, kKernelSector, bios_boot_lba, 8);
    boot[kBootDrive] = static_cast<char>(0xff);   // the drive the BIOS booted from
    boot[kDriveCheck] = static_cast<char>(0x90);  // a hard disk: skip the floppy workaround's jump
    boot[kDriveCheck + 1] = static_cast<char>(0x90);
    // The partition table, disk signature and boot signature stay the protective MBR's.
    std::copy(boot.begin(), boot.begin() + kWindowsNtMagic, mbr.begin());
    pwrite_all(fd.get(), core, bios_boot_lba * 512, "GRUB's core image to " + disk.string());
    check_errno(::fsync(fd.get()), "syncing " + disk.string());
    pwrite_all(fd.get(), mbr, 0, "GRUB's boot code to " + disk.string());
    check_errno(::fsync(fd.get()), "syncing " + disk.string());
}

std::string uefi_early_config() {
    return std::string("insmod part_gpt\ninsmod ext2\nsearch --no-floppy --label ") + kBootLabel +
           " --set=root\nconfigfile ($root)/grub/grub.cfg\n";
}

void install_grub_uefi(const fs::path& esp_device) {
    TempDir work("stormnode-efi");
    const auto early = work.path() / "early.cfg";
    const auto image = work.path() / "BOOTX64.EFI";
    write_file_atomic(early, uefi_early_config(), 0644);
    run_checked(
        {.argv = {
             "grub-mkstandalone",
             "-O",
             "x86_64-efi",
             "-o",
             image.string(),
             "--modules=part_gpt ext2",
             "--locales=",
             "--fonts=",
             "--themes=",
             "boot/grub/grub.cfg=" + early.string()}});
    const std::map<std::string, std::string> env{{"MTOOLS_SKIP_CHECK", "1"}};
    const auto dev = esp_device.string();
    // mmd fails on an existing directory: only make what is missing.
    for (const char* dir : {"::/EFI", "::/EFI/BOOT"}) {
        if (!run({.argv = {"mdir", "-i", dev, dir}, .env = env}).ok()) {
            run_checked({.argv = {"mmd", "-i", dev, dir}, .env = env});
        }
    }
    run_checked({.argv = {"mcopy", "-o", "-i", dev, image.string(), "::/EFI/BOOT/BOOTX64.EFI"}, .env = env});
}

}  // namespace stormnode::installer
