#include "fakes.hpp"

#include <stormnode/supervisor/supervisor.hpp>

#include <catch2/catch.hpp>

#include <algorithm>

using namespace stormnode::roles;
using namespace stormnode::roles::testing;
using namespace std::chrono_literals;

namespace {

Unit unit(const std::string& name, int port = 0) {
    Unit u;
    u.name = name;
    if (port != 0) {
        Check c;
        c.kind = CheckKind::tcp;
        c.port = port;
        c.interval = 10s;
        c.timeout = 1s;
        u.checks.push_back(c);
    }
    return u;
}

// A role as an operator writes it: "db:galera".
RoleSpec spec(const std::string& text) {
    return parse_role_spec(text);
}

Plan plan_of(const std::string& role, std::vector<Unit> units, std::vector<std::vector<std::string>> tiers) {
    Plan plan;
    plan.roles = {spec(role)};
    for (const auto& u : units) {
        plan.role_units[spec(role)].push_back(u.name);
    }
    plan.body.units = std::move(units);
    plan.body.tiers = std::move(tiers);
    return plan;
}

// nova-compute (required, tcp 8774) and ceilometer's agent (degraded-if-down, tcp 8041), the agent in
// a tier after nova's or beside it.
enum class AgentTier { own, shared };
Plan compute_with_agent(AgentTier tier) {
    const std::string nova = "nova-compute.service";
    const std::string agent = "ceilometer-agent-compute.service";
    auto plan = plan_of(
        "compute",
        {unit(nova, 8774), unit(agent, 8041)},
        tier == AgentTier::own ? std::vector<std::vector<std::string>>{{nova}, {agent}}
                               : std::vector<std::vector<std::string>>{{nova, agent}});
    plan.body.required = {nova};
    plan.body.degraded_if_down = {agent};
    return plan;
}

struct Recorder final : SupervisorObserver {
    std::vector<std::string> states;
    std::vector<std::string> events;
    std::vector<std::string> switches;
    void state_changed(RoleState s, const std::string& reason) override {
        states.push_back(std::string(to_string(s)) + (reason.empty() ? "" : ": " + reason));
    }
    void unit_event(const std::string& u, std::string_view what, const std::string&) override {
        events.push_back(std::string(what) + " " + u);
    }
    void switched(
        const std::vector<RoleSpec>& o, const std::vector<RoleSpec>& n, const std::string& outcome) override {
        switches.push_back(
            (o.empty() ? "-" : to_string(o.front())) + "->" + (n.empty() ? "-" : to_string(n.front())) + " " +
            outcome);
    }
};

struct Fixture {
    FakeClock clock;
    FakeSystemd systemd;
    FakeProber prober{clock};
    Recorder recorder;
    SupervisorOptions options = [] {
        SupervisorOptions o;
        o.seed = 42;
        o.tier_deadline = 30s;
        return o;
    }();
    std::unique_ptr<Supervisor> supervisor;

    Supervisor& make() {
        supervisor =
            std::make_unique<Supervisor>(systemd, prober, clock, options, Supervisor::Renderer{}, &recorder);
        return *supervisor;
    }
    [[nodiscard]] std::size_t index_of(const std::string& call) const {
        const auto it = std::find(systemd.calls.begin(), systemd.calls.end(), call);
        return static_cast<std::size_t>(it - systemd.calls.begin());
    }
    [[nodiscard]] bool called(const std::string& call) const { return index_of(call) < systemd.calls.size(); }
};

}  // namespace

TEST_CASE("a tier starts only when every check of the previous tier passes", "[supervisor][unit]") {
    Fixture f;
    auto& s = f.make();
    f.prober.healthy["5672"] = false;
    s.apply(plan_of(
        "controller",
        {unit("rabbitmq-server.service", 5672), unit("keystone.service", 5000)},
        {{"rabbitmq-server.service"}, {"keystone.service"}}));
    f.clock.advance(5s);
    CHECK(f.called("start rabbitmq-server.service"));
    CHECK_FALSE(f.called("start keystone.service"));
    CHECK(s.state() == RoleState::starting);
    CHECK(s.units()[0].check_state == "failing");

    f.prober.healthy["5672"] = true;
    f.clock.advance(2s);
    CHECK(f.called("start keystone.service"));
    CHECK(f.index_of("start rabbitmq-server.service") < f.index_of("start keystone.service"));
    f.clock.advance(1s);
    CHECK(s.state() == RoleState::healthy);
    CHECK(f.recorder.states == std::vector<std::string>{"starting", "healthy"});
}

