#include "stormnode/common/subprocess.hpp"

#include <stormnode/common/c_handle.hpp>
#include <stormnode/common/error.hpp>
#include <stormnode/common/spawn.hpp>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <optional>
#include <string_view>
#include <vector>

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

// One of the child's output pipes: what is read goes to the capture, if any, then to the line callback.
struct OutputPipe {
    UniqueFd fd;
    std::string* capture;  // null when the stream is not captured
    LineSplitter lines;

    void take(std::string_view data) {
        if (capture != nullptr) {
            capture->append(data);
        }
        lines.feed(data);
    }
};

// run()'s ends of the child's pipes: stdin fed from Command::stdin_data without blocking, stdout and stderr
// read into the result and the line callbacks.
class ChildPipes {
public:
    ChildPipes(
        const Command& command,
        UniqueFd to_stdin,
        UniqueFd from_stdout,
        UniqueFd from_stderr,
        ProcessResult& result)
        : stdin_data_(command.stdin_data ? std::string_view(*command.stdin_data) : std::string_view()),
          to_stdin_(std::move(to_stdin)),
          out_{
              std::move(from_stdout),
              command.capture_stdout ? &result.out : nullptr,
              LineSplitter(command.on_stdout_line)},
          err_{
              std::move(from_stderr),
              command.capture_stderr ? &result.err : nullptr,
              LineSplitter(command.on_stderr_line)} {
        if (to_stdin_) {
            ::fcntl(to_stdin_.get(), F_SETFL, O_NONBLOCK);
            if (stdin_data_.empty()) {
                to_stdin_.reset();
            }
        }
    }

    // poll() entries for the pipes still open, in the order they are served: stdout, stderr, stdin.
    [[nodiscard]] std::vector<pollfd> poll_entries() const {
        std::vector<pollfd> fds;
        if (out_.fd) {
            fds.push_back({out_.fd.get(), POLLIN, 0});
        }
        if (err_.fd) {
            fds.push_back({err_.fd.get(), POLLIN, 0});
        }
        if (to_stdin_) {
            fds.push_back({to_stdin_.get(), POLLOUT, 0});
        }
        return fds;
    }

    // Serves one pipe poll() reported ready: writes to stdin, or reads stdout or stderr.
    void serve(const pollfd& ready) {
        if (to_stdin_ && ready.fd == to_stdin_.get()) {
            write_stdin();
        } else {
            read_output(out_.fd && ready.fd == out_.fd.get() ? out_ : err_);
        }
    }

    // Once the child has ended: reads what stdout and stderr still hold without blocking, then closes them
    // (a daemonized grandchild may keep them open for ever).
    void drain() {
        for (auto* pipe : {&out_, &err_}) {
            if (!pipe->fd) {
                continue;
            }
            ::fcntl(pipe->fd.get(), F_SETFL, O_NONBLOCK);
            for (;;) {
                const ssize_t n = ::read(pipe->fd.get(), buffer_.data(), buffer_.size());
                if (n <= 0) {
                    break;
                }
                pipe->take(std::string_view(buffer_.data(), static_cast<std::size_t>(n)));
            }
            pipe->fd.reset();
        }
    }

    // Hands the unterminated last lines to the callbacks.
    void finish() {
        out_.lines.finish();
        err_.lines.finish();
    }

private:
    void write_stdin() {
        const ssize_t n =
            ::write(to_stdin_.get(), stdin_data_.data() + stdin_offset_, stdin_data_.size() - stdin_offset_);
        if (n > 0) {
            stdin_offset_ += static_cast<std::size_t>(n);
        }
        if (n < 0 && errno != EAGAIN && errno != EINTR) {
            to_stdin_.reset();  // the child closed its stdin
        } else if (stdin_offset_ == stdin_data_.size()) {
            to_stdin_.reset();
        }
    }

    void read_output(OutputPipe& pipe) {
        const ssize_t n = ::read(pipe.fd.get(), buffer_.data(), buffer_.size());
        if (n > 0) {
            pipe.take(std::string_view(buffer_.data(), static_cast<std::size_t>(n)));
        } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
            pipe.fd.reset();
        }
    }

    std::string_view stdin_data_;
    std::size_t stdin_offset_ = 0;
    UniqueFd to_stdin_;
    OutputPipe out_;
    OutputPipe err_;
    std::array<char, 65536> buffer_{};
};

using Deadline = std::optional<std::chrono::steady_clock::time_point>;

// poll()'s timeout until the deadline: -1 without one, 0 once it has passed.
int poll_timeout_ms(const Deadline& deadline) {
    if (!deadline) {
        return -1;
    }
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(*deadline - std::chrono::steady_clock::now());
    return static_cast<int>(std::max<long long>(0, left.count()));
}

enum class Ending { exited, timed_out };

// Waits on the pipes and the pidfd, serving the pipes as they become ready, until the child has ended
// (its pidfd is readable) or the deadline has passed.
Ending serve_until_exit(const Command& command, ChildPipes& pipes, int pidfd, const Deadline& deadline) {
    for (;;) {
        auto fds = pipes.poll_entries();
        fds.push_back({pidfd, POLLIN, 0});
        const int ready = ::poll(fds.data(), fds.size(), poll_timeout_ms(deadline));
        if (ready < 0 && errno == EINTR) {
            continue;
        }
        check_errno(ready, "waiting for " + command.argv[0]);
        if (ready == 0) {
            return Ending::timed_out;
        }
        bool exited = false;
        for (const auto& p : fds) {
            if (p.revents == 0) {
                continue;
            }
            if (p.fd == pidfd) {
                exited = true;
            } else {
                pipes.serve(p);
            }
        }
        if (exited) {
            return Ending::exited;
        }
    }
}

int reap(pid_t pid) noexcept {
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return status;
}

// A line callback may throw: the child's process group is then killed and reaped before unwinding.
class ReapOnUnwind {
public:
    explicit ReapOnUnwind(pid_t pid) noexcept : pid_(pid) {}
    ReapOnUnwind(const ReapOnUnwind&) = delete;
    ReapOnUnwind& operator=(const ReapOnUnwind&) = delete;
    ~ReapOnUnwind() {
        if (armed_) {
            ::kill(-pid_, SIGKILL);
            (void)reap(pid_);
        }
    }
    void disarm() noexcept { armed_ = false; }

private:
    pid_t pid_;
    bool armed_ = true;
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
    const UniqueFd pidfd = std::move(child.pidfd);
    ProcessResult result;
    ChildPipes pipes(command, std::move(child.in), std::move(child.out), std::move(child.err), result);
    ReapOnUnwind reap_on_unwind(pid);
    const Deadline deadline =
        command.timeout ? Deadline(std::chrono::steady_clock::now() + *command.timeout) : std::nullopt;

    if (serve_until_exit(command, pipes, pidfd.get(), deadline) == Ending::exited) {
        pipes.drain();
    } else {
        result.timed_out = true;
        ::kill(-pid, SIGKILL);
    }
    pipes.finish();
    reap_on_unwind.disarm();
    const int status = reap(pid);
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
