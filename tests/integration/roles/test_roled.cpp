// storm-roled against a real systemd: the test rootfs in systemd-nspawn runs the daemon built here
// with the test role (tests/data/roles) and the real quorum role, and the tests break real units.
// Issue 3, integration scenarios (a)-(f).
#include <stormnode/common/error.hpp>
#include <stormnode/common/subprocess.hpp>
#include <stormnode/test/bus.hpp>
#include <stormnode/test/roled_node.hpp>
#include <stormnode/test/rootfs_cache.hpp>

#include <catch2/catch.hpp>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <map>
#include <optional>
#include <sstream>

using namespace std::chrono_literals;
namespace st = stormnode::test;

namespace {

const st::Rootfs& rootfs() {
    static const st::Rootfs instance = st::default_test_rootfs();
    return instance;
}

st::RoledOptions options(
    std::vector<std::string> roles = {"testsvc"}, std::vector<std::string> features = {}) {
    st::RoledOptions o;
    o.rootfs = rootfs().tree;
    // STORMNODE_TEST_ROLED: another storm-roled binary (an installed or patched one) to test.
    const char* roled = std::getenv("STORMNODE_TEST_ROLED");  // NOLINT(concurrency-mt-unsafe)
    o.roled_binary = roled != nullptr && *roled != '\0' ? roled : STORMNODE_ROLED_BINARY;
    o.source_dir = STORMNODE_SOURCE_DIR;
    o.roles = std::move(roles);
    o.features = std::move(features);
    return o;
}

bool starts_with(const std::string& s, std::string_view prefix) {
    return s.rfind(prefix, 0) == 0;
}

// State's first word: "failed(testsvc-crash.service: ...)" -> "failed".
std::string state_word(const std::string& state) {
    return state.substr(0, state.find_first_of("( :"));
}

// The State a Node1 signal announces, if it announces one (StateChanged(s) or PropertiesChanged).
std::optional<std::string> announced_state(const st::Signal& s) {
    if (s.member == "StateChanged") {
        const char* state = nullptr;
        sd_bus_message_rewind(s.message.get(), 1);
        if (sd_bus_message_read(s.message.get(), "s", &state) > 0) {
            return std::string(state);
        }
    }
    if (s.member == "PropertiesChanged") {
        std::string iface;
        const auto props = st::decode_properties_changed(s.message.get(), &iface);
        if (const auto it = props.find("State"); iface == st::kNode1Interface && it != props.end()) {
            return it->second;
        }
    }
    return std::nullopt;
}

st::Signal wait_announced(st::RoledNode& node, const std::string& word, std::chrono::milliseconds timeout) {
    return node.node_signals().wait_for(
        [&](const st::Signal& s) {
            const auto state = announced_state(s);
            return state && state_word(*state) == word;
        },
        timeout,
        "storm-roled to announce State '" + word + "'");
}

const st::UnitRow* find_row(const std::vector<st::UnitRow>& rows, const std::string& unit) {
    const auto it =
        std::find_if(rows.begin(), rows.end(), [&](const st::UnitRow& r) { return r.unit == unit; });
    return it == rows.end() ? nullptr : &*it;
}

constexpr const char* kHealthyMessageId = "79e80d9d7df24d21be38309c7d8cdfb5";
constexpr const char* kDegradedMessageId = "208446a13b5040008a69dc14637e56fb";

// The role's "healthy" and "degraded" journal messages, oldest first.
std::vector<st::JournalEntry> healthy_or_degraded_messages(st::RoledNode& node) {
    return node.journal(
        {std::string("MESSAGE_ID=") + kHealthyMessageId, std::string("MESSAGE_ID=") + kDegradedMessageId});
}

std::uint64_t usec_property(st::RoledNode& node, const std::string& unit, const std::string& property) {
    return std::stoull(node.unit_property(unit, property));
}

}  // namespace

