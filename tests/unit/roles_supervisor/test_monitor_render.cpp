// The monitor role's config and every node's agent config rendered from the real catalog templates and
// a real cluster.yaml, and storm-roled's preparation before zabbix-server starts (the database password).
#include "render_fixture.hpp"

#include <stormnode/cluster/node_config.hpp>
#include <stormnode/common/error.hpp>
#include <stormnode/common/temp_dir.hpp>
#include <stormnode/zabbix/start.hpp>

#include <catch2/catch.hpp>
#include <sys/stat.h>

#include <filesystem>

namespace fs = std::filesystem;
using namespace stormnode;
using namespace stormnode::roles;
using namespace stormnode::roles::render_test;

namespace {

const char* const kCluster =
    "name: cloud-mon\n"
    "secrets: cloud-mon.secrets.yaml\n"
    "members:\n"
    "  - {hostname: mon-1, address: 10.77.0.21, zone: a, roles: [monitor]}\n"
    "  - {hostname: mon-2, address: 10.77.0.22, zone: b, roles: [monitor]}\n";

NodeConfig render_node(
    TempDir& dir, const std::string& hostname, const std::string& address, bool cluster = true) {
    return render_role(
        dir,
        "roles: [monitor]\nhostname: " + hostname + "\nvariables: {mgmt_address: " + address + "}\n",
        cluster ? kCluster : "",
        "monitor");
}

unsigned mode_of(const fs::path& path) {
    struct stat st {};
    REQUIRE(::stat(path.c_str(), &st) == 0);
    return st.st_mode & 07777U;
}

}  // namespace

TEST_CASE(
    "the second monitor member's server and frontend use the first member's database", "[monitor][render]") {
    TempDir dir{"stormnode-render"};
    render_node(dir, "mon-2", "10.77.0.22");
    const auto conf = read_file(dir.path() / "root/etc/zabbix/zabbix_server.conf");
    INFO(conf);
    CHECK(contains(conf, "\nDBHost=10.77.0.21\n"));
    CHECK(contains(conf, "\nHANodeName=mon-2\n"));
    CHECK(contains(conf, "\nNodeAddress=10.77.0.22:10051\n"));
    CHECK(contains(conf, "\nInclude=/etc/stormnode/secrets/zabbix_server.db.conf\n"));
    CHECK(contains(conf, "\nAllowUnsupportedDBVersions=1\n"));  // bookworm: MariaDB 10.11 with Zabbix 6.0.14
    CHECK_FALSE(contains(conf, "DBPassword"));
    // zabbix_server runs as zabbix, the frontend as www-data: neither file holds the secret
    CHECK(mode_of(dir.path() / "root/etc/zabbix/zabbix_server.conf") == 0644);
    const auto php = read_file(dir.path() / "root/etc/zabbix/zabbix.conf.php");
    INFO(php);
    CHECK(contains(php, "$DB['SERVER']   = '10.77.0.21';"));
    CHECK(contains(php, "file_get_contents('/etc/stormnode/secrets/zabbix-db-password')"));
    const auto apache = read_file(dir.path() / "root/etc/apache2/conf-enabled/zabbix-frontend-php.conf");
    CHECK(contains(apache, "\nInclude /etc/apache2/conf-available/zabbix-frontend-php.conf\n"));
    const auto cnf = read_file(dir.path() / "root/etc/mysql/mariadb.conf.d/60-zabbix.cnf");
    CHECK(contains(cnf, "\nbind-address      = 10.77.0.22\n"));
}

TEST_CASE("every node's agent answers the monitor members and reports to the HA pair", "[monitor][render]") {
    TempDir dir{"stormnode-render"};
    render_node(dir, "mon-1", "10.77.0.21");
    const auto agent = read_file(dir.path() / "root/etc/zabbix/zabbix_agentd.conf");
    INFO(agent);
    CHECK(contains(agent, "\nHostname=mon-1\n"));
    CHECK(contains(agent, "\nServer=10.77.0.21,10.77.0.22\n"));
    CHECK(contains(agent, "\nServerActive=10.77.0.21;10.77.0.22\n"));
}

TEST_CASE("without cluster.yaml the agent answers the node itself only", "[monitor][render]") {
    TempDir dir{"stormnode-render"};
    render_node(dir, "mon-9", "10.77.0.29", false);
    const auto agent = read_file(dir.path() / "root/etc/zabbix/zabbix_agentd.conf");
    INFO(agent);
    CHECK(contains(agent, "\nServer=127.0.0.1\n"));
    CHECK_FALSE(contains(agent, "ServerActive"));
}

TEST_CASE(
    "the database password goes to 0600 files for zabbix_server and the frontend", "[monitor][render]") {
    TempDir dir{"stormnode-render"};
    write_file_atomic(dir.path() / "cloud-mon.secrets.yaml", "zabbix-db-password: 9a8b7c\n", 0600);
    const auto node = render_node(dir, "mon-2", "10.77.0.22");
    const auto done = prepare_monitor_start(node, dir.path() / "root");
    REQUIRE(done);
    CHECK(contains(*done, "mon-1 (local_db)"));
    const auto server = dir.path() / "root" / kZabbixServerDbConf;
    const auto frontend = dir.path() / "root" / kZabbixFrontendDbPassword;
    CHECK(read_file(server) == "DBPassword=9a8b7c\n");
    CHECK(read_file(frontend) == "9a8b7c\n");
    CHECK(mode_of(server) == 0600);
    CHECK(mode_of(frontend) == 0600);
}

TEST_CASE("a missing database secret stops the monitor role before it starts", "[monitor][render]") {
    TempDir dir{"stormnode-render"};
    write_file_atomic(dir.path() / "cloud-mon.secrets.yaml", "other: 1\n", 0600);
    const auto node = render_node(dir, "mon-1", "10.77.0.21");
    CHECK_THROWS_WITH(
        prepare_monitor_start(node, dir.path() / "root"), Catch::Contains("zabbix-db-password"));
}

TEST_CASE("a node that is not a monitor member of cluster.yaml gets no Zabbix secrets", "[monitor][render]") {
    TempDir dir{"stormnode-render"};
    write_file_atomic(dir.path() / "cloud-mon.secrets.yaml", "zabbix-db-password: 9a8b7c\n", 0600);
    const auto node = render_node(dir, "ctl-1", "10.77.0.5");
    CHECK_FALSE(prepare_monitor_start(node, dir.path() / "root"));
    CHECK_FALSE(fs::exists(dir.path() / "root" / kZabbixServerDbConf));
    // and storm-monitor-db refuses to prepare a database there
    CHECK_THROWS_AS(prepare_zabbix_database(node), Error);
}
