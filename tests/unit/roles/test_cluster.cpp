// The cluster model: the good example, the malformed corpus in tests/data/cluster/bad/ (each <case>.yaml
// with the diagnostics its <case>.expect lists, "file:line:col: message substring"), template data,
// and init's secrets.
#include "../expect_file.hpp"
#include "cluster_fixture.hpp"

#include <stormnode/cluster/cluster.hpp>
#include <stormnode/common/error.hpp>
#include <stormnode/common/temp_dir.hpp>

#include <catch2/catch.hpp>
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <regex>

namespace fs = std::filesystem;
using namespace stormnode;
using namespace stormnode::roles;

namespace {

const fs::path data_dir = fs::path(STORMNODE_TEST_DATA) / "cluster";

const Catalog& catalog() {
    return stormnode::roles::test::real_catalog();
}

using stormnode::test::Expected;
using stormnode::test::read_expect;

}  // namespace

TEST_CASE("the example cluster is valid and its model is what it says", "[roles][cluster]") {
    Diagnostics diags;
    const auto cluster = read_cluster_file(data_dir / "good" / "galera-pair.yaml", &catalog(), diags);
    INFO(diags.to_string());
    REQUIRE(cluster);
    CHECK(cluster->name == "cloud-db");
    CHECK(cluster->members.size() == 5);
    CHECK(cluster->members_with("db").size() == 2);
    CHECK(cluster->find("q-1")->zone == "c");
    CHECK(cluster->secrets_path() == data_dir / "good" / "galera-pair.secrets.yaml");
    const auto secrets = needed_secrets(*cluster, catalog());
    CHECK(std::find(secrets.begin(), secrets.end(), "galera-sst-password") != secrets.end());

    const YAML::Node data = cluster_template_data(*cluster);
    CHECK(data["name"].as<std::string>() == "cloud-db");
    CHECK(data["galera_nodes"].as<std::string>() == "10.0.0.1,10.0.0.2");
    CHECK(data["vip"].as<std::string>() == "10.0.0.10");
    CHECK(data["vrrp_router_id"].as<std::string>() == "51");
    REQUIRE(data["members"]["quorum"].size() == 1);
    CHECK(data["members"]["quorum"][0]["address"].as<std::string>() == "10.0.0.3");
    CHECK(data["members"]["controller"].size() == 2);
}

// NOLINTNEXTLINE(readability-function-cognitive-complexity): Catch2's assertion macros
TEST_CASE(
    "every malformed cluster.yaml produces the diagnostics it is paired with", "[roles][cluster][golden]") {
    std::vector<std::string> names;
    for (const auto& entry : fs::directory_iterator(data_dir / "bad")) {
        if (entry.path().extension() == ".expect") {
            names.push_back(entry.path().stem().string());
        }
    }
    std::sort(names.begin(), names.end());
    REQUIRE(names.size() >= 10);
    for (const auto& name : names) {
        DYNAMIC_SECTION(name) {
            const fs::path input = data_dir / "bad" / (name + ".yaml");
            REQUIRE(fs::exists(input));
            const auto expected = read_expect(data_dir / "bad" / (name + ".expect"));
            REQUIRE_FALSE(expected.empty());
            Diagnostics diags(input.string());
            CHECK_FALSE(read_cluster_file(input, &catalog(), diags));
            INFO("got:\n" << diags.to_string());
            const auto matches = [&](const Expected& want, const Diagnostic& d) {
                return fs::path(d.file).filename() == want.file && d.line == want.line &&
                       d.column == want.column && d.message.find(want.message) != std::string::npos;
            };
            for (const auto& want : expected) {
                INFO(
                    "expected " << want.file << ":" << want.line << ":" << want.column << ": "
                                << want.message);
                CHECK(std::any_of(diags.items().begin(), diags.items().end(), [&](const Diagnostic& d) {
                    return matches(want, d);
                }));
            }
            for (const auto& d : diags.items()) {
                INFO("unexpected " << d.to_string());
                CHECK(std::any_of(expected.begin(), expected.end(), [&](const Expected& want) {
                    return matches(want, d);
                }));
            }
        }
    }
}

