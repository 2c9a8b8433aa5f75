// The rack inventory: defaults folded into each node, per-MAC answer files that the installer's own
// parser reads back, and the cluster checks against the real catalog.
#include <stormnode/catalog/catalog.hpp>
#include <stormnode/installer/answers.hpp>
#include <stormnode/pxe/pxe_inventory.hpp>

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace fs = std::filesystem;
using namespace stormnode;

namespace {

const roles::Catalog& catalog() {
    static const auto c = roles::load_valid_catalog(fs::path(STORMNODE_SOURCE_DIR) / "roles" / "catalog");
    return c;
}

std::string good_rack() {
    std::ifstream in(fs::path(STORMNODE_TEST_DATA) / "inventory" / "good" / "rack.yaml");
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

iso::Inventory parse_ok(const std::string& text) {
    Diagnostics diags;
    auto inventory = iso::parse_inventory(text, "rack.yaml", catalog(), diags);
    INFO(diags.to_string());
    REQUIRE(inventory);
    return *inventory;
}

}  // namespace

TEST_CASE("the good rack parses with defaults folded into each node", "[pxe][inventory]") {
    const auto inv = parse_ok(good_rack());
    CHECK(inv.network.interface == "stormpxe0");
    CHECK(inv.network.server == "10.10.0.1");
    CHECK(inv.network.range_start == "10.10.0.100");
    CHECK(inv.discovered == iso::DiscoveredPolicy::live);
    REQUIRE(inv.nodes.size() == 3);
    const auto& db1 = inv.nodes[0];
    CHECK(db1.mac == "52:54:00:00:00:01");
    CHECK(db1.address == "10.10.0.11");
    CHECK(db1.answers.node.hostname == "db-1");
    CHECK(db1.answers.node.roles.size() == 1);
    CHECK(db1.answers.node.roles.at(0).name == "db");
    CHECK(db1.answers.node.zone == "rack-1");  // from defaults
    CHECK(db1.answers.wipe);
    REQUIRE(db1.answers.selector);
    CHECK(db1.answers.selector->min_size == std::uint64_t{8} << 30U);
    const auto& quorum = inv.nodes[2];
    CHECK(quorum.answers.disk == "/dev/vda");  // its own disk wins over the default selector
    CHECK_FALSE(quorum.answers.selector);
    CHECK(quorum.answers.node.zone == "rack-2");
    REQUIRE(quorum.answers.node.network);
    CHECK(quorum.answers.node.network->address == "10.10.0.13/24");
    CHECK(inv.find("52:54:00:00:00:03") == &inv.nodes[2]);
    CHECK(inv.find("52:54:00:00:00:99") == nullptr);
}

TEST_CASE("a MAC is found whatever its case", "[pxe][inventory]") {
    const auto inv = parse_ok(good_rack());
    CHECK(inv.find("52:54:00:00:00:0A") == nullptr);
    CHECK(inv.find("52:54:00:00:00:01") != nullptr);
    std::string upper = good_rack();
    upper.replace(upper.find("52:54:00:00:00:01"), 17, "52:54:00:AB:CD:EF");
    const auto inv2 = parse_ok(upper);
    CHECK(inv2.find("52:54:00:ab:cd:ef") != nullptr);
    CHECK(inv2.nodes[0].mac == "52:54:00:ab:cd:ef");
}

TEST_CASE("every node's answer file reads back through the installer's parser", "[pxe][inventory][answers]") {
    const auto inv = parse_ok(good_rack());
    for (const auto& node : inv.nodes) {
        const std::string text = iso::render_answers(node);
        INFO(node.mac << ":\n" << text);
        Diagnostics diags;
        const auto back = installer::parse_answers(text, node.mac + ".yaml", &catalog(), diags);
        INFO(diags.to_string());
        REQUIRE(back);
        CHECK(back->disk == node.answers.disk);
        CHECK(back->selector == node.answers.selector);
        CHECK(back->wipe == node.answers.wipe);
        CHECK(back->node == node.answers.node);
        CHECK(back->root_ssh_keys == node.answers.root_ssh_keys);
    }
}

TEST_CASE(
    "ssh keys, features and variables from defaults reach the answer file", "[pxe][inventory][answers]") {
    const std::string key =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl admin@laptop";
    std::string text = good_rack();
    text.replace(
        text.find("  zone: rack-1\n"),
        15,
        "  zone: rack-1\n  root: {ssh_keys: [\"" + key + "\"]}\n  variables: {ntp: 10.10.0.1}\n");
    const auto inv = parse_ok(text);
    const auto answers_text = iso::render_answers(inv.nodes[1]);
    Diagnostics diags;
    const auto back = installer::parse_answers(answers_text, "a.yaml", &catalog(), diags);
    INFO(answers_text << diags.to_string());
    REQUIRE(back);
    CHECK(back->root_ssh_keys == std::vector<std::string>{key});
    CHECK(back->node.variables.at("ntp") == "10.10.0.1");
    const auto* db = stormnode::roles::find_role(back->node.roles, "db");
    REQUIRE(db != nullptr);
    CHECK(db->variant == "active-passive");
}

TEST_CASE("external_roles satisfy depends_on and minimum members", "[pxe][inventory]") {
    const std::string text = R"(network: {subnet: 10.10.0.0/24, server: 10.10.0.1, proxy_dhcp: true}
defaults: {disk: /dev/vda}
external_roles: [controller, network, storage]
nodes:
  "52:54:00:00:01:01": {hostname: compute-1, roles: [compute]}
  "52:54:00:00:01:02": {hostname: compute-2, roles: [compute]}
)";
    const auto inv = parse_ok(text);
    CHECK(inv.network.proxy_dhcp);
    CHECK(inv.nodes.size() == 2);

    Diagnostics diags;
    std::string without = text;
    without.replace(
        without.find("external_roles: [controller, network, storage]"), 46, "external_roles: [controller]");
    CHECK_FALSE(iso::parse_inventory(without, "rack.yaml", catalog(), diags));
    CHECK(diags.to_string().find("depends on role 'network'") != std::string::npos);
    CHECK(diags.to_string().find("depends on role 'storage'") != std::string::npos);
}

TEST_CASE("without proxy_dhcp an inventory needs a range", "[pxe][inventory]") {
    Diagnostics diags;
    const std::string text = "network: {subnet: 10.10.0.0/24, server: 10.10.0.1}\nnodes: {}\n";
    CHECK_FALSE(iso::parse_inventory(text, "rack.yaml", catalog(), diags));
    REQUIRE(diags.items().size() == 1);
    CHECK(diags.items()[0].line == 1);
    CHECK(diags.items()[0].message.find("missing required key 'range'") != std::string::npos);
}
