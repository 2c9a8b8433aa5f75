#include "stormnode/common/spawn.hpp"

#include <stormnode/common/error.hpp>
#include <stormnode/common/strings.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdlib>
#include <string_view>
#include <system_error>

extern char** environ;  // NOLINT(readability-redundant-declaration)

namespace stormnode {
namespace {

// The setup step that failed in the child, sent to the parent with errno through a close-on-exec pipe
// (end of file on that pipe means the exec happened).
enum class ChildStep : int { process_group, session, death_signal, cgroup, stdio, cwd, exec };

struct ChildFailure {
    ChildStep step = ChildStep::exec;
    int index = 0;  // which cgroup, for ChildStep::cgroup
    int error = 0;  // errno
};

// What the child reads after fork: arrays the parent built and plain values, nothing it must allocate.
struct ChildPlan {
    char* const* argv = nullptr;
    char* const* envp = nullptr;
    char* const* candidates = nullptr;     // the paths execvp would try, in order; null-terminated
    char** script_argv = nullptr;          // {"/bin/sh", <candidate>, argv[1]..., nullptr}
    std::array<int, 3> stdio{-1, -1, -1};  // the fd for 0, 1, 2; -1: leave that stream alone
    const char* cwd = nullptr;
    ProcessGroup group = ProcessGroup::own_group;
    bool die_with_parent = false;
    pid_t parent = -1;
    const int* cgroup_procs = nullptr;
    std::size_t cgroup_count = 0;
    int report_fd = -1;
};

struct Pipe {
    UniqueFd read_end;
    UniqueFd write_end;
};

Pipe make_pipe() {
    std::array<int, 2> fds{};
    check_errno(::pipe2(fds.data(), O_CLOEXEC), "creating a pipe");
    return Pipe{UniqueFd(fds[0]), UniqueFd(fds[1])};
}

std::vector<std::string> merged_environment(const std::map<std::string, std::string>& extra) {
    std::vector<std::string> result;
    for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
        const std::string_view text(*entry);
        if (!extra.contains(std::string(text.substr(0, text.find('='))))) {
            result.emplace_back(text);
        }
    }
    for (const auto& [name, value] : extra) {
        result.emplace_back(name).append("=").append(value);
    }
    return result;
}

std::vector<char*> c_strings(std::vector<std::string>& strings) {
    std::vector<char*> out;
    out.reserve(strings.size() + 1);
    for (auto& s : strings) {
        out.push_back(s.data());
    }
    out.push_back(nullptr);
    return out;
}

// glibc execvp's search, done before fork because it allocates: a name with a '/' as it is, otherwise
// each PATH entry in order (an empty entry is the current directory), "/bin:/usr/bin" without PATH.
std::vector<std::string> exec_candidates(const std::string& file) {
    if (file.empty()) {
        return {};  // ENOENT, as execvp says
    }
    if (file.find('/') != std::string::npos) {
        return {file};
    }
    const char* path = std::getenv("PATH");  // NOLINT(concurrency-mt-unsafe): execvp reads it the same way
    std::vector<std::string> candidates;
    for (const auto& dir : split(path != nullptr ? path : "/bin:/usr/bin", ':')) {
        auto& candidate = candidates.emplace_back(dir);
        if (!candidate.empty()) {
            candidate += '/';
        }
        candidate += file;
    }
    return candidates;
}

// argv, envp, the PATH candidates and the argv for running a candidate under /bin/sh, as the
// null-terminated char* arrays execve takes. Built before fork; it cannot move, since the arrays point
// into the strings it holds.
class ExecArrays {
public:
    explicit ExecArrays(const SpawnOptions& options)
        : argv_strings_(options.argv),
          env_strings_(merged_environment(options.env)),
          candidate_strings_(exec_candidates(options.argv[0])),
          argv_(c_strings(argv_strings_)),
          envp_(c_strings(env_strings_)),
          candidates_(c_strings(candidate_strings_)),
          script_argv_{shell_.data(), nullptr} {
        script_argv_.insert(script_argv_.end(), argv_.begin() + 1, argv_.end());  // with argv's nullptr
    }
    ExecArrays(const ExecArrays&) = delete;
    ExecArrays& operator=(const ExecArrays&) = delete;