TEST_CASE(
    "units are unmasked and enabled for this boot, and keep_disabled units masked, before tier 1",
    "[supervisor][unit]") {
    Fixture f;
    auto& s = f.make();
    auto plan = plan_of("quorum", {unit("corosync-qnetd.service")}, {{"corosync-qnetd.service"}});
    plan.body.keep_disabled = {"corosync.service"};
    s.apply(plan);
    f.clock.run_due();
    CHECK(
        f.systemd.calls == std::vector<std::string>{
                               "stop corosync.service",
                               "mask corosync.service",
                               "unmask corosync-qnetd.service",
                               "enable corosync-qnetd.service",
                               "reload",
                               "start corosync-qnetd.service"});
    CHECK(s.state() == RoleState::healthy);
}

TEST_CASE(
    "a tier whose checks never pass fails the role at its deadline, naming unit and check",
    "[supervisor][unit]") {
    Fixture f;
    auto& s = f.make();
    f.prober.healthy["3306"] = false;
    s.apply(plan_of(
        "db",
        {unit("mariadb.service", 3306), unit("memcached.service")},
        {{"mariadb.service"}, {"memcached.service"}}));
    f.clock.advance(29s);
    CHECK(s.state() == RoleState::starting);
    f.clock.advance(2s);
    REQUIRE(s.state() == RoleState::failed);
    CHECK(
        s.reason() ==
        "tier 1 not healthy within 30 s: mariadb.service: check tcp 127.0.0.1:3306 failing: connection "
        "refused");
    CHECK_FALSE(f.called("start memcached.service"));
}

TEST_CASE(
    "a dying unit is restarted with exponential backoff and the role fails after N failures",
    "[supervisor][unit]") {
    Fixture f;
    f.options.max_failures = 4;
    auto& s = f.make();
    s.apply(plan_of("quorum", {unit("corosync-qnetd.service")}, {{"corosync-qnetd.service"}}));
    f.clock.run_due();
    REQUIRE(s.state() == RoleState::healthy);

    f.systemd.script["corosync-qnetd.service"] = JobResult::failed;  // every restart fails from now on
    f.systemd.set_state("corosync-qnetd.service", "failed", "signal");
    CHECK(s.state() == RoleState::degraded);
    // Restarts at +1 s, then +2 s, then +4 s; the fourth failure gives up.
    f.clock.advance(999ms);
    CHECK(f.systemd.count("restart corosync-qnetd.service") == 0);
    f.clock.advance(1ms);
    CHECK(f.systemd.count("restart corosync-qnetd.service") == 1);
    f.clock.advance(1999ms);
    CHECK(f.systemd.count("restart corosync-qnetd.service") == 1);
    f.clock.advance(1ms);
    CHECK(f.systemd.count("restart corosync-qnetd.service") == 2);
    f.clock.advance(4s);
    CHECK(f.systemd.count("restart corosync-qnetd.service") == 3);
    REQUIRE(s.state() == RoleState::failed);
    CHECK(s.reason() == "unit corosync-qnetd.service failed 4 times within 300 s, last: start job failed");
    CHECK(s.units()[0].check_state == "gave-up");
    CHECK(s.units()[0].restarts == 3);
    // Nothing left to wake up for: a crash loop ends in silence, not in spinning.
    CHECK(f.clock.pending() == 0);
    f.clock.advance(1h);
    CHECK(f.systemd.count("restart corosync-qnetd.service") == 3);
}

TEST_CASE("backoff doubles up to its cap", "[supervisor][unit]") {
    Fixture f;
    f.options.max_failures = 100;
    f.options.backoff_max = 8s;
    f.options.failure_window = 24h;
    auto& s = f.make();
    s.apply(plan_of("r", {unit("a.service")}, {{"a.service"}}));
    f.clock.run_due();
    f.systemd.script["a.service"] = JobResult::failed;
    f.systemd.set_state("a.service", "failed");
    std::vector<long> gaps;
    auto last = f.clock.now();
    for (int i = 0; i < 6; ++i) {
        const int before = f.systemd.count("restart a.service");
        while (f.systemd.count("restart a.service") == before) {
            f.clock.advance(1ms);
        }
        gaps.push_back(static_cast<long>(
            std::chrono::duration_cast<std::chrono::milliseconds>(f.clock.now() - last).count()));
        last = f.clock.now();
    }
    CHECK(gaps == std::vector<long>{1000, 2000, 4000, 8000, 8000, 8000});
    CHECK(s.state() == RoleState::degraded);
}

