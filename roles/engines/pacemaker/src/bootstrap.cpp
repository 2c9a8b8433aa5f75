#include "stormnode/pacemaker/bootstrap.hpp"

#include <sstream>

namespace stormnode::roles {
namespace {

std::string passfile_field(const std::string& text) {
    std::string out;
    for (const char c : text) {
        if (c == ':' || c == '\\') {
            out += '\\';
        }
        out += c;
    }
    return out;
}

std::string sql_literal(const std::string& text) {
    std::string out = "'";
    for (const char c : text) {
        out += c;
        if (c == '\'') {
            out += '\'';
        }
    }
    return out + "'";
}

}  // namespace

const ClusterMember* pacemaker_configuring_member(const Cluster& cluster) {
    const auto members = cluster.members_with("db");
    return members.empty() ? nullptr : members.front();
}

std::optional<std::string> db_vip_address(const Cluster& cluster) {
    for (const auto& vip : cluster.vips) {
        if (vip.name == kDbVipName) {
            return vip.address;
        }
    }
    return std::nullopt;
}

std::optional<std::string> corosync_authkey(const std::string& secret_hex) {
    constexpr std::size_t kMinimumBytes = 128;
    const auto nibble = [](char c) -> int {
        if (c >= '0' && c <= '9') {
            return c - '0';
        }
        if (c >= 'a' && c <= 'f') {
            return c - 'a' + 10;
        }
        if (c >= 'A' && c <= 'F') {
            return c - 'A' + 10;
        }
        return -1;
    };
    if (secret_hex.size() % 2 != 0 || secret_hex.size() / 2 < kMinimumBytes) {
        return std::nullopt;
    }
    std::string key;
    for (std::size_t i = 0; i < secret_hex.size(); i += 2) {
        const int high = nibble(secret_hex[i]);
        const int low = nibble(secret_hex[i + 1]);
        if (high < 0 || low < 0) {
            return std::nullopt;
        }
        key += static_cast<char>((high << 4) | low);
    }
    return key;
}

std::string replication_passfile(const std::vector<std::string>& hosts, const std::string& password) {
    std::string text;
    for (const auto& host : hosts) {
        // host:port:database:user:password; "*": replication connections and pg_rewind's to a database
        text += passfile_field(host) + ":5432:*:" + kReplicationRole + ":" + passfile_field(password) + "\n";
    }
    return text;
}

std::string replication_role_sql(const std::string& password) {
    return std::string(
               "DO $stormnode$ BEGIN IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = '") +
           kReplicationRole + "') THEN CREATE ROLE " + kReplicationRole + "; END IF; ALTER ROLE " +
           kReplicationRole + " WITH REPLICATION LOGIN PASSWORD " + sql_literal(password) +
           "; END $stormnode$\n";
}

std::string rewind_grants_sql() {
    // pg_rewind's source functions (PostgreSQL 15's pg_rewind documentation) and CHECKPOINT, so a
    // just-promoted source records its new timeline before pg_rewind reads it.
    std::string sql;
    for (const char* function :
         {"pg_ls_dir(text, boolean, boolean)",
          "pg_stat_file(text, boolean)",
          "pg_read_binary_file(text)",
          "pg_read_binary_file(text, bigint, bigint, boolean)"}) {
        sql += std::string("GRANT EXECUTE ON FUNCTION pg_catalog.") + function + " TO " + kReplicationRole +
               "\n";
    }
    return sql + "GRANT pg_checkpoint TO " + kReplicationRole + "\n";
}

std::optional<std::string> single_user_error(const std::string& output) {
    std::istringstream lines(output);
    for (std::string line; std::getline(lines, line);) {
        for (const char* level : {"ERROR:", "FATAL:", "PANIC:"}) {
            if (line.find(level) != std::string::npos) {
                return line;
            }
        }
    }
    return std::nullopt;
}

}  // namespace stormnode::roles