TEST_CASE("(a) the test role comes up healthy, tier by tier", "[roles][integration]") {
    st::RoledNode node(options());
    const auto state =
        node.wait_for_state([](const std::string& s) { return state_word(s) == "healthy"; }, 60s, "healthy");
    CHECK(state == "healthy");
    CHECK(node.roles() == std::vector<std::string>{"testsvc"});

    const auto rows = node.units();
    for (const auto* unit : {"testsvc-db.service", "testsvc-api.service", "testsvc-worker.service"}) {
        const auto* row = find_row(rows, unit);
        REQUIRE(row != nullptr);
        CHECK(row->active_state == "active");
        CHECK(row->check_state == "passing");
        CHECK(node.unit_property(unit, "ActiveState") == "active");
    }
    // testsvc-crash needs the crashloop feature, which this node does not enable.
    CHECK(find_row(rows, "testsvc-crash.service") == nullptr);

    // Tier 2 started only after tier 1's check passed: testsvc-db listens 1 s after it starts and
    // stamps that moment; both tier-2 units left "inactive" after it.
    const auto listening_ns =
        std::stoull(node.container().exec_checked({"cat", "/run/testsvc/db.listening"}).out);
    const auto listening_us = listening_ns / 1000;
    for (const auto* unit : {"testsvc-api.service", "testsvc-worker.service"}) {
        INFO(
            unit << " started "
                 << static_cast<long long>(usec_property(node, unit, "InactiveExitTimestamp")) -
                        static_cast<long long>(listening_us)
                 << " us after testsvc-db listened");
        CHECK(usec_property(node, unit, "InactiveExitTimestamp") >= listening_us);
    }
    CHECK(usec_property(node, "testsvc-db.service", "InactiveExitTimestamp") < listening_us);

    // The milestone is in the journal with its fixed MESSAGE_ID and the role's field.
    const auto healthy = node.journal({std::string("MESSAGE_ID=") + kHealthyMessageId});
    REQUIRE_FALSE(healthy.empty());
    CHECK(healthy.back().at("STORMNODE_ROLE") == "testsvc");
    // On the way up it said "starting", then "healthy": no "degraded" warning for testsvc-worker (an
    // optional unit) while it was still coming up.
    const auto milestones = healthy_or_degraded_messages(node);
    REQUIRE_FALSE(milestones.empty());
    INFO(milestones.front().at("MESSAGE"));
    CHECK(milestones.front().at("MESSAGE_ID") == kHealthyMessageId);
}

TEST_CASE("(a) the real quorum role's corosync-qnetd comes up healthy", "[roles][integration]") {
    st::RoledNode node(options({"quorum"}));
    const auto state = node.wait_for_state(
        [](const std::string& s) { return state_word(s) != "starting"; }, 90s, "quorum to settle");
    INFO(node.container().exec({"journalctl", "--no-pager", "-n", "40", "-u", "storm-roled.service"}).out);
    CHECK(state == "healthy");
    const auto rows = node.units();
    const auto* qnetd = find_row(rows, "corosync-qnetd.service");
    REQUIRE(qnetd != nullptr);
    CHECK(qnetd->active_state == "active");
    CHECK(qnetd->check_state == "passing");
    // garb.service needs the galera_arbitrator feature: not supervised here.
    CHECK(find_row(rows, "garb.service") == nullptr);
    CHECK(node.container().exec({"nc", "-z", "127.0.0.1", "5403"}).ok());
}

TEST_CASE(
    "(b) a SIGKILLed unit is seen, restarted, and the role goes degraded then healthy",
    "[roles][integration]") {
    st::RoledNode node(options());
    node.wait_for_state([](const std::string& s) { return s == "healthy"; }, 60s, "healthy");
    const auto before = node.unit_property("testsvc-worker.service", "InvocationID");
    const auto* row = find_row(node.units(), "testsvc-worker.service");
    REQUIRE(row != nullptr);
    const auto restarts_before = row->restarts;

    node.node_signals().clear();
    REQUIRE(::kill(node.main_pid_on_host("testsvc-worker.service"), SIGKILL) == 0);

    wait_announced(node, "degraded", 10s);
    wait_announced(node, "healthy", 30s);
    // "healthy" means every check passes: the restarted unit's too, and the state does not flap back.
    const auto* restarted = find_row(node.units(), "testsvc-worker.service");
    REQUIRE(restarted != nullptr);
    CHECK(restarted->check_state == "passing");
    CHECK(node.state() == "healthy");
    CHECK(node.unit_property("testsvc-worker.service", "ActiveState") == "active");
    CHECK(node.unit_property("testsvc-worker.service", "InvocationID") != before);
    const auto rows = node.units();
    row = find_row(rows, "testsvc-worker.service");
    REQUIRE(row != nullptr);
    CHECK(row->restarts == restarts_before + 1);
    // The other units were left alone.
    CHECK(node.unit_property("testsvc-db.service", "NRestarts") == "0");
    const auto degraded =
        node.journal({std::string("MESSAGE_ID=") + kDegradedMessageId, "STORMNODE_ROLE=testsvc"});
    REQUIRE_FALSE(degraded.empty());
    CHECK(degraded.front().at("MESSAGE").find("testsvc-worker.service") != std::string::npos);
    REQUIRE(degraded.front().count("STORMNODE_UNIT") == 1);
    CHECK(degraded.front().at("STORMNODE_UNIT") == "testsvc-worker.service");
}

