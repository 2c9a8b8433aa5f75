// The quorum guard's arithmetic over the cluster model, and the guard reading the real cluster.yaml.
#include <stormnode/cluster/quorum_guard.hpp>
#include <stormnode/common/error.hpp>
#include <stormnode/common/temp_dir.hpp>

#include <catch2/catch.hpp>

using namespace stormnode;
using namespace stormnode::roles;

namespace {

const std::set<std::string> kQuorumRoles{"controller", "db", "quorum"};

using MemberRoles = std::pair<std::string, std::vector<std::string>>;

Cluster cluster(const std::vector<MemberRoles>& members) {
    Cluster c;
    c.file = "/etc/stormnode/cluster.yaml";
    c.name = "c1";
    int host = 1;
    for (const auto& [hostname, roles] : members) {
        c.members.push_back({hostname, "10.0.0." + std::to_string(host++), "", parse_role_specs(roles)});
    }
    return c;
}

std::optional<std::string> refusal(
    const std::optional<Cluster>& c, std::vector<std::string> from, std::vector<std::string> to) {
    return quorum_refusal(
        kQuorumRoles, c ? &*c : nullptr, "n1", parse_role_specs(from), parse_role_specs(to));
}

}  // namespace

TEST_CASE("without cluster.yaml a node may not leave a quorum role", "[quorum][unit]") {
    const std::optional<Cluster> none;
    const auto why = refusal(none, {"db"}, {"compute"});
    REQUIRE(why);
    CHECK(*why == "leaving db: no cluster.yaml: cannot prove the cluster keeps quorum");
    CHECK(refusal(none, {"controller", "monitor"}, {"monitor"}));
    CHECK(refusal(none, {"quorum"}, {"monitor"}));
    CHECK(refusal(none, {"db:galera"}, {"compute"}));
    // Joining, keeping, or leaving a role that holds no votes is fine.
    CHECK_FALSE(refusal(none, {"db"}, {"db", "monitor"}));
    CHECK_FALSE(refusal(none, {"monitor"}, {"compute"}));
    CHECK_FALSE(refusal(none, {"compute"}, {"db"}));
}

TEST_CASE("leaving is refused when the rest would hold half of the votes or fewer", "[quorum][unit]") {
    const auto three = cluster({{"n1", {"db"}}, {"n2", {"db"}}, {"n3", {"db"}}});
    CHECK_FALSE(refusal(three, {"db"}, {"compute"}));  // 2 of 3 left

    const auto two = cluster({{"n1", {"db"}}, {"n2", {"db"}}});
    const auto why = refusal(two, {"db"}, {"compute"});
    REQUIRE(why);
    CHECK(
        *why ==
        "leaving db would leave 1 of 2 votes (db and quorum members, per /etc/stormnode/cluster.yaml): "
        "the cluster would lose quorum");

    // The quorum device votes for db: 2 db + 1 qdevice -> 2 of 3 left.
    CHECK_FALSE(refusal(cluster({{"n1", {"db"}}, {"n2", {"db"}}, {"q1", {"quorum"}}}), {"db"}, {"compute"}));
    // Becoming the quorum device keeps this node's db vote.
    CHECK_FALSE(refusal(two, {"db"}, {"quorum"}));

    const auto controllers = cluster({{"n1", {"controller"}}, {"n2", {"controller"}}});
    const auto ctl = refusal(controllers, {"controller"}, {"compute"});
    REQUIRE(ctl);
    CHECK_THAT(*ctl, Catch::StartsWith("leaving controller would leave 1 of 2 controller members (per "));
    CHECK_FALSE(refusal(
        cluster({{"n1", {"controller"}}, {"n2", {"controller"}}, {"n3", {"controller"}}}),
        {"controller"},
        {"compute"}));
    // q1 and this node (unlisted) are the quorum members; no db member depends on them
    const auto two_quorum = refusal(cluster({{"q1", {"quorum"}}}), {"quorum"}, {"monitor"});
    REQUIRE(two_quorum);
    CHECK_THAT(*two_quorum, Catch::StartsWith("leaving quorum would leave 1 of 2 quorum members (per "));
    // The pair that depends on it is named, with the engine it uses on this node.
    const auto pair = refusal(
        cluster({{"db1", {"db:galera"}}, {"db2", {"db:galera"}}, {"n1", {"quorum"}}}),
        {"quorum"},
        {"monitor"});
    REQUIRE(pair);
    CHECK(
        *pair ==
        "leaving quorum: db1 and db2 (db/galera) depend on this node's quorum role (garbd), and no other "
        "member carries it (per /etc/stormnode/cluster.yaml)");
    const auto ap = refusal(
        cluster(
            {{"pg1", {"db:active-passive"}}, {"pg2", {"db:active-passive"}}, {"pg3", {"db:active-passive"}}}),
        {"quorum"},
        {"monitor"});
    REQUIRE(ap);
    CHECK_THAT(
        *ap,
        Catch::StartsWith("leaving quorum: pg1, pg2 and pg3 (db/active-passive) depend on this node's "
                          "quorum role (corosync-qnetd)"));
    // A second quorum member keeps it: 1 of 2 is still refused (half), 2 of 3 is not.
    CHECK_FALSE(refusal(
        cluster({{"db1", {"db:galera"}}, {"q2", {"quorum"}}, {"q3", {"quorum"}}, {"n1", {"quorum"}}}),
        {"quorum"},
        {"monitor"}));
}

