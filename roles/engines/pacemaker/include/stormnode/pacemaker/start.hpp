// storm-roled's side of the active-passive db pair (stormnode/pacemaker/bootstrap.hpp). Before
// corosync starts: cluster.yaml's shared secrets where the engines read them, and on the configuring
// member the replication role in a datadir that was never started. Once pacemaker runs in a quorate
// partition: the configuring member loads the resources (crm configure load update), once.
#pragma once

#include <stormnode/cluster/node_config.hpp>
#include <stormnode/pacemaker/bootstrap.hpp>
#include <stormnode/pacemaker/rejoin.hpp>

#include <filesystem>
#include <optional>
#include <string>

namespace stormnode::roles {

inline constexpr const char* kPacemakerResourcesFile = "etc/stormnode/pacemaker/db.crm";
inline constexpr const char* kCorosyncAuthkey = "etc/corosync/authkey";
inline constexpr const char* kPostgresPassfile = "var/lib/postgresql/.pgpass";
inline constexpr const char* kPostgresDatadir = "var/lib/postgresql/15/main";
// In the datadir: the replication role was added (postgres --single) before its first start.
inline constexpr const char* kSeededMarker = "stormnode-replication-seeded";

struct PacemakerStart {
    bool configuring = false;  // this node loads the resources
    std::string summary;       // for the journal
    // What was found of the local datadir on the running system, and done with it when it was left as
    // a primary while another member serves as one (stormnode/pacemaker/rejoin.hpp).
    std::optional<PostgresRejoin> rejoin;
};

// Writes root/kCorosyncAuthkey (0400 root) and root/kPostgresPassfile (0600 postgres) from the cluster's
// secrets, makes a datadir left as a primary a standby of the member that serves as primary now
// (rejoin_postgres_if_needed) and, on the configuring member, seeds the replication role into a
// datadir that has neither the marker nor standby.signal. nullopt when this node is not a db member of
// cluster.yaml. Throws Error when a secret is missing or a step fails (the role does not start
// half-configured).
std::optional<PacemakerStart> prepare_pacemaker_start(
    const NodeConfig& node, const std::filesystem::path& root);

// On the configuring member, with pacemaker up and the partition quorate: unless the CIB already holds
// the resources, makes this node the first primary (PAF's master score) and loads root/
// kPacemakerResourcesFile. When its datadir is a standby (the pair formed before), only once the DC
// has taken this node in (its CIB synced). Returns what was done ("" when nothing was needed); nullopt
// when this node is not the configuring member. Throws Error when a command fails, Errc::timeout when
// the node is not taken in yet (the caller retries).
std::optional<std::string> configure_pacemaker(const NodeConfig& node, const std::filesystem::path& root);

}  // namespace stormnode::roles
