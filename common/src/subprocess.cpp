#include "stormnode/common/subprocess.hpp"

#include <stormnode/common/c_handle.hpp>
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

extern char** environ;  // NOLINT(readability-redundant-declaration)

namespace stormnode {
namespace {

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
        const auto name = text.substr(0, text.find('='));
        if (!extra.contains(std::string(name))) {
            result.emplace_back(text);
        }
    }
    for (const auto& [name, value] : extra) {
        result.push_back(name + "=" + value);
    }
    return result;
}

// Splits a stream into lines for a per-line callback; keeps the partial last line until it ends.
class LineSplitter {
public:
    explicit LineSplitter(const std::function<void(std::string_view)>& callback) : callback_(callback) {}

    void feed(std::string_view data) {
        if (!callback_) {
            return;
        }
        pending_.append(data);
        std::size_t start = 0;
        for (auto end = pending_.find('\n'); end != std::string::npos; end = pending_.find('\n', start)) {
            callback_(std::string_view(pending_).substr(start, end - start));
            start = end + 1;
        }
        pending_.erase(0, start);
    }
    void finish() {
        if (callback_ && !pending_.empty()) {
            callback_(pending_);
        }
        pending_.clear();
    }

private:
    const std::function<void(std::string_view)>& callback_;
    std::string pending_;
};

std::vector<char*> c_strings(std::vector<std::string>& strings) {
    std::vector<char*> out;
    out.reserve(strings.size() + 1);
    for (auto& s : strings) {
        out.push_back(s.data());
    }
    out.push_back(nullptr);
    return out;
}

// Only async-signal-safe calls between fork and exec.
[[noreturn]] void exec_child(
    const Command& command,
    char* const* argv,
    char* const* envp,
    int stdin_fd,
    int stdout_fd,
    int stderr_fd,
    int error_fd) {
    ::setpgid(0, 0);  // own process group: a timeout kills the whole tree
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    ::signal(SIGPIPE, SIG_DFL);
    if (::dup2(stdin_fd, STDIN_FILENO) < 0 || (stdout_fd >= 0 && ::dup2(stdout_fd, STDOUT_FILENO) < 0) ||
        (stderr_fd >= 0 && ::dup2(stderr_fd, STDERR_FILENO) < 0)) {
        const int e = errno;
        (void)!::write(error_fd, &e, sizeof e);
        ::_exit(127);
    }
    if (command.cwd && ::chdir(command.cwd->c_str()) < 0) {
        const int e = errno;
        (void)!::write(error_fd, &e, sizeof e);
        ::_exit(127);
    }
    ::execvpe(argv[0], argv, envp);
    const int e = errno;
    (void)!::write(error_fd, &e, sizeof e);
    ::_exit(127);
}

int open_pidfd(pid_t pid) {
    return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
}

}  // namespace

std::string format_argv(const std::vector<std::string>& argv) {
    std::string text;
    for (const auto& arg : argv) {
        if (!text.empty()) {
            text += ' ';
        }
        const bool plain = !arg.empty() && arg.find_first_of(" \t\n'\"\\$`*?;&|<>()") == std::string::npos;
        text += plain ? arg : "'" + arg + "'";
    }
    return text;
}