TEST_CASE(
    "(a) an optional unit still warming up keeps the role starting, then it is healthy, never degraded",
    "[roles][integration]") {
    // testsvc-slow (degraded-if-down) listens 2 s after its start, beside testsvc-api (required), which
    // answers at once: the required units are all up well before it.
    st::RoledNode node(options({"testsvc"}, {"slowoptional"}));
    const auto state = node.wait_for_state(
        [](const std::string& s) { return state_word(s) != "starting"; }, 60s, "the role to settle");
    CHECK(state == "healthy");
    const auto* slow = find_row(node.units(), "testsvc-slow.service");
    REQUIRE(slow != nullptr);
    CHECK(slow->check_state == "passing");
    const auto milestones = healthy_or_degraded_messages(node);
    REQUIRE_FALSE(milestones.empty());
    INFO(milestones.front().at("MESSAGE"));
    CHECK(milestones.front().at("MESSAGE_ID") == kHealthyMessageId);
    // "healthy" came once it listened; testsvc-api, started with it, was up long before.
    const auto slow_listening_us =
        std::stoull(node.container().exec_checked({"cat", "/run/testsvc/slow.listening"}).out) / 1000;
    CHECK(std::stoull(milestones.front().at("__REALTIME_TIMESTAMP")) >= slow_listening_us);
    CHECK(
        usec_property(node, "testsvc-api.service", "InactiveExitTimestamp") + 1'000'000 < slow_listening_us);
}

TEST_CASE(
    "(a) a unit skipped by a failed Condition is not applicable and the role is healthy",
    "[roles][integration]") {
    // testsvc-nothere has ConditionPathExists=/nonexistent, like chrony's ConditionCapability=CAP_SYS_TIME
    // in a container: systemd skips its start and the job is still "done".
    st::RoledNode node(options({"testsvc"}, {"notapplicable"}));
    const auto state =
        node.wait_for_state([](const std::string& s) { return state_word(s) == "healthy"; }, 60s, "healthy");
    CHECK(state == "healthy");
    const auto* row = find_row(node.units(), "testsvc-nothere.service");
    REQUIRE(row != nullptr);
    CHECK(row->check_state == "not-applicable");
    CHECK(row->active_state == "inactive");
    CHECK(node.unit_property("testsvc-nothere.service", "ConditionResult") == "false");
    CHECK(node.unit_property("testsvc-nothere.service", "NRestarts") == "0");
    // Started once, never retried.
    CHECK(node.journal({"_PID=1", "UNIT=testsvc-nothere.service", "JOB_TYPE=start"}).size() == 1);
}