    [[nodiscard]] char* const* argv() const noexcept { return argv_.data(); }
    [[nodiscard]] char* const* envp() const noexcept { return envp_.data(); }
    [[nodiscard]] char* const* candidates() const noexcept { return candidates_.data(); }
    // The child fills in [1], the candidate, before it execs it.
    [[nodiscard]] char** script_argv() noexcept { return script_argv_.data(); }

private:
    std::vector<std::string> argv_strings_;
    std::vector<std::string> env_strings_;
    std::vector<std::string> candidate_strings_;
    std::string shell_ = "/bin/sh";
    std::vector<char*> argv_;
    std::vector<char*> envp_;
    std::vector<char*> candidates_;
    std::vector<char*> script_argv_;  // {"/bin/sh", <candidate>, argv[1]..., nullptr}
};

// The descriptors the child's standard streams come from, opened before fork.
struct StdioFds {
    std::array<int, 3> sources{-1, -1, -1};  // for ChildPlan::stdio
    // For SpawnedProcess: the write end of stdin's pipe, the read ends of stdout's and stderr's.
    std::array<UniqueFd, 3> parent_ends;
    std::array<UniqueFd, 3> child_ends;  // the child's ends of its pipes; the parent closes them after fork
    UniqueFd dev_null;
};

StdioFds open_stdio(const SpawnOptions& options) {
    StdioFds fds;
    const std::array<const Stdio*, 3> streams{&options.in, &options.out, &options.err};
    for (std::size_t i = 0; i < streams.size(); ++i) {
        switch (streams[i]->kind) {
            case Stdio::Kind::inherit:
                break;
            case Stdio::Kind::null:
                if (!fds.dev_null) {
                    fds.dev_null.reset(::open("/dev/null", O_RDWR | O_CLOEXEC));
                    check_errno(fds.dev_null.get(), "opening /dev/null");
                }
                fds.sources[i] = fds.dev_null.get();
                break;
            case Stdio::Kind::fd:
                if (streams[i]->caller_fd < 0) {
                    throw Error(
                        Errc::invalid_input, "spawn: Stdio::fd without a descriptor for " + options.argv[0]);
                }
                fds.sources[i] = streams[i]->caller_fd;
                break;
            case Stdio::Kind::pipe: {
                Pipe pipe = make_pipe();
                const bool is_stdin = i == 0;
                fds.parent_ends[i] = std::move(is_stdin ? pipe.write_end : pipe.read_end);
                fds.child_ends[i] = std::move(is_stdin ? pipe.read_end : pipe.write_end);
                fds.sources[i] = fds.child_ends[i].get();
                break;
            }
        }
    }
    return fds;
}

// The cgroup.procs file of each cgroup the child joins, opened before fork.
struct CgroupProcs {
    std::vector<UniqueFd> files;
    std::vector<int> fds;  // for ChildPlan::cgroup_procs
};

CgroupProcs open_cgroup_procs(const std::vector<std::filesystem::path>& cgroups) {
    CgroupProcs procs_files;
    for (const auto& cgroup : cgroups) {
        const auto procs = cgroup / "cgroup.procs";
        procs_files.files.emplace_back(::open(procs.c_str(), O_WRONLY | O_CLOEXEC));
        check_errno(procs_files.files.back().get(), "opening " + procs.string());
        procs_files.fds.push_back(procs_files.files.back().get());
    }
    return procs_files;
}

// ---- In the child: only async-signal-safe calls from here to exec_child's end. ----

[[noreturn]] void fail(int report_fd, ChildStep step, int index = 0) noexcept {
    const ChildFailure failure{step, index, errno};
    (void)!::write(report_fd, &failure, sizeof failure);
    ::_exit(127);
}

std::size_t format_pid(pid_t pid, char* buffer, std::size_t size) noexcept {
    std::array<char, 24> digits{};
    std::size_t n = 0;
    auto value = static_cast<unsigned long>(pid);
    do {
        digits[n++] = static_cast<char>('0' + value % 10);
        value /= 10;
    } while (value != 0 && n < digits.size());
    std::size_t len = 0;
    while (n > 0 && len < size) {
        buffer[len++] = digits[--n];
    }
    return len;
}

// Puts sources[i] on fd i. A source that is itself one of 0-2 but meant for another stream (a pipe that
// got fd 0 because the caller had closed its stdin) is moved above 2 first, or an earlier dup2 would
// overwrite it.
bool arrange_stdio(std::array<int, 3> sources) noexcept {
    for (int target = 0; target < 3; ++target) {
        int& source = sources[target];
        if (source >= 0 && source < 3 && source != target) {
            source = ::fcntl(source, F_DUPFD_CLOEXEC, 3);
            if (source < 0) {
                return false;
            }
        }
    }
    for (int target = 0; target < 3; ++target) {
        const int source = sources[target];
        if (source < 0) {
            continue;
        }
        // dup2 onto itself would keep close-on-exec: clear it instead.
        if (source == target ? ::fcntl(target, F_SETFD, 0) < 0 : ::dup2(source, target) < 0) {
            return false;
        }
    }
    return true;
}

[[noreturn]] void exec_child(const ChildPlan& plan) noexcept {
    int report = plan.report_fd;
    if (report < 3) {  // it must survive arrange_stdio
        const int moved = ::fcntl(report, F_DUPFD_CLOEXEC, 3);
        report = moved >= 0 ? moved : report;
    }
    if (plan.group == ProcessGroup::own_session && ::setsid() < 0) {
        fail(report, ChildStep::session);
    }
    if (plan.group == ProcessGroup::own_group && ::setpgid(0, 0) < 0) {
        fail(report, ChildStep::process_group);
    }
    if (plan.die_with_parent) {
        if (::prctl(PR_SET_PDEATHSIG, SIGKILL) < 0) {
            fail(report, ChildStep::death_signal);
        }
        // The parent may have died before prctl: then the signal would never come.
        if (::getppid() != plan.parent) {
            ::_exit(127);
        }
    }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);  // NOLINT(concurrency-mt-unsafe): the child has one thread
    struct sigaction default_action {};
    default_action.sa_handler = SIG_DFL;
    sigaction(SIGPIPE, &default_action, nullptr);
    if (plan.cgroup_count > 0) {  // before exec: the program's own children are born in them
        std::array<char, 24> pid_text{};
        const auto len = format_pid(::getpid(), pid_text.data(), pid_text.size());
        for (std::size_t i = 0; i < plan.cgroup_count; ++i) {
            if (::write(plan.cgroup_procs[i], pid_text.data(), len) < 0) {
                fail(report, ChildStep::cgroup, static_cast<int>(i));
            }
        }
    }
    if (!arrange_stdio(plan.stdio)) {
        fail(report, ChildStep::stdio);
    }
    if (plan.cwd != nullptr && ::chdir(plan.cwd) < 0) {
        fail(report, ChildStep::cwd);
    }
    // execvp's loop over the candidates: a missing file tries the next one, a denied one too but then
    // EACCES is what is reported, any other error stops.
    bool denied = false;
    int error = ENOENT;
    for (char* const* candidate = plan.candidates; *candidate != nullptr; ++candidate) {
        ::execve(*candidate, plan.argv, plan.envp);
        if (errno == ENOEXEC) {
            plan.script_argv[1] = *candidate;
            ::execve(plan.script_argv[0], plan.script_argv, plan.envp);
        }
        error = errno;
        if (error == EACCES) {
            denied = true;
        } else if (
            error != ENOENT && error != ESTALE && error != ENOTDIR && error != ENODEV &&
            error != EHOSTUNREACH && error != ETIMEDOUT) {
            fail(report, ChildStep::exec);
        }
    }
    errno = denied ? EACCES : error;
    fail(report, ChildStep::exec);
}

