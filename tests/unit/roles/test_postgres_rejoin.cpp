// A former primary of the active-passive pair rejoins as a standby: what storm-roled decides from what it
// observes of the datadir and the other members, and the forms it reads and writes.
#include <stormnode/pacemaker/bootstrap.hpp>
#include <stormnode/pacemaker/rejoin_decision.hpp>

#include <catch2/catch.hpp>

#include <sstream>

using namespace stormnode::roles;

namespace {

// pg_controldata's output (PostgreSQL 15, LC_ALL=C), cut to the lines around the two it reads.
std::string controldata(const std::string& state, const std::string& timeline) {
    return "pg_control version number:            1300\n"
           "Catalog version number:               202209061\n"
           "Database system identifier:           7442209841151418395\n"
           "Database cluster state:               " +
           state +
           "\n"
           "pg_control last modified:             Sat Nov 28 19:02:11 2026\n"
           "Latest checkpoint location:           0/3000060\n"
           "Latest checkpoint's REDO location:    0/3000028\n"
           "Latest checkpoint's REDO WAL file:    000000020000000000000003\n"
           "Latest checkpoint's TimeLineID:       " +
           timeline +
           "\n"
           "Latest checkpoint's PrevTimeLineID:   1\n"
           "Min recovery ending loc's timeline:   0\n";
}

LocalPostgres datadir(const std::string& state, int timeline) {
    LocalPostgres local;
    local.has_cluster = true;
    local.control = {state, timeline};
    return local;
}

PeerPostgres peer(const std::string& hostname, PeerRole role) {
    return {hostname, hostname == "pg-2" ? "10.0.0.2" : "10.0.0.3", role};
}

}  // namespace

TEST_CASE(
    "pg_controldata's state and timeline are read, and nothing else passes", "[roles][pacemaker][rejoin]") {
    const auto control = parse_controldata(controldata("in production", "2"));
    REQUIRE(control);
    CHECK(control->state == "in production");
    CHECK(control->timeline == 2);
    CHECK(parse_controldata(controldata("shut down in recovery", "17"))->state == "shut down in recovery");
    CHECK_FALSE(parse_controldata(controldata("shut down", "")));
    CHECK_FALSE(parse_controldata(controldata("shut down", "2x")));
    CHECK_FALSE(parse_controldata("Latest checkpoint's TimeLineID:       2\n"));  // no state
    CHECK_FALSE(parse_controldata(""));
}

TEST_CASE(
    "a datadir that was not left as a primary is left to PAF without asking anyone",
    "[roles][pacemaker][rejoin]") {
    const std::vector<PeerPostgres> primary_elsewhere{peer("pg-2", PeerRole::primary)};
    const auto none = [&](const LocalPostgres& local, const std::string& why) {
        INFO(why);
        const auto reason = left_as_is(local);
        REQUIRE(reason);
        CHECK_THAT(*reason, Catch::Contains(why));
        const auto decision = decide_postgres_rejoin(local, primary_elsewhere);
        CHECK(decision.action == RejoinAction::none);
        CHECK(decision.reason == *reason);
        CHECK_FALSE(decision.source);
    };
    none(LocalPostgres{}, "no PostgreSQL cluster");
    auto running = datadir("in production", 2);
    running.running = true;
    none(running, "runs on the datadir");
    auto standby = datadir("shut down", 3);
    standby.standby_signal = true;
    none(standby, "a standby already");
    none(datadir("shut down in recovery", 3), "left as a standby ('shut down in recovery', timeline 3)");
    none(datadir("in archive recovery", 3), "left as a standby");
    // the image's datadir, never started or started only as a standby, is still on timeline 1
    none(datadir("shut down", 1), "never promoted");
}

