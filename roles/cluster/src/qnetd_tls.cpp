#include "stormnode/cluster/qnetd_tls.hpp"

#include <stormnode/common/error.hpp>
#include <stormnode/common/subprocess.hpp>
#include <stormnode/common/temp_dir.hpp>

#include <chrono>
#include <filesystem>
#include <vector>

namespace stormnode::roles {
namespace {

namespace fs = std::filesystem;

constexpr const char* kValidityDays = "36500";

// openssl req -x509: a new RSA key and its certificate, self-signed (no ca_key) or signed by the CA.
void make_certificate(
    const std::string& subject,
    const std::vector<std::string>& extensions,
    const fs::path& key,
    const fs::path& cert,
    const fs::path& ca_cert = {},
    const fs::path& ca_key = {}) {
    std::vector<std::string> argv{
        "openssl",
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-noenc",
        "-keyout",
        key.string(),
        "-out",
        cert.string(),
        "-subj",
        "/CN=" + subject,
        "-days",
        kValidityDays};
    if (!ca_key.empty()) {
        argv.insert(argv.end(), {"-CA", ca_cert.string(), "-CAkey", ca_key.string()});
    }
    for (const auto& extension : extensions) {
        argv.insert(argv.end(), {"-addext", extension});
    }
    try {
        (void)run_checked(Command{.argv = argv, .timeout = std::chrono::minutes(1)});
    } catch (const Error& e) {
        throw Error(
            e.code(), "making the qnetd certificate '" + subject + "' (package openssl): " + e.what());
    }
}

}  // namespace

bool is_qnetd_tls_secret(const std::string& name) {
    return name == kQnetdCaCertSecret || name == kQnetdServerCertSecret || name == kQnetdServerKeySecret ||
           name == kQnetdClientCertSecret || name == kQnetdClientKeySecret;
}

QnetdTlsMaterial make_qnetd_tls(const std::string& cluster_name) {
    if (cluster_name.empty() || cluster_name.size() > 64) {
        throw Error(
            Errc::invalid_input,
            "cluster name '" + cluster_name + "' cannot be a certificate's CN (1 to 64 characters)");
    }
    const TempDir scratch("stormctl-qnetd-ca");
    const fs::path dir = scratch.path();
    make_certificate(
        kQnetdCaSubject,
        {"basicConstraints=critical,CA:TRUE", "keyUsage=critical,keyCertSign,cRLSign"},
        dir / "ca.key",
        dir / "ca.crt");
    const std::vector<std::string> leaf{
        "basicConstraints=critical,CA:FALSE", "keyUsage=critical,digitalSignature,keyEncipherment"};
    auto with = [](std::vector<std::string> list, const std::string& extra) {
        list.push_back(extra);
        return list;
    };
    make_certificate(
        kQnetdServerSubject,
        with(leaf, "extendedKeyUsage=serverAuth"),
        dir / "server.key",
        dir / "server.crt",
        dir / "ca.crt",
        dir / "ca.key");
    // qnetd matches the client certificate's CN against the cluster_name qdevice announces.
    make_certificate(
        cluster_name,
        with(leaf, "extendedKeyUsage=clientAuth"),
        dir / "client.key",
        dir / "client.crt",
        dir / "ca.crt",
        dir / "ca.key");
    return {
        .ca_cert = read_file(dir / "ca.crt"),
        .server_cert = read_file(dir / "server.crt"),
        .server_key = read_file(dir / "server.key"),
        .client_cert = read_file(dir / "client.crt"),
        .client_key = read_file(dir / "client.key")};
}

const std::string& qnetd_tls_secret(const QnetdTlsMaterial& material, const std::string& name) {
    if (name == kQnetdCaCertSecret) {
        return material.ca_cert;
    }
    if (name == kQnetdServerCertSecret) {
        return material.server_cert;
    }
    if (name == kQnetdServerKeySecret) {
        return material.server_key;
    }
    if (name == kQnetdClientCertSecret) {
        return material.client_cert;
    }
    if (name == kQnetdClientKeySecret) {
        return material.client_key;
    }
    throw Error(Errc::invalid_input, "'" + name + "' is not a qnetd TLS secret");
}

}  // namespace stormnode::roles
