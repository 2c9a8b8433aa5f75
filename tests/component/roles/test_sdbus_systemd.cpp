// The sd-bus SystemdManager against a fake org.freedesktop.systemd1 on a private dbus-daemon.
#include "bus_harness.hpp"
#include "fake_systemd.hpp"

#include <stormnode/supervisor/sd_event_loop.hpp>

#include <catch2/catch.hpp>

#include <algorithm>

using namespace stormnode::roles;
using namespace stormnode::roles::testing;

namespace {

struct World {
    PrivateBus bus;
    EventLoop event = [] {
        EventLoop e;
        stormnode::check_r(sd_event_new(stormnode::out(e)), "sd_event_new");
        return e;
    }();
    FakeSystemdService fake{bus.address(), event.get()};
    BusConnection client = open_bus(bus.address(), event.get());
    SdBusSystemdManager manager{client.get()};

    bool subscribed() {
        return run_until(event.get(), [&] { return fake.subscribers > 0; });
    }
};

}  // namespace

TEST_CASE("start_unit subscribes first and completes on the job's JobRemoved", "[sdbus][component]") {
    World w;
    w.fake.units["corosync-qnetd.service"];
    REQUIRE(w.subscribed());
    std::optional<JobOutcome> outcome;
    w.manager.start_unit("corosync-qnetd.service", [&](const JobOutcome& o) { outcome = o; });
    REQUIRE(run_until(w.event.get(), [&] { return outcome.has_value(); }));
    CHECK(outcome->result == JobResult::done);
    CHECK(w.fake.units["corosync-qnetd.service"].active_state == "active");
    CHECK(w.fake.calls.front() == "Subscribe");
    CHECK(std::count(w.fake.calls.begin(), w.fake.calls.end(), "StartUnit corosync-qnetd.service") == 1);
}

TEST_CASE("job results and refusals map to JobResult", "[sdbus][component]") {
    World w;
    w.fake.units["bad.service"].next_job_result = "dependency";
    REQUIRE(w.subscribed());
    std::optional<JobOutcome> failed;
    std::optional<JobOutcome> missing;
    w.manager.start_unit("bad.service", [&](const JobOutcome& o) { failed = o; });
    w.manager.restart_unit("nosuch.service", [&](const JobOutcome& o) { missing = o; });
    REQUIRE(run_until(w.event.get(), [&] { return failed && missing; }));
    CHECK(failed->result == JobResult::dependency);
    CHECK(missing->result == JobResult::rejected);
    CHECK(missing->error == "Unit nosuch.service not found.");
    const auto error = job_error("restarting", "nosuch.service", *missing);
    REQUIRE(error);
    CHECK(error->code() == stormnode::Errc::unit_failed);
    CHECK(std::string(error->what()) == "restarting 'nosuch.service': Unit nosuch.service not found.");
}

TEST_CASE("unit state is read once, then follows PropertiesChanged signals", "[sdbus][component]") {
    World w;
    w.fake.units["keystone.service"];
    w.fake.set_state("keystone.service", "active", "running");
    const auto pid = w.fake.units["keystone.service"].main_pid;
    std::vector<std::string> seen;
    w.manager.set_unit_listener([&](const std::string& unit, const UnitState& s) {
        seen.push_back(unit + " " + s.active_state + " " + s.result);
    });
    w.manager.watch_unit("keystone.service");
    REQUIRE(run_until(w.event.get(), [&] { return w.manager.unit_state("keystone.service") != nullptr; }));
    const auto* state = w.manager.unit_state("keystone.service");
    CHECK(state->active_state == "active");
    CHECK(state->sub_state == "running");
    CHECK(state->main_pid == pid);
    CHECK(state->invocation_id.size() == 32);
    const auto first_invocation = state->invocation_id;
    REQUIRE(w.subscribed());
    const auto get_alls = std::count_if(
        w.fake.calls.begin(), w.fake.calls.end(), [](const auto& c) { return c.rfind("LoadUnit", 0) == 0; });

    w.fake.kill_main("keystone.service");
    REQUIRE(run_until(
        w.event.get(), [&] { return w.manager.unit_state("keystone.service")->active_state == "failed"; }));
    CHECK(w.manager.unit_state("keystone.service")->result == "signal");
    CHECK(w.manager.unit_state("keystone.service")->main_pid == 0);
    CHECK(std::find(seen.begin(), seen.end(), "keystone.service failed signal") != seen.end());

    std::optional<JobOutcome> restarted;
    w.manager.restart_unit("keystone.service", [&](const JobOutcome& o) { restarted = o; });
    REQUIRE(run_until(w.event.get(), [&] { return restarted.has_value(); }));
    // systemd sends the unit's changes before JobRemoved: the new state is known when the job is done.
    CHECK(w.manager.unit_state("keystone.service")->active_state == "active");
    CHECK(w.manager.unit_state("keystone.service")->invocation_id != first_invocation);
    // Never polled: the unit was loaded once.
    CHECK(std::count_if(w.fake.calls.begin(), w.fake.calls.end(), [](const auto& c) {
              return c.rfind("LoadUnit", 0) == 0;
          }) == get_alls);
}

TEST_CASE("unit files: enable, mask, unmask and reload reach systemd", "[sdbus][component]") {
    World w;
    int done = 0;
    std::optional<stormnode::Error> failure;
    auto count = [&](const std::optional<stormnode::Error>& e) {
        ++done;
        if (e) {
            failure = *e;
        }
    };
    w.manager.enable_unit_files({"a.service", "b.service"}, true, count);
    w.manager.mask_unit_files({"c.service"}, true, count);
    w.manager.unmask_unit_files({"a.service"}, false, count);
    w.manager.disable_unit_files({"b.service"}, false, count);
    w.manager.reload(count);
    REQUIRE(run_until(w.event.get(), [&] { return done == 5; }));
    CHECK_FALSE(failure);
    CHECK(
        std::find(w.fake.calls.begin(), w.fake.calls.end(), "EnableUnitFiles a.service b.service runtime") !=
        w.fake.calls.end());
    CHECK(
        std::find(w.fake.calls.begin(), w.fake.calls.end(), "MaskUnitFiles c.service runtime") !=
        w.fake.calls.end());
    CHECK(
        std::find(w.fake.calls.begin(), w.fake.calls.end(), "UnmaskUnitFiles a.service") !=
        w.fake.calls.end());
    CHECK(
        std::find(w.fake.calls.begin(), w.fake.calls.end(), "DisableUnitFiles b.service") !=
        w.fake.calls.end());
    CHECK(w.fake.calls.back() == "Reload");
}
