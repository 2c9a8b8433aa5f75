#include "stormnode/roles/catalog.hpp"

namespace stormnode::roles {

const Role* Catalog::find(const std::string& name) const {
    const auto it = roles.find(name);
    return it == roles.end() ? nullptr : &it->second;
}

std::vector<std::string> Catalog::role_names() const {
    std::vector<std::string> names;
    for (const auto& [name, role] : roles) {
        if (role.kind == RoleKind::role) {
            names.push_back(name);
        }
    }
    return names;
}

}  // namespace stormnode::roles
