#include "stormnode/common/subprocess.hpp"

#include <stormnode/common/c_handle.hpp>
#include <stormnode/common/error.hpp>
#include <stormnode/common/spawn.hpp>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>

namespace stormnode {
namespace {

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
    auto child = spawn(SpawnOptions{
        .argv = command.argv,
        .env = command.env,
        .cwd = command.cwd,
        .in = command.stdin_data ? Stdio::pipe() : Stdio::null(),
        .out = command.capture_stdout || command.on_stdout_line ? Stdio::pipe() : Stdio::inherit(),
        .err = command.capture_stderr || command.on_stderr_line ? Stdio::pipe() : Stdio::inherit(),
        .group = ProcessGroup::own_group});  // a timeout kills the whole tree
    const pid_t pid = child.pid;
    UniqueFd to_stdin = std::move(child.in);
    UniqueFd from_stdout = std::move(child.out);
    UniqueFd from_stderr = std::move(child.err);
    const UniqueFd pidfd = std::move(child.pidfd);

    ProcessResult result;
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
    if (to_stdin) {
        ::fcntl(to_stdin.get(), F_SETFL, O_NONBLOCK);
        if (command.stdin_data->empty()) {
            to_stdin.reset();
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
    while (from_stdout || from_stderr || to_stdin || !exited) {
        std::vector<pollfd> fds;
        if (from_stdout)
            fds.push_back({from_stdout.get(), POLLIN, 0});
        if (from_stderr)
            fds.push_back({from_stderr.get(), POLLIN, 0});
        if (to_stdin)
            fds.push_back({to_stdin.get(), POLLOUT, 0});
        if (!exited && pidfd)
            fds.push_back({pidfd.get(), POLLIN, 0});
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
            if (to_stdin && p.fd == to_stdin.get()) {
                const auto& data = *command.stdin_data;
                const ssize_t n = ::write(p.fd, data.data() + stdin_offset, data.size() - stdin_offset);
                if (n > 0) {
                    stdin_offset += static_cast<std::size_t>(n);
                }
                if (n < 0 && errno != EAGAIN && errno != EINTR) {
                    to_stdin.reset();  // the child closed its stdin
                } else if (stdin_offset == data.size()) {
                    to_stdin.reset();
                }
                continue;
            }
            const ssize_t n = ::read(p.fd, buffer.data(), buffer.size());
            if (n > 0) {
                take(from_stdout && p.fd == from_stdout.get(), static_cast<std::size_t>(n));
            } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
                if (from_stdout && p.fd == from_stdout.get()) {
                    from_stdout.reset();
                } else {
                    from_stderr.reset();
                }
            }
        }
        // A daemonized grandchild may keep the pipes open: once the child itself is gone, stop reading.
        if (exited && !from_stdout && !from_stderr) {
            break;
        }
        if (exited && (from_stdout || from_stderr)) {
            // drain what is buffered without blocking, then stop
            for (auto* fd : {&from_stdout, &from_stderr}) {
                if (!*fd)
                    continue;
                ::fcntl(fd->get(), F_SETFL, O_NONBLOCK);
                for (;;) {
                    const ssize_t n = ::read(fd->get(), buffer.data(), buffer.size());
                    if (n <= 0)
                        break;
                    take(fd == &from_stdout, static_cast<std::size_t>(n));
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
