// A real MariaDB Galera cluster formed by storm-roled: db1 and db2 (role db, variant galera) and q1
// (role quorum with garbd, and lb: HAProxy in front of the pair) in three systemd-nspawn containers on a
// private bridge, sharing one cluster.yaml. Issue 8, integration scenarios (a) and (d), the HAProxy
// failover figure, and a node outside a Primary component left alone. Every assertion reads the
// engine's own truth (SHOW GLOBAL STATUS, garb.service, HAProxy's choice of backend) or storm-roled's
// Node1 state over D-Bus.
#define CATCH_CONFIG_RUNNER
#include <stormnode/common/error.hpp>
#include <stormnode/common/subprocess.hpp>
#include <stormnode/test/cluster_member.hpp>
#include <stormnode/test/nspawn_container.hpp>
#include <stormnode/test/roled_node.hpp>
#include <stormnode/test/rootfs_cache.hpp>
#include <stormnode/test/test_network.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <set>
#include <sstream>

using namespace std::chrono_literals;
namespace st = stormnode::test;

namespace {

using Clock = std::chrono::steady_clock;
using st::Member;
using st::state_word;

const Member kDb1{"db1", "10.77.0.11"};
const Member kDb2{"db2", "10.77.0.12"};
const Member kQ1{"q1", "10.77.0.13"};

// One cluster.yaml for the three nodes: two db members and the arbitrator, each in its own zone. The
// arbitrator's node also carries HAProxy (lb): writes to db1, db2 its backup.
const char* const kClusterYaml = R"(name: stormtest-galera
members:
  - {hostname: db1, address: 10.77.0.11, zone: a, roles: ["db:galera"]}
  - {hostname: db2, address: 10.77.0.12, zone: b, roles: ["db:galera"]}
  - {hostname: q1, address: 10.77.0.13, zone: c, roles: [quorum, lb]}
)";

st::RoledOptions node_options(const Member& member, const std::filesystem::path& netns) {
    auto o = st::member_options(member, netns, kClusterYaml, STORMNODE_ROLED_BINARY, STORMNODE_SOURCE_DIR);
    if (member.hostname == kQ1.hostname) {
        o.roles = {"quorum", "lb"};
        o.features = {"galera_arbitrator"};
    } else {
        o.roles = {"db"};
        o.variants = {{"db", "galera"}};
    }
    return o;
}

// A node with storm-clustercheck (the db role's endpoint and check) where the stormnode package puts it
// (the cluster rootfs has its library, libcpp-httplib0.11).
std::unique_ptr<st::RoledNode> start_node(const Member& member, const std::filesystem::path& netns) {
    auto options = node_options(member, netns);
    options.start = false;
    auto node = std::make_unique<st::RoledNode>(options);
    node->container().copy_in(STORMNODE_CLUSTERCHECK_BINARY, "/usr/bin/storm-clustercheck", 0755);
    node->container().copy_in(
        std::filesystem::path(STORMNODE_SOURCE_DIR) /
            "roles/engines/galera/clustercheck/storm-clustercheck.service",
        "/etc/systemd/system/storm-clustercheck.service");
    node->start_roled();
    return node;
}

// Waits until State's word is one of words; a "failed" comes with the node's journal for the assertion.
std::string wait_word(
    st::RoledNode& node,
    const std::set<std::string>& words,
    std::chrono::seconds timeout,
    const std::string& what) {
    const auto state = node.wait_for_state(
        [&](const std::string& s) { return words.contains(state_word(s)); }, timeout, what);
    if (state_word(state) == "failed") {
        UNSCOPED_INFO(
            what
            << ": State " << state << "\n"
            << node.diagnostics() << "--- storm-roled ---\n"
            << node.container()
                   .exec({"journalctl", "--no-pager", "-o", "short-monotonic", "-u", "storm-roled.service"})
                   .out
            << "--- mariadb, garb ---\n"
            << node.container()
                   .exec(
                       {"journalctl",
                        "--no-pager",
                        "-o",
                        "short-monotonic",
                        "-n",
                        "300",
                        "-u",
                        "mariadb.service",
                        "-u",
                        "garb.service"})
                   .out);
    }
    return state_word(state);
}

