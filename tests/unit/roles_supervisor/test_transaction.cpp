// The role switch as a transaction: intent on disk before anything stops, phases as they pass, one
// outcome; a switch a crash left unfinished is rolled back.
#include "fakes.hpp"

#include <stormnode/common/error.hpp>
#include <stormnode/common/temp_dir.hpp>
#include <stormnode/supervisor/supervisor.hpp>
#include <stormnode/supervisor/transaction.hpp>

#include <catch2/catch.hpp>

#include <algorithm>

using namespace stormnode;
using namespace stormnode::roles;
using namespace stormnode::roles::testing;
using namespace std::chrono_literals;

namespace {

Plan plan_of(const std::string& role, const std::vector<std::string>& units) {
    Plan plan;
    plan.roles = {parse_role_spec(role)};
    for (const auto& name : units) {
        Unit u;
        u.name = name;
        plan.body.units.push_back(u);
        plan.role_units[plan.roles.front()].push_back(name);
    }
    plan.body.tiers = {units};
    return plan;
}

struct Recorder final : SupervisorObserver {
    std::vector<std::string> switches;
    std::vector<std::string> problems;
    void switched(
        const std::vector<RoleSpec>& o, const std::vector<RoleSpec>& n, const std::string& outcome) override {
        switches.push_back(
            (o.empty() ? "-" : to_string(o.front())) + "->" + (n.empty() ? "-" : to_string(n.front())) + " " +
            outcome);
    }
    void problem(const std::string& what) override { problems.push_back(what); }
};

struct Fixture {
    TempDir dir{"stormnode-transaction"};
    FakeClock clock;
    FakeSystemd systemd;
    FakeProber prober{clock};
    Recorder recorder;
    std::unique_ptr<Supervisor> supervisor;

    Supervisor& make(std::filesystem::path state_dir = {}) {
        SupervisorOptions options;
        options.seed = 7;
        options.max_failures = 2;
        options.tier_deadline = 30s;
        options.state_dir = state_dir.empty() ? dir.path() / "state" : state_dir;
        supervisor =
            std::make_unique<Supervisor>(systemd, prober, clock, options, Supervisor::Renderer{}, &recorder);
        return *supervisor;
    }
    [[nodiscard]] std::filesystem::path record() const { return dir.path() / "state" / "transaction.yaml"; }
    void write_record(const std::string& text) const {
        std::filesystem::create_directories(record().parent_path());
        write_file_atomic(record(), text);
    }
    [[nodiscard]] std::size_t index_of(const std::string& call) const {
        return static_cast<std::size_t>(
            std::find(systemd.calls.begin(), systemd.calls.end(), call) - systemd.calls.begin());
    }
};

}  // namespace

TEST_CASE(
    "a switch records its intent before anything stops, then each phase, then its outcome",
    "[transaction][unit]") {
    Fixture f;
    auto& s = f.make();
    s.apply(plan_of("quorum", {"corosync-qnetd.service"}));
    f.clock.run_due();
    REQUIRE(s.state() == RoleState::healthy);

    std::map<std::string, std::string> seen;  // the record as each job was queued
    f.systemd.on_job = [&](const std::string& call) {
        seen[call] = std::filesystem::exists(f.record()) ? read_file(f.record()) : "(none)";
    };
    s.switch_to(plan_of("monitor", {"prometheus.service"}));
    f.clock.run_due();

    const auto& at_stop = seen.at("stop corosync-qnetd.service");
    CHECK_THAT(at_stop, Catch::Contains("old_roles: [quorum]"));
    CHECK_THAT(at_stop, Catch::Contains("new_roles: [monitor]"));
    CHECK_THAT(at_stop, Catch::Contains("started_at: 20"));
    CHECK_THAT(at_stop, Catch::Contains("phase: stopping"));
    CHECK_THAT(seen.at("start prometheus.service"), Catch::Contains("phase: starting"));

    CHECK(f.recorder.switches == std::vector<std::string>{"quorum->monitor switched"});
    const TransactionLog log(f.dir.path() / "state");
    CHECK_FALSE(log.unfinished());
    REQUIRE(log.last());
    CHECK(log.last()->phase == "done");
    CHECK(log.last()->outcome == "switched");
    CHECK(to_strings(log.last()->old_roles) == std::vector<std::string>{"quorum"});
    CHECK(f.recorder.problems.empty());
}

TEST_CASE("a rolled-back switch ends in one outcome and a finished record", "[transaction][unit]") {
    Fixture f;
    auto& s = f.make();
    s.apply(plan_of("quorum", {"corosync-qnetd.service"}));
    f.clock.run_due();
    f.systemd.script["broken.service"] = JobResult::failed;
    std::vector<std::string> phases;
    f.systemd.on_job = [&](const std::string& call) {
        if (call == "start corosync-qnetd.service") {  // the rollback starting the old role again
            phases.push_back(read_file(f.record()));
        }
    };
    s.switch_to(plan_of("broken", {"broken.service"}));
    f.clock.advance(10s);
    CHECK(f.recorder.switches == std::vector<std::string>{"quorum->broken rolled-back"});
    REQUIRE(phases.size() == 1);
    CHECK_THAT(phases[0], Catch::Contains("phase: rolling-back"));
    CHECK_THAT(read_file(f.record()), Catch::Contains("outcome: rolled-back"));
    CHECK_FALSE(TransactionLog(f.dir.path() / "state").unfinished());
    CHECK(to_strings(s.roles()) == std::vector<std::string>{"quorum"});
}

