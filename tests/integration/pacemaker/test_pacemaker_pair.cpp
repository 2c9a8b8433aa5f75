// A real active-passive PostgreSQL pair formed by storm-roled: db1 and db2 (role db, variant
// active-passive: corosync + corosync-qdevice + pacemaker, PostgreSQL 15 under PAF with a VIP) and q1
// (role quorum: corosync-qnetd) in three systemd-nspawn containers on a private bridge, sharing one
// cluster.yaml and its secrets made by `stormctl cluster init`. Issue 8, integration scenario (b). The
// dead primary then comes back with its datadir (a host directory, its disk) and rejoins as a standby:
// rewound by storm-roled; then the other way round with its WAL lost, rebuilt by a base backup.
// Every assertion reads the engines' own truth (corosync-quorumtool, corosync-qdevice-tool,
// corosync-qnetd-tool, crm_mon --output-as=xml, ip addr, psql through the VIP) or storm-roled's state.
#define CATCH_CONFIG_RUNNER
#include <stormnode/common/error.hpp>
#include <stormnode/common/subprocess.hpp>
#include <stormnode/common/temp_dir.hpp>
#include <stormnode/test/cluster_member.hpp>
#include <stormnode/test/nspawn_container.hpp>
#include <stormnode/test/roled_node.hpp>
#include <stormnode/test/rootfs_cache.hpp>
#include <stormnode/test/test_network.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <map>
#include <memory>
#include <set>
#include <sstream>

using namespace std::chrono_literals;
namespace st = stormnode::test;

