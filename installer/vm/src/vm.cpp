#include "stormnode/vm/vm.hpp"

#include <stormnode/catalog/node_file.hpp>
#include <stormnode/common/error.hpp>
#include <stormnode/common/subprocess.hpp>

#include <arpa/inet.h>
#include <libvirt/virterror.h>
#include <net/if.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <utility>

namespace stormnode::installer {
namespace {

namespace fs = std::filesystem;

// The metadata element that marks a domain as stormctl's and says where its files are.
constexpr const char* kMetadataUri = "https://stormnode.invalid/vm/1";
constexpr const char* kMetadataKey = "stormnode";

std::string xml_escape(const std::string& text) {
    std::string out;
    for (const char c : text) {
        switch (c) {
            case '&':
                out += "&amp;";
                break;
            case '<':
                out += "&lt;";
                break;
            case '>':
                out += "&gt;";
                break;
            case '\'':
                out += "&apos;";
                break;
            case '"':
                out += "&quot;";
                break;
            default:
                out += c;
        }
    }
    return out;
}

[[noreturn]] void throw_libvirt(const std::string& what) {
    const char* message = virGetLastErrorMessage();
    throw Error(Errc::libvirt, what + ": " + (message != nullptr ? message : "unknown libvirt error"));
}

// libvirt prints errors to stderr by default; a library reports them through Error instead.
void quiet_libvirt_errors(void* /*user_data*/, virErrorPtr /*error*/) {}

// The text between <tag ...> and </tag> (first match), or between the quotes of attr='...' after `from`.
std::string element_text(const std::string& xml, const std::string& tag) {
    const auto open = xml.find("<" + tag + ">");
    if (open == std::string::npos) {
        return {};
    }
    const auto start = open + tag.size() + 2;
    const auto end = xml.find("</" + tag + ">", start);
    return end == std::string::npos ? std::string{} : xml.substr(start, end - start);
}

std::string xml_unescape(std::string text) {
    for (const auto& [from, to] :
         {std::pair<std::string, std::string>{"&lt;", "<"},
          {"&gt;", ">"},
          {"&apos;", "'"},
          {"&quot;", "\""},
          {"&amp;", "&"}}) {
        for (auto at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size())) {
            text.replace(at, from.size(), to);
        }
    }
    return text;
}

// The pty of the serial console from a running domain's live XML: <serial type='pty'><source path=...>.
std::string serial_pty(const std::string& xml) {
    const auto serial = xml.find("<serial type='pty'");
    if (serial == std::string::npos) {
        return {};
    }
    const auto source = xml.find("<source path='", serial);
    const auto serial_end = xml.find("</serial>", serial);
    if (source == std::string::npos || source > serial_end) {
        return {};
    }
    const auto start = source + std::string("<source path='").size();
    return xml_unescape(xml.substr(start, xml.find('\'', start) - start));
}

void check_name(const std::string& name) {
    const bool ok =
        !name.empty() && name.size() <= 64 && name.front() != '-' && name.front() != '.' &&
        std::all_of(name.begin(), name.end(), [](char c) {
            return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '_' || c == '.';
        });
    if (!ok) {
        throw Error(
            Errc::invalid_input,
            "VM name '" + name +
                "': use 1-64 letters, digits, '-', '_' or '.', not starting with '-' or '.'");
    }
}

// The firmware and the boot order.
std::string os_xml(const VmSpec& spec) {
    std::string x;
    if (spec.uefi) {
        // firmware='efi' alone picks the Secure Boot OVMF with Microsoft's keys, which refuses the
        // ISO's unsigned GRUB: both features off.
        x += "  <os firmware='efi'>\n";
        x += "    <type arch='x86_64' machine='q35'>hvm</type>\n";
        x += "    <firmware>\n";
        x += "      <feature enabled='no' name='secure-boot'/>\n";
        x += "      <feature enabled='no' name='enrolled-keys'/>\n";
        x += "    </firmware>\n";
        x += "    <nvram>" + xml_escape(spec.nvram().string()) + "</nvram>\n";
    } else {
        x += "  <os>\n";
        x += "    <type arch='x86_64' machine='q35'>hvm</type>\n";
    }
    // The empty disk first: the first boot falls through to the ISO (or the network), later boots start
    // the installed system.
    x += "    <boot dev='hd'/>\n";
    if (!spec.iso.empty()) {
        x += "    <boot dev='cdrom'/>\n";
    }
    if (!spec.network.empty()) {
        x += "    <boot dev='network'/>\n";
    }
    x += "  </os>\n";
    return x;
}

// A read-only SATA cdrom with the ISO at file.
std::string cdrom_xml(const fs::path& file, const std::string& target) {
    std::string x;
    x += "    <disk type='file' device='cdrom'>\n";
    x += "      <driver name='qemu' type='raw'/>\n";
    x += "      <source file='" + xml_escape(file.string()) + "'/>\n";
    x += "      <target dev='" + target + "' bus='sata'/>\n";
    x += "      <readonly/>\n";
    x += "    </disk>\n";
    return x;
}

// User-mode networking, or the libvirt network with the node's MAC (a rack's inventory).
std::string interface_xml(const VmSpec& spec) {
    if (spec.network.empty()) {
        return "    <interface type='user'><model type='virtio'/></interface>\n";
    }
    if (!roles::valid_mac(spec.mac)) {
        throw Error(Errc::invalid_input, "VM '" + spec.name + "': '" + spec.mac + "' is not a MAC address");
    }
    std::string x;
    x += "    <interface type='network'>\n";
    x += "      <source network='" + xml_escape(spec.network) + "'/>\n";
    x += "      <mac address='" + roles::normalize_mac(spec.mac) + "'/>\n";
    x += "      <model type='virtio'/>\n";
    if (spec.uefi) {
        // No iPXE option ROM: OVMF's own PXE client boots it (DHCP client-arch 7), as a server's
        // UEFI firmware does.
        x += "      <rom enabled='no'/>\n";
    }
    x += "    </interface>\n";
    return x;
}

}  // namespace