TEST_CASE("a switch whose intent cannot be recorded changes nothing", "[transaction][unit]") {
    Fixture f;
    write_file_atomic(f.dir.path() / "not-a-dir", "x");
    auto& s = f.make(f.dir.path() / "not-a-dir");
    s.apply(plan_of("quorum", {"corosync-qnetd.service"}));
    f.clock.run_due();
    const auto calls = f.systemd.calls;
    CHECK_THROWS_WITH(
        s.switch_to(plan_of("monitor", {"prometheus.service"})),
        Catch::Contains("recording the role switch"));
    CHECK(f.systemd.calls == calls);
    CHECK_FALSE(s.switching());
    CHECK(to_strings(s.roles()) == std::vector<std::string>{"quorum"});
    CHECK(f.recorder.switches.empty());
}

TEST_CASE("an unfinished switch left by a crash is rolled back to the old roles", "[transaction][unit]") {
    Fixture f;
    // The previous run stopped quorum's unit and started the new role's before it died.
    f.write_record(
        "old_roles: [quorum]\nnew_roles: [monitor]\nstarted_at: 2024-05-01T10:00:00Z\n"
        "phase: starting\n");
    f.systemd.set_state("prometheus.service", "active");
    f.systemd.set_state("corosync-qnetd.service", "inactive");
    const TransactionLog log(f.dir.path() / "state");
    const auto record = log.unfinished();
    REQUIRE(record);
    CHECK(record->phase == "starting");

    auto& s = f.make();
    s.recover(
        *record, plan_of("quorum", {"corosync-qnetd.service"}), plan_of("monitor", {"prometheus.service"}));
    f.clock.run_due();
    CHECK(f.index_of("stop prometheus.service") < f.index_of("start corosync-qnetd.service"));
    CHECK(f.index_of("start corosync-qnetd.service") < f.systemd.calls.size());
    CHECK(f.systemd.states["prometheus.service"].active_state == "inactive");
    CHECK(s.state() == RoleState::healthy);
    CHECK(to_strings(s.roles()) == std::vector<std::string>{"quorum"});
    CHECK(f.recorder.switches == std::vector<std::string>{"quorum->monitor rolled-back"});
    CHECK_FALSE(log.unfinished());
    CHECK(log.last()->outcome == "rolled-back");
    CHECK(log.last()->started_at == "2024-05-01T10:00:00Z");
}

TEST_CASE(
    "an interrupted switch whose old roles do not come back ends as failed, once", "[transaction][unit]") {
    Fixture f;
    f.write_record("old_roles: [quorum]\nnew_roles: [monitor]\nstarted_at: x\nphase: stopping\n");
    f.systemd.script["corosync-qnetd.service"] = JobResult::failed;
    auto& s = f.make();
    s.recover(
        *TransactionLog(f.dir.path() / "state").unfinished(),
        plan_of("quorum", {"corosync-qnetd.service"}),
        plan_of("monitor", {"prometheus.service"}));
    f.clock.advance(60s);
    CHECK(s.state() == RoleState::failed);
    CHECK(f.recorder.switches == std::vector<std::string>{"quorum->monitor failed"});
    CHECK(TransactionLog(f.dir.path() / "state").last()->outcome == "failed");
}

TEST_CASE("a damaged switch record is reported with its position", "[transaction][unit]") {
    TempDir dir{"stormnode-transaction"};
    write_file_atomic(
        dir.path() / "transaction.yaml", "old_roles: [quorum]\nnew_roles: [monitor]\nphse: starting\n");
    CHECK_THROWS_WITH(
        TransactionLog(dir.path()).unfinished(), Catch::Contains("transaction.yaml:3:1: unknown key 'phse'"));
    CHECK_FALSE(TransactionLog(dir.path() / "none").unfinished());
}

TEST_CASE(
    "the switch record's roles are read back as role specs, a bad one at its position",
    "[transaction][unit]") {
    TempDir dir{"stormnode-transaction"};
    TransactionLog log(dir.path());
    log.begin(parse_role_specs({"db:galera", "quorum"}), parse_role_specs({"monitor"}));
    CHECK_THAT(read_file(log.file()), Catch::Contains("old_roles: [db:galera, quorum]"));
    const auto record = log.unfinished();
    REQUIRE(record);
    CHECK(record->old_roles == std::vector<RoleSpec>{{"db", "galera"}, {"quorum", ""}});
    CHECK(record->new_roles == std::vector<RoleSpec>{{"monitor", ""}});

    write_file_atomic(
        dir.path() / "transaction.yaml",
        "old_roles: [quorum, \"db:\"]\nnew_roles: [monitor]\nphase: stopping\n");
    CHECK_THROWS_WITH(
        TransactionLog(dir.path()).unfinished(),
        Catch::Contains("transaction.yaml:1:21: role 'db:' has an empty variant"));
}
