// The role supervisor: brings the units of a node's roles up tier by tier, each tier gated on the
// previous one's health checks, and keeps them healthy (restarts with exponential backoff, gives up
// after too many failures in a window). Pure logic over the SystemdManager, Prober and Clock seams.
#pragma once

#include <stormnode/catalog/catalog.hpp>
#include <stormnode/catalog/role_spec.hpp>
#include <stormnode/supervisor/clock.hpp>
#include <stormnode/supervisor/prober.hpp>
#include <stormnode/supervisor/systemd_manager.hpp>
#include <stormnode/supervisor/transaction.hpp>

#include <chrono>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

namespace stormnode::roles {

enum class RoleState { stopped, starting, healthy, degraded, failed };
std::string_view to_string(RoleState state);

struct SupervisorOptions {
    std::chrono::milliseconds backoff_initial{1000};
    std::chrono::milliseconds backoff_max{60000};
    int max_failures = 5;  // failures of one unit within the window: give up
    std::chrono::milliseconds failure_window{300000};
    std::chrono::milliseconds tier_deadline{180000};  // a tier's checks must pass within this
    int check_failures_before_restart = 3;            // consecutive failed probes of a running unit
    double probe_jitter = 0.1;                        // probes every interval +- this fraction
    std::uint32_t seed = 0;                           // 0: random
    bool enable_units = true;                         // unmask + enable (runtime) before starting
    std::filesystem::path state_dir;                  // transaction.yaml goes here; empty: not recorded
};

// What to run: the roles' merged body (resolve_combination) and which units each role brings.
struct Plan {
    std::vector<RoleSpec> roles;
    RoleBody body;
    std::map<RoleSpec, std::vector<std::string>> role_units;
    std::set<std::string> features;  // units with a feature outside this set are skipped
};

struct UnitStatus {
    std::string unit;
    std::string active_state;    // systemd's ActiveState ("unknown" until known)
    std::string check_state;     // pending, passing, failing, waiting (for a restart), gave-up, stopped,
                                 // held (a restart held back by a failing on_failure: hold check)
    std::uint32_t restarts = 0;  // systemd's NRestarts plus the supervisor's own restarts
    bool operator==(const UnitStatus&) const = default;
};

// Everything the daemon logs or publishes. Default: ignore.
class SupervisorObserver {
public:
    SupervisorObserver() = default;
    SupervisorObserver(const SupervisorObserver&) = delete;
    SupervisorObserver& operator=(const SupervisorObserver&) = delete;
    SupervisorObserver(SupervisorObserver&&) = delete;
    SupervisorObserver& operator=(SupervisorObserver&&) = delete;
    virtual ~SupervisorObserver() = default;

    virtual void state_changed(RoleState /*state*/, const std::string& /*reason*/) {}
    virtual void units_changed() {}
    // Milestones of one unit: "adopted", "started", "died", "check-failing", "restarting", "gave-up".
    virtual void unit_event(
        const std::string& /*unit*/, std::string_view /*what*/, const std::string& /*detail*/) {}
    // outcome: "switched", "rolled-back", "failed"
    virtual void switched(
        const std::vector<RoleSpec>& /*old_roles*/,
        const std::vector<RoleSpec>& /*new_roles*/,
        const std::string& /*outcome*/) {}
    // Something went wrong that changes nothing now but needs an operator's eye (the transaction record
    // could not be updated).
    virtual void problem(const std::string& /*what*/) {}
};

class Supervisor {
public:
    // Renders the roles' config files before anything starts; throws Error on failure.
    using Renderer = std::function<void(const Plan&)>;

    Supervisor(
        SystemdManager& systemd,
        Prober& prober,
        Clock& clock,
        SupervisorOptions options = {},
        Renderer renderer = {},
        SupervisorObserver* observer = nullptr);
    Supervisor(const Supervisor&) = delete;
    Supervisor& operator=(const Supervisor&) = delete;
    Supervisor(Supervisor&&) = delete;
    Supervisor& operator=(Supervisor&&) = delete;
    ~Supervisor();