// ---- Back in the parent. ----

void reap(pid_t pid) noexcept {
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
}

std::string describe_failure(const SpawnOptions& options, const ChildFailure& failure) {
    std::string message = "cannot run '" + options.argv[0] + "': ";
    switch (failure.step) {
        case ChildStep::process_group:
            message += "creating its process group: ";
            break;
        case ChildStep::session:
            message += "creating its session: ";
            break;
        case ChildStep::death_signal:
            message += "setting its parent-death signal: ";
            break;
        case ChildStep::cgroup:
            if (failure.index >= 0 && static_cast<std::size_t>(failure.index) < options.cgroups.size()) {
                message += "joining cgroup '" + options.cgroups[failure.index].string() + "': ";
            } else {
                message += "joining a cgroup: ";
            }
            break;
        case ChildStep::stdio:
            message += "redirecting its standard streams: ";
            break;
        case ChildStep::cwd:
            message += "changing to directory '" + (options.cwd ? options.cwd->string() : "") + "': ";
            break;
        case ChildStep::exec:
            break;
    }
    return message + std::error_code(failure.error, std::system_category()).message();
}

void kill_and_reap(pid_t pid, ProcessGroup group) noexcept {
    if (group != ProcessGroup::inherit) {
        ::kill(-pid, SIGKILL);
    }
    ::kill(pid, SIGKILL);
    reap(pid);
}