TEST_CASE(
    "(c) a unit that always fails backs off, the role fails with its reason, and storm-roled stays idle",
    "[roles][integration]") {
    auto o = options({"testsvc"}, {"crashloop"});
    // Gives up after 5 failures: with a 0.25 s backoff doubling that is ~4 s (the default 1 s: ~15 s).
    o.roled_arguments = {"--max-failures=5", "--backoff-initial=0.25"};
    st::RoledNode node(o);
    const pid_t roled = node.roled_pid_on_host();
    const auto cpu_start = st::process_stats(roled).cpu_ticks;

    wait_announced(node, "failed", 120s);
    const auto state = node.state();
    const auto reason =
        st::get_property(node.bus(), st::kNode1Service, st::kNode1Path, st::kNode1Interface, "Reason");
    INFO("State: " << state << ", Reason: " << reason);
    CHECK(state == "failed");
    CHECK(reason.find("testsvc-crash.service") != std::string::npos);
    const auto* row = find_row(node.units(), "testsvc-crash.service");
    REQUIRE(row != nullptr);
    CHECK(row->check_state == "gave-up");

    // Backoff: the gaps between the crash unit's starts grow.
    const auto starts = node.journal({"_PID=1", "UNIT=testsvc-crash.service", "JOB_TYPE=start"});
    std::vector<std::uint64_t> at;
    for (const auto& e : starts) {
        at.push_back(std::stoull(e.at("__MONOTONIC_TIMESTAMP")));
    }
    INFO("starts of testsvc-crash: " << at.size());
    REQUIRE(at.size() >= 4);
    for (std::size_t i = 2; i < at.size(); ++i) {
        INFO(
            "gap " << i << ": " << (at[i] - at[i - 1]) / 1000 << " ms after "
                   << (at[i - 1] - at[i - 2]) / 1000 << " ms");
        CHECK(at[i] - at[i - 1] > at[i - 1] - at[i - 2]);
    }
    // The reason is in the journal with the role and unit.
    const auto failures = node.journal({"MESSAGE_ID=9e4418d68d2f4315bdfe22076a079244"});
    REQUIRE_FALSE(failures.empty());
    CHECK(failures.back().at("STORMNODE_ROLE") == "testsvc");
    REQUIRE(failures.back().count("STORMNODE_UNIT") == 1);
    CHECK(failures.back().at("STORMNODE_UNIT") == "testsvc-crash.service");

    // A crash loop never spins: over the whole loop storm-roled used well under a second of CPU, and
    // once failed it stays quiet (no Node1 signal for 3 s) and uses no CPU to speak of.
    const auto cpu_failed = st::process_stats(roled).cpu_ticks;
    const long ticks = ::sysconf(_SC_CLK_TCK);
    INFO(
        "storm-roled CPU during the crash loop: "
        << (cpu_failed - cpu_start) * 1000 / static_cast<std::uint64_t>(ticks) << " ms");
    CHECK((cpu_failed - cpu_start) * 1000 / static_cast<std::uint64_t>(ticks) < 500);
    // Once failed it gives up for good: over the next 3 s (a wait for a start job that must not come)
    // nothing restarts the unit and storm-roled uses no CPU to speak of.
    st::SignalRecorder jobs(
        node.bus(),
        "type='signal',sender='org.freedesktop.systemd1',interface='org.freedesktop.systemd1.Manager',"
        "member='JobNew'");
    CHECK_THROWS_AS(
        jobs.wait_for(
            [](const st::Signal& s) {
                uint32_t id = 0;
                const char* job = nullptr;
                const char* unit = nullptr;
                sd_bus_message_rewind(s.message.get(), 1);
                return sd_bus_message_read(s.message.get(), "uos", &id, &job, &unit) > 0 &&
                       std::string(unit) == "testsvc-crash.service";
            },
            3s,
            "a new job for testsvc-crash.service"),
        stormnode::Error);
    const auto cpu_after = st::process_stats(roled).cpu_ticks;
    CHECK(cpu_after - cpu_failed <= 2);
    CHECK(node.roled_pid_on_host() == roled);
}

TEST_CASE(
    "(d) storm-roled killed: systemd restarts it and it adopts the healthy units", "[roles][integration]") {
    st::RoledNode node(options());
    node.wait_for_state([](const std::string& s) { return s == "healthy"; }, 60s, "healthy");
    std::map<std::string, std::string> invocations;
    for (const auto* unit : {"testsvc-db.service", "testsvc-api.service", "testsvc-worker.service"}) {
        invocations[unit] = node.unit_property(unit, "InvocationID");
    }
    const auto roled_invocation = node.unit_property("storm-roled.service", "InvocationID");

    st::SignalRecorder roled_changes(
        node.bus(),
        "type='signal',sender='org.freedesktop.systemd1',interface='org.freedesktop.DBus.Properties',"
        "member='PropertiesChanged',path='" +
            stormnode::test::systemd1::load_unit(node.bus(), "storm-roled.service") + "'");
    REQUIRE(::kill(node.roled_pid_on_host(), SIGKILL) == 0);
    // Restart=always: it goes down and comes back active (READY=1 again).
    roled_changes.wait_for(
        [](const st::Signal& s) {
            std::string iface;
            const auto props = st::decode_properties_changed(s.message.get(), &iface);
            const auto it = props.find("ActiveState");
            return it != props.end() && it->second != "active";
        },
        10s,
        "storm-roled.service to leave active");
    roled_changes.wait_for(
        [](const st::Signal& s) {
            std::string iface;
            const auto props = st::decode_properties_changed(s.message.get(), &iface);
            const auto it = props.find("ActiveState");
            return it != props.end() && it->second == "active";
        },
        30s,
        "storm-roled.service to be active again");
    CHECK(node.unit_property("storm-roled.service", "InvocationID") != roled_invocation);
    CHECK(node.unit_property("storm-roled.service", "NRestarts") == "1");

    node.wait_for_state(
        [](const std::string& s) { return s == "healthy"; }, 30s, "healthy after the daemon's restart");
    for (const auto& [unit, id] : invocations) {
        INFO(unit);
        CHECK(node.unit_property(unit, "InvocationID") == id);
        CHECK(node.unit_property(unit, "NRestarts") == "0");
    }
}

