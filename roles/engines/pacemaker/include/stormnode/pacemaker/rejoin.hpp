// storm-roled's side of a former primary's rejoin (stormnode/pacemaker/rejoin_decision.hpp): observes the
// datadir (pg_ctl status, pg_controldata, standby.signal) and asks the other db members whether they
// serve as primary (psql as the replicator role), then rewinds or rebuilds the datadir as a standby of
// the one that does. Runs before corosync and pacemaker start on the node (prepare_pacemaker_start).
#pragma once

#include <stormnode/cluster/node_config.hpp>
#include <stormnode/pacemaker/rejoin_decision.hpp>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>

namespace stormnode::roles {

// Next to the datadir (same filesystem): a base backup is made here, then exchanged with the datadir in
// one rename, so a crash never leaves half a datadir. A leftover (a crash before or after the exchange)
// is removed at the next start.
inline constexpr const char* kRejoinScratchSuffix = ".storm-rejoin";

// The longest a rejoin may take, its steps' timeouts added up: crash recovery, pg_rewind, pg_basebackup.
inline constexpr std::chrono::minutes kPostgresRejoinBound{80};

enum class RejoinMethod { none, rewind, base_backup };

struct PostgresRejoin {
    RejoinDecision decision;
    RejoinMethod method = RejoinMethod::none;
    std::string details;  // what was done and what failed on the way (a failed pg_rewind), for the journal
    std::chrono::milliseconds took{0};
};

// On the running system only (root is "/"), for a db member of cluster.yaml: nullopt otherwise. Throws
// Error when the datadir cannot be observed, when two members serve as primary, or when neither
// pg_rewind nor pg_basebackup made it a standby (the role does not start with a datadir PAF would
// report as a failed primary).
std::optional<PostgresRejoin> rejoin_postgres_if_needed(
    const NodeConfig& node, const std::filesystem::path& root);

std::string_view to_string(RejoinMethod method);

// Runs `sql` through PostgreSQL's single-user mode as the postgres user, on Debian's cluster 15/main (the
// server must not be running). Throws Error naming `what` when it fails or a statement reports an error
// (single-user mode reports them only on its output).
void run_postgres_single_user(
    const std::string& sql, std::chrono::milliseconds timeout, const std::string& what);

}  // namespace stormnode::roles
