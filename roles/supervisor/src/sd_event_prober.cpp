#include <stormnode/common/c_handle.hpp>
#include <stormnode/common/error.hpp>
#include <stormnode/common/spawn.hpp>
#include <stormnode/supervisor/sd_event_loop.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

namespace stormnode::roles {
namespace {

// One running probe: a deadline, maybe an fd or a child, and the callback called exactly once.
class Probe : public Prober::Pending {
public:
    Probe(sd_event* event, std::chrono::milliseconds timeout, Prober::Callback done)
        : event_(event),
          done_(std::move(done)) {
        sd_event_source* raw = nullptr;
        const auto usec = static_cast<uint64_t>(timeout.count()) * 1000U;
        check_r(
            sd_event_add_time_relative(event_, &raw, CLOCK_MONOTONIC, usec, 1000, on_timeout, this),
            "probe timer");
        timer_.reset(raw);
    }
    Probe(const Probe&) = delete;
    Probe& operator=(const Probe&) = delete;
    Probe(Probe&&) = delete;
    Probe& operator=(Probe&&) = delete;
    ~Probe() override = default;

protected:
    void finish(bool ok, std::string detail, std::optional<int> exit_status = std::nullopt) {
        timer_.reset();
        io_.reset();
        if (auto done = std::move(done_); done) {
            done_ = nullptr;
            done(ProbeResult{
                ok, std::move(detail), exit_status});  // nothing of *this is touched after this call
        }
    }
    virtual void timed_out() { finish(false, "timed out"); }
    void watch_fd(int fd, uint32_t events) {
        if (io_) {  // epoll takes an fd once: change what we wait for
            check_r(sd_event_source_set_io_events(io_.get(), events), "probe io");
            return;
        }
        sd_event_source* raw = nullptr;
        check_r(sd_event_add_io(event_, &raw, fd, events, on_io, this), "probe io");
        io_.reset(raw);
    }
    virtual void ready(uint32_t /*revents*/) {}
    [[nodiscard]] bool finished() const noexcept { return !done_; }
    // Results are never delivered from inside probe(): a failure found at once waits for the loop.
    void fail_later(std::string why) {
        early_failure_ = std::move(why);
        sd_event_source* raw = nullptr;
        check_r(sd_event_add_defer(event_, &raw, on_defer, this), "probe defer");
        defer_.reset(raw);
    }
    sd_event* event_;

private:
    static int on_defer(sd_event_source* /*s*/, void* userdata) {
        auto* self = static_cast<Probe*>(userdata);
        self->defer_.reset();
        return guarded([&] { self->finish(false, self->early_failure_); });
    }
    EventSource defer_;
    std::string early_failure_;
    static int on_timeout(sd_event_source* /*s*/, uint64_t /*usec*/, void* userdata) {
        return guarded([&] { static_cast<Probe*>(userdata)->timed_out(); });
    }
    static int on_io(sd_event_source* /*s*/, int /*fd*/, uint32_t revents, void* userdata) {
        return guarded([&] { static_cast<Probe*>(userdata)->ready(revents); });
    }
    Prober::Callback done_;
    EventSource timer_;
    EventSource io_;
};

bool parse_address(const std::string& host, int port, sockaddr_storage& addr, socklen_t& len) {
    const std::string h = host == "localhost" || host.empty() ? "127.0.0.1" : host;
    std::memset(&addr, 0, sizeof addr);
    auto* v4 = reinterpret_cast<sockaddr_in*>(&addr);  // NOLINT(cppcoreguidelines-pro-type-reinterpret-cast)
    if (::inet_pton(AF_INET, h.c_str(), &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(static_cast<uint16_t>(port));
        len = sizeof(sockaddr_in);
        return true;
    }
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&addr);  // NOLINT(cppcoreguidelines-pro-type-reinterpret-cast)
    const std::string bare = h.size() > 2 && h.front() == '[' ? h.substr(1, h.size() - 2) : h;
    if (::inet_pton(AF_INET6, bare.c_str(), &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(static_cast<uint16_t>(port));
        len = sizeof(sockaddr_in6);
        return true;
    }
    return false;
}

// tcp: connected means healthy. http: connect, send a GET, read the status line.
class TcpProbe final : public Probe {
public:
    TcpProbe(sd_event* event, const Check& check, Prober::Callback done)
        : Probe(event, check.timeout, std::move(done)),
          check_(check) {}

    void fail_now(std::string why) { fail_later(std::move(why)); }

    void begin() {
        sockaddr_storage addr{};
        socklen_t len = 0;
        if (!parse_address(check_.host, check_.port, addr, len)) {
            fail_later("'" + check_.host + "' is not an IP address");
            return;
        }
        fd_.reset(::socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
        if (!fd_) {
            fail_later(std::string("socket: ") + std::strerror(errno));
            return;
        }
        // NOLINTNEXTLINE(cppcoreguidelines-pro-type-reinterpret-cast)
        if (::connect(fd_.get(), reinterpret_cast<sockaddr*>(&addr), len) < 0 && errno != EINPROGRESS) {
            fail_later(std::strerror(errno));
            return;
        }
        watch_fd(fd_.get(), EPOLLOUT);
    }

private:
    void ready(uint32_t revents) override {
        if (!connected_) {
            int error = 0;
            socklen_t len = sizeof error;
            ::getsockopt(fd_.get(), SOL_SOCKET, SO_ERROR, &error, &len);
            if (error != 0) {
                finish(false, std::strerror(error));
                return;
            }
            connected_ = true;
            if (check_.kind == CheckKind::tcp) {
                finish(true, {});
                return;
            }
            request_ = "GET " + check_.path + " HTTP/1.0\r\nHost: " + check_.host +
                       "\r\nUser-Agent: storm-roled\r\n" + "Connection: close\r\n\r\n";
            watch_fd(fd_.get(), EPOLLOUT);
            return;
        }
        if (sent_ < request_.size()) {
            const ssize_t n =
                ::send(fd_.get(), request_.data() + sent_, request_.size() - sent_, MSG_NOSIGNAL);
            if (n < 0 && errno != EAGAIN && errno != EINTR) {
                finish(false, std::string("sending the request: ") + std::strerror(errno));
                return;
            }
            sent_ += n > 0 ? static_cast<std::size_t>(n) : 0;
            if (sent_ == request_.size()) {
                watch_fd(fd_.get(), EPOLLIN);
            }
            return;
        }
        std::array<char, 512> buffer{};
        const ssize_t n = ::recv(fd_.get(), buffer.data(), buffer.size(), 0);
        if (n > 0) {
            response_.append(buffer.data(), static_cast<std::size_t>(n));
        }
        const auto eol = response_.find("\r\n");
        if (eol == std::string::npos && n > 0 && response_.size() < 4096) {
            return;  // the status line is not complete yet
        }
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            return;
        }
        (void)revents;
        evaluate_status(response_.substr(0, eol));
    }

    void evaluate_status(const std::string& line) {
        // "HTTP/1.1 200 OK"
        std::istringstream in(line);
        std::string version;
        int status = 0;
        in >> version >> status;
        if (version.rfind("HTTP/", 0) != 0 || status == 0) {
            finish(false, "no HTTP status line in the response");
            return;
        }
        for (const int expected : check_.expect_status) {
            if (status == expected) {
                finish(true, {});
                return;
            }
        }
        finish(false, "status " + std::to_string(status));
    }

    Check check_;
    UniqueFd fd_;
    bool connected_ = false;
    std::string request_;
    std::size_t sent_ = 0;
    std::string response_;
};

// exec: the argv runs in its own process group with /dev/null for stdin and stdout; its pidfd says when it
// ends. Its stderr goes to a pipe whose last line, when it fails, tells why (a mariadb SIGNAL's text): the
// pipe is non-blocking at both ends, so a chatty check loses output instead of stalling.
class ExecProbe final : public Probe {
public:
    ExecProbe(sd_event* event, const Check& check, Prober::Callback done)
        : Probe(event, check.timeout, std::move(done)),
          check_(check) {}
    ExecProbe(const ExecProbe&) = delete;
    ExecProbe& operator=(const ExecProbe&) = delete;
    ExecProbe(ExecProbe&&) = delete;
    ExecProbe& operator=(ExecProbe&&) = delete;
    ~ExecProbe() override { reap(true); }

    void begin() {
        if (check_.argv.empty()) {
            fail_later("exec check without argv");
            return;
        }
        SpawnOptions options;
        options.argv = check_.argv;
        options.in = Stdio::null();
        options.out = Stdio::null();
        options.err = Stdio::pipe();              // its last line explains a failure
        options.group = ProcessGroup::own_group;  // a timeout kills the whole tree
        SpawnedProcess child;
        try {
            child = spawn(options);
        } catch (const std::exception& e) {
            fail_later(e.what());
            return;
        }
        pid_ = child.pid;
        pidfd_ = std::move(child.pidfd);
        stderr_ = std::move(child.err);
        // The event loop reads what is there when the check ends; it never waits on the pipe.
        if (::fcntl(stderr_.get(), F_SETFL, ::fcntl(stderr_.get(), F_GETFL) | O_NONBLOCK) != 0) {
            const int error = errno;
            reap(true);
            fail_later(std::string("fcntl: ") + std::strerror(error));
            return;
        }
        watch_fd(pidfd_.get(), EPOLLIN);
    }

private:
    void ready(uint32_t /*revents*/) override {
        const int status = reap(false);
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
            finish(true, {}, 0);
        } else if (WIFEXITED(status)) {
            finish(
                false,
                "exit status " + std::to_string(WEXITSTATUS(status)) + last_stderr_line(),
                WEXITSTATUS(status));
        } else {
            finish(false, "killed by signal " + std::to_string(WTERMSIG(status)) + last_stderr_line());
        }
    }
    // ": <the last line the check wrote to stderr>", or "" when it wrote none.
    std::string last_stderr_line() const {
        std::string text;
        std::array<char, 4096> buffer{};
        for (ssize_t n = 0; (n = ::read(stderr_.get(), buffer.data(), buffer.size())) > 0;) {
            text.append(buffer.data(), static_cast<std::size_t>(n));
            if (text.size() > 65536) {
                text.erase(0, text.size() - 4096);
            }
        }
        while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) {
            text.pop_back();
        }
        const auto newline = text.rfind('\n');
        text = newline == std::string::npos ? text : text.substr(newline + 1);
        return text.empty() ? "" : ": " + text.substr(0, 512);
    }
    void timed_out() override {
        reap(true);
        finish(false, "timed out");
    }
    int reap(bool kill_first) {
        int status = 0;
        if (pid_ > 0) {
            if (kill_first) {
                ::kill(-pid_, SIGKILL);
            }
            while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
            }
            pid_ = -1;
        }
        return status;
    }

