// `stormctl cluster ...` run as an operator runs it: exit status, stdout and stderr.
#include <stormnode/common/subprocess.hpp>
#include <stormnode/common/temp_dir.hpp>

#include <catch2/catch.hpp>
#include <sys/stat.h>

#include <filesystem>

namespace fs = std::filesystem;
using stormnode::Command;
using stormnode::ProcessResult;

namespace {

const fs::path data_dir = fs::path(STORMNODE_TEST_DATA) / "cluster";
const std::string catalog_dir = (fs::path(STORMNODE_SOURCE_DIR) / "roles" / "catalog").string();

ProcessResult stormctl(std::vector<std::string> args) {
    Command command;
    command.argv = {STORMCTL_PATH, "cluster", "--catalog", catalog_dir};
    command.argv.insert(command.argv.end(), args.begin(), args.end());
    command.timeout = std::chrono::seconds(60);
    ProcessResult result = stormnode::run(command);
    UNSCOPED_INFO(
        "stormctl cluster " << stormnode::format_argv(args) << " -> " << result.exit_status << "\nstdout:\n"
                            << result.out << "stderr:\n"
                            << result.err);
    return result;
}

bool contains(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("cluster validate on a malformed file exits 2 naming file:line:col", "[roles][cli][cluster]") {
    const std::string file = (data_dir / "bad" / "db-pair-without-quorum.yaml").string();
    const auto result = stormctl({"validate", file});
    CHECK(result.exit_status == 2);
    CHECK(contains(result.err, file + ":5:57: a db cluster of two (db-1, db-2) needs a quorum member"));
    CHECK(contains(result.err, "1 problem found"));
    CHECK(result.out.empty());
}

TEST_CASE(
    "cluster init then validate: secrets generated once, 0600, apart from cluster.yaml",
    "[roles][cli][cluster]") {
    stormnode::TempDir dir{"stormctl-cluster"};
    const std::string file = (dir.path() / "dbc.yaml").string();
    const auto made = stormctl(
        {"init",
         "--name",
         "dbc",
         "--member",
         "db-1,10.0.0.1,a,db",
         "--member",
         "db-2,10.0.0.2,b,db:galera",
         "--member",
         "q-1,10.0.0.3,c,quorum",
         "-o",
         file});
    REQUIRE(made.exit_status == 0);
    CHECK(contains(made.out, "(generated, 0600)"));
    const auto secrets = dir.path() / "dbc.secrets.yaml";
    struct stat st {};
    REQUIRE(::stat(secrets.c_str(), &st) == 0);
    CHECK((st.st_mode & 07777) == 0600);
    CHECK(contains(stormnode::read_file(file), "secrets: dbc.secrets.yaml"));

    const auto checked = stormctl({"validate", file});
    CHECK(checked.exit_status == 0);
    CHECK(contains(checked.out, "valid: cluster dbc, 3 members in 3 zones, 0 VIPs"));

    const auto again = stormctl(
        {"init",
         "--name",
         "dbc",
         "--member",
         "db-1,10.0.0.1,a,db",
         "--member",
         "db-2,10.0.0.2,b,db",
         "--member",
         "q-1,10.0.0.3,c,quorum",
         "-o",
         file});
    CHECK(again.exit_status == 0);
    CHECK(contains(again.out, "(kept: it already exists)"));

    // An invalid cluster: exit 2, nothing written.
    const std::string other = (dir.path() / "two.yaml").string();
    const auto refused = stormctl(
        {"init",
         "--name",
         "two",
         "--member",
         "db-1,10.0.0.1,,db",
         "--member",
         "db-2,10.0.0.2,,db",
         "-o",
         other});
    CHECK(refused.exit_status == 2);
    CHECK(contains(refused.err, "needs a quorum member"));
    CHECK_FALSE(fs::exists(other));
    CHECK_FALSE(fs::exists(dir.path() / "two.secrets.yaml"));
}

TEST_CASE("cluster init on an older secrets file says which secrets it added", "[roles][cli][cluster]") {
    stormnode::TempDir dir{"stormctl-cluster"};
    const std::string file = (dir.path() / "pg.yaml").string();
    const auto secrets = dir.path() / "pg.secrets.yaml";
    // The active-passive pair's secrets from before qdevice's TLS.
    stormnode::write_file_atomic(
        secrets,
        "corosync-authkey: " + std::string(512, 'f') + "\npostgresql-replication-password: pw\n",
        0600);
    const std::vector<std::string> init{
        "init",
        "--name",
        "pg",
        "--member",
        "pg-1,10.0.0.1,a,db:active-passive",
        "--member",
        "pg-2,10.0.0.2,b,db:active-passive",
        "--member",
        "q-1,10.0.0.3,c,quorum",
        "-o",
        file};
    const auto made = stormctl(init);
    REQUIRE(made.exit_status == 0);
    CHECK(contains(
        made.out,
        "(kept, added what it lacked: qnetd-ca-cert, qnetd-client-cert, qnetd-client-key, qnetd-server-cert, "
        "qnetd-server-key; 0600)"));
    CHECK(contains(stormnode::read_file(secrets), "postgresql-replication-password: pw\n"));
    CHECK(stormctl({"validate", file}).exit_status == 0);

    const auto again = stormctl(init);
    CHECK(again.exit_status == 0);
    CHECK(contains(again.out, "(kept: it already exists)"));
}