namespace {

using Clock = std::chrono::steady_clock;
using st::ClusterFiles;
using st::Member;
using st::state_word;

const Member kDb1{"db1", "10.78.0.11"};
const Member kDb2{"db2", "10.78.0.12"};
const Member kQ1{"q1", "10.78.0.13"};
const std::string kVip = "10.78.0.20";
const std::string kSecretsFile = "/etc/stormnode/cluster.secrets.yaml";
// A client of the database, made by the test on the primary (the VIP's pg_hba rule: by password).
const std::string kClient =
    "host=" + kVip + " dbname=stormtest user=stormtest password=stormtest connect_timeout=2";

// cluster.yaml and its secrets file, as an operator makes them.
ClusterFiles make_cluster_files() {
    return st::init_cluster(
        STORMNODE_STORMCTL_BINARY,
        STORMNODE_SOURCE_DIR,
        {"--name",
         "stormtest-pg",
         "--member",
         kDb1.hostname + "," + kDb1.address + ",a,db:active-passive",
         "--member",
         kDb2.hostname + "," + kDb2.address + ",b,db:active-passive",
         "--member",
         kQ1.hostname + "," + kQ1.address + ",c,quorum",
         "--vip",
         "db=" + kVip});
}
// A db member's /var/lib/postgresql (the datadir and the passfile) on the host, starting as the rootfs
// has it: it outlives the container, as a disk outlives a power cut.
class PostgresDisk {
public:
    PostgresDisk() {
        const auto copied = stormnode::run(stormnode::Command{
            .argv =
                {"cp", "-a", (st::cluster_rootfs().tree / "var/lib/postgresql").string(), path().string()},
            .timeout = 60s});
        if (!copied.ok()) {
            throw stormnode::Error(
                stormnode::Errc::io, "copying the rootfs's /var/lib/postgresql: " + copied.err);
        }
    }
    [[nodiscard]] std::filesystem::path path() const { return dir_.path() / "postgresql"; }

private:
    stormnode::TempDir dir_{"stormnode-pgdisk"};
};

// disk: the db member's /var/lib/postgresql (none for q1).
st::RoledOptions node_options(
    const Member& member,
    const std::filesystem::path& netns,
    const ClusterFiles& files,
    const PostgresDisk* disk) {
    auto o =
        st::member_options(member, netns, files.cluster_yaml, STORMNODE_ROLED_BINARY, STORMNODE_SOURCE_DIR);
    o.start = false;  // the secrets go in first
    if (member.hostname == kQ1.hostname) {
        o.roles = {"quorum"};
    } else {
        o.roles = {"db"};
        o.variants = {{"db", "active-passive"}};
        // Containers have no fence device: the one setting that turns fencing off (db/pacemaker.crm).
        o.variables["pacemaker_stonith_enabled"] = "false";
        o.binds.push_back({.host = disk->path(), .container = "/var/lib/postgresql", .read_only = false});
    }
    return o;
}

// A member's node booted with the cluster's secrets written before storm-roled starts.
std::unique_ptr<st::RoledNode> boot_member(
    const Member& member,
    const std::filesystem::path& netns,
    const ClusterFiles& files,
    const PostgresDisk* disk) {
    auto node = std::make_unique<st::RoledNode>(node_options(member, netns, files, disk));
    node->container().write_file(kSecretsFile, files.secrets_yaml, 0600);
    node->start_roled();
    return node;
}

std::string journal_of(st::RoledNode& node, const std::vector<std::string>& units) {
    std::vector<std::string> argv{"journalctl", "--no-pager", "-o", "short-monotonic", "-n", "400"};
    for (const auto& unit : units) {
        argv.insert(argv.end(), {"-u", unit});
    }
    return node.container().exec(argv).out;
}

std::string cluster_diagnostics(st::RoledNode& node) {
    return node.diagnostics() + "--- storm-roled, corosync, qdevice, pacemaker ---\n" +
           journal_of(
               node,
               {"storm-roled.service",
                "corosync.service",
                "corosync-qdevice.service",
                "pacemaker.service",
                "corosync-qnetd.service"}) +
           "--- crm_mon ---\n" + node.container().exec({"crm_mon", "-1", "-r", "-f"}).out +
           "--- pacemaker.log ---\n" +
           node.container().exec({"tail", "-n", "150", "/var/log/pacemaker/pacemaker.log"}).out;
}

// Waits until State's word is one of words; a "failed" or a timeout comes with the node's journal.
std::string wait_word(
    st::RoledNode& node,
    const std::set<std::string>& words,
    std::chrono::seconds timeout,
    const std::string& what) {
    std::string state;
    try {
        state = node.wait_for_state(
            [&](const std::string& s) { return words.contains(state_word(s)); }, timeout, what);
    } catch (const std::exception& e) {
        FAIL(what << ": " << e.what() << "\n" << cluster_diagnostics(node));
    }
    if (state_word(state) == "failed") {
        UNSCOPED_INFO(what << ": State " << state << "\n" << cluster_diagnostics(node));
    }
    return state_word(state);
}

double seconds_since(Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
}

// Where the time goes, on stderr as it happens (ctest keeps it in the log).
void progress(Clock::time_point start, const char* what) {
    std::fprintf(stderr, "[%6.1f s] %s\n", seconds_since(start), what);
}

// An attribute's value inside one XML start tag ("" when absent).
std::string attribute(const std::string& tag, const std::string& name) {
    const auto at = tag.find(" " + name + "=\"");
    if (at == std::string::npos) {
        return {};
    }
    const auto begin = at + name.size() + 3;
    return tag.substr(begin, tag.find('"', begin) - begin);
}

// crm_mon --output-as=xml's <resource> elements: id, role and the nodes running it.
struct ResourceRow {
    std::string id;
    std::string role;
    std::vector<std::string> nodes;
};

std::vector<ResourceRow> crm_resources(st::RoledNode& node) {
    const auto result = node.container().exec({"crm_mon", "-1", "--output-as=xml"});
    INFO(result.err);
    REQUIRE(result.ok());
    const std::string& xml = result.out;
    std::vector<ResourceRow> rows;
    for (auto at = xml.find("<resource "); at != std::string::npos; at = xml.find("<resource ", at + 1)) {
        const auto tag_end = xml.find('>', at);
        const std::string tag = xml.substr(at, tag_end - at);
        ResourceRow row{attribute(tag, "id"), attribute(tag, "role"), {}};
        if (xml[tag_end - 1] != '/') {
            const auto close = xml.find("</resource>", tag_end);
            const std::string body = xml.substr(tag_end, close - tag_end);
            for (auto n = body.find("<node "); n != std::string::npos; n = body.find("<node ", n + 1)) {
                row.nodes.push_back(attribute(body.substr(n, body.find('>', n) - n), "name"));
            }
        }
        rows.push_back(row);
    }
    return rows;
}

// The nodes where crm_mon shows resource id in role.
std::vector<std::string> running(
    const std::vector<ResourceRow>& rows, const std::string& id, const std::string& role) {
    std::vector<std::string> nodes;
    for (const auto& row : rows) {
        if (row.id == id && row.role == role) {
            nodes.insert(nodes.end(), row.nodes.begin(), row.nodes.end());
        }
    }
    return nodes;
}

bool holds_vip(st::RoledNode& node) {
    const auto result = node.container().exec({"ip", "-o", "-4", "addr", "show"});
    return result.ok() && result.out.find(" " + kVip + "/") != std::string::npos;
}

stormnode::ProcessResult psql_as_postgres(
    st::RoledNode& node,
    const std::string& database,
    const std::string& sql,
    std::chrono::seconds timeout = 60s) {
    return node.container().exec(
        {"runuser",
         "-u",
         "postgres",
         "--",
         "psql",
         "-X",
         "-v",
         "ON_ERROR_STOP=1",
         "-At",
         "-d",
         database,
         "-c",
         sql},
        timeout);
}

// Both ends of a replication that does not come: what each server says of it.
std::string replication_diagnostics(st::RoledNode& primary, st::RoledNode& standby) {
    const auto expanded = [](st::RoledNode& node, const std::string& sql) {
        const auto result = node.container().exec(
            {"runuser", "-u", "postgres", "--", "psql", "-X", "-x", "-d", "postgres", "-c", sql});
        return result.out + result.err;
    };
    return "--- " + primary.container().name() + ": pg_stat_replication ---\n" +
           expanded(primary, "SELECT *, pg_current_wal_lsn() FROM pg_stat_replication") + "--- " +
           standby.container().name() + ": pg_stat_wal_receiver ---\n" +
           expanded(standby, "SELECT *, pg_last_wal_replay_lsn() FROM pg_stat_wal_receiver") +
           standby.container()
               .exec(
                   {"runuser",
                    "-u",
                    "postgres",
                    "--",
                    "/usr/lib/postgresql/15/bin/pg_controldata",
                    "-D",
                    "/var/lib/postgresql/15/main"})
               .out;
}

stormnode::ProcessResult psql_via_vip(st::RoledNode& client, const std::string& sql) {
    return client.container().exec({"psql", "-X", "-v", "ON_ERROR_STOP=1", "-At", kClient, "-c", sql}, 10s);
}

// Until PostgreSQL accepts connections on the VIP, seen from the client.
void wait_for_vip(st::RoledNode& client, st::RoledNode& member, std::chrono::seconds timeout) {
    const auto deadline = Clock::now() + timeout;
    std::string last;
    while (Clock::now() < deadline) {
        const auto result =
            client.container().exec({"pg_isready", "-q", "-h", kVip, "-p", "5432", "-t", "2"}, 10s);
        if (result.ok()) {
            return;
        }
        last = "pg_isready exit " + std::to_string(result.exit_status);
    }
    FAIL(
        "PostgreSQL did not answer on the VIP within " << timeout.count() << " s (" << last << ")\n"
                                                       << cluster_diagnostics(member));
}

// Writes through the VIP from the client until one succeeds (each attempt bounded by connect_timeout);
// returns when it did.
void write_through_vip(
    st::RoledNode& client, st::RoledNode& member, const std::string& value, std::chrono::seconds timeout) {
    const auto deadline = Clock::now() + timeout;
    std::string last;
    while (Clock::now() < deadline) {
        const auto result = psql_via_vip(client, "INSERT INTO writes (node) VALUES ('" + value + "')");
        if (result.ok()) {
            return;
        }
        last = result.err;
    }
    FAIL(
        "no write through the VIP within "
        << timeout.count() << " s; last error: " << last << "\n--- qnetd ---\n"
        << client.container().exec({"corosync-qnetd-tool", "-l", "-v"}).out << "\n--- "
        << member.container().name() << " ---\n"
        << member.container().exec({"corosync-quorumtool", "-s"}).out
        << member.container().exec({"corosync-qdevice-tool", "-sv"}).out << cluster_diagnostics(member));
}

// "Key:   value" lines of the corosync tools: the value of the first line naming key ("" when none).
std::string field(const std::string& text, const std::string& key) {
    std::istringstream lines(text);
    for (std::string line; std::getline(lines, line);) {
        const auto begin = line.find_first_not_of(" \t");
        if (begin != std::string::npos && line.compare(begin, key.size() + 1, key + ":") == 0) {
            const auto value = line.find_first_not_of(" \t", begin + key.size() + 1);
            return value == std::string::npos ? std::string() : line.substr(value);
        }
    }
    return {};
}

// How many "Key:   value" lines name key with exactly value (corosync-qnetd-tool -l: one per client).
std::size_t count_fields(const std::string& text, const std::string& key, const std::string& value) {
    std::size_t count = 0;
    std::istringstream lines(text);
    for (std::string line; std::getline(lines, line);) {
        if (field(line, key) == value) {
            ++count;
        }
    }
    return count;
}

std::string corosync_tool(st::RoledNode& node, const std::vector<std::string>& argv) {
    const auto result = node.container().exec(argv);
    INFO(
        argv[0] << " on " << node.container().name() << ": exit " << result.exit_status << "\n"
                << result.out << result.err);
    CHECK(result.ok());
    return result.out;
}

// PAF promotes only a standby the primary's monitor has scored (master-pgsqld > 0, from
// pg_stat_replication, every 15 s); until then it is -1000 and losing the primary leaves no one to
// promote. That readiness is what an operator checks before taking a primary down. Returns the score.
std::string wait_eligible(st::RoledNode& primary, const std::string& standby_name) {
    const auto deadline = Clock::now() + 90s;
    std::string score;
    for (;;) {
        const auto r = primary.container().exec(
            {"crm_attribute",
             "--type",
             "nodes",
             "--node",
             standby_name,
             "--name",
             "master-pgsqld",
             "--query",
             "--quiet"});
        score = r.out;
        while (!score.empty() && (score.back() == '\n' || score.back() == ' ')) {
            score.pop_back();
        }
        if (r.ok() && !score.empty() && score.find_first_not_of("0123456789") == std::string::npos &&
            std::stol(score) > 0) {
            return score;
        }
        if (Clock::now() > deadline) {
            FAIL(
                "the primary never scored the standby for promotion: master-pgsqld on "
                << standby_name << " is '" << score << "'");
        }
    }
}

void in_namespace(const std::filesystem::path& netns, const std::vector<std::string>& argv) {
    std::vector<std::string> command{"nsenter", "--net=" + netns.string()};
    command.insert(command.end(), argv.begin(), argv.end());
    const auto result = stormnode::run(stormnode::Command{.argv = command, .timeout = 10s});
    INFO(stormnode::format_argv(command) << ": " << result.err);
    REQUIRE(result.ok());
}

// Pulls the plug: the container dies at once, and its network link goes dark (the test's namespace
// outlives the container, with the VIP still on its interface).
void power_off(st::RoledNode& node, const std::filesystem::path& netns) {
    node.container().kill();
    in_namespace(netns, {"ip", "link", "set", "host0", "down"});
}

// Powers a member on again with its disk: the addresses that went with the power (the VIP IPaddr2 had put
// on its interface) are gone, and its link is back.
std::unique_ptr<st::RoledNode> power_on(
    const Member& member,
    const std::filesystem::path& netns,
    const ClusterFiles& files,
    const PostgresDisk& disk) {
    in_namespace(netns, {"ip", "addr", "del", kVip, "dev", "host0"});
    in_namespace(netns, {"ip", "link", "set", "host0", "up"});
    return boot_member(member, netns, files, &disk);
}

// Until primary streams to standby_name with everything replayed. PostgreSQL 15 cannot wait for a
// walsender: the primary looks at its own, five times a second for at most 180 s, in one statement
// (pg_stat_clear_snapshot: pg_stat_replication joins the backends' status, which a transaction
// otherwise reads once).
void wait_streaming(st::RoledNode& primary, st::RoledNode& standby, const std::string& standby_name) {
    const auto waited = psql_as_postgres(
        primary,
        "postgres",
        "DO $$ BEGIN FOR i IN 1..900 LOOP PERFORM pg_stat_clear_snapshot(); EXIT WHEN EXISTS (SELECT FROM "
        "pg_stat_replication WHERE application_name = '" +
            standby_name +
            "' AND state = 'streaming' AND replay_lsn >= pg_current_wal_lsn()); PERFORM pg_sleep(0.2); "
            "END LOOP; END $$",
        200s);
    const auto streaming = psql_as_postgres(
        primary, "postgres", "SELECT application_name || ' ' || state FROM pg_stat_replication");
    INFO(
        waited.err << streaming.err << replication_diagnostics(primary, standby) << "\n--- " << standby_name
                   << " ---\n"
                   << cluster_diagnostics(standby));
    REQUIRE(waited.ok());
    REQUIRE(streaming.out == standby_name + " streaming\n");
}

// storm-roled's one record of the rejoin on node, made by method from source; its message.
std::string rejoin_record(st::RoledNode& node, const std::string& method, const std::string& source) {
    const auto records = node.journal({"STORMNODE_PG_REJOIN=" + method});
    INFO(journal_of(node, {"storm-roled.service"}));
    REQUIRE(records.size() == 1);
    CHECK(records.front().at("STORMNODE_PG_SOURCE") == source);
    return records.front().at("MESSAGE");
}

}  // namespace

