// The cluster a node belongs to, /etc/stormnode/cluster.yaml: one model for every reader (the quorum
// guard, config rendering, `stormctl cluster`). It travels with answer files and inventories; its
// shared secrets live in a separate file (0600) that cluster.yaml names, so the model itself is not secret.
//
//   name: cloud-db                     # Galera group, corosync cluster_name
//   secrets: cloud-db.secrets.yaml     # relative to cluster.yaml; made once by `stormctl cluster init`
//   members:
//     - {hostname: db-1, address: 10.0.0.1, zone: a, roles: [db]}
//     - {hostname: db-2, address: 10.0.0.2, zone: b, roles: ["db:galera"]}
//     - {hostname: q-1,  address: 10.0.0.3, zone: c, roles: [quorum]}
//   vips:                              # optional
//     - {name: mgmt, address: 10.0.0.10, vrrp_router_id: 51, members: [ctl-1, ctl-2]}
#pragma once

#include <stormnode/catalog/catalog.hpp>
#include <stormnode/catalog/role_spec.hpp>
#include <stormnode/common/yaml_diagnostics.hpp>

#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace stormnode::roles {

struct ClusterMember {
    std::string hostname;
    std::string address;
    std::string zone;             // "" when the cluster gives no zones
    std::vector<RoleSpec> roles;  // written "db" or "db:galera"

    [[nodiscard]] bool carries(const std::string& role) const;  // by name: "db" matches db:galera
};

struct Vip {
    std::string name;
    std::string address;
    int vrrp_router_id = 0;            // 0: not given
    std::vector<std::string> members;  // hostnames that may hold it; empty: not restricted
};

struct Cluster {
    std::string file;  // where it was read from, for messages
    std::string name;
    std::string secrets;  // the secrets file as written (relative to cluster.yaml's directory)
    std::vector<ClusterMember> members;
    std::vector<Vip> vips;

    [[nodiscard]] const ClusterMember* find(const std::string& hostname) const;
    [[nodiscard]] std::vector<const ClusterMember*> members_with(const std::string& role) const;
    [[nodiscard]] std::filesystem::path secrets_path() const;
};

// Reads and checks a cluster.yaml document, reporting every problem at file:line:col: unknown keys and
// roles, duplicate hostnames and addresses, VIPs naming unknown members, roles that cannot share a
// member, a db cluster of two without a quorum member, members of a role not spread over zones (when
// zones are given). Role checks need the catalog; without one only the structure is checked.
Cluster parse_cluster(const YAML::Node& doc, const Catalog* catalog, Diagnostics& diags);
std::optional<Cluster> read_cluster_file(
    const std::filesystem::path& path, const Catalog* catalog, Diagnostics& diags);
// Throws Error(invalid_input) with every diagnostic.
Cluster load_cluster(const std::filesystem::path& path, const Catalog* catalog = nullptr);

// The shared secrets the members' roles need (the catalog's cluster.shared_secrets), sorted.
std::vector<std::string> needed_secrets(const Cluster& cluster, const Catalog& catalog);
// Checks the secrets file: present, 0600 or stricter, a map holding every needed secret.
void check_cluster_secrets(const Cluster& cluster, const Catalog& catalog, Diagnostics& diags);

// The secrets file's values by name (for the node that uses them: storm-roled writes each where its
// engine reads it, 0600 or stricter). Throws Error naming the file when cluster.yaml names none, or it
// cannot be read, or it is readable by others, or a value is not a non-empty string.
std::map<std::string, std::string> load_cluster_secrets(const Cluster& cluster);

// What config templates see as `cluster`: name, vip and vrrp_router_id (of the VIP named mgmt, else
// the first), vips.<name>.address, members (all) and members.<role> lists of {hostname, address, zone,
// nodeid}, galera_nodes (the db members' addresses joined with commas), galera_members (those and the quorum
// members' garbd: every Galera member), galera.backends (the Galera db members as HAProxy backends:
// {hostname, address}, and backup: "backup" on all but the first; no galera key without them).
YAML::Node cluster_template_data(const Cluster& cluster);

// The YAML text of a cluster.yaml, readable by parse_cluster.
std::string render_cluster_file(const Cluster& cluster);

struct SecretsUpdate {
    bool created = false;            // the secrets file did not exist
    std::vector<std::string> added;  // the secrets written (every one when created), sorted
};

// `stormctl cluster init`: writes cluster.yaml (0644) and the secrets file it names (0600, one random
// value per needed secret, qnetd's TLS material made together). Secrets are generated once: an existing
// file keeps every value it holds; the needed secrets it lacks (a newer version's) are added and the
// file rewritten atomically, 0600; with none lacking it is not touched. Throws Error when the file
// cannot be read as a map of strings, or holds part of the qnetd material only (its CA key is gone).
SecretsUpdate write_new_cluster(
    const std::filesystem::path& cluster_yaml, Cluster cluster, const Catalog& catalog);

}  // namespace stormnode::roles
