#include "stormnode/test/qemu_vm.hpp"

#include <stormnode/common/error.hpp>
#include <stormnode/common/subprocess.hpp>

#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <fstream>

namespace stormnode::test {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

const fs::path kOvmfCode = "/usr/share/OVMF/OVMF_CODE_4M.fd";
const fs::path kOvmfVars = "/usr/share/OVMF/OVMF_VARS_4M.fd";

// A boot that went wrong says so on the console long before any timeout.
const std::array<std::string_view, 7> kFailureMarkers{
    "Kernel panic",
    "Entering emergency mode",
    "Press Enter for maintenance",
    "Failed to start storm-",
    "dracut Warning: Could not boot",
    "stormnode-install: failed",
    "You are in emergency mode"};

}  // namespace

std::optional<std::string> qemu_unavailable(Firmware firmware) {
    if (!run({.argv = {"qemu-system-x86_64", "--version"}}).ok()) {
        return "qemu-system-x86_64 is not installed (apt-get install qemu-system-x86 qemu-utils ovmf)";
    }
    if (firmware == Firmware::uefi && (!fs::exists(kOvmfCode) || !fs::exists(kOvmfVars))) {
        return "OVMF is not installed (" + kOvmfCode.string() + ")";
    }
    return std::nullopt;
}

QemuVm::QemuVm(QemuOptions options) : options_(std::move(options)) {
    fs::create_directories(options_.work_dir);
    log_path_ = options_.work_dir / (options_.name + ".serial.log");
    std::vector<std::string> argv{
        "qemu-system-x86_64",
        "-machine",
        "q35",
        "-accel",
        "tcg",
        "-cpu",
        "max",
        "-m",
        std::to_string(options_.memory_mib),
        "-smp",
        std::to_string(options_.cpus),
        "-display",
        "none",
        "-serial",
        "stdio",
        "-monitor",
        "none",
        "-no-user-config",
        "-nodefaults",
        "-netdev",
        options_.netdev};
    if (options_.firmware == Firmware::uefi) {
        // A fresh copy of the variable store per VM: boot entries of one run never leak into the next.
        const fs::path vars = options_.work_dir / (options_.name + ".OVMF_VARS.fd");
        fs::copy_file(kOvmfVars, vars, fs::copy_options::overwrite_existing);
        argv.insert(
            argv.end(),
            {"-drive",
             "if=pflash,format=raw,unit=0,readonly=on,file=" + kOvmfCode.string(),
             "-drive",
             "if=pflash,format=raw,unit=1,file=" + vars.string()});
    }
    int bootindex = 1;
    for (std::size_t i = 0; i < options_.disks.size(); ++i) {
        const std::string id = "disk" + std::to_string(i);
        argv.insert(
            argv.end(),
            {"-drive",
             "if=none,id=" + id + ",format=" + options_.disks[i].format +
                 ",file=" + options_.disks[i].file.string(),
             "-device",
             "virtio-blk-pci,drive=" + id + ",bootindex=" + std::to_string(bootindex++)});
    }
    if (options_.cdrom) {
        argv.insert(
            argv.end(),
            {"-drive",
             "if=none,id=cd0,media=cdrom,readonly=on,file=" + options_.cdrom->string(),
             "-device",
             "ide-cd,drive=cd0,bootindex=" + std::to_string(bootindex++)});
    }
    std::string nic = "virtio-net-pci,netdev=n0";
    if (!options_.mac.empty()) {
        nic += ",mac=" + options_.mac;
    }
    if (options_.network_boot) {
        nic += ",bootindex=" + std::to_string(bootindex++);
        if (options_.firmware == Firmware::uefi) {
            // With qemu's iPXE ROM, OVMF would boot iPXE (user class "iPXE") instead of its own PXE.
            nic += ",romfile=";
        }
    }
    argv.insert(argv.end(), {"-device", nic});
    if (options_.kernel) {
        argv.insert(
            argv.end(),
            {"-kernel",
             options_.kernel->string(),
             "-initrd",
             options_.initrd.string(),
             "-append",
             options_.append});
    }
    std::ofstream(log_path_, std::ios::trunc) << "# " << format_argv(argv) << "\n";
    started_ = std::chrono::steady_clock::now();
    qemu_ = std::make_unique<ChildProcess>(ChildCommand{.argv = argv, .pipe_output = true, .die_with_parent = true});
}

