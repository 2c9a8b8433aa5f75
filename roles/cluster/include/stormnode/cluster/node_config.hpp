// This node's own settings (/etc/stormnode/node.yaml, /etc/stormnode/cluster.yaml) as the supervisor
// needs them, and the rendering of the roles' config templates from them.
#pragma once

#include <stormnode/catalog/catalog.hpp>
#include <stormnode/catalog/role_spec.hpp>
#include <stormnode/cluster/cluster.hpp>

#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace stormnode::roles {

struct NodeConfig {
    std::vector<RoleSpec> roles;  // node.yaml's roles with their variants, as listed
    std::string hostname;
    std::string zone;
    std::set<std::string> features;  // optional catalog features this node enables
    std::map<std::string, std::string> variables;
    YAML::Node document;  // all of node.yaml, for templates: the document the fields above were read from
    YAML::Node cluster;   // cluster_template_data() of cluster.yaml, null when there is none
    std::optional<Cluster> cluster_model;  // cluster.yaml, nullopt when there is none
};

// Reads node.yaml once, with the one node.yaml parser (stormnode/catalog/node_file.hpp: what
// storm-firstboot and the installer write), and cluster.yaml when it exists. With a catalog, the roles
// are checked against it too (validate_role_specs). Throws Error(invalid_input) naming file:line:col.
NodeConfig load_node_config(
    const std::filesystem::path& node_yaml,
    const std::filesystem::path& cluster_yaml,
    const Catalog* catalog = nullptr);

// Renders one template. Data: node.yaml's keys at the top, plus `hostname`, `zone`, `roles` (a list of
// "name" or "name:variant"; `{{#roles}}{{.}}{{/roles}}`), `has_role.<name>` (and `has_role.<name:variant>`
// for an entry with a variant), `variables.<key>` and `cluster.<...>` from cluster.yaml.
// Values are not HTML-escaped. Throws Error(invalid_input) naming the template on a syntax error.
std::string render_template(
    const std::string& text,
    const std::string& template_name,
    const NodeConfig& node,
    const std::vector<RoleSpec>& roles);

// Renders every config file that names a template (templates_dir/<template>) to root/<path>. All are
// rendered before any is written, and each is written atomically: nothing is left half-written.
void render_config(
    const std::vector<ConfigFile>& files,
    const NodeConfig& node,
    const std::vector<RoleSpec>& roles,
    const std::filesystem::path& templates_dir,
    const std::filesystem::path& root);

// The rendered files under root that are kernel settings (/etc/sysctl.d/*.conf): systemd-sysctl applied
// the directory at boot, before any role wrote its file there, so the supervisor loads them itself.
std::vector<std::filesystem::path> sysctl_files(
    const std::vector<ConfigFile>& files, const std::filesystem::path& root);

}  // namespace stormnode::roles
