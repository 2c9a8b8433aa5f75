#include "stormnode/node_client/node_api.hpp"

#include <cerrno>

namespace stormnode::roles {

const std::vector<NodeError>& node_errors() {
    static const std::vector<NodeError> table{
        {Errc::invalid_input, "org.stormclouds.Node1.Error.InvalidRoles", EINVAL},
        {Errc::not_found, "org.stormclouds.Node1.Error.UnknownRole", ENOENT},
        {Errc::refused, "org.stormclouds.Node1.Error.Refused", EBUSY},
        {Errc::unit_failed, "org.stormclouds.Node1.Error.UnitFailed", EIO},
        {Errc::timeout, "org.stormclouds.Node1.Error.Timeout", ETIMEDOUT},
        {Errc::io, "org.stormclouds.Node1.Error.Failed", EIO},
    };
    return table;
}

std::string_view node_error_name(Errc code) {
    for (const auto& entry : node_errors()) {
        if (entry.code == code) {
            return entry.name;
        }
    }
    return "org.stormclouds.Node1.Error.Failed";
}

std::optional<Errc> node_error_code(std::string_view name) {
    for (const auto& entry : node_errors()) {
        if (entry.name == name) {
            return entry.code;
        }
    }
    return std::nullopt;
}

}  // namespace stormnode::roles
