#include "stormnode/test/libvirt_rig.hpp"

#include "stormnode/test/child.hpp"

#include <stormnode/common/error.hpp>
#include <stormnode/common/subprocess.hpp>
#include <stormnode/common/temp_dir.hpp>

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <sys/inotify.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <array>
#include <cerrno>

namespace stormnode::test {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// Directories libvirt keeps state, sockets, logs and persistent definitions in: empty for the rig.
const std::array<const char*, 5> kPrivateDirs{
    "/run/libvirt", "/var/lib/libvirt", "/var/cache/libvirt", "/var/log/libvirt", "/etc/libvirt/qemu"};

// qemu as root without a security driver or ownership changes: the test's disks stay the test's files,
// wherever its build directory is (a 0700 home included). No cgroups of libvirt's: the VMs stay in the
// test's own cgroup, with the CPU share the test was given.
constexpr const char* kQemuConf =
    "user = \"root\"\n"
    "group = \"root\"\n"
    "dynamic_ownership = 0\n"
    "remember_owner = 0\n"
    "security_driver = \"none\"\n"
    "cgroup_controllers = [ ]\n";

// virtlogd rotates at 2 MiB by default: an install's console is longer, and the test follows one file.
constexpr const char* kVirtlogdConf = "max_size = 1073741824\nmax_backups = 1\n";

void mount_or_throw(
    const char* source, const fs::path& target, const char* type, unsigned long flags, const char* data) {
    check_errno(::mount(source, target.c_str(), type, flags, data), "mounting " + target.string());
}

}  // namespace

std::optional<std::string> PrivateLibvirt::unavailable() {
    for (const char* program : {"libvirtd", "virtlogd", "virsh"}) {
        if (!run({.argv = {program, "--version"}}).ok()) {
            return std::string(program) +
                   " is not installed (apt-get install libvirt-daemon libvirt-daemon-driver-qemu "
                   "libvirt-clients libvirt-daemon-system)";
        }
    }
    return std::nullopt;
}

PrivateLibvirt::PrivateLibvirt(const fs::path& work_dir) : work_dir_(work_dir) {
    fs::create_directories(work_dir_);
    check_errno(::unshare(CLONE_NEWNS), "unshare(CLONE_NEWNS)");
    // Nothing mounted here reaches the machine's namespace.
    mount_or_throw(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr);
    for (const fs::path dir : kPrivateDirs) {
        fs::create_directories(dir);
        mount_or_throw("tmpfs", dir, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755");
    }
    // The network driver writes each network's MAC list here; systemd-tmpfiles would have made it.
    fs::create_directories("/var/lib/libvirt/dnsmasq");
    write_file_atomic(work_dir_ / "qemu.conf", kQemuConf, 0600);
    write_file_atomic(work_dir_ / "virtlogd.conf", kVirtlogdConf, 0644);
    if (!fs::exists("/etc/libvirt/qemu.conf")) {
        throw Error(Errc::not_found, "/etc/libvirt/qemu.conf is missing (libvirt-daemon-driver-qemu)");
    }
    mount_or_throw((work_dir_ / "qemu.conf").c_str(), "/etc/libvirt/qemu.conf", nullptr, MS_BIND, nullptr);

    virtlogd_ = std::make_unique<ChildProcess>(ChildCommand{
        .argv =
            {"virtlogd",
             "--config",
             (work_dir_ / "virtlogd.conf").string(),
             "--pid-file",
             (work_dir_ / "virtlogd.pid").string()},
        .output = work_dir_ / "virtlogd.log",
        .die_with_parent = true});
    wait_for_file(
        "/run/libvirt/virtlogd-sock", *virtlogd_, "virtlogd", std::chrono::steady_clock::now() + 60s);
    // Its own pid file: the machine's libvirtd, if any, holds /run/libvirtd.pid.
    libvirtd_ = std::make_unique<ChildProcess>(ChildCommand{
        .argv = {"libvirtd", "--pid-file", (work_dir_ / "libvirtd.pid").string()},
        .output = work_dir_ / "libvirtd.log",
        .die_with_parent = true});
    wait_for_file(
        "/run/libvirt/libvirt-sock", *libvirtd_, "libvirtd", std::chrono::steady_clock::now() + 120s);
    // A call blocks until the drivers are initialised (qemu's capabilities probed: a minute under TCG).
    run_checked({.argv = {"virsh", "-c", kUri, "version"}, .timeout = 300s});
}

PrivateLibvirt::~PrivateLibvirt() {
    for (auto* daemon : {libvirtd_.get(), virtlogd_.get()}) {
        if (daemon != nullptr && daemon->running()) {
            daemon->terminate(10s);
        }
    }
}

pid_t PrivateLibvirt::domain_pid(const std::string& domain) {
    return static_cast<pid_t>(std::stol(read_file(fs::path("/run/libvirt/qemu") / (domain + ".pid"))));
}

DomainConsole::DomainConsole(const std::string& domain, const fs::path& serial_log)
    : console_(domain, serial_log),
      pid_(PrivateLibvirt::domain_pid(domain)),
      log_(::open(serial_log.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK)),
      inotify_(::inotify_init1(IN_CLOEXEC | IN_NONBLOCK)),
      pidfd_(static_cast<int>(::syscall(SYS_pidfd_open, pid_, 0))),
      started_(std::chrono::steady_clock::now()) {
    check_errno(log_.get(), "opening " + serial_log.string());
    check_errno(inotify_.get(), "inotify_init1");
    check_errno(pidfd_.get(), "pidfd_open for the qemu of " + domain);
    check_errno(
        ::inotify_add_watch(inotify_.get(), serial_log.c_str(), IN_MODIFY),
        "watching " + serial_log.string());
}

std::chrono::steady_clock::duration DomainConsole::uptime() const {
    return std::chrono::steady_clock::now() - started_;
}

bool DomainConsole::read_some(std::chrono::milliseconds timeout) {
    // Whatever is in the file first: the event for it may have come before the last read.
    std::array<char, 65536> buffer{};
    bool got_any = false;
    ssize_t got = 0;
    while ((got = ::read(log_.get(), buffer.data(), buffer.size())) > 0) {
        console_.append(std::string_view(buffer.data(), static_cast<std::size_t>(got)));
        got_any = true;
    }
    if (got_any) {
        return true;
    }
    std::array<pollfd, 2> fds{{{inotify_.get(), POLLIN, 0}, {pidfd_.get(), POLLIN, 0}}};
    const int ready = ::poll(fds.data(), fds.size(), static_cast<int>(timeout.count()));
    if (ready < 0 && errno != EINTR) {
        throw Error(Errc::io, "poll on the console log", std::error_code(errno, std::system_category()));
    }
    std::array<char, 4096> events{};
    while (::read(inotify_.get(), events.data(), events.size()) > 0) {
    }
    while ((got = ::read(log_.get(), buffer.data(), buffer.size())) > 0) {
        console_.append(std::string_view(buffer.data(), static_cast<std::size_t>(got)));
    }
    return (fds[1].revents & POLLIN) == 0;
}

std::string DomainConsole::wait_for(const std::string& pattern, std::chrono::seconds timeout) {
    return console_.wait_for(
        pattern, timeout, [this](std::chrono::milliseconds limit) { return read_some(limit); });
}

}  // namespace stormnode::test