TEST_CASE("every case in the malformed cluster corpus has its .expect file", "[roles][cluster][golden]") {
    for (const auto& entry : fs::directory_iterator(data_dir / "bad")) {
        if (entry.path().extension() != ".expect") {
            INFO(entry.path().string());
            CHECK(fs::exists(data_dir / "bad" / (entry.path().stem().string() + ".expect")));
        }
    }
}

TEST_CASE("init writes cluster.yaml and generates the secrets once, 0600", "[roles][cluster]") {
    TempDir dir{"stormnode-cluster"};
    const auto file = dir.path() / "site" / "cluster.yaml";
    fs::create_directories(file.parent_path());
    Cluster cluster;
    cluster.name = "dbc";
    cluster.members = {
        {"db-1", "10.0.0.1", "a", {{"db"}}},
        {"db-2", "10.0.0.2", "b", {{"db"}}},
        {"q-1", "10.0.0.3", "c", {{"quorum"}}}};
    const auto made = write_new_cluster(file, cluster, catalog());
    CHECK(made.created);
    CHECK(made.added == needed_secrets(load_cluster(file, &catalog()), catalog()));
    const auto written = load_cluster(file, &catalog());
    CHECK(written.members.size() == 3);
    CHECK(written.secrets == "cluster.secrets.yaml");
    const auto secrets_path = written.secrets_path();
    struct stat st {};
    REQUIRE(::stat(secrets_path.c_str(), &st) == 0);
    CHECK((st.st_mode & 07777) == 0600);
    Diagnostics diags;
    check_cluster_secrets(written, catalog(), diags);
    INFO(diags.to_string());
    CHECK(diags.ok());
    const std::string first = read_file(secrets_path);
    const YAML::Node values = YAML::Load(first);
    CHECK(values["galera-sst-password"].as<std::string>().size() == 64);
    CHECK(values["galera-sst-password"].as<std::string>() != values["db-root-password"].as<std::string>());
    // The secrets are not in cluster.yaml.
    CHECK(read_file(file).find(values["db-root-password"].as<std::string>()) == std::string::npos);
    // A Galera pair with garbd: no corosync-qdevice, so none of qnetd's TLS material, and none of the
    // PostgreSQL pair's secrets.
    for (const auto& entry : values) {
        INFO(entry.first.as<std::string>());
        CHECK(entry.first.as<std::string>().rfind("qnetd-", 0) == std::string::npos);
        CHECK(entry.first.as<std::string>() != "corosync-authkey");
        CHECK(entry.first.as<std::string>() != "postgresql-replication-password");
    }
    CHECK(values.size() == 2);  // db-root-password, galera-sst-password

    // Run again: the secrets stay what they were, and the file is not even rewritten.
    const auto again = write_new_cluster(file, cluster, catalog());
    CHECK_FALSE(again.created);
    CHECK(again.added.empty());
    CHECK(read_file(secrets_path) == first);
    struct stat after {};
    REQUIRE(::stat(secrets_path.c_str(), &after) == 0);
    CHECK(after.st_ino == st.st_ino);

    // A secrets file others can read is an error.
    REQUIRE(::chmod(secrets_path.c_str(), 0644) == 0);
    Diagnostics loose;
    check_cluster_secrets(written, catalog(), loose);
    CHECK_THAT(loose.to_string(), Catch::Contains("readable by others: it must be 0600"));
}

