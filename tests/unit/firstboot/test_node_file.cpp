// node.yaml: the model, its checks, and the round trip writer -> reader (ours and storm-roled's).
#include <stormnode/catalog/node_file.hpp>
#include <stormnode/cluster/node_config.hpp>
#include <stormnode/common/error.hpp>
#include <stormnode/common/temp_dir.hpp>
#include <stormnode/firstboot/networkd.hpp>

#include <catch2/catch.hpp>
#include <sys/stat.h>

using namespace stormnode;
using namespace stormnode::firstboot;
using namespace stormnode::roles;

namespace {

const roles::Catalog& catalog() {
    static const roles::Catalog c =
        roles::load_valid_catalog(std::filesystem::path(STORMNODE_SOURCE_DIR) / "roles/catalog");
    return c;
}

std::vector<std::string> problems(const std::string& text) {
    Diagnostics diags("node.yaml");
    (void)parse_node_file(text, "node.yaml", &catalog(), diags);
    std::vector<std::string> out;
    for (const auto& d : diags.items()) {
        out.push_back(d.to_string());
    }
    return out;
}

NodeFile full_node() {
    NodeFile node;
    node.roles = {{"db", "active-passive"}, {"monitor", ""}};
    node.hostname = "db-1";
    node.zone = "rack-1";
    node.network = Network{
        .mac = "52:54:00:12:34:56",
        .mode = AddressMode::fixed,
        .address = "10.0.0.5/24",
        .gateway = "10.0.0.1",
        .dns = {"10.0.0.2"}};
    node.features = {"local_db"};
    node.variables = {{"vip", "10.0.0.100"}};
    return node;
}

}  // namespace

TEST_CASE(
    "node.yaml written by write_node_file reads back the same, atomically and 0644", "[node_file][unit]") {
    const TempDir dir("fb-node");
    const auto path = dir.path() / "etc/stormnode/node.yaml";
    write_node_file(path, full_node());
    struct stat st {};
    REQUIRE(::stat(path.c_str(), &st) == 0);
    CHECK((st.st_mode & 07777) == 0644);
    Diagnostics diags;
    const auto back = read_node_file(path, &catalog(), diags);
    INFO(diags.to_string() << read_file(path));
    REQUIRE(back);
    CHECK(*back == full_node());
    CHECK(std::distance(std::filesystem::directory_iterator(path.parent_path()), {}) == 1);  // no temp left
}

TEST_CASE("storm-roled's reader takes the node.yaml firstboot writes", "[node_file][unit]") {
    const TempDir dir("fb-node");
    write_node_file(dir.path() / "node.yaml", full_node());
    const auto config = roles::load_node_config(dir.path() / "node.yaml", dir.path() / "cluster.yaml");
    CHECK(to_strings(config.roles) == std::vector<std::string>{"db:active-passive", "monitor"});
    CHECK(config.hostname == "db-1");
    CHECK(config.zone == "rack-1");
    CHECK(config.features == std::set<std::string>{"local_db"});
    CHECK(config.variables.at("vip") == "10.0.0.100");
}

TEST_CASE("a node.yaml without roles or with typos is refused at file:line:col", "[node_file][unit]") {
    CHECK(problems("roles: []\n").empty());
    const auto missing = problems("hostname: a\n");
    REQUIRE(missing.size() == 1);
    CHECK(missing[0].rfind("node.yaml:1:1: missing required key 'roles'", 0) == 0);
    const auto typo = problems("roles: [compute]\nhostnam: a\nnetwork: {interfce: eno1}\n");
    REQUIRE(typo.size() == 2);
    CHECK(typo[0].rfind("node.yaml:2:1: unknown key 'hostnam'", 0) == 0);
    CHECK(typo[1].rfind("node.yaml:3:11: unknown key 'interfce'", 0) == 0);
    const auto conflict = problems("roles: [quorum, db]\n");
    REQUIRE(conflict.size() >= 1);
    CHECK(conflict[0].rfind("node.yaml:1:8: role 'quorum' cannot share a node with role 'db'", 0) == 0);
    CHECK(conflict[0].find("quorum.yaml:") != std::string::npos);  // and where the catalog says so
}

