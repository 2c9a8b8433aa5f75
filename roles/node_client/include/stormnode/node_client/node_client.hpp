// A client of storm-roled's org.stormclouds.Node1 (what `stormctl role status|set|restart` use):
// blocking calls on its own bus connection, D-Bus errors turned into stormnode errors.
#pragma once

#include <stormnode/common/error.hpp>
#include <stormnode/node_client/bus_handles.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace stormnode::roles {

struct NodeUnitStatus {
    std::string unit;
    std::string active_state;
    std::string check_state;
    std::uint32_t restarts = 0;
};

// The Node1 properties, read in one GetAll.
struct NodeStatus {
    std::vector<std::string> roles;
    std::string state;
    std::string reason;
    std::vector<NodeUnitStatus> units;
    std::string image_commit;
    std::string image_version;
};

// The RoleSwitched signal of one switch. outcome: switched, rolled-back or failed.
struct SwitchResult {
    std::vector<std::string> old_roles;
    std::vector<std::string> new_roles;
    std::string outcome;
};

// An error reply: the org.stormclouds.Node1.Error.* names map back to their Errc through the API's error
// table; the bus's own errors (no owner, access denied) get a message that says what they mean here.
class DbusError : public Error {
public:
    DbusError(Errc code, const std::string& message, std::string name)
        : Error(code, message),
          name_(std::move(name)) {}
    [[nodiscard]] const std::string& name() const noexcept { return name_; }

private:
    std::string name_;
};

class NodeClient {
public:
    // sd_bus_open_system(): $DBUS_SYSTEM_BUS_ADDRESS, else the system bus socket.
    static NodeClient system();
    explicit NodeClient(BusConnection bus) : bus_(std::move(bus)) {}

    [[nodiscard]] NodeStatus status();
    // Calls SetRoles. With wait, the match on RoleSwitched is in place before the call, and the result is
    // the outcome of this switch. Throws Error(timeout) when none came within timeout (zero: no limit),
    // Error(io) when storm-roled leaves the bus first.
    std::optional<SwitchResult> set_roles(
        const std::vector<std::string>& roles, bool force, bool wait, std::chrono::milliseconds timeout);
    void restart_role(const std::string& role);
    // Waits until the node's State is `state` (its StateChanged signal, watched before the first read)
    // and returns the properties then. storm-roled not yet on the bus is waited for too. Throws
    // Error(timeout) after timeout (zero: no limit).
    NodeStatus wait_for_state(const std::string& state, std::chrono::milliseconds timeout);

private:
    BusConnection bus_;
};

}  // namespace stormnode::roles

namespace CLI {  // NOLINT(readability-identifier-naming): CLI11's namespace
class App;
}

namespace stormnode::roles {

// Registers `status`, `set` and `restart` under stormctl's `role` (roles/node_client/cli/node_commands.cpp,
// in stormnode::roles_cli). The callbacks set exit_code: 0 ok, 1 operational error, 2 invalid roles.
void add_node_commands(CLI::App& role, int& exit_code);

}  // namespace stormnode::roles
