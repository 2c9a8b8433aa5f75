#include "stormnode/supervisor/node_service.hpp"

#include <cerrno>
#include <optional>

namespace stormnode::roles {
namespace {

NodeService* self(void* userdata) {
    return static_cast<NodeService*>(userdata);
}

// A failure becomes the named error from the table; anything else is Error.Failed.
int reply_error(sd_bus_error* error, const std::exception& e) {
    Errc code = Errc::io;
    if (const auto* err = dynamic_cast<const Error*>(&e)) {
        code = err->code();
    }
    int errno_value = EIO;
    for (const auto& entry : node_errors()) {
        if (entry.code == code) {
            errno_value = entry.errno_value;
        }
    }
    const std::string name(node_error_name(code));
    sd_bus_error_set(error, name.c_str(), describe(e).c_str());
    return -errno_value;
}

template <typename F>
int handle(sd_bus_error* error, F&& fn) noexcept {
    try {
        return fn();
    } catch (const std::exception& e) {
        return reply_error(error, e);
    } catch (...) {
        return reply_error(error, std::runtime_error("unknown error"));
    }
}

int append_units(sd_bus_message* reply, const std::vector<UnitStatus>& units) {
    int r = sd_bus_message_open_container(reply, 'a', "(sssu)");
    for (const auto& u : units) {
        if (r >= 0) {
            r = sd_bus_message_append(
                reply, "(sssu)", u.unit.c_str(), u.active_state.c_str(), u.check_state.c_str(), u.restarts);
        }
    }
    return r < 0 ? r : sd_bus_message_close_container(reply);
}

int append_strv(sd_bus_message* reply, const std::vector<std::string>& items) {
    int r = sd_bus_message_open_container(reply, 'a', "s");
    for (const auto& item : items) {
        if (r >= 0) {
            r = sd_bus_message_append(reply, "s", item.c_str());
        }
    }
    return r < 0 ? r : sd_bus_message_close_container(reply);
}

std::vector<std::string> read_strv(sd_bus_message* m) {
    char** strv = nullptr;
    check_r(sd_bus_message_read_strv(m, &strv), "reading the roles", Errc::invalid_input);
    std::vector<std::string> items;
    for (char** s = strv; s != nullptr && *s != nullptr; ++s) {
        items.emplace_back(*s);
        free(*s);  // NOLINT(cppcoreguidelines-no-malloc)
    }
    free(static_cast<void*>(strv));  // NOLINT(cppcoreguidelines-no-malloc)
    return items;
}

int get_property(
    sd_bus* /*bus*/,
    const char* /*path*/,
    const char* /*interface*/,
    const char* property,
    sd_bus_message* reply,
    void* userdata,
    sd_bus_error* error) {
    return handle(error, [&] {
        auto& s = self(userdata)->supervisor();
        const std::string p(property);
        if (p == "Roles") {
            return append_strv(reply, to_strings(s.roles()));
        }
        if (p == "State") {
            return sd_bus_message_append(reply, "s", std::string(to_string(s.state())).c_str());
        }
        if (p == "Reason") {
            return sd_bus_message_append(reply, "s", s.reason().c_str());
        }
        if (p == "Units") {
            return append_units(reply, s.units());
        }
        if (p == "Image") {
            const auto& image = self(userdata)->image();
            return sd_bus_message_append(reply, "(ss)", image.commit.c_str(), image.version.c_str());
        }
        return -ENOENT;
    });
}

int method_set_roles(sd_bus_message* m, void* userdata, sd_bus_error* error) {
    return handle(error, [&] {
        const auto roles = parse_role_specs(read_strv(m));
        int force = 0;
        check_r(sd_bus_message_read(m, "b", &force), "reading force", Errc::invalid_input);
        self(userdata)->set_roles(roles, force != 0);
        return sd_bus_reply_method_return(m, "");
    });
}

int method_restart_role(sd_bus_message* m, void* userdata, sd_bus_error* error) {
    return handle(error, [&] {
        const char* role = nullptr;
        check_r(sd_bus_message_read(m, "s", &role), "reading the role", Errc::invalid_input);
        self(userdata)->supervisor().restart_role(parse_role_spec(role));
        return sd_bus_reply_method_return(m, "");
    });
}

int method_units(sd_bus_message* m, void* userdata, sd_bus_error* error) {
    return handle(error, [&] {
        const char* role = nullptr;
        check_r(sd_bus_message_read(m, "s", &role), "reading the role", Errc::invalid_input);
        auto& s = self(userdata)->supervisor();
        std::optional<RoleSpec> spec;  // "": every role's
        if (*role != '\0') {
            spec = parse_role_spec(role);
            (void)s.applied_role(*spec);  // throws not_found; "db" finds "db:galera"
        }
        BusMessage reply;
        check_r(sd_bus_message_new_method_return(m, out(reply)), "reply", Errc::dbus);
        check_r(append_units(reply.get(), s.units(spec)), "reply", Errc::dbus);
        return sd_bus_send(nullptr, reply.get(), nullptr);
    });
}

constexpr uint64_t kEmits = SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE;

// Methods that change the node need privilege (sd-bus checks CAP_SYS_ADMIN, the bus policy allows
// only root); reading is for everyone.
const sd_bus_vtable kVtable[] = {
    SD_BUS_VTABLE_START(0),
    SD_BUS_PROPERTY("Roles", "as", get_property, 0, kEmits),
    SD_BUS_PROPERTY("State", "s", get_property, 0, kEmits),
    SD_BUS_PROPERTY("Reason", "s", get_property, 0, kEmits),
    SD_BUS_PROPERTY("Units", "a(sssu)", get_property, 0, kEmits),
    SD_BUS_PROPERTY("Image", "(ss)", get_property, 0, SD_BUS_VTABLE_PROPERTY_CONST),
    SD_BUS_METHOD("SetRoles", "asb", "", method_set_roles, 0),
    SD_BUS_METHOD("RestartRole", "s", "", method_restart_role, 0),
    SD_BUS_METHOD("Units", "s", "a(sssu)", method_units, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_SIGNAL("StateChanged", "s", 0),
    SD_BUS_SIGNAL("RoleSwitched", "asass", 0),
    SD_BUS_VTABLE_END};

}  // namespace

NodeService::NodeService(
    sd_bus* bus, Supervisor& supervisor, PlanMaker make_plan, Image image, SwitchGuard guard)
    : bus_(bus),
      supervisor_(supervisor),
      make_plan_(std::move(make_plan)),
      guard_(std::move(guard)),
      image_(std::move(image)) {
    check_r(
        sd_bus_add_object_vtable(bus_, out(slot_), kNodeObjectPath, kNodeInterface, kVtable, this),
        "publishing " + std::string(kNodeObjectPath),
        Errc::dbus);
}

void NodeService::set_roles(const std::vector<RoleSpec>& roles, bool force) {
    if (roles.empty()) {
        throw Error(Errc::invalid_input, "SetRoles needs at least one role");
    }
    if (supervisor_.switching()) {
        throw Error(Errc::refused, "a role switch is already in progress");
    }
    auto plan = make_plan_(roles);  // unknown roles are InvalidRoles before the guard says anything
    if (guard_) {
        guard_(supervisor_.roles(), roles, force);
    }
    supervisor_.switch_to(std::move(plan));
}

void NodeService::state_changed() {
    const std::string state(to_string(supervisor_.state()));
    (void)sd_bus_emit_signal(bus_, kNodeObjectPath, kNodeInterface, "StateChanged", "s", state.c_str());
    (void)sd_bus_emit_properties_changed(bus_, kNodeObjectPath, kNodeInterface, "State", "Reason", nullptr);
}

void NodeService::units_changed() {
    (void)sd_bus_emit_properties_changed(bus_, kNodeObjectPath, kNodeInterface, "Units", nullptr);
}

void NodeService::roles_switched(
    const std::vector<RoleSpec>& old_roles,
    const std::vector<RoleSpec>& new_roles,
    const std::string& outcome) {
    BusMessage signal;
    int r = sd_bus_message_new_signal(bus_, out(signal), kNodeObjectPath, kNodeInterface, "RoleSwitched");
    r = r < 0 ? r : append_strv(signal.get(), to_strings(old_roles));
    r = r < 0 ? r : append_strv(signal.get(), to_strings(new_roles));
    r = r < 0 ? r : sd_bus_message_append(signal.get(), "s", outcome.c_str());
    r = r < 0 ? r : sd_bus_send(bus_, signal.get(), nullptr);
    if (r < 0) {
        throw Error(
            Errc::dbus, "sending RoleSwitched: " + std::error_code(-r, std::system_category()).message());
    }
    (void)sd_bus_emit_properties_changed(bus_, kNodeObjectPath, kNodeInterface, "Roles", nullptr);
}

}  // namespace stormnode::roles