double seconds_since(Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
}

stormnode::ProcessResult sql(
    st::RoledNode& node, const std::string& statement, std::chrono::seconds timeout = 60s) {
    return node.container().exec(
        {"mariadb", "--batch", "--skip-column-names", "--execute", statement}, timeout);
}

// The engine's wsrep_% status variables (SHOW GLOBAL STATUS), by name.
std::map<std::string, std::string> wsrep_status(st::RoledNode& node) {
    const auto result = sql(node, "SHOW GLOBAL STATUS LIKE 'wsrep_%'");
    if (!result.ok()) {
        throw stormnode::Error(stormnode::Errc::io, "SHOW GLOBAL STATUS failed: " + result.err);
    }
    std::map<std::string, std::string> status;
    std::istringstream lines(result.out);
    for (std::string line; std::getline(lines, line);) {
        const auto tab = line.find('\t');
        if (tab != std::string::npos) {
            status[line.substr(0, tab)] = line.substr(tab + 1);
        }
    }
    return status;
}

void check_member(st::RoledNode& node, const std::string& name, const std::string& size) {
    const auto status = wsrep_status(node);
    INFO(
        name << ": wsrep_cluster_status=" << status.at("wsrep_cluster_status")
             << " wsrep_local_state_comment=" << status.at("wsrep_local_state_comment")
             << " wsrep_cluster_size=" << status.at("wsrep_cluster_size"));
    CHECK(status.at("wsrep_cluster_status") == "Primary");
    CHECK(status.at("wsrep_local_state_comment") == "Synced");
    CHECK(status.at("wsrep_cluster_size") == size);
}

// A client's statement through HAProxy on q1, as the test's SQL user over TCP (from q1's own client).
stormnode::ProcessResult sql_via_haproxy(
    st::RoledNode& client, const std::string& statement, std::chrono::seconds timeout = 120s) {
    return client.container().exec(
        {"mariadb",
         "--host=" + kQ1.address,
         "--port=3306",
         "--user=stormtest",
         "--password=stormtest",
         "--connect-timeout=10",
         "--batch",
         "--skip-column-names",
         "--execute",
         statement},
        timeout);
}

// The HTTP status of a db member's clustercheck, as HAProxy on q1 sees it.
std::string clustercheck_status(st::RoledNode& from, const Member& member) {
    return from.container()
        .exec(
            {"curl",
             "--silent",
             "--output",
             "/dev/null",
             "--max-time",
             "10",
             "--write-out",
             "%{http_code}",
             "http://" + member.address + ":9200/"})
        .out;
}

const st::UnitRow* unit_row(const std::vector<st::UnitRow>& rows, const std::string& unit) {
    const auto it =
        std::find_if(rows.begin(), rows.end(), [&](const st::UnitRow& r) { return r.unit == unit; });
    return it == rows.end() ? nullptr : &*it;
}

std::string rows_in(st::RoledNode& node) {
    const auto result = sql(node, "SELECT COUNT(*) FROM stormtest.writes");
    INFO(result.err);
    REQUIRE(result.ok());
    return result.out;
}

// storm-roled's journal line for its Galera start decision ("galera: new cluster: ..." or "galera: join:
// ...").
std::string galera_decision(st::RoledNode& node) {
    for (const auto& entry : node.journal({"_SYSTEMD_UNIT=storm-roled.service"})) {
        const auto message = entry.find("MESSAGE");
        if (message != entry.end() && message->second.rfind("galera: ", 0) == 0) {
            return message->second;
        }
    }
    return {};
}

struct CallResult {
    bool ok = false;
    std::string error;  // D-Bus error name
    std::string message;
};

// Node1.SetRoles([role], force) over the container's bus, as stormctl role set calls it.
CallResult set_roles(st::RoledNode& node, const char* role, bool force) {
    sd_bus_error error = SD_BUS_ERROR_NULL;
    sd_bus_message* reply = nullptr;
    const int r = sd_bus_call_method(
        node.bus(),
        st::kNode1Service,
        st::kNode1Path,
        st::kNode1Interface,
        "SetRoles",
        &error,
        &reply,
        "asb",
        1,
        role,
        static_cast<int>(force));
    CallResult result{
        r >= 0, error.name != nullptr ? error.name : "", error.message != nullptr ? error.message : ""};
    sd_bus_message_unref(reply);
    sd_bus_error_free(&error);
    return result;
}

}  // namespace

