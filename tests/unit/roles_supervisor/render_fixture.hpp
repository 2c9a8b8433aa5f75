// Shared by the render tests: the real catalog and templates, and one node's config files rendered from
// a node.yaml and a cluster.yaml written into a temporary directory.
#pragma once

#include <stormnode/catalog/catalog.hpp>
#include <stormnode/cluster/node_config.hpp>
#include <stormnode/common/error.hpp>
#include <stormnode/common/temp_dir.hpp>

#include <filesystem>
#include <string>

namespace stormnode::roles::render_test {

inline const std::filesystem::path& source_dir() {
    static const std::filesystem::path dir(STORMNODE_SOURCE_DIR);
    return dir;
}

inline const Catalog& catalog() {
    static const Catalog loaded = load_valid_catalog(source_dir() / "roles" / "catalog");
    return loaded;
}

// Writes dir/node.yaml (and dir/cluster.yaml unless cluster_yaml is empty), loads them and renders the
// role's config files under dir/root; returns the node's config.
inline NodeConfig render_role(
    TempDir& dir, const std::string& node_yaml, const std::string& cluster_yaml, const std::string& role) {
    write_file_atomic(dir.path() / "node.yaml", node_yaml);
    if (!cluster_yaml.empty()) {
        write_file_atomic(dir.path() / "cluster.yaml", cluster_yaml);
    }
    auto node = load_node_config(dir.path() / "node.yaml", dir.path() / "cluster.yaml", &catalog());
    const std::vector<RoleSpec> roles{parse_role_spec(role)};
    render_config(
        resolve_combination(catalog(), roles).body.config,
        node,
        roles,
        source_dir() / "roles" / "catalog" / "templates",
        dir.path() / "root");
    return node;
}

inline bool contains(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
}

}  // namespace stormnode::roles::render_test
