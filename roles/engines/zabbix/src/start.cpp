#include "stormnode/zabbix/start.hpp"

#include "stormnode/cluster/secret_file.hpp"

#include <stormnode/common/error.hpp>
#include <stormnode/common/subprocess.hpp>
#include <stormnode/common/temp_dir.hpp>

#include <unistd.h>

#include <sstream>

namespace stormnode::roles {
namespace {

namespace fs = std::filesystem;

const ClusterMember* monitor_member(const NodeConfig& node) {
    if (!node.cluster_model) {
        return nullptr;
    }
    const ClusterMember* self = node.cluster_model->find(node.hostname);
    return self != nullptr && self->carries("monitor") ? self : nullptr;
}

std::string db_password(const Cluster& cluster) {
    return cluster_secret(load_cluster_secrets(cluster), cluster, kZabbixDbPasswordSecret);
}

// mariadb as root over the unix socket, the statements on stdin.
std::string sql(const std::string& statements, const std::string& database, std::chrono::seconds timeout) {
    Command command{
        .argv = {"mariadb", "--batch", "--skip-column-names"}, .stdin_data = statements, .timeout = timeout};
    if (!database.empty()) {
        command.argv.push_back(database);
    }
    const auto result = run(command);
    if (!result.ok()) {
        throw Error(
            Errc::io,
            "mariadb" + (database.empty() ? std::string() : " " + database) +
                (result.timed_out ? ": timed out" : ": exit " + std::to_string(result.exit_status)) + ": " +
                result.err);
    }
    return result.out;
}

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> lines;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
        if (!line.empty()) {
            lines.push_back(line);
        }
    }
    return lines;
}

}  // namespace

std::optional<std::string> prepare_monitor_start(const NodeConfig& node, const fs::path& root) {
    if (monitor_member(node) == nullptr) {
        return std::nullopt;
    }
    const std::string password = db_password(*node.cluster_model);
    const bool live = root == fs::path("/") && ::geteuid() == 0;
    write_secret_file(root / kZabbixServerDbConf, "DBPassword=" + password + "\n", 0600, "zabbix", live);
    write_secret_file(root / kZabbixFrontendDbPassword, password + "\n", 0600, "www-data", live);
    const ClusterMember* db = monitor_db_member(*node.cluster_model);
    return "database password written for zabbix_server and the frontend; database on " +
           (db != nullptr ? db->hostname + " (local_db)" : std::string("the db role (cluster vip)"));
}

std::string prepare_zabbix_database(const NodeConfig& node) {
    if (monitor_member(node) == nullptr) {
        throw Error(
            Errc::invalid_input, "this node (" + node.hostname + ") is not a monitor member of cluster.yaml");
    }
    const Cluster& cluster = *node.cluster_model;
    const ClusterMember* holder = monitor_db_member(cluster);
    if (holder == nullptr || holder->hostname != node.hostname) {
        throw Error(
            Errc::invalid_input,
            "the pair's database is on " +
                (holder != nullptr ? holder->hostname : std::string("the db role")) +
                ", not here: enable local_db only on the first monitor member of " + cluster.file);
    }
    std::vector<std::string> clients;
    for (const auto* member : cluster.members_with("monitor")) {
        clients.push_back(member->address);
    }
    const auto timeout = std::chrono::seconds(60);
    sql(zabbix_db_setup_sql(clients, db_password(cluster)), {}, timeout);
    std::string done = "zabbix database and users for " + std::to_string(clients.size()) + " monitor members";

    const std::string db = kZabbixDatabase;
    const bool has_dbversion = sql("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema='" +
                                       db + "' AND table_name='dbversion';\n",
                                   {},
                                   timeout)
                                   .rfind('0', 0) != 0;
    const auto comment = lines_of(
        sql("SELECT schema_comment FROM information_schema.schemata WHERE schema_name='" + db + "';\n",
            {},
            timeout));
    if (!zabbix_schema_needs_load(has_dbversion, comment.empty() ? std::string() : comment.front())) {
        return done + "; schema already loaded";
    }
    // Made again from nothing (a load that was cut short leaves half a schema); the users' grants on
    // zabbix.* outlive the database.
    sql("DROP DATABASE IF EXISTS `" + db + "`;\nCREATE DATABASE `" + db +
            "` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin COMMENT '" + kSchemaLoadingComment + "';\n",
        {},
        timeout);
    // A transaction per file: the data's thousands of INSERTs cost one fsync, not one each.
    std::string statements = "SET autocommit=0;\nSET unique_checks=0;\nSET foreign_key_checks=0;\n";
    for (const char* file : kZabbixSchemaFiles) {
        const auto path = fs::path(kZabbixSchemaDir) / file;
        statements += run_checked(Command{.argv = {"zcat", path.string()}, .timeout = timeout}).out;
        statements += "\nCOMMIT;\n";
    }
    sql(statements, db, std::chrono::seconds(900));
    sql("ALTER DATABASE `" + db + "` COMMENT '" + kSchemaLoadedComment + "';\n", {}, timeout);
    return done + "; schema loaded (" + std::to_string(std::size(kZabbixSchemaFiles)) + " files)";
}

}  // namespace stormnode::roles
