// The quorum guard: a role switch must not take this node out of a quorum role (catalog
// cluster.quorum_member: db, quorum, controller) when the rest of the cluster would then hold no
// majority of that role's votes. Cluster knowledge is /etc/stormnode/cluster.yaml, read with the one
// cluster model (stormnode/cluster/cluster.hpp).
#pragma once

#include <stormnode/cluster/cluster.hpp>

#include <filesystem>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace stormnode::roles {

// Why the switch must be refused, or nullopt when it is safe. quorum_roles: the roles whose catalog entry
// says cluster.quorum_member. A member carrying `quorum` (the qdevice) is also a vote for `db`. This node
// (hostname) counts with old_roles now and new_roles after, whatever its cluster.yaml entry says.
// Loads cluster.yaml with the catalog's checks; nullopt when the file does not exist. Throws
// Error(invalid_input) naming file:line:col when it is not valid.
std::optional<Cluster> load_optional_cluster(
    const std::filesystem::path& cluster_yaml, const Catalog* catalog);

std::optional<std::string> quorum_refusal(
    const std::set<std::string>& quorum_roles,
    const Cluster* cluster,  // nullptr: there is no cluster.yaml
    const std::string& hostname,
    const std::vector<RoleSpec>& old_roles,
    const std::vector<RoleSpec>& new_roles);

}  // namespace stormnode::roles
