// Helpers shared by the catalog loader, validator and resolver.
#pragma once

#include "stormnode/catalog/catalog.hpp"

#include <string>
#include <vector>

namespace stormnode::roles::detail {

// True when the name ends in one of the systemd unit suffixes a role may name.
bool has_unit_suffix(const std::string& unit);
const std::vector<std::string>& unit_suffixes();

// "a, b, c"

// One layer of what a node runs for a role, with the key prefix its locations are recorded under.
struct Layer {
    const Role* owner = nullptr;  // the file the layer came from
    const RoleBody* body = nullptr;
    std::string prefix;  // "" or "variants.<name>."
};

// The layers of role (common, its mixins, its own body, the variant), skipping what does not exist.
// An empty variant means the default one; an unknown variant is skipped (the validator reports it).
std::vector<Layer> layers_of(const Catalog& catalog, const Role& role, const std::string& variant);

// The common layer, or nullptr.
const Role* common_of(const Catalog& catalog);

}  // namespace stormnode::roles::detail
