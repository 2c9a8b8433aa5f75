// A member of the active-passive db pair that comes back after the other was promoted (issue 8). Its
// datadir was a primary: its timeline went on past the point where the other one forked off, so it
// cannot stream from the new primary, and PAF neither rewinds nor rebuilds (a primary's controldata
// left "in production" even makes it report a failed primary). Before pacemaker starts on the node,
// storm-roled makes it a standby of the running primary: pg_rewind (wal_log_hints is on), a fresh
// pg_basebackup when that fails, then standby.signal. The decision is made here from observed facts;
// stormnode/pacemaker/rejoin.hpp observes and acts.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace stormnode::roles {

// pg_controldata's view of a datadir: the fields the decision reads.
struct PostgresControl {
    std::string
        state;         // "Database cluster state": "in production", "shut down", "shut down in recovery", ...
    int timeline = 0;  // "Latest checkpoint's TimeLineID"
};

// Parses pg_controldata's output (LC_ALL=C); nullopt when either field is missing or unreadable.
std::optional<PostgresControl> parse_controldata(const std::string& output);

// This node's datadir, as found before pacemaker starts.
struct LocalPostgres {
    bool has_cluster = false;     // PG_VERSION in the datadir
    bool running = false;         // a postmaster serves it (pg_ctl status)
    bool standby_signal = false;  // standby.signal in the datadir
    PostgresControl control;
};

// What another db member answered to SELECT pg_is_in_recovery().
enum class PeerRole { unreachable, primary, standby };

struct PeerPostgres {
    std::string hostname;
    std::string address;
    PeerRole role = PeerRole::unreachable;
};

enum class RejoinAction {
    none,    // the datadir is left to PAF as it is
    rejoin,  // from source: pg_rewind, else pg_basebackup; then standby.signal
    refuse,  // more than one primary elsewhere: no source to trust
};

struct RejoinDecision {
    RejoinAction action = RejoinAction::none;
    std::string reason;
    std::optional<PeerPostgres> source;  // the primary to follow (rejoin)
    // The datadir was left running (a crash): recovered in single-user mode first, because pg_rewind
    // wants a clean shutdown and its own recovery cannot find Debian's configuration (outside the datadir).
    bool crash_recovery = false;
};

// Why the datadir needs no look at the peers (it was never a primary, or it serves, or it is a
// standby already); nullopt when it was left as a primary and the peers decide.
std::optional<std::string> left_as_is(const LocalPostgres& local);

// The decision: nothing unless the datadir was left as a primary and exactly one other member serves
// as primary now (a cold start of the whole pair, no primary elsewhere, is Pacemaker's to decide).
RejoinDecision decide_postgres_rejoin(const LocalPostgres& local, const std::vector<PeerPostgres>& peers);

// The libpq connection string to a peer as the replicator role (password from passfile), for psql,
// pg_rewind's --source-server and pg_basebackup's --dbname.
std::string rejoin_conninfo(const std::string& address, const std::string& passfile);

}  // namespace stormnode::roles
