// Semantic checks of a loaded catalog, and of a node's roles against it.
#include "catalog_internal.hpp"
#include "stormnode/catalog/catalog.hpp"
#include "stormnode/catalog/role_spec.hpp"

#include <stormnode/common/strings.hpp>

#include <deque>
#include <map>
#include <set>

namespace stormnode::roles {
namespace {

// Reports each problem once: the same mistake in a role's body is seen through every variant.
class Collector {
public:
    explicit Collector(Diagnostics& diags) : diags_(&diags) {}

    void error(const Diagnostic& where, const std::string& message) {
        Diagnostic item = where;
        item.message = message;
        if (seen_.insert(item.to_string()).second) {
            diags_->error_at(where, message);
        }
    }

private:
    Diagnostics* diags_;
    std::set<std::string> seen_;
};

std::string_view kind_name(RoleKind kind) {
    switch (kind) {
        case RoleKind::role:
            return "role";
        case RoleKind::common:
            return "common layer";
        case RoleKind::mixin:
            return "mixin";
    }
    return "role";
}

void check_reference(
    const Catalog& catalog,
    const Role& role,
    const std::string& target,
    const std::string& location,
    const std::string& field,
    RoleKind expected,
    Collector& out) {
    const Role* found = catalog.find(target);
    if (found == nullptr) {
        const std::string what = expected == RoleKind::mixin ? "mixin" : "role";
        out.error(role.at(location), "'" + field + "' names unknown " + what + " '" + target + "'");
    } else if (found->kind != expected) {
        out.error(
            role.at(location),
            "'" + field + "' names '" + target + "', which is a " + std::string(kind_name(found->kind)) +
                ", not a " + std::string(kind_name(expected)));
    }
}

std::string suffix_list() {
    return join(detail::unit_suffixes(), " ");
}

void check_suffixes(const Role& role, const RoleBody& body, const std::string& prefix, Collector& out) {
    for (const auto& unit : body.units) {
        if (!detail::has_unit_suffix(unit.name)) {
            out.error(unit.where, "unit '" + unit.name + "' has no unit suffix (" + suffix_list() + ")");
        }
    }
    for (std::size_t i = 0; i < body.keep_disabled.size(); ++i) {
        const auto& name = body.keep_disabled[i];
        if (!detail::has_unit_suffix(name)) {
            out.error(
                role.at(prefix + "keep_disabled[" + std::to_string(i) + "]"),
                "unit '" + name + "' has no unit suffix (" + suffix_list() + ")");
        }
    }
}

struct Declared {
    const Unit* unit = nullptr;
    const Role* owner = nullptr;
};

std::string undeclared(const Role& role, const std::string& field, const std::string& unit) {
    return "'" + field + "' names unit '" + unit + "', which is not declared in '" + role.name +
           "' (its units, variant, mixins or common)";
}

std::string position_key(const std::string& base, std::size_t i) {
    return base + "[" + std::to_string(i) + "]";
}

// Every unit the layers declare (the first declaration of each), reporting a unit declared twice
// in one file and one unit name shipped by two different packages.
std::map<std::string, Declared> declared_units(
    const Role& role, const std::vector<detail::Layer>& layers, Collector& out) {
    std::map<std::string, Declared> declared;
    for (const auto& layer : layers) {
        for (const auto& unit : layer.body->units) {
            const auto [it, inserted] = declared.emplace(unit.name, Declared{&unit, layer.owner});
            if (inserted) {
                continue;
            }
            const Declared& first = it->second;
            if (first.owner == layer.owner && first.unit != &unit) {
                out.error(unit.where, "unit '" + unit.name + "' is declared twice in '" + role.name + "'");
            } else if (first.unit->package != unit.package) {
                out.error(
                    unit.where,
                    "unit '" + unit.name + "' comes from package '" + unit.package +
                        "' here but from package '" + first.unit->package + "' in '" + first.owner->name +
                        "'");
            }
        }
    }
    return declared;
}

// The role's own tiers (body, then variant): declared units, each in one tier only.
void check_tiers(
    const Role& role,
    const std::vector<detail::Layer>& layers,
    const std::map<std::string, Declared>& declared,
    Collector& out) {
    std::map<std::string, std::size_t> tier_of;
    std::size_t tier_number = 0;
    for (const auto& layer : layers) {
        if (layer.owner != &role) {
            continue;
        }
        const auto& tiers = layer.body->tiers;
        for (std::size_t i = 0; i < tiers.size(); ++i, ++tier_number) {
            for (std::size_t j = 0; j < tiers[i].size(); ++j) {
                const auto& name = tiers[i][j];
                const auto where = role.at(position_key(position_key(layer.prefix + "tiers", i), j));
                if (!declared.contains(name)) {
                    out.error(where, undeclared(role, "tiers", name));
                }
                const auto [it, inserted] = tier_of.emplace(name, tier_number);
                if (!inserted) {
                    out.error(
                        where,
                        "unit '" + name + "' is already in tier " + std::to_string(it->second + 1) +
                            " (a unit starts in one tier only)");
                }
            }
        }
    }
}

// healthy_when names declared units, none both required and degraded_if_down; keep_disabled
// names units the role does not run.
void check_health(
    const Role& role,
    const std::vector<detail::Layer>& layers,
    const std::map<std::string, Declared>& declared,
    Collector& out) {
    std::set<std::string> required;
    for (const auto& layer : layers) {
        if (layer.owner != &role) {
            continue;
        }
        const RoleBody& body = *layer.body;
        for (std::size_t i = 0; i < body.required.size(); ++i) {
            required.insert(body.required[i]);
            if (!declared.contains(body.required[i])) {
                out.error(
                    role.at(position_key(layer.prefix + "healthy_when.required", i)),
                    undeclared(role, "healthy_when.required", body.required[i]));
            }
        }
    }
    for (const auto& layer : layers) {
        if (layer.owner != &role) {
            continue;
        }
        const RoleBody& body = *layer.body;
        for (std::size_t i = 0; i < body.degraded_if_down.size(); ++i) {
            const auto& name = body.degraded_if_down[i];
            const auto where = role.at(position_key(layer.prefix + "healthy_when.degraded_if_down", i));
            if (!declared.contains(name)) {
                out.error(where, undeclared(role, "healthy_when.degraded_if_down", name));
            } else if (required.contains(name)) {
                out.error(where, "unit '" + name + "' is both required and degraded_if_down");
            }
        }
        for (std::size_t i = 0; i < body.keep_disabled.size(); ++i) {
            const auto it = declared.find(body.keep_disabled[i]);
            if (it != declared.end()) {
                out.error(
                    role.at(position_key(layer.prefix + "keep_disabled", i)),
                    "unit '" + it->first + "' is kept disabled, but '" + it->second.owner->name +
                        "' runs it");
            }
        }
    }
}

// One role as it would run with one variant (or none): tiers, health and conflicts against
// everything its layers declare.
void check_layers(const Catalog& catalog, const Role& role, const std::string& variant, Collector& out) {
    const auto layers = detail::layers_of(catalog, role, variant);
    const auto declared = declared_units(role, layers, out);
    check_tiers(role, layers, declared, out);
    check_health(role, layers, declared, out);

    std::set<std::string> packages;
    for (const auto& layer : layers) {
        packages.insert(layer.body->packages.begin(), layer.body->packages.end());
    }
    for (std::size_t i = 0; i < role.conflicts.size(); ++i) {
        if (packages.contains(role.conflicts[i])) {
            out.error(
                role.at(position_key("conflicts", i)),
                "package '" + role.conflicts[i] + "' conflicts with '" + role.name +
                    "', which installs it itself" +
                    (variant.empty() ? std::string() : " (variant " + variant + ")"));
        }
    }
}

void check_variants(const Role& role, Collector& out) {
    if (role.variants.empty()) {
        if (!role.default_variant.empty()) {
            out.error(
                role.at("default_variant"),
                "'default_variant' is '" + role.default_variant + "' but the role has no variants");
        }
        return;
    }
    const auto names = role.variant_names();
    if (role.default_variant.empty()) {
        out.error(
            role.where,
            "role '" + role.name + "' has variants (" + join(names, ", ") + ") but no 'default_variant'");
    } else if (!role.variants.contains(role.default_variant)) {
        out.error(
            role.at("default_variant"),
            "'default_variant' names unknown variant '" + role.default_variant +
                "' (variants: " + join(names, ", ") + ")");
    }
}

// The shortest depends_on path from `from` to `to`, or empty.
std::vector<std::string> dependency_path(
    const Catalog& catalog, const std::string& from, const std::string& to) {
    std::map<std::string, std::string> came_from{{from, ""}};
    std::deque<std::string> queue{from};
    while (!queue.empty()) {
        const std::string current = queue.front();
        queue.pop_front();
        if (current == to) {
            std::vector<std::string> path;
            for (std::string at = to; !at.empty(); at = came_from[at]) {
                path.insert(path.begin(), at);
            }
            return path;
        }
        const Role* role = catalog.find(current);
        if (role == nullptr) {
            continue;
        }
        for (const auto& next : role->cluster.depends_on) {
            if (came_from.emplace(next, current).second) {
                queue.push_back(next);
            }
        }
    }
    return {};
}

void check_cycles(const Catalog& catalog, const Role& role, Collector& out) {
    for (std::size_t i = 0; i < role.cluster.depends_on.size(); ++i) {
        const auto& dependency = role.cluster.depends_on[i];
        if (catalog.find(dependency) == nullptr) {
            continue;
        }
        const auto path = dependency_path(catalog, dependency, role.name);
        if (!path.empty()) {
            out.error(
                role.at("cluster.depends_on[" + std::to_string(i) + "]"),
                "depends_on cycle: " + role.name + " -> " + join(path, " -> "));
        }
    }
}

void check_role(const Catalog& catalog, const Role& role, Collector& out) {
    for (std::size_t i = 0; i < role.mixins.size(); ++i) {
        check_reference(
            catalog,
            role,
            role.mixins[i],
            "mixins[" + std::to_string(i) + "]",
            "mixins",
            RoleKind::mixin,
            out);
    }
    for (std::size_t i = 0; i < role.cluster.depends_on.size(); ++i) {
        check_reference(
            catalog,
            role,
            role.cluster.depends_on[i],
            "cluster.depends_on[" + std::to_string(i) + "]",
            "depends_on",
            RoleKind::role,
            out);
    }
    if (!role.cluster.peers.empty()) {
        check_reference(catalog, role, role.cluster.peers, "cluster.peers", "peers", RoleKind::role, out);
    }
    for (std::size_t i = 0; i < role.conflicts_roles.size(); ++i) {
        const auto location = "conflicts_roles[" + std::to_string(i) + "]";
        if (role.conflicts_roles[i] == role.name) {
            out.error(role.at(location), "role '" + role.name + "' cannot conflict with itself");
            continue;
        }
        check_reference(
            catalog, role, role.conflicts_roles[i], location, "conflicts_roles", RoleKind::role, out);
    }
    check_variants(role, out);
    check_suffixes(role, role.body, "", out);
    for (const auto& [name, body] : role.variants) {
        check_suffixes(role, body, "variants." + name + ".", out);
    }
    if (role.variants.empty()) {
        check_layers(catalog, role, "", out);
    }
    for (const auto& [name, body] : role.variants) {
        check_layers(catalog, role, name, out);
    }
    check_cycles(catalog, role, out);
}

// What one member of a combination brings to the node, without the common layer all of them share.
struct Member {
    const Role* role = nullptr;
    std::string variant;
    std::set<std::string> packages;
    std::map<std::string, const Unit*> units;
    struct Disabled {
        std::string unit;
        Diagnostic where;
    };
    std::vector<Disabled> keep_disabled;
};

Member member_of(const Catalog& catalog, const Role& role, const std::string& variant) {
    Member member{&role, variant, {}, {}, {}};
    for (const auto& layer : detail::layers_of(catalog, role, variant)) {
        if (layer.owner->kind == RoleKind::common) {
            continue;
        }
        member.packages.insert(layer.body->packages.begin(), layer.body->packages.end());
        for (const auto& unit : layer.body->units) {
            member.units.emplace(unit.name, &unit);
        }
        for (std::size_t i = 0; i < layer.body->keep_disabled.size(); ++i) {
            member.keep_disabled.push_back(
                {layer.body->keep_disabled[i],
                 layer.owner->at(layer.prefix + "keep_disabled[" + std::to_string(i) + "]")});
        }
    }
    return member;
}

void check_pair(const Member& a, const Member& b, bool a_first, Collector& out) {
    const Role& role = *a.role;
    for (std::size_t i = 0; i < role.conflicts_roles.size(); ++i) {
        if (role.conflicts_roles[i] == b.role->name) {
            out.error(
                role.at("conflicts_roles[" + std::to_string(i) + "]"),
                "role '" + role.name + "' cannot share a node with role '" + b.role->name + "'");
        }
    }
    for (std::size_t i = 0; i < role.conflicts.size(); ++i) {
        if (b.packages.contains(role.conflicts[i])) {
            out.error(
                role.at("conflicts[" + std::to_string(i) + "]"),
                "package '" + role.conflicts[i] + "' conflicts with role '" + role.name + "', but role '" +
                    b.role->name + "' installs it");
        }
    }
    for (const auto& disabled : a.keep_disabled) {
        if (b.units.contains(disabled.unit)) {
            out.error(
                disabled.where,
                "role '" + role.name + "' keeps unit '" + disabled.unit + "' disabled, but role '" +
                    b.role->name + "' runs it");
        }
    }
    if (!a_first) {
        return;
    }
    for (const auto& [name, unit] : b.units) {
        const auto it = a.units.find(name);
        if (it != a.units.end() && it->second->package != unit->package) {
            out.error(
                unit->where,
                "unit '" + name + "' comes from package '" + unit->package + "' in role '" + b.role->name +
                    "' but from package '" + it->second->package + "' in role '" + role.name + "'");
        }
    }
}

std::string no_such_variant(const std::string& role, const std::string& variant) {
    return "role '" + role + "' has no variant '" + variant + "'";
}

}  // namespace

void validate_catalog(const Catalog& catalog, Diagnostics& diags) {
    Collector out(diags);
    const Role* common = nullptr;
    for (const auto& [name, role] : catalog.roles) {
        if (role.kind == RoleKind::common) {
            if (common != nullptr) {
                out.error(
                    role.where, "a second common layer '" + name + "' (the first is '" + common->name + "')");
            } else {
                common = &role;
            }
        }
        check_role(catalog, role, out);
    }
}

void validate_role_specs(
    const Catalog& catalog,
    const std::vector<RoleSpec>& specs,
    Diagnostics& diags,
    const RoleListPlaces* places) {
    // An entry's problem: where the entry (or its variant) was written, else about the file as a whole.
    const auto entry_error =
        [&](const std::vector<Diagnostic>* at, std::size_t i, const std::string& message) {
            if (places != nullptr && at != nullptr && i < at->size()) {
                diags.error_at((*at)[i], message);
            } else if (places != nullptr && i < places->names.size()) {
                diags.error_at(places->names[i], message);
            } else {
                diags.error_in_file(message);
            }
        };
    const auto* names_at = places != nullptr ? &places->names : nullptr;
    const auto* variants_at = places != nullptr ? &places->variants : nullptr;
    std::vector<Member> members;
    std::set<std::string> seen;
    bool usable = true;
    for (std::size_t i = 0; i < specs.size(); ++i) {
        const RoleSpec& spec = specs[i];
        if (!seen.insert(spec.name).second) {
            entry_error(names_at, i, "role '" + spec.name + "' is listed twice");
            usable = false;
            continue;
        }
        const Role* role = catalog.find(spec.name);
        if (role == nullptr || !role->placeable()) {
            const std::string what =
                role == nullptr
                    ? "unknown role '" + spec.name + "'"
                    : "'" + spec.name + "' is a " + std::string(kind_name(role->kind)) + ", not a role";
            entry_error(names_at, i, what + " (roles: " + join(catalog.placeable_names(), ", ") + ")");
            usable = false;
            continue;
        }
        if (!spec.variant.empty() && !role->variants.contains(spec.variant)) {
            const auto known = role->variant_names();
            entry_error(
                variants_at,
                i,
                no_such_variant(spec.name, spec.variant) + (known.empty()
                                                                ? std::string(" (it has none)")
                                                                : " (variants: " + join(known, ", ") + ")"));
            usable = false;
            continue;
        }
        members.push_back(member_of(catalog, *role, spec.variant));
    }
    if (!usable || members.size() < 2) {
        return;
    }
    // The combination: found in the catalog's files, reported there, or at the list naming them.
    Diagnostics combination(diags.file());
    Collector out(places == nullptr ? diags : combination);
    for (std::size_t i = 0; i < members.size(); ++i) {
        for (std::size_t j = 0; j < members.size(); ++j) {
            if (i != j) {
                check_pair(members[i], members[j], i < j, out);
            }
        }
    }
    if (places == nullptr) {
        return;
    }
    for (const auto& d : combination.items()) {
        std::string message = places->combination_context + d.message;
        if (d.line > 0 && d.file != diags.file()) {
            message += " (" + d.file + ":" + std::to_string(d.line) + ":" + std::to_string(d.column) + ")";
        }
        diags.error_at(places->list, message);
    }
}

}  // namespace stormnode::roles
