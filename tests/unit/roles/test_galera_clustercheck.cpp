// storm-clustercheck's reading of the engine's status and its answers (HAProxy's httpchk and the
// non-Primary hold of storm-roled).
#include <stormnode/common/error.hpp>
#include <stormnode/galera/clustercheck.hpp>

#include <catch2/catch.hpp>

using namespace stormnode;
using namespace stormnode::roles;

TEST_CASE("the wsrep status variables are read from the client's batch output", "[clustercheck][unit]") {
    const auto status =
        parse_galera_status("wsrep_cluster_status\tPrimary\nwsrep_local_state_comment\tDonor/Desynced\n");
    CHECK(status.cluster_status == "Primary");
    CHECK(status.local_state == "Donor/Desynced");
    // names as the server spells them in another version, in any order
    const auto upper =
        parse_galera_status("WSREP_LOCAL_STATE_COMMENT\tInitialized\nWSREP_CLUSTER_STATUS\tnon-Primary\n");
    CHECK(upper.cluster_status == "non-Primary");
    CHECK(upper.local_state == "Initialized");
    // wsrep off: the variables are missing
    CHECK_THROWS_AS(parse_galera_status(""), Error);
    CHECK_THROWS_AS(parse_galera_status("wsrep_cluster_status\tDisconnected\n"), Error);
}

TEST_CASE("clustercheck answers 200 only for a node Synced in a Primary component", "[clustercheck][unit]") {
    const auto synced = clustercheck_answer({"Primary", "Synced"});
    CHECK(synced.status == 200);
    CHECK(
        synced.body ==
        "Galera node is Synced in a Primary component: wsrep_cluster_status=Primary "
        "wsrep_local_state_comment=Synced\n");
    CHECK(clustercheck_answer({"Primary", "Donor/Desynced"}).status == 503);
    CHECK(clustercheck_answer({"Primary", "Joining"}).status == 503);
    const auto partitioned = clustercheck_answer({"non-Primary", "Synced"});
    CHECK(partitioned.status == 503);
    CHECK_THAT(partitioned.body, Catch::Contains("wsrep_cluster_status=non-Primary"));
}

TEST_CASE("only a node outside a Primary component holds its restarts", "[clustercheck][unit]") {
    CHECK(non_primary_reason({"Primary", "Donor/Desynced"}).empty());
    CHECK(non_primary_reason({"Primary", "Joining"}).empty());
    CHECK_THAT(
        non_primary_reason({"non-Primary", "Initialized"}),
        Catch::StartsWith("galera node outside a Primary component (wsrep_cluster_status=non-Primary)"));
    CHECK_FALSE(non_primary_reason({"Disconnected", "Initialized"}).empty());
}