// NOLINTNEXTLINE(readability-function-cognitive-complexity): Catch2's assertion macros
TEST_CASE(
    "init adds the secrets an existing file lacks and changes none it holds", "[roles][cluster][qnetd]") {
    TempDir dir{"stormnode-cluster"};
    const auto file = dir.path() / "pg.yaml";
    const Cluster cluster = stormnode::roles::test::pg_pair_cluster();
    // As the version before qdevice's TLS made it: no qnetd-* secrets, a comment, a secret no role needs
    // any more; readable by the group (it is rewritten 0600).
    const auto secrets_path = dir.path() / "pg.secrets.yaml";
    const std::string old_authkey(512, 'a');
    write_file_atomic(
        secrets_path,
        "# made by hand\ncorosync-authkey: " + old_authkey +
            "\npostgresql-replication-password: \"0123abc\"\nold-secret: kept\n",
        0640);

    const auto update = write_new_cluster(file, cluster, catalog());
    CHECK_FALSE(update.created);
    CHECK(
        update.added == std::vector<std::string>{
                            "qnetd-ca-cert",
                            "qnetd-client-cert",
                            "qnetd-client-key",
                            "qnetd-server-cert",
                            "qnetd-server-key"});
    struct stat st {};
    REQUIRE(::stat(secrets_path.c_str(), &st) == 0);
    CHECK((st.st_mode & 07777) == 0600);
    const auto secrets = load_cluster_secrets(load_cluster(file, &catalog()));
    CHECK(secrets.at("corosync-authkey") == old_authkey);
    CHECK(secrets.at("postgresql-replication-password") == "0123abc");
    CHECK(secrets.at("old-secret") == "kept");
    for (const auto& name : update.added) {
        INFO(name);
        REQUIRE(secrets.contains(name));
        CHECK(secrets.at(name).rfind("-----BEGIN ", 0) == 0);
    }
    Diagnostics diags;
    check_cluster_secrets(load_cluster(file, &catalog()), catalog(), diags);
    INFO(diags.to_string());
    CHECK(diags.ok());

    // Nothing lacking now: the file stays byte for byte (and inode) what it is.
    const std::string completed = read_file(secrets_path);
    const auto again = write_new_cluster(file, cluster, catalog());
    CHECK_FALSE(again.created);
    CHECK(again.added.empty());
    CHECK(read_file(secrets_path) == completed);
    struct stat after {};
    REQUIRE(::stat(secrets_path.c_str(), &after) == 0);
    CHECK(after.st_ino == st.st_ino);

    // Part of qnetd's material alone cannot be completed (the CA's key is not kept): refused, untouched.
    write_file_atomic(
        secrets_path,
        "corosync-authkey: " + old_authkey + "\npostgresql-replication-password: pw\nqnetd-ca-cert: |\n  x\n",
        0600);
    const std::string partial = read_file(secrets_path);
    CHECK_THROWS_WITH(
        write_new_cluster(file, cluster, catalog()),
        Catch::Contains(
            "it holds qnetd-ca-cert but not qnetd-client-cert, qnetd-client-key, qnetd-server-cert, "
            "qnetd-server-key") &&
            Catch::Contains("remove every qnetd-* secret"));
    CHECK(read_file(secrets_path) == partial);
}

TEST_CASE("each cluster type needs the secrets its engines use", "[roles][cluster]") {
    const auto needed = [](const std::vector<ClusterMember>& members) {
        Cluster cluster;
        cluster.name = "c";
        cluster.members = members;
        return needed_secrets(cluster, catalog());
    };
    using Names = std::vector<std::string>;
    CHECK(
        needed(
            {{"db-1", "10.0.0.1", "", {{"db"}}},
             {"db-2", "10.0.0.2", "", {{"db", "galera"}}},
             {"q-1", "10.0.0.3", "", {{"quorum"}}}}) == Names{"db-root-password", "galera-sst-password"});
    CHECK(
        needed(
            {{"pg-1", "10.0.0.1", "", {{"db", "active-passive"}}},
             {"pg-2", "10.0.0.2", "", {{"db", "active-passive"}}},
             {"q-1", "10.0.0.3", "", {{"quorum"}}}}) == Names{
                                                            "corosync-authkey",
                                                            "postgresql-replication-password",
                                                            "qnetd-ca-cert",
                                                            "qnetd-client-cert",
                                                            "qnetd-client-key",
                                                            "qnetd-server-cert",
                                                            "qnetd-server-key"});
    // a quorum member alone serves no qdevice client
    CHECK(needed({{"q-1", "10.0.0.3", "", {{"quorum"}}}}).empty());
}

TEST_CASE("init writes nothing for an invalid cluster", "[roles][cluster]") {
    TempDir dir{"stormnode-cluster"};
    const auto file = dir.path() / "cluster.yaml";
    Cluster cluster;
    cluster.name = "dbc";
    cluster.members = {{"db-1", "10.0.0.1", "", {{"db"}}}, {"db-2", "10.0.0.2", "", {{"db"}}}};
    CHECK_THROWS_WITH(write_new_cluster(file, cluster, catalog()), Catch::Contains("needs a quorum member"));
    CHECK_FALSE(fs::exists(file));
    CHECK_FALSE(fs::exists(dir.path() / "cluster.secrets.yaml"));
}
