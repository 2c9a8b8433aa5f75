#include "stormnode/test/nspawn_container.hpp"

#include "stormnode/test/bus.hpp"
#include "stormnode/test/child.hpp"

#include <stormnode/common/error.hpp>

#include <poll.h>
#include <signal.h>
#include <sys/inotify.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace stormnode::test {
namespace fs = std::filesystem;
namespace {

constexpr const char* kBusSocket = "system_bus_socket";

std::string unique_name() {
    static std::atomic<int> counter{0};
    return "stormtest-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
}

bool in_path(const std::string& program) {
    const char* path = std::getenv("PATH");  // NOLINT(concurrency-mt-unsafe)
    std::istringstream dirs(path != nullptr ? path : "/usr/sbin:/usr/bin:/sbin:/bin");
    std::string dir;
    while (std::getline(dirs, dir, ':')) {
        if (!dir.empty() && ::access((fs::path(dir) / program).c_str(), X_OK) == 0) {
            return true;
        }
    }
    return false;
}

std::chrono::milliseconds left_until(std::chrono::steady_clock::time_point deadline) {
    return std::max(
        std::chrono::milliseconds(0),
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()));
}

std::string tail_lines(const std::string& text, std::size_t lines) {
    std::size_t start = text.size();
    for (std::size_t n = 0; n <= lines && start > 0; ++n) {
        const auto nl = text.rfind('\n', start - 1);
        if (nl == std::string::npos) {
            return text;
        }
        start = nl;
    }
    return start < text.size() ? text.substr(start + 1) : std::string();
}

}  // namespace

std::optional<std::string> container_tier_unavailable() {
    if (::geteuid() != 0) {
        return "needs root (systemd-nspawn boots a container)";
    }
    if (!in_path("systemd-nspawn")) {
        return "systemd-nspawn is not installed (apt-get install systemd-container)";
    }
    if (!in_path("nsenter")) {
        return "nsenter is not installed (util-linux)";
    }
    const char* image = std::getenv("STORMNODE_TEST_ROOTFS");  // NOLINT(concurrency-mt-unsafe)
    if ((image == nullptr || *image == '\0') && !in_path("mmdebstrap")) {
        return "mmdebstrap is not installed and STORMNODE_TEST_ROOTFS is not set";
    }
    return std::nullopt;
}

NspawnContainer::NspawnContainer(ContainerOptions options) : options_(std::move(options)) {
    if (options_.name.empty()) {
        options_.name = unique_name();
    }
    const auto start = std::chrono::steady_clock::now();
    const auto deadline = start + options_.boot_timeout;
    host_dir_ = std::make_unique<TempDir>("stormnode-nspawn");
    fs::create_directories(host_dir_->path() / "dbus");

    // Each container in its own cgroup on both hierarchies: without a host systemd they would share
    // one, and one container's shutdown could tear down another (status=219/CGROUP).
    for (const char* hierarchy : {"systemd", "unified"}) {
        const fs::path cgroup = fs::path("/sys/fs/cgroup") / hierarchy / ("nspawn-" + options_.name);
        fs::create_directories(cgroup);
        cgroups_.push_back(cgroup);
    }
    std::error_code ignored;
    fs::remove_all(fs::path("/run/systemd/nspawn/propagate") / options_.name, ignored);

    std::vector<std::string> argv{
        "systemd-nspawn",
        "-D",
        options_.rootfs.string(),
        "-b",
        "--register=no",
        "--keep-unit",
        "--volatile=overlay",
        "--console=pipe",
        "--machine=" + options_.name,
        "--bind=" + (host_dir_->path() / "dbus").string() + ":/run/dbus"};
    if (!options_.network_namespace.empty()) {
        argv.push_back("--network-namespace-path=" + options_.network_namespace.string());
        // The namespace is the container's own, as with --private-network (which grants this itself):
        // a VIP (IPaddr2, keepalived) is added and removed inside it.
        argv.push_back("--capability=CAP_NET_ADMIN");
    }
    // --private-network makes the namespace's sysctls (/proc/sys/net) writable by itself; a namespace
    // given by path needs nspawn told, or a role's kernel settings (lb's non-local bind) are refused.
    std::map<std::string, std::string> env;
    if (!options_.network_namespace.empty()) {
        env["SYSTEMD_NSPAWN_API_VFS_WRITABLE"] = "network";
    }
    for (const auto& bind : options_.binds) {
        argv.push_back(
            (bind.read_only ? "--bind-ro=" : "--bind=") + bind.host.string() + ":" + bind.container);
    }
    try {
        nspawn_ = std::make_unique<Child>(ChildOptions{
            .argv = argv, .env = env, .output = host_dir_->path() / "console.log", .cgroups = cgroups_});
        wait_for_bus_socket(deadline);
        find_leader();
        wait_until_running(deadline);
    } catch (const Error& e) {
        const std::string message = e.what();
        fail("booting " + options_.rootfs.string() + " as " + options_.name + ": " + message);
    }
    boot_time_ =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
}

