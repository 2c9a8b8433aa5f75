#include "stormnode/zabbix/bootstrap.hpp"

#include <stormnode/common/error.hpp>

#include <algorithm>
#include <cctype>
#include <sstream>

namespace stormnode::roles {
namespace {

// A quoted SQL string. The secrets are hex, but a hand-written secrets file may hold anything.
std::string quoted(const std::string& text) {
    std::string out = "'";
    for (const char c : text) {
        if (c == '\'' || c == '\\') {
            out += '\\';
        }
        out += c;
    }
    return out + "'";
}

// A database or table name between backticks; Zabbix's names are plain identifiers.
std::string identifier(const std::string& name) {
    const bool plain = !name.empty() && std::all_of(name.begin(), name.end(), [](unsigned char c) {
        return std::isalnum(c) != 0 || c == '_';
    });
    if (!plain) {
        throw Error(Errc::invalid_input, "not a plain SQL identifier: '" + name + "'");
    }
    return "`" + name + "`";
}

}  // namespace

const ClusterMember* monitor_db_member(const Cluster& cluster) {
    if (!cluster.members_with("db").empty()) {
        return nullptr;
    }
    const auto monitors = cluster.members_with("monitor");
    return monitors.empty() ? nullptr : monitors.front();
}

std::string zabbix_db_setup_sql(
    const std::vector<std::string>& client_addresses, const std::string& password) {
    const std::string db = identifier(kZabbixDatabase);
    std::string sql = "CREATE DATABASE IF NOT EXISTS " + db + " CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;\n";
    for (const auto& address : client_addresses) {
        const std::string user = "'zabbix'@" + quoted(address);
        sql += "CREATE USER IF NOT EXISTS " + user + " IDENTIFIED BY " + quoted(password) + ";\n";
        sql += "ALTER USER " + user + " IDENTIFIED BY " + quoted(password) + ";\n";
        sql += "GRANT ALL PRIVILEGES ON " + db + ".* TO " + user + ";\n";
    }
    return sql;
}

bool zabbix_schema_needs_load(bool has_dbversion, const std::string& database_comment) {
    return !has_dbversion || database_comment == kSchemaLoadingComment;
}

std::vector<ZabbixHaNode> parse_ha_status(const std::string& text) {
    std::vector<ZabbixHaNode> nodes;
    std::istringstream lines(text);
    for (std::string line; std::getline(lines, line);) {
        std::istringstream words(line);
        std::string number;
        ZabbixHaNode node;
        std::string last_access;
        if (!(words >> number >> node.id >> node.name >> node.address >> node.status >> last_access)) {
            continue;
        }
        // "1." .. "99.": a row; the header ("#  ID  Name ...") and the other lines are not.
        if (number.size() < 2 || number.back() != '.' ||
            !std::all_of(
                number.begin(), number.end() - 1, [](unsigned char c) { return std::isdigit(c) != 0; })) {
            continue;
        }
        nodes.push_back(std::move(node));
    }
    return nodes;
}

}  // namespace stormnode::roles
