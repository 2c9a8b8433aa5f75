// Folds the common layer, mixins and a variant into the one body a node runs.
#include "catalog_internal.hpp"
#include "stormnode/catalog/catalog.hpp"

#include <stormnode/common/error.hpp>
#include <stormnode/common/strings.hpp>

#include <algorithm>
#include <set>

namespace stormnode::roles {
namespace {

template <typename T>
bool contains(const std::vector<T>& items, const T& item) {
    return std::find(items.begin(), items.end(), item) != items.end();
}

void append_unique(std::vector<std::string>& into, const std::vector<std::string>& items) {
    for (const auto& item : items) {
        if (!contains(into, item)) {
            into.push_back(item);
        }
    }
}

// Folds one layer into the result: a unit already there keeps its first declaration and gains the
// layer's other checks; a unit already placed in a tier keeps that (earlier) tier.
class Folder {
public:
    void fold(const RoleBody& layer) {
        append_unique(body_.packages, layer.packages);
        for (const auto& unit : layer.units) {
            const auto it = std::find_if(
                body_.units.begin(), body_.units.end(), [&](const Unit& u) { return u.name == unit.name; });
            if (it == body_.units.end()) {
                body_.units.push_back(unit);
                continue;
            }
            for (const auto& check : unit.checks) {
                if (!contains(it->checks, check)) {
                    it->checks.push_back(check);
                }
            }
        }
        for (const auto& tier : layer.tiers) {
            std::vector<std::string> fresh;
            for (const auto& unit : tier) {
                if (placed_.insert(unit).second) {
                    fresh.push_back(unit);
                }
            }
            if (!fresh.empty()) {
                body_.tiers.push_back(std::move(fresh));
            }
        }
        append_unique(body_.required, layer.required);
        append_unique(body_.degraded_if_down, layer.degraded_if_down);
        for (const auto& file : layer.config) {
            if (std::none_of(body_.config.begin(), body_.config.end(), [&](const ConfigFile& f) {
                    return f.path == file.path;
                })) {
                body_.config.push_back(file);
            }
        }
        for (const auto& state : layer.node_state) {
            if (std::none_of(body_.node_state.begin(), body_.node_state.end(), [&](const NodeState& s) {
                    return s.path == state.path;
                })) {
                body_.node_state.push_back(state);
            }
        }
        append_unique(body_.keep_disabled, layer.keep_disabled);
    }

    RoleBody finish() && {
        // A unit one role needs outranks another's "degraded if down" and "keep disabled".
        std::erase_if(
            body_.degraded_if_down, [&](const std::string& u) { return contains(body_.required, u); });
        std::erase_if(body_.keep_disabled, [&](const std::string& name) {
            return std::any_of(
                body_.units.begin(), body_.units.end(), [&](const Unit& u) { return u.name == name; });
        });
        return std::move(body_);
    }

private:
    RoleBody body_;
    std::set<std::string> placed_;
};

// The role and the variant it runs with; throws for an unknown role or variant.
std::pair<const Role*, std::string> lookup(
    const Catalog& catalog, const std::string& name, const std::string& variant) {
    const Role* role = catalog.find(name);
    if (role == nullptr) {
        throw Error(Errc::invalid_input, "unknown role '" + name + "'");
    }
    if (variant.empty()) {
        return {role, role->default_variant};
    }
    if (!role->variants.contains(variant)) {
        const auto names = role->variant_names();
        throw Error(
            Errc::invalid_input,
            "role '" + name + "' has no variant '" + variant + "'" +
                (names.empty() ? std::string(" (it has none)") : " (variants: " + join(names, ", ") + ")"));
    }
    return {role, variant};
}

}  // namespace

ResolvedRole resolve(const Catalog& catalog, const std::string& role, const std::string& variant) {
    const auto [found, chosen] = lookup(catalog, role, variant);
    Folder folder;
    for (const auto& layer : detail::layers_of(catalog, *found, chosen)) {
        folder.fold(*layer.body);
    }
    return {role, chosen, std::move(folder).finish()};
}

ResolvedRole resolve_combination(const Catalog& catalog, const std::vector<RoleSpec>& roles) {
    struct Member {
        const Role* role;
        std::string variant;
    };
    std::vector<Member> pending;
    for (const auto& spec : roles) {
        const auto [role, chosen] = lookup(catalog, spec.name, spec.variant);
        if (std::none_of(pending.begin(), pending.end(), [&](const Member& m) { return m.role == role; })) {
            pending.push_back({role, chosen});
        }
    }

    // Stable order in which a role comes after the members it depends_on (a cycle keeps the given order).
    std::vector<Member> ordered;
    while (!pending.empty()) {
        auto ready = std::find_if(pending.begin(), pending.end(), [&](const Member& m) {
            return std::none_of(pending.begin(), pending.end(), [&](const Member& other) {
                return other.role != m.role && contains(m.role->cluster.depends_on, other.role->name);
            });
        });
        if (ready == pending.end()) {
            ready = pending.begin();
        }
        ordered.push_back(*ready);
        pending.erase(ready);
    }

    ResolvedRole result;
    Folder folder;
    std::vector<std::string> names;
    std::vector<std::string> variants;
    names.reserve(ordered.size());
    variants.reserve(ordered.size());
    for (const auto& member : ordered) {
        names.push_back(member.role->name);
        if (!member.variant.empty()) {
            variants.push_back(to_string(RoleSpec{member.role->name, member.variant}));
        }
        for (const auto& layer : detail::layers_of(catalog, *member.role, member.variant)) {
            folder.fold(*layer.body);  // the common layer folds in once: its units and tiers are placed
        }
    }
    result.name = join(names, "+");
    result.variant = join(variants, ",");
    result.body = std::move(folder).finish();
    return result;
}

}  // namespace stormnode::roles