NspawnContainer::~NspawnContainer() {
    try {
        stop();
    } catch (...) {  // NOLINT(bugprone-empty-catch): nothing more to do while destroying
    }
}

void NspawnContainer::fail(const std::string& what) {
    const std::string log = tail_lines(console_log(), 30);
    try {
        stop(std::chrono::seconds(10));
    } catch (...) {  // NOLINT(bugprone-empty-catch): the boot error below is the one worth reporting
    }
    throw Error(Errc::io, what + (log.empty() ? "" : "\n--- console (last lines) ---\n" + log));
}

void NspawnContainer::wait_for_bus_socket(std::chrono::steady_clock::time_point deadline) {
    // dbus.socket creates the socket in the bind-mounted directory: an inotify event on the host.
    wait_for_file(host_dir_->path() / "dbus" / kBusSocket, *nspawn_, "systemd-nspawn", deadline);
}

void NspawnContainer::find_leader() {
    // nspawn's only child is the container's PID 1 (the outer child has exited by the time dbus.socket
    // listens). Check that it is PID 1 of its namespace.
    const auto children = fs::path("/proc") / std::to_string(nspawn_->pid()) / "task" /
                          std::to_string(nspawn_->pid()) / "children";
    std::istringstream pids(read_file(children));
    pid_t pid = -1;
    while (pids >> pid) {
        std::istringstream status(read_file(fs::path("/proc") / std::to_string(pid) / "status"));
        std::string line;
        while (std::getline(status, line)) {
            if (line.rfind("NSpid:", 0) == 0 && line.size() >= 2 && line.substr(line.size() - 2) == "\t1") {
                leader_ = pid;
                return;
            }
        }
    }
    throw Error(
        Errc::not_found,
        "no container PID 1 among the children of systemd-nspawn " + std::to_string(nspawn_->pid()));
}

Bus NspawnContainer::connect_when_listening(std::chrono::steady_clock::time_point deadline) {
    // The socket file appears at bind(), a moment before listen(); no event marks listen(), so a
    // refused connection is retried, waiting on nspawn's pidfd (it may die meanwhile) for 5 ms a time.
    for (;;) {
        try {
            return connect_bus(bus_address());
        } catch (const Error& e) {
            if (e.cause() != std::errc::connection_refused || left_until(deadline).count() == 0) {
                throw;
            }
        }
        pollfd p{nspawn_->pidfd(), POLLIN, 0};
        if (::poll(&p, 1, 5) > 0) {
            const auto status = nspawn_->wait(std::chrono::milliseconds(0));
            throw Error(
                Errc::io,
                "systemd-nspawn " + (status ? describe_wait_status(*status) : "ended") + " during boot");
        }
    }
}