    Check check_;
    pid_t pid_ = -1;
    UniqueFd pidfd_;
    UniqueFd stderr_;
};

// amqp_peer: a quick look into /proc, delivered from the loop.
class ProcProbe final : public Probe {
public:
    ProcProbe(sd_event* event, const Check& check, std::uint32_t pid, Prober::Callback done)
        : Probe(event, check.timeout, std::move(done)),
          port_(check.port != 0 ? check.port : 5672),
          pid_(pid) {
        sd_event_source* raw = nullptr;
        check_r(sd_event_add_defer(event_, &raw, on_defer, this), "probe defer");
        defer_.reset(raw);
    }

private:
    static int on_defer(sd_event_source* /*s*/, void* userdata) {
        auto* self = static_cast<ProcProbe*>(userdata);
        self->defer_.reset();
        return guarded([&] {
            if (self->pid_ == 0) {
                self->finish(false, "no main process");
                return;
            }
            std::string detail;
            const bool ok = has_established_connection(self->pid_, self->port_, &detail);
            self->finish(ok, detail);
        });
    }
    int port_;
    std::uint32_t pid_;
    EventSource defer_;
};

}  // namespace

bool has_established_connection(std::uint32_t pid, int port, std::string* detail) {
    const std::filesystem::path proc = "/proc/" + std::to_string(pid);
    std::set<std::string> inodes;
    std::error_code ec;
    for (std::filesystem::directory_iterator it(proc / "fd", ec), end; !ec && it != end; it.increment(ec)) {
        std::array<char, 64> target{};
        const ssize_t n = ::readlink(it->path().c_str(), target.data(), target.size() - 1);
        const std::string_view link(target.data(), n > 0 ? static_cast<std::size_t>(n) : 0);
        if (link.starts_with("socket:[") && link.ends_with("]")) {
            inodes.emplace(link.substr(8, link.size() - 9));
        }
    }
    if (ec) {
        if (detail != nullptr) {
            *detail = "cannot read " + (proc / "fd").string() + ": " + ec.message();
        }
        return false;
    }
    for (const char* table : {"net/tcp", "net/tcp6"}) {
        std::ifstream in(proc / table);
        std::string line;
        std::getline(in, line);  // header
        while (std::getline(in, line)) {
            // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
            std::istringstream fields(line);
            std::string sl, local, remote, st, queues, timer, retr, uid, timeout, inode;
            fields >> sl >> local >> remote >> st >> queues >> timer >> retr >> uid >> timeout >> inode;
            const auto colon = remote.rfind(':');
            if (st != "01" || colon == std::string::npos) {  // 01: TCP_ESTABLISHED
                continue;
            }
            if (std::stoi(remote.substr(colon + 1), nullptr, 16) == port && inodes.contains(inode)) {
                return true;
            }
        }
    }
    if (detail != nullptr) {
        *detail =
            "pid " + std::to_string(pid) + " has no established connection to port " + std::to_string(port);
    }
    return false;
}

std::unique_ptr<Prober::Pending> SdEventProber::probe(
    const Check& check, const UnitState& unit, Callback done) {
    switch (check.kind) {
        case CheckKind::tcp:
        case CheckKind::http: {
            auto p = std::make_unique<TcpProbe>(event_, check, std::move(done));
            p->begin();
            return p;
        }
        case CheckKind::exec: {
            auto p = std::make_unique<ExecProbe>(event_, check, std::move(done));
            p->begin();
            return p;
        }
        case CheckKind::amqp_peer:
            return std::make_unique<ProcProbe>(event_, check, unit.main_pid, std::move(done));
        case CheckKind::unit:
            break;
    }
    auto p = std::make_unique<TcpProbe>(event_, check, std::move(done));
    p->fail_now("the unit check is the supervisor's own");
    return p;
}

}  // namespace stormnode::roles
