// The db and quorum roles' config rendered from the real catalog templates and a real cluster.yaml,
// and the Galera start decision.
#include "render_fixture.hpp"

#include <stormnode/cluster/node_config.hpp>
#include <stormnode/common/error.hpp>
#include <stormnode/common/temp_dir.hpp>
#include <stormnode/galera/bootstrap.hpp>
#include <stormnode/galera/start.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <map>

namespace fs = std::filesystem;
using namespace stormnode;
using namespace stormnode::roles;
using namespace stormnode::roles::render_test;

namespace {

const char* const kCluster =
    "name: cloud-db\n"
    "members:\n"
    "  - {hostname: db-1, address: 10.77.0.11, zone: a, roles: [db]}\n"
    "  - {hostname: db-2, address: 10.77.0.12, zone: b, roles: [db]}\n"
    "  - {hostname: q-1, address: 10.77.0.13, zone: c, roles: [quorum]}\n";

// Renders the role's config files for one node into root; returns the node's config.
NodeConfig render_node(TempDir& dir, const std::string& node_yaml, const std::string& role) {
    return render_role(dir, node_yaml, kCluster, role);
}

}  // namespace

TEST_CASE("a db member's 60-galera.cnf names every Galera member and itself", "[cluster][render]") {
    TempDir dir{"stormnode-render"};
    render_node(dir, "roles: [db]\nhostname: db-2\nzone: b\nvariables: {mgmt_address: 10.77.0.12}\n", "db");
    const auto cnf = read_file(dir.path() / "root/etc/mysql/mariadb.conf.d/60-galera.cnf");
    INFO(cnf);
    CHECK(contains(cnf, "wsrep_on                 = ON\n"));
    CHECK(contains(cnf, "wsrep_provider           = /usr/lib/galera/libgalera_smm.so\n"));
    CHECK(contains(cnf, "wsrep_cluster_name       = cloud-db\n"));
    // db members and garbd: three addresses, the size the db role's degraded check expects
    CHECK(contains(cnf, "wsrep_cluster_address    = gcomm://10.77.0.11,10.77.0.12,10.77.0.13\n"));
    CHECK(contains(cnf, "wsrep_node_name          = db-2\n"));
    CHECK(contains(cnf, "wsrep_node_address       = 10.77.0.12\n"));
    CHECK(contains(cnf, "skip_name_resolve        = ON\n"));
}

TEST_CASE("without cluster.yaml a db node's 60-galera.cnf keeps wsrep off", "[cluster][render]") {
    // "gcomm://" with no address bootstraps a cluster of one: never by accident.
    TempDir dir{"stormnode-render"};
    const auto node =
        render_role(dir, "roles: [db]\nhostname: db-9\nvariables: {mgmt_address: 10.77.0.19}\n", "", "db");
    const auto cnf = read_file(dir.path() / "root/etc/mysql/mariadb.conf.d/60-galera.cnf");
    INFO(cnf);
    CHECK(contains(cnf, "wsrep_on                 = OFF\n"));
}

TEST_CASE("the quorum member's /etc/default/garb points garbd at the db members", "[cluster][render]") {
    TempDir dir{"stormnode-render"};
    render_node(
        dir, "roles: [quorum]\nhostname: q-1\nzone: c\nvariables: {mgmt_address: 10.77.0.13}\n", "quorum");
    const auto garb = read_file(dir.path() / "root/etc/default/garb");
    INFO(garb);
    CHECK(contains(garb, "GALERA_NODES=\"10.77.0.11,10.77.0.12\"\n"));
    CHECK(contains(garb, "GALERA_GROUP=\"cloud-db\"\n"));
    CHECK(contains(garb, "gmcast.listen_addr=tcp://10.77.0.13:4567"));
}

TEST_CASE(
    "the db role's size and desync checks degrade the role and never restart mariadb", "[cluster][catalog]") {
    const auto db = resolve(catalog(), "db", "galera");
    const auto unit = std::find_if(db.body.units.begin(), db.body.units.end(), [](const Unit& u) {
        return u.name == "mariadb.service";
    });
    REQUIRE(unit != db.body.units.end());
    // By what each exec check signals: only "not in a primary component" may restart mariadb (a donor
    // restarted mid-transfer takes the joiner down with it: found by integration.galera_cluster).
    std::map<std::string, bool> degrade_only;
    for (const auto& check : unit->checks) {
        if (check.kind != CheckKind::exec || check.argv.front() != "mariadb") {
            continue;
        }
        const auto& sql = check.argv.back();
        const auto text = sql.find("MESSAGE_TEXT = '");
        REQUIRE(text != std::string::npos);
        degrade_only[sql.substr(text + 16, sql.find('\'', text + 16) - text - 16)] = check.degrade_only;
        // The client splits --execute at ';' unless told another delimiter.
        CHECK(std::find(check.argv.begin(), check.argv.end(), "--delimiter=//") != check.argv.end());
    }
    CHECK(
        degrade_only == std::map<std::string, bool>{
                            {"galera node not serving in a primary component", false},
                            {"galera cluster size below its members", true},
                            {"galera node not synced (a state transfer donor)", true}});
    // Outside a Primary component no check restarts it: storm-clustercheck says so (on_failure: hold).
    const auto hold = std::find_if(unit->checks.begin(), unit->checks.end(), [](const Check& c) {
        return c.kind == CheckKind::exec &&
               c.argv == std::vector<std::string>{"storm-clustercheck", "primary"};
    });
    REQUIRE(hold != unit->checks.end());
    CHECK(hold->holds_restarts);
    CHECK(hold->degrade_only);
}

