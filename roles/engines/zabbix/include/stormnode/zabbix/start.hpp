// storm-roled's side of the monitor role's Zabbix pair (stormnode/zabbix/bootstrap.hpp): the
// database password where zabbix_server and the frontend read it, and, on the member holding the
// database, the database itself (the storm-monitor-db oneshot between mariadb and zabbix-server).
#pragma once

#include <stormnode/cluster/node_config.hpp>
#include <stormnode/zabbix/bootstrap.hpp>

#include <filesystem>
#include <optional>
#include <string>

namespace stormnode::roles {

// zabbix_server.conf includes the first (zabbix's), zabbix.conf.php reads the second (Apache's www-data).
inline constexpr const char* kZabbixServerDbConf = "etc/stormnode/secrets/zabbix_server.db.conf";
inline constexpr const char* kZabbixFrontendDbPassword = "etc/stormnode/secrets/zabbix-db-password";

// Before the monitor role's units start: writes root/kZabbixServerDbConf and root/
// kZabbixFrontendDbPassword (0600, owned by zabbix and www-data on the running system) from cluster.yaml's
// secret. nullopt when this node is not a monitor member of cluster.yaml. Throws Error when the secret
// is missing (zabbix_server would not start without it).
std::optional<std::string> prepare_monitor_start(const NodeConfig& node, const std::filesystem::path& root);

// storm-monitor-db, on the member holding the database (feature local_db) with MariaDB running: the
// database and each monitor member's user (idempotent), and the schema loaded once, when the database
// has no dbversion table. Runs `mariadb` as root (unix_socket). Returns what was done, for the journal.
// Throws Error when this node is not that member, a secret is missing or a statement fails.
std::string prepare_zabbix_database(const NodeConfig& node);

}  // namespace stormnode::roles
