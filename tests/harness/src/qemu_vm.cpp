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

ConsoleText::ConsoleText(std::string name, fs::path log_path)
    : name_(std::move(name)),
      log_path_(std::move(log_path)) {}

void ConsoleText::append(std::string_view chunk) {
    for (const char c : chunk) {
        if (c != '\r') {
            text_ += c;
        }
    }
}

std::optional<std::string> ConsoleText::next_match(const std::regex& wanted, const std::string& pattern) {
    // Whole lines only: a marker split across two reads is still seen.
    std::size_t end = 0;
    while ((end = text_.find('\n', scanned_)) != std::string::npos) {
        std::string line = text_.substr(scanned_, end - scanned_);
        scanned_ = end + 1;
        if (std::regex_search(line, wanted)) {
            return line;
        }
        for (const auto marker : kFailureMarkers) {
            if (line.find(marker) != std::string::npos) {
                throw BootFailure(
                    name_ + ": '" + std::string(marker) + "' on the console while waiting for '" + pattern +
                    "' (" + log_path_.string() + "):\n" + tail());
            }
        }
    }
    return std::nullopt;
}

std::string ConsoleText::wait_for(
    const std::string& pattern,
    std::chrono::seconds timeout,
    const std::function<bool(std::chrono::milliseconds)>& read_more) {
    const std::regex wanted(pattern);
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        if (auto line = next_match(wanted, pattern)) {
            return *line;
        }
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left <= 0ms) {
            throw BootFailure(
                name_ + ": no '" + pattern + "' on the console within " + std::to_string(timeout.count()) +
                " s (" + log_path_.string() + "):\n" + tail());
        }
        if (!read_more(std::min(left, std::chrono::milliseconds(1000)))) {
            (void)read_more(0ms);  // what it wrote last
            if (auto line = next_match(wanted, pattern)) {
                return *line;
            }
            throw BootFailure(
                name_ + ": the VM ended while waiting for '" + pattern + "' (" + log_path_.string() + "):\n" +
                tail());
        }
    }
}

std::string ConsoleText::tail(std::size_t lines) const {
    std::size_t pos = text_.size();
    for (std::size_t i = 0; i <= lines && pos > 0; ++i) {
        pos = text_.rfind('\n', pos - 1);
        if (pos == std::string::npos) {
            pos = 0;
            break;
        }
    }
    return text_.substr(pos);
}

QemuVm::QemuVm(QemuOptions options)
    : options_(std::move(options)),
      console_(options_.name, options_.work_dir / (options_.name + ".serial.log")) {
    fs::create_directories(options_.work_dir);
    const auto& log_path = console_.log_path();
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
    std::ofstream(log_path, std::ios::trunc) << "# " << format_argv(argv) << "\n";
    started_ = std::chrono::steady_clock::now();
    qemu_ = std::make_unique<ChildProcess>(
        ChildCommand{.argv = argv, .pipe_output = true, .die_with_parent = true});
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
            const std::string_view chunk(buffer.data(), static_cast<std::size_t>(got));
            console_.append(chunk);
            std::ofstream(console_.log_path(), std::ios::app) << chunk;
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

std::string QemuVm::wait_for(const std::string& pattern, std::chrono::seconds timeout) {
    return console_.wait_for(
        pattern, timeout, [this](std::chrono::milliseconds limit) { return read_some(limit); });
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