TEST_CASE("grastate.dat is read for safe_to_bootstrap", "[cluster][galera]") {
    const auto state = parse_grastate(
        "# GALERA saved state\nversion: 2.1\nuuid:    5ee99582-bb8d-11e2-b8e3-23de375c1d30\nseqno:   1234\n"
        "safe_to_bootstrap: 1\n");
    REQUIRE(state);
    CHECK(state->safe_to_bootstrap);
    CHECK(state->seqno == 1234);
    CHECK(state->uuid == "5ee99582-bb8d-11e2-b8e3-23de375c1d30");
    const auto crashed = parse_grastate("version: 2.1\nuuid: x\nseqno: -1\nsafe_to_bootstrap: 0\n");
    REQUIRE(crashed);
    CHECK_FALSE(crashed->safe_to_bootstrap);
    CHECK_FALSE(parse_grastate("version: 2.1\nuuid: x\n"));
    CHECK_FALSE(parse_grastate("safe_to_bootstrap: yes\n"));
}

TEST_CASE("a new Galera cluster is started only when it is safe", "[cluster][galera]") {
    Diagnostics diags("cluster.yaml");
    const auto cluster = parse_cluster(YAML::Load(kCluster), &catalog(), diags);
    REQUIRE(diags.ok());
    CHECK(galera_peers(cluster, "db-1") == std::vector<std::string>{"10.77.0.12", "10.77.0.13"});

    const GraState safe{"u", 10, true};
    const GraState unsafe{"u", -1, false};
    // A db member answers: join, whatever grastate says.
    CHECK(decide_galera_start(cluster, "db-1", safe, {"10.77.0.12"}).start == GaleraStart::join);
    CHECK(
        decide_galera_start(cluster, "db-1", std::nullopt, {"10.77.0.12", "10.77.0.13"}).start ==
        GaleraStart::join);
    // Only garbd (q-1) answers: there is nothing to join; grastate decides as if nobody answered.
    CHECK(decide_galera_start(cluster, "db-1", safe, {"10.77.0.13"}).start == GaleraStart::new_cluster);
    CHECK(decide_galera_start(cluster, "db-1", unsafe, {"10.77.0.13"}).start == GaleraStart::join);
    CHECK(
        decide_galera_start(cluster, "db-1", std::nullopt, {"10.77.0.13"}).start == GaleraStart::new_cluster);
    CHECK(decide_galera_start(cluster, "db-2", std::nullopt, {"10.77.0.13"}).start == GaleraStart::join);
    // Nobody answers: the node that may bootstrap does.
    CHECK(decide_galera_start(cluster, "db-2", safe, {}).start == GaleraStart::new_cluster);
    CHECK(decide_galera_start(cluster, "db-1", unsafe, {}).start == GaleraStart::join);
    // Fresh datadirs: only the first db member of cluster.yaml.
    CHECK(decide_galera_start(cluster, "db-1", std::nullopt, {}).start == GaleraStart::new_cluster);
    CHECK(decide_galera_start(cluster, "db-2", std::nullopt, {}).start == GaleraStart::join);
}