TEST_CASE("a killed unit is restarted and the role goes degraded, then healthy again", "[supervisor][unit]") {
    Fixture f;
    auto& s = f.make();
    s.apply(plan_of("quorum", {unit("corosync-qnetd.service", 5403)}, {{"corosync-qnetd.service"}}));
    f.clock.advance(1s);
    REQUIRE(s.state() == RoleState::healthy);
    f.systemd.set_state("corosync-qnetd.service", "failed", "signal");
    CHECK(s.state() == RoleState::degraded);
    CHECK(s.reason() == "corosync-qnetd.service: failed (signal)");
    f.clock.advance(1s);
    CHECK(f.systemd.count("restart corosync-qnetd.service") == 1);
    f.clock.advance(10ms);
    CHECK(s.state() == RoleState::healthy);
    CHECK(
        f.recorder.states ==
        std::vector<std::string>{
            "starting", "healthy", "degraded: corosync-qnetd.service: failed (signal)", "healthy"});
}

TEST_CASE(
    "a check that fails after passing restarts its unit after the configured count", "[supervisor][unit]") {
    Fixture f;
    f.options.probe_jitter = 0;
    auto& s = f.make();
    s.apply(plan_of("controller", {unit("keystone.service", 5000)}, {{"keystone.service"}}));
    f.clock.advance(1s);
    REQUIRE(s.state() == RoleState::healthy);
    f.prober.healthy["5000"] = false;
    f.clock.advance(10500ms);  // probe at 10 s fails: degraded, retried every second
    CHECK(s.state() == RoleState::degraded);
    CHECK(s.units()[0].check_state == "failing");
    f.clock.advance(1s);  // third failure at 12 s: restart after its 1 s backoff
    CHECK(f.systemd.count("restart keystone.service") == 0);
    CHECK(s.units()[0].check_state == "waiting");
    f.prober.healthy["5000"] = true;
    f.clock.advance(1s);
    CHECK(f.systemd.count("restart keystone.service") == 1);
    f.clock.advance(10ms);
    CHECK(s.state() == RoleState::healthy);
}

TEST_CASE(
    "a degraded-if-down unit that gives up leaves the role degraded, not failed", "[supervisor][unit]") {
    Fixture f;
    f.options.max_failures = 1;
    auto& s = f.make();
    auto plan = plan_of(
        "compute",
        {unit("nova-compute.service"), unit("ceilometer-agent-compute.service")},
        {{"nova-compute.service", "ceilometer-agent-compute.service"}});
    plan.body.required = {"nova-compute.service"};
    plan.body.degraded_if_down = {"ceilometer-agent-compute.service"};
    s.apply(plan);
    f.clock.run_due();
    REQUIRE(s.state() == RoleState::healthy);
    f.systemd.set_state("ceilometer-agent-compute.service", "failed", "exit-code");
    CHECK(s.state() == RoleState::degraded);
    f.clock.advance(1h);
    CHECK(s.state() == RoleState::degraded);
    f.systemd.set_state("nova-compute.service", "failed", "exit-code");
    CHECK(s.state() == RoleState::failed);
}

TEST_CASE(
    "an optional unit still coming up keeps the role starting, then it is healthy, never degraded",
    "[supervisor][unit]") {
    Fixture f;
    auto& s = f.make();
    f.prober.healthy["8041"] = false;  // the agent takes a while to listen
    s.apply(compute_with_agent(AgentTier::own));
    f.clock.advance(15s);
    CHECK(f.called("start ceilometer-agent-compute.service"));
    CHECK(s.state() == RoleState::starting);
    f.prober.healthy["8041"] = true;
    f.clock.advance(10s);
    CHECK(s.state() == RoleState::healthy);
    CHECK(f.recorder.states == std::vector<std::string>{"starting", "healthy"});
}

