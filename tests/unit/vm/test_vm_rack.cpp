// stormctl vm rack: the isolated network's XML, the network-booting domains, and a whole rack created
// and destroyed against libvirt's test driver.
#include <stormnode/common/error.hpp>
#include <stormnode/common/subprocess.hpp>
#include <stormnode/common/temp_dir.hpp>
#include <stormnode/vm/vm.hpp>

#include <catch2/catch.hpp>

#include <filesystem>

using stormnode::installer::Hypervisor;
using stormnode::installer::RackNetwork;
using stormnode::installer::RackNodeEntry;

namespace {

bool has(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
}

const std::vector<RackNodeEntry> kNodes{
    {"52:54:00:AA:00:01", "db-1"}, {"52:54:00:aa:00:02", "db-2"}, {"52:54:00:aa:00:03", ""}};

template <typename F>
stormnode::Errc error_of(F&& f) {
    try {
        f();
    } catch (const stormnode::Error& e) {
        return e.code();
    }
    FAIL("expected an error");
    return stormnode::Errc::io;
}

}  // namespace

TEST_CASE(
    "the rack network is an isolated bridge with the server's address and no DHCP or DNS", "[vm][rack]") {
    const auto xml = stormnode::installer::network_xml({"stormnode-r1", "br-prov", "10.10.0.1", 24});
    CHECK(has(xml, "<name>stormnode-r1</name>"));
    CHECK(has(xml, "<bridge name='br-prov' stp='off' delay='0'/>"));
    CHECK(has(xml, "<ip address='10.10.0.1' prefix='24'/>"));
    CHECK(has(xml, "<dns enable='no'/>"));
    CHECK_FALSE(has(xml, "<forward"));  // isolated: no NAT or routing to the host's other networks
    CHECK_FALSE(has(xml, "<dhcp"));     // pxe serve's dnsmasq is the DHCP server there
}

TEST_CASE("a bad bridge name or address is refused before libvirt sees it", "[vm][rack]") {
    using stormnode::installer::network_xml;
    CHECK(error_of([] {
              (void)network_xml({"n", "a-bridge-name-too-long", "10.0.0.1", 24});
          }) == stormnode::Errc::invalid_input);
    CHECK(error_of([] {
              (void)network_xml({"n", "br x", "10.0.0.1", 24});
          }) == stormnode::Errc::invalid_input);
    CHECK(error_of([] {
              (void)network_xml({"n", "br0", "10.0.0.300", 24});
          }) == stormnode::Errc::invalid_input);
    CHECK(error_of([] {
              (void)network_xml({"n", "br0", "10.0.0.1", 31});
          }) == stormnode::Errc::invalid_input);
}

TEST_CASE(
    "rack nodes boot from the disk, then the network, on the rack's network with their MAC", "[vm][rack]") {
    const auto rack =
        stormnode::installer::rack_spec("r1", "", "10.10.0.0/24", "10.10.0.1", kNodes, "/var/lib/vms");
    CHECK(rack.network.name == "stormnode-r1");
    CHECK(rack.network.bridge == "sn-r1");
    CHECK(rack.network.prefix == 24);
    REQUIRE(rack.nodes.size() == 3);
    CHECK(rack.nodes[0].name == "r1-db-1");
    CHECK(rack.nodes[2].name == "r1-525400aa0003");  // no hostname in the inventory: named by its MAC
    CHECK(rack.nodes[1].state_dir == "/var/lib/vms/r1-db-2");
    const auto xml = stormnode::installer::domain_xml(rack.nodes[0]);
    CHECK(has(xml, "<domain type='qemu'>"));
    CHECK(has(xml, "<interface type='network'>"));
    CHECK(has(xml, "<source network='stormnode-r1'/>"));
    CHECK(has(xml, "<mac address='52:54:00:aa:00:01'/>"));  // as libvirt and dnsmasq compare it
    CHECK(has(xml, "<model type='virtio'/>"));
    CHECK(xml.find("<boot dev='hd'/>") < xml.find("<boot dev='network'/>"));
    CHECK_FALSE(has(xml, "device='cdrom'"));
    CHECK_FALSE(has(xml, "<interface type='user'>"));
    CHECK(has(xml, "<source file='/var/lib/vms/r1-db-1/disk.qcow2'/>"));
}

TEST_CASE("a long rack name gives a bridge name the kernel takes, and bad MACs are refused", "[vm][rack]") {
    const auto rack = stormnode::installer::rack_spec(
        "a-very-long-rack-name", "", "10.10.0.0/24", "10.10.0.1", {}, "/var/lib/vms");
    CHECK(rack.network.bridge.size() <= 15);
    CHECK(error_of([] {
              (void)stormnode::installer::rack_spec(
                  "r", "", "10.10.0.0/24", "10.10.0.1", {{"52:54:00:zz:00:01", "x"}}, "/var/lib/vms");
          }) == stormnode::Errc::invalid_input);
    CHECK(error_of([] {
              (void)stormnode::installer::rack_spec("r", "", "10.10.0.0", "10.10.0.1", {}, "/var/lib/vms");
          }) == stormnode::Errc::invalid_input);
}

