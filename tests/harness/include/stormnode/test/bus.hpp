// Small sd-bus helpers for tests and benchmarks talking to a container's system bus from the host.
#pragma once

#include <stormnode/common/c_handle.hpp>

#include <systemd/sd-bus.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace stormnode::test {

using Bus = CHandle<sd_bus, sd_bus_flush_close_unref>;
using Message = CHandle<sd_bus_message, sd_bus_message_unref>;
using Slot = CHandle<sd_bus_slot, sd_bus_slot_unref>;

// Connects to "unix:path=..." as a bus client (Hello sent).
Bus connect_bus(const std::string& address);

// A variant flattened to text: s/o/g as is, numbers in decimal, b as true/false, as joined by ','.
using PropertyMap = std::map<std::string, std::string>;

std::string get_property(
    sd_bus* bus,
    const std::string& destination,
    const std::string& path,
    const std::string& interface,
    const std::string& property);
// The reply of Properties.Get, positioned at its variant (for types the flattening does not cover).
Message get_property_message(
    sd_bus* bus,
    const std::string& destination,
    const std::string& path,
    const std::string& interface,
    const std::string& property);
// All properties of an interface (GetAll), flattened.
PropertyMap get_all_properties(
    sd_bus* bus, const std::string& destination, const std::string& path, const std::string& interface);

// Decodes the (s, a{sv}, as) body of org.freedesktop.DBus.Properties.PropertiesChanged.
PropertyMap decode_properties_changed(sd_bus_message* message, std::string* interface = nullptr);

// A received signal, with the time the host received it.
struct Signal {
    Message message;
    std::string path;
    std::string member;
    std::chrono::steady_clock::time_point received;
    std::chrono::system_clock::time_point received_wall;
};

// Records every signal matching a rule; wait_for() drives the bus until a predicate matches one.
class SignalRecorder {
public:
    SignalRecorder(sd_bus* bus, const std::string& match_rule);
    SignalRecorder(const SignalRecorder&) = delete;
    SignalRecorder& operator=(const SignalRecorder&) = delete;
    SignalRecorder(SignalRecorder&&) = delete;
    SignalRecorder& operator=(SignalRecorder&&) = delete;
    ~SignalRecorder() = default;

    // Processes the bus until a recorded (or newly received) signal satisfies `pred`; that signal and
    // all before it are removed from the queue. Throws Error(Errc::timeout) naming `what` on timeout.
    Signal wait_for(
        const std::function<bool(const Signal&)>& pred,
        std::chrono::milliseconds timeout,
        const std::string& what);
    // Forgets every signal received so far, including those a method call read off the socket but
    // nobody dispatched yet: a Get that saw a new State leaves the signals sent before it pending.
    void clear();
    [[nodiscard]] std::size_t pending() const noexcept { return queue_.size(); }

private:
    static int on_message(sd_bus_message* m, void* userdata, sd_bus_error* error);
    sd_bus* bus_;
    Slot slot_;
    std::deque<Signal> queue_;
};

// Drives the bus until `done()` or the deadline; returns done().
bool process_until(sd_bus* bus, const std::function<bool()>& done, std::chrono::milliseconds timeout);

// systemd helpers over org.freedesktop.systemd1.
namespace systemd1 {

inline constexpr const char* kService = "org.freedesktop.systemd1";
inline constexpr const char* kPath = "/org/freedesktop/systemd1";
inline constexpr const char* kManager = "org.freedesktop.systemd1.Manager";
inline constexpr const char* kUnit = "org.freedesktop.systemd1.Unit";
inline constexpr const char* kServiceInterface = "org.freedesktop.systemd1.Service";

void subscribe(sd_bus* bus);
void reload(sd_bus* bus);
std::string load_unit(sd_bus* bus, const std::string& unit);  // object path
// Returns the job path; the caller waits for JobRemoved on it (subscribe and match first).
std::string start_unit(sd_bus* bus, const std::string& unit, const std::string& method = "StartUnit");
std::string unit_property(
    sd_bus* bus, const std::string& unit, const std::string& interface, const std::string& property);

}  // namespace systemd1
}  // namespace stormnode::test
