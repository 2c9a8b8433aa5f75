// The active-passive db pair's config rendered from the real catalog templates and a real cluster.yaml,
// and storm-roled's preparation before corosync starts (secrets where the engines read them).
#include "render_fixture.hpp"

#include <stormnode/cluster/node_config.hpp>
#include <stormnode/common/error.hpp>
#include <stormnode/common/temp_dir.hpp>
#include <stormnode/pacemaker/start.hpp>
#include <stormnode/qnetd/nssdb.hpp>

#include <catch2/catch.hpp>
#include <sys/stat.h>

#include <filesystem>

namespace fs = std::filesystem;
using namespace stormnode;
using namespace stormnode::roles;
using namespace stormnode::roles::render_test;

namespace {

const char* const kCluster =
    "name: cloud-pg\n"
    "secrets: cloud-pg.secrets.yaml\n"
    "members:\n"
    "  - {hostname: pg-1, address: 10.77.0.11, zone: a, roles: [\"db:active-passive\"]}\n"
    "  - {hostname: pg-2, address: 10.77.0.12, zone: b, roles: [\"db:active-passive\"]}\n"
    "  - {hostname: q-1, address: 10.77.0.13, zone: c, roles: [quorum]}\n"
    "vips:\n"
    "  - {name: db, address: 10.77.0.20}\n";

const std::string kRole = "db:active-passive";

NodeConfig render_node(
    TempDir& dir, const std::string& hostname, const std::string& address, const std::string& extra = {}) {
    return render_role(
        dir,
        "roles: [db]\nvariants: {db: active-passive}\nhostname: " + hostname +
            "\nvariables: {mgmt_address: " + address + extra + "}\n",
        kCluster,
        kRole);
}

// Values only carried, not parsed, on a test root (no NSS database is built there).
const std::string kQnetdClientSecrets = "qnetd-ca-cert: ca\nqnetd-client-cert: cert\nqnetd-client-key: key\n";

std::string authkey_hex() {
    std::string hex;
    for (int i = 0; i < 256; ++i) {
        hex += "5a";
    }
    return hex;
}

}  // namespace

TEST_CASE(
    "corosync.conf lists the db members with node ids and points qdevice at qnetd", "[pacemaker][render]") {
    TempDir dir{"stormnode-render"};
    render_node(dir, "pg-2", "10.77.0.12");
    const auto conf = read_file(dir.path() / "root/etc/corosync/corosync.conf");
    INFO(conf);
    CHECK(contains(conf, "cluster_name: cloud-pg\n"));
    CHECK(contains(conf, "transport: knet\n"));
    CHECK(contains(conf, "name: pg-1\n\t\tnodeid: 1\n\t\tring0_addr: 10.77.0.11\n"));
    CHECK(contains(conf, "name: pg-2\n\t\tnodeid: 2\n\t\tring0_addr: 10.77.0.12\n"));
    CHECK_FALSE(contains(conf, "q-1"));
    CHECK(contains(conf, "host: 10.77.0.13\n"));
    CHECK(contains(conf, "tls: required\n"));  // the cluster's CA and client certificate (qdevice nssdb)
    CHECK(contains(conf, "algorithm: ffsplit\n"));
    CHECK_FALSE(contains(conf, "two_node"));  // cannot be combined with a quorum device
}

TEST_CASE("PostgreSQL follows the VIP as its node, as PAF requires", "[pacemaker][render]") {
    TempDir dir{"stormnode-render"};
    render_node(dir, "pg-2", "10.77.0.12");
    const auto conf = read_file(dir.path() / "root/etc/postgresql/15/main/conf.d/60-stormnode-paf.conf");
    INFO(conf);
    CHECK(contains(
        conf, "primary_conninfo = 'host=10.77.0.20 port=5432 user=replicator application_name=pg-2 "));
    CHECK(contains(conf, "recovery_target_timeline = 'latest'\n"));
    CHECK(contains(conf, "listen_addresses = '*'\n"));
    CHECK(contains(conf, "\nwal_log_hints = on\n"));  // pg_rewind's requirement (a former primary rejoins)
    const auto hba = read_file(dir.path() / "root/etc/postgresql/15/main/pg_hba.conf");
    INFO(hba);
    // never from itself or the VIP, and before the members' rule (first match wins)
    const auto self = hba.find("10.77.0.12/32        reject");
    const auto vip = hba.find("10.77.0.20/32        reject");
    const auto member = hba.find("replicator  10.77.0.12/32        scram-sha-256");
    CHECK(self != std::string::npos);
    CHECK(vip != std::string::npos);
    CHECK(member != std::string::npos);
    CHECK(self < member);
    CHECK(vip < member);
    CHECK(contains(hba, "replicator  10.77.0.11/32        scram-sha-256"));
}

TEST_CASE("the resources fence unless the node's variables turn fencing off", "[pacemaker][render]") {
    TempDir fenced{"stormnode-render"};
    render_node(fenced, "pg-1", "10.77.0.11");
    const auto crm = read_file(fenced.path() / "root/etc/stormnode/pacemaker/db.crm");
    INFO(crm);
    CHECK(contains(crm, "stonith-enabled=true "));
    CHECK(contains(crm, "primitive pgsqld pgsqlms"));
    CHECK(contains(crm, "promotable=true notify=true"));
    CHECK(contains(crm, "params ip=10.77.0.20 \\\n"));
    CHECK(contains(crm, "colocation vip-with-primary inf: pgsql-vip pgsql-ha:Promoted\n"));

    TempDir unfenced{"stormnode-render"};
    render_node(unfenced, "pg-1", "10.77.0.11", ", pacemaker_stonith_enabled: \"false\"");
    CHECK(contains(
        read_file(unfenced.path() / "root/etc/stormnode/pacemaker/db.crm"), "stonith-enabled=false "));
}

