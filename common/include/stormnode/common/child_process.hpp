// A long-running child process watched through a pidfd (a VM console reader, systemd-nspawn, dbus-daemon).
// run() waits for its child; this one returns at once and is waited on, or terminated, later.
#pragma once

#include <stormnode/common/c_handle.hpp>

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace stormnode {

struct ChildCommand {
    std::vector<std::string> argv;           // argv[0] is looked up in PATH
    std::map<std::string, std::string> env;  // added to (or overriding) the inherited environment
    std::optional<std::filesystem::path> cwd;
    // stdout and stderr go to this file (created, truncated) when set; otherwise into a pipe read through
    // output_fd() when pipe_output is set; otherwise to /dev/null.
    std::optional<std::filesystem::path> output;
    bool pipe_output = false;
    std::vector<std::filesystem::path> cgroups;  // cgroup directories the child joins before exec
    // SIGKILL for the child when the thread that started it ends (PR_SET_PDEATHSIG), even by SIGKILL: a
    // VM, container or dnsmasq never outlives a test or server that was killed (its own session keeps it
    // out of the parent's process group).
    bool die_with_parent = false;
};

class ChildProcess {
public:
    // Starts the child in its own session (and so its own process group); stdin is /dev/null.
    // Throws Error(Errc::io) when it cannot be started, naming the program.
    explicit ChildProcess(const ChildCommand& command);
    ChildProcess(const ChildProcess&) = delete;
    ChildProcess& operator=(const ChildProcess&) = delete;
    ChildProcess(ChildProcess&&) = delete;
    ChildProcess& operator=(ChildProcess&&) = delete;
    ~ChildProcess();  // SIGKILL to its process group and reap, if still running

    [[nodiscard]] pid_t pid() const noexcept { return pid_; }
    [[nodiscard]] int pidfd() const noexcept { return pidfd_.get(); }
    // The read end of the output pipe (non-blocking), -1 unless pipe_output was asked for.
    [[nodiscard]] int output_fd() const noexcept { return output_.get(); }
    [[nodiscard]] bool running() const noexcept { return !status_; }
    [[nodiscard]] const std::optional<int>& wait_status() const noexcept { return status_; }

    // Sends sig to the child itself (not its group); a no-op once it has been reaped.
    void signal(int sig);
    // Waits up to `timeout` for the child to end; returns its wait status, nullopt on timeout.
    std::optional<int> wait(std::chrono::milliseconds timeout);
    // SIGTERM, then SIGKILL to its whole process group when it has not ended within `grace`; returns the
    // wait status. Waits on the pidfd, never sleeps.
    int terminate(std::chrono::milliseconds grace);

private:
    pid_t pid_ = -1;
    UniqueFd pidfd_;
    UniqueFd output_;
    std::optional<int> status_;
};

// "exited with status 1" / "killed by signal 9"
std::string describe_wait_status(int status);

}  // namespace stormnode
