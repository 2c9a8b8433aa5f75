#include "stormnode/roles/supervisor/quorum_guard.hpp"

#include <stormnode/common/error.hpp>

#include <algorithm>

namespace stormnode::roles {
namespace {

std::string base_name(const std::string& role) {  // "db:galera" -> "db"
    return role.substr(0, role.find(':'));
}

bool carries(const std::vector<std::string>& roles, const std::string& role) {
    return std::any_of(
        roles.begin(), roles.end(), [&](const std::string& r) { return base_name(r) == role; });
}

// A member's vote for a role's quorum: it carries the role, or (for db) it is the quorum device.
bool votes_for(const std::vector<std::string>& roles, const std::string& role) {
    return carries(roles, role) || (role == "db" && carries(roles, "quorum"));
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
    const std::vector<std::string>& old_roles,
    const std::vector<std::string>& new_roles) {
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
    std::vector<const std::vector<std::string>*> others;
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
