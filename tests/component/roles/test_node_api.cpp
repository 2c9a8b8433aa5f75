// storm-roled's library end to end on a private bus: the fake systemd, the daemon and a client on one
// event loop. What a client of org.stormclouds.Node1 sees: properties, methods, signals, named errors.
#include "bus_harness.hpp"
#include "fake_systemd.hpp"
#include "test_catalog.hpp"

#include <stormnode/common/temp_dir.hpp>
#include <stormnode/supervisor/daemon.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <fstream>
#include <regex>

using namespace stormnode;
using namespace stormnode::roles;
using namespace stormnode::roles::testing;
using namespace std::chrono_literals;

namespace {

// A method call that does not block the loop both ends of it run on.
struct Call {
    BusMessage reply;
    bool done = false;

    static int on_reply(sd_bus_message* m, void* userdata, sd_bus_error* /*e*/) {
        auto* self = static_cast<Call*>(userdata);
        self->reply.reset(sd_bus_message_ref(m));
        self->done = true;
        return 0;
    }
    [[nodiscard]] std::string error_name() const {
        const sd_bus_error* e = sd_bus_message_get_error(reply.get());
        return e != nullptr && e->name != nullptr ? e->name : "";
    }
};

struct World {
    TempDir dir{"stormnode-node-api"};
    PrivateBus bus;
    EventLoop event = [] {
        EventLoop e;
        check_r(sd_event_new(out(e)), "sd_event_new");
        return e;
    }();
    FakeSystemdService fake{bus.address(), event.get()};
    BusConnection daemon_bus = open_bus(bus.address(), event.get());
    BusConnection client = open_bus(bus.address(), event.get());
    std::unique_ptr<Daemon> daemon;
    std::vector<std::string> state_signals;
    std::vector<std::string> switch_signals;
    BusSlot state_match;
    BusSlot switch_match;

    World() {
        write_test_catalog(dir.path());
        for (const char* u : {"alpha-db.service", "alpha-api.service", "beta.service", "gamma.service"}) {
            fake.units[u];
        }
        check_r(
            sd_bus_match_signal(
                client.get(),
                out(state_match),
                kNodeBusName,
                kNodeObjectPath,
                kNodeInterface,
                "StateChanged",
                on_state,
                this),
            "match");
        check_r(
            sd_bus_match_signal(
                client.get(),
                out(switch_match),
                kNodeBusName,
                kNodeObjectPath,
                kNodeInterface,
                "RoleSwitched",
                on_switch,
                this),
            "match");
        DaemonOptions options;
        options.config = dir.path() / "node.yaml";
        options.catalog_dir = dir.path() / "catalog";
        options.state_dir = dir.path() / "state";
        options.config_root = dir.path() / "root";
        options.supervisor.backoff_initial = 50ms;
        options.supervisor.tier_deadline = 5s;
        daemon = std::make_unique<Daemon>(event.get(), daemon_bus.get(), options);
        daemon->start();
    }

    // storm-roled dies and starts again on the same state dir.
    void restart_daemon() {
        daemon.reset();
        daemon_bus = open_bus(bus.address(), event.get());
        DaemonOptions options;
        options.config = dir.path() / "node.yaml";
        options.catalog_dir = dir.path() / "catalog";
        options.state_dir = dir.path() / "state";
        options.config_root = dir.path() / "root";
        options.supervisor.backoff_initial = 50ms;
        options.supervisor.tier_deadline = 5s;
        daemon = std::make_unique<Daemon>(event.get(), daemon_bus.get(), options);
        daemon->start();
    }
    Call set_roles(const char* role, bool force) {
        return call(kNodeInterface, "SetRoles", "asb", 1, role, static_cast<int>(force));
    }

