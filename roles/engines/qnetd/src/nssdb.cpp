#include "stormnode/qnetd/nssdb.hpp"

#include "stormnode/cluster/secret_file.hpp"

#include <stormnode/cluster/qnetd_tls.hpp>
#include <stormnode/common/error.hpp>
#include <stormnode/common/random.hpp>
#include <stormnode/common/subprocess.hpp>
#include <stormnode/common/temp_dir.hpp>

#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <system_error>

namespace stormnode::roles {
namespace {

namespace fs = std::filesystem;

// What certutil -N makes (NSS's sql format), and what other tools leave that refers to another CA.
constexpr std::array kDatabaseFiles{"cert9.db", "key4.db", "pkcs11.txt"};
constexpr std::array kStaleFiles{
    "cert8.db",
    "key3.db",
    "secmod.db",
    "qnetd-cacert.crt",
    "serial.txt",
    "noise.txt",
    "pwdfile.txt",
    "qdevice-net-node.p12",
    "qdevice-net-node.crq"};

void run_tool(const std::vector<std::string>& argv, const std::string& package, const std::string& what) {
    try {
        (void)run_checked(Command{.argv = argv, .timeout = std::chrono::minutes(1)});
    } catch (const Error& e) {
        throw Error(e.code(), what + " (package " + package + "): " + e.what());
    }
}

}  // namespace

NssdbSpec qnetd_nssdb_spec(const fs::path& root) {
    return {
        .dir = root / kQnetdNssdb,
        .ca_trust = "CT,,",
        .cert_nickname = "QNetd Cert",
        .cert_usage = "V",
        .user = "coroqnetd",
        .dir_mode = 0770};
}

NssdbSpec qdevice_nssdb_spec(const fs::path& root) {
    return {
        .dir = root / kQdeviceNssdb,
        .ca_trust = "CT,c,c",
        .cert_nickname = "Cluster Cert",
        .cert_usage = "C",
        .user = "root",
        .dir_mode = 0700};
}

std::string nssdb_stamp(const NssdbPem& pem) {
    return pem.ca_cert + pem.cert;
}

namespace {

// Makes the database in work/db with certutil, openssl and pk12util, and verifies the certificate
// as the daemon will use it. Returns its directory.
fs::path build_nssdb(const NssdbSpec& spec, const NssdbPem& pem, const fs::path& work) {
    const fs::path db = work / "db";
    fs::create_directories(db);
    const std::string sql_db = "sql:" + db.string();
    write_file_atomic(work / "ca.pem", pem.ca_cert, 0600);
    write_file_atomic(work / "cert.pem", pem.cert, 0600);
    write_file_atomic(work / "key.pem", pem.key, 0600);
    // The PKCS#12 bundle only carries the key into the database: a throw-away password (NSS and OpenSSL
    // disagree on how an empty one is encoded), in a file so that it shows on no command line.
    write_file_atomic(work / "p12.pass", random_hex(24) + "\n", 0600);

    run_tool(
        {"certutil", "-N", "-d", sql_db, "--empty-password"}, "libnss3-tools", "creating the NSS database");
    run_tool(
        {"certutil",
         "-A",
         "-d",
         sql_db,
         "-n",
         kQnetdCaNickname,
         "-t",
         spec.ca_trust,
         "-a",
         "-i",
         (work / "ca.pem").string()},
        "libnss3-tools",
        "importing the qnetd CA");
    run_tool(
        {"openssl",
         "pkcs12",
         "-export",
         "-in",
         (work / "cert.pem").string(),
         "-inkey",
         (work / "key.pem").string(),
         "-name",
         spec.cert_nickname,
         "-passout",
         "file:" + (work / "p12.pass").string(),
         "-out",
         (work / "cert.p12").string()},
        "openssl",
        "bundling '" + spec.cert_nickname + "' with its key");
    run_tool(
        {"pk12util", "-i", (work / "cert.p12").string(), "-d", sql_db, "-w", (work / "p12.pass").string()},
        "libnss3-tools",
        "importing '" + spec.cert_nickname + "' and its key");
    // What the daemon will do with it: fails here, with NSS's reason, rather than in the daemon's log.
    run_tool(
        {"certutil", "-V", "-d", sql_db, "-n", spec.cert_nickname, "-u", spec.cert_usage},
        "libnss3-tools",
        "verifying '" + spec.cert_nickname + "' against the qnetd CA");
    return db;
}

// Replaces what is in spec.dir (the files of an older database, and those other tools leave) with the
// database's files, each written as a secret, and gives the directory its mode and owner.
void put_nssdb_in_place(const NssdbSpec& spec, const fs::path& db, bool live) {
    std::error_code ec;
    fs::create_directories(spec.dir);
    for (const char* name : kStaleFiles) {
        fs::remove(spec.dir / name, ec);
    }
    for (const char* name : kDatabaseFiles) {
        write_secret_file(spec.dir / name, read_file(db / name), 0600, spec.user, live);
    }
    check_errno(::chmod(spec.dir.c_str(), spec.dir_mode), "setting the mode of " + spec.dir.string());
    if (live) {
        const passwd* account = ::getpwnam(spec.user.c_str());
        if (account == nullptr) {
            throw Error(
                Errc::not_found,
                "user '" + spec.user + "' (owner of " + spec.dir.string() + ") does not exist");
        }
        check_errno(
            ::chown(spec.dir.c_str(), account->pw_uid, account->pw_gid),
            "changing the owner of " + spec.dir.string());
    }
}

}  // namespace

bool install_nssdb(const NssdbSpec& spec, const NssdbPem& pem, bool live) {
    std::error_code ec;
    const fs::path stamp = spec.dir / kNssdbStamp;
    if (fs::exists(stamp, ec) && fs::exists(spec.dir / "cert9.db", ec) &&
        read_file(stamp) == nssdb_stamp(pem)) {
        return false;
    }
    const TempDir scratch("storm-roled-nssdb");
    const fs::path db = build_nssdb(spec, pem, scratch.path());
    put_nssdb_in_place(spec, db, live);
    // Last: a database left half in place is made again at the next start.
    write_secret_file(stamp, nssdb_stamp(pem), 0600, spec.user, live);
    return true;
}

std::optional<std::string> prepare_qnetd_start(const NodeConfig& node, const fs::path& root) {
    if (!node.cluster_model) {
        return std::nullopt;
    }
    const Cluster& cluster = *node.cluster_model;
    const ClusterMember* self = cluster.find(node.hostname);
    if (self == nullptr || !self->carries("quorum")) {
        return std::nullopt;
    }
    // A cluster without qnetd material (no secrets file: a Galera cluster's garbd needs none, or one made
    // before qdevice's TLS): qnetd keeps this node's own database, as without a cluster.
    const std::string own = "qnetd keeps this node's own NSS database: cluster " + cluster.name + " has no ";
    if (cluster.secrets.empty()) {
        return own + "secrets file";
    }
    const auto secrets = load_cluster_secrets(cluster);
    if (!secrets.contains(kQnetdCaCertSecret)) {
        return own + kQnetdCaCertSecret + " secret";
    }
    const NssdbPem pem{
        .ca_cert = cluster_secret(secrets, cluster, kQnetdCaCertSecret),
        .cert = cluster_secret(secrets, cluster, kQnetdServerCertSecret),
        .key = cluster_secret(secrets, cluster, kQnetdServerKeySecret)};
    std::error_code ec;
    if (!fs::equivalent(root, "/", ec)) {
        return std::string("qnetd NSS database not built (not the running system's root)");
    }
    return install_nssdb(qnetd_nssdb_spec(root), pem, true)
               ? "qnetd NSS database built from cluster " + cluster.name + "'s CA"
               : "qnetd NSS database already holds cluster " + cluster.name + "'s CA";
}

}  // namespace stormnode::roles
