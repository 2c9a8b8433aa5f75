// `stormctl vm`: try a node without hardware — the ISO booted in a local libvirt VM (qemu driver, TCG).
// Each VM keeps its files (qcow2 disk, UEFI variables, answers ISO, serial log) in one directory that
// `vm destroy` removes with the domain.
#pragma once

#include <stormnode/common/c_handle.hpp>

#include <libvirt/libvirt.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace stormnode::installer {

// The volume label of the second cdrom that carries an answer file (as answers.yaml at its root).
inline constexpr const char* kAnswersVolumeLabel = "STORMANS";

struct VmSpec {
    std::string name;                 // the libvirt domain name
    std::filesystem::path iso;        // the stormnode ISO, first cdrom; empty: none (network boot)
    std::filesystem::path state_dir;  // this VM's files; removed by destroy
    std::uint64_t disk_bytes = 20ULL << 30;
    std::uint32_t memory_mib = 2048;
    std::uint32_t vcpus = 1;  // TCG: the machine's cores are shared with everything else
    bool uefi = false;
    std::optional<std::filesystem::path> answers_iso;  // second cdrom labelled STORMANS
    // A libvirt network (vm rack): the NIC is on it with this MAC and boots (PXE, qemu's iPXE ROM) after
    // the disk. Empty: user-mode networking, no network boot.
    std::string network;
    std::string mac;

    [[nodiscard]] std::filesystem::path disk() const { return state_dir / "disk.qcow2"; }
    [[nodiscard]] std::filesystem::path nvram() const { return state_dir / "uefi-vars.fd"; }
    [[nodiscard]] std::filesystem::path serial_log() const { return state_dir / "serial.log"; }
};

// The domain XML: type qemu (TCG), q35, virtio disk booted first (empty until installed), the ISO on a
// SATA cdrom, serial console on a pty logged to serial_log(), UEFI with Secure Boot disabled.
// Throws Error(invalid_input) for a name libvirt or a file name would not take.
std::string domain_xml(const VmSpec& spec);

// An isolated libvirt network for `vm rack`: a bridge with the provisioning server's address and
// nothing else — no forwarding, no DHCP or DNS of libvirt's own (pxe serve's dnsmasq answers there).
struct RackNetwork {
    std::string name;     // the libvirt network
    std::string bridge;   // the bridge it makes: what `pxe serve --interface` is given
    std::string address;  // the host's address on it (the inventory's network.server)
    int prefix = 24;      // from the inventory's subnet
};

// Throws Error(invalid_input) for a bridge name the kernel would not take or a bad address.
std::string network_xml(const RackNetwork& network);

struct VmInfo {
    std::string name;
    bool running = false;
    std::string console_pty;          // "/dev/pts/N" while running, else empty
    std::filesystem::path state_dir;  // empty for a domain stormctl did not create
};

using VirConnectHandle = CHandle<virConnect, virConnectClose>;
using VirDomainHandle = CHandle<virDomain, virDomainFree>;

// A connection to libvirt; every libvirt failure becomes Error(Errc::libvirt) with libvirt's message.
class Hypervisor {
public:
    explicit Hypervisor(const std::string& uri);  // "qemu:///system", "test:///default"

    // Defines and starts the domain (its files must exist: see prepare_vm_files); a domain that does not
    // start is undefined again. Throws Error(invalid_input) when the name is taken.
    void run(const VmSpec& spec);
    // Defines it without starting it (a rack waiting for its provisioning server).
    void define(const VmSpec& spec);
    // Starts a defined domain; false when it was running already. Throws Error(not_found) for an unknown
    // name.
    bool start(const std::string& name);
    [[nodiscard]] std::vector<VmInfo> list();
    [[nodiscard]] std::optional<VmInfo> find(const std::string& name);
    // Powers it off if running, undefines it (with its UEFI variables where the driver knows them) and
    // removes its state directory. Throws Error(not_found) for an unknown name.
    void destroy(const std::string& name);
    // Defines and starts a network; one of the same name must not exist.
    void create_network(const RackNetwork& network);
    // Stops and undefines it; false when there is none of that name.
    bool destroy_network(const std::string& name);

private:
    VmInfo info(virDomainPtr domain);
    VirDomainHandle lookup(const std::string& name);  // Error(not_found) when there is none
    VirConnectHandle connection_;
    std::string uri_;
};

// One node of a virtual rack: the domain spec for a network-booting VM (no ISO) on `network`.
VmSpec rack_node_spec(
    const std::string& rack,
    const std::string& hostname,
    const std::string& mac,
    const std::string& network,
    const std::filesystem::path& state_root);

// A virtual rack (stormctl vm rack): one network, one network-booting domain per inventory node.
struct RackSpec {
    RackNetwork network;
    std::vector<VmSpec> nodes;  // from rack_node_spec; disk and memory sizes set
};

// The rack from an inventory's provisioning network and nodes (MAC -> hostname; an empty hostname
// names the VM after its MAC): network "stormnode-<rack>", bridge `bridge` (empty: "sn-<rack>", cut
// to 15 characters), VMs "<rack>-<hostname>". Every XML is checked before anything is made.
struct RackNodeEntry {
    std::string mac;
    std::string hostname;
    bool uefi = false;
};

// MACs for `vm rack --unknown`: servers the inventory does not list (they get its `discovered` boot).
// 52:54:00:fe:00:01, :02, ... skipping any MAC in `taken` (any case).
std::vector<std::string> unknown_node_macs(std::size_t count, const std::vector<std::string>& taken);
RackSpec rack_spec(
    const std::string& rack,
    const std::string& bridge,
    const std::string& subnet,  // "10.10.0.0/24"
    const std::string& server,  // the host's address on the bridge
    const std::vector<RackNodeEntry>& nodes,
    const std::filesystem::path& state_root);

// Creates the network and every domain (disk files first) and starts them unless `start` is false; a
// failure part-way removes what this call made. Throws Error(invalid_input) when any of them exists
// already.
void create_rack(Hypervisor& hypervisor, RackSpec& rack, bool start = true);
// Starts the rack's domains that are not running (after create_rack without start, once pxe serve is up:
// a VM that finds no DHCP server on its first boot gives up). Returns how many it started; throws
// Error(not_found) when a domain of the rack does not exist.
int start_rack(Hypervisor& hypervisor, const RackSpec& rack);
// Removes the rack's domains (with their files) and its network; what does not exist is skipped.
// Returns how many domains it removed.
int destroy_rack(Hypervisor& hypervisor, const RackSpec& rack);

// Creates spec.state_dir with the qcow2 disk (qemu-img) and, when answers is set, the STORMANS ISO
// (xorriso); sets spec.answers_iso. Throws Error(invalid_input) for a missing ISO or answer file.
void prepare_vm_files(VmSpec& spec, const std::optional<std::filesystem::path>& answers);

}  // namespace stormnode::installer