    static int on_state(sd_bus_message* m, void* userdata, sd_bus_error* /*e*/) {
        const char* s = nullptr;
        if (sd_bus_message_read(m, "s", &s) >= 0) {
            static_cast<World*>(userdata)->state_signals.emplace_back(s);
        }
        return 0;
    }
    static int on_switch(sd_bus_message* m, void* userdata, sd_bus_error* /*e*/) {
        char** old_roles = nullptr;
        char** new_roles = nullptr;
        const char* outcome = nullptr;
        if (sd_bus_message_read_strv(m, &old_roles) >= 0 && sd_bus_message_read_strv(m, &new_roles) >= 0 &&
            sd_bus_message_read(m, "s", &outcome) >= 0) {
            static_cast<World*>(userdata)->switch_signals.push_back(
                std::string(old_roles[0]) + "->" + new_roles[0] + " " + outcome);
        }
        for (char** v : {old_roles, new_roles}) {
            for (char** s = v; s != nullptr && *s != nullptr; ++s) {
                free(*s);  // NOLINT(cppcoreguidelines-no-malloc)
            }
            free(static_cast<void*>(v));  // NOLINT(cppcoreguidelines-no-malloc)
        }
        return 0;
    }

    template <typename... Args>
    Call call(const char* interface, const char* member, const char* types, Args... args) {
        Call c;
        BusMessage m;
        check_r(
            sd_bus_message_new_method_call(
                client.get(), out(m), kNodeBusName, kNodeObjectPath, interface, member),
            "call");
        if (types != nullptr) {
            check_r(sd_bus_message_append(m.get(), types, args...), "append");
        }
        check_r(sd_bus_call_async(client.get(), nullptr, m.get(), Call::on_reply, &c, 0), "call");
        REQUIRE(run_until(event.get(), [&] { return c.done; }));
        return c;
    }
    std::string get_string(const char* property) {
        auto c = call("org.freedesktop.DBus.Properties", "Get", "ss", kNodeInterface, property);
        const char* value = nullptr;
        check_r(sd_bus_message_read(c.reply.get(), "v", "s", &value), "read");
        return value;
    }
    std::vector<std::string> get_roles() {
        auto c = call("org.freedesktop.DBus.Properties", "Get", "ss", kNodeInterface, "Roles");
        check_r(sd_bus_message_enter_container(c.reply.get(), 'v', "as"), "read");
        char** strv = nullptr;
        check_r(sd_bus_message_read_strv(c.reply.get(), &strv), "read");
        std::vector<std::string> roles;
        for (char** s = strv; s != nullptr && *s != nullptr; ++s) {
            roles.emplace_back(*s);
            free(*s);  // NOLINT(cppcoreguidelines-no-malloc)
        }
        free(static_cast<void*>(strv));  // NOLINT(cppcoreguidelines-no-malloc)
        return roles;
    }
    static std::vector<std::string> read_units(sd_bus_message* m) {
        std::vector<std::string> rows;
        check_r(sd_bus_message_enter_container(m, 'a', "(sssu)"), "read");
        const char* unit = nullptr;
        const char* active = nullptr;
        const char* check = nullptr;
        uint32_t restarts = 0;
        while (sd_bus_message_read(m, "(sssu)", &unit, &active, &check, &restarts) > 0) {
            rows.push_back(std::string(unit) + " " + active + " " + check + " " + std::to_string(restarts));
        }
        return rows;
    }
    bool wait_state(const std::string& state) {
        return run_until(event.get(), [&] { return to_string(daemon->supervisor().state()) == state; });
    }
};

}  // namespace

