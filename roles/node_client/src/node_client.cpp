#include "stormnode/node_client/node_client.hpp"

#include <stormnode/common/strings.hpp>
#include <stormnode/node_client/node_api.hpp>

#include <cstdlib>
#include <system_error>

namespace stormnode::roles {
namespace {

// An sd_bus_error lives on the stack; only its strings are freed.
class BusError {
public:
    BusError() = default;
    BusError(const BusError&) = delete;
    BusError& operator=(const BusError&) = delete;
    BusError(BusError&&) = delete;
    BusError& operator=(BusError&&) = delete;
    ~BusError() { sd_bus_error_free(&error_); }
    sd_bus_error* get() noexcept { return &error_; }
    const sd_bus_error& operator*() const noexcept { return error_; }

private:
    sd_bus_error error_ = SD_BUS_ERROR_NULL;
};

// One place that says what a failed call means to an operator.
[[noreturn]] void throw_call_error(int r, const sd_bus_error& error, const std::string& what) {
    const std::string name = error.name != nullptr ? error.name : "";
    const std::string message = error.message != nullptr ? error.message : std::system_category().message(-r);
    if (name == SD_BUS_ERROR_SERVICE_UNKNOWN || name == SD_BUS_ERROR_NAME_HAS_NO_OWNER) {
        throw DbusError(
            Errc::io,
            std::string("storm-roled is not running: nothing owns ") + kNodeBusName + " on the bus",
            name);
    }
    if (name == SD_BUS_ERROR_ACCESS_DENIED) {
        throw DbusError(
            Errc::refused, what + ": permission denied (only root may change roles): " + message, name);
    }
    if (name.empty()) {
        throw Error(Errc::dbus, what + ": " + message, std::error_code(-r, std::system_category()));
    }
    throw DbusError(node_error_code(name).value_or(Errc::dbus), what + ": " + message, name);
}

std::vector<std::string> read_strv(sd_bus_message* m, const char* what) {
    char** strv = nullptr;
    check_r(sd_bus_message_read_strv(m, &strv), what, Errc::dbus);
    std::vector<std::string> items;
    for (char** s = strv; s != nullptr && *s != nullptr; ++s) {
        items.emplace_back(*s);
        std::free(*s);  // NOLINT(cppcoreguidelines-no-malloc): sd-bus allocated it
    }
    std::free(static_cast<void*>(strv));  // NOLINT(cppcoreguidelines-no-malloc)
    return items;
}

void read_property(sd_bus_message* m, const std::string& name, NodeStatus& status) {
    const char* what = "reading the Node1 properties";
    if (name == "Roles") {
        check_r(sd_bus_message_enter_container(m, 'v', "as"), what, Errc::dbus);
        status.roles = read_strv(m, what);
    } else if (name == "State" || name == "Reason") {
        const char* value = nullptr;
        check_r(sd_bus_message_read(m, "v", "s", &value), what, Errc::dbus);
        (name == "State" ? status.state : status.reason) = value;
        return;
    } else if (name == "Units") {
        check_r(sd_bus_message_enter_container(m, 'v', "a(sssu)"), what, Errc::dbus);
        check_r(sd_bus_message_enter_container(m, 'a', "(sssu)"), what, Errc::dbus);
        const char* unit = nullptr;
        const char* active = nullptr;
        const char* check = nullptr;
        std::uint32_t restarts = 0;
        while (
            check_r(sd_bus_message_read(m, "(sssu)", &unit, &active, &check, &restarts), what, Errc::dbus) >
            0) {
            status.units.push_back(NodeUnitStatus{unit, active, check, restarts});
        }
        check_r(sd_bus_message_exit_container(m), what, Errc::dbus);
    } else if (name == "Image") {
        const char* commit = nullptr;
        const char* version = nullptr;
        check_r(sd_bus_message_read(m, "v", "(ss)", &commit, &version), what, Errc::dbus);
        status.image_commit = commit;
        status.image_version = version;
        return;
    } else {
        check_r(sd_bus_message_skip(m, "v"), what, Errc::dbus);  // a newer daemon's property
        return;
    }
    check_r(sd_bus_message_exit_container(m), what, Errc::dbus);
}

struct SwitchWait {
    std::vector<std::string> want;
    std::optional<SwitchResult> result;
    bool daemon_gone = false;
    std::string error;

