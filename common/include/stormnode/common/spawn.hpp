// The one fork/exec of stormnode, under run(), ChildProcess and the supervisor's exec checks.
// Everything the child needs (argv, envp, the PATH candidates, fds) is prepared before fork and the child
// makes only async-signal-safe calls, so it may be called from a multi-threaded daemon.
#pragma once

#include <stormnode/common/c_handle.hpp>

#include <sys/types.h>

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace stormnode {

// Where one of the child's standard streams comes from or goes to.
struct Stdio {
    enum class Kind { inherit, null, fd, pipe };
    Kind kind = Kind::inherit;
    int caller_fd = -1;  // Kind::fd only

    // The caller's own stream.
    static Stdio inherit() noexcept { return {}; }
    // /dev/null.
    static Stdio null() noexcept { return {Kind::null, -1}; }
    // A descriptor of the caller's, dup'ed onto the stream; the caller keeps (and closes) it. Its file
    // status flags are shared: a non-blocking pipe end stays non-blocking in the child.
    static Stdio fd(int caller_fd) noexcept { return {Kind::fd, caller_fd}; }
    // A new pipe; the caller's end (write end for stdin, read end for stdout/stderr) is returned in
    // SpawnedProcess, blocking and close-on-exec.
    static Stdio pipe() noexcept { return {Kind::pipe, -1}; }
};

enum class ProcessGroup {
    inherit,      // stays in the caller's process group
    own_group,    // setpgid(0, 0): kill(-pid) reaches everything it starts
    own_session,  // setsid(): own process group, and no controlling terminal
};

struct SpawnOptions {
    // argv[0] is looked up like execvp does, in the caller's PATH (not one set in `env`), unless it
    // contains a '/'; a file without "#!" that the kernel cannot execute runs under /bin/sh (ENOEXEC).
    std::vector<std::string> argv;
    std::map<std::string, std::string> env;  // added to (or overriding) the inherited environment
    std::optional<std::filesystem::path> cwd;
    Stdio in = Stdio::null();
    Stdio out = Stdio::inherit();
    Stdio err = Stdio::inherit();
    ProcessGroup group = ProcessGroup::own_group;
    std::vector<std::filesystem::path> cgroups;  // cgroup directories the child joins before exec
    // SIGKILL for the child when the thread that started it ends (PR_SET_PDEATHSIG); a child whose
    // parent already died before that was set exits 127 at once.
    bool die_with_parent = false;
    // Always, not options: the child's signal mask is emptied and SIGPIPE set back to its default (a
    // daemon's blocked or ignored signals are not the program's); descriptors without close-on-exec are
    // inherited as they are.
};

struct SpawnedProcess {
    pid_t pid = -1;
    UniqueFd pidfd;  // readable once the child has ended (poll, epoll, sd_event_add_io)
    UniqueFd in;     // the write end of the stdin pipe, when `in` was Stdio::pipe()
    UniqueFd out;    // the read end of the stdout pipe, when `out` was Stdio::pipe()
    UniqueFd err;    // the read end of the stderr pipe, when `err` was Stdio::pipe()
};

// Starts the program and returns as soon as it has been exec'd: every setup step is done by then, so a
// kill(-pid) right after reaches its group. Does not wait for it to end: the caller owns the child and
// must reap it (waitpid on pid, or waitid P_PIDFD), and kill it first if it gives up on it.
// Throws Error(Errc::io) naming the program when it cannot be started, with the failed step ("changing
// to directory '/x': ...", "joining cgroup '...': ...") and the errno as cause; nothing is left running.
// Error(Errc::invalid_input) for an empty argv.
SpawnedProcess spawn(const SpawnOptions& options);

}  // namespace stormnode