TEST_CASE("Node1 publishes the roles' state, units and image", "[node1][component]") {
    World w;
    REQUIRE(w.wait_state("healthy"));
    CHECK(w.get_string("State") == "healthy");
    CHECK(w.get_roles() == std::vector<std::string>{"alpha"});
    auto units = w.call("org.freedesktop.DBus.Properties", "Get", "ss", kNodeInterface, "Units");
    check_r(sd_bus_message_enter_container(units.reply.get(), 'v', "a(sssu)"), "read");
    CHECK(
        World::read_units(units.reply.get()) ==
        std::vector<std::string>{"alpha-db.service active passing 0", "alpha-api.service active passing 0"});
    auto image = w.call("org.freedesktop.DBus.Properties", "Get", "ss", kNodeInterface, "Image");
    const char* commit = nullptr;
    const char* version = nullptr;
    check_r(sd_bus_message_read(image.reply.get(), "v", "(ss)", &commit, &version), "read");
    CHECK(std::string(commit).empty());  // this machine is not OSTree-booted

    // Tier order reached systemd, the config file was rendered, the state file written.
    const auto& calls = w.fake.calls;
    const auto db = std::find(calls.begin(), calls.end(), "StartUnit alpha-db.service");
    const auto api = std::find(calls.begin(), calls.end(), "StartUnit alpha-api.service");
    CHECK(db < api);
    CHECK(api != calls.end());
    CHECK(read_file(w.dir.path() / "root/etc/alpha/alpha.conf") == "host=node7 zone=z1\n");
    CHECK_THAT(read_file(w.dir.path() / "state/state.yaml"), Catch::Contains("roles: [alpha]"));
    CHECK(w.state_signals.back() == "healthy");
}

TEST_CASE("Node1 methods answer with named errors from the table", "[node1][component]") {
    World w;
    REQUIRE(w.wait_state("healthy"));
    auto units = w.call(kNodeInterface, "Units", "s", "alpha");
    CHECK(World::read_units(units.reply.get()).size() == 2);
    CHECK(
        w.call(kNodeInterface, "Units", "s", "beta").error_name() ==
        "org.stormclouds.Node1.Error.UnknownRole");
    CHECK(
        w.call(kNodeInterface, "RestartRole", "s", "nosuch").error_name() ==
        "org.stormclouds.Node1.Error.UnknownRole");
    const char* bad[] = {"nosuch", nullptr};
    auto set = w.call(kNodeInterface, "SetRoles", "asb", 1, bad[0], 0);
    CHECK(set.error_name() == "org.stormclouds.Node1.Error.InvalidRoles");
    CHECK_THAT(sd_bus_message_get_error(set.reply.get())->message, Catch::Contains("unknown role 'nosuch'"));
    CHECK(w.get_roles() == std::vector<std::string>{"alpha"});
}

TEST_CASE("a killed unit shows as degraded, then healthy after its restart", "[node1][component]") {
    World w;
    REQUIRE(w.wait_state("healthy"));
    REQUIRE(run_until(
        w.event.get(), [&] { return !w.state_signals.empty() && w.state_signals.back() == "healthy"; }));
    w.state_signals.clear();
    w.fake.kill_main("alpha-api.service");
    REQUIRE(w.wait_state("degraded"));
    CHECK(w.daemon->supervisor().reason() == "alpha-api.service: failed (signal)");
    REQUIRE(w.wait_state("healthy"));
    REQUIRE(run_until(w.event.get(), [&] { return w.state_signals.size() >= 2; }));
    CHECK(w.state_signals == std::vector<std::string>{"degraded", "healthy"});
    CHECK(std::count(w.fake.calls.begin(), w.fake.calls.end(), "RestartUnit alpha-api.service") == 1);
    auto units = w.call(kNodeInterface, "Units", "s", "alpha");
    CHECK(World::read_units(units.reply.get())[1] == "alpha-api.service active passing 1");
}

