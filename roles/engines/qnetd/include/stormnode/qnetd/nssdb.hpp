// The NSS databases corosync-qnetd and corosync-qdevice read for TLS, built from the cluster's qnetd
// secrets (stormnode/cluster/qnetd_tls.hpp) without the corosync tools' interactive enrolment. The result
// is what corosync-qnetd-certutil -i and corosync-qdevice-net-certutil -i/-m leave: the CA under the
// nickname "QNet CA" (trust CT,, for qnetd, CT,c,c for qdevice) and the daemon's certificate with its
// key under the nickname the daemon looks for ("QNetd Cert", "Cluster Cert"), no database password.
#pragma once

#include <stormnode/cluster/node_config.hpp>

#include <filesystem>
#include <optional>
#include <string>

namespace stormnode::roles {

inline constexpr const char* kQnetdNssdb = "etc/corosync/qnetd/nssdb";
inline constexpr const char* kQdeviceNssdb = "etc/corosync/qdevice/net/nssdb";
inline constexpr const char* kQnetdCaNickname = "QNet CA";
// Beside the database: the CA and certificate it was built from (not secret). The same text means
// the database is current and is left alone.
inline constexpr const char* kNssdbStamp = "stormnode-cluster.pem";

struct NssdbSpec {
    std::filesystem::path dir;  // the database directory (under the root being configured)
    std::string ca_trust;       // certutil -t of the CA
    std::string cert_nickname;  // the daemon's own certificate
    std::string cert_usage;     // certutil -V -u: what the daemon uses it for (V: TLS server, C: TLS client)
    std::string user;           // owner of the directory and files (the daemon's user)
    unsigned dir_mode = 0700;
};

struct NssdbPem {
    std::string ca_cert;
    std::string cert;
    std::string key;
};

// The spec of qnetd's database (user coroqnetd, as its unit runs it) and of qdevice's (root).
NssdbSpec qnetd_nssdb_spec(const std::filesystem::path& root);
NssdbSpec qdevice_nssdb_spec(const std::filesystem::path& root);

// The stamp's text for pem: the CA then the certificate.
std::string nssdb_stamp(const NssdbPem& pem);

// Builds spec.dir's database from pem with certutil, openssl pkcs12 and pk12util (in a scratch
// directory, then its files written into spec.dir, 0600, the stamp last) unless the stamp there already
// matches. Files of another database (the first-boot or package CA: cert8.db, qnetd-cacert.crt, ...) are
// removed. Ownership is given only on the running system (live). Returns whether it was built. Throws
// Error naming the tool and package (libnss3-tools, openssl) when a step fails.
bool install_nssdb(const NssdbSpec& spec, const NssdbPem& pem, bool live);

// storm-roled's side of the quorum role: on a quorum member of cluster.yaml, the qnetd database from the
// qnetd-ca-cert, qnetd-server-cert and qnetd-server-key secrets, on the running system only (a test
// root's tools and users are not this system's). A cluster with no secrets file or no qnetd-ca-cert
// secret leaves the node's own database (first boot's) in place. Returns what was done for the journal;
// nullopt when this node is not a quorum member of a cluster. Throws Error when the server certificate
// or key is missing beside the CA, or a step fails.
std::optional<std::string> prepare_qnetd_start(const NodeConfig& node, const std::filesystem::path& root);

}  // namespace stormnode::roles