    // Brings up the plan's units (units already active are adopted, not restarted). Units of a previous
    // plan that the new one lacks are stopped.
    void apply(Plan plan);
    // A role switch transaction: record the intent (state_dir/transaction.yaml; throws Error(io), with
    // nothing changed, when it cannot), stop what only the old roles need, apply the new plan, and roll
    // back to the old one if it does not become healthy (or degraded) before its deadline. Ends in one
    // observer->switched() call and the record marked done.
    void switch_to(Plan plan);
    // Resolves a switch a previous run left unfinished: the new roles never proved healthy, so the node
    // goes back to the old ones. Stops what only the new plan brings, applies the old plan; ends like a
    // rollback in switch_to ("rolled-back", or "failed" when the old roles do not come up either).
    void recover(const SwitchRecord& record, Plan old_plan, const Plan& new_plan);
    // Restarts the units a role brings, tier by tier, and forgets their failures. Throws
    // Error(not_found) for a role that is not applied.
    void restart_role(const RoleSpec& role);
    // The applied entry a role means: db (no variant) or db:galera both find a role applied as db:galera.
    // Throws Error(not_found) for a role that is not applied.
    [[nodiscard]] const RoleSpec& applied_role(const RoleSpec& role) const;

    [[nodiscard]] RoleState state() const noexcept { return state_; }
    [[nodiscard]] const std::string& reason() const noexcept { return reason_; }
    // The unit reason() is about ("" when it is about none, e.g. a template that does not render).
    [[nodiscard]] const std::string& reason_unit() const noexcept { return reason_unit_; }
    [[nodiscard]] const std::vector<RoleSpec>& roles() const noexcept { return plan_.roles; }
    [[nodiscard]] bool switching() const noexcept { return switch_ != nullptr; }
    // The units of one role (nullopt for all; a role without its variant will do), in tier order.
    [[nodiscard]] std::vector<UnitStatus> units(const std::optional<RoleSpec>& role = std::nullopt) const;
    // InvocationID of every active unit (for the state file).
    [[nodiscard]] std::map<std::string, std::string> invocation_ids() const;

private:
    struct CheckRun;
    struct Tracked;
    struct Switch;

    // apply()'s steps besides the state and the renderer.
    void track_units(
        const std::set<std::string>& wanted, std::map<std::string, std::uint32_t> carried_restarts);
    void stop_removed_units(std::uint64_t generation, const std::vector<std::string>& removed);
    void on_unit_state(const std::string& unit, const UnitState& state);
    void start_tier(std::uint64_t generation, std::size_t tier);
    void tier_job_done(std::uint64_t generation, const std::string& unit, const JobOutcome& outcome);
    void evaluate();
    [[nodiscard]] bool tier_ready(std::size_t tier, std::string* why, std::string* unit = nullptr) const;
    [[nodiscard]] bool optional_units_settled() const;
    [[nodiscard]] bool waiting_for_optional_units();
    void unit_down(Tracked& t, const std::string& reason);
    void schedule_restart(Tracked& t);
    void begin_checks(Tracked& t);
    void stop_checks(Tracked& t);
    void schedule_probe(Tracked& t, std::size_t index, bool first);
    void probe_done(const std::string& unit, std::size_t index, const ProbeResult& result);
    void fail(const std::string& reason, const std::string& unit = {});
    void set_state(RoleState state, const std::string& reason, const std::string& unit = {});
    void units_changed();
    void finish_switch(const std::string& outcome);
    void record_phase(std::string_view phase);
    void prepare_units(std::uint64_t generation);
    [[nodiscard]] std::vector<std::string> supervised_units() const;
    [[nodiscard]] Clock::duration jittered(Clock::duration interval);

    SystemdManager& systemd_;
    Prober& prober_;
    Clock& clock_;
    SupervisorOptions options_;
    Renderer renderer_;
    SupervisorObserver* observer_;
    std::mt19937 random_;

    Plan plan_;
    std::map<std::string, std::unique_ptr<Tracked>> units_;
    std::vector<std::vector<std::string>> tiers_;  // plan tiers, filtered to units that are tracked
    std::set<std::string> force_restart_;
    std::uint64_t generation_ = 0;
    std::uint64_t job_seq_ = 0;
    std::size_t current_tier_ = 0;
    bool starting_ = false;
    std::unique_ptr<Clock::Timer> tier_deadline_;
    // After the last tier: how long optional units may take to pass their first check.
    std::unique_ptr<Clock::Timer> settle_deadline_;
    bool settle_waived_ = false;
    std::unique_ptr<Switch> switch_;
    std::unique_ptr<TransactionLog> transactions_;  // null without a state_dir
    RoleState state_ = RoleState::stopped;
    std::string reason_;
    std::string reason_unit_;
    std::vector<UnitStatus> last_units_;
    std::shared_ptr<int> alive_ = std::make_shared<int>(0);  // callbacks from the seams check this
};

}  // namespace stormnode::roles