TEST_CASE("(e) the bus policy lets anyone read but only root call SetRoles", "[roles][integration]") {
    st::RoledNode node(options());
    node.wait_for_state([](const std::string& s) { return s != "stopped"; }, 60s, "running");
    const std::vector<std::string> as_nobody{
        "setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"};
    auto with = [](std::vector<std::string> prefix, const std::vector<std::string>& argv) {
        prefix.insert(prefix.end(), argv.begin(), argv.end());
        return prefix;
    };
    const std::vector<std::string> read_state{
        "busctl",
        "get-property",
        "org.stormclouds.Node1",
        "/org/stormclouds/Node1",
        "org.stormclouds.Node1",
        "State"};
    const std::vector<std::string> set_roles{
        "busctl",
        "call",
        "org.stormclouds.Node1",
        "/org/stormclouds/Node1",
        "org.stormclouds.Node1",
        "SetRoles",
        "asb",
        "1",
        "quorum",
        "false"};
    const std::vector<std::string> introspect{
        "busctl", "introspect", "org.stormclouds.Node1", "/org/stormclouds/Node1"};

    const auto read = node.container().exec(with(as_nobody, read_state));
    INFO(read.err);
    CHECK(read.ok());
    CHECK(starts_with(read.out, "s \""));
    CHECK(node.container().exec(with(as_nobody, introspect)).ok());

    const auto refused = node.container().exec(with(as_nobody, set_roles));
    INFO(refused.out << refused.err);
    CHECK_FALSE(refused.ok());
    CHECK(refused.err.find("Access denied") != std::string::npos);
    // It was dbus-daemon's policy that refused it, before storm-roled saw it (busctl prints the same
    // "Access denied" for sd-bus's own capability check): the bus logs the rejection.
    const auto rejections = node.journal({"_COMM=dbus-daemon"});
    const auto rejected = std::any_of(rejections.begin(), rejections.end(), [](const st::JournalEntry& e) {
        const auto& m = e.at("MESSAGE");
        return m.find("Rejected send message") != std::string::npos &&
               m.find("uid=65534") != std::string::npos && m.find("member=\"SetRoles\"") != std::string::npos;
    });
    CHECK(rejected);
    // Nothing changed.
    CHECK(node.roles() == std::vector<std::string>{"testsvc"});
    // RestartRole is a method too.
    const auto restart = node.container().exec(with(
        as_nobody,
        {"busctl",
         "call",
         "org.stormclouds.Node1",
         "/org/stormclouds/Node1",
         "org.stormclouds.Node1",
         "RestartRole",
         "s",
         "testsvc"}));
    CHECK_FALSE(restart.ok());
}

TEST_CASE("(f) stormctl role status shows what the D-Bus properties say", "[roles][integration]") {
    st::RoledNode node(options());
    node.wait_for_state([](const std::string& s) { return s == "healthy"; }, 60s, "healthy");
    // stormctl runs on the host against the container's system bus (as root, like on a node).
    stormnode::Command command{.argv = {STORMNODE_STORMCTL_BINARY, "role", "status"}};
    command.env["DBUS_SYSTEM_BUS_ADDRESS"] = node.container().bus_address();
    const auto result = stormnode::run(command);
    INFO(result.out << result.err);
    REQUIRE(result.ok());
    const auto state = node.state();
    // "state:  healthy" and "roles:  testsvc", then a table: UNIT ACTIVE CHECK RESTARTS.
    CHECK(result.out.find("state:  " + state) != std::string::npos);
    CHECK(result.out.find("roles:  testsvc") != std::string::npos);
    std::istringstream lines(result.out);
    std::map<std::string, std::vector<std::string>> table;
    for (std::string line; std::getline(lines, line);) {
        std::istringstream words(line);
        std::vector<std::string> columns;
        for (std::string w; words >> w;) {
            columns.push_back(w);
        }
        if (columns.size() == 4 && columns[0].find('.') != std::string::npos) {
            table[columns[0]] = columns;
        }
    }
    const auto rows = node.units();
    CHECK(table.size() == rows.size());
    for (const auto& row : rows) {
        INFO(row.unit);
        REQUIRE(table.count(row.unit) == 1);
        CHECK(
            table[row.unit] ==
            std::vector<std::string>{
                row.unit, row.active_state, row.check_state, std::to_string(row.restarts)});
    }
}
