// The real seams: sd-event timers, and systemd's manager over sd-bus (org.freedesktop.systemd1).
#pragma once

#include <stormnode/common/c_handle.hpp>
#include <stormnode/node_client/bus_handles.hpp>
#include <stormnode/supervisor/clock.hpp>
#include <stormnode/supervisor/prober.hpp>
#include <stormnode/supervisor/systemd_manager.hpp>

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include <cerrno>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>

namespace stormnode::roles {

// Exceptions never cross the C callbacks of sd-event and sd-bus: they are caught there and handed to
// this handler (the daemon logs them), and the callback returns an error to its library.
void set_callback_error_handler(std::function<void(const std::string&)> handler);
void report_callback_error(const std::exception& e);

// Runs an sd-bus/sd-event callback body: an exception must not cross into C; it is reported and the
// callback returns -EIO.
template <typename F>
int guarded(F&& fn) noexcept {
    try {
        fn();
        return 0;
    } catch (const std::exception& e) {
        report_callback_error(e);
    } catch (...) {
        report_callback_error(std::runtime_error("unknown exception"));
    }
    return -EIO;
}

// "system", "user", or a D-Bus address ("unix:path=/run/x/bus"); attached to the event loop.
BusConnection open_bus(const std::string& which, sd_event* event);

class SdEventClock final : public Clock {
public:
    explicit SdEventClock(sd_event* event) : event_(event) {}
    [[nodiscard]] time_point now() const override;
    [[nodiscard]] std::unique_ptr<Timer> after(duration d, std::function<void()> fn) override;

private:
    sd_event* event_;
};

// Subscribes to systemd at construction (match on JobRemoved first, then Subscribe), so every job queued
// later has its JobRemoved seen. Unit state comes from PropertiesChanged on each watched unit's object.
class SdBusSystemdManager final : public SystemdManager {
public:
    explicit SdBusSystemdManager(sd_bus* bus);
    ~SdBusSystemdManager() override;

    void start_unit(const std::string& unit, JobCallback done) override;
    void stop_unit(const std::string& unit, JobCallback done) override;
    void restart_unit(const std::string& unit, JobCallback done) override;
    void enable_unit_files(const std::vector<std::string>& units, bool runtime, Completion done) override;
    void disable_unit_files(const std::vector<std::string>& units, bool runtime, Completion done) override;
    void mask_unit_files(const std::vector<std::string>& units, bool runtime, Completion done) override;
    void unmask_unit_files(const std::vector<std::string>& units, bool runtime, Completion done) override;
    void reload(Completion done) override;
    void watch_unit(const std::string& unit) override;
    void unwatch_unit(const std::string& unit) override;
    void set_unit_listener(UnitListener listener) override { listener_ = std::move(listener); }
    [[nodiscard]] const UnitState* unit_state(const std::string& unit) const override;

    // For tests and the benchmark: JobRemoved signals seen so far.
    [[nodiscard]] std::uint64_t jobs_removed() const noexcept { return jobs_removed_; }

    // Internal: called from the sd-bus callbacks.
    void on_job_removed(sd_bus_message* m);
    void on_properties_changed(const std::string& unit, sd_bus_message* m);

private:
    struct Watch {
        BusSlot match;
        UnitState state;
        bool known = false;
    };

    void job(const char* method, const std::string& unit, JobCallback done);
    void unit_files(
        const char* method,
        const std::vector<std::string>& units,
        bool runtime,
        bool with_force,
        Completion done);
    void load_properties(const std::string& unit, const std::string& interface);
    void read_properties(const std::string& unit, sd_bus_message* m);
    void notify(const std::string& unit);

    sd_bus* bus_;
    BusSlot job_removed_match_;
    std::map<std::string, JobCallback> pending_jobs_;  // job object path -> waiter
    std::map<std::string, JobResult> early_results_;   // JobRemoved seen before the StartUnit reply
    std::map<std::string, std::unique_ptr<Watch>> watches_;
    std::string systemd_owner_;  // unique name of org.freedesktop.systemd1
    UnitListener listener_;
    std::uint64_t jobs_removed_ = 0;
    std::shared_ptr<int> alive_ = std::make_shared<int>(0);
};

// The real probes on an sd-event loop: non-blocking connect (tcp), a plain HTTP/1.0 GET over it (http),
// a child process watched through its pidfd (exec), /proc (amqp_peer). Hosts are IP addresses or
// "localhost": a name lookup would block the loop.
class SdEventProber final : public Prober {
public:
    explicit SdEventProber(sd_event* event) : event_(event) {}
    [[nodiscard]] std::unique_ptr<Pending> probe(
        const Check& check, const UnitState& unit, Callback done) override;

private:
    sd_event* event_;
};

// Whether process pid holds an ESTABLISHED TCP connection to remote port `port` (its sockets from
// /proc/<pid>/fd, the connections from /proc/<pid>/net/tcp and tcp6).
bool has_established_connection(std::uint32_t pid, int port, std::string* detail = nullptr);

}  // namespace stormnode::roles
