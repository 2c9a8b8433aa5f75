// The active-passive db pair (db role, variant active-passive): PostgreSQL streaming replication under
// Pacemaker with PAF. Every member starts from the image's never-started datadir; the first db member of
// cluster.yaml (the "configuring member") adds the replication role to its own datadir before its first
// start, designates itself as the first primary and loads the resources, once, when it is quorate. The
// other member's datadir is then a valid standby of it: it streams from the VIP from the image's checkpoint.
#pragma once

#include <stormnode/cluster/cluster.hpp>

#include <optional>
#include <string>
#include <vector>

namespace stormnode::roles {

inline constexpr const char* kReplicationRole = "replicator";
inline constexpr const char* kReplicationSecret = "postgresql-replication-password";
inline constexpr const char* kCorosyncAuthkeySecret = "corosync-authkey";
inline constexpr const char* kPafResource = "pgsqld";  // the pgsqlms primitive in db/pacemaker.crm
inline constexpr const char* kDbVipName = "db";        // cluster.yaml's vips entry the pair carries

// The first db member of cluster.yaml: it seeds the replication role and loads Pacemaker's resources.
// nullptr when the cluster has no db member.
const ClusterMember* pacemaker_configuring_member(const Cluster& cluster);

// The address of cluster.yaml's VIP named "db", nullopt without one.
std::optional<std::string> db_vip_address(const Cluster& cluster);

// corosync's authkey from cluster.yaml's corosync-authkey secret (hex, as `stormctl cluster init` makes
// it): the decoded bytes. nullopt when it is not hex or decodes to fewer than 128 bytes (knet's minimum).
std::optional<std::string> corosync_authkey(const std::string& secret_hex);

// A libpq passfile (~postgres/.pgpass) giving password to the replicator role's connections to each
// host, replication and pg_rewind's (':' and '\' escaped as libpq wants).
std::string replication_passfile(const std::vector<std::string>& hosts, const std::string& password);

// One line for `postgres --single` (a newline ends a statement there): creates the replicator role
// unless it exists, and sets its password (a quoted SQL literal).
std::string replication_role_sql(const std::string& password);

// Lines for `postgres --single`, one statement each: what pg_rewind needs of the replicator role on its
// source (a former primary rejoins with it, stormnode/pacemaker/rejoin_decision.hpp) without superuser.
std::string rewind_grants_sql();

// `postgres --single` reports a failed statement on its output ("ERROR:  ...") and still exits 0: the
// first such line, or nullopt.
std::optional<std::string> single_user_error(const std::string& output);

}  // namespace stormnode::roles