TEST_CASE(
    "node.yaml keeps its format: names under roles, their variants under variants", "[node_file][unit]") {
    // As the installer and storm-firstboot have always written it.
    const std::string written =
        "# This node's roles and settings (storm-firstboot, storm-roled). Written by the installer or\n"
        "# storm-firstboot; edit with care.\n"
        "roles: [db, monitor]\nvariants: {db: active-passive}\nhostname: db-1\n";
    Diagnostics diags("node.yaml");
    const auto node = parse_node_file(written, "node.yaml", &catalog(), diags);
    INFO(diags.to_string());
    REQUIRE(node);
    CHECK(node->roles == std::vector<RoleSpec>{{"db", "active-passive"}, {"monitor", ""}});
    CHECK(render_node_file(*node) == written);
    // A variant goes under variants: a role spec in the list is refused where it stands.
    const auto spec = problems("roles: [\"db:galera\"]\n");
    REQUIRE(spec.size() == 1);
    CHECK(
        spec[0].rfind(
            "node.yaml:1:9: items of 'roles' are role names: give the variant of 'db:galera' under", 0) == 0);
    // The roles' problems in the order they were written, whatever the check that found them.
    CHECK(
        problems("roles: [compute, nosuch]\nvariants: {db: galera, compute: fast}\n") ==
        std::vector<std::string>{
            "node.yaml:1:18: unknown role 'nosuch' (roles: compute, controller, db, lb, monitor, network, "
            "paas, "
            "quorum, storage)",
            "node.yaml:2:12: variant given for role 'db', which is not in 'roles'",
            "node.yaml:2:33: role 'compute' has no variant 'fast' (it has none)"});
}

TEST_CASE("hostnames follow RFC 1123", "[node_file][unit]") {
    CHECK(valid_hostname("node-1"));
    CHECK(valid_hostname("db-1.rack1.example.net"));
    CHECK(valid_hostname("1node"));
    CHECK(valid_hostname(std::string(63, 'a')));
    CHECK_FALSE(valid_hostname(std::string(64, 'a')));
    CHECK_FALSE(valid_hostname(""));
    CHECK_FALSE(valid_hostname("-node"));
    CHECK_FALSE(valid_hostname("node-"));
    CHECK_FALSE(valid_hostname("no_de"));
    CHECK_FALSE(valid_hostname("a..b"));
    CHECK_FALSE(valid_hostname("node."));
}

TEST_CASE("MACs, addresses and subnets", "[node_file][unit]") {
    CHECK(valid_mac("52:54:00:AB:cd:01"));
    CHECK_FALSE(valid_mac("52:54:00:ab:cd"));
    CHECK_FALSE(valid_mac("52-54-00-ab-cd-01"));
    CHECK_FALSE(valid_mac("00:00:00:00:00:00"));
    CHECK_FALSE(valid_mac("52:54:00:ab:cd:0g"));
    CHECK(cidr_prefix("10.0.0.5/24") == 24);
    CHECK(cidr_prefix("2001:db8::5/64") == 64);
    CHECK_FALSE(cidr_prefix("10.0.0.5"));
    CHECK_FALSE(cidr_prefix("10.0.0.5/33"));
    CHECK_FALSE(cidr_prefix("10.0.0.5/"));
    CHECK_FALSE(cidr_prefix("10.0.0.5/2x"));
    CHECK(in_subnet("10.0.0.5/24", "10.0.0.1"));
    CHECK_FALSE(in_subnet("10.0.0.5/24", "10.0.1.1"));
    CHECK(in_subnet("10.0.0.5/23", "10.0.1.1"));
    CHECK(in_subnet("172.16.5.5/12", "172.31.0.1"));
    CHECK_FALSE(in_subnet("172.16.5.5/12", "172.32.0.1"));
    CHECK(in_subnet("2001:db8::5/64", "2001:db8::1"));
    CHECK_FALSE(in_subnet("2001:db8::5/64", "10.0.0.1"));
}

TEST_CASE("networkd files: by name or MAC, DHCP or static, DHCP everywhere by default", "[networkd][unit]") {
    const auto dhcp = render_networkd(Network{.interface = "eno1"});
    CHECK(dhcp.name == "10-stormnode-eno1.network");
    CHECK(dhcp.text.find("[Match]\nName=eno1\n\n[Network]\nDHCP=yes\n") != std::string::npos);

    const auto fixed = render_networkd(full_node().network);
    CHECK(fixed.name == "10-stormnode-525400123456.network");
    CHECK(
        fixed.text.find(
            "[Match]\nMACAddress=52:54:00:12:34:56\n\n[Network]\nAddress=10.0.0.5/24\nGateway=10.0.0.1\n"
            "DNS=10.0.0.2\n") != std::string::npos);
    CHECK(fixed.text.find("DHCP") == std::string::npos);

    const auto fallback = render_networkd(std::nullopt);
    CHECK(fallback.name == "10-stormnode-ethernet.network");
    CHECK(fallback.text.find("[Match]\nType=ether\nKind=!*\n\n[Network]\nDHCP=yes\n") != std::string::npos);
}
