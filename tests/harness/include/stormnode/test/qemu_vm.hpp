// A qemu TCG virtual machine for the system tier: q35, the serial console read through a pipe, and
// wait_for(regex) that fails fast on a boot gone wrong (panic, emergency shell) with the log's tail.
#pragma once

#include <stormnode/common/child_process.hpp>

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <regex>
#include <string>
#include <string_view>
#include <vector>

namespace stormnode::test {

enum class Firmware { bios, uefi };

struct QemuDisk {
    std::filesystem::path file;
    std::string format = "qcow2";
};

struct QemuOptions {
    Firmware firmware = Firmware::bios;
    int memory_mib = 2048;
    int cpus = 1;                                 // two VMs at -smp 1 may run side by side on 2 cores
    std::vector<QemuDisk> disks;                  // virtio disks; the first boots first (bootindex 1)
    std::optional<std::filesystem::path> cdrom;   // boots after the disks
    std::filesystem::path work_dir;               // serial log, OVMF vars copy
    std::optional<std::filesystem::path> kernel;  // direct kernel boot (-kernel/-initrd/-append)
    std::filesystem::path initrd;
    std::string append;
    std::string name = "vm";
    // The NIC's -netdev (default: user networking); e.g. "tap,id=n0,ifname=tap0,script=no,downscript=no"
    // for a bridge the test made. The id must be n0.
    std::string netdev = "user,id=n0";
    std::string mac;  // empty: qemu's default
    // The NIC boots after the disks. BIOS: its iPXE ROM does PXE. UEFI: the NIC has no option ROM, so
    // OVMF's own virtio-net driver and PXE client boot it (client-arch 7), as a server's firmware does.
    bool network_boot = false;
};

// The firmware files this machine has, or why it cannot run the VM (for exit 77).
std::optional<std::string> qemu_unavailable(Firmware firmware);

// One line of the console matched the failure markers, or the VM ended, or the time ran out.
struct BootFailure : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// A VM's serial console as it arrives, scanned line by line: what QemuVm (qemu's stdio) and DomainConsole
// (a libvirt domain's log file) wait on.
class ConsoleText {
public:
    ConsoleText(std::string name, std::filesystem::path log_path);
    void append(std::string_view chunk);  // carriage returns dropped
    // The next whole line not scanned yet that matches `wanted`; nullopt when none has arrived. Throws
    // BootFailure when a line before it shows a failed boot (panic, emergency shell, failed install).
    std::optional<std::string> next_match(const std::regex& wanted, const std::string& pattern);
    // Waits for a line matching `pattern`: read_more(limit) waits up to `limit` for more text, appends it,
    // and returns false once the VM has ended. Throws BootFailure with the log's tail.
    std::string wait_for(
        const std::string& pattern,
        std::chrono::seconds timeout,
        const std::function<bool(std::chrono::milliseconds)>& read_more);
    [[nodiscard]] std::string tail(std::size_t lines = 40) const;
    [[nodiscard]] const std::filesystem::path& log_path() const noexcept { return log_path_; }

private:
    std::string name_;
    std::filesystem::path log_path_;
    std::string text_;         // everything read so far
    std::size_t scanned_ = 0;  // start of the first line not matched yet
};

class QemuVm {
public:
    explicit QemuVm(QemuOptions options);
    QemuVm(const QemuVm&) = delete;
    QemuVm& operator=(const QemuVm&) = delete;
    QemuVm(QemuVm&&) = delete;
    QemuVm& operator=(QemuVm&&) = delete;
    ~QemuVm();

    // Reads the console until a line matches `pattern` and returns that line; throws BootFailure with
    // the last lines of the log on a failure marker, when qemu exits, or after `timeout`.
    std::string wait_for(const std::string& pattern, std::chrono::seconds timeout);
    // Waits for qemu to end by itself (a guest poweroff); false on timeout.
    bool wait_exit(std::chrono::seconds timeout);
    // Pulls the plug: SIGKILL, no shutdown.
    void kill();

    [[nodiscard]] const std::filesystem::path& log_path() const noexcept { return console_.log_path(); }
    [[nodiscard]] std::string log_tail(std::size_t lines = 40) const { return console_.tail(lines); }
    [[nodiscard]] std::chrono::steady_clock::duration uptime() const;
    // qemu's process: its CPU time is the guest's cost on this machine (/proc/PID/stat).
    [[nodiscard]] pid_t pid() const noexcept { return qemu_->pid(); }

private:
    bool read_some(std::chrono::milliseconds timeout);  // false when qemu has ended

    QemuOptions options_;
    ConsoleText console_;
    std::chrono::steady_clock::time_point started_;
    std::unique_ptr<ChildProcess> qemu_;
};

// qemu-img create -f qcow2 [-b backing -F fmt] file [size]
void make_qcow2(
    const std::filesystem::path& file,
    const std::string& size,
    const std::filesystem::path& backing = {},
    const std::string& backing_format = "raw");

}  // namespace stormnode::test
