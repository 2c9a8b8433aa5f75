#include "stormnode/test/child.hpp"

#include <stormnode/common/error.hpp>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>

namespace stormnode::test {
namespace {

std::vector<char*> c_strings(std::vector<std::string>& strings) {
    std::vector<char*> out;
    out.reserve(strings.size() + 1);
    for (auto& s : strings) {
        out.push_back(s.data());
    }
    out.push_back(nullptr);
    return out;
}

void report_and_exit(int error_fd) {
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

Child::Child(const ChildOptions& options) {
    if (options.argv.empty()) {
        throw Error(Errc::invalid_input, "Child: empty argv");
    }
    auto argv_strings = options.argv;
    auto argv = c_strings(argv_strings);
    UniqueFd dev_null(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    check_errno(dev_null.get(), "opening /dev/null");
    UniqueFd output(::open(options.output.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    check_errno(output.get(), "creating " + options.output.string());
    std::vector<UniqueFd> cgroup_procs;
    for (const auto& cgroup : options.cgroups) {
        const auto procs = cgroup / "cgroup.procs";
        cgroup_procs.emplace_back(::open(procs.c_str(), O_WRONLY | O_CLOEXEC));
        check_errno(cgroup_procs.back().get(), "opening " + procs.string());
    }
    std::array<int, 2> error_pipe{};
    check_errno(::pipe2(error_pipe.data(), O_CLOEXEC), "creating a pipe");
    UniqueFd error_read(error_pipe[0]);
    UniqueFd error_write(error_pipe[1]);

    pid_ = ::fork();
    check_errno(pid_, "fork for " + options.argv[0]);
    if (pid_ == 0) {
        ::setsid();
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, nullptr);
        // Join the cgroups first: the child's own children (the container) are born in them.
        std::array<char, 24> pid_text{};
        const auto len = format_pid(::getpid(), pid_text.data(), pid_text.size());
        for (const auto& fd : cgroup_procs) {
            if (::write(fd.get(), pid_text.data(), len) < 0) {
                report_and_exit(error_write.get());
            }
        }
        if (::dup2(dev_null.get(), STDIN_FILENO) < 0 || ::dup2(output.get(), STDOUT_FILENO) < 0 ||
            ::dup2(output.get(), STDERR_FILENO) < 0) {
            report_and_exit(error_write.get());
        }
        ::execvp(argv[0], argv.data());
        report_and_exit(error_write.get());
    }
    error_write.reset();
    pidfd_.reset(static_cast<int>(::syscall(SYS_pidfd_open, pid_, 0)));
    int exec_errno = 0;
    if (::read(error_read.get(), &exec_errno, sizeof exec_errno) == sizeof exec_errno) {
        int status = 0;
        ::waitpid(pid_, &status, 0);
        status_ = status;
        throw Error(
            Errc::io, "cannot start '" + options.argv[0] + "': " + std::strerror(exec_errno),
            std::error_code(exec_errno, std::system_category()));
    }
    check_errno(pidfd_.get(), "pidfd_open for " + options.argv[0]);
}

Child::~Child() {
    if (!status_ && pid_ > 0) {
        ::kill(pid_, SIGKILL);
        int status = 0;
        while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
        }
    }
}

void Child::signal(int sig) {
    if (!status_) {
        check_errno(
            static_cast<int>(::syscall(SYS_pidfd_send_signal, pidfd_.get(), sig, nullptr, 0)),
            "sending signal " + std::to_string(sig) + " to " + std::to_string(pid_));
    }
}

std::optional<int> Child::wait(std::chrono::milliseconds timeout) {
    if (status_) {
        return status_;
    }
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        pollfd p{pidfd_.get(), POLLIN, 0};
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        const int ready = ::poll(&p, 1, static_cast<int>(std::max<long long>(0, left.count())));
        if (ready < 0 && errno == EINTR) {
            continue;
        }
        check_errno(ready, "waiting for process " + std::to_string(pid_));
        if (ready == 0) {
            return std::nullopt;
        }
        int status = 0;
        if (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
            continue;
        }
        status_ = status;
        return status_;
    }
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

}  // namespace stormnode::test
