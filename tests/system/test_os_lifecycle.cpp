// The installed node's life after the install, in qemu (TCG): an upgrade to a newer signed commit and a
// rollback, each booted to the role healthy; and power cuts during each install phase, after which the
// disk boots the complete system or nothing, and the installer re-runs cleanly. The disk is changed on
// the host (loop device, partx, mount) the way `stormctl os` works on a disk mounted elsewhere.
#include "system_paths.hpp"

#include <stormnode/common/subprocess.hpp>
#include <stormnode/common/temp_dir.hpp>
#include <stormnode/test/qemu_vm.hpp>

#include <catch2/catch.hpp>
#include <sys/mount.h>

#include <array>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <regex>
#include <sstream>

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using stormnode::run;
using stormnode::run_checked;
using stormnode::test::artifacts;
using stormnode::test::Firmware;
using stormnode::test::image_env;
using stormnode::test::QemuVm;
using stormnode::test::seconds;
using stormnode::test::stormctl;
using stormnode::test::work_dir;

void to_raw(const fs::path& qcow2, const fs::path& raw) {
    run_checked({.argv = {"qemu-img", "convert", "-O", "raw", qcow2.string(), raw.string()}});
}

// A raw disk image on a loop device with its partitions (partx: this kernel parses no tables), and
// optionally root (stormnode-root, p4) with /boot (stormnode-boot, p3) mounted under it: the sysroot
// layout `stormctl os --sysroot` expects.
class AttachedDisk {
public:
    explicit AttachedDisk(const fs::path& raw)
        : device_(run_checked({.argv = {"losetup", "--find", "--show", raw.string()}}).out) {
        while (!device_.empty() && device_.back() == '\n') {
            device_.pop_back();
        }
        has_partitions_ = run({.argv = {"partx", "--add", device_}}).ok() && fs::exists(part(4));
    }
    AttachedDisk(const AttachedDisk&) = delete;
    AttachedDisk& operator=(const AttachedDisk&) = delete;
    AttachedDisk(AttachedDisk&&) = delete;
    AttachedDisk& operator=(AttachedDisk&&) = delete;
    ~AttachedDisk() {
        unmount();
        run({.argv = {"partx", "--delete", device_}});
        run({.argv = {"losetup", "--detach", device_}});
    }

    [[nodiscard]] const std::string& device() const noexcept { return device_; }
    [[nodiscard]] bool has_partitions() const noexcept { return has_partitions_; }
    [[nodiscard]] std::string part(int n) const { return device_ + "p" + std::to_string(n); }

    // False when a filesystem is missing or unreadable (a cut during format).
    bool mount_sysroot() {
        mount_point_ = std::make_unique<stormnode::TempDir>("stormnode-sysroot");
        const auto root = mount_point_->path();
        if (!has_partitions_ || ::mount(part(4).c_str(), root.c_str(), "ext4", 0, nullptr) != 0) {
            mount_point_.reset();
            return false;
        }
        root_mounted_ = true;
        fs::create_directories(root / "boot");
        if (::mount(part(3).c_str(), (root / "boot").c_str(), "ext4", 0, nullptr) != 0) {
            unmount();
            return false;
        }
        boot_mounted_ = true;
        return true;
    }
    [[nodiscard]] fs::path sysroot() const { return mount_point_->path(); }
    void unmount() {
        ::sync();
        if (boot_mounted_) {
            ::umount2((sysroot() / "boot").c_str(), 0);
            boot_mounted_ = false;
        }
        if (root_mounted_) {
            ::umount2(sysroot().c_str(), 0);
            root_mounted_ = false;
        }
        mount_point_.reset();
    }

private:
    std::string device_;
    bool has_partitions_ = false;
    std::unique_ptr<stormnode::TempDir> mount_point_;
    bool root_mounted_ = false;
    bool boot_mounted_ = false;
};

// One menu entry of grub.cfg: its kernel, initramfs and the ostree= deployment path.
struct GrubEntry {
    std::string title;
    std::string linux_path;
    std::string initrd;
    std::string ostree;
};