TEST_CASE("SetRoles switches roles and says so in RoleSwitched; RestartRole restarts", "[node1][component]") {
    World w;
    REQUIRE(w.wait_state("healthy"));
    auto set = w.call(kNodeInterface, "SetRoles", "asb", 1, "beta", 0);
    CHECK(set.error_name().empty());
    REQUIRE(run_until(w.event.get(), [&] { return !w.switch_signals.empty(); }));
    CHECK(w.switch_signals == std::vector<std::string>{"alpha->beta switched"});
    CHECK(w.get_roles() == std::vector<std::string>{"beta"});
    CHECK(w.fake.units["alpha-api.service"].active_state == "inactive");
    CHECK(w.fake.units["beta.service"].active_state == "active");
    CHECK_THAT(read_file(w.dir.path() / "state/state.yaml"), Catch::Contains("roles: [beta]"));

    const auto invocation = w.fake.units["beta.service"].invocation_id;
    CHECK(w.call(kNodeInterface, "RestartRole", "s", "beta").error_name().empty());
    REQUIRE(run_until(w.event.get(), [&] {
        return std::count(w.fake.calls.begin(), w.fake.calls.end(), "RestartUnit beta.service") == 1 &&
               w.daemon->supervisor().state() == RoleState::healthy;
    }));
    CHECK(w.fake.units["beta.service"].invocation_id != invocation);
}

TEST_CASE("a restarted daemon adopts running units without restarting them", "[node1][component]") {
    World w;
    REQUIRE(w.wait_state("healthy"));
    const auto invocation = w.fake.units["alpha-db.service"].invocation_id;
    const int starts = w.fake.starts;
    w.daemon.reset();
    w.daemon_bus = open_bus(w.bus.address(), w.event.get());
    DaemonOptions options;
    options.config = w.dir.path() / "node.yaml";
    options.catalog_dir = w.dir.path() / "catalog";
    options.state_dir = w.dir.path() / "state";
    options.config_root = w.dir.path() / "root";
    w.daemon = std::make_unique<Daemon>(w.event.get(), w.daemon_bus.get(), options);
    w.daemon->start();
    REQUIRE(w.wait_state("healthy"));
    CHECK(w.fake.starts == starts);
    CHECK(w.fake.units["alpha-db.service"].invocation_id == invocation);
    CHECK(std::count(w.fake.calls.begin(), w.fake.calls.end(), "RestartUnit alpha-db.service") == 0);
}