std::string domain_xml(const VmSpec& spec) {
    check_name(spec.name);
    if (spec.memory_mib < 256) {
        throw Error(
            Errc::invalid_input, "--memory " + std::to_string(spec.memory_mib) + ": at least 256 MiB");
    }
    std::string x;
    x += "<domain type='qemu'>\n";  // TCG: no KVM on these machines
    x += "  <name>" + xml_escape(spec.name) + "</name>\n";
    x += "  <metadata>\n    <" + std::string(kMetadataKey) + ":vm xmlns:" + kMetadataKey + "='" +
         kMetadataUri + "'><" + kMetadataKey + ":dir>" + xml_escape(spec.state_dir.string()) + "</" +
         kMetadataKey + ":dir></" + kMetadataKey + ":vm>\n  </metadata>\n";
    x += "  <memory unit='MiB'>" + std::to_string(spec.memory_mib) + "</memory>\n";
    x += "  <vcpu>" + std::to_string(spec.vcpus) + "</vcpu>\n";
    x += os_xml(spec);
    x += "  <features><acpi/><apic/></features>\n";
    x += "  <on_reboot>restart</on_reboot>\n";
    x += "  <devices>\n";
    x += "    <disk type='file' device='disk'>\n";
    x += "      <driver name='qemu' type='qcow2'/>\n";
    x += "      <source file='" + xml_escape(spec.disk().string()) + "'/>\n";
    x += "      <target dev='vda' bus='virtio'/>\n";
    x += "    </disk>\n";
    if (!spec.iso.empty()) {
        x += cdrom_xml(fs::absolute(spec.iso), "sda");
    }
    if (spec.answers_iso) {
        x += cdrom_xml(*spec.answers_iso, "sdb");
    }
    x += interface_xml(spec);
    x += "    <serial type='pty'>\n";
    x += "      <log file='" + xml_escape(spec.serial_log().string()) + "' append='off'/>\n";
    x += "      <target port='0'/>\n";
    x += "    </serial>\n";
    x += "    <console type='pty'><target type='serial' port='0'/></console>\n";
    x += "  </devices>\n";
    x += "</domain>\n";
    return x;
}

Hypervisor::Hypervisor(const std::string& uri) : uri_(uri) {
    virSetErrorFunc(nullptr, quiet_libvirt_errors);
    connection_.reset(virConnectOpen(uri.c_str()));
    if (!connection_) {
        throw_libvirt("connecting to libvirt at " + uri);
    }
}

void Hypervisor::define(const VmSpec& spec) {
    const auto xml = domain_xml(spec);
    if (VirDomainHandle existing(virDomainLookupByName(connection_.get(), spec.name.c_str())); existing) {
        throw Error(
            Errc::invalid_input,
            "a VM named '" + spec.name + "' exists already (stormctl vm destroy it first)");
    }
    virResetLastError();
    VirDomainHandle domain(virDomainDefineXML(connection_.get(), xml.c_str()));
    if (!domain) {
        throw_libvirt("defining VM '" + spec.name + "'");
    }
}