std::vector<GrubEntry> grub_entries(const fs::path& boot) {
    std::vector<GrubEntry> entries;
    std::istringstream in(stormnode::read_file(boot / "grub" / "grub.cfg"));
    const std::regex menuentry(R"(^menuentry '([^']*)')");
    const std::regex linux_line(R"(^\s*linux\s+(\S+).*\sostree=(\S+))");
    const std::regex initrd_line(R"(^\s*initrd\s+(\S+))");
    std::string line;
    std::smatch m;
    while (std::getline(in, line)) {
        if (std::regex_search(line, m, menuentry)) {
            entries.push_back({.title = m[1]});
        } else if (!entries.empty() && std::regex_search(line, m, linux_line)) {
            entries.back().linux_path = m[1];
            entries.back().ostree = m[2];
        } else if (!entries.empty() && std::regex_search(line, m, initrd_line)) {
            entries.back().initrd = m[1];
        }
    }
    return entries;
}

// The deployment directory an ostree= path leads to (through /ostree/boot.N and its serial link).
fs::path deployment_of(const fs::path& sysroot, const std::string& ostree_karg) {
    return fs::canonical(sysroot / fs::path(ostree_karg).relative_path());
}

// "<commit>.<serial>" of a deployment directory -> the commit.
std::string commit_of(const fs::path& deployment) {
    const auto name = deployment.filename().string();
    return name.substr(0, name.find('.'));
}

// `stormctl os status`'s first line: "* stormnode <commit>.<serial> ..." (the default).
std::string default_commit(const fs::path& sysroot) {
    const auto status =
        run_checked({.argv = {stormctl().string(), "os", "status", "--sysroot", sysroot.string()}});
    std::cout << status.out;
    std::smatch m;
    const std::regex first(R"(^\* stormnode ([0-9a-f]{64})\.)");
    if (!std::regex_search(status.out, m, first)) {
        throw std::runtime_error("os status shows no default deployment:\n" + status.out);
    }
    return m[1];
}

// What is wrong with a menu entry, or "" when its kernel, initramfs and deployment are all there and
// the deployment is configured (node.yaml, fstab with /boot): the whole install, not a part of it.
std::string incomplete(const fs::path& sysroot, const GrubEntry& e) {
    for (const auto& file : {e.linux_path, e.initrd}) {
        std::error_code ec;
        if (file.empty() || fs::file_size(sysroot / "boot" / fs::path(file).relative_path(), ec) == 0 || ec) {
            return "'" + e.title + "': missing or empty /boot" + file;
        }
    }
    std::error_code ec;
    const auto dep = fs::canonical(sysroot / fs::path(e.ostree).relative_path(), ec);
    if (ec) {
        return "'" + e.title + "': ostree=" + e.ostree + " leads nowhere";
    }
    for (const char* file : {"usr/lib/os-release", "etc/stormnode/node.yaml", "etc/fstab"}) {
        if (!fs::exists(dep / file)) {
            return "'" + e.title + "': the deployment " + dep.string() + " has no " + file;
        }
    }
    if (stormnode::read_file(dep / "etc" / "fstab").find("LABEL=stormnode-boot") == std::string::npos) {
        return "'" + e.title + "': the deployment's fstab does not mount /boot";
    }
    return {};
}

struct Bootloader {
    bool mbr_grub = false;  // GRUB's boot.img code in the protective MBR
    bool mbr_zero = false;  // no boot code at all
    bool efi = false;       // EFI/BOOT/BOOTX64.EFI on the ESP
    [[nodiscard]] bool any() const { return mbr_grub || efi; }
};

Bootloader bootloader_of(const fs::path& raw, const AttachedDisk& disk) {
    Bootloader b;
    std::array<char, 440> code{};
    std::ifstream(raw, std::ios::binary).read(code.data(), code.size());
    const std::string mbr(code.data(), code.size());
    b.mbr_grub = mbr.find("GRUB") != std::string::npos;
    b.mbr_zero = mbr.find_first_not_of('\0') == std::string::npos;
    if (disk.has_partitions()) {
        const auto dir = run(
            {.argv = {"mdir", "-b", "-i", disk.part(2), "::/EFI/BOOT"}, .env = {{"MTOOLS_SKIP_CHECK", "1"}}});
        b.efi = dir.ok() && dir.out.find("BOOTX64.EFI") != std::string::npos;
    }
    return b;
}

