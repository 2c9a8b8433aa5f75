// `stormctl role status|set|restart`, the built binary, against storm-roled's library serving Node1 on a
// private bus (DBUS_SYSTEM_BUS_ADDRESS points stormctl at it). The daemon and the fake systemd run on
// their own thread and event loop, as storm-roled would in its own process.
#include "bus_harness.hpp"
#include "fake_systemd.hpp"
#include "test_catalog.hpp"

#include <stormnode/common/subprocess.hpp>
#include <stormnode/node_client/node_client.hpp>
#include <stormnode/supervisor/daemon.hpp>

#include <catch2/catch.hpp>
#include <sys/eventfd.h>
#include <unistd.h>

#include <future>
#include <sstream>
#include <thread>

using namespace stormnode;
using namespace stormnode::roles;
using namespace stormnode::roles::testing;
using namespace std::chrono_literals;

namespace {

class DaemonThread {
public:
    DaemonThread() {
        write_test_catalog(dir_.path());
        auto ready = ready_.get_future();
        thread_ = std::thread([this] { run(); });
        ready.get();  // rethrows what went wrong in the thread
    }
    DaemonThread(const DaemonThread&) = delete;
    DaemonThread& operator=(const DaemonThread&) = delete;
    DaemonThread(DaemonThread&&) = delete;
    DaemonThread& operator=(DaemonThread&&) = delete;
    ~DaemonThread() {
        const std::uint64_t one = 1;
        (void)::write(stop_.get(), &one, sizeof one);
        thread_.join();
    }
    [[nodiscard]] const std::string& address() const { return bus_.address(); }
    [[nodiscard]] const TempDir& dir() const { return dir_; }

private:
    void run() {
        bool started = false;
        try {
            EventLoop event;
            check_r(sd_event_new(out(event)), "sd_event_new");
            FakeSystemdService fake(bus_.address(), event.get());
            for (const char* u :
                 {"alpha-db.service",
                  "alpha-api.service",
                  "beta.service",
                  "gamma.service",
                  "broken.service"}) {
                fake.units[u];
            }
            fake.units["broken.service"].next_job_result = "failed";
            auto daemon_bus = open_bus(bus_.address(), event.get());
            DaemonOptions options;
            options.config = dir_.path() / "node.yaml";
            options.catalog_dir = dir_.path() / "catalog";
            options.state_dir = dir_.path() / "state";
            options.config_root = dir_.path() / "root";
            options.supervisor.backoff_initial = 20ms;
            options.supervisor.max_failures = 3;
            options.supervisor.tier_deadline = 5s;
            Daemon daemon(event.get(), daemon_bus.get(), options);
            daemon.start();
            EventSource stop;
            check_r(
                sd_event_add_io(
                    event.get(),
                    out(stop),
                    stop_.get(),
                    EPOLLIN,
                    [](sd_event_source* s, int, uint32_t, void*) {
                        return sd_event_exit(sd_event_source_get_event(s), 0);
                    },
                    nullptr),
                "stop source");
            started = true;
            ready_.set_value();
            check_r(sd_event_loop(event.get()), "running the event loop");
        } catch (...) {
            if (!started) {
                ready_.set_exception(std::current_exception());
            }
        }
    }

