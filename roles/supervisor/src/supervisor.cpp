#include "stormnode/supervisor/supervisor.hpp"

#include <algorithm>
#include <cmath>
#include <utility>

namespace stormnode::roles {

std::string_view to_string(RoleState state) {
    switch (state) {
        case RoleState::stopped:
            return "stopped";
        case RoleState::starting:
            return "starting";
        case RoleState::healthy:
            return "healthy";
        case RoleState::degraded:
            return "degraded";
        case RoleState::failed:
            return "failed";
    }
    return "unknown";
}

struct Supervisor::CheckRun {
    Check check;
    std::unique_ptr<Clock::Timer> next;
    std::unique_ptr<Prober::Pending> pending;
    bool known = false;
    bool passing = false;
    bool ever_passed = false;
    int consecutive_failures = 0;
    std::string detail;
    std::optional<int> exit_status;  // of the last probe (exec)
};

struct Supervisor::Tracked {
    // not_applicable: its start was skipped by a failed Condition*=; neither running nor a failure.
    enum class Phase { pending, starting, running, waiting, stopping, gave_up, not_applicable };

    Unit spec;
    std::size_t tier = 0;
    bool required = true;
    bool supervised = true;  // false: Pacemaker runs it, we only watch and check
    Phase phase = Phase::pending;
    std::vector<CheckRun> checks;
    std::deque<Clock::time_point> failures;
    std::unique_ptr<Clock::Timer> restart_timer;
    std::uint32_t own_restarts = 0;
    std::uint64_t job = 0;  // the job whose completion we wait for; older completions are ignored
    std::string last_reason;
    std::string invocation_before;  // when the job was queued: unchanged after it means adopted
    // A check asked for a restart while the unit has on_failure: hold checks: those are probed again
    // first (their last word may predate the failure), and the restart waits for their answers.
    int hold_probes_outstanding = 0;
    std::string restart_reason;
    bool restart_held = false;  // a restart was asked for and held back; until the hold check passes
};

struct Supervisor::Switch {
    Plan old_plan;
    std::vector<RoleSpec> new_roles;
    bool rolling_back = false;
    std::unique_ptr<Clock::Timer> deferred;
};

namespace {

// The applied entry an operator means: the very spec, or a role named without its variant.
const RoleSpec* applied_entry(const std::vector<RoleSpec>& applied, const RoleSpec& role) {
    if (const auto exact = std::find(applied.begin(), applied.end(), role); exact != applied.end()) {
        return &*exact;
    }
    return role.variant.empty() ? find_role(applied, role.name) : nullptr;
}

bool is_down(const std::string& active_state) {
    return active_state == "failed" || active_state == "inactive";
}

std::string down_reason(const UnitState& s) {
    std::string text = s.active_state;
    if (!s.result.empty() && s.result != "success") {
        text += " (" + s.result + ")";
    }
    return text;
}

// The check of on_failure: hold that holds now, if any: while it does, no check restarts the unit. Only
// its own verdict holds, exit status 1: one that cannot run (126, 127: a binary or library missing), is
// killed or times out must never keep a broken unit from being restarted.
template <typename CheckRuns>
const typename CheckRuns::value_type* holding_check(const CheckRuns& checks) {
    for (const auto& c : checks) {
        if (c.check.holds_restarts && c.known && !c.passing && c.exit_status == 1) {
            return &c;
        }
    }
    return nullptr;
}

template <typename CheckRuns>
bool has_hold_checks(const CheckRuns& checks) {
    return std::any_of(checks.begin(), checks.end(), [](const auto& c) { return c.check.holds_restarts; });
}

// The plan's units, less those of features the node does not have.
std::set<std::string> wanted_units(const Plan& plan) {
    std::set<std::string> wanted;
    for (const auto& unit : plan.body.units) {
        if (unit.feature.empty() || plan.features.contains(unit.feature)) {
            wanted.insert(unit.name);
        }
    }
    return wanted;
}

std::string seconds(Clock::duration d) {
    const auto ms = d.count();
    return ms % 1000 == 0 ? std::to_string(ms / 1000) + " s" : std::to_string(ms) + " ms";
}

}  // namespace

Supervisor::Supervisor(
    SystemdManager& systemd,
    Prober& prober,
    Clock& clock,
    SupervisorOptions options,
    Renderer renderer,
    SupervisorObserver* observer)
    : systemd_(systemd),
      prober_(prober),
      clock_(clock),
      options_(options),
      renderer_(std::move(renderer)),
      observer_(observer),
      random_(options.seed != 0 ? options.seed : std::random_device{}()) {
    if (!options_.state_dir.empty()) {
        transactions_ = std::make_unique<TransactionLog>(options_.state_dir);
    }
    std::weak_ptr<int> alive = alive_;
    systemd_.set_unit_listener([this, alive](const std::string& unit, const UnitState& state) {
        if (!alive.expired()) {
            on_unit_state(unit, state);
        }
    });
}

Supervisor::~Supervisor() {
    systemd_.set_unit_listener({});
}

void Supervisor::apply(Plan plan) {
    const std::uint64_t generation = ++generation_;
    tier_deadline_.reset();
    settle_deadline_.reset();
    settle_waived_ = false;

    const std::set<std::string> wanted = wanted_units(plan);
    // Units the new plan lacks are stopped before anything of the new plan starts.
    std::vector<std::string> removed;
    std::map<std::string, std::uint32_t> carried_restarts;
    for (const auto& [name, tracked] : units_) {
        if (!wanted.contains(name)) {
            if (tracked->supervised) {
                removed.push_back(name);
            }
            systemd_.unwatch_unit(name);
        } else {
            carried_restarts[name] = tracked->own_restarts;
        }
    }
    units_.clear();
    tiers_.clear();

    plan_ = std::move(plan);
    track_units(wanted, std::move(carried_restarts));

    starting_ = true;
    current_tier_ = 0;
    set_state(RoleState::starting, {});
    if (renderer_) {
        try {
            renderer_(plan_);
        } catch (const std::exception& e) {
            fail("rendering configuration: " + describe(e));
            return;
        }
    }

    if (removed.empty()) {
        prepare_units(generation);
        return;
    }
    stop_removed_units(generation, removed);
}

// plan_'s wanted units, each in its tier (one after the plan's tiers when it names none), with its
// checks and the restarts it had under the previous plan; systemd tells us of their changes from now on.
void Supervisor::track_units(
    const std::set<std::string>& wanted, std::map<std::string, std::uint32_t> carried_restarts) {
    for (const auto& tier : plan_.body.tiers) {
        tiers_.emplace_back();
        for (const auto& name : tier) {
            if (wanted.contains(name)) {
                tiers_.back().push_back(name);
            }
        }
    }
    const std::set<std::string> degraded_if_down(
        plan_.body.degraded_if_down.begin(), plan_.body.degraded_if_down.end());
    for (const auto& unit : plan_.body.units) {
        if (!wanted.contains(unit.name)) {
            continue;
        }
        auto tracked = std::make_unique<Tracked>();
        tracked->spec = unit;
        tracked->required = !degraded_if_down.contains(unit.name);
        tracked->supervised = unit.owner == UnitOwner::supervisor;
        tracked->own_restarts = carried_restarts[unit.name];
        const auto tier = std::find_if(tiers_.begin(), tiers_.end(), [&](const auto& t) {
            return std::find(t.begin(), t.end(), unit.name) != t.end();
        });
        if (tier == tiers_.end()) {  // not in any tier: after all of them
            if (tiers_.empty() || !tiers_.back().empty()) {
                tiers_.emplace_back();
            }
            tiers_.back().push_back(unit.name);
            tracked->tier = tiers_.size() - 1;
        } else {
            tracked->tier = static_cast<std::size_t>(tier - tiers_.begin());
        }
        for (const auto& check : unit.checks) {
            if (check.kind != CheckKind::unit) {  // the unit check is always implied
                CheckRun run;
                run.check = check;
                tracked->checks.push_back(std::move(run));
            }
        }
        units_.emplace(unit.name, std::move(tracked));
    }
    for (const auto& [name, tracked] : units_) {
        systemd_.watch_unit(name);
    }
}

// Stops the units the new plan lacks, all at once; the new plan's units are prepared once the last
// stop job has ended, whatever its result (unless another apply() came in between).
void Supervisor::stop_removed_units(std::uint64_t generation, const std::vector<std::string>& removed) {
    if (switch_ != nullptr && !switch_->rolling_back) {
        record_phase("stopping");
    }
    auto left = std::make_shared<std::size_t>(removed.size());
    std::weak_ptr<int> alive = alive_;
    for (const auto& name : removed) {
        if (observer_ != nullptr) {
            observer_->unit_event(name, "stopping", "not part of the roles " + to_string(plan_.roles, ","));
        }
        systemd_.stop_unit(name, [this, alive, generation, left, name](const JobOutcome& outcome) {
            if (alive.expired() || generation != generation_) {
                return;
            }
            if (!outcome.ok() && observer_ != nullptr) {
                observer_->unit_event(
                    name, "stop-failed", std::string(to_string(outcome.result)) + " " + outcome.error);
            }
            if (--*left == 0) {
                prepare_units(generation);
            }
        });
    }
}

std::vector<std::string> Supervisor::supervised_units() const {
    std::vector<std::string> names;
    for (const auto& [name, tracked] : units_) {
        if (tracked->supervised) {
            names.push_back(name);
        }
    }
    return names;
}

// keep_disabled units masked and stopped; the role's units unmasked and enabled (for this boot: storm-roled
// starts them at the next boot again, in tier order); Reload; then tier 0.
void Supervisor::prepare_units(std::uint64_t generation) {
    if (switch_ != nullptr && !switch_->rolling_back) {
        record_phase("starting");
    }
    if (!options_.enable_units || (supervised_units().empty() && plan_.body.keep_disabled.empty())) {
        start_tier(generation, 0);
        evaluate();
        units_changed();
        return;
    }
    std::weak_ptr<int> alive = alive_;
    auto guard = [this, alive, generation](std::string what, auto next) {
        return [this, alive, generation, what = std::move(what), next](const std::optional<Error>& error) {
            if (alive.expired() || generation != generation_) {
                return;
            }
            if (error) {
                fail(what + ": " + describe(*error));
                return;
            }
            next();
        };
    };
    const auto units = supervised_units();
    auto after_reload = [this, generation] {
        start_tier(generation, 0);
        evaluate();
        units_changed();
    };
    auto after_enable = [this, guard, after_reload] {
        systemd_.reload(guard("reloading systemd", after_reload));
    };
    auto after_unmask = [this, guard, units, after_enable] {
        systemd_.enable_unit_files(units, true, guard("enabling units", after_enable));
    };
    auto after_mask = [this, guard, units, after_unmask] {
        systemd_.unmask_unit_files(units, true, guard("unmasking units", after_unmask));
    };
    const auto& keep_disabled = plan_.body.keep_disabled;
    if (keep_disabled.empty()) {
        after_mask();
        return;
    }
    for (const auto& unit : keep_disabled) {
        systemd_.stop_unit(unit, [](const JobOutcome&) {});  // best effort: it may not even be installed
    }
    systemd_.mask_unit_files(keep_disabled, true, guard("masking units that must stay off", after_mask));
}

void Supervisor::start_tier(std::uint64_t generation, std::size_t tier) {
    if (generation != generation_ || !starting_) {
        return;
    }
    current_tier_ = tier;
    if (tier >= tiers_.size()) {
        return;
    }
    std::weak_ptr<int> alive = alive_;
    tier_deadline_ = clock_.after(options_.tier_deadline, [this, alive, generation, tier] {
        if (alive.expired() || generation != generation_ || !starting_ || current_tier_ != tier) {
            return;
        }
        std::string why;
        std::string unit;
        if (!tier_ready(tier, &why, &unit)) {
            fail(
                "tier " + std::to_string(tier + 1) + " not healthy within " +
                    seconds(options_.tier_deadline) + ": " + why,
                unit);
        }
    });
    for (const auto& name : tiers_[tier]) {
        auto& t = *units_.at(name);
        if (!t.supervised) {
            t.phase = Tracked::Phase::running;
            begin_checks(t);
            continue;
        }
        t.phase = Tracked::Phase::starting;
        t.job = ++job_seq_;
        const auto* before = systemd_.unit_state(name);
        t.invocation_before =
            before != nullptr && before->active_state == "active" ? before->invocation_id : "";
        const std::uint64_t job = t.job;
        auto done = [this, alive, name, job](const JobOutcome& outcome) {
            if (alive.expired()) {
                return;
            }
            const auto it = units_.find(name);
            if (it == units_.end() || it->second->job != job) {
                return;
            }
            tier_job_done(generation_, name, outcome);
        };
        if (force_restart_.contains(name)) {
            force_restart_.erase(name);
            ++t.own_restarts;
            if (observer_ != nullptr) {
                observer_->unit_event(name, "restarting", "requested");
            }
            systemd_.restart_unit(name, std::move(done));
        } else {
            systemd_.start_unit(name, std::move(done));
        }
    }
}

void Supervisor::tier_job_done(
    std::uint64_t /*generation*/, const std::string& unit, const JobOutcome& outcome) {
    auto& t = *units_.at(unit);
    if (!outcome.ok()) {
        std::string reason = "start job " + std::string(to_string(outcome.result));
        if (!outcome.error.empty()) {
            reason += ": " + outcome.error;
        }
        if (outcome.result == JobResult::rejected) {  // systemd will not even queue it: no point retrying
            t.phase = Tracked::Phase::gave_up;
            t.last_reason = reason;
            if (observer_ != nullptr) {
                observer_->unit_event(unit, "gave-up", reason);
            }
            if (t.required) {
                fail("unit " + unit + ": " + reason, unit);
            } else {
                evaluate();
                units_changed();
            }
            return;
        }
        unit_down(t, reason);
        evaluate();
        units_changed();
        return;
    }
    const auto* state = systemd_.unit_state(unit);
    if (state != nullptr && is_down(state->active_state) && state->skipped_by_condition()) {
        // The job is "done" but nothing started: a Condition*= does not hold on this machine.
        t.phase = Tracked::Phase::not_applicable;
        t.last_reason = "start skipped: a Condition*= of the unit does not hold here";
        if (observer_ != nullptr) {
            observer_->unit_event(unit, "not-applicable", t.last_reason);
        }
        evaluate();
        units_changed();
        return;
    }
    t.phase = Tracked::Phase::running;
    if (state != nullptr && is_down(state->active_state)) {  // systemd sends unit changes before JobRemoved
        unit_down(t, "exited right after start: " + down_reason(*state));
    } else {
        if (observer_ != nullptr && state != nullptr) {
            const bool adopted = !t.invocation_before.empty() && t.invocation_before == state->invocation_id;
            observer_->unit_event(unit, adopted ? "adopted" : "started", state->invocation_id);
        }
        t.invocation_before.clear();
        begin_checks(t);
    }
    evaluate();
    units_changed();
}

void Supervisor::on_unit_state(const std::string& unit, const UnitState& state) {
    const auto it = units_.find(unit);
    if (it == units_.end()) {
        return;
    }
    auto& t = *it->second;
    if (t.phase == Tracked::Phase::running && is_down(state.active_state)) {
        unit_down(t, down_reason(state));
    }
    evaluate();
    units_changed();
}

void Supervisor::unit_down(Tracked& t, const std::string& reason) {
    stop_checks(t);
    t.last_reason = reason;
    const auto now = clock_.now();
    t.failures.push_back(now);
    while (!t.failures.empty() && now - t.failures.front() > options_.failure_window) {
        t.failures.pop_front();
    }
    if (observer_ != nullptr) {
        observer_->unit_event(t.spec.name, "died", reason);
    }
    if (!t.supervised) {  // Pacemaker's business: just report it
        return;
    }
    if (state_ == RoleState::failed) {
        t.phase = Tracked::Phase::gave_up;
        return;
    }
    if (static_cast<int>(t.failures.size()) >= options_.max_failures) {
        t.phase = Tracked::Phase::gave_up;
        const std::string why = "unit " + t.spec.name + " failed " + std::to_string(t.failures.size()) +
                                " times within " + seconds(options_.failure_window) + ", last: " + reason;
        if (observer_ != nullptr) {
            observer_->unit_event(t.spec.name, "gave-up", why);
        }
        if (t.required) {
            fail(why, t.spec.name);
        }
        return;
    }
    schedule_restart(t);
}

void Supervisor::schedule_restart(Tracked& t) {
    // 1 s, 2 s, 4 s, ... up to the cap; only timers, so a crash loop costs no CPU between attempts.
    const auto n = static_cast<int>(std::max<std::size_t>(t.failures.size(), 1)) - 1;
    const double factor = std::pow(2.0, std::min(n, 30));
    const auto delay = std::min<Clock::duration>(
        options_.backoff_max,
        Clock::duration(static_cast<Clock::duration::rep>(
            static_cast<double>(options_.backoff_initial.count()) * factor)));
    t.phase = Tracked::Phase::waiting;
    if (observer_ != nullptr) {
        observer_->unit_event(t.spec.name, "restarting", "in " + seconds(delay) + ": " + t.last_reason);
    }
    std::weak_ptr<int> alive = alive_;
    const std::string name = t.spec.name;
    t.restart_timer = clock_.after(delay, [this, alive, name] {
        if (alive.expired()) {
            return;
        }
        const auto it = units_.find(name);
        if (it == units_.end() || it->second->phase != Tracked::Phase::waiting ||
            state_ == RoleState::failed) {
            return;
        }
        auto& tracked = *it->second;
        tracked.phase = Tracked::Phase::starting;
        ++tracked.own_restarts;
        tracked.job = ++job_seq_;
        const std::uint64_t job = tracked.job;
        systemd_.restart_unit(name, [this, alive, name, job](const JobOutcome& outcome) {
            if (alive.expired()) {
                return;
            }
            const auto found = units_.find(name);
            if (found == units_.end() || found->second->job != job) {
                return;
            }
            tier_job_done(generation_, name, outcome);
        });
        units_changed();
    });
}

void Supervisor::begin_checks(Tracked& t) {
    for (std::size_t i = 0; i < t.checks.size(); ++i) {
        auto& c = t.checks[i];
        c.known = false;
        c.passing = false;
        c.ever_passed = false;
        c.consecutive_failures = 0;
        c.detail.clear();
        schedule_probe(t, i, true);
    }
}

void Supervisor::stop_checks(Tracked& t) {
    t.hold_probes_outstanding = 0;
    t.restart_held = false;
    for (auto& c : t.checks) {
        c.next.reset();
        c.pending.reset();
        c.known = false;
        c.passing = false;
    }
}

Clock::duration Supervisor::jittered(Clock::duration interval) {
    std::uniform_real_distribution<double> spread(-options_.probe_jitter, options_.probe_jitter);
    const double ms = static_cast<double>(interval.count()) * (1.0 + spread(random_));
    return Clock::duration(std::max<Clock::duration::rep>(1, static_cast<Clock::duration::rep>(ms)));
}

void Supervisor::schedule_probe(Tracked& t, std::size_t index, bool first) {
    auto& c = t.checks[index];
    Clock::duration delay{0};
    if (!first) {
        // Until a check passes (a service still starting), retry sooner than the steady interval.
        const auto interval =
            c.passing ? c.check.interval : std::min(c.check.interval, Clock::duration(1000));
        delay = jittered(interval);
    }
    std::weak_ptr<int> alive = alive_;
    const std::string name = t.spec.name;
    c.next = clock_.after(delay, [this, alive, name, index] {
        if (alive.expired()) {
            return;
        }
        const auto it = units_.find(name);
        if (it == units_.end() || it->second->phase != Tracked::Phase::running) {
            return;
        }
        auto& tracked = *it->second;
        const auto* state = systemd_.unit_state(name);
        const UnitState unit_state = state != nullptr ? *state : UnitState{};
        tracked.checks[index].pending = prober_.probe(
            tracked.checks[index].check, unit_state, [this, alive, name, index](const ProbeResult& result) {
                if (!alive.expired()) {
                    probe_done(name, index, result);
                }
            });
    });
}

void Supervisor::probe_done(const std::string& unit, std::size_t index, const ProbeResult& result) {
    const auto it = units_.find(unit);
    if (it == units_.end() || it->second->phase != Tracked::Phase::running) {
        return;
    }
    auto& t = *it->second;
    auto& c = t.checks[index];
    const bool was_passing = c.known && c.passing;
    c.known = true;
    c.passing = result.ok;
    c.exit_status = result.exit_status;
    if (result.ok) {
        c.ever_passed = true;
        c.consecutive_failures = 0;
        c.detail.clear();
        if (c.check.holds_restarts) {
            t.restart_held = false;
        }
    } else {
        ++c.consecutive_failures;
        c.detail = result.detail;
        if (was_passing && observer_ != nullptr) {
            observer_->unit_event(unit, "check-failing", describe_check(c.check) + ": " + result.detail);
        }
        // A check that never passed is the tier deadline's business (the service may still be starting).
        if (c.ever_passed && t.supervised && !c.check.degrade_only &&
            c.consecutive_failures >= options_.check_failures_before_restart) {
            if (const auto* hold = holding_check(t.checks); hold != nullptr) {
                if (!t.restart_held && observer_ != nullptr) {
                    observer_->unit_event(
                        unit,
                        "restart-held",
                        "check " + describe_check(c.check) + " failing, but " + describe_check(hold->check) +
                            " says a restart cannot help: " + hold->detail);
                }
                t.restart_held = true;
                t.restart_reason = "check " + describe_check(c.check) + " failing: " + result.detail;
            } else if (has_hold_checks(t.checks)) {
                if (t.hold_probes_outstanding == 0) {
                    t.restart_reason = "check " + describe_check(c.check) + " failing: " + result.detail;
                    for (std::size_t i = 0; i < t.checks.size(); ++i) {
                        if (t.checks[i].check.holds_restarts) {
                            t.checks[i].next.reset();
                            t.checks[i].pending.reset();
                            ++t.hold_probes_outstanding;
                            schedule_probe(t, i, true);
                        }
                    }
                }
            } else {
                unit_down(t, "check " + describe_check(c.check) + " failing: " + result.detail);
                evaluate();
                units_changed();
                return;
            }
        }
    }
    if (c.check.holds_restarts && t.hold_probes_outstanding > 0 && --t.hold_probes_outstanding == 0) {
        // The fresh word of the hold checks on a restart another check asked for.
        if (const auto* hold = holding_check(t.checks); hold != nullptr) {
            t.restart_held = true;
            if (observer_ != nullptr) {
                observer_->unit_event(
                    unit,
                    "restart-held",
                    t.restart_reason + ", but " + describe_check(hold->check) +
                        " says a restart cannot help: " + hold->detail);
            }
        } else {
            unit_down(t, t.restart_reason);
            evaluate();
            units_changed();
            return;
        }
    }
    schedule_probe(t, index, false);
    evaluate();
    units_changed();
}

bool Supervisor::tier_ready(std::size_t tier, std::string* why, std::string* unit) const {
    if (tier >= tiers_.size()) {
        return true;
    }
    for (const auto& name : tiers_[tier]) {
        const auto& t = *units_.at(name);
        if (!t.required || !t.supervised || t.phase == Tracked::Phase::not_applicable) {
            continue;
        }
        const auto* state = systemd_.unit_state(name);
        std::string problem;
        if (t.phase == Tracked::Phase::gave_up || t.phase == Tracked::Phase::waiting) {
            problem = t.last_reason;
        } else if (t.phase != Tracked::Phase::running) {
            problem = "start job not finished";
        } else if (state == nullptr || state->active_state != "active") {
            problem = "unit is " + (state != nullptr ? down_reason(*state) : std::string("unknown"));
        } else {
            for (const auto& c : t.checks) {
                if (c.check.degrade_only) {
                    continue;  // the cluster's state, not this unit's readiness
                }
                if (!c.known || !c.passing) {
                    problem =
                        "check " + describe_check(c.check) + (c.known ? " failing: " + c.detail : " pending");
                    break;
                }
            }
        }
        if (!problem.empty()) {
            if (why != nullptr) {
                *why = name + ": " + problem;
            }
            if (unit != nullptr) {
                *unit = name;
            }
            return false;
        }
    }
    return true;
}

// Optional (degraded_if_down) units have settled once each is up with every check passed once, or down
// (then the role is degraded, and says why).
bool Supervisor::optional_units_settled() const {
    for (const auto& [name, tracked] : units_) {
        const auto& t = *tracked;
        if (t.required || !t.supervised) {
            continue;
        }
        if (t.phase == Tracked::Phase::starting) {
            return false;
        }
        const auto* state = systemd_.unit_state(name);
        if (t.phase != Tracked::Phase::running || state == nullptr || state->active_state != "active") {
            continue;
        }
        if (std::any_of(t.checks.begin(), t.checks.end(), [](const CheckRun& c) {
                return !c.check.degrade_only && !c.ever_passed;
            })) {
            return false;
        }
    }
    return true;
}

// The required units are up; optional ones still coming up keep the role "starting" (a start would
// otherwise announce "degraded" for a unit that is merely starting), for at most a tier deadline.
bool Supervisor::waiting_for_optional_units() {
    if (settle_waived_ || optional_units_settled()) {
        settle_deadline_.reset();
        return false;
    }
    if (settle_deadline_ == nullptr) {
        std::weak_ptr<int> alive = alive_;
        settle_deadline_ = clock_.after(options_.tier_deadline, [this, alive, generation = generation_] {
            if (alive.expired() || generation != generation_ || !starting_) {
                return;
            }
            settle_waived_ = true;
            evaluate();
            units_changed();
        });
    }
    return true;
}

void Supervisor::evaluate() {
    if (state_ == RoleState::failed) {
        return;
    }
    if (starting_) {
        while (starting_ && tier_ready(current_tier_, nullptr)) {
            tier_deadline_.reset();
            if (current_tier_ + 1 >= tiers_.size()) {
                if (!waiting_for_optional_units()) {
                    starting_ = false;
                }
                break;
            }
            start_tier(generation_, current_tier_ + 1);
        }
        if (starting_) {
            return;
        }
    }
    std::string problem;
    std::string problem_unit;
    for (const auto& tiers : tiers_) {
        for (const auto& name : tiers) {
            const auto& t = *units_.at(name);
            const auto* state = systemd_.unit_state(name);
            if (t.phase == Tracked::Phase::not_applicable) {
                continue;
            }
            if (t.phase != Tracked::Phase::running) {
                problem = name + ": " + (t.last_reason.empty() ? "not running" : t.last_reason);
            } else if (state == nullptr || state->active_state != "active") {
                problem =
                    name + ": " + (state != nullptr ? down_reason(*state) : std::string("unknown state"));
            } else if (const auto* hold = holding_check(t.checks); hold != nullptr) {
                // Said first: it is why the unit is left as it is.
                problem = name + ": " + hold->detail + " (check " + describe_check(hold->check) + "); " +
                          (t.restart_held ? "restart held back: " + t.restart_reason
                                          : std::string("not restarted while it fails"));
            } else {
                for (const auto& c : t.checks) {
                    // A (re)started unit is not healthy until each of its checks has passed once: a
                    // refused connection while it is still starting up is "pending", not a new failure.
                    if (!c.ever_passed) {
                        problem = name + ": check " + describe_check(c.check) + " pending" +
                                  (c.known ? " (" + c.detail + ")" : "");
                        break;
                    }
                    if (c.known && !c.passing) {
                        problem = name + ": check " + describe_check(c.check) + " failing: " + c.detail;
                        break;
                    }
                }
            }
            if (!problem.empty()) {
                problem_unit = name;
                break;
            }
        }
        if (!problem.empty()) {
            break;
        }
    }
    if (plan_.roles.empty() && units_.empty()) {
        set_state(RoleState::stopped, {});
    } else {
        set_state(problem.empty() ? RoleState::healthy : RoleState::degraded, problem, problem_unit);
    }
    if (switch_ != nullptr && switch_->deferred == nullptr) {
        finish_switch(switch_->rolling_back ? "rolled-back" : "switched");
    }
}

void Supervisor::fail(const std::string& reason, const std::string& unit) {
    starting_ = false;
    tier_deadline_.reset();
    settle_deadline_.reset();
    for (auto& [name, tracked] : units_) {
        tracked->restart_timer.reset();
        if (tracked->phase == Tracked::Phase::waiting) {
            tracked->phase = Tracked::Phase::gave_up;
        }
    }
    set_state(RoleState::failed, reason, unit);
    units_changed();
    if (switch_ == nullptr) {
        return;
    }
    if (switch_->rolling_back) {
        finish_switch("failed");
        return;
    }
    // Roll back from a fresh call stack: we may be deep inside a callback about one of the units.
    switch_->rolling_back = true;
    record_phase("rolling-back");
    std::weak_ptr<int> alive = alive_;
    switch_->deferred = clock_.after(Clock::duration(0), [this, alive] {
        if (alive.expired() || switch_ == nullptr) {
            return;
        }
        auto old_plan = switch_->old_plan;
        apply(std::move(old_plan));
        switch_->deferred.reset();
        evaluate();
    });
}

void Supervisor::record_phase(std::string_view phase) {
    if (transactions_ == nullptr) {
        return;
    }
    try {
        transactions_->set_phase(phase);
    } catch (const std::exception& e) {
        // The switch goes on: an unfinished record is rolled back at the next start, which is safe.
        if (observer_ != nullptr) {
            observer_->problem(describe(e));
        }
    }
}

void Supervisor::finish_switch(const std::string& outcome) {
    auto done = std::move(switch_);
    if (transactions_ != nullptr) {
        try {
            transactions_->finish(outcome);
        } catch (const std::exception& e) {
            // A record left unfinished would roll this outcome back at the next start: remove it.
            std::error_code ec;
            std::filesystem::remove(transactions_->file(), ec);
            if (observer_ != nullptr) {
                observer_->problem(describe(e) + (ec ? "; removing it: " + ec.message() : "; removed it"));
            }
        }
    }
    if (observer_ != nullptr) {
        observer_->switched(done->old_plan.roles, done->new_roles, outcome);
    }
}

void Supervisor::switch_to(Plan plan) {
    if (switch_ != nullptr) {
        throw Error(Errc::refused, "a role switch is already in progress");
    }
    if (transactions_ != nullptr) {
        transactions_->begin(
            plan_.roles, plan.roles);  // the intent first: nothing has changed if this throws
    }
    switch_ = std::make_unique<Switch>();
    switch_->old_plan = plan_;
    switch_->new_roles = plan.roles;
    // The marker keeps evaluate() from ending the switch while apply() is still setting up.
    switch_->deferred = clock_.after(Clock::duration(0), [] {});
    apply(std::move(plan));
    if (switch_ != nullptr && !switch_->rolling_back) {
        switch_->deferred.reset();
        evaluate();
    }
}

void Supervisor::recover(const SwitchRecord& record, Plan old_plan, const Plan& new_plan) {
    if (switch_ != nullptr) {
        throw Error(Errc::refused, "a role switch is already in progress");
    }
    switch_ = std::make_unique<Switch>();
    switch_->old_plan = old_plan;
    switch_->new_roles = record.new_roles;
    switch_->rolling_back = true;
    if (transactions_ != nullptr) {
        transactions_->resume(record);
    }
    record_phase("rolling-back");
    // Track the new plan's units (without starting anything) so that apply() stops those the old plan
    // lacks: the interrupted run may have started them.
    units_.clear();
    tiers_.clear();
    plan_ = new_plan;
    for (const auto& unit : new_plan.body.units) {
        if (unit.feature.empty() || new_plan.features.contains(unit.feature)) {
            auto tracked = std::make_unique<Tracked>();
            tracked->spec = unit;
            tracked->supervised = unit.owner == UnitOwner::supervisor;
            units_.emplace(unit.name, std::move(tracked));
        }
    }
    switch_->deferred = clock_.after(Clock::duration(0), [] {});  // see switch_to
    apply(std::move(old_plan));
    if (switch_ != nullptr) {
        switch_->deferred.reset();
        evaluate();
    }
}

const RoleSpec& Supervisor::applied_role(const RoleSpec& role) const {
    const RoleSpec* applied = applied_entry(plan_.roles, role);
    if (applied == nullptr) {
        throw Error(Errc::not_found, "role '" + to_string(role) + "' is not applied on this node");
    }
    return *applied;
}

void Supervisor::restart_role(const RoleSpec& requested) {
    const RoleSpec role = applied_role(requested);
    const auto it = plan_.role_units.find(role);
    std::vector<std::string> names = it != plan_.role_units.end() ? it->second : supervised_units();
    for (const auto& name : names) {
        const auto found = units_.find(name);
        if (found != units_.end() && found->second->supervised) {
            force_restart_.insert(name);
        }
    }
    auto plan = plan_;
    apply(std::move(plan));
}

void Supervisor::set_state(RoleState state, const std::string& reason, const std::string& unit) {
    if (state == state_ && reason == reason_) {
        return;
    }
    const bool changed = state != state_;
    state_ = state;
    reason_ = reason;
    reason_unit_ = unit;
    if (changed && observer_ != nullptr) {
        observer_->state_changed(state_, reason_);
    }
}

std::vector<UnitStatus> Supervisor::units(const std::optional<RoleSpec>& role) const {
    std::set<std::string> filter;
    if (role) {
        const RoleSpec* applied = applied_entry(plan_.roles, *role);
        const auto it = plan_.role_units.find(applied != nullptr ? *applied : *role);
        if (it != plan_.role_units.end()) {
            filter.insert(it->second.begin(), it->second.end());
        }
    }
    std::vector<UnitStatus> result;
    for (const auto& tier : tiers_) {
        for (const auto& name : tier) {
            if (role && !filter.contains(name)) {
                continue;
            }
            const auto& t = *units_.at(name);
            const auto* state = systemd_.unit_state(name);
            UnitStatus status;
            status.unit = name;
            status.active_state = state != nullptr ? state->active_state : "unknown";
            status.restarts = t.own_restarts + (state != nullptr ? state->n_restarts : 0);
            switch (t.phase) {
                case Tracked::Phase::pending:
                    status.check_state = "pending";
                    break;
                case Tracked::Phase::starting:
                    status.check_state = "starting";
                    break;
                case Tracked::Phase::waiting:
                    status.check_state = "waiting";
                    break;
                case Tracked::Phase::stopping:
                    status.check_state = "stopping";
                    break;
                case Tracked::Phase::gave_up:
                    status.check_state = "gave-up";
                    break;
                case Tracked::Phase::not_applicable:
                    status.check_state = "not-applicable";
                    break;
                case Tracked::Phase::running: {
                    bool failing = false;
                    bool pending = false;
                    for (const auto& c : t.checks) {
                        failing = failing || (c.known && !c.passing);
                        pending = pending || !c.known;
                    }
                    const bool active = state != nullptr && state->active_state == "active";
                    status.check_state = t.restart_held       ? "held"
                                         : failing || !active ? "failing"
                                         : pending            ? "pending"
                                                              : "passing";
                    break;
                }
            }
            result.push_back(std::move(status));
        }
    }
    return result;
}

std::map<std::string, std::string> Supervisor::invocation_ids() const {
    std::map<std::string, std::string> ids;
    for (const auto& [name, tracked] : units_) {
        const auto* state = systemd_.unit_state(name);
        if (state != nullptr && state->active_state == "active" && !state->invocation_id.empty()) {
            ids[name] = state->invocation_id;
        }
    }
    return ids;
}

void Supervisor::units_changed() {
    auto now = units();
    if (now != last_units_) {
        last_units_ = std::move(now);
        if (observer_ != nullptr) {
            observer_->units_changed();
        }
    }
}

}  // namespace stormnode::roles