VirDomainHandle Hypervisor::lookup(const std::string& name) {
    VirDomainHandle domain(virDomainLookupByName(connection_.get(), name.c_str()));
    if (!domain) {
        virResetLastError();
        throw Error(Errc::not_found, "no VM named '" + name + "'");
    }
    return domain;
}

bool Hypervisor::start(const std::string& name) {
    const auto domain = lookup(name);
    const int active = virDomainIsActive(domain.get());
    if (active < 0) {
        throw_libvirt("reading the state of VM '" + name + "'");
    }
    if (active == 1) {
        return false;
    }
    if (virDomainCreate(domain.get()) < 0) {
        throw_libvirt("starting VM '" + name + "'");
    }
    return true;
}

void Hypervisor::run(const VmSpec& spec) {
    define(spec);
    try {
        start(spec.name);
    } catch (const Error&) {
        VirDomainHandle domain(virDomainLookupByName(connection_.get(), spec.name.c_str()));
        if (domain) {
            (void)virDomainUndefineFlags(domain.get(), VIR_DOMAIN_UNDEFINE_NVRAM);
        }
        throw;
    }
}

VmInfo Hypervisor::info(virDomainPtr domain) {
    VmInfo vm;
    const char* name = virDomainGetName(domain);
    vm.name = name != nullptr ? name : "";
    const int active = virDomainIsActive(domain);
    if (active < 0) {
        throw_libvirt("reading the state of VM '" + vm.name + "'");
    }
    vm.running = active == 1;
    if (char* xml = virDomainGetXMLDesc(domain, 0); xml != nullptr) {
        const std::string text(xml);
        free(xml);  // NOLINT(cppcoreguidelines-no-malloc): libvirt's allocation
        if (vm.running) {
            vm.console_pty = serial_pty(text);
        }
    }
    if (char* metadata = virDomainGetMetadata(domain, VIR_DOMAIN_METADATA_ELEMENT, kMetadataUri, 0);
        metadata != nullptr) {
        const std::string text(metadata);
        free(metadata);  // NOLINT(cppcoreguidelines-no-malloc)
        // libvirt hands the element back with its own prefix: <stormnode:vm ...><stormnode:dir>.
        auto dir = element_text(text, std::string(kMetadataKey) + ":dir");
        if (dir.empty()) {
            dir = element_text(text, "dir");
        }
        vm.state_dir = xml_unescape(dir);
    } else {
        virResetLastError();  // no stormnode metadata: not one of ours
    }
    return vm;
}

std::vector<VmInfo> Hypervisor::list() {
    virDomainPtr* domains = nullptr;
    const int n = virConnectListAllDomains(connection_.get(), &domains, 0);
    if (n < 0) {
        throw_libvirt("listing VMs");
    }
    std::vector<VirDomainHandle> owned;
    owned.reserve(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) {
        owned.emplace_back(domains[i]);
    }
    free(domains);  // NOLINT(cppcoreguidelines-no-malloc)
    std::vector<VmInfo> result;
    for (const auto& d : owned) {
        result.push_back(info(d.get()));
    }
    std::sort(result.begin(), result.end(), [](const VmInfo& a, const VmInfo& b) { return a.name < b.name; });
    return result;
}

std::optional<VmInfo> Hypervisor::find(const std::string& name) {
    VirDomainHandle domain(virDomainLookupByName(connection_.get(), name.c_str()));
    if (!domain) {
        virResetLastError();
        return std::nullopt;
    }
    return info(domain.get());
}

void Hypervisor::destroy(const std::string& name) {
    const auto domain = lookup(name);
    const auto vm = info(domain.get());
    if (vm.running && virDomainDestroy(domain.get()) < 0) {
        throw_libvirt("powering off VM '" + name + "'");
    }
    // The test driver (and a domain without UEFI on some drivers) rejects the NVRAM flag.
    if (virDomainUndefineFlags(domain.get(), VIR_DOMAIN_UNDEFINE_NVRAM) < 0 &&
        virDomainUndefine(domain.get()) < 0) {
        throw_libvirt("undefining VM '" + name + "'");
    }
    // Only a directory stormctl made: it holds disk.qcow2 next to the domain's other files.
    if (!vm.state_dir.empty() && vm.state_dir.is_absolute() && fs::exists(vm.state_dir / "disk.qcow2")) {
        fs::remove_all(vm.state_dir);
    }
}

