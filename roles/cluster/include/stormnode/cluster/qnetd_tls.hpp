// TLS between corosync-qdevice (db members, active-passive) and corosync-qnetd (the quorum member), with
// no interactive enrolment: `stormctl cluster init` makes a CA for the cluster and, from it, qnetd's
// server certificate and the cluster's client certificate, and stores them as cluster secrets (PEM).
// The CA's key is not kept: nothing signs after init, and a leaked secrets file then cannot mint a
// certificate for another cluster name. At role start storm-roled builds the NSS databases the daemons
// read from those secrets (stormnode/qnetd/nssdb.hpp).
//
// What the daemons check (corosync-qdevice's qnet-config.h, qnetd-client-msg-received.c): qdevice
// verifies the server certificate against its CA and the name "Qnetd Server"; qnetd (client
// certificate required by default) verifies the client's against its CA and the cluster_name the
// client announced (CERT_VerifyCertName: the CN, there being no subjectAltName).
#pragma once

#include <string>

namespace stormnode::roles {

inline constexpr const char* kQnetdCaCertSecret = "qnetd-ca-cert";
inline constexpr const char* kQnetdServerCertSecret = "qnetd-server-cert";
inline constexpr const char* kQnetdServerKeySecret = "qnetd-server-key";
inline constexpr const char* kQnetdClientCertSecret = "qnetd-client-cert";
inline constexpr const char* kQnetdClientKeySecret = "qnetd-client-key";

// The subjects corosync-qnetd-certutil and corosync-qdevice-net-certutil give them.
inline constexpr const char* kQnetdCaSubject = "QNet CA";
inline constexpr const char* kQnetdServerSubject = "Qnetd Server";

struct QnetdTlsMaterial {
    std::string ca_cert;      // PEM
    std::string server_cert;  // PEM, CN=Qnetd Server, signed by the CA
    std::string server_key;   // PEM (PKCS#8, unencrypted)
    std::string client_cert;  // PEM, CN=<cluster name>, signed by the CA
    std::string client_key;   // PEM (PKCS#8, unencrypted)
};

// Whether name is one of the secrets above (they are made together, not as random values).
bool is_qnetd_tls_secret(const std::string& name);

// A new CA and the two certificates it signs, with openssl (RSA 2048, valid 100 years like the
// corosync tools' 1200 months). Throws Error when openssl is missing or fails, or when cluster_name
// cannot be a CN (empty or longer than 64).
QnetdTlsMaterial make_qnetd_tls(const std::string& cluster_name);

// The secret's value from material, by secret name (one of the names above).
const std::string& qnetd_tls_secret(const QnetdTlsMaterial& material, const std::string& name);

}  // namespace stormnode::roles