    TempDir dir_{"stormnode-stormctl"};
    PrivateBus bus_;
    UniqueFd stop_{eventfd(0, EFD_CLOEXEC)};
    std::promise<void> ready_;
    std::thread thread_;
};

ProcessResult stormctl(const std::string& address, std::vector<std::string> args) {
    Command command;
    command.argv = {STORMCTL_PATH, "role"};
    command.argv.insert(command.argv.end(), args.begin(), args.end());
    command.env = {{"DBUS_SYSTEM_BUS_ADDRESS", address}};
    command.timeout = 30s;  // a guard, not a wait
    return run(command);
}

// The test's own view of Node1, read directly from the properties.
class Observer {
public:
    explicit Observer(const std::string& address) : bus_(open_bus(address, nullptr)) {
        check_r(
            sd_bus_match_signal(
                bus_.get(),
                out(match_),
                kNodeBusName,
                kNodeObjectPath,
                kNodeInterface,
                "StateChanged",
                [](sd_bus_message*, void*, sd_bus_error*) { return 0; },
                nullptr),
            "match");
    }
    std::string string(const char* property) {
        sd_bus_error error = SD_BUS_ERROR_NULL;
        char* value = nullptr;
        const int r = sd_bus_get_property_string(
            bus_.get(), kNodeBusName, kNodeObjectPath, kNodeInterface, property, &error, &value);
        sd_bus_error_free(&error);
        check_r(r, property);
        std::string text(value);
        free(value);  // NOLINT(cppcoreguidelines-no-malloc)
        return text;
    }
    std::vector<std::string> roles() {
        sd_bus_error error = SD_BUS_ERROR_NULL;
        char** strv = nullptr;
        const int r = sd_bus_get_property_strv(
            bus_.get(), kNodeBusName, kNodeObjectPath, kNodeInterface, "Roles", &error, &strv);
        sd_bus_error_free(&error);
        check_r(r, "Roles");
        std::vector<std::string> items;
        for (char** s = strv; s != nullptr && *s != nullptr; ++s) {
            items.emplace_back(*s);
            free(*s);  // NOLINT(cppcoreguidelines-no-malloc)
        }
        free(static_cast<void*>(strv));  // NOLINT(cppcoreguidelines-no-malloc)
        return items;
    }
    // "unit active check restarts", one per unit.
    std::vector<std::string> units() {
        sd_bus_error error = SD_BUS_ERROR_NULL;
        BusMessage reply;
        const int r = sd_bus_get_property(
            bus_.get(),
            kNodeBusName,
            kNodeObjectPath,
            kNodeInterface,
            "Units",
            &error,
            out(reply),
            "a(sssu)");
        sd_bus_error_free(&error);
        check_r(r, "Units");
        check_r(sd_bus_message_enter_container(reply.get(), 'a', "(sssu)"), "Units");
        std::vector<std::string> rows;
        const char* unit = nullptr;
        const char* active = nullptr;
        const char* check = nullptr;
        uint32_t restarts = 0;
        while (
            check_r(sd_bus_message_read(reply.get(), "(sssu)", &unit, &active, &check, &restarts), "Units") >
            0) {
            rows.push_back(std::string(unit) + " " + active + " " + check + " " + std::to_string(restarts));
        }
        return rows;
    }
    // The match was added before the first read, so no change is missed between them.
    bool wait_state(const std::string& want) {
        const auto deadline = std::chrono::steady_clock::now() + 10s;
        while (string("State") != want) {
            while (check_r(sd_bus_process(bus_.get(), nullptr), "process") > 0) {
            }
            const auto left = deadline - std::chrono::steady_clock::now();
            if (left <= 0s) {
                return false;
            }
            check_r(
                sd_bus_wait(
                    bus_.get(),
                    static_cast<uint64_t>(
                        std::chrono::duration_cast<std::chrono::microseconds>(left).count())),
                "wait");
        }
        return true;
    }

private:
    BusConnection bus_;
    BusSlot match_;
};

// The output's lines with runs of blanks collapsed: "alpha-db.service active passing 0".
std::vector<std::string> squeezed_lines(const std::string& text) {
    std::vector<std::string> lines;
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
        std::istringstream words(line);
        std::string word;
        std::string joined;
        while (words >> word) {
            joined += (joined.empty() ? "" : " ") + word;
        }
        lines.push_back(joined);
    }
    return lines;
}

bool has_line(const std::vector<std::string>& lines, const std::string& line) {
    return std::find(lines.begin(), lines.end(), line) != lines.end();
}

}  // namespace

TEST_CASE("stormctl role status prints what the Node1 properties say", "[stormctl][component]") {
    DaemonThread daemon;
    Observer node(daemon.address());
    REQUIRE(node.wait_state("healthy"));

    const auto status = stormctl(daemon.address(), {"status"});
    INFO(status.out << status.err);
    REQUIRE(status.exit_status == 0);
    const auto lines = squeezed_lines(status.out);
    CHECK(node.roles() == std::vector<std::string>{"alpha"});
    CHECK(has_line(lines, "roles: alpha"));
    CHECK(has_line(lines, "state: " + node.string("State")));
    CHECK(has_line(lines, "image: (not booted from an OSTree commit)"));
    CHECK(has_line(lines, "UNIT ACTIVE CHECK RESTARTS"));
    const auto units = node.units();
    REQUIRE(units.size() == 2);
    for (const auto& unit : units) {
        CHECK(has_line(lines, unit));
    }
    CHECK(units[0] == "alpha-db.service active passing 0");

    const auto json = stormctl(daemon.address(), {"status", "--json"});
    REQUIRE(json.exit_status == 0);
    CHECK(
        json.out ==
        "{\"roles\":[\"alpha\"],\"state\":\"healthy\",\"reason\":\"\",\"units\":["
        "{\"unit\":\"alpha-db.service\",\"active_state\":\"active\",\"check_state\":\"passing\",\"restarts\":"
        "0},"
        "{\"unit\":\"alpha-api.service\",\"active_state\":\"active\",\"check_state\":\"passing\","
        "\"restarts\":0}],"
        "\"image\":{\"commit\":\"\",\"version\":\"\"}}\n");
}