void NspawnContainer::wait_until_running(std::chrono::steady_clock::time_point deadline) {
    // Bounded retry: the bus may answer slowly while the container is still starting.
    for (int attempt = 0;; ++attempt) {
        try {
            Bus bus = connect_when_listening(deadline);
            sd_bus_set_method_call_timeout(
                bus.get(),
                static_cast<uint64_t>(std::max<long long>(1, left_until(deadline).count())) * 1000);
            SignalRecorder finished(
                bus.get(),
                "type='signal',sender='org.freedesktop.systemd1',interface='org.freedesktop.systemd1.Manager'"
                ","
                "member='StartupFinished'");
            systemd1::subscribe(bus.get());
            boot_state_ = get_property(
                bus.get(), systemd1::kService, systemd1::kPath, systemd1::kManager, "SystemState");
            if (boot_state_ == "initializing" || boot_state_ == "starting") {
                finished.wait_for(
                    [](const Signal&) { return true; }, left_until(deadline), "systemd's StartupFinished");
                boot_state_ = get_property(
                    bus.get(), systemd1::kService, systemd1::kPath, systemd1::kManager, "SystemState");
            }
            if (boot_state_ != "running" && boot_state_ != "degraded") {
                throw Error(Errc::io, "systemd in the container is '" + boot_state_ + "'");
            }
            return;
        } catch (const Error& e) {
            if (e.code() != Errc::dbus || attempt >= 3 || left_until(deadline).count() == 0) {
                throw;
            }
        }
    }
}

std::string NspawnContainer::bus_address() const {
    return "unix:path=" + (host_dir_->path() / "dbus" / kBusSocket).string();
}

fs::path NspawnContainer::host_path(const std::string& container_path) const {
    return fs::path("/proc") / std::to_string(leader_) / "root" / fs::path(container_path).relative_path();
}

std::string NspawnContainer::console_log() const {
    if (!host_dir_) {
        return {};
    }
    try {
        return read_file(host_dir_->path() / "console.log");
    } catch (const Error&) {
        return {};
    }
}

ProcessResult NspawnContainer::exec(
    const std::vector<std::string>& argv, std::chrono::milliseconds timeout) const {
    Command command;
    command.argv = {"nsenter", "-t", std::to_string(leader_), "-a", "--"};
    command.argv.insert(command.argv.end(), argv.begin(), argv.end());
    command.timeout = timeout;
    return run(command);
}

ProcessResult NspawnContainer::exec_checked(
    const std::vector<std::string>& argv, std::chrono::milliseconds timeout) const {
    Command command;
    command.argv = {"nsenter", "-t", std::to_string(leader_), "-a", "--"};
    command.argv.insert(command.argv.end(), argv.begin(), argv.end());
    command.timeout = timeout;
    return run_checked(command);
}

void NspawnContainer::write_file(
    const std::string& container_path, std::string_view content, unsigned mode) const {
    const auto path = host_path(container_path);
    fs::create_directories(path.parent_path());
    write_file_atomic(path, content, mode);
}

void NspawnContainer::copy_in(
    const fs::path& host_file, const std::string& container_path, unsigned mode) const {
    write_file(container_path, read_file(host_file), mode);
}

pid_t NspawnContainer::host_pid(pid_t container_pid) const {
    // Every process of the container is a descendant of its PID 1; NSpid's last field is its PID inside.
    for (const auto& entry : fs::directory_iterator("/proc")) {
        const auto name = entry.path().filename().string();
        if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) {
            continue;
        }
        std::ifstream status(entry.path() / "status");
        std::string line;
        while (std::getline(status, line)) {
            if (line.rfind("NSpid:", 0) != 0) {
                continue;
            }
            std::istringstream fields(line.substr(6));
            std::vector<pid_t> ids;
            pid_t id = 0;
            while (fields >> id) {
                ids.push_back(id);
            }
            if (ids.size() == 2 && ids[1] == container_pid) {
                // Same PID namespace as our container's PID 1?
                std::error_code ec;
                const auto ns = fs::read_symlink(entry.path() / "ns/pid", ec);
                const auto ours =
                    fs::read_symlink(fs::path("/proc") / std::to_string(leader_) / "ns/pid", ec);
                if (!ec && ns == ours) {
                    return ids[0];
                }
            }
            break;
        }
    }
    throw Error(
        Errc::not_found, "no process " + std::to_string(container_pid) + " in container " + options_.name);
}