TEST_CASE("the installed introspection XML describes the live interface", "[node1][component]") {
    World w;
    auto c = w.call("org.freedesktop.DBus.Introspectable", "Introspect", nullptr);
    const char* xml = nullptr;
    check_r(sd_bus_message_read(c.reply.get(), "s", &xml), "read");
    const std::string live(xml);
    const auto installed =
        read_file(std::string(STORMNODE_SOURCE_DIR) + "/roles/supervisor/daemon/org.stormclouds.Node1.xml");
    const std::regex member(R"re(<(method|property|signal) name="([A-Za-z]+)"( type="([^"]+)")?)re");
    auto members = [&](const std::string& text) {
        std::set<std::string> found;
        const auto start = text.find("<interface name=\"org.stormclouds.Node1\">");
        const auto end = text.find("</interface>", start);
        const std::string part = text.substr(start, end - start);
        for (std::sregex_iterator it(part.begin(), part.end(), member), stop; it != stop; ++it) {
            found.insert((*it)[1].str() + " " + (*it)[2].str() + " " + (*it)[4].str());
        }
        return found;
    };
    CHECK(members(live) == members(installed));
    CHECK(members(live).size() == 10);
}

TEST_CASE(
    "SetRoles out of a quorum role is refused without cluster.yaml unless forced", "[node1][component]") {
    World w;
    REQUIRE(w.wait_state("healthy"));
    REQUIRE(w.set_roles("gamma", false).error_name().empty());  // joining a quorum role is never guarded
    REQUIRE(run_until(w.event.get(), [&] { return w.switch_signals.size() == 1; }));
    REQUIRE(w.wait_state("healthy"));

    auto refused = w.set_roles("beta", false);
    CHECK(refused.error_name() == "org.stormclouds.Node1.Error.Refused");
    CHECK_THAT(
        sd_bus_message_get_error(refused.reply.get())->message,
        Catch::Contains("leaving gamma: no cluster.yaml: cannot prove the cluster keeps quorum"));
    CHECK(w.get_roles() == std::vector<std::string>{"gamma"});
    CHECK(w.fake.units["gamma.service"].active_state == "active");
    // Refused before anything was recorded: the record is still the one of the switch to gamma.
    CHECK_THAT(read_file(w.dir.path() / "state/transaction.yaml"), Catch::Contains("new_roles: [gamma]"));

    CHECK(w.set_roles("beta", true).error_name().empty());
    REQUIRE(run_until(w.event.get(), [&] { return w.switch_signals.size() == 2; }));
    CHECK(w.switch_signals.back() == "gamma->beta switched");
    CHECK(w.get_roles() == std::vector<std::string>{"beta"});
}

TEST_CASE("with cluster.yaml members that keep quorum, leaving needs no force", "[node1][component]") {
    World w;
    REQUIRE(w.wait_state("healthy"));
    REQUIRE(w.set_roles("gamma", false).error_name().empty());
    REQUIRE(run_until(w.event.get(), [&] { return w.switch_signals.size() == 1; }));
    write_file_atomic(
        w.dir.path() / "cluster.yaml",
        "name: c1\nmembers:\n  - {hostname: node7, address: 10.0.0.7, roles: [gamma]}\n"
        "  - {hostname: node8, address: 10.0.0.8, roles: [gamma]}\n");
    auto refused = w.set_roles("beta", false);  // 1 of 2 left
    CHECK(refused.error_name() == "org.stormclouds.Node1.Error.Refused");
    CHECK_THAT(
        sd_bus_message_get_error(refused.reply.get())->message,
        Catch::Contains("leaving gamma would leave 1 of 2 gamma members"));
    write_file_atomic(
        w.dir.path() / "cluster.yaml",
        "name: c1\nmembers:\n  - {hostname: node7, address: 10.0.0.7, roles: [gamma]}\n"
        "  - {hostname: node8, address: 10.0.0.8, roles: [gamma]}\n"
        "  - {hostname: node9, address: 10.0.0.9, roles: [gamma]}\n");
    CHECK(w.set_roles("beta", false).error_name().empty());  // 2 of 3 left
    REQUIRE(run_until(w.event.get(), [&] { return w.switch_signals.size() == 2; }));
    CHECK(w.switch_signals.back() == "gamma->beta switched");
}

TEST_CASE(
    "a switch interrupted by storm-roled's death is rolled back when it starts again", "[node1][component]") {
    World w;
    REQUIRE(w.wait_state("healthy"));
    // What a crash in the middle of alpha -> beta leaves: the record, alpha's API stopped, beta running.
    w.daemon.reset();
    write_file_atomic(
        w.dir.path() / "state/transaction.yaml",
        "old_roles: [alpha]\nnew_roles: [beta]\nstarted_at: 2024-05-01T10:00:00Z\nphase: starting\n");
    w.fake.set_state("alpha-api.service", "inactive", "dead");
    w.fake.set_state("beta.service", "active", "running");
    w.switch_signals.clear();
    w.restart_daemon();
    REQUIRE(run_until(w.event.get(), [&] { return !w.switch_signals.empty(); }));
    REQUIRE(w.wait_state("healthy"));
    CHECK(w.switch_signals == std::vector<std::string>{"alpha->beta rolled-back"});
    CHECK(w.get_roles() == std::vector<std::string>{"alpha"});
    CHECK(w.fake.units["beta.service"].active_state == "inactive");
    CHECK(w.fake.units["alpha-api.service"].active_state == "active");
    const auto record = read_file(w.dir.path() / "state/transaction.yaml");
    CHECK_THAT(record, Catch::Contains("phase: done"));
    CHECK_THAT(record, Catch::Contains("outcome: rolled-back"));
    // Once resolved, the next start applies the roles as usual and switches nothing.
    w.restart_daemon();
    REQUIRE(w.wait_state("healthy"));
    (void)w.get_roles();  // a round trip: a RoleSwitched sent before the reply has arrived by now
    CHECK(w.switch_signals.size() == 1);
}