// Either no bootloader, or one whose every menu entry is a complete deployment. "" when so.
std::string check_boot_or_nothing(const fs::path& raw, bool must_boot) {
    AttachedDisk disk(raw);
    const auto b = bootloader_of(raw, disk);
    std::ostringstream what;
    what << "MBR "
         << (b.mbr_grub   ? "GRUB"
             : b.mbr_zero ? "zero"
                          : "other")
         << ", BOOTX64.EFI " << (b.efi ? "yes" : "no");
    if (!b.any()) {
        return must_boot ? "no bootloader (" + what.str() + ")" : "";
    }
    if (must_boot && !(b.mbr_grub && b.efi)) {
        return "bootloader incomplete: " + what.str();
    }
    if (!disk.mount_sysroot()) {
        return "a bootloader (" + what.str() + ") but no readable /boot and root";
    }
    if (!fs::exists(disk.sysroot() / "boot" / "grub" / "grub.cfg")) {
        return "a bootloader (" + what.str() + ") but no grub.cfg";
    }
    const auto entries = grub_entries(disk.sysroot() / "boot");
    if (entries.empty()) {
        return "a bootloader (" + what.str() + ") but no menu entry";
    }
    for (const auto& e : entries) {
        if (auto wrong = incomplete(disk.sysroot(), e); !wrong.empty()) {
            return "half a deployment in the boot menu: " + wrong;
        }
    }
    return {};
}

std::string ostree_karg_in(const std::string& kernel_line) {
    std::smatch m;
    static const std::regex karg(R"(\bostree=(\S+))");
    return std::regex_search(kernel_line, m, karg) ? m[1].str() : std::string();
}

// Boots the raw disk (SeaBIOS): the kernel must be given the expected deployment (ostree=), then the
// role must become healthy. Returns the seconds from power-on to healthy.
double boot_to_healthy(
    const fs::path& raw, const fs::path& dir, const std::string& name, const std::string& expected_ostree) {
    QemuVm vm({.firmware = Firmware::bios, .disks = {{raw, "raw"}}, .work_dir = dir, .name = name});
    const auto booted = ostree_karg_in(vm.wait_for(R"(Command line:.*\bostree=)", 300s));
    std::cout << name << ": the kernel booted ostree=" << booted << "\n";
    CHECK(booted == expected_ostree);
    vm.wait_for("roles quorum healthy", 600s);
    const double healthy = seconds(vm.uptime());
    vm.kill();
    return healthy;
}

// A copy of the gpg home without the agent's sockets: signing never touches the shared one.
void copy_gpg_home(const fs::path& from, const fs::path& to) {
    fs::create_directories(to);
    fs::permissions(to, fs::perms::owner_all);
    for (const auto& e : fs::recursive_directory_iterator(from)) {
        const auto target = to / fs::relative(e.path(), from);
        if (e.is_directory()) {
            fs::create_directories(target);
        } else if (e.is_regular_file()) {
            fs::copy_file(e.path(), target);
        }
    }
}

}  // namespace