TEST_CASE(
    "before corosync starts the members get the shared authkey and the replication passfile", "[pacemaker]") {
    TempDir dir{"stormnode-render"};
    const auto node = render_node(dir, "pg-2", "10.77.0.12");
    write_file_atomic(
        dir.path() / "cloud-pg.secrets.yaml",
        "corosync-authkey: " + authkey_hex() + "\npostgresql-replication-password: pw\n" +
            kQnetdClientSecrets,
        0600);
    const auto start = prepare_pacemaker_start(node, dir.path() / "root");
    REQUIRE(start);
    CHECK_FALSE(start->configuring);  // pg-1 is
    // certutil runs on the node itself only: a test root gets no NSS database.
    CHECK(contains(start->summary, "qdevice NSS database not built"));
    CHECK_FALSE(fs::exists(dir.path() / "root" / kQdeviceNssdb));
    const auto key = dir.path() / "root" / kCorosyncAuthkey;
    CHECK(read_file(key) == std::string(256, 'Z'));
    struct stat st {};
    REQUIRE(::stat(key.c_str(), &st) == 0);
    CHECK((st.st_mode & 07777) == 0400);
    const auto passfile = dir.path() / "root" / kPostgresPassfile;
    CHECK(
        read_file(passfile) ==
        "10.77.0.20:5432:*:replicator:pw\n10.77.0.11:5432:*:replicator:pw\n"
        "10.77.0.12:5432:*:replicator:pw\n");
    REQUIRE(::stat(passfile.c_str(), &st) == 0);
    CHECK((st.st_mode & 07777) == 0600);
    // Not the configuring member: it loads nothing.
    CHECK_FALSE(configure_pacemaker(node, dir.path() / "root"));
}

TEST_CASE("a missing or short secret stops the start before anything runs", "[pacemaker]") {
    TempDir dir{"stormnode-render"};
    const auto node = render_node(dir, "pg-1", "10.77.0.11");
    write_file_atomic(
        dir.path() / "cloud-pg.secrets.yaml", "corosync-authkey: " + authkey_hex() + "\n", 0600);
    CHECK_THROWS_WITH(
        prepare_pacemaker_start(node, dir.path() / "root"),
        Catch::Contains("'postgresql-replication-password' is missing"));
    write_file_atomic(
        dir.path() / "cloud-pg.secrets.yaml",
        "corosync-authkey: abcd\npostgresql-replication-password: pw\n",
        0600);
    CHECK_THROWS_WITH(
        prepare_pacemaker_start(node, dir.path() / "root"), Catch::Contains("at least 128 bytes"));
    // A secrets file from before qdevice's TLS: the client certificate is missing.
    write_file_atomic(
        dir.path() / "cloud-pg.secrets.yaml",
        "corosync-authkey: " + authkey_hex() + "\npostgresql-replication-password: pw\n",
        0600);
    CHECK_THROWS_WITH(
        prepare_pacemaker_start(node, dir.path() / "root"), Catch::Contains("'qnetd-ca-cert' is missing"));
}

TEST_CASE("a node outside cluster.yaml's db members prepares nothing", "[pacemaker]") {
    TempDir dir{"stormnode-render"};
    const auto node = render_node(dir, "pg-9", "10.77.0.19");
    CHECK_FALSE(prepare_pacemaker_start(node, dir.path() / "root"));
    CHECK_FALSE(configure_pacemaker(node, dir.path() / "root"));
}

TEST_CASE("a quorum member's qnetd database comes from the cluster's qnetd secrets", "[pacemaker][qnetd]") {
    TempDir dir{"stormnode-render"};
    write_file_atomic(dir.path() / "node.yaml", "roles: [quorum]\nhostname: q-1\n");
    write_file_atomic(dir.path() / "cluster.yaml", kCluster);
    const auto node = load_node_config(dir.path() / "node.yaml", dir.path() / "cluster.yaml", &catalog());
    // Secrets without qnetd material (a Galera cluster's, or older than qdevice's TLS): as without a cluster.
    write_file_atomic(dir.path() / "cloud-pg.secrets.yaml", "corosync-authkey: abcd\n", 0600);
    const auto own = prepare_qnetd_start(node, dir.path() / "root");
    REQUIRE(own);
    CHECK(contains(*own, "keeps this node's own NSS database: cluster cloud-pg has no qnetd-ca-cert secret"));
    // The CA without the server certificate is a broken secrets file, not an old one.
    write_file_atomic(dir.path() / "cloud-pg.secrets.yaml", "qnetd-ca-cert: ca\n", 0600);
    CHECK_THROWS_WITH(
        prepare_qnetd_start(node, dir.path() / "root"), Catch::Contains("'qnetd-server-cert' is missing"));
    write_file_atomic(
        dir.path() / "cloud-pg.secrets.yaml",
        "qnetd-ca-cert: ca\nqnetd-server-cert: cert\nqnetd-server-key: key\n",
        0600);
    const auto done = prepare_qnetd_start(node, dir.path() / "root");
    REQUIRE(done);
    CHECK(contains(*done, "qnetd NSS database not built"));
    CHECK_FALSE(fs::exists(dir.path() / "root" / kQnetdNssdb));
    // A db member has no qnetd to prepare.
    CHECK_FALSE(prepare_qnetd_start(render_node(dir, "pg-1", "10.77.0.11"), dir.path() / "root"));
}