    static int on_switched(sd_bus_message* m, void* userdata, sd_bus_error* /*error*/) {
        auto* self = static_cast<SwitchWait*>(userdata);
        try {
            SwitchResult result;
            result.old_roles = read_strv(m, "reading RoleSwitched");
            result.new_roles = read_strv(m, "reading RoleSwitched");
            const char* outcome = nullptr;
            check_r(sd_bus_message_read(m, "s", &outcome), "reading RoleSwitched", Errc::dbus);
            result.outcome = outcome;
            if (result.new_roles == self->want && !self->result) {  // only one switch runs at a time
                self->result = std::move(result);
            }
        } catch (const std::exception& e) {
            self->error = describe(e);
        }
        return 0;
    }
    static int on_owner_changed(sd_bus_message* m, void* userdata, sd_bus_error* /*error*/) {
        const char* name = nullptr;
        const char* old_owner = nullptr;
        const char* new_owner = nullptr;
        if (sd_bus_message_read(m, "sss", &name, &old_owner, &new_owner) >= 0 && new_owner != nullptr &&
            *new_owner == '\0') {
            static_cast<SwitchWait*>(userdata)->daemon_gone = true;
        }
        return 0;
    }
};

// StateChanged and storm-roled (re)appearing on the bus: either means the state must be read again.
struct StateWait {
    bool read_again = true;
    static int on_state(sd_bus_message* /*m*/, void* userdata, sd_bus_error* /*error*/) {
        static_cast<StateWait*>(userdata)->read_again = true;
        return 0;
    }
    static int on_owner_changed(sd_bus_message* m, void* userdata, sd_bus_error* /*error*/) {
        const char* name = nullptr;
        const char* old_owner = nullptr;
        const char* new_owner = nullptr;
        if (sd_bus_message_read(m, "sss", &name, &old_owner, &new_owner) >= 0 && new_owner != nullptr &&
            *new_owner != '\0') {
            static_cast<StateWait*>(userdata)->read_again = true;
        }
        return 0;
    }
};

std::string owner_changed_rule() {
    return std::string(
               "type='signal',sender='org.freedesktop.DBus',path='/org/freedesktop/DBus',"
               "interface='org.freedesktop.DBus',member='NameOwnerChanged',arg0='") +
           kNodeBusName + "'";
}

// SetRoles(roles, force); returns once storm-roled accepted it, or throws its refusal.
void call_set_roles(sd_bus* bus, const std::vector<std::string>& roles, bool force, const std::string& what) {
    BusMessage call;
    check_r(
        sd_bus_message_new_method_call(
            bus, out(call), kNodeBusName, kNodeObjectPath, kNodeInterface, "SetRoles"),
        what,
        Errc::dbus);
    check_r(sd_bus_message_open_container(call.get(), 'a', "s"), what, Errc::dbus);
    for (const auto& role : roles) {
        check_r(sd_bus_message_append(call.get(), "s", role.c_str()), what, Errc::dbus);
    }
    check_r(sd_bus_message_close_container(call.get()), what, Errc::dbus);
    check_r(sd_bus_message_append(call.get(), "b", static_cast<int>(force)), what, Errc::dbus);
    BusError error;
    BusMessage reply;
    const int r = sd_bus_call(bus, call.get(), 0, error.get(), out(reply));
    if (r < 0) {
        throw_call_error(r, *error, what);
    }
}

// Until waiting has the switch's outcome: throws when storm-roled leaves the bus, a signal cannot be
// read, or timeout (0: none) passes first.
void wait_for_switch(
    sd_bus* bus, SwitchWait& waiting, std::chrono::milliseconds timeout, const std::string& what) {
    // Wait for the signal on the connection's fd; the time limit only guards against waiting forever.
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!waiting.result) {
        if (!waiting.error.empty()) {
            throw Error(Errc::dbus, waiting.error);
        }
        if (waiting.daemon_gone) {
            throw Error(
                Errc::io,
                what +
                    ": storm-roled left the bus before the switch ended; it rolls an "
                    "unfinished switch back when it starts again");
        }
        if (check_r(sd_bus_process(bus, nullptr), what, Errc::dbus) > 0) {
            continue;
        }
        std::uint64_t usec = UINT64_MAX;
        if (timeout.count() > 0) {
            const auto left = deadline - std::chrono::steady_clock::now();
            if (left <= std::chrono::steady_clock::duration::zero()) {
                throw Error(
                    Errc::timeout,
                    what + ": no outcome within " + std::to_string(timeout.count() / 1000) +
                        " s; the switch goes on (see stormctl role status)");
            }
            usec = static_cast<std::uint64_t>(
                std::chrono::duration_cast<std::chrono::microseconds>(left).count());
        }
        check_r(sd_bus_wait(bus, usec), what, Errc::dbus);
    }
}

}  // namespace

