// org.stormclouds.Node1 at /org/stormclouds/Node1: the supervisor's state on D-Bus (sd-bus vtable).
#pragma once

#include <stormnode/common/error.hpp>
#include <stormnode/node_client/node_api.hpp>
#include <stormnode/supervisor/sd_event_loop.hpp>
#include <stormnode/supervisor/supervisor.hpp>

#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace stormnode::roles {

// Roles cross the bus as text ("db:galera"): they are parsed into RoleSpecs as a call comes in and
// written back as a property or signal goes out, nowhere else.
class NodeService {
public:
    // Builds the plan for a set of roles; throws Error(invalid_input) for unknown or incompatible roles.
    using PlanMaker = std::function<Plan(const std::vector<RoleSpec>&)>;
    // Checks a switch before it begins (the quorum guard); throws Error(refused) to refuse it.
    using SwitchGuard = std::function<void(
        const std::vector<RoleSpec>& old_roles, const std::vector<RoleSpec>& new_roles, bool force)>;
    struct Image {
        std::string commit;
        std::string version;
    };

    NodeService(
        sd_bus* bus, Supervisor& supervisor, PlanMaker make_plan, Image image, SwitchGuard guard = {});

    // The daemon forwards the supervisor's observer calls here.
    void state_changed();
    void units_changed();
    void roles_switched(
        const std::vector<RoleSpec>& old_roles,
        const std::vector<RoleSpec>& new_roles,
        const std::string& outcome);

    // Internal, for the vtable callbacks.
    [[nodiscard]] Supervisor& supervisor() noexcept { return supervisor_; }
    [[nodiscard]] const Image& image() const noexcept { return image_; }
    void set_roles(const std::vector<RoleSpec>& roles, bool force);

private:
    sd_bus* bus_;
    Supervisor& supervisor_;
    PlanMaker make_plan_;
    SwitchGuard guard_;
    Image image_;
    BusSlot slot_;
};

}  // namespace stormnode::roles
