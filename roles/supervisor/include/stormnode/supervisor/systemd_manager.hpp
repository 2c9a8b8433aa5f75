// The seam between the supervisor and systemd. Every call is asynchronous: it returns at once and its
// completion arrives later from the event loop, so a running job never blocks the supervisor.
#pragma once

#include <stormnode/common/error.hpp>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace stormnode::roles {

// The result string of systemd's JobRemoved signal, plus "rejected": systemd refused to queue the job
// (unknown or masked unit, bad name, bus error).
enum class JobResult { done, canceled, timeout, failed, dependency, skipped, rejected };

std::string_view to_string(JobResult result);
JobResult parse_job_result(std::string_view text);  // unknown strings map to failed

struct JobOutcome {
    JobResult result = JobResult::done;
    std::string error;  // for rejected: the D-Bus error message

    [[nodiscard]] bool ok() const noexcept { return result == JobResult::done; }
};

// Error(unit_failed) "starting 'x.service': job failed" (or the rejection), or nothing for done.
std::optional<Error> job_error(std::string_view verb, const std::string& unit, const JobOutcome& outcome);

// What systemd says about a unit (org.freedesktop.systemd1.Unit and .Service properties).
struct UnitState {
    std::string load_state;        // loaded, not-found, masked, ...
    std::string active_state;      // active, reloading, inactive, failed, activating, deactivating
    std::string sub_state;         // running, exited, dead, auto-restart, ...
    std::string result;            // success, exit-code, signal, core-dump, timeout, start-limit-hit, ...
    std::uint32_t n_restarts = 0;  // systemd's own Restart= count
    std::uint32_t main_pid = 0;
    std::string invocation_id;  // 32 hex digits; changes on every start
    // Whether the unit's Condition*= held when it was last checked (ConditionResult); the check time in
    // µs since the epoch (ConditionTimestamp), 0 when never checked (ConditionResult is then false too).
    bool condition_result = true;
    std::uint64_t condition_timestamp = 0;

    // Its last start was skipped because a Condition*= did not hold: the unit does not apply here (chrony
    // without CAP_SYS_TIME in a container), which is not a failure.
    [[nodiscard]] bool skipped_by_condition() const noexcept {
        return condition_timestamp != 0 && !condition_result;
    }

    bool operator==(const UnitState&) const = default;
};

class SystemdManager {
public:
    using JobCallback = std::function<void(const JobOutcome&)>;
    using Completion = std::function<void(const std::optional<Error>&)>;
    using UnitListener = std::function<void(const std::string& unit, const UnitState& state)>;

    SystemdManager() = default;
    SystemdManager(const SystemdManager&) = delete;
    SystemdManager& operator=(const SystemdManager&) = delete;
    SystemdManager(SystemdManager&&) = delete;
    SystemdManager& operator=(SystemdManager&&) = delete;
    virtual ~SystemdManager() = default;

    // Queue a job (mode "replace") and call done when its JobRemoved arrives.
    virtual void start_unit(const std::string& unit, JobCallback done) = 0;
    virtual void stop_unit(const std::string& unit, JobCallback done) = 0;
    virtual void restart_unit(const std::string& unit, JobCallback done) = 0;

    // Unit files; runtime: under /run (for this boot only). Each is followed by nothing: call reload().
    virtual void enable_unit_files(const std::vector<std::string>& units, bool runtime, Completion done) = 0;
    virtual void disable_unit_files(const std::vector<std::string>& units, bool runtime, Completion done) = 0;
    virtual void mask_unit_files(const std::vector<std::string>& units, bool runtime, Completion done) = 0;
    virtual void unmask_unit_files(const std::vector<std::string>& units, bool runtime, Completion done) = 0;
    virtual void reload(Completion done) = 0;

    // Follow a unit: its state is read once, then kept from PropertiesChanged signals. The listener is
    // called whenever a followed unit's state changes (the first time when it is first known).
    virtual void watch_unit(const std::string& unit) = 0;
    virtual void unwatch_unit(const std::string& unit) = 0;
    virtual void set_unit_listener(UnitListener listener) = 0;
    // The last known state, nullptr until it is known.
    [[nodiscard]] virtual const UnitState* unit_state(const std::string& unit) const = 0;
};

}  // namespace stormnode::roles