NodeClient NodeClient::system() {
    BusConnection bus;
    check_r(sd_bus_open_system(out(bus)), "connecting to the system bus", Errc::dbus);
    return NodeClient(std::move(bus));
}

NodeStatus NodeClient::status() {
    BusError error;
    BusMessage reply;
    const int r = sd_bus_call_method(
        bus_.get(),
        kNodeBusName,
        kNodeObjectPath,
        "org.freedesktop.DBus.Properties",
        "GetAll",
        error.get(),
        out(reply),
        "s",
        kNodeInterface);
    if (r < 0) {
        throw_call_error(r, *error, "reading the node's state");
    }
    NodeStatus status;
    const char* what = "reading the Node1 properties";
    check_r(sd_bus_message_enter_container(reply.get(), 'a', "{sv}"), what, Errc::dbus);
    while (check_r(sd_bus_message_enter_container(reply.get(), 'e', "sv"), what, Errc::dbus) > 0) {
        const char* name = nullptr;
        check_r(sd_bus_message_read(reply.get(), "s", &name), what, Errc::dbus);
        read_property(reply.get(), name, status);
        check_r(sd_bus_message_exit_container(reply.get()), what, Errc::dbus);
    }
    return status;
}

std::optional<SwitchResult> NodeClient::set_roles(
    const std::vector<std::string>& roles, bool force, bool wait, std::chrono::milliseconds timeout) {
    const std::string what = "switching to " + join(roles, ",");
    SwitchWait waiting;
    waiting.want = roles;
    BusSlot switched;
    BusSlot owner;
    if (wait) {  // before the call: the outcome may come right after its reply
        check_r(
            sd_bus_match_signal(
                bus_.get(),
                out(switched),
                kNodeBusName,
                kNodeObjectPath,
                kNodeInterface,
                "RoleSwitched",
                SwitchWait::on_switched,
                &waiting),
            "watching for RoleSwitched",
            Errc::dbus);
        check_r(
            sd_bus_add_match(
                bus_.get(), out(owner), owner_changed_rule().c_str(), SwitchWait::on_owner_changed, &waiting),
            "watching storm-roled",
            Errc::dbus);
    }
    call_set_roles(bus_.get(), roles, force, what);
    if (!wait) {
        return std::nullopt;
    }
    wait_for_switch(bus_.get(), waiting, timeout, what);
    return waiting.result;
}

void NodeClient::restart_role(const std::string& role) {
    BusError error;
    BusMessage reply;
    const int r = sd_bus_call_method(
        bus_.get(),
        kNodeBusName,
        kNodeObjectPath,
        kNodeInterface,
        "RestartRole",
        error.get(),
        out(reply),
        "s",
        role.c_str());
    if (r < 0) {
        throw_call_error(r, *error, "restarting " + role);
    }
}

NodeStatus NodeClient::wait_for_state(const std::string& state, std::chrono::milliseconds timeout) {
    const std::string what = "waiting for the node's roles to be " + state;
    StateWait waiting;
    BusSlot changed;
    BusSlot owner;
    // Both matches before the first read: a change between the read and the wait is not lost.
    check_r(
        sd_bus_match_signal(
            bus_.get(),
            out(changed),
            kNodeBusName,
            kNodeObjectPath,
            kNodeInterface,
            "StateChanged",
            StateWait::on_state,
            &waiting),
        "watching for StateChanged",
        Errc::dbus);
    check_r(
        sd_bus_add_match(
            bus_.get(), out(owner), owner_changed_rule().c_str(), StateWait::on_owner_changed, &waiting),
        "watching storm-roled",
        Errc::dbus);
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        if (waiting.read_again) {
            waiting.read_again = false;
            try {
                auto current = status();
                if (current.state == state) {
                    return current;
                }
            } catch (const DbusError& e) {
                if (e.code() != Errc::io) {  // anything but "not on the bus yet"
                    throw;
                }
            }
        }
        if (check_r(sd_bus_process(bus_.get(), nullptr), what, Errc::dbus) > 0) {
            continue;
        }
        std::uint64_t usec = UINT64_MAX;
        if (timeout.count() > 0) {
            const auto left = deadline - std::chrono::steady_clock::now();
            if (left <= std::chrono::steady_clock::duration::zero()) {
                throw Error(
                    Errc::timeout, what + ": not within " + std::to_string(timeout.count() / 1000) + " s");
            }
            usec = static_cast<std::uint64_t>(
                std::chrono::duration_cast<std::chrono::microseconds>(left).count());
        }
        check_r(sd_bus_wait(bus_.get(), usec), what, Errc::dbus);
    }
}

}  // namespace stormnode::roles