TEST_CASE(
    "an optional unit whose check never passes leaves the role degraded at the deadline, not failed",
    "[supervisor][unit]") {
    Fixture f;
    auto& s = f.make();
    f.prober.healthy["8041"] = false;
    s.apply(compute_with_agent(AgentTier::shared));
    f.clock.advance(29s);
    CHECK(s.state() == RoleState::starting);
    f.clock.advance(2s);
    REQUIRE(s.state() == RoleState::degraded);
    CHECK(
        s.reason() ==
        "ceilometer-agent-compute.service: check tcp 127.0.0.1:8041 pending (connection refused)");
    f.prober.healthy["8041"] = true;
    f.clock.advance(10s);
    CHECK(s.state() == RoleState::healthy);
    CHECK(
        f.recorder.states == std::vector<std::string>{
                                 "starting",
                                 "degraded: ceilometer-agent-compute.service: check tcp 127.0.0.1:8041 "
                                 "pending (connection refused)",
                                 "healthy"});
}

TEST_CASE("an optional unit that dies while starting makes the role degraded at once", "[supervisor][unit]") {
    Fixture f;
    f.options.max_failures = 1;
    auto& s = f.make();
    f.systemd.script["ceilometer-agent-compute.service"] = JobResult::failed;
    s.apply(compute_with_agent(AgentTier::shared));
    f.clock.advance(1s);
    CHECK(s.state() == RoleState::degraded);
    CHECK(s.reason().rfind("ceilometer-agent-compute.service: ", 0) == 0);
}

TEST_CASE("a unit systemd does not know fails the role at once", "[supervisor][unit]") {
    Fixture f;
    auto& s = f.make();
    f.systemd.script["nosuch.service"] = JobResult::rejected;
    s.apply(plan_of("r", {unit("nosuch.service")}, {{"nosuch.service"}}));
    f.clock.run_due();
    REQUIRE(s.state() == RoleState::failed);
    CHECK(s.reason() == "unit nosuch.service: start job rejected: Unit nosuch.service not found.");
    CHECK(f.systemd.count("restart nosuch.service") == 0);
}

TEST_CASE("active units are adopted: not restarted, same InvocationID", "[supervisor][unit]") {
    Fixture f;
    f.systemd.set_state("corosync-qnetd.service", "active");
    const auto before = f.systemd.states["corosync-qnetd.service"].invocation_id;
    auto& s = f.make();
    s.apply(plan_of("quorum", {unit("corosync-qnetd.service")}, {{"corosync-qnetd.service"}}));
    f.clock.run_due();
    CHECK(s.state() == RoleState::healthy);
    CHECK(f.systemd.count("restart corosync-qnetd.service") == 0);
    CHECK(f.systemd.states["corosync-qnetd.service"].invocation_id == before);
    CHECK(
        std::count(f.recorder.events.begin(), f.recorder.events.end(), "adopted corosync-qnetd.service") ==
        1);
    CHECK(s.invocation_ids() == std::map<std::string, std::string>{{"corosync-qnetd.service", before}});
}

TEST_CASE(
    "roles applied together start a shared unit once, and switching keeps it running", "[supervisor][unit]") {
    Fixture f;
    auto& s = f.make();
    Plan one = plan_of(
        "controller",
        {unit("memcached.service"), unit("keystone.service")},
        {{"memcached.service"}, {"keystone.service"}});
    s.apply(one);
    f.clock.run_due();
    REQUIRE(s.state() == RoleState::healthy);

    Plan both = one;
    both.roles = parse_role_specs({"controller", "monitor"});
    both.body.units.push_back(unit("prometheus.service"));
    both.body.tiers[1].push_back("prometheus.service");
    both.role_units[spec("monitor")] = {"memcached.service", "prometheus.service"};
    s.switch_to(both);
    f.clock.run_due();
    CHECK(s.state() == RoleState::healthy);
    CHECK(f.systemd.count("start memcached.service") == 2);  // the second is a no-op job on an active unit
    CHECK(f.systemd.count("restart memcached.service") == 0);
    CHECK(f.systemd.count("stop memcached.service") == 0);
    CHECK(f.systemd.count("start prometheus.service") == 1);
    CHECK(f.recorder.switches == std::vector<std::string>{"controller->controller switched"});
    CHECK(to_strings(s.roles()) == std::vector<std::string>{"controller", "monitor"});
    CHECK(s.units(spec("monitor")).size() == 2);
}