TEST_CASE(
    "upgrade the installed disk to a newer signed commit, boot it; roll back, boot the old one",
    "[system][upgrade]") {
    const fs::path installed = artifacts() / "vm" / "install-bios" / "disk.qcow2";
    REQUIRE(fs::exists(installed));  // the qemu_bios test's disk (fixture stormnode_installed_disk)
    const auto env = image_env();
    const std::string ref = env.at("REF");
    const fs::path dir = work_dir("upgrade");
    const fs::path raw = dir / "disk.raw";
    to_raw(installed, raw);

    // A newer commit: the image's tree plus a marker file, a new version, signed with the image's key.
    const fs::path repo = dir / "repo";
    // Hardlinked: objects are immutable, and refs and the summary are replaced by rename.
    run_checked({.argv = {"cp", "-al", (artifacts() / "repo").string(), repo.string()}});
    const fs::path gpg = dir / "gpg";
    copy_gpg_home(artifacts() / "gpg", gpg);
    const fs::path overlay = dir / "overlay";
    fs::create_directories(overlay / "usr/share/stormnode-test");
    stormnode::write_file_atomic(overlay / "usr/share/stormnode-test/upgrade-marker", "upgraded\n");
    const std::string version = "lifecycle-2";
    run_checked(
        {.argv = {
             "ostree",
             "commit",
             "--repo=" + repo.string(),
             "--branch=" + ref,
             "--tree=ref=" + ref,
             "--tree=dir=" + overlay.string(),
             "--subject=upgrade test",
             "--add-metadata-string=version=" + version,
             "--gpg-sign=" + env.at("FPR"),
             "--gpg-homedir=" + gpg.string()}});
    // Publish it as `image build` does: a pull resolves the ref through the signed summary, which
    // would otherwise still name the old commit.
    run_checked(
        {.argv = {
             "ostree",
             "summary",
             "--update",
             "--repo=" + repo.string(),
             "--gpg-sign=" + env.at("FPR"),
             "--gpg-homedir=" + gpg.string()}});
    run({.argv = {"gpgconf", "--homedir", gpg.string(), "--kill", "gpg-agent"}});
    const std::string new_commit =
        run_checked({.argv = {"ostree", "rev-parse", "--repo=" + repo.string(), ref}}).out.substr(0, 64);

    std::string expected_ostree;
    std::string old_commit;  // what the install deployed
    {
        AttachedDisk disk(raw);
        REQUIRE(disk.mount_sysroot());
        old_commit = default_commit(disk.sysroot());
        REQUIRE(new_commit != old_commit);
        const auto started = std::chrono::steady_clock::now();
        run_checked(
            {.argv = {
                 stormctl().string(),
                 "os",
                 "upgrade",
                 "--sysroot",
                 disk.sysroot().string(),
                 "--source-repo",
                 repo.string()}});
        std::cout << "upgrade: stormctl os upgrade took "
                  << seconds(std::chrono::steady_clock::now() - started) << " s\n";
        REQUIRE(default_commit(disk.sysroot()) == new_commit);
        const auto entries = grub_entries(disk.sysroot() / "boot");
        REQUIRE(entries.size() == 2);
        CHECK_THAT(entries[1].title, Catch::Matchers::Contains("(rollback)"));
        expected_ostree = entries[0].ostree;
        const auto dep = deployment_of(disk.sysroot(), expected_ostree);
        CHECK(commit_of(dep) == new_commit);
        CHECK(fs::exists(dep / "usr/share/stormnode-test/upgrade-marker"));
        CHECK(commit_of(deployment_of(disk.sysroot(), entries[1].ostree)) == old_commit);
    }
    const double upgraded = boot_to_healthy(raw, dir, "upgraded", expected_ostree);
    std::cout << "upgrade: booted " << new_commit << " (version " << version << "), role healthy after "
              << upgraded << " s\n";

    {
        AttachedDisk disk(raw);
        REQUIRE(disk.mount_sysroot());
        run_checked({.argv = {stormctl().string(), "os", "rollback", "--sysroot", disk.sysroot().string()}});
        REQUIRE(default_commit(disk.sysroot()) == old_commit);
        const auto entries = grub_entries(disk.sysroot() / "boot");
        REQUIRE(!entries.empty());
        expected_ostree = entries[0].ostree;
        CHECK(commit_of(deployment_of(disk.sysroot(), expected_ostree)) == old_commit);
    }
    const double rolled_back = boot_to_healthy(raw, dir, "rolled-back", expected_ostree);
    std::cout << "rollback: booted " << old_commit << ", role healthy after " << rolled_back << " s\n";
    stormnode::test::drop_disk_images(dir);
    fs::remove_all(repo);
}

