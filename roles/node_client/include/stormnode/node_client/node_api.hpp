// The names of org.stormclouds.Node1, shared by storm-roled (which serves it) and stormctl (its client).
#pragma once

#include <stormnode/common/error.hpp>

#include <optional>
#include <string_view>
#include <vector>

namespace stormnode::roles {

inline constexpr const char* kNodeBusName = "org.stormclouds.Node1";
inline constexpr const char* kNodeObjectPath = "/org/stormclouds/Node1";
inline constexpr const char* kNodeInterface = "org.stormclouds.Node1";

// The one table of the API's named errors: the daemon maps Errc to a name, the client a name back.
struct NodeError {
    Errc code;
    std::string_view name;
    int errno_value;
};
const std::vector<NodeError>& node_errors();
std::string_view node_error_name(Errc code);  // org.stormclouds.Node1.Error.Failed for codes not in the table
std::optional<Errc> node_error_code(std::string_view name);  // nullopt for names not in the table

}  // namespace stormnode::roles
