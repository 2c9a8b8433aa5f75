// The quorum guard's arithmetic and its small cluster.yaml members parser.
#include <stormnode/common/error.hpp>
#include <stormnode/common/temp_dir.hpp>
#include <stormnode/roles/supervisor/quorum_guard.hpp>

#include <catch2/catch.hpp>

using namespace stormnode;
using namespace stormnode::roles;

namespace {

const std::set<std::string> kQuorumRoles{"controller", "db", "quorum"};

ClusterMembers cluster(std::vector<ClusterMember> members) {
    return ClusterMembers{true, "/etc/stormnode/cluster.yaml", std::move(members)};
}

std::optional<std::string> refusal(
    const ClusterMembers& c, std::vector<std::string> from, std::vector<std::string> to) {
    return quorum_refusal(kQuorumRoles, c, "n1", from, to);
}

}  // namespace

TEST_CASE("without cluster.yaml a node may not leave a quorum role", "[quorum][unit]") {
    const ClusterMembers none;
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
    CHECK(refusal(
        cluster({{"q1", {"quorum"}}}), {"quorum"}, {"monitor"}));  // this node, unlisted, is the only one
}

TEST_CASE("this node counts with the roles it has, whatever cluster.yaml says of it", "[quorum][unit]") {
    // cluster.yaml is stale: it lists n1 as compute, but n1 carries db now. 3 votes, 2 after.
    CHECK_FALSE(refusal(cluster({{"n1", {"compute"}}, {"n2", {"db"}}, {"n3", {"db"}}}), {"db"}, {"compute"}));
    // n1 missing from the list: counted anyway (2 votes, 1 after).
    CHECK(refusal(cluster({{"n2", {"db"}}}), {"db"}, {"compute"}));
}

TEST_CASE("cluster.yaml's members list is parsed strictly, with positions", "[quorum][unit]") {
    TempDir dir{"stormnode-cluster"};
    const auto file = dir.path() / "cluster.yaml";
    CHECK_FALSE(load_cluster_members(file).present);

    write_file_atomic(
        file,
        "vip: 10.0.0.5\nmembers:\n  - {hostname: n1, roles: [db, controller]}\n"
        "  - hostname: q1\n    roles: [quorum]\n");
    const auto ok = load_cluster_members(file);
    CHECK(ok.present);
    REQUIRE(ok.members.size() == 2);
    CHECK(ok.members[0].roles == std::vector<std::string>{"db", "controller"});
    CHECK(ok.members[1].hostname == "q1");

    write_file_atomic(
        file,
        "members:\n  - {hostname: n1, roles: [db]}\n  - hostname: n2\n    role: [db]\n"
        "  - {hostname: n1, roles: [db]}\n");
    try {
        (void)load_cluster_members(file);
        FAIL("no error");
    } catch (const Error& e) {
        CHECK(e.code() == Errc::invalid_input);
        const std::string text = describe(e);
        CHECK_THAT(text, Catch::Contains(file.string() + ":4:5: unknown key 'role'"));
        CHECK_THAT(text, Catch::Contains(file.string() + ":3:5: missing required key 'roles'"));
        CHECK_THAT(text, Catch::Contains(file.string() + ":5:16: member 'n1' is listed twice"));
    }
}
