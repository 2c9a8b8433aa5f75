#include "stormnode/galera/bootstrap.hpp"

#include <algorithm>
#include <sstream>

namespace stormnode::roles {
namespace {

std::string trimmed(const std::string& text) {
    const auto first = text.find_first_not_of(" \t\r");
    if (first == std::string::npos) {
        return {};
    }
    return text.substr(first, text.find_last_not_of(" \t\r") - first + 1);
}

}  // namespace

std::optional<GraState> parse_grastate(const std::string& text) {
    GraState state;
    bool has_safe = false;
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
        const auto colon = line.find(':');
        if (line.starts_with('#') || colon == std::string::npos) {
            continue;
        }
        const auto key = trimmed(line.substr(0, colon));
        const auto value = trimmed(line.substr(colon + 1));
        if (key == "uuid") {
            state.uuid = value;
        } else if (key == "seqno") {
            try {
                state.seqno = std::stoll(value);
            } catch (const std::exception&) {
                return std::nullopt;
            }
        } else if (key == "safe_to_bootstrap") {
            if (value != "0" && value != "1") {
                return std::nullopt;
            }
            state.safe_to_bootstrap = value == "1";
            has_safe = true;
        }
    }
    if (!has_safe) {
        return std::nullopt;
    }
    return state;
}

std::vector<std::string> galera_peers(const Cluster& cluster, const std::string& hostname) {
    std::vector<std::string> peers;
    for (const auto& member : cluster.members) {
        if (member.hostname != hostname && (member.carries("db") || member.carries("quorum"))) {
            peers.push_back(member.address);
        }
    }
    return peers;
}

GaleraDecision decide_galera_start(
    const Cluster& cluster,
    const std::string& hostname,
    const std::optional<GraState>& grastate,
    const std::vector<std::string>& reachable) {
    // Only a db member can be joined: it holds the data and donates the state transfer. garbd answering
    // alone proves nothing (it outlives the db members, and after they leave cleanly it is a primary
    // component of one that a joiner aborts against: "Group requested repl_proto_ver: 127").
    std::string list;
    for (const auto& address : reachable) {
        const auto member =
            std::find_if(cluster.members.begin(), cluster.members.end(), [&](const ClusterMember& m) {
                return m.address == address && m.hostname != hostname;
            });
        if (member != cluster.members.end() && member->carries("db")) {
            list += list.empty() ? address : ", " + address;
        }
    }
    if (!list.empty()) {
        return {GaleraStart::join, "db members answer on 4567 (" + list + "): join them"};
    }
    if (grastate && grastate->safe_to_bootstrap) {
        return {GaleraStart::new_cluster, "no member answers and grastate.dat says safe_to_bootstrap: 1"};
    }
    if (!grastate) {
        const auto db = cluster.members_with("db");
        if (!db.empty() && db.front()->hostname == hostname) {
            return {
                GaleraStart::new_cluster,
                "a fresh datadir on the first db member of " + cluster.file +
                    ", and no member answers: start the new cluster"};
        }
        return {GaleraStart::join, "a fresh datadir, not the first db member: wait for the cluster to join"};
    }
    return {
        GaleraStart::join,
        "no member answers but grastate.dat says safe_to_bootstrap: 0: another member "
        "holds newer data; waiting (an operator may set safe_to_bootstrap on the right one)"};
}

}  // namespace stormnode::roles