TEST_CASE("a rack is created and destroyed whole against libvirt's test driver", "[vm][rack][libvirt]") {
    if (!stormnode::run({.argv = {"qemu-img", "--version"}}).ok()) {
        WARN("qemu-img is not installed: the rack's disks cannot be made");
        return;
    }
    stormnode::TempDir dir("vm-rack-test");
    Hypervisor hypervisor("test:///default");
    auto rack =
        stormnode::installer::rack_spec("unit", "br-unit", "10.10.0.0/24", "10.10.0.1", kNodes, dir.path());
    stormnode::installer::create_rack(hypervisor, rack);
    for (const auto& vm : rack.nodes) {
        const auto found = hypervisor.find(vm.name);
        REQUIRE(found);
        CHECK(found->running);
        CHECK(std::filesystem::exists(vm.disk()));
    }
    // A second rack of the same name is refused and leaves the first alone.
    auto again =
        stormnode::installer::rack_spec("unit", "br-unit", "10.10.0.0/24", "10.10.0.1", kNodes, dir.path());
    CHECK(error_of([&] {
              stormnode::installer::create_rack(hypervisor, again);
          }) == stormnode::Errc::invalid_input);
    CHECK(hypervisor.find("unit-db-1"));

    CHECK(stormnode::installer::destroy_rack(hypervisor, rack) == 3);
    for (const auto& vm : rack.nodes) {
        CHECK_FALSE(hypervisor.find(vm.name));
        CHECK_FALSE(std::filesystem::exists(vm.state_dir));
    }
    CHECK_FALSE(hypervisor.destroy_network("stormnode-unit"));         // gone with the rack
    CHECK(stormnode::installer::destroy_rack(hypervisor, rack) == 0);  // nothing left: nothing to do
}

TEST_CASE(
    "a rack defined without starting waits for start_rack, which starts each VM once",
    "[vm][rack][libvirt]") {
    if (!stormnode::run({.argv = {"qemu-img", "--version"}}).ok()) {
        WARN("qemu-img is not installed: the rack's disks cannot be made");
        return;
    }
    stormnode::TempDir dir("vm-rack-start");
    Hypervisor hypervisor("test:///default");
    auto rack =
        stormnode::installer::rack_spec("held", "br-held", "10.10.0.0/24", "10.10.0.1", kNodes, dir.path());
    stormnode::installer::create_rack(hypervisor, rack, /*start=*/false);
    for (const auto& vm : rack.nodes) {
        const auto found = hypervisor.find(vm.name);
        REQUIRE(found);
        CHECK_FALSE(found->running);  // pxe serve is not up yet: a VM booted now would find no DHCP server
    }
    CHECK(stormnode::installer::start_rack(hypervisor, rack) == 3);
    for (const auto& vm : rack.nodes) {
        CHECK(hypervisor.find(vm.name)->running);
    }
    CHECK(stormnode::installer::start_rack(hypervisor, rack) == 0);  // running already: left alone
    CHECK(stormnode::installer::destroy_rack(hypervisor, rack) == 3);
    CHECK(error_of([&] { (void)hypervisor.start("held-db-1"); }) == stormnode::Errc::not_found);
}

TEST_CASE(
    "unknown-MAC VMs get MACs no inventory node has, and a rack node can boot with UEFI", "[vm][rack]") {
    using stormnode::installer::unknown_node_macs;
    CHECK(unknown_node_macs(0, {}).empty());
    CHECK(unknown_node_macs(2, {}) == std::vector<std::string>{"52:54:00:fe:00:01", "52:54:00:fe:00:02"});
    // An inventory that uses the first one (in any case) pushes the unknown VM to the next.
    CHECK(unknown_node_macs(1, {"52:54:00:FE:00:01"}) == std::vector<std::string>{"52:54:00:fe:00:02"});

    const auto rack = stormnode::installer::rack_spec(
        "r2", "", "10.10.0.0/24", "10.10.0.1", {{"52:54:00:fe:00:01", "unknown-1", true}}, "/var/lib/vms");
    REQUIRE(rack.nodes.size() == 1);
    CHECK(rack.nodes[0].uefi);
    const auto xml = stormnode::installer::domain_xml(rack.nodes[0]);
    CHECK(has(xml, "<os firmware='efi'>"));
    CHECK(has(xml, "<feature enabled='no' name='secure-boot'/>"));
    CHECK(has(xml, "<rom enabled='no'/>"));  // OVMF's own PXE client, not qemu's iPXE ROM
    CHECK(xml.find("<boot dev='hd'/>") < xml.find("<boot dev='network'/>"));
    // BIOS nodes keep the NIC's iPXE ROM: it is their PXE client.
    CHECK_FALSE(
        has(stormnode::installer::domain_xml(
                stormnode::installer::rack_spec(
                    "r3", "", "10.10.0.0/24", "10.10.0.1", {{"52:54:00:aa:00:01", "db-1"}}, "/var/lib/vms")
                    .nodes[0]),
            "<rom "));
}