TEST_CASE("a switch to a role that does not come up rolls back to the old one", "[supervisor][unit]") {
    Fixture f;
    f.options.max_failures = 2;
    auto& s = f.make();
    s.apply(plan_of("quorum", {unit("corosync-qnetd.service")}, {{"corosync-qnetd.service"}}));
    f.clock.run_due();
    REQUIRE(s.state() == RoleState::healthy);

    f.systemd.script["broken.service"] = JobResult::failed;
    s.switch_to(plan_of("broken", {unit("broken.service")}, {{"broken.service"}}));
    f.clock.run_due();
    CHECK(f.called("stop corosync-qnetd.service"));
    f.clock.advance(10s);
    CHECK(f.recorder.switches == std::vector<std::string>{"quorum->broken rolled-back"});
    CHECK(to_strings(s.roles()) == std::vector<std::string>{"quorum"});
    CHECK(s.state() == RoleState::healthy);
    CHECK(f.index_of("stop broken.service") < f.systemd.calls.size());
    CHECK(f.systemd.states["corosync-qnetd.service"].active_state == "active");
    CHECK_FALSE(s.switching());
}

TEST_CASE("RestartRole restarts that role's units only, in tier order", "[supervisor][unit]") {
    Fixture f;
    auto& s = f.make();
    Plan plan = plan_of(
        "controller",
        {unit("a.service"), unit("b.service"), unit("c.service")},
        {{"a.service"}, {"b.service", "c.service"}});
    plan.roles.push_back(spec("other"));
    plan.role_units[spec("controller")] = {"a.service", "b.service"};
    plan.role_units[spec("other")] = {"c.service"};
    s.apply(plan);
    f.clock.run_due();
    REQUIRE(s.state() == RoleState::healthy);
    s.restart_role(spec("controller"));
    f.clock.run_due();
    CHECK(f.systemd.count("restart a.service") == 1);
    CHECK(f.systemd.count("restart b.service") == 1);
    CHECK(f.systemd.count("restart c.service") == 0);
    CHECK(f.index_of("restart a.service") < f.index_of("restart b.service"));
    CHECK(s.state() == RoleState::healthy);
    CHECK_THROWS_AS(s.restart_role(spec("compute")), stormnode::Error);
}

TEST_CASE("a renderer failure fails the role before any unit starts", "[supervisor][unit]") {
    Fixture f;
    f.supervisor = std::make_unique<Supervisor>(
        f.systemd,
        f.prober,
        f.clock,
        f.options,
        [](const Plan&) { throw stormnode::Error(stormnode::Errc::invalid_input, "template 'x.conf': bad"); },
        &f.recorder);
    f.supervisor->apply(plan_of("r", {unit("a.service")}, {{"a.service"}}));
    f.clock.run_due();
    CHECK(f.supervisor->state() == RoleState::failed);
    CHECK(f.supervisor->reason() == "rendering configuration: template 'x.conf': bad");
    CHECK_FALSE(f.called("start a.service"));
}

TEST_CASE("a restarted unit keeps the role degraded until its checks pass again", "[supervisor][unit]") {
    Fixture f;
    f.options.probe_jitter = 0;
    auto& s = f.make();
    s.apply(plan_of("testsvc", {unit("testsvc-worker.service", 7103)}, {{"testsvc-worker.service"}}));
    f.clock.advance(1s);
    REQUIRE(s.state() == RoleState::healthy);

    // SIGKILL of the MainPID; after the restart the service refuses connections for a while.
    f.prober.healthy["7103"] = false;
    f.systemd.set_state("testsvc-worker.service", "failed", "signal");
    REQUIRE(s.state() == RoleState::degraded);
    f.clock.advance(1s);
    REQUIRE(f.systemd.count("restart testsvc-worker.service") == 1);
    CHECK(s.state() == RoleState::degraded);
    CHECK(s.reason_unit() == "testsvc-worker.service");
    CHECK(s.units()[0].check_state == "pending");
    f.clock.advance(10ms);  // the first probe after the restart: refused
    CHECK(s.state() == RoleState::degraded);
    CHECK(s.reason() == "testsvc-worker.service: check tcp 127.0.0.1:7103 pending (connection refused)");

    f.prober.healthy["7103"] = true;
    f.clock.advance(1s);
    CHECK(s.state() == RoleState::healthy);
    CHECK(s.reason_unit().empty());
    CHECK(
        f.recorder.states ==
        std::vector<std::string>{
            "starting", "healthy", "degraded: testsvc-worker.service: failed (signal)", "healthy"});
}

