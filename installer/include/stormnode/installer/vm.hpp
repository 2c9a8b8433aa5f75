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
    std::filesystem::path iso;        // the stormnode ISO, first cdrom
    std::filesystem::path state_dir;  // this VM's files; removed by destroy
    std::uint64_t disk_bytes = 20ULL << 30;
    std::uint32_t memory_mib = 2048;
    std::uint32_t vcpus = 1;  // TCG: the machine's cores are shared with everything else
    bool uefi = false;
    std::optional<std::filesystem::path> answers_iso;  // second cdrom labelled STORMANS

    [[nodiscard]] std::filesystem::path disk() const { return state_dir / "disk.qcow2"; }
    [[nodiscard]] std::filesystem::path nvram() const { return state_dir / "uefi-vars.fd"; }
    [[nodiscard]] std::filesystem::path serial_log() const { return state_dir / "serial.log"; }
};

// The domain XML: type qemu (TCG), q35, virtio disk booted first (empty until installed), the ISO on a
// SATA cdrom, serial console on a pty logged to serial_log(), UEFI with Secure Boot disabled.
// Throws Error(invalid_input) for a name libvirt or a file name would not take.
std::string domain_xml(const VmSpec& spec);

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
    [[nodiscard]] std::vector<VmInfo> list();
    [[nodiscard]] std::optional<VmInfo> find(const std::string& name);
    // Powers it off if running, undefines it (with its UEFI variables where the driver knows them) and
    // removes its state directory. Throws Error(not_found) for an unknown name.
    void destroy(const std::string& name);

private:
    VmInfo info(virDomainPtr domain);
    VirConnectHandle connection_;
    std::string uri_;
};

// Creates spec.state_dir with the qcow2 disk (qemu-img) and, when answers is set, the STORMANS ISO
// (xorriso); sets spec.answers_iso. Throws Error(invalid_input) for a missing ISO or answer file.
void prepare_vm_files(VmSpec& spec, const std::optional<std::filesystem::path>& answers);

}  // namespace stormnode::installer
