// What the cluster tests share: the real role catalog, and an active-passive PostgreSQL pair with its
// quorum member (the cluster that uses every kind of shared secret: corosync, replication, qnetd's TLS).
#pragma once

#include <stormnode/catalog/catalog.hpp>
#include <stormnode/cluster/cluster.hpp>

#include <filesystem>

namespace stormnode::roles::test {

inline const Catalog& real_catalog() {
    static const Catalog loaded =
        load_valid_catalog(std::filesystem::path(STORMNODE_SOURCE_DIR) / "roles" / "catalog");
    return loaded;
}

inline Cluster pg_pair_cluster() {
    Cluster cluster;
    cluster.name = "cloud-pg";
    cluster.members = {
        {"pg-1", "10.0.0.1", "a", {{"db", "active-passive"}}},
        {"pg-2", "10.0.0.2", "b", {{"db", "active-passive"}}},
        {"q-1", "10.0.0.3", "c", {{"quorum"}}}};
    return cluster;
}

}  // namespace stormnode::roles::test
