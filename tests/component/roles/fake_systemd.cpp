#include "fake_systemd.hpp"

#include <stormnode/common/error.hpp>

#include <cerrno>
#include <cstdlib>
#include <memory>

namespace stormnode::roles::testing {
namespace {

constexpr const char* kUnitPrefix = "/org/freedesktop/systemd1/unit";

FakeSystemdService* self(void* userdata) {
    return static_cast<FakeSystemdService*>(userdata);
}

std::string unit_of_path(const char* path) {
    char* name = nullptr;
    if (sd_bus_path_decode(path, kUnitPrefix, &name) <= 0) {
        return {};
    }
    std::string unit(name);
    free(name);  // NOLINT(cppcoreguidelines-no-malloc)
    return unit;
}

std::string path_of_unit(const std::string& unit) {
    char* path = nullptr;
    check_r(sd_bus_path_encode(kUnitPrefix, unit.c_str(), &path), "encoding path");
    std::string text(path);
    free(path);  // NOLINT(cppcoreguidelines-no-malloc)
    return text;
}

int method_subscribe(sd_bus_message* m, void* userdata, sd_bus_error* /*error*/) {
    ++self(userdata)->subscribers;
    self(userdata)->calls.emplace_back("Subscribe");
    return sd_bus_reply_method_return(m, "");
}

int method_job(sd_bus_message* m, void* userdata, sd_bus_error* error) {
    return self(userdata)->on_job(m, sd_bus_message_get_member(m), error);
}

int method_unit_files(sd_bus_message* m, void* userdata, sd_bus_error* error) {
    return self(userdata)->on_unit_files(m, sd_bus_message_get_member(m), error);
}

int method_reload(sd_bus_message* m, void* userdata, sd_bus_error* /*error*/) {
    self(userdata)->calls.emplace_back("Reload");
    return sd_bus_reply_method_return(m, "");
}

int method_get_unit(sd_bus_message* m, void* userdata, sd_bus_error* error) {
    const char* unit = nullptr;
    const int r = sd_bus_message_read(m, "s", &unit);
    if (r < 0) {
        return r;
    }
    self(userdata)->calls.push_back(std::string(sd_bus_message_get_member(m)) + " " + unit);
    if (!self(userdata)->units.contains(unit)) {
        return sd_bus_error_setf(error, "org.freedesktop.systemd1.NoSuchUnit", "Unit %s not found.", unit);
    }
    return sd_bus_reply_method_return(m, "o", path_of_unit(unit).c_str());
}

int get_property(
    sd_bus* /*bus*/,
    const char* path,
    const char* /*interface*/,
    const char* property,
    sd_bus_message* reply,
    void* userdata,
    sd_bus_error* error) {
    const auto name = unit_of_path(path);
    const auto it = self(userdata)->units.find(name);
    if (it == self(userdata)->units.end()) {
        return sd_bus_error_setf(error, SD_BUS_ERROR_UNKNOWN_OBJECT, "no unit %s", name.c_str());
    }
    const auto& u = it->second;
    const std::string p(property);
    if (p == "LoadState")
        return sd_bus_message_append(reply, "s", "loaded");
    if (p == "ActiveState")
        return sd_bus_message_append(reply, "s", u.active_state.c_str());
    if (p == "SubState")
        return sd_bus_message_append(reply, "s", u.sub_state.c_str());
    if (p == "Result")
        return sd_bus_message_append(reply, "s", u.result.c_str());
    if (p == "NRestarts")
        return sd_bus_message_append(reply, "u", u.n_restarts);
    if (p == "MainPID")
        return sd_bus_message_append(reply, "u", u.main_pid);
    if (p == "InvocationID")
        return sd_bus_message_append_array(reply, 'y', u.invocation_id.data(), u.invocation_id.size());
    return -ENOENT;
}

int find_unit(
    sd_bus* /*bus*/,
    const char* path,
    const char* /*interface*/,
    void* userdata,
    void** found,
    sd_bus_error* /*error*/) {
    if (!self(userdata)->units.contains(unit_of_path(path))) {
        return 0;
    }
    *found = userdata;
    return 1;
}

constexpr uint64_t kEmits = SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE;

const sd_bus_vtable kManagerVtable[] = {
    SD_BUS_VTABLE_START(0),
    SD_BUS_METHOD("Subscribe", "", "", method_subscribe, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD("StartUnit", "ss", "o", method_job, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD("StopUnit", "ss", "o", method_job, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD("RestartUnit", "ss", "o", method_job, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD("GetUnit", "s", "o", method_get_unit, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD("LoadUnit", "s", "o", method_get_unit, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD("EnableUnitFiles", "asbb", "ba(sss)", method_unit_files, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD("DisableUnitFiles", "asb", "a(sss)", method_unit_files, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD("MaskUnitFiles", "asbb", "a(sss)", method_unit_files, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD("UnmaskUnitFiles", "asb", "a(sss)", method_unit_files, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD("Reload", "", "", method_reload, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_SIGNAL("JobRemoved", "uoss", 0),
    SD_BUS_VTABLE_END};

const sd_bus_vtable kUnitVtable[] = {
    SD_BUS_VTABLE_START(0),
    SD_BUS_PROPERTY("LoadState", "s", get_property, 0, kEmits),
    SD_BUS_PROPERTY("ActiveState", "s", get_property, 0, kEmits),
    SD_BUS_PROPERTY("SubState", "s", get_property, 0, kEmits),
    SD_BUS_PROPERTY("InvocationID", "ay", get_property, 0, kEmits),
    SD_BUS_VTABLE_END};

const sd_bus_vtable kServiceVtable[] = {
    SD_BUS_VTABLE_START(0),
    SD_BUS_PROPERTY("Result", "s", get_property, 0, kEmits),
    SD_BUS_PROPERTY("NRestarts", "u", get_property, 0, kEmits),
    SD_BUS_PROPERTY("MainPID", "u", get_property, 0, kEmits),
    SD_BUS_VTABLE_END};

struct JobContext {
    FakeSystemdService* service;
    std::uint32_t id;
    std::string unit;
    std::string method;
};

int on_job_timer(sd_event_source* /*s*/, uint64_t /*usec*/, void* userdata) {
    auto* ctx = static_cast<JobContext*>(userdata);
    ctx->service->finish_job(ctx->id, ctx->unit, ctx->method);
    return 0;
}

void free_job(void* userdata) {
    delete static_cast<JobContext*>(userdata);  // NOLINT(cppcoreguidelines-owning-memory)
}

}  // namespace

FakeSystemdService::FakeSystemdService(const std::string& address, sd_event* event)
    : bus_(open_bus(address, event)),
      event_(event) {
    check_r(
        sd_bus_add_object_vtable(
            bus_.get(),
            out(manager_slot_),
            "/org/freedesktop/systemd1",
            "org.freedesktop.systemd1.Manager",
            kManagerVtable,
            this),
        "manager vtable");
    check_r(
        sd_bus_add_fallback_vtable(
            bus_.get(),
            out(unit_slot_),
            kUnitPrefix,
            "org.freedesktop.systemd1.Unit",
            kUnitVtable,
            find_unit,
            this),
        "unit vtable");
    check_r(
        sd_bus_add_fallback_vtable(
            bus_.get(),
            out(service_slot_),
            kUnitPrefix,
            "org.freedesktop.systemd1.Service",
            kServiceVtable,
            find_unit,
            this),
        "service vtable");
    check_r(
        sd_bus_request_name(bus_.get(), "org.freedesktop.systemd1", 0), "owning org.freedesktop.systemd1");
}

int FakeSystemdService::on_job(sd_bus_message* m, const std::string& method, sd_bus_error* error) {
    const char* unit = nullptr;
    const char* mode = nullptr;
    const int r = sd_bus_message_read(m, "ss", &unit, &mode);
    if (r < 0) {
        return r;
    }
    calls.push_back(method + " " + unit);
    if (!units.contains(unit)) {
        return sd_bus_error_setf(error, "org.freedesktop.systemd1.NoSuchUnit", "Unit %s not found.", unit);
    }
    const std::uint32_t id = next_job_++;
    const std::string path = "/org/freedesktop/systemd1/job/" + std::to_string(id);
    // Like systemd: the reply first, the job runs later from the event loop.
    auto ctx = std::make_unique<JobContext>(JobContext{this, id, unit, method});
    sd_event_source* source = nullptr;
    check_r(
        sd_event_add_time_relative(event_, &source, CLOCK_MONOTONIC, 2000, 0, on_job_timer, ctx.get()),
        "job timer");
    sd_event_source_set_destroy_callback(source, free_job);
    ctx.release();
    sd_event_source_set_floating(source, 1);
    sd_event_source_unref(source);
    return sd_bus_reply_method_return(m, "o", path.c_str());
}

void FakeSystemdService::finish_job(std::uint32_t id, const std::string& unit, const std::string& method) {
    auto& u = units.at(unit);
    std::string result = "done";
    if (method == "StopUnit") {
        set_state(unit, "inactive", "dead");
    } else if (u.next_job_result != "done") {
        result = u.next_job_result;
        set_state(unit, "failed", "failed", "exit-code");
    } else if (method == "RestartUnit" || u.active_state != "active") {
        ++starts;
        if (u.active_state == "active") {
            set_state(unit, "deactivating", "stop-sigterm");
        }
        set_state(unit, "active", "running");
    }
    if (subscribers > 0) {
        const std::string path = "/org/freedesktop/systemd1/job/" + std::to_string(id);
        check_r(
            sd_bus_emit_signal(
                bus_.get(),
                "/org/freedesktop/systemd1",
                "org.freedesktop.systemd1.Manager",
                "JobRemoved",
                "uoss",
                id,
                path.c_str(),
                unit.c_str(),
                result.c_str()),
            "JobRemoved");
    }
}

int FakeSystemdService::on_unit_files(sd_bus_message* m, const std::string& method, sd_bus_error* /*error*/) {
    char** strv = nullptr;
    int r = sd_bus_message_read_strv(m, &strv);
    if (r < 0) {
        return r;
    }
    std::string call = method;
    for (char** s = strv; s != nullptr && *s != nullptr; ++s) {
        call += std::string(" ") + *s;
        free(*s);  // NOLINT(cppcoreguidelines-no-malloc)
    }
    free(static_cast<void*>(strv));  // NOLINT(cppcoreguidelines-no-malloc)
    int runtime = 0;
    r = sd_bus_message_read(m, "b", &runtime);
    if (r < 0) {
        return r;
    }
    calls.push_back(call + (runtime != 0 ? " runtime" : ""));
    if (method == "EnableUnitFiles") {
        return sd_bus_reply_method_return(m, "ba(sss)", 0, 0);
    }
    return sd_bus_reply_method_return(m, "a(sss)", 0);
}

void FakeSystemdService::set_state(
    const std::string& unit, const std::string& active, const std::string& sub, const std::string& result) {
    auto& u = units[unit];
    const bool starting = active == "active" && u.active_state != "active";
    u.active_state = active;
    u.sub_state = sub;
    u.result = result;
    if (starting) {
        u.main_pid = next_pid_++;
        for (std::size_t i = 0; i < u.invocation_id.size(); ++i) {
            u.invocation_id[i] = static_cast<std::uint8_t>((u.main_pid >> (i % 4 * 8)) + i);
        }
    } else if (active != "active") {
        u.main_pid = 0;
    }
    emit_changed(unit);
}

void FakeSystemdService::kill_main(const std::string& unit) {
    set_state(unit, "failed", "failed", "signal");
}

void FakeSystemdService::emit_changed(const std::string& unit) {
    if (subscribers == 0) {
        return;  // systemd sends unit signals only while someone is subscribed
    }
    const auto path = path_of_unit(unit);
    // systemd's order: the unit type's interface first, then org.freedesktop.systemd1.Unit.
    check_r(
        sd_bus_emit_properties_changed(
            bus_.get(),
            path.c_str(),
            "org.freedesktop.systemd1.Service",
            "Result",
            "MainPID",
            "NRestarts",
            nullptr),
        "PropertiesChanged");
    check_r(
        sd_bus_emit_properties_changed(
            bus_.get(),
            path.c_str(),
            "org.freedesktop.systemd1.Unit",
            "ActiveState",
            "SubState",
            "InvocationID",
            nullptr),
        "PropertiesChanged");
}

}  // namespace stormnode::roles::testing
