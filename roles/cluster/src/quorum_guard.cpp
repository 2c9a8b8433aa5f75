#include "stormnode/cluster/quorum_guard.hpp"

#include <stormnode/common/error.hpp>

#include <algorithm>
#include <map>

namespace stormnode::roles {
namespace {

bool carries(const std::vector<RoleSpec>& roles, const std::string& role) {
    return find_role(roles, role) != nullptr;
}

// A member's vote for a role's quorum: it carries the role, or (for db) it is the quorum device.
bool votes_for(const std::vector<RoleSpec>& roles, const std::string& role) {
    return carries(roles, role) || (role == "db" && carries(roles, "quorum"));
}

// "db1", "db1 and db2", "db1, db2 and db3"
std::string listed(const std::vector<std::string>& names) {
    std::string text;
    for (std::size_t i = 0; i < names.size(); ++i) {
        text += (i == 0 ? "" : i + 1 == names.size() ? " and " : ", ") + names[i];
    }
    return text;
}

// What a db member of this variant uses of a quorum node: garbd (Galera, the default variant) or qnetd.
std::string quorum_engine(const RoleSpec& db_role) {
    const std::string& variant = db_role.variant;
    if (variant == "active-passive") {
        return "corosync-qnetd";
    }
    return variant == "galera" ? "garbd" : "garbd or corosync-qnetd";
}

// The other members whose db cluster votes with this node's quorum role, named with their db role as
// written: "db1 and db2 (db/galera) depend on this node's quorum role (garbd)". Empty when none does.
std::string quorum_dependents(const Cluster& cluster, const std::string& hostname) {
    std::map<RoleSpec, std::vector<std::string>> by_role;  // db:galera -> hostnames
    for (const auto& member : cluster.members) {
        if (member.hostname == hostname) {
            continue;
        }
        for (const auto& role : member.roles) {
            if (role.name == "db") {
                by_role[role].push_back(member.hostname);
            }
        }
    }
    std::string text;
    for (const auto& [role, hostnames] : by_role) {
        const std::string shown = role.variant.empty() ? role.name : role.name + "/" + role.variant;
        text += (text.empty() ? "" : "; ") + listed(hostnames) + " (" + shown + ") " +
                (hostnames.size() == 1 ? "depends" : "depend") + " on this node's quorum role (" +
                quorum_engine(role) + ")";
    }
    return text;
}

}  // namespace

std::optional<Cluster> load_optional_cluster(
    const std::filesystem::path& cluster_yaml, const Catalog* catalog) {
    std::error_code ec;
    if (cluster_yaml.empty() || !std::filesystem::exists(cluster_yaml, ec)) {
        return std::nullopt;
    }
    return load_cluster(cluster_yaml, catalog);
}

std::optional<std::string> quorum_refusal(
    const std::set<std::string>& quorum_roles,
    const Cluster* cluster,
    const std::string& hostname,
    const std::vector<RoleSpec>& old_roles,
    const std::vector<RoleSpec>& new_roles) {
    std::vector<std::string> leaving;
    for (const auto& role : quorum_roles) {
        if (carries(old_roles, role) && !carries(new_roles, role)) {
            leaving.push_back(role);
        }
    }
    if (leaving.empty()) {
        return std::nullopt;
    }
    if (cluster == nullptr) {
        return "leaving " + leaving.front() + ": no cluster.yaml: cannot prove the cluster keeps quorum";
    }
    // The others as cluster.yaml lists them; this node as it is now and as it would be.
    std::vector<const std::vector<RoleSpec>*> others;
    for (const auto& member : cluster->members) {
        if (member.hostname != hostname) {
            others.push_back(&member.roles);
        }
    }
    for (const auto& role : leaving) {
        int now = votes_for(old_roles, role) ? 1 : 0;
        int after = votes_for(new_roles, role) ? 1 : 0;
        for (const auto* roles : others) {
            const int vote = votes_for(*roles, role) ? 1 : 0;
            now += vote;
            after += vote;
        }
        if (2 * after <= now) {
            if (role == "quorum") {
                if (auto dependents = quorum_dependents(*cluster, hostname); !dependents.empty()) {
                    return "leaving quorum: " + dependents +
                           (after == 0 ? ", and no other member carries it"
                                       : ", and the other quorum members hold " + std::to_string(after) +
                                             " of " + std::to_string(now) + " votes") +
                           " (per " + cluster->file + ")";
                }
            }
            std::string why = "leaving " + role + " would leave ";
            why += std::to_string(after) + " of " + std::to_string(now);
            why += role == "db" ? " votes (db and quorum members, per " : " " + role + " members (per ";
            why += cluster->file + "): the cluster would lose quorum";
            return why;
        }
    }
    return std::nullopt;
}

}  // namespace stormnode::roles
