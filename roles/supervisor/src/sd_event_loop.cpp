#include "stormnode/supervisor/sd_event_loop.hpp"

#include <stormnode/common/error.hpp>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>

namespace stormnode::roles {
namespace {

constexpr const char* kService = "org.freedesktop.systemd1";
constexpr const char* kManagerPath = "/org/freedesktop/systemd1";
constexpr const char* kManager = "org.freedesktop.systemd1.Manager";
constexpr const char* kUnitInterface = "org.freedesktop.systemd1.Unit";
constexpr const char* kServiceInterface = "org.freedesktop.systemd1.Service";

// A pending method call: the reply handler runs only while its owner is alive; the context is freed
// with the slot (after the reply, or when the bus goes away).
struct CallContext {
    std::weak_ptr<int> alive;
    std::function<void(sd_bus_message*)> on_reply;
};

std::function<void(const std::string&)>& callback_error_handler() {
    static std::function<void(const std::string&)> handler;
    return handler;
}

int on_call_reply(sd_bus_message* m, void* userdata, sd_bus_error* /*error*/) {
    auto* ctx = static_cast<CallContext*>(userdata);
    return guarded([&] {
        if (!ctx->alive.expired()) {
            ctx->on_reply(m);
        }
    });
}

void free_call_context(void* userdata) {
    delete static_cast<CallContext*>(userdata);  // NOLINT(cppcoreguidelines-owning-memory)
}

void call_async(
    sd_bus* bus,
    sd_bus_message* call,
    std::weak_ptr<int> alive,
    std::function<void(sd_bus_message*)> fn,
    uint64_t timeout_usec = 0) {
    auto ctx = std::make_unique<CallContext>(CallContext{std::move(alive), std::move(fn)});
    sd_bus_slot* raw = nullptr;
    check_r(
        sd_bus_call_async(bus, &raw, call, on_call_reply, ctx.get(), timeout_usec),
        "calling systemd",
        Errc::dbus);
    BusSlot slot(raw);
    sd_bus_slot_set_destroy_callback(slot.get(), free_call_context);
    ctx.release();
    sd_bus_slot_set_floating(slot.get(), 1);  // the bus keeps it until the reply; our reference goes
}

// The error of a reply, or empty when it is not an error.
std::string reply_error(sd_bus_message* m) {
    if (sd_bus_message_is_method_error(m, nullptr) == 0) {
        return {};
    }
    const sd_bus_error* e = sd_bus_message_get_error(m);
    std::string text = e != nullptr && e->message != nullptr ? e->message : "";
    if (text.empty() && e != nullptr && e->name != nullptr) {
        text = e->name;
    }
    return text.empty() ? "unknown D-Bus error" : text;
}

BusMessage new_call(sd_bus* bus, const char* path, const char* interface, const char* method) {
    BusMessage m;
    check_r(
        sd_bus_message_new_method_call(bus, out(m), kService, path, interface, method), method, Errc::dbus);
    return m;
}

std::string unit_path(const std::string& unit) {
    char* raw = nullptr;
    check_r(
        sd_bus_path_encode("/org/freedesktop/systemd1/unit", unit.c_str(), &raw),
        "encoding unit path",
        Errc::dbus);
    std::string path(raw);
    free(raw);  // NOLINT(cppcoreguidelines-no-malloc)
    return path;
}

struct MatchContext {
    SdBusSystemdManager* manager;
    std::string unit;
};

int on_job_removed_signal(sd_bus_message* m, void* userdata, sd_bus_error* /*error*/) {
    return guarded([&] { static_cast<SdBusSystemdManager*>(userdata)->on_job_removed(m); });
}

int on_properties_signal(sd_bus_message* m, void* userdata, sd_bus_error* /*error*/) {
    auto* ctx = static_cast<MatchContext*>(userdata);
    return guarded([&] { ctx->manager->on_properties_changed(ctx->unit, m); });
}

void free_match_context(void* userdata) {
    delete static_cast<MatchContext*>(userdata);  // NOLINT(cppcoreguidelines-owning-memory)
}

int on_timer(sd_event_source* /*source*/, uint64_t /*usec*/, void* userdata);

struct SdTimer final : Clock::Timer {
    EventSource source;
    std::function<void()> fn;
};

int on_timer(sd_event_source* /*source*/, uint64_t /*usec*/, void* userdata) {
    auto* timer = static_cast<SdTimer*>(userdata);
    auto fn = std::move(timer->fn);  // the callback may destroy the timer
    return guarded([&] {
        if (fn) {
            fn();
        }
    });
}

}  // namespace

void set_callback_error_handler(std::function<void(const std::string&)> handler) {
    callback_error_handler() = std::move(handler);
}

void report_callback_error(const std::exception& e) {
    if (callback_error_handler()) {
        callback_error_handler()(describe(e));
    }
}

BusConnection open_bus(const std::string& which, sd_event* event) {
    BusConnection bus;
    if (which == "system") {
        check_r(sd_bus_open_system(out(bus)), "connecting to the system bus", Errc::dbus);
    } else if (which == "user") {
        check_r(sd_bus_open_user(out(bus)), "connecting to the user bus", Errc::dbus);
    } else {
        check_r(sd_bus_new(out(bus)), "creating a bus connection", Errc::dbus);
        check_r(sd_bus_set_address(bus.get(), which.c_str()), "bus address '" + which + "'", Errc::dbus);
        check_r(sd_bus_set_bus_client(bus.get(), 1), "bus client", Errc::dbus);
        check_r(sd_bus_start(bus.get()), "connecting to " + which, Errc::dbus);
    }
    if (event != nullptr) {
        check_r(
            sd_bus_attach_event(bus.get(), event, SD_EVENT_PRIORITY_NORMAL), "attaching the bus", Errc::dbus);
    }
    return bus;
}

Clock::time_point SdEventClock::now() const {
    return std::chrono::steady_clock::now();  // CLOCK_MONOTONIC, the clock sd-event's timers use
}

std::unique_ptr<Clock::Timer> SdEventClock::after(duration d, std::function<void()> fn) {
    auto timer = std::make_unique<SdTimer>();
    timer->fn = std::move(fn);
    const auto usec = static_cast<uint64_t>(std::max<duration::rep>(d.count(), 0)) * 1000U;
    // Let the kernel coalesce wake-ups: a tenth of the delay, between 1 ms and 250 ms.
    const uint64_t accuracy = std::clamp<uint64_t>(usec / 10, 1000, 250000);
    sd_event_source* raw = nullptr;
    check_r(
        sd_event_add_time_relative(event_, &raw, CLOCK_MONOTONIC, usec, accuracy, on_timer, timer.get()),
        "adding a timer");
    timer->source.reset(raw);
    return timer;
}

SdBusSystemdManager::SdBusSystemdManager(sd_bus* bus) : bus_(bus) {
    // The match goes out before Subscribe and before any StartUnit on this connection, and the bus keeps
    // messages of one connection in order: no JobRemoved of ours can slip past.
    check_r(
        sd_bus_match_signal_async(
            bus_,
            out(job_removed_match_),
            kService,
            kManagerPath,
            kManager,
            "JobRemoved",
            on_job_removed_signal,
            nullptr,
            this),
        "matching JobRemoved",
        Errc::dbus);
    auto call = new_call(bus_, kManagerPath, kManager, "Subscribe");
    call_async(bus_, call.get(), alive_, [](sd_bus_message*) {});
}

SdBusSystemdManager::~SdBusSystemdManager() = default;

void SdBusSystemdManager::job(const char* method, const std::string& unit, JobCallback done) {
    auto call = new_call(bus_, kManagerPath, kManager, method);
    check_r(sd_bus_message_append(call.get(), "ss", unit.c_str(), "replace"), method, Errc::dbus);
    call_async(bus_, call.get(), alive_, [this, done = std::move(done)](sd_bus_message* reply) {
        if (auto error = reply_error(reply); !error.empty()) {
            done(JobOutcome{JobResult::rejected, std::move(error)});
            return;
        }
        if (const char* sender = sd_bus_message_get_sender(reply); sender != nullptr) {
            systemd_owner_ = sender;
        }
        const char* path = nullptr;
        if (sd_bus_message_read(reply, "o", &path) < 0 || path == nullptr) {
            done(JobOutcome{JobResult::rejected, "malformed reply from systemd"});
            return;
        }
        if (const auto it = early_results_.find(path); it != early_results_.end()) {
            const auto result = it->second;
            early_results_.erase(it);
            done(JobOutcome{result, {}});
            return;
        }
        pending_jobs_[path] = done;
    });
}

void SdBusSystemdManager::start_unit(const std::string& unit, JobCallback done) {
    job("StartUnit", unit, std::move(done));
}
void SdBusSystemdManager::stop_unit(const std::string& unit, JobCallback done) {
    job("StopUnit", unit, std::move(done));
}
void SdBusSystemdManager::restart_unit(const std::string& unit, JobCallback done) {
    job("RestartUnit", unit, std::move(done));
}

void SdBusSystemdManager::on_job_removed(sd_bus_message* m) {
    const char* sender = sd_bus_message_get_sender(m);
    if (!systemd_owner_.empty() && (sender == nullptr || systemd_owner_ != sender)) {
        return;  // not from systemd
    }
    uint32_t id = 0;
    const char* path = nullptr;
    const char* unit = nullptr;
    const char* result = nullptr;
    if (sd_bus_message_read(m, "uoss", &id, &path, &unit, &result) < 0) {
        return;
    }
    ++jobs_removed_;
    const auto it = pending_jobs_.find(path);
    if (it == pending_jobs_.end()) {
        // Someone else's job, or ours with its reply still on the way. Keep a bounded memory of them.
        if (early_results_.size() >= 256) {
            early_results_.erase(early_results_.begin());
        }
        early_results_[path] = parse_job_result(result);
        return;
    }
    auto done = std::move(it->second);
    pending_jobs_.erase(it);
    done(JobOutcome{parse_job_result(result), {}});
}

void SdBusSystemdManager::unit_files(
    const char* method,
    const std::vector<std::string>& units,
    bool runtime,
    bool with_force,
    Completion done) {
    auto call = new_call(bus_, kManagerPath, kManager, method);
    check_r(sd_bus_message_open_container(call.get(), 'a', "s"), method, Errc::dbus);
    for (const auto& unit : units) {
        check_r(sd_bus_message_append(call.get(), "s", unit.c_str()), method, Errc::dbus);
    }
    check_r(sd_bus_message_close_container(call.get()), method, Errc::dbus);
    check_r(sd_bus_message_append(call.get(), "b", static_cast<int>(runtime)), method, Errc::dbus);
    if (with_force) {
        check_r(sd_bus_message_append(call.get(), "b", 1), method, Errc::dbus);
    }
    call_async(
        bus_,
        call.get(),
        alive_,
        [method = std::string(method), done = std::move(done)](sd_bus_message* reply) {
            if (auto error = reply_error(reply); !error.empty()) {
                done(Error(Errc::dbus, method + ": " + error));
                return;
            }
            done(std::nullopt);
        });
}

void SdBusSystemdManager::enable_unit_files(
    const std::vector<std::string>& units, bool runtime, Completion done) {
    unit_files("EnableUnitFiles", units, runtime, true, std::move(done));
}
void SdBusSystemdManager::disable_unit_files(
    const std::vector<std::string>& units, bool runtime, Completion done) {
    unit_files("DisableUnitFiles", units, runtime, false, std::move(done));
}
void SdBusSystemdManager::mask_unit_files(
    const std::vector<std::string>& units, bool runtime, Completion done) {
    unit_files("MaskUnitFiles", units, runtime, true, std::move(done));
}
void SdBusSystemdManager::unmask_unit_files(
    const std::vector<std::string>& units, bool runtime, Completion done) {
    unit_files("UnmaskUnitFiles", units, runtime, false, std::move(done));
}

void SdBusSystemdManager::reload(Completion done) {
    auto call = new_call(bus_, kManagerPath, kManager, "Reload");
    // A reload of a big system can take longer than the default 25 s.
    constexpr uint64_t kReloadTimeoutUsec = 120ULL * 1000 * 1000;
    call_async(
        bus_,
        call.get(),
        alive_,
        [done = std::move(done)](sd_bus_message* reply) {
            if (auto error = reply_error(reply); !error.empty()) {
                done(Error(Errc::dbus, "Reload: " + error));
                return;
            }
            done(std::nullopt);
        },
        kReloadTimeoutUsec);
}

void SdBusSystemdManager::watch_unit(const std::string& unit) {
    if (watches_.contains(unit)) {
        return;
    }
    auto watch = std::make_unique<Watch>();
    const auto path = unit_path(unit);
    auto ctx = std::make_unique<MatchContext>(MatchContext{this, unit});
    check_r(
        sd_bus_match_signal_async(
            bus_,
            out(watch->match),
            kService,
            path.c_str(),
            "org.freedesktop.DBus.Properties",
            "PropertiesChanged",
            on_properties_signal,
            nullptr,
            ctx.get()),
        "matching PropertiesChanged of " + unit,
        Errc::dbus);
    sd_bus_slot_set_destroy_callback(watch->match.get(), free_match_context);
    ctx.release();
    watches_[unit] = std::move(watch);

    // Once, at adoption: LoadUnit (so an unloaded unit gets its object), then GetAll.
    auto call = new_call(bus_, kManagerPath, kManager, "LoadUnit");
    check_r(sd_bus_message_append(call.get(), "s", unit.c_str()), "LoadUnit", Errc::dbus);
    call_async(bus_, call.get(), alive_, [this, unit](sd_bus_message* reply) {
        if (!watches_.contains(unit)) {
            return;
        }
        if (const char* sender = sd_bus_message_get_sender(reply);
            sender != nullptr && reply_error(reply).empty()) {
            systemd_owner_ = sender;
        }
        if (!reply_error(reply).empty()) {  // a unit systemd cannot load: its start job will say why
            auto& w = *watches_.at(unit);
            w.state.load_state = "not-found";
            w.state.active_state = "inactive";
            w.known = true;
            notify(unit);
            return;
        }
        // systemd's order: the type's interface first, then Unit; the Unit part completes the picture.
        if (unit.ends_with(".service")) {
            load_properties(unit, kServiceInterface);
        }
        load_properties(unit, kUnitInterface);
    });
}

void SdBusSystemdManager::load_properties(const std::string& unit, const std::string& interface) {
    auto call = new_call(bus_, unit_path(unit).c_str(), "org.freedesktop.DBus.Properties", "GetAll");
    check_r(sd_bus_message_append(call.get(), "s", interface.c_str()), "GetAll", Errc::dbus);
    call_async(
        bus_, call.get(), alive_, [this, unit, is_unit = interface == kUnitInterface](sd_bus_message* reply) {
            if (!watches_.contains(unit) || !reply_error(reply).empty()) {
                return;
            }
            read_properties(unit, reply);
            if (is_unit) {
                watches_.at(unit)->known = true;
                notify(unit);
            }
        });
}

// Reads an a{sv} of unit properties, keeping the ones we follow.
void SdBusSystemdManager::read_properties(const std::string& unit, sd_bus_message* m) {
    auto& w = *watches_.at(unit);
    auto& s = w.state;
    if (sd_bus_message_enter_container(m, 'a', "{sv}") < 0) {
        return;
    }
    while (sd_bus_message_enter_container(m, 'e', "sv") > 0) {
        const char* name = nullptr;
        if (sd_bus_message_read(m, "s", &name) < 0) {
            return;
        }
        const std::string key(name);
        std::string* text = key == "ActiveState" ? &s.active_state
                            : key == "SubState"  ? &s.sub_state
                            : key == "LoadState" ? &s.load_state
                            : key == "Result"    ? &s.result
                                                 : nullptr;
        if (text != nullptr) {
            const char* value = nullptr;
            if (sd_bus_message_read(m, "v", "s", &value) >= 0 && value != nullptr) {
                *text = value;
            }
        } else if (key == "NRestarts" || key == "MainPID") {
            uint32_t value = 0;
            if (sd_bus_message_read(m, "v", "u", &value) >= 0) {
                (key == "NRestarts" ? s.n_restarts : s.main_pid) = value;
            }
        } else if (key == "ConditionResult") {
            int value = 1;
            if (sd_bus_message_read(m, "v", "b", &value) >= 0) {
                s.condition_result = value != 0;
            }
        } else if (key == "ConditionTimestamp") {
            uint64_t value = 0;
            if (sd_bus_message_read(m, "v", "t", &value) >= 0) {
                s.condition_timestamp = value;
            }
        } else if (key == "InvocationID") {
            const void* bytes = nullptr;
            size_t size = 0;
            if (sd_bus_message_enter_container(m, 'v', "ay") >= 0) {
                if (sd_bus_message_read_array(m, 'y', &bytes, &size) >= 0) {
                    std::string hex;
                    const auto* b = static_cast<const unsigned char*>(bytes);
                    for (size_t i = 0; i < size; ++i) {
                        std::array<char, 3> two{};
                        std::snprintf(two.data(), two.size(), "%02x", b[i]);
                        hex += two.data();
                    }
                    s.invocation_id = hex;
                }
                sd_bus_message_exit_container(m);
            }
        } else {
            sd_bus_message_skip(m, "v");
        }
        sd_bus_message_exit_container(m);
    }
    sd_bus_message_exit_container(m);
}

void SdBusSystemdManager::on_properties_changed(const std::string& unit, sd_bus_message* m) {
    const char* sender = sd_bus_message_get_sender(m);
    if (!systemd_owner_.empty() && (sender == nullptr || systemd_owner_ != sender)) {
        return;
    }
    if (!watches_.contains(unit)) {
        return;
    }
    const char* interface = nullptr;
    if (sd_bus_message_read(m, "s", &interface) < 0) {
        return;
    }
    read_properties(unit, m);
    // Properties sent as "invalidated" carry no value: read that interface again, once.
    if (sd_bus_message_enter_container(m, 'a', "s") > 0) {
        const char* name = nullptr;
        bool refresh = false;
        while (sd_bus_message_read(m, "s", &name) > 0) {
            const std::string key(name);
            refresh = refresh || key == "ActiveState" || key == "SubState" || key == "Result" ||
                      key == "NRestarts" || key == "MainPID" || key == "InvocationID" ||
                      key == "ConditionResult" || key == "ConditionTimestamp";
        }
        sd_bus_message_exit_container(m);
        if (refresh) {
            load_properties(unit, interface);
        }
    }
    // systemd sends the type's interface (Service: MainPID, Result, NRestarts) first, then Unit: tell the
    // listener once the whole change is in.
    if (std::string_view(interface) == kUnitInterface) {
        notify(unit);
    }
}

void SdBusSystemdManager::notify(const std::string& unit) {
    const auto it = watches_.find(unit);
    if (it == watches_.end() || !it->second->known) {
        return;
    }
    if (listener_) {
        const UnitState copy = it->second->state;  // the listener may unwatch
        listener_(unit, copy);
    }
}

void SdBusSystemdManager::unwatch_unit(const std::string& unit) {
    watches_.erase(unit);
}

const UnitState* SdBusSystemdManager::unit_state(const std::string& unit) const {
    const auto it = watches_.find(unit);
    return it == watches_.end() || !it->second->known ? nullptr : &it->second->state;
}

}  // namespace stormnode::roles
