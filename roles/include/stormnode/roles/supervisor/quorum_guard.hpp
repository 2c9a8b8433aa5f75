// The quorum guard: a role switch must not take this node out of a quorum role (catalog
// cluster.quorum_member: db, quorum, controller) when the rest of the cluster would then hold no
// majority of that role's votes. Cluster knowledge is the members list of /etc/stormnode/cluster.yaml.
#pragma once

#include <stormnode/common/yaml_diagnostics.hpp>

#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace stormnode::roles {

struct ClusterMember {
    std::string hostname;
    std::vector<std::string> roles;
};

// The part of cluster.yaml the guard reads. Only `members` is read here; its entries are checked
// strictly, the file's other keys belong to the tools that need them.
struct ClusterMembers {
    bool present = false;  // false: there is no cluster.yaml
    std::string file;
    std::vector<ClusterMember> members;
};

// members:
//   - {hostname: ctl1, roles: [controller, db]}
//   - {hostname: q1, roles: [quorum]}
ClusterMembers parse_cluster_members(const YAML::Node& doc, Diagnostics& diags);
// A missing file gives present == false. Throws Error(invalid_input) naming file:line:col.
ClusterMembers load_cluster_members(const std::filesystem::path& cluster_yaml);

// Why the switch must be refused, or nullopt when it is safe. quorum_roles: the roles whose catalog entry
// says cluster.quorum_member. A member carrying `quorum` (the qdevice) is also a vote for `db`. This node
// (hostname) counts with old_roles now and new_roles after, whatever its cluster.yaml entry says.
std::optional<std::string> quorum_refusal(
    const std::set<std::string>& quorum_roles,
    const ClusterMembers& cluster,
    const std::string& hostname,
    const std::vector<std::string>& old_roles,
    const std::vector<std::string>& new_roles);

}  // namespace stormnode::roles