namespace {

struct PowerCut {
    std::string phase;
    std::vector<std::string> failures;
    double killed_at_s = 0;
    double reinstall_s = 0;
    std::string after_cut;  // what the disk had
};

// Boots the ISO onto a blank disk, pulls the plug when the console shows the phase, then checks the
// disk on the host and re-runs the installer on it.
PowerCut cut_power_during(const std::string& phase) {
    PowerCut r{.phase = phase};
    const fs::path dir = work_dir("powercut-" + phase);
    const fs::path qcow2 = dir / "disk.qcow2";
    stormnode::test::make_qcow2(qcow2, "12G");
    {
        QemuVm vm(
            {.firmware = Firmware::bios,
             .disks = {{qcow2}},
             .cdrom = artifacts() / "stormnode.iso",
             .work_dir = dir,
             .name = "powercut-" + phase});
        vm.wait_for("stormnode-install: phase " + phase + "\\b", 900s);
        vm.kill();
        r.killed_at_s = seconds(vm.uptime());
    }
    const fs::path raw = dir / "disk.raw";
    to_raw(qcow2, raw);
    fs::remove(qcow2);
    {
        AttachedDisk disk(raw);
        const auto b = bootloader_of(raw, disk);
        r.after_cut = b.any() ? "a bootloader" : "no bootloader";
    }
    if (auto wrong = check_boot_or_nothing(raw, false); !wrong.empty()) {
        r.failures.push_back("after the cut during " + phase + ": " + wrong);
    }

    // The re-run, on the host, onto the disk through a loop device: as from the console menu.
    const fs::path cmdline = dir / "cmdline";
    stormnode::write_file_atomic(cmdline, "console=tty0 console=ttyS0,115200\n");
    const auto source = stormnode::test::source_dir();
    const auto started = std::chrono::steady_clock::now();
    stormnode::ProcessResult rerun;
    {
        AttachedDisk disk(raw);
        run({.argv = {"partx", "--delete", disk.device()}});
        rerun = run(
            {.argv = {
                 stormctl().string(),
                 "install",
                 "--disk",
                 disk.device(),
                 "--answers",
                 (source / "tests/system/data/quorum-answers.yaml").string(),
                 "--source-repo",
                 (artifacts() / "repo").string(),
                 "--gpg-key",
                 (artifacts() / "pub.asc").string(),
                 "--catalog",
                 (source / "roles/catalog").string(),
                 "--cmdline-file",
                 cmdline.string(),
                 "--yes"}});
    }
    r.reinstall_s = seconds(std::chrono::steady_clock::now() - started);
    std::ofstream(dir / "reinstall.log") << rerun.out << rerun.err;
    if (!rerun.ok() || rerun.out.find("stormnode-install: phase done") == std::string::npos) {
        r.failures.push_back(
            "re-run after the cut during " + phase + " failed (exit " + std::to_string(rerun.exit_status) +
            "):\n" + rerun.out + rerun.err);
        return r;
    }
    if (auto wrong = check_boot_or_nothing(raw, true); !wrong.empty()) {
        r.failures.push_back("after the re-run (cut during " + phase + "): " + wrong);
        return r;  // the disk stays for a look
    }
    stormnode::test::drop_disk_images(dir);
    return r;
}

}  // namespace

namespace {

// Cuts the power during each phase in turn, one VM at a time (-smp 1): ctest pairs this test with another
// one-vCPU test, so both cores stay busy. One phase's VM gone wrong is that phase's failure; the next
// phase still runs.
void cut_power_during_each(const std::vector<std::string>& phases) {
    REQUIRE(fs::exists(artifacts() / "stormnode.iso"));
    for (const auto& phase : phases) {
        PowerCut r;
        try {
            r = cut_power_during(phase);
        } catch (const std::exception& e) {
            r = {.phase = phase, .failures = {e.what()}};
        }
        std::cout << "powercut " << r.phase << ": killed at " << r.killed_at_s << " s, " << r.after_cut
                  << ", re-install on the host " << r.reinstall_s << " s\n";
        for (const auto& failure : r.failures) {
            FAIL_CHECK(failure);
        }
    }
}

}  // namespace

// The four install phases in two halves of about equal length (each has one short and one long install).
TEST_CASE(
    "power cut during partitioning and during the bootloader install: the disk boots the whole system or "
    "nothing; a re-run completes",
    "[system][powercut-a]") {
    cut_power_during_each({"partition", "bootloader"});
}

TEST_CASE(
    "power cut during the pull and during the deploy: the disk boots the whole system or nothing; a re-run "
    "completes",
    "[system][powercut-b]") {
    cut_power_during_each({"pull", "deploy"});
}
