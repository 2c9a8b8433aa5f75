// The monitor role's Zabbix pair: where the database lives, the SQL that prepares it, when the schema
// is loaded, the ha_status table, and what cluster.yaml gives the templates about the monitor members.
#include <stormnode/cluster/cluster.hpp>
#include <stormnode/common/error.hpp>
#include <stormnode/zabbix/bootstrap.hpp>

#include <catch2/catch.hpp>

using namespace stormnode;
using namespace stormnode::roles;

namespace {

Cluster parse(const std::string& text) {
    Diagnostics diags("cluster.yaml");
    auto cluster = parse_cluster(YAML::Load(text), nullptr, diags);
    INFO(diags.to_string());
    REQUIRE(diags.ok());
    return cluster;
}

const char* const kPair =
    "name: mon\n"
    "members:\n"
    "  - {hostname: ctl-1, address: 10.0.0.5, roles: [controller]}\n"
    "  - {hostname: mon-1, address: 10.0.0.21, roles: [monitor]}\n"
    "  - {hostname: mon-2, address: 10.0.0.22, roles: [monitor]}\n";

// zabbix_server 6.0.14's output (bookworm), two nodes.
const char* const kHaStatus =
    "Failover delay: 60 seconds\n"
    "Cluster status:\n"
    "  #  ID                        Name                      Address                        Status      "
    "Last Access\n"
    "  1. clp3mbl0h0001zk0elzqn6sdc mon1                      10.77.0.21:10051               active      1s\n"
    "  2. clp3mbv9a0001mr0e4r3n8yzd mon2                      10.77.0.22:10051               standby     "
    "3s\n";

}  // namespace

TEST_CASE("without db members the first monitor member holds the pair's database", "[roles][zabbix]") {
    const auto pair = parse(kPair);
    const auto* db = monitor_db_member(pair);
    REQUIRE(db != nullptr);
    CHECK(db->hostname == "mon-1");
    const auto data = cluster_template_data(pair);
    CHECK(data["monitor_db_host"].as<std::string>() == "10.0.0.21");
    CHECK(data["monitor_servers"].as<std::string>() == "10.0.0.21,10.0.0.22");
    CHECK(data["monitor_server_active"].as<std::string>() == "10.0.0.21;10.0.0.22");
}

TEST_CASE("with db members the database is the db role's, behind the VIP", "[roles][zabbix]") {
    const auto cluster = parse(
        "name: c\n"
        "members:\n"
        "  - {hostname: db-1, address: 10.0.0.1, roles: [db]}\n"
        "  - {hostname: db-2, address: 10.0.0.2, roles: [db]}\n"
        "  - {hostname: q-1, address: 10.0.0.3, roles: [quorum]}\n"
        "  - {hostname: mon-1, address: 10.0.0.21, roles: [monitor]}\n"
        "vips:\n"
        "  - {name: mgmt, address: 10.0.0.10}\n");
    CHECK(monitor_db_member(cluster) == nullptr);
    CHECK(cluster_template_data(cluster)["monitor_db_host"].as<std::string>() == "10.0.0.10");
}

TEST_CASE("a cluster without monitor members gives the templates no monitor keys", "[roles][zabbix]") {
    const auto cluster =
        parse("name: c\nmembers:\n  - {hostname: ctl-1, address: 10.0.0.5, roles: [controller]}\n");
    CHECK(monitor_db_member(cluster) == nullptr);
    const auto data = cluster_template_data(cluster);
    CHECK_FALSE(data["monitor_servers"]);
    CHECK_FALSE(data["monitor_server_active"]);
    CHECK_FALSE(data["monitor_db_host"]);
}

TEST_CASE("the database setup SQL makes a user per member and can run again", "[roles][zabbix]") {
    const auto sql = zabbix_db_setup_sql({"10.0.0.21", "10.0.0.22"}, "0f1e2d");
    INFO(sql);
    CHECK(
        sql.find("CREATE DATABASE IF NOT EXISTS `zabbix` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;\n") == 0);
    for (const std::string address : {"10.0.0.21", "10.0.0.22"}) {
        const std::string user = "'zabbix'@'" + address + "'";
        CHECK(
            sql.find("CREATE USER IF NOT EXISTS " + user + " IDENTIFIED BY '0f1e2d';\n") !=
            std::string::npos);
        // a changed secret takes effect on the next start
        CHECK(sql.find("ALTER USER " + user + " IDENTIFIED BY '0f1e2d';\n") != std::string::npos);
        CHECK(sql.find("GRANT ALL PRIVILEGES ON `zabbix`.* TO " + user + ";\n") != std::string::npos);
    }
    // a hand-written secret with quotes stays one string
    CHECK(
        zabbix_db_setup_sql({"10.0.0.21"}, "it's\\").find("IDENTIFIED BY 'it\\'s\\\\';") !=
        std::string::npos);
}

TEST_CASE("the schema is loaded into an empty database or again after a load cut short", "[roles][zabbix]") {
    CHECK(zabbix_schema_needs_load(false, ""));
    CHECK(zabbix_schema_needs_load(false, kSchemaLoadedComment));
    CHECK(zabbix_schema_needs_load(true, kSchemaLoadingComment));
    CHECK_FALSE(zabbix_schema_needs_load(true, kSchemaLoadedComment));
    // someone else's complete database (a restore): never dropped
    CHECK_FALSE(zabbix_schema_needs_load(true, ""));
}

TEST_CASE("ha_status rows are read from the Cluster status table", "[roles][zabbix]") {
    const auto nodes = parse_ha_status(kHaStatus);
    REQUIRE(nodes.size() == 2);
    CHECK(nodes[0].id == "clp3mbl0h0001zk0elzqn6sdc");
    CHECK(nodes[0].name == "mon1");
    CHECK(nodes[0].address == "10.77.0.21:10051");
    CHECK(nodes[0].status == "active");
    CHECK(nodes[1].name == "mon2");
    CHECK(nodes[1].status == "standby");
    CHECK(parse_ha_status("").empty());
    CHECK(parse_ha_status("cannot perform runtime control command: HA is disabled\n").empty());
}
