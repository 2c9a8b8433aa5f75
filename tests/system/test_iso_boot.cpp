// The ISO booted in qemu (TCG): the live system, and the unattended install to a virtual disk followed by
// the first boot from that disk, with SeaBIOS and with OVMF. Reads the serial console only: what an
// operator at a headless rack sees.
#include "system_paths.hpp"

#include <stormnode/common/subprocess.hpp>
#include <stormnode/test/qemu_vm.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <iostream>

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using stormnode::test::artifacts;
using stormnode::test::Firmware;
using stormnode::test::QemuVm;
using stormnode::test::seconds;
using stormnode::test::work_dir;

// keep_disk: the installed disk is another test's starting point (install-bios: the upgrade test's,
// through the fixture stormnode_installed_disk).
void unattended_install(Firmware firmware, const std::string& name, bool keep_disk) {
    const fs::path dir = work_dir(name);
    stormnode::test::make_qcow2(dir / "disk.qcow2", "12G");
    // The disk boots first: blank, the firmware falls through to the ISO; installed, it boots the node.
    QemuVm vm(
        {.firmware = firmware,
         .disks = {{dir / "disk.qcow2"}},
         .cdrom = artifacts() / "stormnode.iso",
         .work_dir = dir,
         .name = name});
    vm.wait_for("stormnode-install: phase", 600s);  // the ISO boot: 2-3 min at -smp 1 beside another VM
    const auto done = vm.wait_for("stormnode-install: (phase done|failed)", 900s);
    REQUIRE(done.find("done") != std::string::npos);
    const auto installed = vm.uptime();
    vm.wait_for("roles quorum from node.yaml", 300s);
    // storm-roled's state changes, echoed on the console by storm-roled-console.service.
    CHECK_THAT(vm.wait_for("roles quorum healthy", 300s), Catch::Matchers::Contains("roles quorum healthy"));
    std::cout << name << ": install done after " << seconds(installed) << " s, role healthy after "
              << seconds(vm.uptime()) << " s\n";
    if (!keep_disk) {
        vm.kill();
        stormnode::test::drop_disk_images(dir);
    }
}

}  // namespace

TEST_CASE("the Live entry boots the ISO's live root; first boot settles the quorum role", "[system][live]") {
    const fs::path dir = work_dir("live");
    const fs::path iso = artifacts() / "stormnode.iso";
    REQUIRE(fs::exists(iso));
    // The ISO's own kernel and initramfs, booted directly: the menu is not what this test is about.
    for (const char* file : {"vmlinuz", "initrd.img"}) {
        stormnode::run_checked(
            {.argv = {
                 "xorriso",
                 "-osirrox",
                 "on",
                 "-indev",
                 iso.string(),
                 "-extract",
                 std::string("/boot/") + file,
                 (dir / file).string()}});
    }
    QemuVm vm(
        {.firmware = Firmware::bios,
         .cdrom = iso,
         .work_dir = dir,
         .kernel = dir / "vmlinuz",
         .initrd = dir / "initrd.img",
         .append = "root=live:CDLABEL=STORMNODE rd.live.image rd.live.overlay.overlayfs=1 "
                   "console=ttyS0,115200 stormnode.role=quorum",
         .name = "live"});
    vm.wait_for("roles quorum from kernel-cmdline", 300s);
    // storm-roled's state changes, echoed on the console by storm-roled-console.service.
    CHECK_THAT(vm.wait_for("roles quorum healthy", 300s), Catch::Matchers::Contains("roles quorum healthy"));
    std::cout << "live: role healthy after " << seconds(vm.uptime()) << " s\n";
}

TEST_CASE(
    "unattended install from the ISO, then the disk boots the quorum role (SeaBIOS)",
    "[system][install][bios]") {
    unattended_install(Firmware::bios, "install-bios", true);
}

TEST_CASE(
    "unattended install from the ISO, then the disk boots the quorum role (OVMF)",
    "[system][install][uefi]") {
    unattended_install(Firmware::uefi, "install-uefi", false);
}