// Reads the report pipe until end of file (the exec happened) or a ChildFailure; throws for a failure,
// with the child reaped, or when the pipe cannot be read, with the child killed and reaped.
void await_exec(const SpawnOptions& options, pid_t pid, const UniqueFd& report) {
    ChildFailure failure;
    ssize_t n = 0;
    while ((n = ::read(report.get(), &failure, sizeof failure)) < 0 && errno == EINTR) {
    }
    if (n == sizeof failure) {
        reap(pid);
        throw Error(
            Errc::io,
            describe_failure(options, failure),
            std::error_code(failure.error, std::system_category()));
    }
    if (n != 0) {
        const std::error_code ec(n < 0 ? errno : EIO, std::system_category());
        kill_and_reap(pid, options.group);
        throw Error(Errc::io, "waiting for '" + options.argv[0] + "' to start: " + ec.message(), ec);
    }
}

// The started child's pidfd; when there is none, the child is killed and reaped and this throws.
UniqueFd open_pidfd(const SpawnOptions& options, pid_t pid) {
    UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
    if (!pidfd) {
        const std::error_code ec(errno, std::system_category());
        kill_and_reap(pid, options.group);
        throw Error(Errc::io, "pidfd_open for '" + options.argv[0] + "': " + ec.message(), ec);
    }
    return pidfd;
}

}  // namespace

SpawnedProcess spawn(const SpawnOptions& options) {
    if (options.argv.empty()) {
        throw Error(Errc::invalid_input, "spawn: empty argv");
    }
    // Everything the child needs, allocated and opened while allocating is still allowed.
    ExecArrays exec(options);
    StdioFds stdio = open_stdio(options);
    const CgroupProcs cgroups = open_cgroup_procs(options.cgroups);
    Pipe report = make_pipe();
    const ChildPlan plan{
        .argv = exec.argv(),
        .envp = exec.envp(),
        .candidates = exec.candidates(),
        .script_argv = exec.script_argv(),
        .stdio = stdio.sources,
        .cwd = options.cwd ? options.cwd->c_str() : nullptr,
        .group = options.group,
        .die_with_parent = options.die_with_parent,
        .parent = ::getpid(),
        .cgroup_procs = cgroups.fds.data(),
        .cgroup_count = cgroups.fds.size(),
        .report_fd = report.write_end.get()};

    const pid_t pid = ::fork();
    if (pid == 0) {
        exec_child(plan);  // before anything that allocates: the message below is built in the parent only
    }
    check_errno(pid, "fork for " + options.argv[0]);
    report.write_end.reset();  // or await_exec would never see end of file
    for (auto& end : stdio.child_ends) {
        end.reset();
    }
    await_exec(options, pid, report.read_end);
    return SpawnedProcess{
        .pid = pid,
        .pidfd = open_pidfd(options, pid),
        .in = std::move(stdio.parent_ends[0]),
        .out = std::move(stdio.parent_ends[1]),
        .err = std::move(stdio.parent_ends[2])};
}

}  // namespace stormnode
