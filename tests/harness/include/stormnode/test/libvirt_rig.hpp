// A libvirtd of the test's own, for tests that drive `stormctl vm` end to end: its daemons see only the
// test's namespaces, so its networks and bridges live in the test's network namespace and nothing it
// defines touches the machine's own libvirt.
#pragma once

#include "qemu_vm.hpp"

#include <stormnode/common/c_handle.hpp>
#include <stormnode/common/child_process.hpp>

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

namespace stormnode::test {

class PrivateLibvirt {
public:
    static constexpr const char* kUri = "qemu:///system";

    // Why this machine cannot run it (no libvirtd, virtlogd or virsh), for exit 77.
    static std::optional<std::string> unavailable();

    // Moves the calling process into a mount namespace of its own, with empty /run/libvirt,
    // /var/lib/libvirt, /var/cache/libvirt, /var/log/libvirt and /etc/libvirt/qemu, and this rig's
    // qemu.conf (qemu runs as root without a security driver: the test's files may be anywhere); then
    // starts virtlogd and libvirtd (they die with the thread that made this) and waits until libvirt
    // answers. Call it in the network namespace the VMs should use, before the test starts any thread.
    explicit PrivateLibvirt(const std::filesystem::path& work_dir);
    PrivateLibvirt(const PrivateLibvirt&) = delete;
    PrivateLibvirt& operator=(const PrivateLibvirt&) = delete;
    PrivateLibvirt(PrivateLibvirt&&) = delete;
    PrivateLibvirt& operator=(PrivateLibvirt&&) = delete;
    ~PrivateLibvirt();  // libvirtd, then virtlogd; the caller destroys its domains first

    // The qemu process of a running domain (libvirt's pid file).
    [[nodiscard]] static pid_t domain_pid(const std::string& domain);

private:
    std::filesystem::path work_dir_;
    std::unique_ptr<ChildProcess> virtlogd_;
    std::unique_ptr<ChildProcess> libvirtd_;
};

// The serial console of a running libvirt domain, read from the log file virtlogd writes, followed
// with inotify; the domain's end is seen through its qemu's pidfd.
class DomainConsole {
public:
    DomainConsole(const std::string& domain, const std::filesystem::path& serial_log);
    // As QemuVm::wait_for: the matching line; BootFailure on a failure marker, the VM's end or timeout.
    std::string wait_for(const std::string& pattern, std::chrono::seconds timeout);
    [[nodiscard]] std::string log_tail(std::size_t lines = 40) const { return console_.tail(lines); }
    [[nodiscard]] pid_t pid() const noexcept { return pid_; }
    [[nodiscard]] std::chrono::steady_clock::duration uptime() const;

private:
    bool read_some(std::chrono::milliseconds timeout);  // false when qemu has ended

    ConsoleText console_;
    pid_t pid_;
    UniqueFd log_;
    UniqueFd inotify_;
    UniqueFd pidfd_;
    std::chrono::steady_clock::time_point started_;
};

}  // namespace stormnode::test