TEST_CASE("a crashed or stopped primary rejoins the one primary elsewhere", "[roles][pacemaker][rejoin]") {
    SECTION("crashed: recovered first, then rewound from the primary") {
        const auto local = datadir("in production", 2);
        CHECK_FALSE(left_as_is(local));
        const auto decision = decide_postgres_rejoin(
            local, {peer("pg-2", PeerRole::primary), peer("pg-3", PeerRole::unreachable)});
        CHECK(decision.action == RejoinAction::rejoin);
        REQUIRE(decision.source);
        CHECK(decision.source->hostname == "pg-2");
        CHECK(decision.source->address == "10.0.0.2");
        CHECK(decision.crash_recovery);
        CHECK_THAT(decision.reason, Catch::Contains("left as a primary ('in production', timeline 2)"));
        CHECK_THAT(decision.reason, Catch::Contains("pg-2 serves as primary"));
    }
    SECTION("cleanly stopped: no recovery needed") {
        const auto decision =
            decide_postgres_rejoin(datadir("shut down", 3), {peer("pg-2", PeerRole::primary)});
        CHECK(decision.action == RejoinAction::rejoin);
        CHECK_FALSE(decision.crash_recovery);
    }
    SECTION("a crash in the middle of a recovery or a shutdown counts as a crash") {
        for (const char* state : {"in crash recovery", "shutting down", "starting up"}) {
            INFO(state);
            const auto decision =
                decide_postgres_rejoin(datadir(state, 2), {peer("pg-2", PeerRole::primary)});
            CHECK(decision.action == RejoinAction::rejoin);
            CHECK(decision.crash_recovery);
        }
    }
}

TEST_CASE("without one primary elsewhere a former primary is not touched", "[roles][pacemaker][rejoin]") {
    const auto local = datadir("in production", 2);
    SECTION("a cold start of the pair: Pacemaker chooses") {
        const auto decision = decide_postgres_rejoin(
            local, {peer("pg-2", PeerRole::unreachable), peer("pg-3", PeerRole::standby)});
        CHECK(decision.action == RejoinAction::none);
        CHECK_FALSE(decision.source);
        CHECK_THAT(
            decision.reason, Catch::Contains("no other member serves as primary (no answer from pg-2)"));
        CHECK_THAT(decision.reason, Catch::Contains("a cold start"));
        CHECK(decide_postgres_rejoin(local, {}).action == RejoinAction::none);
    }
    SECTION("two primaries elsewhere: refused, nothing to trust") {
        const auto decision =
            decide_postgres_rejoin(local, {peer("pg-2", PeerRole::primary), peer("pg-3", PeerRole::primary)});
        CHECK(decision.action == RejoinAction::refuse);
        CHECK_FALSE(decision.source);
        CHECK_THAT(decision.reason, Catch::Contains("2 other members serve as primary (pg-2, pg-3)"));
    }
}

TEST_CASE("the rejoin connects as the replicator role with the passfile", "[roles][pacemaker][rejoin]") {
    CHECK(
        rejoin_conninfo("10.0.0.2", "/var/lib/postgresql/.pgpass") ==
        "host=10.0.0.2 port=5432 dbname=postgres user=replicator passfile=/var/lib/postgresql/.pgpass "
        "connect_timeout=5");
    CHECK(
        rejoin_conninfo("fd00::2", "/a dir/it's") ==
        "host=fd00::2 port=5432 dbname=postgres user=replicator passfile='/a dir/it\\'s' connect_timeout=5");
}

TEST_CASE("pg_rewind's grants to the replicator are one statement a line", "[roles][pacemaker][rejoin]") {
    const auto sql = rewind_grants_sql();
    std::istringstream lines(sql);
    std::vector<std::string> statements;
    for (std::string line; std::getline(lines, line);) {
        statements.push_back(line);
    }
    CHECK(sql.back() == '\n');
    REQUIRE(statements.size() == 5);
    CHECK(
        statements[0] ==
        "GRANT EXECUTE ON FUNCTION pg_catalog.pg_ls_dir(text, boolean, boolean) TO replicator");
    CHECK(statements[1] == "GRANT EXECUTE ON FUNCTION pg_catalog.pg_stat_file(text, boolean) TO replicator");
    CHECK(statements[2] == "GRANT EXECUTE ON FUNCTION pg_catalog.pg_read_binary_file(text) TO replicator");
    CHECK(
        statements[3] ==
        "GRANT EXECUTE ON FUNCTION pg_catalog.pg_read_binary_file(text, bigint, bigint, boolean) TO "
        "replicator");
    CHECK(statements[4] == "GRANT pg_checkpoint TO replicator");
}