TEST_CASE(
    "(a)(d) two db nodes and garbd form a Galera cluster behind HAProxy that survives a member's death",
    "[galera][integration]") {
    st::TestNetwork network;
    const auto db1_ns = network.attach(kDb1.hostname, kDb1.address + "/24");
    const auto db2_ns = network.attach(kDb2.hostname, kDb2.address + "/24");
    const auto q1_ns = network.attach(kQ1.hostname, kQ1.address + "/24");
    (void)st::cluster_rootfs();  // built by the rootfs_cluster fixture; unpacking is not part of the figures

    // db1 first: with a fresh datadir, no member answering and first among cluster.yaml's db members,
    // storm-roled starts the new cluster there. Alone it is Primary with size 1 of 3: degraded.
    const auto start = Clock::now();
    auto db1 = start_node(kDb1, db1_ns);
    const auto first =
        wait_word(*db1, {"degraded", "healthy", "failed"}, 600s, "db1 to bootstrap the cluster");
    REQUIRE(first != "failed");
    const double to_primary = seconds_since(start);
    CHECK(wsrep_status(*db1).at("wsrep_cluster_status") == "Primary");

    auto db2 = start_node(kDb2, db2_ns);
    auto q1 = start_node(kQ1, q1_ns);
    CHECK(wait_word(*db2, {"healthy", "failed"}, 600s, "db2 to join and sync") == "healthy");
    CHECK(wait_word(*q1, {"healthy", "failed"}, 300s, "q1 (garbd, HAProxy) to join") == "healthy");
    CHECK(wait_word(*db1, {"healthy", "failed"}, 120s, "db1 to see all three members") == "healthy");
    const double to_healthy = seconds_since(start);
    check_member(*db1, "db1", "3");
    check_member(*db2, "db2", "3");
    // storm-roled started the new cluster on db1 only, and for one start only: the file that told
    // mariadb.service so is gone (a restart of db1 now joins instead of splitting the cluster).
    CHECK(galera_decision(*db1).rfind("galera: new cluster", 0) == 0);
    CHECK(galera_decision(*db2).rfind("galera: join", 0) == 0);
    CHECK_FALSE(db1->container().exec({"test", "-e", "/run/mariadb-wsrep-new-cluster"}).ok());
    // garbd runs on q1 against the db members, from the rendered /etc/default/garb.
    CHECK(q1->unit_property("garb.service", "ActiveState") == "active");
    CHECK(
        q1->container()
            .exec_checked({"cat", "/etc/default/garb"})
            .out.find("GALERA_NODES=\"" + kDb1.address + "," + kDb2.address + "\"") != std::string::npos);
    // HAProxy on q1, from the lb templates: writes to db1, db2 its backup, each checked by its clustercheck,
    // which answers 200 on a Synced member of the Primary component.
    CHECK(q1->unit_property("haproxy.service", "ActiveState") == "active");
    {
        const auto cfg = q1->container().exec_checked({"cat", "/etc/haproxy/haproxy.cfg"}).out;
        INFO(cfg);
        CHECK(cfg.find("\tbind " + kQ1.address + ":3306\n") != std::string::npos);
        CHECK(
            cfg.find(
                "\tserver db1 " + kDb1.address + ":3306 check\n\tserver db2 " + kDb2.address +
                ":3306 check backup\n") != std::string::npos);
    }
    // lb's kernel setting, loaded by storm-roled when it wrote the file (systemd-sysctl ran at boot, before)
    {
        INFO(q1->container()
                 .exec({"journalctl", "--no-pager", "-u", "storm-roled.service", "-g", "sysctl"})
                 .out);
        CHECK(q1->container().exec_checked({"cat", "/proc/sys/net/ipv4/ip_nonlocal_bind"}).out == "1\n");
    }
    CHECK(db1->unit_property("storm-clustercheck.service", "ActiveState") == "active");
    CHECK(clustercheck_status(*q1, kDb1) == "200");
    CHECK(clustercheck_status(*q1, kDb2) == "200");

    // The segment is private: the members reach each other, and there is no route anywhere else.
    CHECK(db1->container().exec({"nc", "-z", "-w", "5", kQ1.address, "5403"}).ok());
    CHECK_FALSE(db1->container().exec({"ip", "-4", "route", "get", "192.0.2.1"}).ok());

    // Writes on one member are read on the other; a client through HAProxy lands on db1.
    REQUIRE(sql(*db1,
                "CREATE DATABASE stormtest; CREATE TABLE stormtest.writes "
                "(id INT AUTO_INCREMENT PRIMARY KEY, node VARCHAR(16)) ENGINE=InnoDB; "
                "INSERT INTO stormtest.writes (node) VALUES ('db1'); "
                "CREATE USER 'stormtest'@'10.77.0.%' IDENTIFIED BY 'stormtest'; "
                "GRANT ALL ON stormtest.* TO 'stormtest'@'10.77.0.%'")
                .ok());
    CHECK(rows_in(*db2) == "1\n");
    {
        // HAProxy routes to a member once two of its own checks a second apart have passed (rise 2,
        // inter 1s), which can be after the clustercheck answered 200 above: until then it closes the
        // connection (or hands it to the backup). A client retries, as one does, within a bound.
        const auto routed_by = Clock::now() + 60s;
        stormnode::ProcessResult through;
        do {
            through = sql_via_haproxy(*q1, "SELECT @@wsrep_node_name");
        } while (through.out != "db1\n" && Clock::now() < routed_by);
        INFO("through HAProxy: " << through.err);
        CHECK(through.out == "db1\n");
    }

    // (d) on q1: taking the quorum role away (for the test role) while the db pair depends on it is
    // refused without force, naming the pair, and nothing changes.
    {
        // As an operator does it: stormctl on the node's system bus (here the container's, from the host).
        stormnode::Command stormctl{.argv = {STORMNODE_STORMCTL_BINARY, "role", "set", "testsvc"}};
        stormctl.env["DBUS_SYSTEM_BUS_ADDRESS"] = q1->container().bus_address();
        stormctl.timeout = 60s;
        const auto cli = stormnode::run(stormctl);
        INFO("stormctl role set testsvc on q1: exit " << cli.exit_status << "\n" << cli.out << cli.err);
        CHECK(cli.exit_status == 1);
        CHECK(cli.err.find("[org.stormclouds.Node1.Error.Refused]") != std::string::npos);
        CHECK(
            cli.err.find("db1 and db2 (db/galera) depend on this node's quorum role (garbd)") !=
            std::string::npos);
        CHECK(cli.err.find("(force overrides)") != std::string::npos);
        const auto refused = set_roles(*q1, "testsvc", false);
        INFO("SetRoles([testsvc], false) on q1: " << refused.error << ": " << refused.message);
        CHECK_FALSE(refused.ok);
        CHECK(refused.error == "org.stormclouds.Node1.Error.Refused");
        CHECK(q1->roles() == std::vector<std::string>{"quorum", "lb"});
        CHECK(q1->unit_property("garb.service", "ActiveState") == "active");
        check_member(*db1, "db1", "3");
    }

    // Pull the plug of db1, the member HAProxy sends writes to. db2 and garbd are 2 of 3: db2 stays
    // Primary. HAProxy marks db1 down (its clustercheck is gone) and sends the next connection to db2,
    // whose write blocks until the group has evicted db1. Kill to a write served through HAProxy again
    // is the figure.
    db1->container().kill();
    const auto killed = Clock::now();
    const auto deadline = killed + 300s;
    std::string served_by;
    for (;;) {
        const auto write = sql_via_haproxy(
            *q1, "INSERT INTO stormtest.writes (node) VALUES (@@wsrep_node_name); SELECT @@wsrep_node_name");
        if (write.ok()) {
            served_by = write.out;
            break;
        }
        INFO("write through HAProxy after db1's death: " << write.err);
        REQUIRE(Clock::now() < deadline);
    }
    const double to_haproxy_writes = seconds_since(killed);
    CHECK(served_by == "db2\n");
    // storm-roled on db2: degraded (a member missing), never failed, and mariadb is not restarted.
    CHECK(wait_word(*db2, {"degraded", "failed"}, 120s, "db2 to notice db1 gone") == "degraded");
    {
        const auto status = wsrep_status(*db2);
        CHECK(status.at("wsrep_cluster_status") == "Primary");
        CHECK(status.at("wsrep_local_state_comment") == "Synced");
        CHECK(status.at("wsrep_cluster_size") == "2");
    }
    CHECK(db2->unit_property("mariadb.service", "NRestarts") == "0");

    // db1 comes back (a fresh overlay: an empty-state datadir): it joins, takes a state transfer with the
    // write it missed, and all three are healthy again.
    const auto restarted = Clock::now();
    db1.reset();
    db1 = start_node(kDb1, db1_ns);
    CHECK(wait_word(*db1, {"healthy", "failed"}, 600s, "db1 to rejoin") == "healthy");
    CHECK(wait_word(*db2, {"healthy", "failed"}, 120s, "db2 healthy again") == "healthy");
    const double to_rejoin = seconds_since(restarted);
    check_member(*db1, "db1", "3");
    check_member(*db2, "db2", "3");
    CHECK(galera_decision(*db1).rfind("galera: join", 0) == 0);
    CHECK(rows_in(*db1) == "2\n");

    // (d) with force it is done: garbd (and HAProxy) leave, the pair stays Primary with size 2, db1 says
    // degraded.
    const auto forced = set_roles(*q1, "testsvc", true);
    INFO("SetRoles([testsvc], true) on q1: " << forced.error << ": " << forced.message);
    CHECK(forced.ok);
    CHECK(wait_word(*db1, {"degraded", "failed"}, 120s, "db1 to notice garbd gone") == "degraded");
    {
        const auto status = wsrep_status(*db1);
        CHECK(status.at("wsrep_cluster_status") == "Primary");
        CHECK(status.at("wsrep_cluster_size") == "2");
    }
    CHECK(q1->roles() == std::vector<std::string>{"testsvc"});

    // Without garbd, db2's death leaves db1 alone: 1 of 2, outside a Primary component. Its checks fail,
    // but a restart cannot help (it would wait for the component all the same): storm-roled holds the
    // restart back and says why. The Units row turns "held" when the restart was asked for and refused.
    db2->container().kill();
    const auto partitioned = Clock::now();
    db1->wait_for_state(
        [&](const std::string&) {
            const auto rows = db1->units();
            const auto* row = unit_row(rows, "mariadb.service");
            return row != nullptr && row->check_state == "held";
        },
        120s,
        "db1 to hold back the restart of mariadb");
    const double to_held = seconds_since(partitioned);
    {
        const auto reason = stormnode::test::get_property(
            db1->bus(), st::kNode1Service, st::kNode1Path, st::kNode1Interface, "Reason");
        INFO("db1 Reason: " << reason);
        CHECK(db1->state() == "degraded");
        CHECK(
            reason.find("mariadb.service: exit status 1: galera node outside a Primary component "
                        "(wsrep_cluster_status=non-Primary)") == 0);
        CHECK(reason.find("restart held back: check exec mariadb") != std::string::npos);
        CHECK(wsrep_status(*db1).at("wsrep_cluster_status") == "non-Primary");
        const auto rows = db1->units();
        const auto* row = unit_row(rows, "mariadb.service");
        REQUIRE(row != nullptr);
        CHECK(row->restarts == 0);
        CHECK(db1->unit_property("mariadb.service", "NRestarts") == "0");
        CHECK(db1->unit_property("mariadb.service", "ActiveState") == "active");
    }

    std::printf("figure: container start -> db1 Galera Primary: %.1f s\n", to_primary);
    std::printf("figure: container start -> db1, db2, q1 healthy (size 3, Synced): %.1f s\n", to_healthy);
    std::printf(
        "figure: db1 (HAProxy's writer) killed -> writes served again through HAProxy (by db2): %.1f s\n",
        to_haproxy_writes);
    std::printf("figure: db1 restarted -> rejoined, all healthy: %.1f s\n", to_rejoin);
    std::printf("figure: db2 killed without garbd -> db1 non-Primary, restart held back: %.1f s\n", to_held);
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