TEST_CASE(
    "(b) an active-passive PostgreSQL pair moves its VIP and primary when the primary dies",
    "[pacemaker][integration]") {
    st::TestNetwork network;
    const std::map<std::string, std::filesystem::path> netns{
        {kDb1.hostname, network.attach(kDb1.hostname, kDb1.address + "/24")},
        {kDb2.hostname, network.attach(kDb2.hostname, kDb2.address + "/24")},
        {kQ1.hostname, network.attach(kQ1.hostname, kQ1.address + "/24")}};
    (void)st::cluster_rootfs();  // built by the rootfs_cluster fixture; unpacking is not part of the figures
    const ClusterFiles files = make_cluster_files();
    std::map<std::string, std::unique_ptr<PostgresDisk>> disks;
    disks[kDb1.hostname] = std::make_unique<PostgresDisk>();
    disks[kDb2.hostname] = std::make_unique<PostgresDisk>();

    // The three boot at once: the figure is the pair's start, not three boots in a row.
    const auto start = Clock::now();
    std::map<std::string, std::unique_ptr<st::RoledNode>> nodes;
    {
        std::map<std::string, std::future<std::unique_ptr<st::RoledNode>>> booting;
        for (const auto* member : {&kQ1, &kDb1, &kDb2}) {
            const PostgresDisk* disk =
                disks.contains(member->hostname) ? disks.at(member->hostname).get() : nullptr;
            booting[member->hostname] = std::async(std::launch::async, [member, &netns, &files, disk] {
                return boot_member(*member, netns.at(member->hostname), files, disk);
            });
        }
        for (auto& [name, future] : booting) {
            nodes[name] = future.get();
        }
    }
    auto& db1 = *nodes.at(kDb1.hostname);
    auto& db2 = *nodes.at(kDb2.hostname);
    auto& q1 = *nodes.at(kQ1.hostname);

    progress(start, "containers booted, storm-roled started");
    REQUIRE(wait_word(q1, {"healthy", "failed"}, 120s, "q1 (corosync-qnetd) to be healthy") == "healthy");
    progress(start, "q1 healthy");
    REQUIRE(
        wait_word(db1, {"healthy", "failed"}, 180s, "db1 to be healthy (quorate, pacemaker up)") ==
        "healthy");
    REQUIRE(
        wait_word(db2, {"healthy", "failed"}, 180s, "db2 to be healthy (quorate, pacemaker up)") ==
        "healthy");
    progress(start, "db1, db2 healthy");

    // The configuring member (db1) loaded the resources once quorate; Pacemaker elects its DC, promotes
    // one instance and starts the VIP there: PostgreSQL answers on the VIP (pg_isready: accepting
    // connections, each attempt bounded). Then the pair settles: crm_resource --wait returns when the
    // cluster has no action left to run.
    wait_for_vip(q1, db1, 180s);
    progress(start, "VIP answering");
    {
        const auto settle = db1.container().exec({"crm_resource", "--wait", "--timeout=180s"}, 200s);
        INFO("crm_resource --wait: " << settle.out << settle.err << "\n" << cluster_diagnostics(db1));
        REQUIRE(settle.ok());
    }
    const auto rows = crm_resources(db1);
    const auto primaries = running(rows, "pgsqld", "Promoted");
    const auto standbys = running(rows, "pgsqld", "Unpromoted");
    const auto vip_holders = running(rows, "pgsql-vip", "Started");
    {
        INFO(
            "crm_mon:\n"
            << db1.container().exec({"crm_mon", "-1", "-r"}).out << "\n--- db1 ---\n"
            << cluster_diagnostics(db1));
        REQUIRE(primaries.size() == 1);
        CHECK(standbys.size() == 1);
        REQUIRE(vip_holders == primaries);
    }
    const std::string primary_name = primaries.front();
    const std::string standby_name = primary_name == kDb1.hostname ? kDb2.hostname : kDb1.hostname;
    auto& primary = primary_name == kDb1.hostname ? db1 : db2;
    auto& standby = primary_name == kDb1.hostname ? db2 : db1;
    // The VIP is on exactly one node, the primary (the kernel's truth, not only Pacemaker's).
    CHECK(holds_vip(primary));
    CHECK_FALSE(holds_vip(standby));

    // Quorum from the engines: both members quorate with qnetd's vote, qdevice connected over TLS with
    // the cluster's client certificate, qnetd serving the cluster's two nodes and having verified each
    // one's certificate (signed by the cluster's CA, CN = cluster name).
    for (auto* node : {&db1, &db2}) {
        const auto quorum = corosync_tool(*node, {"corosync-quorumtool", "-s"});
        INFO(quorum);
        CHECK(field(quorum, "Quorate") == "Yes");
        CHECK(field(quorum, "Total votes") == "3");  // both members and qnetd's vote
        const auto qdevice = corosync_tool(*node, {"corosync-qdevice-tool", "-sv"});
        INFO(qdevice);
        CHECK(field(qdevice, "State") == "Connected");
        CHECK(field(qdevice, "QNetd host") == kQ1.address + ":5403");
        CHECK(field(qdevice, "TLS") == "Required");
        CHECK(field(qdevice, "TLS active") == "Yes (client certificate sent)");
    }
    {
        const auto qnetd = corosync_tool(q1, {"corosync-qnetd-tool", "-l", "-v"});
        INFO(qnetd);
        CHECK(qnetd.find("Cluster \"stormtest-pg\"") != std::string::npos);
        CHECK(qnetd.find(kDb1.address) != std::string::npos);
        CHECK(qnetd.find(kDb2.address) != std::string::npos);
        CHECK(count_fields(qnetd, "TLS active", "Yes (client certificate verified)") == 2);
        const auto status = corosync_tool(q1, {"corosync-qnetd-tool", "-s"});
        INFO(status);
        CHECK(field(status, "TLS") == "Supported (client certificate required)");
        // The private keys are readable by the daemon's user only: coroqnetd on q1, root (qdevice) on db1.
        CHECK(
            q1.container().exec({"stat", "-c", "%a %U", "/etc/corosync/qnetd/nssdb/key4.db"}).out ==
            "600 coroqnetd\n");
        CHECK(
            db1.container().exec({"stat", "-c", "%a %U", "/etc/corosync/qdevice/net/nssdb/key4.db"}).out ==
            "600 root\n");
    }

    // A client of the database, then a row written through the VIP from q1.
    REQUIRE(psql_as_postgres(primary, "postgres", "CREATE ROLE stormtest LOGIN PASSWORD 'stormtest'").ok());
    REQUIRE(psql_as_postgres(primary, "postgres", "CREATE DATABASE stormtest OWNER stormtest").ok());
    {
        const auto create = psql_via_vip(q1, "CREATE TABLE writes (id serial PRIMARY KEY, node text)");
        INFO(create.err);
        REQUIRE(create.ok());
    }
    write_through_vip(q1, primary, "before failover", 30s);
    const double to_vip = seconds_since(start);
    {
        const auto count = psql_via_vip(q1, "SELECT count(*) FROM writes");
        INFO(count.err);
        CHECK(count.out == "1\n");
    }
    // The standby streams from the primary: it replays the write (asynchronous replication, so it is
    // awaited: the primary reports the standby's replay position).
    {
        const auto deadline = Clock::now() + 60s;
        std::string seen;
        for (;;) {
            const auto r = psql_as_postgres(
                primary,
                "postgres",
                "SELECT application_name || ' ' || state || ' ' || (replay_lsn >= "
                "pg_current_wal_lsn())::text "
                "FROM pg_stat_replication");
            seen = r.out;
            if (r.ok() && r.out == standby_name + " streaming true\n") {
                break;
            }
            if (Clock::now() > deadline) {
                FAIL("the standby did not replay the write: pg_stat_replication says '" << seen << "'");
            }
        }
        const auto on_standby = psql_as_postgres(standby, "stormtest", "SELECT node FROM writes");
        INFO(on_standby.err);
        CHECK(on_standby.out == "before failover\n");
    }

    {
        const std::string eligible = "standby " + standby_name + " eligible for promotion (master-pgsqld " +
                                     wait_eligible(primary, standby_name) + ")";
        progress(start, eligible.c_str());
    }

    power_off(primary, netns.at(primary_name));
    const auto killed = Clock::now();
    write_through_vip(q1, standby, "after failover", 180s);
    const double failover = seconds_since(killed);

    // The survivor is the primary and holds the VIP; both rows are there; storm-roled on it reports the
    // node (corosync quorate with qnetd's vote, pacemaker up) as healthy, never failed.
    {
        const auto settle = standby.container().exec({"crm_resource", "--wait", "--timeout=120s"}, 140s);
        INFO("crm_resource --wait: " << settle.out << settle.err);
        CHECK(settle.ok());
    }
    {
        const auto after = crm_resources(standby);
        INFO("crm_mon after the failover:\n" << standby.container().exec({"crm_mon", "-1", "-r"}).out);
        CHECK(running(after, "pgsqld", "Promoted") == std::vector<std::string>{standby_name});
        CHECK(running(after, "pgsql-vip", "Started") == running(after, "pgsqld", "Promoted"));
        CHECK(holds_vip(standby));
    }
    {
        const auto count = psql_via_vip(q1, "SELECT node FROM writes ORDER BY id");
        INFO(count.err);
        CHECK(count.out == "before failover\nafter failover\n");
    }
    {
        // the survivor alone is quorate with qnetd's vote: 2 of 3
        const auto quorum = corosync_tool(standby, {"corosync-quorumtool", "-s"});
        INFO(quorum);
        CHECK(field(quorum, "Quorate") == "Yes");
        CHECK(field(quorum, "Total votes") == "2");
    }
    CHECK(wait_word(standby, {"healthy", "degraded", "failed"}, 60s, "the survivor's state") != "failed");

    // The old primary powers on again with the datadir it crashed with: a primary on a timeline the new
    // one forked off. storm-roled rewinds it into a standby of the new primary before pacemaker starts
    // there, and PAF starts it as one: it streams from the new primary.
    const auto rejoin_started = Clock::now();
    nodes.at(primary_name).reset();  // what nspawn left of the killed container
    const Member& old_member = primary_name == kDb1.hostname ? kDb1 : kDb2;
    const Member& survivor_member = primary_name == kDb1.hostname ? kDb2 : kDb1;
    nodes[primary_name] = power_on(old_member, netns.at(primary_name), files, *disks.at(primary_name));
    auto& rejoined = *nodes.at(primary_name);
    progress(start, "old primary booted again");
    REQUIRE(
        wait_word(rejoined, {"healthy", "failed"}, 180s, "the old primary to be healthy (rejoined)") ==
        "healthy");
    wait_streaming(standby, rejoined, primary_name);
    const double rejoin = seconds_since(rejoin_started);
    progress(start, "old primary streaming from the new one");
    {
        // storm-roled's record of it: rewound from the new primary, no base backup needed
        std::fprintf(stderr, "storm-roled: %s\n", rejoin_record(rejoined, "pg_rewind", standby_name).c_str());
        const auto in_recovery = psql_as_postgres(rejoined, "postgres", "SELECT pg_is_in_recovery()");
        CHECK(in_recovery.out == "t\n");
        // it replayed the write it missed, made on the new timeline
        const auto replayed = psql_as_postgres(rejoined, "stormtest", "SELECT node FROM writes ORDER BY id");
        INFO(replayed.err);
        CHECK(replayed.out == "before failover\nafter failover\n");
    }
    {
        const auto settle = standby.container().exec({"crm_resource", "--wait", "--timeout=120s"}, 140s);
        INFO("crm_resource --wait: " << settle.out << settle.err);
        CHECK(settle.ok());
        const auto after = crm_resources(standby);
        INFO("crm_mon after the rejoin:\n" << standby.container().exec({"crm_mon", "-1", "-r"}).out);
        CHECK(running(after, "pgsqld", "Promoted") == std::vector<std::string>{standby_name});
        CHECK(running(after, "pgsqld", "Unpromoted") == std::vector<std::string>{primary_name});
        CHECK_FALSE(holds_vip(rejoined));
    }

    // The other way round: the rejoined node is promoted when the primary dies, and this time the dying
    // node's disk loses its WAL (not kept through the power cut): its crash can be neither recovered nor
    // rewound, and storm-roled replaces its datadir with a base backup of the primary.
    {
        const std::string eligible = "rejoined " + primary_name + " eligible for promotion (master-pgsqld " +
                                     wait_eligible(standby, primary_name) + ")";
        progress(start, eligible.c_str());
    }
    power_off(standby, netns.at(standby_name));
    const auto killed_again = Clock::now();
    write_through_vip(q1, rejoined, "after the second failover", 180s);
    const double failover_again = seconds_since(killed_again);
    progress(start, "second failover: the rejoined node is the primary");
    const auto lost_datadir = disks.at(standby_name)->path() / "15/main";
    for (const auto& entry : std::filesystem::directory_iterator(lost_datadir / "pg_wal")) {
        if (entry.is_regular_file()) {
            std::filesystem::remove(entry.path());
        }
    }
    const auto rebuild_started = Clock::now();
    nodes.at(standby_name).reset();
    nodes[standby_name] = power_on(survivor_member, netns.at(standby_name), files, *disks.at(standby_name));
    auto& rebuilt = *nodes.at(standby_name);
    REQUIRE(
        wait_word(
            rebuilt, {"healthy", "failed"}, 180s, "the node that lost its WAL to be healthy (rebuilt)") ==
        "healthy");
    wait_streaming(rejoined, rebuilt, standby_name);
    const double rebuild = seconds_since(rebuild_started);
    progress(start, "rebuilt node streaming from the primary");
    {
        const auto message = rejoin_record(rebuilt, "pg_basebackup", primary_name);
        std::fprintf(stderr, "storm-roled: %s\n", message.c_str());
        CHECK_THAT(message, Catch::Contains("crash recovery and pg_rewind failed"));
        const auto replayed = psql_as_postgres(rebuilt, "stormtest", "SELECT node FROM writes ORDER BY id");
        INFO(replayed.err);
        CHECK(replayed.out == "before failover\nafter failover\nafter the second failover\n");
        // the base backup was exchanged with the datadir, and the old one removed with the scratch directory
        CHECK_FALSE(std::filesystem::exists(lost_datadir.string() + ".storm-rejoin"));
        CHECK(
            rebuilt.container().exec({"stat", "-c", "%a %U", "/var/lib/postgresql/15/main"}).out ==
            "700 postgres\n");
    }

    std::printf("figure: containers start -> VIP answering, write through it: %.1f s\n", to_vip);
    std::printf(
        "figure: primary %s powered off -> VIP answering on %s, write through it: %.1f s\n",
        primary_name.c_str(),
        standby_name.c_str(),
        failover);
    std::printf(
        "figure: old primary %s powered on -> streaming from %s (pg_rewind): %.1f s\n",
        primary_name.c_str(),
        standby_name.c_str(),
        rejoin);
    std::printf(
        "figure: primary %s powered off -> VIP answering on %s, write through it: %.1f s\n",
        standby_name.c_str(),
        primary_name.c_str(),
        failover_again);
    std::printf(
        "figure: %s powered on without its WAL -> streaming from %s (pg_basebackup): %.1f s\n",
        standby_name.c_str(),
        primary_name.c_str(),
        rebuild);
}

int main(int argc, char* argv[]) {
    if (auto reason = st::container_tier_unavailable()) {
        std::fprintf(stderr, "skipped: %s\n", reason->c_str());
        return 77;
    }
    if (auto reason = st::test_network_unavailable()) {
        std::fprintf(stderr, "skipped: %s\n", reason->c_str());
        return 77;
    }
    return Catch::Session().run(argc, argv);
}