std::string network_xml(const RackNetwork& network) {
    check_name(network.name);
    const bool bridge_ok =
        !network.bridge.empty() && network.bridge.size() < IFNAMSIZ &&
        std::all_of(network.bridge.begin(), network.bridge.end(), [](char c) {
            return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '_' || c == '.';
        });
    if (!bridge_ok) {
        throw Error(
            Errc::invalid_input,
            "bridge name '" + network.bridge + "': 1-15 letters, digits, '-', '_' or '.'");
    }
    in_addr address{};
    if (::inet_pton(AF_INET, network.address.c_str(), &address) != 1 || network.prefix < 8 ||
        network.prefix > 30) {
        throw Error(
            Errc::invalid_input,
            "rack network address '" + network.address + "/" + std::to_string(network.prefix) +
                "': want an IPv4 address and a prefix of 8..30");
    }
    // No <forward>: isolated. No <dhcp>, and DNS off: libvirt starts no dnsmasq of its own there.
    std::string x;
    x += "<network>\n";
    x += "  <name>" + xml_escape(network.name) + "</name>\n";
    x += "  <bridge name='" + xml_escape(network.bridge) + "' stp='off' delay='0'/>\n";
    x += "  <dns enable='no'/>\n";
    x += "  <ip address='" + network.address + "' prefix='" + std::to_string(network.prefix) + "'/>\n";
    x += "</network>\n";
    return x;
}

VmSpec rack_node_spec(
    const std::string& rack,
    const std::string& hostname,
    const std::string& mac,
    const std::string& network,
    const fs::path& state_root) {
    VmSpec spec;
    spec.name = rack + "-" + hostname;
    spec.state_dir = state_root / spec.name;
    spec.network = network;
    spec.mac = mac;
    return spec;
}

void Hypervisor::create_network(const RackNetwork& network) {
    const auto xml = network_xml(network);
    if (CHandle<virNetwork, virNetworkFree> existing(
            virNetworkLookupByName(connection_.get(), network.name.c_str()));
        existing) {
        throw Error(
            Errc::invalid_input,
            "a libvirt network named '" + network.name + "' exists already (stormctl vm rack --destroy)");
    }
    virResetLastError();
    CHandle<virNetwork, virNetworkFree> net(virNetworkDefineXML(connection_.get(), xml.c_str()));
    if (!net) {
        throw_libvirt("defining network '" + network.name + "'");
    }
    if (virNetworkCreate(net.get()) < 0) {
        const char* message = virGetLastErrorMessage();
        const std::string why = message != nullptr ? message : "unknown libvirt error";
        (void)virNetworkUndefine(net.get());
        throw Error(Errc::libvirt, "starting network '" + network.name + "': " + why);
    }
}

bool Hypervisor::destroy_network(const std::string& name) {
    CHandle<virNetwork, virNetworkFree> net(virNetworkLookupByName(connection_.get(), name.c_str()));
    if (!net) {
        virResetLastError();
        return false;
    }
    if (virNetworkIsActive(net.get()) == 1 && virNetworkDestroy(net.get()) < 0) {
        throw_libvirt("stopping network '" + name + "'");
    }
    if (virNetworkUndefine(net.get()) < 0) {
        throw_libvirt("undefining network '" + name + "'");
    }
    return true;
}

RackSpec rack_spec(
    const std::string& rack,
    const std::string& bridge,
    const std::string& subnet,
    const std::string& server,
    const std::vector<RackNodeEntry>& nodes,
    const fs::path& state_root) {
    check_name(rack);
    RackSpec spec;
    spec.network.name = "stormnode-" + rack;
    spec.network.bridge = bridge.empty() ? ("sn-" + rack).substr(0, IFNAMSIZ - 1) : bridge;
    spec.network.address = server;
    const auto slash = subnet.find('/');
    try {
        spec.network.prefix = slash == std::string::npos ? -1 : std::stoi(subnet.substr(slash + 1));
    } catch (const std::exception&) {
        spec.network.prefix = -1;
    }
    (void)network_xml(spec.network);
    for (const auto& node : nodes) {
        std::string name = node.hostname;
        if (name.empty()) {
            name = node.mac;
            std::erase(name, ':');
        }
        auto vm = rack_node_spec(rack, name, node.mac, spec.network.name, state_root);
        vm.uefi = node.uefi;
        (void)domain_xml(vm);
        spec.nodes.push_back(std::move(vm));
    }
    return spec;
}

