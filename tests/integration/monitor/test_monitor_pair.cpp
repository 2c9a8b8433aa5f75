// A real Zabbix 6.0 HA pair formed by storm-roled: mon1 and mon2 (role monitor) in two systemd-nspawn
// containers on a private bridge, sharing one cluster.yaml and its secrets (made by stormctl cluster
// init). mon1 holds the pair's database (feature local_db): storm-monitor-db loads the schema there once.
// Issue 8, integration scenario (c). Every assertion reads the engines' own truth: `zabbix_server -R
// ha_status`, the frontend over HTTP, the agents through zabbix_get (zabbix-server-mysql ships it).
#define CATCH_CONFIG_RUNNER
#include <stormnode/common/error.hpp>
#include <stormnode/common/subprocess.hpp>
#include <stormnode/common/temp_dir.hpp>
#include <stormnode/test/cluster_member.hpp>
#include <stormnode/test/nspawn_container.hpp>
#include <stormnode/test/roled_node.hpp>
#include <stormnode/test/rootfs_cache.hpp>
#include <stormnode/test/test_network.hpp>
#include <stormnode/zabbix/bootstrap.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <sstream>

using namespace std::chrono_literals;
namespace st = stormnode::test;
using stormnode::roles::ZabbixHaNode;

namespace {

using Clock = std::chrono::steady_clock;
using st::ClusterFiles;
using st::Member;
using st::state_word;

const Member kMon1{"mon1", "10.77.0.21"};
const Member kMon2{"mon2", "10.77.0.22"};

// cluster.yaml and its secrets file as an operator makes them: stormctl cluster init.
ClusterFiles make_cluster_files() {
    return st::init_cluster(
        STORMNODE_STORMCTL_BINARY,
        STORMNODE_SOURCE_DIR,
        {"--name",
         "stormtest-monitor",
         "--member",
         kMon1.hostname + "," + kMon1.address + ",a,monitor",
         "--member",
         kMon2.hostname + "," + kMon2.address + ",b,monitor"});
}
// A monitor node: the real catalog with the common layer (the agent's config is rendered there), the
// cluster's secrets, and storm-monitor-db where the image puts it.
std::unique_ptr<st::RoledNode> start_node(
    const Member& member, const std::filesystem::path& netns, const ClusterFiles& files, bool local_db) {
    auto o =
        st::member_options(member, netns, files.cluster_yaml, STORMNODE_ROLED_BINARY, STORMNODE_SOURCE_DIR);
    o.roles = {"monitor"};
    if (local_db) {
        o.features = {"local_db"};
    }
    o.catalog_exclude = {};
    o.start = false;
    auto node = std::make_unique<st::RoledNode>(o);
    const auto& c = node->container();
    c.write_file("/etc/stormnode/cluster.secrets.yaml", files.secrets_yaml, 0600);
    c.copy_in(STORMNODE_MONITOR_DB_BINARY, "/usr/libexec/stormnode/storm-monitor-db", 0755);
    c.copy_in(
        std::filesystem::path(STORMNODE_SOURCE_DIR) /
            "roles/engines/zabbix/monitor_db/storm-monitor-db.service",
        "/etc/systemd/system/storm-monitor-db.service");
    // Two units of the common layer the test rootfs lacks. storm-firstboot has done its work: the harness
    // wrote node.yaml. chrony is not in the cluster rootfs; the real unit's own condition (no
    // CAP_SYS_TIME in a container) skips it, and so does this stand-in, which starts nothing.
    c.write_file(
        "/etc/systemd/system/storm-firstboot.service",
        "[Unit]\nDescription=stand-in: first boot done (node.yaml written by the test)\n"
        "[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/true\n");
    c.write_file(
        "/etc/systemd/system/chrony.service",
        "[Unit]\nDescription=stand-in for chrony (not in the test rootfs): skipped as the real one is\n"
        "ConditionCapability=CAP_SYS_TIME\n[Service]\nExecStart=/usr/sbin/chronyd\n");
    st::systemd1::reload(node->bus());
    node->start_roled();
    return node;
}

// Waits until State is healthy (or failed: then with the journals of the units involved).
std::string wait_healthy(st::RoledNode& node, std::chrono::seconds timeout, const std::string& what) {
    const auto state = node.wait_for_state(
        [](const std::string& s) { return state_word(s) == "healthy" || state_word(s) == "failed"; },
        timeout,
        what);
    if (state_word(state) != "healthy") {
        UNSCOPED_INFO(
            what << ": State " << state << "\n"
                 << node.diagnostics()
                 << "--- storm-roled, mariadb, storm-monitor-db, zabbix-server, apache2 ---\n"
                 << node.container()
                        .exec(
                            {"journalctl",
                             "--no-pager",
                             "-o",
                             "short-monotonic",
                             "-n",
                             "300",
                             "-u",
                             "storm-roled.service",
                             "-u",
                             "mariadb.service",
                             "-u",
                             "storm-monitor-db.service",
                             "-u",
                             "zabbix-server.service",
                             "-u",
                             "apache2.service"})
                        .out);
    }
    return state_word(state);
}

double seconds_since(Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
}

// `zabbix_server -R ha_status` on a node: its rows, and the output for messages.
struct HaStatus {
    std::vector<ZabbixHaNode> nodes;
    std::string text;
};

HaStatus ha_status(st::RoledNode& node) {
    const auto result = node.container().exec({"zabbix_server", "-R", "ha_status"}, 30s);
    HaStatus status{
        {},
        "zabbix_server -R ha_status: exit " + std::to_string(result.exit_status) + "\n" + result.out +
            result.err};
    INFO(status.text);
    REQUIRE(result.ok());
    status.nodes = stormnode::roles::parse_ha_status(result.out);
    return status;
}

const ZabbixHaNode* ha_node(const std::vector<ZabbixHaNode>& nodes, const std::string& name) {
    const auto it =
        std::find_if(nodes.begin(), nodes.end(), [&](const ZabbixHaNode& n) { return n.name == name; });
    return it == nodes.end() ? nullptr : &*it;
}

// GET http://<address>/zabbix/ from a node: the status code, then the body.
std::pair<std::string, std::string> http_get(st::RoledNode& from, const std::string& address) {
    const auto result = from.container().exec(
        {"curl",
         "--silent",
         "--max-time",
         "20",
         "--write-out",
         "\n%{http_code}",
         "http://" + address + "/zabbix/"},
        30s);
    const auto last = result.out.rfind('\n');
    if (!result.ok() || last == std::string::npos) {
        return {"curl exit " + std::to_string(result.exit_status) + ": " + result.err, {}};
    }
    return {result.out.substr(last + 1), result.out.substr(0, last)};
}

std::string agent_ping(st::RoledNode& from, const std::string& address) {
    const auto result = from.container().exec({"zabbix_get", "-s", address, "-k", "agent.ping"}, 30s);
    return result.ok() ? result.out
                       : "zabbix_get exit " + std::to_string(result.exit_status) + ": " + result.err;
}

}  // namespace