std::string NspawnContainer::stop(std::chrono::milliseconds timeout) {
    if (stopped_) {
        return *stopped_;
    }
    std::string how = "not started";
    if (nspawn_) {
        // nspawn turns SIGTERM into an orderly shutdown of the container's systemd.
        nspawn_->signal(SIGTERM);
        auto status = nspawn_->wait(timeout);
        if (!status) {
            // Killing nspawn alone would orphan the container: SIGKILL to its PID 1 ends the whole PID
            // namespace first.
            if (leader_ > 0) {
                ::kill(leader_, SIGKILL);
            }
            nspawn_->signal(SIGKILL);
            status = nspawn_->wait(std::chrono::seconds(10));
            how = "killed after " + std::to_string(timeout.count()) + " ms";
        } else {
            how = describe_wait_status(*status);
        }
    }
    return finish(how);
}

std::string NspawnContainer::kill() {
    if (!stopped_ && leader_ > 0) {
        ::kill(leader_, SIGKILL);
        // nspawn sees its child die and exits by itself; if it does not, stop() below ends it.
        if (const auto status = nspawn_->wait(std::chrono::seconds(30))) {
            return finish("killed: " + describe_wait_status(*status));
        }
    }
    return stop();
}

std::string NspawnContainer::finish(const std::string& how) {
    leader_ = -1;
    remove_cgroups();
    std::error_code ignored;
    fs::remove_all(fs::path("/run/systemd/nspawn/propagate") / options_.name, ignored);
    host_dir_.reset();
    stopped_ = how;
    return how;
}

void NspawnContainer::empty_cgroup() noexcept {
    // Whatever is left in this container's cgroups (only processes of this container can be there) is
    // killed, and cgroup.events ("populated 0") says when they are gone.
    const auto unified = std::find_if(cgroups_.begin(), cgroups_.end(), [](const fs::path& p) {
        return p.parent_path().filename() == "unified";
    });
    if (unified == cgroups_.end()) {
        return;
    }
    const auto events = *unified / "cgroup.events";
    UniqueFd inotify(::inotify_init1(IN_CLOEXEC | IN_NONBLOCK));
    if (!inotify || ::inotify_add_watch(inotify.get(), events.c_str(), IN_MODIFY) < 0) {
        return;
    }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    for (bool killed = false;;) {
        std::string text;
        try {
            text = read_file(events);
        } catch (const Error&) {
            return;
        }
        if (text.find("populated 0") != std::string::npos) {
            return;
        }
        if (!killed) {
            for (const auto& root : cgroups_) {
                std::error_code ec;
                for (fs::recursive_directory_iterator it(root, ec), end; !ec && it != end; it.increment(ec)) {
                    if (it->path().filename() != "cgroup.procs") {
                        continue;
                    }
                    std::ifstream pids(it->path());
                    for (pid_t pid = 0; pids >> pid;) {
                        ::kill(pid, SIGKILL);
                    }
                }
            }
            killed = true;
        }
        pollfd p{inotify.get(), POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(left_until(deadline).count())) <= 0) {
            return;
        }
        std::array<char, 4096> buffer{};
        while (::read(inotify.get(), buffer.data(), buffer.size()) > 0) {
        }
    }
}

void NspawnContainer::remove_cgroups() noexcept {
    empty_cgroup();
    for (const auto& root : cgroups_) {
        std::error_code ec;
        if (!fs::exists(root, ec)) {
            continue;
        }
        std::vector<fs::path> dirs;
        for (fs::recursive_directory_iterator it(root, ec), end; !ec && it != end; it.increment(ec)) {
            if (it->is_directory(ec) && !it->is_symlink(ec)) {
                dirs.push_back(it->path());
            }
        }
        // Deepest first: a cgroup with children cannot be removed.
        std::sort(dirs.begin(), dirs.end(), [](const fs::path& a, const fs::path& b) {
            return std::distance(a.begin(), a.end()) > std::distance(b.begin(), b.end());
        });
        dirs.push_back(root);
        for (const auto& dir : dirs) {
            ::rmdir(dir.c_str());
        }
    }
    cgroups_.clear();
}

}  // namespace stormnode::test
