// A long-running child process watched through a pidfd (systemd-nspawn, dbus-daemon in tests).
// stormnode::run() waits for its child; this one returns at once and is waited on later.
#pragma once

#include <stormnode/common/c_handle.hpp>

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace stormnode::test {

struct ChildOptions {
    std::vector<std::string> argv;
    std::filesystem::path output;                   // stdout and stderr go here (created, truncated)
    std::vector<std::filesystem::path> cgroups;     // cgroup directories the child joins before exec
};

class Child {
public:
    // Starts the child in its own session; throws Error(Errc::io) when it cannot be started.
    explicit Child(const ChildOptions& options);
    Child(const Child&) = delete;
    Child& operator=(const Child&) = delete;
    Child(Child&&) = delete;
    Child& operator=(Child&&) = delete;
    ~Child();  // SIGKILL and reap if still running

    [[nodiscard]] pid_t pid() const noexcept { return pid_; }
    [[nodiscard]] int pidfd() const noexcept { return pidfd_.get(); }
    [[nodiscard]] bool running() const noexcept { return !status_; }

    void signal(int sig);
    // Waits up to `timeout` for the child to end; returns its wait status, nullopt on timeout.
    std::optional<int> wait(std::chrono::milliseconds timeout);

private:
    pid_t pid_ = -1;
    UniqueFd pidfd_;
    std::optional<int> status_;
};

// "exited with status 1" / "killed by signal 9"
std::string describe_wait_status(int status);

}  // namespace stormnode::test
