// The monitor role's Zabbix 6.0 pair: where its one database lives, what the database needs before
// zabbix_server starts (the user of each monitor member, the schema loaded once) and what
// `zabbix_server -R ha_status` says about the HA nodes.
#pragma once

#include <stormnode/cluster/cluster.hpp>

#include <string>
#include <vector>

namespace stormnode::roles {

// cluster.yaml's secret holding the zabbix database user's password.
inline constexpr const char* kZabbixDbPasswordSecret = "zabbix-db-password";
inline constexpr const char* kZabbixDatabase = "zabbix";
// The schema as zabbix-server-mysql ships it, loaded in this order (README.Debian).
inline constexpr const char* kZabbixSchemaDir = "/usr/share/zabbix-server-mysql";
inline constexpr const char* kZabbixSchemaFiles[] = {"schema.sql.gz", "images.sql.gz", "data.sql.gz"};

// The member whose MariaDB (the monitor role's local_db feature) holds the pair's database: the first
// monitor member of cluster.yaml. nullptr when the cluster has db members (the db role then holds it,
// behind cluster.vip) or no monitor member.
const ClusterMember* monitor_db_member(const Cluster& cluster);

// Idempotent SQL for the local database: the zabbix database (utf8mb4_bin, as Zabbix requires) and
// its user at each client address, with the password (re)set and the grants. The password is a
// cluster secret: it goes to the mariadb client on stdin, never on a command line.
std::string zabbix_db_setup_sql(
    const std::vector<std::string>& client_addresses, const std::string& password);

// The schema is loaded straight into the zabbix database (its triggers keep it from being moved
// between databases), with the database's COMMENT saying how far the load got.
inline constexpr const char* kSchemaLoadingComment = "stormnode: schema loading";
inline constexpr const char* kSchemaLoadedComment = "stormnode: schema loaded";

// Whether the schema is (re)loaded, from the database as found: a load is due when it has no dbversion
// table, or when the comment says a load of ours began and never ended (it is dropped and made again).
// A dbversion table without our comment is a database someone else made (a restore): left alone.
bool zabbix_schema_needs_load(bool has_dbversion, const std::string& database_comment);

// One row of `zabbix_server -R ha_status`.
struct ZabbixHaNode {
    std::string id;
    std::string name;
    std::string address;  // "10.0.0.1:10051"
    std::string status;   // active | standby | stopped | unavailable
};

// The rows of ha_status's "Cluster status" table ("  1. <id> <name> <address> <status> <last access>").
// Empty when the text has none (HA not configured, or not an ha_status output).
std::vector<ZabbixHaNode> parse_ha_status(const std::string& text);

}  // namespace stormnode::roles