TEST_CASE("stormctl role set waits for the switch and prints its outcome", "[stormctl][component]") {
    DaemonThread daemon;
    Observer node(daemon.address());
    REQUIRE(node.wait_state("healthy"));

    const auto set = stormctl(daemon.address(), {"set", "beta"});
    INFO(set.out << set.err);
    CHECK(set.exit_status == 0);
    CHECK(set.out == "switched: alpha -> beta\n");
    CHECK(node.roles() == std::vector<std::string>{"beta"});
    CHECK_THAT(
        read_file(daemon.dir().path() / "state/transaction.yaml"), Catch::Contains("outcome: switched"));

    const auto broken = stormctl(daemon.address(), {"set", "broken"});
    INFO(broken.out << broken.err);
    CHECK(broken.exit_status == 1);
    CHECK_THAT(
        broken.out,
        Catch::StartsWith("rolled back: broken did not become healthy; the node runs beta again\n"));
    CHECK(node.roles() == std::vector<std::string>{"beta"});

    const auto restart = stormctl(daemon.address(), {"restart", "beta"});
    CHECK(restart.exit_status == 0);
    CHECK(restart.out == "restarting the units of beta (see stormctl role status)\n");
}

TEST_CASE(
    "stormctl role set: a bad role is a usage error with the daemon's message", "[stormctl][component]") {
    DaemonThread daemon;
    Observer node(daemon.address());
    REQUIRE(node.wait_state("healthy"));

    const auto bad = stormctl(daemon.address(), {"set", "alpha,nosuch"});
    CHECK(bad.exit_status == 2);
    CHECK(bad.out.empty());
    CHECK_THAT(bad.err, Catch::Contains("unknown role 'nosuch'"));
    CHECK_THAT(bad.err, Catch::Contains("[org.stormclouds.Node1.Error.InvalidRoles]"));
    CHECK(node.roles() == std::vector<std::string>{"alpha"});

    const auto unknown = stormctl(daemon.address(), {"restart", "beta"});
    CHECK(unknown.exit_status == 2);
    CHECK_THAT(unknown.err, Catch::Contains("role 'beta' is not applied on this node"));
    CHECK_THAT(unknown.err, Catch::Contains("[org.stormclouds.Node1.Error.UnknownRole]"));

    CHECK(stormctl(daemon.address(), {"set"}).exit_status == 2);  // CLI11: roles are required
}

TEST_CASE("stormctl role set is refused by the quorum guard unless --force", "[stormctl][component]") {
    DaemonThread daemon;
    Observer node(daemon.address());
    REQUIRE(node.wait_state("healthy"));
    REQUIRE(stormctl(daemon.address(), {"set", "gamma"}).exit_status == 0);

    const auto refused = stormctl(daemon.address(), {"set", "beta"});
    CHECK(refused.exit_status == 1);
    CHECK_THAT(
        refused.err,
        Catch::Contains("leaving gamma: no cluster.yaml: cannot prove the cluster keeps quorum"));
    CHECK_THAT(refused.err, Catch::Contains("[org.stormclouds.Node1.Error.Refused]"));
    CHECK(node.roles() == std::vector<std::string>{"gamma"});

    const auto forced = stormctl(daemon.address(), {"set", "beta", "--force"});
    CHECK(forced.exit_status == 0);
    CHECK(forced.out == "switched: gamma -> beta\n");
}

TEST_CASE("stormctl role status says so when storm-roled is not running", "[stormctl][component]") {
    PrivateBus bus;
    const auto status = stormctl(bus.address(), {"status"});
    CHECK(status.exit_status == 1);
    CHECK_THAT(status.err, Catch::Contains("storm-roled is not running"));
    const auto no_bus = stormctl("unix:path=/nonexistent/bus", {"status"});
    CHECK(no_bus.exit_status == 1);
    CHECK_THAT(no_bus.err, Catch::Contains("connecting to the system bus"));
}

// What `stormctl pxe report healthy --when-healthy` waits with on a network-installed node.
TEST_CASE(
    "NodeClient::wait_for_state returns the properties once the node is in that state",
    "[node-client][component]") {
    DaemonThread daemon;
    NodeClient client(open_bus(daemon.address(), nullptr));
    const auto status = client.wait_for_state("healthy", 30s);
    CHECK(status.state == "healthy");
    CHECK(status.roles == std::vector<std::string>{"alpha"});
    // A state the node does not reach: the time limit ends the wait.
    try {
        (void)client.wait_for_state("failed", 300ms);
        FAIL("expected a timeout");
    } catch (const Error& e) {
        CHECK(e.code() == Errc::timeout);
    }
}

TEST_CASE(
    "NodeClient::wait_for_state waits for storm-roled to come onto the bus", "[node-client][component]") {
    PrivateBus bus;
    NodeClient client(open_bus(bus.address(), nullptr));
    try {
        (void)client.wait_for_state("healthy", 300ms);
        FAIL("expected a timeout");
    } catch (const Error& e) {
        CHECK(e.code() == Errc::timeout);  // not "storm-roled is not running": it may start later
    }
}
