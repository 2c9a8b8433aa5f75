#include "stormnode/common/child_process.hpp"

#include <stormnode/common/error.hpp>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <string_view>

extern char** environ;  // NOLINT(readability-redundant-declaration)

namespace stormnode {
namespace {

std::vector<std::string> merged_environment(const std::map<std::string, std::string>& extra) {
    std::vector<std::string> result;
    for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
        const std::string_view text(*entry);
        if (!extra.contains(std::string(text.substr(0, text.find('='))))) {
            result.emplace_back(text);
        }
    }
    for (const auto& [name, value] : extra) {
        result.push_back(name + "=" + value);
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

[[noreturn]] void report_and_exit(int error_fd) {
    const int e = errno;
    (void)!::write(error_fd, &e, sizeof e);
    ::_exit(127);
}

// Async-signal-safe decimal formatting for the cgroup.procs write after fork.
std::size_t format_pid(pid_t pid, char* buffer, std::size_t size) {
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

}  // namespace

ChildProcess::ChildProcess(const ChildCommand& command) {
    if (command.argv.empty()) {
        throw Error(Errc::invalid_input, "ChildProcess: empty argv");
    }
    auto argv_strings = command.argv;
    auto env_strings = merged_environment(command.env);
    auto argv = c_strings(argv_strings);
    auto envp = c_strings(env_strings);
    UniqueFd dev_null(::open("/dev/null", O_RDWR | O_CLOEXEC));
    check_errno(dev_null.get(), "opening /dev/null");
    UniqueFd output_write;
    if (command.output) {
        output_write.reset(::open(command.output->c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
        check_errno(output_write.get(), "creating " + command.output->string());
    } else if (command.pipe_output) {
        std::array<int, 2> fds{};
        check_errno(::pipe2(fds.data(), O_CLOEXEC), "creating a pipe");
        output_.reset(fds[0]);
        output_write.reset(fds[1]);
        ::fcntl(output_.get(), F_SETFL, O_NONBLOCK);
    }
    const int output_fd = output_write ? output_write.get() : dev_null.get();
    std::vector<UniqueFd> cgroup_procs;
    for (const auto& cgroup : command.cgroups) {
        const auto procs = cgroup / "cgroup.procs";
        cgroup_procs.emplace_back(::open(procs.c_str(), O_WRONLY | O_CLOEXEC));
        check_errno(cgroup_procs.back().get(), "opening " + procs.string());
    }
    std::array<int, 2> error_pipe{};
    check_errno(::pipe2(error_pipe.data(), O_CLOEXEC), "creating a pipe");
    UniqueFd error_read(error_pipe[0]);
    UniqueFd error_write(error_pipe[1]);

    const pid_t parent = ::getpid();
    pid_ = ::fork();
    check_errno(pid_, "fork for " + command.argv[0]);
    if (pid_ == 0) {
        // Only async-signal-safe calls between fork and exec.
        ::setsid();
        if (command.die_with_parent) {
            if (::prctl(PR_SET_PDEATHSIG, SIGKILL) < 0) {
                report_and_exit(error_write.get());
            }
            // The parent may have died before prctl: then the signal would never come.
            if (::getppid() != parent) {
                ::_exit(127);
            }
        }
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, nullptr);
        ::signal(SIGPIPE, SIG_DFL);
        // Join the cgroups first: the child's own children are born in them.
        std::array<char, 24> pid_text{};
        const auto len = format_pid(::getpid(), pid_text.data(), pid_text.size());
        for (const auto& fd : cgroup_procs) {
            if (::write(fd.get(), pid_text.data(), len) < 0) {
                report_and_exit(error_write.get());
            }
        }
        if (::dup2(dev_null.get(), STDIN_FILENO) < 0 || ::dup2(output_fd, STDOUT_FILENO) < 0 ||
            ::dup2(output_fd, STDERR_FILENO) < 0) {
            report_and_exit(error_write.get());
        }
        if (command.cwd && ::chdir(command.cwd->c_str()) < 0) {
            report_and_exit(error_write.get());
        }
        ::execvpe(argv[0], argv.data(), envp.data());
        report_and_exit(error_write.get());
    }
    error_write.reset();
    output_write.reset();
    pidfd_.reset(static_cast<int>(::syscall(SYS_pidfd_open, pid_, 0)));
    int exec_errno = 0;
    if (::read(error_read.get(), &exec_errno, sizeof exec_errno) == sizeof exec_errno) {
        int status = 0;
        while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
        }
        status_ = status;
        throw Error(
            Errc::io,
            "cannot start '" + command.argv[0] + "': " + std::strerror(exec_errno),
            std::error_code(exec_errno, std::system_category()));
    }
    if (!pidfd_) {
        const int e = errno;
        ::kill(pid_, SIGKILL);
        int status = 0;
        while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
        }
        status_ = status;
        throw Error(
            Errc::io,
            "pidfd_open for " + command.argv[0] + ": " + std::strerror(e),
            std::error_code(e, std::system_category()));
    }
}

ChildProcess::~ChildProcess() {
    if (!status_ && pid_ > 0) {
        ::kill(-pid_, SIGKILL);  // its own session: the group is everything it started and did not move
        ::kill(pid_, SIGKILL);
        int status = 0;
        while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
        }
    }
}

void ChildProcess::signal(int sig) {
    if (!status_) {
        check_errno(
            static_cast<int>(::syscall(SYS_pidfd_send_signal, pidfd_.get(), sig, nullptr, 0)),
            "sending signal " + std::to_string(sig) + " to " + std::to_string(pid_));
    }
}

std::optional<int> ChildProcess::wait(std::chrono::milliseconds timeout) {
    if (status_) {
        return status_;
    }
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        pollfd p{pidfd_.get(), POLLIN, 0};
        const auto left =
            std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        const int ready = ::poll(&p, 1, static_cast<int>(std::clamp<long long>(left.count(), 0, INT32_MAX)));
        if (ready < 0 && errno == EINTR) {
            continue;
        }
        check_errno(ready, "waiting for process " + std::to_string(pid_));
        if (ready == 0) {
            if (std::chrono::steady_clock::now() < deadline) {
                continue;  // poll's millisecond rounding woke us a little early
            }
            return std::nullopt;
        }
        int status = 0;
        if (::waitpid(pid_, &status, 0) < 0) {
            if (errno == EINTR) {
                continue;
            }
            check_errno(-1, "reaping process " + std::to_string(pid_));
        }
        status_ = status;
        return status_;
    }
}

int ChildProcess::terminate(std::chrono::milliseconds grace) {
    if (status_) {
        return *status_;
    }
    signal(SIGTERM);
    if (auto status = wait(grace)) {
        return *status;
    }
    ::kill(-pid_, SIGKILL);
    signal(SIGKILL);
    // SIGKILL cannot be ignored; the wait only covers an uninterruptible sleep (D state) in the kernel.
    if (auto status = wait(std::chrono::minutes(1))) {
        return *status;
    }
    throw Error(Errc::timeout, "process " + std::to_string(pid_) + " did not end after SIGKILL");
}

std::string describe_wait_status(int status) {
    if (WIFEXITED(status)) {
        return "exited with status " + std::to_string(WEXITSTATUS(status));
    }
    if (WIFSIGNALED(status)) {
        return "killed by signal " + std::to_string(WTERMSIG(status));
    }
    return "ended with wait status " + std::to_string(status);
}

}  // namespace stormnode
