// The cluster's qnetd CA and the certificates `stormctl cluster init` makes from it, checked with openssl
// the way NSS will use them: each verifies against its own cluster's CA and not another's, with the CNs
// the daemons match (qdevice: "Qnetd Server"; qnetd: the cluster name), and each key is its certificate's.
#include "cluster_fixture.hpp"

#include <stormnode/cluster/cluster.hpp>
#include <stormnode/cluster/qnetd_tls.hpp>
#include <stormnode/common/error.hpp>
#include <stormnode/common/subprocess.hpp>
#include <stormnode/common/temp_dir.hpp>

#include <catch2/catch.hpp>

#include <filesystem>

namespace fs = std::filesystem;
using namespace stormnode;
using namespace stormnode::roles;

namespace {

const Catalog& catalog() {
    return stormnode::roles::test::real_catalog();
}

ProcessResult openssl(const std::vector<std::string>& args) {
    Command command{.argv = {"openssl"}, .timeout = std::chrono::seconds(30)};
    command.argv.insert(command.argv.end(), args.begin(), args.end());
    auto result = run(command);
    UNSCOPED_INFO(
        format_argv(command.argv) << " -> " << result.exit_status << "\n"
                                  << result.out << result.err);
    return result;
}

// Writes each PEM to dir/<name> and returns the path.
std::string pem_file(const TempDir& dir, const std::string& name, const std::string& pem) {
    const auto path = dir.path() / name;
    write_file_atomic(path, pem, 0600);
    return path.string();
}

bool verifies(const std::string& ca, const std::string& cert, const std::string& purpose) {
    return openssl({"verify", "-CAfile", ca, "-purpose", purpose, cert}).ok();
}

std::string subject(const std::string& cert) {
    const auto result = openssl({"x509", "-in", cert, "-noout", "-subject", "-nameopt", "RFC2253"});
    REQUIRE(result.ok());
    return result.out;
}

std::string public_key_of_cert(const std::string& cert) {
    const auto result = openssl({"x509", "-in", cert, "-noout", "-pubkey"});
    REQUIRE(result.ok());
    return result.out;
}

std::string public_key_of_key(const std::string& key) {
    const auto result = openssl({"pkey", "-in", key, "-pubout"});
    REQUIRE(result.ok());
    return result.out;
}

}  // namespace

TEST_CASE(
    "the qnetd CA signs a server and a client certificate with the names the daemons match",
    "[roles][qnetd]") {
    const auto material = make_qnetd_tls("cloud-db");
    const TempDir dir{"stormnode-qnetd-tls"};
    const auto ca = pem_file(dir, "ca.pem", material.ca_cert);
    const auto server = pem_file(dir, "server.pem", material.server_cert);
    const auto server_key = pem_file(dir, "server.key", material.server_key);
    const auto client = pem_file(dir, "client.pem", material.client_cert);
    const auto client_key = pem_file(dir, "client.key", material.client_key);

    CHECK(subject(ca) == "subject=CN=QNet CA\n");
    CHECK(subject(server) == "subject=CN=Qnetd Server\n");
    CHECK(subject(client) == "subject=CN=cloud-db\n");
    CHECK(verifies(ca, server, "sslserver"));
    CHECK(verifies(ca, client, "sslclient"));
    // Each key is its certificate's, and the two are not the same key.
    CHECK(public_key_of_key(server_key) == public_key_of_cert(server));
    CHECK(public_key_of_key(client_key) == public_key_of_cert(client));
    CHECK(public_key_of_key(server_key) != public_key_of_key(client_key));

    // Another cluster's CA is another CA: its certificates do not verify against this one.
    const auto other = make_qnetd_tls("cloud-db");
    const auto other_client = pem_file(dir, "other-client.pem", other.client_cert);
    CHECK_FALSE(verifies(ca, other_client, "sslclient"));
}

TEST_CASE("a cluster name that cannot be a CN makes no CA", "[roles][qnetd]") {
    CHECK_THROWS_WITH(make_qnetd_tls(""), Catch::Contains("cannot be a certificate's CN"));
    CHECK_THROWS_WITH(make_qnetd_tls(std::string(65, 'a')), Catch::Contains("cannot be a certificate's CN"));
}

TEST_CASE(
    "cluster init stores the qnetd material as the db and quorum members' secrets",
    "[roles][qnetd][cluster]") {
    TempDir dir{"stormnode-cluster"};
    const auto file = dir.path() / "cluster.yaml";
    const Cluster cluster = stormnode::roles::test::pg_pair_cluster();
    REQUIRE(write_new_cluster(file, cluster, catalog()).created);
    const auto written = load_cluster(file, &catalog());
    const auto secrets = load_cluster_secrets(written);
    for (const char* name :
         {kQnetdCaCertSecret,
          kQnetdServerCertSecret,
          kQnetdServerKeySecret,
          kQnetdClientCertSecret,
          kQnetdClientKeySecret}) {
        INFO(name);
        REQUIRE(secrets.contains(name));
        CHECK(secrets.at(name).rfind("-----BEGIN ", 0) == 0);
    }
    // Read back as storm-roled reads them, they still form one CA and its two certificates.
    const auto ca = pem_file(dir, "ca.pem", secrets.at(kQnetdCaCertSecret));
    CHECK(verifies(ca, pem_file(dir, "server.pem", secrets.at(kQnetdServerCertSecret)), "sslserver"));
    const auto client = pem_file(dir, "client.pem", secrets.at(kQnetdClientCertSecret));
    CHECK(verifies(ca, client, "sslclient"));
    CHECK(subject(client) == "subject=CN=cloud-pg\n");
    CHECK(
        public_key_of_key(pem_file(dir, "client.key", secrets.at(kQnetdClientKeySecret))) ==
        public_key_of_cert(client));
}