std::vector<std::string> unknown_node_macs(std::size_t count, const std::vector<std::string>& taken) {
    std::vector<std::string> macs;
    for (unsigned n = 1; macs.size() < count; ++n) {
        if (n > 0xffff) {
            throw Error(Errc::invalid_input, "no free MAC for another unknown node");
        }
        std::array<char, 18> text{};
        std::snprintf(text.data(), text.size(), "52:54:00:fe:%02x:%02x", (n >> 8) & 0xffU, n & 0xffU);
        const std::string mac(text.data());
        const bool in_use = std::any_of(taken.begin(), taken.end(), [&](const std::string& other) {
            return roles::normalize_mac(other) == mac;
        });
        if (!in_use) {
            macs.push_back(mac);
        }
    }
    return macs;
}

void create_rack(Hypervisor& hypervisor, RackSpec& rack, bool start) {
    for (const auto& vm : rack.nodes) {
        if (hypervisor.find(vm.name)) {
            throw Error(
                Errc::invalid_input,
                "a VM named '" + vm.name + "' exists already (stormctl vm rack --destroy)");
        }
    }
    hypervisor.create_network(rack.network);
    std::vector<std::string> made;
    try {
        for (auto& vm : rack.nodes) {
            prepare_vm_files(vm, std::nullopt);
            try {
                if (start) {
                    hypervisor.run(vm);
                } else {
                    hypervisor.define(vm);
                }
            } catch (...) {
                std::error_code ignored;
                fs::remove_all(vm.state_dir, ignored);
                throw;
            }
            made.push_back(vm.name);
        }
    } catch (...) {
        for (const auto& name : made) {
            try {
                hypervisor.destroy(name);
            } catch (const std::exception&) {  // NOLINT(bugprone-empty-catch): the first error is the one to
                                               // report
            }
        }
        try {
            hypervisor.destroy_network(rack.network.name);
        } catch (const std::exception&) {  // NOLINT(bugprone-empty-catch): as above
        }
        throw;
    }
}

int start_rack(Hypervisor& hypervisor, const RackSpec& rack) {
    int started = 0;
    for (const auto& vm : rack.nodes) {
        if (hypervisor.start(vm.name)) {
            ++started;
        }
    }
    return started;
}

int destroy_rack(Hypervisor& hypervisor, const RackSpec& rack) {
    int removed = 0;
    for (const auto& vm : rack.nodes) {
        if (hypervisor.find(vm.name)) {
            hypervisor.destroy(vm.name);
            ++removed;
        }
    }
    hypervisor.destroy_network(rack.network.name);
    return removed;
}

void prepare_vm_files(VmSpec& spec, const std::optional<std::filesystem::path>& answers) {
    check_name(spec.name);
    if (!spec.iso.empty() && !fs::is_regular_file(spec.iso)) {
        throw Error(Errc::invalid_input, spec.iso.string() + ": no such ISO file");
    }
    if (answers && !fs::is_regular_file(*answers)) {
        throw Error(Errc::invalid_input, answers->string() + ": no such answer file");
    }
    if (fs::exists(spec.state_dir)) {
        throw Error(
            Errc::invalid_input,
            spec.state_dir.string() + " exists already: a VM named '" + spec.name + "' was not destroyed");
    }
    fs::create_directories(spec.state_dir);
    try {
        run_checked(Command{
            .argv = {
                "qemu-img",
                "create",
                "-q",
                "-f",
                "qcow2",
                spec.disk().string(),
                std::to_string(spec.disk_bytes)}});
        if (answers) {
            spec.answers_iso = spec.state_dir / "answers.iso";
            run_checked(Command{
                .argv = {
                    "xorriso",
                    "-as",
                    "mkisofs",
                    "-quiet",
                    "-r",
                    "-J",
                    "-V",
                    kAnswersVolumeLabel,
                    "-o",
                    spec.answers_iso->string(),
                    "-graft-points",
                    "answers.yaml=" + fs::absolute(*answers).string()}});
        }
    } catch (...) {
        std::error_code ignored;
        fs::remove_all(spec.state_dir, ignored);
        throw;
    }
}

}  // namespace stormnode::installer