TEST_CASE(
    "a unit whose start is skipped by a failed Condition is not applicable, not a failure",
    "[supervisor][unit]") {
    // chrony in a container: ConditionCapability=CAP_SYS_TIME does not hold, the job is "done", the unit
    // stays inactive. The role is healthy and the unit says why it is not running; it is not restarted.
    Fixture f;
    auto& s = f.make();
    f.systemd.condition_fails.insert("chrony.service");
    s.apply(plan_of(
        "common",
        {unit("chrony.service"), unit("a.service", 80), unit("b.service")},
        {{"chrony.service", "a.service"}, {"b.service"}}));
    f.clock.advance(60s);
    CHECK(s.state() == RoleState::healthy);
    CHECK(f.called("start b.service"));  // the next tier was not held back
    CHECK(f.systemd.count("start chrony.service") == 1);
    CHECK(f.systemd.count("restart chrony.service") == 0);
    const auto units = s.units();
    const auto chrony = std::find_if(
        units.begin(), units.end(), [](const UnitStatus& u) { return u.unit == "chrony.service"; });
    REQUIRE(chrony != units.end());
    CHECK(chrony->active_state == "inactive");
    CHECK(chrony->check_state == "not-applicable");
    CHECK(
        std::find(f.recorder.events.begin(), f.recorder.events.end(), "not-applicable chrony.service") !=
        f.recorder.events.end());
    CHECK(
        std::find(f.recorder.events.begin(), f.recorder.events.end(), "died chrony.service") ==
        f.recorder.events.end());
}

TEST_CASE("a unit that exits at once with its Condition holding is still a failure", "[supervisor][unit]") {
    // ConditionResult=true with a timestamp (checked, held), but the unit is down: restarted as before.
    Fixture f;
    f.options.max_failures = 2;
    auto& s = f.make();
    f.systemd.on_job = [&f](const std::string& call) {
        if (call == "start x.service" || call == "restart x.service") {
            f.systemd.states["x.service"].condition_result = true;
            f.systemd.states["x.service"].condition_timestamp = 1700000000000000ULL;
        }
    };
    f.systemd.script["x.service"] = JobResult::failed;
    s.apply(plan_of("r", {unit("x.service")}, {{"x.service"}}));
    f.clock.advance(60s);
    CHECK(s.state() == RoleState::failed);
    const auto units = s.units();
    REQUIRE(units.size() == 1);
    CHECK(units.front().check_state == "gave-up");
}

TEST_CASE("RestartRole and Units take a role name without its variant", "[supervisor][unit]") {
    Fixture f;
    auto& s = f.make();
    Plan plan = plan_of(
        "db:galera",
        {unit("mariadb.service"), unit("garb.service")},
        {{"mariadb.service"}, {"garb.service"}});
    plan.roles.push_back(spec("dbproxy"));
    plan.role_units[spec("db:galera")] = {"mariadb.service"};
    plan.role_units[spec("dbproxy")] = {"garb.service"};
    s.apply(plan);
    f.clock.run_due();
    REQUIRE(s.state() == RoleState::healthy);
    CHECK(to_string(s.applied_role(spec("db"))) == "db:galera");
    CHECK(to_string(s.applied_role(spec("db:galera"))) == "db:galera");
    CHECK(s.units(spec("db")).size() == 1);
    s.restart_role(spec("db"));
    f.clock.run_due();
    CHECK(f.systemd.count("restart mariadb.service") == 1);
    CHECK(f.systemd.count("restart garb.service") == 0);
    // A prefix of another role's name is not that role.
    CHECK_THROWS_AS(s.restart_role(spec("dbp")), stormnode::Error);
    CHECK_THROWS_AS(s.applied_role(spec("d")), stormnode::Error);
}

