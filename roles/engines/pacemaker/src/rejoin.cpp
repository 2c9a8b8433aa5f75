#include "stormnode/pacemaker/rejoin.hpp"

#include "stormnode/cluster/secret_file.hpp"
#include "stormnode/pacemaker/start.hpp"

#include <stormnode/common/c_handle.hpp>
#include <stormnode/common/error.hpp>
#include <stormnode/common/subprocess.hpp>
#include <stormnode/common/temp_dir.hpp>
#include <stormnode/pacemaker/bootstrap.hpp>

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <system_error>

namespace stormnode::roles {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr const char* kBindir = "/usr/lib/postgresql/15/bin";
// Debian's configuration directory: its postgresql.conf names the datadir (data_directory).
constexpr const char* kConfigDir = "/etc/postgresql/15/main";
// A rewind copies what changed since the fork; a base backup copies everything. With the crash
// recovery's they stay within kPostgresRejoinBound.
constexpr auto kCrashRecoveryTimeout = std::chrono::minutes(5);
constexpr auto kRewindTimeout = std::chrono::minutes(10);
constexpr auto kBaseBackupTimeout = std::chrono::minutes(60);
static_assert(kCrashRecoveryTimeout + kRewindTimeout + kBaseBackupTimeout < kPostgresRejoinBound);

std::string tool(const char* name) {
    return std::string(kBindir) + "/" + name;
}

// As the postgres user, with the C locale (pg_controldata's labels are translated otherwise).
Command as_postgres(std::vector<std::string> argv, std::chrono::milliseconds timeout) {
    argv.insert(argv.begin(), {"runuser", "-u", "postgres", "--"});
    return Command{.argv = std::move(argv), .env = {{"LC_ALL", "C"}}, .timeout = timeout};
}

std::string failure(const Command& command, const ProcessResult& result) {
    std::string text =
        format_argv(command.argv) +
        (result.timed_out ? " timed out" : " exited with " + std::to_string(result.exit_status));
    auto err = result.err;
    while (!err.empty() && (err.back() == '\n' || err.back() == ' ')) {
        err.pop_back();
    }
    return err.empty() ? text : text + ": " + err;
}

// postmaster.pid names a live postgres process. Not pg_ctl status: after a crash the file's PID may
// belong to another process of the new boot (PIDs restart in a container), which pg_ctl takes for
// the server.
bool postmaster_running(const fs::path& datadir) {
    std::ifstream pidfile(datadir / "postmaster.pid");
    pid_t pid = 0;
    if (!(pidfile >> pid) || pid <= 0 || ::kill(pid, 0) != 0) {
        return false;
    }
    std::error_code ec;
    const auto exe = fs::read_symlink("/proc/" + std::to_string(pid) + "/exe", ec);
    return !ec && exe.filename() == "postgres";
}

PostgresControl read_control(const fs::path& datadir) {
    const auto command = as_postgres({tool("pg_controldata"), "-D", datadir.string()}, 30s);
    const auto result = run(command);
    if (!result.ok()) {
        throw Error(Errc::io, "reading the datadir's control file: " + failure(command, result));
    }
    const auto control = parse_controldata(result.out);
    if (!control) {
        throw Error(Errc::io, format_argv(command.argv) + " printed no cluster state or timeline");
    }
    return *control;
}

LocalPostgres observe_local(const fs::path& datadir) {
    LocalPostgres local;
    std::error_code ec;
    local.has_cluster = fs::exists(datadir / "PG_VERSION", ec);
    if (!local.has_cluster) {
        return local;
    }
    local.standby_signal = fs::exists(datadir / "standby.signal", ec);
    local.running = postmaster_running(datadir);
    if (!local.running) {
        local.control = read_control(datadir);
    }
    return local;
}

ProcessResult psql(const std::string& conninfo, const std::string& sql) {
    return run(as_postgres(
        {"psql", "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql, "--dbname=" + conninfo}, 15s));
}

std::vector<PeerPostgres> ask_peers(const NodeConfig& node, const std::string& passfile, std::string& notes) {
    std::vector<PeerPostgres> peers;
    for (const auto* member : node.cluster_model->members_with("db")) {
        if (member->hostname == node.hostname) {
            continue;
        }
        PeerPostgres peer{member->hostname, member->address, PeerRole::unreachable};
        const auto result = psql(rejoin_conninfo(member->address, passfile), "SELECT pg_is_in_recovery()");
        if (result.ok() && (result.out == "f\n" || result.out == "t\n")) {
            peer.role = result.out == "f\n" ? PeerRole::primary : PeerRole::standby;
        } else {
            notes +=
                (notes.empty() ? "" : "; ") + member->hostname + " did not answer: " +
                (result.timed_out ? std::string("timed out") : result.err.substr(0, result.err.find('\n')));
        }
        peers.push_back(std::move(peer));
    }
    return peers;
}

}  // namespace

void run_postgres_single_user(
    const std::string& sql, std::chrono::milliseconds timeout, const std::string& what) {
    auto command = as_postgres({tool("postgres"), "--single", "-D", kConfigDir, "postgres"}, timeout);
    command.stdin_data = sql;
    const auto result = run(command);
    if (!result.ok()) {
        throw Error(Errc::io, what + ": " + failure(command, result));
    }
    if (const auto error = single_user_error(result.out + result.err)) {
        throw Error(Errc::io, what + ": " + *error);
    }
}

namespace {

// The crash's recovery in single-user mode, ended at once: the datadir is then cleanly shut down.
void recover_crash(const fs::path& datadir) {
    run_postgres_single_user("", kCrashRecoveryTimeout, "recovering the crashed datadir");
    const auto control = read_control(datadir);
    if (control.state != "shut down") {
        throw Error(
            Errc::io,
            "recovering the crashed datadir: its state is '" + control.state +
                "' afterwards, not 'shut down'");
    }
}

// pg_rewind against the source, after the crash's recovery when the datadir was left running.
void rewind(const fs::path& datadir, const std::string& conninfo, bool crash_recovery) {
    if (crash_recovery) {
        recover_crash(datadir);
    }
    // A source promoted moments ago may not have checkpointed its new timeline yet: pg_rewind would
    // read the old one from its control file and find nothing to rewind.
    (void)psql(conninfo, "CHECKPOINT");
    const auto command = as_postgres(
        {tool("pg_rewind"), "--target-pgdata=" + datadir.string(), "--source-server=" + conninfo},
        kRewindTimeout);
    const auto result = run(command);
    if (!result.ok()) {
        throw Error(Errc::io, failure(command, result));
    }
}

void mark_standby(const fs::path& datadir) {
    write_secret_file(datadir / "standby.signal", "", 0600, "postgres", true);
}

// A fresh copy of the source into the scratch directory, made a standby there, then exchanged with the
// datadir in one rename; the old datadir goes with the scratch directory.
void rebuild(const fs::path& datadir, const std::string& conninfo) {
    fs::path scratch = datadir;
    scratch += kRejoinScratchSuffix;
    fs::remove_all(scratch);
    const auto command = as_postgres(
        {tool("pg_basebackup"),
         "--pgdata=" + scratch.string(),
         "--dbname=" + conninfo,
         "--wal-method=stream",
         "--checkpoint=fast",
         "--no-password"},
        kBaseBackupTimeout);
    const auto result = run(command);
    if (!result.ok()) {
        throw Error(Errc::io, failure(command, result));
    }
    mark_standby(scratch);
    check_errno(
        ::renameat2(AT_FDCWD, scratch.c_str(), AT_FDCWD, datadir.c_str(), RENAME_EXCHANGE),
        "exchanging " + scratch.string() + " with " + datadir.string());
    // The exchange on disk before the old datadir goes.
    const UniqueFd parent(::open(datadir.parent_path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    check_errno(parent ? 0 : -1, "opening " + datadir.parent_path().string());
    check_errno(::fsync(parent.get()), "syncing " + datadir.parent_path().string());
    fs::remove_all(scratch);
}

}  // namespace

std::string_view to_string(RejoinMethod method) {
    switch (method) {
        case RejoinMethod::rewind:
            return "pg_rewind";
        case RejoinMethod::base_backup:
            return "pg_basebackup";
        case RejoinMethod::none:
            break;
    }
    return "none";
}

std::optional<PostgresRejoin> rejoin_postgres_if_needed(const NodeConfig& node, const fs::path& root) {
    std::error_code ec;
    if (!node.cluster_model || !fs::equivalent(root, "/", ec)) {
        return std::nullopt;
    }
    const ClusterMember* self = node.cluster_model->find(node.hostname);
    if (self == nullptr || !self->carries("db")) {
        return std::nullopt;
    }
    const auto started = std::chrono::steady_clock::now();
    const fs::path datadir = root / kPostgresDatadir;
    const std::string passfile = (root / kPostgresPassfile).string();
    PostgresRejoin rejoin;
    {
        fs::path scratch = datadir;
        scratch += kRejoinScratchSuffix;
        if (fs::exists(scratch, ec)) {
            fs::remove_all(scratch);
            rejoin.details = "removed " + scratch.string() + " (left by an interrupted rejoin)";
        }
    }
    const auto local = observe_local(datadir);
    std::vector<PeerPostgres> peers;
    if (!left_as_is(local)) {
        std::string notes;
        peers = ask_peers(node, passfile, notes);
        if (!notes.empty()) {
            rejoin.details += (rejoin.details.empty() ? "" : "; ") + notes;
        }
    }
    rejoin.decision = decide_postgres_rejoin(local, peers);
    const auto& decision = rejoin.decision;
    if (decision.action == RejoinAction::refuse) {
        throw Error(Errc::refused, datadir.string() + ": " + decision.reason);
    }
    if (decision.action == RejoinAction::rejoin) {
        const auto conninfo = rejoin_conninfo(decision.source->address, passfile);
        const std::string from = " from " + decision.source->hostname + " (" + decision.source->address + ")";
        const std::string recovered = decision.crash_recovery ? "crash recovery and " : "";
        std::string step;
        try {
            rewind(datadir, conninfo, decision.crash_recovery);
            mark_standby(datadir);
            rejoin.method = RejoinMethod::rewind;
            step = recovered + "pg_rewind" + from + " done";
        } catch (const Error& rewind_error) {
            // What a failed rewind leaves (a datadir it may have half rewritten) is replaced whole.
            try {
                rebuild(datadir, conninfo);
            } catch (const Error& e) {
                throw Error(
                    Errc::io,
                    "rejoining " + decision.source->hostname + "'s primary as a standby: " + recovered +
                        "pg_rewind failed (" + rewind_error.what() +
                        "), then pg_basebackup failed: " + e.what());
            }
            rejoin.method = RejoinMethod::base_backup;
            step = recovered + "pg_rewind failed (" + rewind_error.what() +
                   "); new datadir by pg_basebackup" + from;
        }
        rejoin.details += (rejoin.details.empty() ? "" : "; ") + step + ", standby.signal written";
    }
    rejoin.took =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
    return rejoin;
}

}  // namespace stormnode::roles