TEST_CASE("this node counts with the roles it has, whatever cluster.yaml says of it", "[quorum][unit]") {
    // cluster.yaml is stale: it lists n1 as compute, but n1 carries db now. 3 votes, 2 after.
    CHECK_FALSE(refusal(cluster({{"n1", {"compute"}}, {"n2", {"db"}}, {"n3", {"db"}}}), {"db"}, {"compute"}));
    // n1 missing from the list: counted anyway (2 votes, 1 after).
    CHECK(refusal(cluster({{"n2", {"db"}}}), {"db"}, {"compute"}));
}

TEST_CASE("the guard reads cluster.yaml with the cluster model and the catalog", "[quorum][unit]") {
    TempDir dir{"stormnode-cluster"};
    const auto file = dir.path() / "cluster.yaml";
    const Catalog catalog =
        load_valid_catalog(std::filesystem::path(STORMNODE_SOURCE_DIR) / "roles" / "catalog");
    CHECK_FALSE(load_optional_cluster(file, &catalog));

    write_file_atomic(
        file,
        "name: dbc\nmembers:\n  - {hostname: db-1, address: 10.0.0.1, zone: a, roles: [db]}\n"
        "  - {hostname: db-2, address: 10.0.0.2, zone: b, roles: [\"db:galera\"]}\n"
        "  - {hostname: q-1, address: 10.0.0.3, zone: c, roles: [quorum]}\n");
    const auto loaded = load_optional_cluster(file, &catalog);
    REQUIRE(loaded);
    REQUIRE(loaded->members.size() == 3);
    // The quorum node leaving while the db pair depends on it: refused.
    const auto why = quorum_refusal(
        kQuorumRoles, &*loaded, "q-1", parse_role_specs({"quorum"}), parse_role_specs({"monitor"}));
    REQUIRE(why);
    CHECK(
        *why ==
        "leaving quorum: db-1 (db) depends on this node's quorum role (garbd or corosync-qnetd); db-2 "
        "(db/galera) depends on this node's quorum role (garbd), and no other member carries it (per " +
            file.string() + ")");
    // One db member of the pair leaving: db-2 + q-1 is 2 of 3 votes, so it is allowed.
    CHECK_FALSE(quorum_refusal(
        kQuorumRoles, &*loaded, "db-1", parse_role_specs({"db"}), parse_role_specs({"compute"})));

    write_file_atomic(
        file,
        "name: dbc\nmembers:\n  - {hostname: db-1, address: 10.0.0.1, roles: [db]}\n"
        "  - {hostname: db-2, address: 10.0.0.1, roles: [db]}\n");
    try {
        (void)load_optional_cluster(file, &catalog);
        FAIL("no error");
    } catch (const Error& e) {
        CHECK(e.code() == Errc::invalid_input);
        const std::string text = describe(e);
        CHECK_THAT(
            text, Catch::Contains(file.string() + ":4:31: address 10.0.0.1 of 'db-2' is already 'db-1''s"));
        CHECK_THAT(
            text,
            Catch::Contains(file.string() + ":4:48: a db cluster of two (db-1, db-2) needs a quorum member"));
    }
}
