#include <stormnode/common/error.hpp>
#include <stormnode/common/temp_dir.hpp>
#include <stormnode/vm/vm.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <fstream>

using stormnode::installer::domain_xml;
using stormnode::installer::Hypervisor;
using stormnode::installer::VmSpec;

namespace {

VmSpec spec(const std::string& name, bool uefi = false) {
    VmSpec s;
    s.name = name;
    s.iso = "/srv/isos/stormnode.iso";
    s.state_dir = "/var/lib/stormnode/vm/" + name;
    s.memory_mib = 1024;
    s.uefi = uefi;
    return s;
}

bool has(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("the domain is TCG on q35 with a virtio disk, the ISO as cdrom and a logged serial pty", "[vm]") {
    const auto xml = domain_xml(spec("try-1"));
    CHECK(has(xml, "<domain type='qemu'>"));
    CHECK(has(xml, "machine='q35'"));
    CHECK(has(xml, "<name>try-1</name>"));
    CHECK(has(xml, "<memory unit='MiB'>1024</memory>"));
    CHECK(has(xml, "<vcpu>1</vcpu>"));
    CHECK(has(xml, "<source file='/var/lib/stormnode/vm/try-1/disk.qcow2'/>"));
    CHECK(has(xml, "<target dev='vda' bus='virtio'/>"));
    CHECK(has(xml, "<driver name='qemu' type='qcow2'/>"));
    CHECK(has(xml, "device='cdrom'"));
    CHECK(has(xml, "<source file='/srv/isos/stormnode.iso'/>"));
    CHECK(has(xml, "<serial type='pty'>"));
    CHECK(has(xml, "<log file='/var/lib/stormnode/vm/try-1/serial.log' append='off'/>"));
    // The disk boots first: empty at first (falls through to the ISO), the installed system afterwards.
    CHECK(xml.find("<boot dev='hd'/>") < xml.find("<boot dev='cdrom'/>"));
    CHECK_FALSE(has(xml, "firmware='efi'"));
    CHECK_FALSE(has(xml, "STORMANS"));
}

TEST_CASE("UEFI disables Secure Boot explicitly and keeps its variables with the VM", "[vm]") {
    const auto xml = domain_xml(spec("try-uefi", true));
    CHECK(has(xml, "<os firmware='efi'>"));
    CHECK(has(xml, "<feature enabled='no' name='secure-boot'/>"));
    CHECK(has(xml, "<feature enabled='no' name='enrolled-keys'/>"));
    CHECK(has(xml, "<nvram>/var/lib/stormnode/vm/try-uefi/uefi-vars.fd</nvram>"));
}

TEST_CASE("an answers ISO is a second cdrom", "[vm]") {
    auto s = spec("try-answers");
    s.answers_iso = "/var/lib/stormnode/vm/try-answers/answers.iso";
    const auto xml = domain_xml(s);
    CHECK(has(xml, "<source file='/var/lib/stormnode/vm/try-answers/answers.iso'/>"));
    CHECK(has(xml, "<target dev='sdb' bus='sata'/>"));
}

TEST_CASE("a VM name that libvirt or a path would not take is invalid input", "[vm]") {
    for (const auto* bad : {"", "-x", "a b", "../etc", "x/y", "name'quote"}) {
        INFO(bad);
        try {
            (void)domain_xml(spec(bad));
            FAIL("expected an error");
        } catch (const stormnode::Error& e) {
            CHECK(e.code() == stormnode::Errc::invalid_input);
        }
    }
}

TEST_CASE("define, start, list and destroy against libvirt's test driver", "[vm][libvirt]") {
    Hypervisor hypervisor("test:///default");
    stormnode::TempDir dir("vm-test");
    auto s = spec("stormnode-unit", true);
    s.state_dir = dir.path() / "stormnode-unit";
    std::filesystem::create_directories(s.state_dir);
    {
        std::ofstream disk(s.disk());  // destroy removes only a directory that holds a VM disk
    }
    hypervisor.run(s);
    const auto found = hypervisor.find("stormnode-unit");
    REQUIRE(found);
    CHECK(found->running);
    CHECK(found->state_dir == s.state_dir);
    const auto all = hypervisor.list();
    CHECK(std::any_of(all.begin(), all.end(), [](const auto& v) { return v.name == "stormnode-unit"; }));
    // The test driver's own "test" domain is not one of ours: no state directory.
    const auto test = std::find_if(all.begin(), all.end(), [](const auto& v) { return v.name == "test"; });
    REQUIRE(test != all.end());
    CHECK(test->state_dir.empty());

    try {
        hypervisor.run(s);
        FAIL("expected an error");
    } catch (const stormnode::Error& e) {
        CHECK(e.code() == stormnode::Errc::invalid_input);
        CHECK(has(e.what(), "exists already"));
    }

    hypervisor.destroy("stormnode-unit");
    CHECK_FALSE(hypervisor.find("stormnode-unit"));
    CHECK_FALSE(std::filesystem::exists(s.state_dir));
    try {
        hypervisor.destroy("stormnode-unit");
        FAIL("expected an error");
    } catch (const stormnode::Error& e) {
        CHECK(e.code() == stormnode::Errc::not_found);
    }
}

TEST_CASE("libvirt's errors become Error(libvirt) with libvirt's message", "[vm][libvirt]") {
    try {
        Hypervisor hypervisor("stormnode-no-such-driver:///x");
        FAIL("expected an error");
    } catch (const stormnode::Error& e) {
        CHECK(e.code() == stormnode::Errc::libvirt);
        CHECK(has(e.what(), "stormnode-no-such-driver:///x"));
    }
}