TEST_CASE(
    "storm-roled's Galera start: a new cluster, for one start, only when nobody answers",
    "[cluster][galera]") {
    // Loopback addresses only: nothing outside this machine is ever probed.
    const char* const loopback_cluster =
        "name: lo-db\nmembers:\n"
        "  - {hostname: db-1, address: 127.0.0.1, roles: [db]}\n"
        "  - {hostname: db-2, address: 127.0.0.2, roles: [db]}\n"
        "  - {hostname: q-1, address: 127.0.0.3, roles: [quorum]}\n";
    TempDir dir{"stormnode-galera"};
    write_file_atomic(dir.path() / "node.yaml", "roles: [db]\nhostname: db-1\n");
    write_file_atomic(dir.path() / "cluster.yaml", loopback_cluster);
    const auto node = load_node_config(dir.path() / "node.yaml", dir.path() / "cluster.yaml", &catalog());
    const auto root = dir.path() / "root";
    const auto drop_in = root / kGaleraDropIn;
    const auto new_cluster = root / kGaleraNewClusterEnv;

    // A fresh datadir on the first db member, port 4567 closed on the peers: new cluster.
    const auto fresh = prepare_galera_start(node, root, std::chrono::milliseconds(500));
    REQUIRE(fresh);
    CHECK(fresh->start == GaleraStart::new_cluster);
    CHECK_THAT(read_file(new_cluster), Catch::Contains("\n_WSREP_NEW_CLUSTER=--wsrep-new-cluster\n"));
    // The start that bootstraps removes the file, whatever its outcome: later starts join.
    CHECK_THAT(
        read_file(drop_in), Catch::Contains("ExecStartPost=-+/bin/rm -f /run/mariadb-wsrep-new-cluster"));
    CHECK_THAT(
        read_file(drop_in), Catch::Contains("ExecStopPost=-+/bin/rm -f /run/mariadb-wsrep-new-cluster"));

    // After a crash (safe_to_bootstrap: 0) it must not bootstrap: the file goes.
    fs::create_directories(root / "var/lib/mysql");
    write_file_atomic(
        root / "var/lib/mysql/grastate.dat", "version: 2.1\nuuid: u\nseqno: -1\nsafe_to_bootstrap: 0\n");
    const auto crashed = prepare_galera_start(node, root, std::chrono::milliseconds(500));
    REQUIRE(crashed);
    CHECK(crashed->start == GaleraStart::join);
    CHECK_FALSE(fs::exists(new_cluster));

    // Not a db member: nothing to decide.
    write_file_atomic(dir.path() / "node.yaml", "roles: [quorum]\nhostname: q-1\n");
    const auto quorum = load_node_config(dir.path() / "node.yaml", dir.path() / "cluster.yaml", &catalog());
    CHECK_FALSE(prepare_galera_start(quorum, root, std::chrono::milliseconds(500)));
}

TEST_CASE(
    "a node carrying lb sends Galera writes to one db member, the other as backup", "[cluster][render]") {
    TempDir dir{"stormnode-render"};
    render_node(dir, "roles: [lb]\nhostname: q-1\nzone: c\nvariables: {mgmt_address: 10.77.0.13}\n", "lb");
    const auto cfg = read_file(dir.path() / "root/etc/haproxy/haproxy.cfg");
    INFO(cfg);
    CHECK(contains(cfg, "listen galera\n\tbind 10.77.0.13:3306\n\tmode tcp\n"));
    // clustercheck on each member: 200 only when Synced in a Primary component
    CHECK(contains(cfg, "\toption httpchk GET /\n\thttp-check expect status 200\n"));
    CHECK(contains(
        cfg, "\tdefault-server port 9200 inter 1s fall 2 rise 2 on-marked-down shutdown-sessions\n"));
    CHECK(contains(cfg, "\tserver db-1 10.77.0.11:3306 check\n\tserver db-2 10.77.0.12:3306 check backup\n"));
    CHECK_FALSE(contains(cfg, "q-1 10.77.0.13:3306"));  // garbd holds no data
    CHECK_FALSE(contains(cfg, "listen keystone"));      // not a controller
    // No VIP: keepalived's config is empty, so its unit is skipped (ConditionFileNotEmpty).
    const auto keepalived = read_file(dir.path() / "root/etc/keepalived/keepalived.conf");
    INFO("keepalived.conf: [" << keepalived << "]");
    CHECK(keepalived.empty());
}

TEST_CASE("a db member's clustercheck listens on its management address", "[cluster][render]") {
    TempDir dir{"stormnode-render"};
    render_node(dir, "roles: [db]\nhostname: db-2\nzone: b\nvariables: {mgmt_address: 10.77.0.12}\n", "db");
    const auto env = read_file(dir.path() / "root/etc/default/storm-clustercheck");
    INFO(env);
    CHECK(contains(env, "\nCLUSTERCHECK_LISTEN=10.77.0.12\nCLUSTERCHECK_PORT=9200\n"));
}

TEST_CASE("with a VIP, HAProxy's galera listener binds it and keepalived holds it", "[cluster][render]") {
    TempDir dir{"stormnode-render"};
    const auto node = render_role(
        dir,
        "roles: [lb]\nhostname: lb-1\nzone: c\nvariables: {mgmt_address: 10.77.0.14, mgmt_interface: eth0}\n",
        std::string(kCluster) +
            "  - {hostname: lb-1, address: 10.77.0.14, zone: c, roles: [lb]}\n"
            "vips:\n  - {name: mgmt, address: 10.77.0.20, vrrp_router_id: 51}\n",
        "lb");
    const auto cfg = read_file(dir.path() / "root/etc/haproxy/haproxy.cfg");
    INFO(cfg);
    // transparent: the node not holding the VIP binds it too, ready for a failover
    CHECK(contains(cfg, "listen galera\n\tbind 10.77.0.20:3306 transparent\n"));
    CHECK(contains(cfg, "\tserver db-1 10.77.0.11:3306 check\n\tserver db-2 10.77.0.12:3306 check backup\n"));
    const auto keepalived = read_file(dir.path() / "root/etc/keepalived/keepalived.conf");
    INFO(keepalived);
    CHECK(contains(keepalived, "\tinterface eth0\n\tvirtual_router_id 51\n"));
    CHECK(contains(keepalived, "\t\t10.77.0.20\n"));
}
