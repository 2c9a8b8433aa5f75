#include "stormnode/common/child_process.hpp"

#include <stormnode/common/error.hpp>
#include <stormnode/common/spawn.hpp>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>

namespace stormnode {

ChildProcess::ChildProcess(const ChildCommand& command) {
    if (command.argv.empty()) {
        throw Error(Errc::invalid_input, "ChildProcess: empty argv");
    }
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
    // stdout and stderr share one destination (one pipe, so their lines interleave as written).
    const Stdio output = output_write ? Stdio::fd(output_write.get()) : Stdio::null();
    auto child = spawn(SpawnOptions{
        .argv = command.argv,
        .env = command.env,
        .cwd = command.cwd,
        .in = Stdio::null(),
        .out = output,
        .err = output,
        .group = ProcessGroup::own_session,
        .cgroups = command.cgroups,
        .die_with_parent = command.die_with_parent});
    pid_ = child.pid;
    pidfd_ = std::move(child.pidfd);
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
