#include "stormnode/pacemaker/start.hpp"

#include "stormnode/cluster/secret_file.hpp"
#include "stormnode/qnetd/nssdb.hpp"

#include <stormnode/cluster/qnetd_tls.hpp>
#include <stormnode/common/error.hpp>
#include <stormnode/common/subprocess.hpp>
#include <stormnode/common/temp_dir.hpp>

#include <unistd.h>

#include <system_error>

namespace stormnode::roles {
namespace {

namespace fs = std::filesystem;

const ClusterMember* db_member(const NodeConfig& node) {
    if (!node.cluster_model) {
        return nullptr;
    }
    const ClusterMember* self = node.cluster_model->find(node.hostname);
    return self != nullptr && self->carries("db") ? self : nullptr;
}

bool is_configuring(const NodeConfig& node) {
    const ClusterMember* first = pacemaker_configuring_member(*node.cluster_model);
    return first != nullptr && first->hostname == node.hostname;
}

ProcessResult run_checked(Command command, const std::string& what) {
    auto result = run(command);
    if (!result.ok()) {
        std::string text =
            what + ": " + format_argv(command.argv) +
            (result.timed_out ? " timed out" : " exited with " + std::to_string(result.exit_status));
        if (!result.err.empty()) {
            text += ": " + result.err;
        }
        throw Error(Errc::io, text);
    }
    return result;
}

}  // namespace

std::optional<PacemakerStart> prepare_pacemaker_start(const NodeConfig& node, const fs::path& root) {
    if (db_member(node) == nullptr) {
        return std::nullopt;
    }
    const Cluster& cluster = *node.cluster_model;
    const auto secrets = load_cluster_secrets(cluster);
    PacemakerStart start;
    start.configuring = is_configuring(node);
    std::error_code ec;
    const bool live = fs::equivalent(root, "/", ec);

    // The same key on every member (the first-boot generator's is this node's own: replaced).
    const auto authkey = corosync_authkey(cluster_secret(secrets, cluster, kCorosyncAuthkeySecret));
    if (!authkey) {
        throw Error(
            Errc::invalid_input,
            cluster.secrets_path().string() + ": secret '" + kCorosyncAuthkeySecret +
                "' is not the hex of at least 128 bytes (stormctl cluster init makes 256)");
    }
    write_secret_file(root / kCorosyncAuthkey, *authkey, 0400, "root", live);
    std::vector<std::string> hosts;
    if (const auto vip = db_vip_address(cluster)) {
        hosts.push_back(*vip);
    }
    for (const auto* member : cluster.members_with("db")) {
        hosts.push_back(member->address);
    }
    const std::string& password = cluster_secret(secrets, cluster, kReplicationSecret);
    write_secret_file(
        root / kPostgresPassfile, replication_passfile(hosts, password), 0600, "postgres", live);
    start.summary = "corosync authkey and replication passfile written";

    // qdevice's TLS to qnetd: the cluster's CA and client certificate (corosync.conf says tls: required).
    const NssdbPem qdevice_pem{
        .ca_cert = cluster_secret(secrets, cluster, kQnetdCaCertSecret),
        .cert = cluster_secret(secrets, cluster, kQnetdClientCertSecret),
        .key = cluster_secret(secrets, cluster, kQnetdClientKeySecret)};
    if (!live) {
        start.summary += "; qdevice NSS database not built (not the running system's root)";
    } else if (install_nssdb(qdevice_nssdb_spec(root), qdevice_pem, live)) {
        start.summary += "; qdevice NSS database built";
    }

    // Before the seeding: a former primary made a standby holds standby.signal.
    start.rejoin = rejoin_postgres_if_needed(node, root);

    const fs::path datadir = root / kPostgresDatadir;
    const bool seeded = fs::exists(datadir / kSeededMarker, ec) || fs::exists(datadir / "standby.signal", ec);
    if (!start.configuring || seeded) {
        start.summary +=
            start.configuring ? "; datadir already seeded" : "; standby of the configuring member";
        return start;
    }
    if (!fs::exists(datadir / "PG_VERSION", ec)) {
        throw Error(
            Errc::not_found,
            datadir.string() + " holds no PostgreSQL cluster (postgresql-cluster at role init)");
    }
    if (!live) {
        start.summary += "; replication role not seeded (not the running system's root)";
        return start;
    }
    // Single-user mode: the server is not running (Pacemaker has not started it yet).
    run_postgres_single_user(
        replication_role_sql(password) + rewind_grants_sql(),
        std::chrono::seconds(60),
        "seeding the replication role");
    write_file_atomic(
        datadir / kSeededMarker,
        "# storm-roled: the replication role was added before the first start\n",
        0600);
    start.summary += "; replication role seeded into the datadir";
    return start;
}

std::optional<std::string> configure_pacemaker(const NodeConfig& node, const fs::path& root) {
    if (db_member(node) == nullptr || !is_configuring(node)) {
        return std::nullopt;
    }
    const auto timeout = std::chrono::seconds(20);
    // A datadir that is a standby (a former primary made one at its start, or one PAF started) says the
    // pair formed before: only a CIB the DC has synced tells whether the resources exist, and one lost
    // with /var/lib/pacemaker is empty here until then (this node would designate itself the first
    // primary again). The very first formation (no standby yet) loads at once: the first DC is elected
    // only after dc-deadtime and keeps the newest CIB.
    std::error_code ec;
    const bool formed_before = fs::exists(root / kPostgresDatadir / "standby.signal", ec);
    Command joined{
        .argv =
            {"cibadmin",
             "--query",
             "--xpath",
             "//node_state[@uname='" + node.hostname + "'][@crmd='online'][@join='member']"},
        .timeout = timeout};
    if (formed_before && !run(joined).ok()) {
        throw Error(Errc::timeout, "not yet a member of the cluster's DC (its CIB is not synced here)");
    }
    // The CIB is the truth: resources there already (loaded before, or by an operator) are left alone.
    Command query{
        .argv = {"cibadmin", "--query", "--xpath", std::string("//primitive[@id='") + kPafResource + "']"},
        .timeout = timeout};
    if (run(query).ok()) {
        return std::string();
    }
    // PAF promotes no one at a first start unless a master score exists: this member's datadir holds the
    // replication role, so it is the first primary.
    run_checked(
        Command{
            .argv =
                {"crm_attribute",
                 "--node",
                 node.hostname,
                 "--lifetime",
                 "forever",
                 "--name",
                 std::string("master-") + kPafResource,
                 "--update",
                 "1"},
            .timeout = timeout},
        "designating the first primary");
    run_checked(
        Command{
            .argv =
                {"crm", "--force", "configure", "load", "update", (root / kPacemakerResourcesFile).string()},
            .timeout = timeout},
        "loading the pacemaker resources");
    return std::string("resources loaded from /") + kPacemakerResourcesFile + ", " + node.hostname +
           " first primary";
}

}  // namespace stormnode::roles
