// storm-roled's side of the Galera bootstrap: before the db role's units start, decide (see
// stormnode/galera/bootstrap.hpp) whether mariadb.service starts a new cluster, and say so the way
// galera_new_cluster does: _WSREP_NEW_CLUSTER in /run/mariadb-wsrep-new-cluster, the EnvironmentFile of
// bookworm's mariadb.service, for ONE start. A runtime drop-in (picked up by the supervisor's
// daemon-reload before tier 0) removes the file when that start ends, so any later start (a restart
// by storm-roled or systemd after a crash) joins the cluster instead of starting a second one.
#pragma once

#include <stormnode/cluster/node_config.hpp>
#include <stormnode/galera/bootstrap.hpp>

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

namespace stormnode::roles {

// The addresses that accept a TCP connection on port within the deadline (all tried at once).
std::vector<std::string> reachable_addresses(
    const std::vector<std::string>& addresses, int port, std::chrono::milliseconds deadline);

inline constexpr const char* kGaleraDropIn = "run/systemd/system/mariadb.service.d/50-stormnode-galera.conf";
inline constexpr const char* kGaleraNewClusterEnv = "run/mariadb-wsrep-new-cluster";

// Writes root/kGaleraDropIn, and root/kGaleraNewClusterEnv for a new cluster (removes it to join).
// Nothing (nullopt) when this node is not a db member of cluster.yaml. grastate is read from
// root/var/lib/mysql/grastate.dat.
std::optional<GaleraDecision> prepare_galera_start(
    const NodeConfig& node, const std::filesystem::path& root, std::chrono::milliseconds probe_deadline);

}  // namespace stormnode::roles
