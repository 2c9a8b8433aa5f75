// Catch2 main for the qemu tier: exit 77 (skipped) when the machine cannot boot VMs or the fixture made
// no ISO.
#define CATCH_CONFIG_RUNNER
#include <stormnode/test/qemu_vm.hpp>

#include <catch2/catch.hpp>

#include <iostream>

int main(int argc, char** argv) {
    for (const auto firmware : {stormnode::test::Firmware::bios, stormnode::test::Firmware::uefi}) {
        if (const auto why = stormnode::test::qemu_unavailable(firmware)) {
            std::cout << "SKIP: " << *why << "\n";
            return 77;
        }
    }
    return Catch::Session().run(argc, argv);
}
