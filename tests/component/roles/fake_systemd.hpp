// A fake org.freedesktop.systemd1 served with sd-bus vtables: enough of the Manager (Subscribe, jobs,
// unit files, Reload) and of the Unit/Service objects for storm-roled's sd-bus client.
#pragma once

#include <stormnode/supervisor/sd_event_loop.hpp>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace stormnode::roles::testing {

class FakeSystemdService {
public:
    struct FakeUnit {
        std::string active_state = "inactive";
        std::string sub_state = "dead";
        std::string result = "success";
        std::uint32_t n_restarts = 0;
        std::uint32_t main_pid = 0;
        std::vector<std::uint8_t> invocation_id = std::vector<std::uint8_t>(16, 0);
        std::string next_job_result = "done";  // what the next start/restart job ends with
    };

    FakeSystemdService(const std::string& address, sd_event* event);

    std::map<std::string, FakeUnit> units;  // units not here are "not found"
    std::vector<std::string> calls;  // "StartUnit a.service", "EnableUnitFiles a.service b.service", ...
    int subscribers = 0;
    int starts = 0;

    // Changes a unit's state as systemd would, and emits PropertiesChanged (to subscribers).
    void set_state(
        const std::string& unit,
        const std::string& active,
        const std::string& sub,
        const std::string& result = "success");
    // The unit's main process dies from a signal (Restart=no).
    void kill_main(const std::string& unit);

    // Internal, called from the vtables.
    int on_job(sd_bus_message* m, const std::string& method, sd_bus_error* error);
    int on_unit_files(sd_bus_message* m, const std::string& method, sd_bus_error* error);
    void finish_job(std::uint32_t id, const std::string& unit, const std::string& method);
    void emit_changed(const std::string& unit);
    [[nodiscard]] sd_bus* bus() const noexcept { return bus_.get(); }
    [[nodiscard]] sd_event* event() const noexcept { return event_; }

private:
    BusConnection bus_;
    sd_event* event_;
    BusSlot manager_slot_;
    BusSlot unit_slot_;
    BusSlot service_slot_;
    std::uint32_t next_job_ = 1;
    std::uint32_t next_pid_ = 4000;
};

}  // namespace stormnode::roles::testing
