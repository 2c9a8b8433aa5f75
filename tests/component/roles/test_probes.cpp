// The real probes against loopback sockets and real child processes, on an sd-event loop.
#include "bus_harness.hpp"

#include <stormnode/common/c_handle.hpp>
#include <stormnode/supervisor/sd_event_loop.hpp>

#include <arpa/inet.h>
#include <catch2/catch.hpp>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

using namespace stormnode;
using namespace stormnode::roles;
using namespace stormnode::roles::testing;
using namespace std::chrono_literals;

namespace {

// A loopback listener; with a reply set, it sends it on each connection (an HTTP server's answer).
struct Listener {
    UniqueFd fd;
    int port = 0;
    std::string reply;
    EventSource source;
    std::vector<UniqueFd> accepted;

    explicit Listener(sd_event* event, std::string http_reply = {}) : reply(std::move(http_reply)) {
        fd.reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        // NOLINTNEXTLINE(cppcoreguidelines-pro-type-reinterpret-cast)
        check_errno(::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), "bind");
        check_errno(::listen(fd.get(), 16), "listen");
        socklen_t len = sizeof addr;
        // NOLINTNEXTLINE(cppcoreguidelines-pro-type-reinterpret-cast)
        check_errno(::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr), &len), "getsockname");
        port = ntohs(addr.sin_port);
        sd_event_source* raw = nullptr;
        check_r(sd_event_add_io(event, &raw, fd.get(), EPOLLIN, on_accept, this), "io");
        source.reset(raw);
    }
    static int on_accept(sd_event_source* /*s*/, int fd, uint32_t /*revents*/, void* userdata) {
        auto* self = static_cast<Listener*>(userdata);
        UniqueFd conn(::accept4(fd, nullptr, nullptr, SOCK_CLOEXEC));
        if (conn && !self->reply.empty()) {
            // Answer at once and keep the connection: nothing here may block the loop the probe runs on.
            (void)::send(conn.get(), self->reply.data(), self->reply.size(), MSG_NOSIGNAL);
        }
        if (conn) {
            self->accepted.push_back(std::move(conn));
        }
        return 0;
    }
};

struct Loop {
    EventLoop event = [] {
        EventLoop e;
        check_r(sd_event_new(out(e)), "sd_event_new");
        return e;
    }();
    SdEventProber prober{event.get()};

    ProbeResult probe(const Check& check, UnitState unit = {}) {
        std::optional<ProbeResult> result;
        auto pending = prober.probe(check, unit, [&](const ProbeResult& r) { result = r; });
        CHECK_FALSE(result.has_value());  // never from inside probe()
        REQUIRE(run_until(event.get(), [&] { return result.has_value(); }));
        return *result;
    }
};

Check check_of(CheckKind kind, int port = 0) {
    Check c;
    c.kind = kind;
    c.port = port;
    c.timeout = 2s;
    return c;
}

}  // namespace

TEST_CASE("tcp probe: a listening port passes, a closed one fails with the reason", "[probes][component]") {
    Loop loop;
    Listener open(loop.event.get());
    CHECK(loop.probe(check_of(CheckKind::tcp, open.port)).ok);
    const int closed = open.port;
    open.source.reset();
    open.fd.reset();
    const auto result = loop.probe(check_of(CheckKind::tcp, closed));
    CHECK_FALSE(result.ok);
    CHECK(result.detail == "Connection refused");
    auto bad = check_of(CheckKind::tcp, 1);
    bad.host = "db.example";
    CHECK(loop.probe(bad).detail == "'db.example' is not an IP address");
}

TEST_CASE("http probe: the status must be one of the expected ones", "[probes][component]") {
    Loop loop;
    Listener ok(loop.event.get(), "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    Listener unavailable(loop.event.get(), "HTTP/1.0 503 Service Unavailable\r\n\r\n");
    auto check = check_of(CheckKind::http, ok.port);
    check.path = "/healthcheck";
    CHECK(loop.probe(check).ok);
    check.port = unavailable.port;
    const auto result = loop.probe(check);
    CHECK_FALSE(result.ok);
    CHECK(result.detail == "status 503");
    check.expect_status = {200, 503};
    CHECK(loop.probe(check).ok);
}

TEST_CASE("exec probe: exit 0 passes; a failure or a timeout says so", "[probes][component]") {
    Loop loop;
    auto check = check_of(CheckKind::exec);
    check.argv = {"true"};
    CHECK(loop.probe(check).ok);
    check.argv = {"sh", "-c", "exit 3"};
    const auto three = loop.probe(check);
    CHECK(three.detail == "exit status 3");
    CHECK(three.exit_status == 3);
    // Why it failed: the last line it wrote to stderr (a mariadb SIGNAL's message), never stdout.
    check.argv = {"sh", "-c", "echo out; echo first >&2; echo 'ERROR 1644 (45000): non-Primary' >&2; exit 1"};
    CHECK(loop.probe(check).detail == "exit status 1: ERROR 1644 (45000): non-Primary");
    check.argv = {"sh", "-c", "echo fine >&2"};
    CHECK(loop.probe(check).ok);
    check.argv = {"sleep", "30"};
    check.timeout = 200ms;
    const auto started = std::chrono::steady_clock::now();
    const auto slow = loop.probe(check);
    CHECK(slow.detail == "timed out");
    CHECK_FALSE(slow.exit_status);
    CHECK(std::chrono::steady_clock::now() - started < 5s);
    check.argv = {"/nonexistent/checker"};
    CHECK_THAT(loop.probe(check).detail, Catch::Contains("cannot run '/nonexistent/checker'"));
}

TEST_CASE(
    "amqp_peer: the main process must hold an established connection to the port", "[probes][component]") {
    Loop loop;
    Listener broker(loop.event.get());
    UnitState unit;
    unit.main_pid = static_cast<std::uint32_t>(::getpid());
    auto check = check_of(CheckKind::amqp_peer, broker.port);
    const auto before = loop.probe(check, unit);
    CHECK_FALSE(before.ok);
    CHECK_THAT(
        before.detail, Catch::Contains("no established connection to port " + std::to_string(broker.port)));

    UniqueFd client(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<uint16_t>(broker.port));
    // NOLINTNEXTLINE(cppcoreguidelines-pro-type-reinterpret-cast)
    check_errno(::connect(client.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), "connect");
    CHECK(loop.probe(check, unit).ok);
    unit.main_pid = 0;
    CHECK(loop.probe(check, unit).detail == "no main process");
}