TEST_CASE(
    "(c) two monitor nodes form a Zabbix HA pair: one active, one standby, frontend and agents answer",
    "[monitor][integration]") {
    st::TestNetwork network;
    const auto mon1_ns = network.attach(kMon1.hostname, kMon1.address + "/24");
    const auto mon2_ns = network.attach(kMon2.hostname, kMon2.address + "/24");
    (void)st::cluster_rootfs();  // built by the rootfs_cluster fixture; unpacking is not part of the figures
    const auto files = make_cluster_files();

    // mon1 first: it holds the database, and its storm-monitor-db loads the schema before its
    // zabbix-server starts. Alone it is the active node.
    const auto start = Clock::now();
    auto mon1 = start_node(kMon1, mon1_ns, files, true);
    REQUIRE(wait_healthy(*mon1, 600s, "mon1 (database, schema, server, frontend)") == "healthy");
    const double to_mon1 = seconds_since(start);
    auto mon2 = start_node(kMon2, mon2_ns, files, false);
    REQUIRE(wait_healthy(*mon2, 300s, "mon2 (server on mon1's database, frontend)") == "healthy");
    const double to_pair = seconds_since(start);

    // The schema was loaded once, by storm-monitor-db on mon1; mon2 runs no database of its own.
    double schema_load = 0;
    {
        const auto log = mon1->container().exec_checked(
            {"journalctl", "--no-pager", "-o", "cat", "-t", "storm-monitor-db"});
        INFO(log.out);
        CHECK(log.out.find("schema loaded (") != std::string::npos);
        const auto times = mon1->container().exec_checked(
            {"systemctl",
             "show",
             "--value",
             "-p",
             "ExecMainStartTimestampMonotonic",
             "-p",
             "ExecMainExitTimestampMonotonic",
             "storm-monitor-db.service"});
        std::istringstream words(times.out);
        double started_us = 0;
        double exited_us = 0;
        words >> started_us >> exited_us;
        schema_load = (exited_us - started_us) / 1e6;
        CHECK(mon2->unit_property("mariadb.service", "ActiveState") == "inactive");
        // Idempotent: started again, it finds the schema there and changes nothing.
        mon1->container().exec_checked({"systemctl", "restart", "storm-monitor-db.service"}, 120s);
        const auto again = mon1->container().exec_checked(
            {"journalctl", "--no-pager", "-o", "cat", "-t", "storm-monitor-db", "-n", "1"});
        CHECK(again.out.find("schema already loaded") != std::string::npos);
    }

    // Zabbix's own HA: both nodes registered in the one database, exactly one active, the other standby.
    // Only the active node runs runtime commands (a standby answers "Runtime commands can be executed
    // only in active mode", exit 0): its ha_status table is the cluster's view.
    const auto status1 = ha_status(*mon1);
    const auto status2 = ha_status(*mon2);
    const bool mon1_active = !status1.nodes.empty();
    const std::string active = mon1_active ? kMon1.hostname : kMon2.hostname;
    const std::string standby = mon1_active ? kMon2.hostname : kMon1.hostname;
    {
        INFO(status1.text << "\n" << status2.text);
        REQUIRE(status1.nodes.empty() != status2.nodes.empty());
        CHECK((mon1_active ? status2 : status1).text.find("only in active mode") != std::string::npos);
        const auto& nodes = (mon1_active ? status1 : status2).nodes;
        REQUIRE(nodes.size() == 2);
        const auto* one = ha_node(nodes, kMon1.hostname);
        const auto* two = ha_node(nodes, kMon2.hostname);
        REQUIRE(one != nullptr);
        REQUIRE(two != nullptr);
        CHECK(one->address == kMon1.address + ":10051");
        CHECK(two->address == kMon2.address + ":10051");
        CHECK(ha_node(nodes, active)->status == "active");
        CHECK(ha_node(nodes, standby)->status == "standby");
    }

    // The frontend on each node answers from the other node: the login page, not the setup wizard nor
    // a database error.
    for (auto [from, to] : {std::pair{mon2.get(), kMon1.address}, std::pair{mon1.get(), kMon2.address}}) {
        const auto [status, body] = http_get(*from, to);
        INFO("http://" << to << "/zabbix/: " << status << "\n" << body.substr(0, 2000));
        CHECK(status == "200");
        CHECK(body.find("name=\"enter\"") != std::string::npos);
        CHECK(body.find("Database error") == std::string::npos);
    }

    // Each agent answers the other monitor member (its Server list, rendered from cluster.yaml), and
    // nobody else: the node's own loopback is not in that list.
    CHECK(agent_ping(*mon1, kMon2.address) == "1\n");
    CHECK(agent_ping(*mon2, kMon1.address) == "1\n");
    CHECK(agent_ping(*mon2, "127.0.0.1") != "1\n");
    CHECK(
        mon2->container()
            .exec_checked({"cat", "/etc/zabbix/zabbix_agentd.conf"})
            .out.find("ServerActive=" + kMon1.address + ";" + kMon2.address + "\n") != std::string::npos);

    // Failover: the active server stops (storm-roled stopped first, or it would start it again at once);
    // the standby sees the node stopped in the database and takes over. ha_status is polled: Zabbix
    // raises no event for it, and each call takes a round trip into the container.
    auto& active_node = active == kMon1.hostname ? *mon1 : *mon2;
    auto& standby_node = active == kMon1.hostname ? *mon2 : *mon1;
    active_node.container().exec_checked({"systemctl", "stop", "storm-roled.service"});
    const auto stopped = Clock::now();
    active_node.container().exec_checked({"systemctl", "stop", "zabbix-server.service"}, 120s);
    const auto deadline = stopped + 120s;
    std::string took_over;
    for (;;) {
        const auto nodes = ha_status(standby_node).nodes;  // empty while it is still standby
        const auto* self = ha_node(nodes, standby);
        const auto* old = ha_node(nodes, active);
        if (self != nullptr && self->status == "active" && old != nullptr) {
            took_over = old->status;
            break;
        }
        REQUIRE(Clock::now() < deadline);
    }
    const double to_failover = seconds_since(stopped);
    CHECK(took_over == "stopped");
    {
        const auto [status, body] =
            http_get(active_node, standby == kMon1.hostname ? kMon1.address : kMon2.address);
        CHECK(status == "200");
    }

    std::printf(
        "figure: container start -> mon1 healthy (database, schema, active server, frontend): %.1f s\n",
        to_mon1);
    std::printf("figure: storm-monitor-db on mon1 (users, schema load): %.1f s\n", schema_load);
    std::printf("figure: container start -> mon1 and mon2 healthy (active + standby): %.1f s\n", to_pair);
    std::printf(
        "figure: active server (%s) stop requested -> %s active: %.1f s\n",
        active.c_str(),
        standby.c_str(),
        to_failover);
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
