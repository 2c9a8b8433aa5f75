// One role assignment of a node: a catalog role and the variant it runs with ("db:galera", "quorum").
// Parsed once where it enters (node.yaml, an answer file, an inventory entry, cluster.yaml, the kernel's
// stormnode.role=, `stormctl install --role`, D-Bus SetRoles, the role-switch record) and carried typed
// from there; formatted back to text only where it leaves (D-Bus, YAML, the journal, templates).
//
// Features are not part of it. node.yaml's `features:` are the node's, not a role's: a unit of any role
// may name one (Unit::feature), a role switch keeps them, and "name:variant" is what every wire and
// file format carries, so a spec with features could not be written where it travels.
#pragma once

#include <stormnode/common/yaml_diagnostics.hpp>

#include <compare>
#include <string>
#include <string_view>
#include <vector>

namespace stormnode::roles {

struct Catalog;

struct RoleSpec {
    std::string name;
    std::string variant;  // empty: the catalog's default_variant for the role

    auto operator<=>(const RoleSpec&) const = default;
};

// "db:galera" -> {db, galera}; "quorum" -> {quorum, ""}. Syntax only (the catalog is not asked):
// throws Error(invalid_input) for an empty name, an empty variant ("db:") or a second ':'.
RoleSpec parse_role_spec(std::string_view text);
// "db:galera", "quorum": what parse_role_spec reads.
std::string to_string(const RoleSpec& spec);

// A comma-separated list, as in the kernel argument stormnode.role=db:galera,quorum. Throws as
// parse_role_spec, for the first entry that is not a spec (an empty text is one empty entry).
std::vector<RoleSpec> parse_role_list(std::string_view comma_separated);
// Each entry of a string list (D-Bus `as`, a YAML list); throws as parse_role_spec.
std::vector<RoleSpec> parse_role_specs(const std::vector<std::string>& texts);
// Back to text, entry by entry, and joined ("db:galera,quorum" with the default separator).
std::vector<std::string> to_strings(const std::vector<RoleSpec>& specs);
std::string to_string(const std::vector<RoleSpec>& specs, std::string_view separator = ",");

// The entry for role `name` (whatever its variant), or nullptr.
const RoleSpec* find_role(const std::vector<RoleSpec>& specs, std::string_view name);

// Where a role list was written, for the diagnostics of validate_role_specs.
struct RoleListPlaces {
    Diagnostic list;                   // the list: problems of the combination are reported here
    std::vector<Diagnostic> names;     // by entry: an unknown or repeated role
    std::vector<Diagnostic> variants;  // by entry: a variant the role lacks (missing: names[i])
    std::string combination_context;   // put before each message about the combination
};

// The one check of a node's role assignment against the catalog, wherever it comes from: each entry
// names a role a node may carry, once, with a variant the role has; and the roles can share one node
// (conflicts, packages, kept-disabled units). With places, a problem of an entry is reported where the
// entry was written and a problem of the combination at the list, naming the catalog line that forbids
// it. Without, entries' problems are about diags.file() (no position) and the combination's are
// reported at the catalog line itself.
void validate_role_specs(
    const Catalog& catalog,
    const std::vector<RoleSpec>& specs,
    Diagnostics& diags,
    const RoleListPlaces* places = nullptr);

}  // namespace stormnode::roles
