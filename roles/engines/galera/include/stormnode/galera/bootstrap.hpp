// Whether this db node starts a new Galera cluster (galera_new_cluster) or joins one. Starting a second
// primary component beside a running one splits the database in two, so a new cluster is started only
// when no other member answers and this node's own state says it is safe (grastate.dat).
#pragma once

#include <stormnode/cluster/cluster.hpp>

#include <optional>
#include <string>
#include <vector>

namespace stormnode::roles {

// /var/lib/mysql/grastate.dat, written by the Galera provider.
struct GraState {
    std::string uuid;
    long long seqno = -1;
    bool safe_to_bootstrap = false;
};

// nullopt when the text is not a grastate file (no "safe_to_bootstrap:" line of 0 or 1).
std::optional<GraState> parse_grastate(const std::string& text);

enum class GaleraStart { new_cluster, join };

struct GaleraDecision {
    GaleraStart start = GaleraStart::join;
    std::string reason;  // for the journal
};

// grastate: nullopt when the datadir has none (a fresh datadir that never was in a cluster).
// reachable: the other Galera members (db and garbd) that accept a connection on 4567 now.
//   - a db member reachable   -> join (an arbitrator alone holds no data to join)
//   - grastate safe_to_bootstrap: 1 -> new cluster (this node left last, or shut down cleanly last)
//   - no grastate: only the first db member of cluster.yaml starts the new cluster; the others join
//   - otherwise (safe_to_bootstrap: 0, nobody answers) -> join, and keep trying: an operator decides
GaleraDecision decide_galera_start(
    const Cluster& cluster,
    const std::string& hostname,
    const std::optional<GraState>& grastate,
    const std::vector<std::string>& reachable);

// The other Galera members' addresses: db and quorum members but this one.
std::vector<std::string> galera_peers(const Cluster& cluster, const std::string& hostname);

}  // namespace stormnode::roles
