// Catch2 main for the network-boot tier: exit 77 (skipped) when the machine cannot run it — no qemu,
// no libvirt, no dnsmasq or ip, no tap devices, not root (network and mount namespaces, bridges).
#define CATCH_CONFIG_RUNNER
#include <stormnode/common/subprocess.hpp>
#include <stormnode/test/libvirt_rig.hpp>
#include <stormnode/test/qemu_vm.hpp>

#include <catch2/catch.hpp>
#include <unistd.h>

#include <filesystem>
#include <iostream>

int main(int argc, char** argv) {
    // The unknown node boots with UEFI (OVMF), the known ones with BIOS.
    if (const auto why = stormnode::test::qemu_unavailable(stormnode::test::Firmware::uefi)) {
        std::cout << "SKIP: " << *why << "\n";
        return 77;
    }
    if (const auto why = stormnode::test::PrivateLibvirt::unavailable()) {
        std::cout << "SKIP: " << *why << "\n";
        return 77;
    }
    if (::geteuid() != 0) {
        std::cout << "SKIP: a network namespace with a bridge and tap devices needs root\n";
        return 77;
    }
    if (!std::filesystem::exists("/dev/net/tun")) {
        std::cout << "SKIP: no /dev/net/tun: qemu cannot have a tap NIC\n";
        return 77;
    }
    for (const char* tool : {"dnsmasq", "ip", "curl"}) {
        if (!stormnode::run({.argv = {tool, tool == std::string("ip") ? "-V" : "--version"}}).ok()) {
            std::cout << "SKIP: " << tool << " is not installed (dnsmasq-base iproute2 curl)\n";
            return 77;
        }
    }
    return Catch::Session().run(argc, argv);
}
