// A Galera node's own word on whether it serves: wsrep_cluster_status and wsrep_local_state_comment,
// read with the mariadb client. Behind storm-clustercheck: the clustercheck-style HTTP endpoint HAProxy
// checks (200 only for a node Synced in a Primary component, 503 otherwise) and storm-roled's check
// that holds restarts of a node outside a Primary component (db.yaml, on_failure: hold).
#pragma once

#include <chrono>
#include <string>
#include <string_view>

namespace stormnode::roles {

struct GaleraStatus {
    std::string cluster_status;  // wsrep_cluster_status: Primary, non-Primary, Disconnected
    std::string local_state;     // wsrep_local_state_comment: Synced, Donor/Desynced, Joining, Joined, ...
};

// The SQL that asks for both; SHOW is answered even outside a Primary component, where other
// statements are refused ("WSREP has not yet prepared node for application use").
inline constexpr std::string_view kGaleraStatusQuery =
    "SHOW GLOBAL STATUS WHERE Variable_name IN ('wsrep_cluster_status', 'wsrep_local_state_comment')";

// Parses `mariadb --batch --skip-column-names` output of kGaleraStatusQuery ("name<TAB>value" lines,
// names in any case). Throws Error(invalid_input) when either variable is missing (wsrep is off).
GaleraStatus parse_galera_status(std::string_view batch_output);

// Asks the local server through its socket, as the calling user (unix_socket authentication: root, or
// mysql for the endpoint's unit). Throws Error(io) when the server cannot be asked.
GaleraStatus read_galera_status(std::chrono::milliseconds timeout);

struct ClustercheckAnswer {
    int status = 503;
    std::string body;
};

// clustercheck's contract: 200 only when Synced in a Primary component, 503 for every other state.
ClustercheckAnswer clustercheck_answer(const GaleraStatus& status);

// Why a node outside a Primary component is not restarted; empty when it is in a Primary one.
std::string non_primary_reason(const GaleraStatus& status);

}  // namespace stormnode::roles