QemuVm::~QemuVm() {
    if (qemu_ && qemu_->running()) {
        qemu_->terminate(5s);
    }
}

std::chrono::steady_clock::duration QemuVm::uptime() const {
    return std::chrono::steady_clock::now() - started_;
}

bool QemuVm::read_some(std::chrono::milliseconds timeout) {
    std::array<pollfd, 2> fds{{{qemu_->output_fd(), POLLIN, 0}, {qemu_->pidfd(), POLLIN, 0}}};
    const int n = ::poll(fds.data(), fds.size(), static_cast<int>(timeout.count()));
    if (n < 0 && errno != EINTR) {
        throw Error(Errc::io, "poll on the qemu console", std::error_code(errno, std::system_category()));
    }
    bool more = true;
    std::array<char, 65536> buffer{};
    for (;;) {
        const ssize_t got = ::read(qemu_->output_fd(), buffer.data(), buffer.size());
        if (got > 0) {
            std::string chunk(buffer.data(), static_cast<std::size_t>(got));
            chunk.erase(std::remove(chunk.begin(), chunk.end(), '\r'), chunk.end());
            log_ += chunk;
            std::ofstream(log_path_, std::ios::app) << chunk;
            continue;
        }
        if (got == 0) {
            more = false;  // qemu closed its output: it has ended
        }
        break;
    }
    if ((fds[1].revents & POLLIN) != 0 && !more) {
        qemu_->wait(0ms);
    }
    return more || qemu_->running();
}

std::optional<std::string> QemuVm::failure_in(const std::string& line) const {
    for (const auto marker : kFailureMarkers) {
        if (line.find(marker) != std::string::npos) {
            return std::string(marker);
        }
    }
    return std::nullopt;
}

std::string QemuVm::log_tail(std::size_t lines) const {
    std::size_t pos = log_.size();
    for (std::size_t i = 0; i <= lines && pos > 0; ++i) {
        pos = log_.rfind('\n', pos - 1);
        if (pos == std::string::npos) {
            pos = 0;
            break;
        }
    }
    return log_.substr(pos);
}

std::string QemuVm::wait_for(const std::string& pattern, std::chrono::seconds timeout) {
    const std::regex wanted(pattern);
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        // Whole lines only: a marker split across two reads is still seen.
        std::size_t end = 0;
        while ((end = log_.find('\n', scanned_)) != std::string::npos) {
            const std::string line = log_.substr(scanned_, end - scanned_);
            scanned_ = end + 1;
            if (std::regex_search(line, wanted)) {
                return line;
            }
            if (const auto marker = failure_in(line)) {
                throw BootFailure(
                    options_.name + ": '" + *marker + "' on the console while waiting for '" + pattern +
                    "' (" + log_path_.string() + "):\n" + log_tail());
            }
        }
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left <= 0ms) {
            throw BootFailure(
                options_.name + ": no '" + pattern + "' on the console within " +
                std::to_string(timeout.count()) + " s (" + log_path_.string() + "):\n" + log_tail());
        }
        if (!read_some(std::min(left, std::chrono::milliseconds(1000)))) {
            throw BootFailure(
                options_.name + ": qemu ended while waiting for '" + pattern + "' (" + log_path_.string() +
                "):\n" + log_tail());
        }
    }
}

bool QemuVm::wait_exit(std::chrono::seconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
        if (!read_some(1000ms)) {
            return true;
        }
    }
    return false;
}

void QemuVm::kill() {
    qemu_->signal(SIGKILL);
    qemu_->wait(10s);
}

void make_qcow2(
    const fs::path& file,
    const std::string& size,
    const fs::path& backing,
    const std::string& backing_format) {
    std::vector<std::string> argv{"qemu-img", "create", "-q", "-f", "qcow2"};
    if (!backing.empty()) {
        argv.insert(argv.end(), {"-b", fs::absolute(backing).string(), "-F", backing_format});
    }
    argv.push_back(file.string());
    if (!size.empty()) {
        argv.push_back(size);
    }
    run_checked({.argv = argv});
}

}  // namespace stormnode::test