TEST_CASE(
    "an on_failure: degrade check degrades the role, never restarts, never holds a tier back",
    "[supervisor][unit]") {
    Fixture f;
    f.options.probe_jitter = 0;
    auto& s = f.make();
    Unit db = unit("mariadb.service", 3306);
    Check size = db.checks.front();
    size.port = 4444;  // stands for the Galera size check
    size.degrade_only = true;
    db.checks.push_back(size);
    f.prober.healthy["4444"] = false;  // a member is missing from the start
    s.apply(plan_of("db", {db, unit("after.service", 5000)}, {{"mariadb.service"}, {"after.service"}}));
    f.clock.advance(2s);
    CHECK(f.called("start after.service"));  // the next tier did not wait on the cluster's size
    CHECK(s.state() == RoleState::degraded);
    CHECK_THAT(s.reason(), Catch::Contains("mariadb.service: check"));

    f.prober.healthy["4444"] = true;
    f.clock.advance(11s);
    CHECK(s.state() == RoleState::healthy);

    f.prober.healthy["4444"] = false;  // a member dies; this node stays Primary
    f.clock.advance(60s);
    CHECK(s.state() == RoleState::degraded);
    CHECK(f.systemd.count("restart mariadb.service") == 0);
    f.prober.healthy["4444"] = true;
    f.clock.advance(2s);
    CHECK(s.state() == RoleState::healthy);
    CHECK(std::find(f.recorder.states.begin(), f.recorder.states.end(), "failed") == f.recorder.states.end());
}

TEST_CASE(
    "an on_failure: hold check keeps a failing unit from being restarted while it fails",
    "[supervisor][unit]") {
    Fixture f;
    f.options.probe_jitter = 0;
    auto& s = f.make();
    Unit db = unit("mariadb.service", 3306);  // stands for "serves in a Primary component, Synced"
    Check primary = db.checks.front();
    primary.port = 4567;     // stands for "the engine says it is outside a Primary component"
    primary.interval = 60s;  // probed again at once when another check asks for a restart
    primary.degrade_only = true;
    primary.holds_restarts = true;
    db.checks.push_back(primary);
    f.prober.failure["4567"] = "exit status 1: galera node outside a Primary component";
    f.prober.exit_status["4567"] = 1;
    s.apply(plan_of("db", {db}, {{"mariadb.service"}}));
    f.clock.advance(2s);
    REQUIRE(s.state() == RoleState::healthy);

    // A partition: non-Primary. The serving check fails again and again, but a restart cannot help. The
    // hold check's last word (passing) is older than the failure: it is asked again before any restart.
    f.prober.healthy["3306"] = false;
    f.prober.healthy["4567"] = false;
    f.clock.advance(120s);
    CHECK(f.systemd.count("restart mariadb.service") == 0);
    CHECK(s.state() == RoleState::degraded);
    CHECK_THAT(
        s.reason(),
        Catch::StartsWith("mariadb.service: exit status 1: galera node outside a Primary "
                          "component (check tcp 127.0.0.1:4567)"));
    CHECK_THAT(
        s.reason(),
        Catch::EndsWith("; restart held back: check tcp 127.0.0.1:3306 failing: connection refused"));
    CHECK(s.units()[0].check_state == "held");
    CHECK(
        std::count(f.recorder.events.begin(), f.recorder.events.end(), "restart-held mariadb.service") == 1);

    // The component is back but this node still does not serve: now a restart may help, and happens.
    f.prober.healthy["4567"] = true;
    f.clock.advance(25s);
    CHECK(f.systemd.count("restart mariadb.service") == 1);

    // The process itself dying is restarted even while the hold check fails.
    f.prober.healthy["3306"] = true;
    f.clock.advance(30s);
    REQUIRE(s.state() == RoleState::healthy);
    f.prober.healthy["4567"] = false;
    f.clock.advance(61s);
    CHECK(s.state() == RoleState::degraded);
    CHECK_THAT(s.reason(), Catch::EndsWith("not restarted while it fails"));  // nothing asked for one
    CHECK(s.units()[0].check_state == "failing");
    f.systemd.set_state("mariadb.service", "failed", "signal");
    f.clock.advance(5s);
    CHECK(f.systemd.count("restart mariadb.service") == 2);
    CHECK(std::find(f.recorder.states.begin(), f.recorder.states.end(), "failed") == f.recorder.states.end());

    // A hold check that cannot even run (its binary or a library missing) holds nothing.
    f.clock.advance(30s);
    f.prober.failure["4567"] = "exit status 127";
    f.prober.exit_status["4567"] = 127;
    f.prober.healthy["3306"] = false;
    f.clock.advance(120s);
    CHECK(f.systemd.count("restart mariadb.service") == 3);
    CHECK_THAT(s.reason(), !Catch::Contains("not restarted"));
}
