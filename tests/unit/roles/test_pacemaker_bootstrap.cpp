// The active-passive db pair's bootstrap pieces: who configures, the VIP, the secrets' forms.
#include <stormnode/cluster/cluster.hpp>
#include <stormnode/common/temp_dir.hpp>
#include <stormnode/common/yaml_diagnostics.hpp>
#include <stormnode/pacemaker/bootstrap.hpp>

#include <catch2/catch.hpp>
#include <sys/stat.h>

namespace fs = std::filesystem;
using namespace stormnode;
using namespace stormnode::roles;

namespace {

Cluster pair(const std::string& vips) {
    Diagnostics diags("cluster.yaml");
    auto cluster = parse_cluster(
        YAML::Load(
            "name: pg\n"
            "secrets: pg.secrets.yaml\n"
            "members:\n"
            "  - {hostname: q-1, address: 10.0.0.3, roles: [quorum]}\n"
            "  - {hostname: pg-2, address: 10.0.0.2, roles: [\"db:active-passive\"]}\n"
            "  - {hostname: pg-1, address: 10.0.0.1, roles: [\"db:active-passive\"]}\n" +
            vips),
        nullptr,
        diags);
    INFO(diags.to_string());
    REQUIRE(diags.ok());
    return cluster;
}

}  // namespace

TEST_CASE(
    "the first db member of cluster.yaml configures the pair, whatever the names", "[roles][pacemaker]") {
    const auto cluster = pair("");
    const ClusterMember* first = pacemaker_configuring_member(cluster);
    REQUIRE(first != nullptr);
    CHECK(first->hostname == "pg-2");  // the file's order, not the names'
    CHECK(pacemaker_configuring_member(Cluster{}) == nullptr);
}

TEST_CASE("the pair's VIP is the one named db", "[roles][pacemaker]") {
    CHECK_FALSE(db_vip_address(pair("")));
    CHECK_FALSE(db_vip_address(pair("vips:\n  - {name: mgmt, address: 10.0.0.9}\n")));
    CHECK(
        db_vip_address(
            pair("vips:\n  - {name: mgmt, address: 10.0.0.9}\n  - {name: db, address: 10.0.0.10}\n")) ==
        "10.0.0.10");
}

TEST_CASE("corosync's authkey is the decoded secret, at least knet's 128 bytes", "[roles][pacemaker]") {
    std::string hex;
    for (int i = 0; i < 256; ++i) {
        hex += i % 2 == 0 ? "0a" : "Ff";
    }
    const auto key = corosync_authkey(hex);
    REQUIRE(key);
    CHECK(key->size() == 256);
    CHECK(static_cast<unsigned char>((*key)[0]) == 0x0a);
    CHECK(static_cast<unsigned char>((*key)[1]) == 0xff);
    CHECK_FALSE(corosync_authkey(hex.substr(0, 254)));  // 127 bytes
    CHECK_FALSE(corosync_authkey(hex.substr(0, 257)));  // odd
    CHECK_FALSE(corosync_authkey("zz" + hex.substr(2)));
}

TEST_CASE("the replication passfile escapes libpq's separators", "[roles][pacemaker]") {
    CHECK(
        replication_passfile({"10.0.0.10", "10.0.0.1"}, "s3cret") ==
        "10.0.0.10:5432:*:replicator:s3cret\n10.0.0.1:5432:*:replicator:s3cret\n");
    CHECK(replication_passfile({"h"}, "a:b\\c") == "h:5432:*:replicator:a\\:b\\\\c\n");
}

TEST_CASE("the replication role's statement is one line with the password quoted", "[roles][pacemaker]") {
    const auto sql = replication_role_sql("it's");
    CHECK(sql.find('\n') == sql.size() - 1);  // postgres --single ends a statement at a newline
    CHECK(sql.find("PASSWORD 'it''s'") != std::string::npos);
    CHECK(sql.find("CREATE ROLE replicator") != std::string::npos);
    CHECK(sql.find("WITH REPLICATION LOGIN") != std::string::npos);
}

TEST_CASE("postgres --single's failed statements are found in its output", "[roles][pacemaker]") {
    CHECK_FALSE(single_user_error("\nPostgreSQL stand-alone backend 15.20\nbackend> backend> \n"));
    CHECK(
        single_user_error("backend> 2026-11-28 ERROR:  syntax error at or near \"x\"\nbackend> ") ==
        "backend> 2026-11-28 ERROR:  syntax error at or near \"x\"");
    CHECK(single_user_error("FATAL:  role \"postgres\" does not exist\n"));
}

TEST_CASE(
    "the cluster's secrets are read for the node, and refused when others may read them",
    "[roles][pacemaker]") {
    TempDir dir{"stormnode-secrets"};
    auto cluster = pair("");
    cluster.file = (dir.path() / "cluster.yaml").string();
    CHECK_THROWS_WITH(load_cluster_secrets(Cluster{}), Catch::Contains("no 'secrets' file"));
    write_file_atomic(
        dir.path() / "pg.secrets.yaml",
        "corosync-authkey: abcd\npostgresql-replication-password: pw\n",
        0600);
    const auto secrets = load_cluster_secrets(cluster);
    CHECK(secrets.at("corosync-authkey") == "abcd");
    CHECK(secrets.at("postgresql-replication-password") == "pw");
    REQUIRE(::chmod((dir.path() / "pg.secrets.yaml").c_str(), 0640) == 0);
    CHECK_THROWS_WITH(load_cluster_secrets(cluster), Catch::Contains("readable by others"));
    write_file_atomic(dir.path() / "pg.secrets.yaml", "corosync-authkey: [a, b]\n", 0600);
    CHECK_THROWS_WITH(load_cluster_secrets(cluster), Catch::Contains("not a non-empty string"));
}