ProcessResult run(const Command& command) {
    if (command.argv.empty()) {
        throw Error(Errc::invalid_input, "run: empty argv");
    }
    auto argv_strings = command.argv;
    auto env_strings = merged_environment(command.env);
    auto argv = c_strings(argv_strings);
    auto envp = c_strings(env_strings);

    UniqueFd dev_null(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    Pipe in = command.stdin_data ? make_pipe() : Pipe{};
    Pipe out = command.capture_stdout || command.on_stdout_line ? make_pipe() : Pipe{};
    Pipe err = command.capture_stderr || command.on_stderr_line ? make_pipe() : Pipe{};
    Pipe exec_error = make_pipe();

    const pid_t pid = ::fork();
    check_errno(pid, "fork for " + command.argv[0]);
    if (pid == 0) {
        exec_child(
            command,
            argv.data(),
            envp.data(),
            in.read_end ? in.read_end.get() : dev_null.get(),
            out.write_end ? out.write_end.get() : -1,
            err.write_end ? err.write_end.get() : -1,
            exec_error.write_end.get());
    }
    (void)::setpgid(pid, pid);  // also from the parent, so a kill right away hits the group
    in.read_end.reset();
    out.write_end.reset();
    err.write_end.reset();
    exec_error.write_end.reset();

    int exec_errno = 0;
    if (::read(exec_error.read_end.get(), &exec_errno, sizeof exec_errno) == sizeof exec_errno) {
        int status = 0;
        ::waitpid(pid, &status, 0);
        throw Error(
            Errc::io,
            "cannot run '" + command.argv[0] + "': " + std::strerror(exec_errno),
            std::error_code(exec_errno, std::system_category()));
    }

    ProcessResult result;
    UniqueFd pidfd(open_pidfd(pid));
    // A line callback may throw: the child's process group is then killed and reaped before unwinding.
    struct ReapOnUnwind {
        pid_t pid;
        bool armed = true;
        ~ReapOnUnwind() {
            if (armed) {
                ::kill(-pid, SIGKILL);
                int status = 0;
                while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
                }
            }
        }
    } reap_on_unwind{pid};
    const auto deadline = command.timeout ? std::chrono::steady_clock::now() + *command.timeout
                                          : std::chrono::steady_clock::time_point::max();
    std::size_t stdin_offset = 0;
    if (in.write_end) {
        ::fcntl(in.write_end.get(), F_SETFL, O_NONBLOCK);
        if (command.stdin_data->empty()) {
            in.write_end.reset();
        }
    }
    bool exited = false;
    std::array<char, 65536> buffer{};
    LineSplitter out_lines(command.on_stdout_line);
    LineSplitter err_lines(command.on_stderr_line);
    const auto take = [&](bool is_out, std::size_t n) {
        const std::string_view data(buffer.data(), n);
        if (is_out) {
            if (command.capture_stdout)
                result.out.append(data);
            out_lines.feed(data);
        } else {
            if (command.capture_stderr)
                result.err.append(data);
            err_lines.feed(data);
        }
    };
    // Wait on the pipes and the pidfd: the loop ends when the child is gone and its pipes are drained.
    while (out.read_end || err.read_end || in.write_end || !exited) {
        std::vector<pollfd> fds;
        if (out.read_end)
            fds.push_back({out.read_end.get(), POLLIN, 0});
        if (err.read_end)
            fds.push_back({err.read_end.get(), POLLIN, 0});
        if (in.write_end)
            fds.push_back({in.write_end.get(), POLLOUT, 0});
        if (!exited && pidfd)
            fds.push_back({pidfd.get(), POLLIN, 0});
        if (fds.empty()) {
            break;  // no pidfd (old kernel): fall through to a blocking waitpid
        }
        int wait_ms = -1;
        if (command.timeout) {
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                deadline - std::chrono::steady_clock::now());
            wait_ms = static_cast<int>(std::max<long long>(0, left.count()));
        }
        const int ready = ::poll(fds.data(), fds.size(), wait_ms);
        if (ready < 0 && errno == EINTR) {
            continue;
        }
        check_errno(ready, "waiting for " + command.argv[0]);
        if (ready == 0) {
            result.timed_out = true;
            ::kill(-pid, SIGKILL);
            break;
        }
        for (const auto& p : fds) {
            if (p.revents == 0) {
                continue;
            }
            if (p.fd == pidfd.get()) {
                exited = true;
                continue;
            }
            if (in.write_end && p.fd == in.write_end.get()) {
                const auto& data = *command.stdin_data;
                const ssize_t n = ::write(p.fd, data.data() + stdin_offset, data.size() - stdin_offset);
                if (n > 0) {
                    stdin_offset += static_cast<std::size_t>(n);
                }
                if (n < 0 && errno != EAGAIN && errno != EINTR) {
                    in.write_end.reset();  // the child closed its stdin
                } else if (stdin_offset == data.size()) {
                    in.write_end.reset();
                }
                continue;
            }
            const ssize_t n = ::read(p.fd, buffer.data(), buffer.size());
            if (n > 0) {
                take(out.read_end && p.fd == out.read_end.get(), static_cast<std::size_t>(n));
            } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
                if (out.read_end && p.fd == out.read_end.get()) {
                    out.read_end.reset();
                } else {
                    err.read_end.reset();
                }
            }
        }
        // A daemonized grandchild may keep the pipes open: once the child itself is gone, stop reading.
        if (exited && !out.read_end && !err.read_end) {
            break;
        }
        if (exited && (out.read_end || err.read_end)) {
            // drain what is buffered without blocking, then stop
            for (auto* fd : {&out.read_end, &err.read_end}) {
                if (!*fd)
                    continue;
                ::fcntl(fd->get(), F_SETFL, O_NONBLOCK);
                for (;;) {
                    const ssize_t n = ::read(fd->get(), buffer.data(), buffer.size());
                    if (n <= 0)
                        break;
                    take(fd == &out.read_end, static_cast<std::size_t>(n));
                }
                fd->reset();
            }
            break;
        }
    }
    out_lines.finish();
    err_lines.finish();
    reap_on_unwind.armed = false;
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (WIFEXITED(status)) {
        result.exit_status = WEXITSTATUS(status);
    } else if (WIFSIGNALED(status)) {
        result.term_signal = WTERMSIG(status);
    }
    return result;
}

ProcessResult run_checked(const Command& command) {
    auto result = run(command);
    if (result.timed_out) {
        throw Error(Errc::timeout, "'" + format_argv(command.argv) + "' timed out");
    }
    if (!result.ok()) {
        std::string message = "'" + format_argv(command.argv) + "' ";
        message += result.term_signal != 0 ? "was killed by signal " + std::to_string(result.term_signal)
                                           : "exited with status " + std::to_string(result.exit_status);
        auto detail = result.err;
        while (!detail.empty() && (detail.back() == '\n' || detail.back() == ' ')) {
            detail.pop_back();
        }
        if (detail.size() > 2000) {
            detail = "..." + detail.substr(detail.size() - 2000);
        }
        if (!detail.empty()) {
            message += ": " + detail;
        }
        throw Error(Errc::io, message);
    }
    return result;
}

void UniqueFd::reset(int fd) noexcept {
    if (fd_ >= 0) {
        ::close(fd_);
    }
    fd_ = fd;
}

}  // namespace stormnode
