// Small helpers the console's sources share.
#pragma once

#include <stormnode/catalog/role_spec.hpp>
#include <stormnode/common/strings.hpp>

#include <string>
#include <vector>

namespace stormnode::firstboot {

// std::visit over lambdas.
template <class... Ts>
struct Overloaded : Ts... {
    using Ts::operator()...;
};
template <class... Ts>
Overloaded(Ts...) -> Overloaded<Ts...>;

// "a, b" (separator ", "), or `empty` for no items.
inline std::string joined(
    const std::vector<std::string>& items,
    const std::string& separator = ", ",
    const std::string& empty = "") {
    return items.empty() ? empty : join(items, separator);
}

// Roles as storm-roled shows them: "db:galera, quorum".
inline std::string joined(
    const std::vector<roles::RoleSpec>& roles,
    const std::string& separator = ", ",
    const std::string& empty = "") {
    return joined(roles::to_strings(roles), separator, empty);
}

}  // namespace stormnode::firstboot
