// Where the roles come from: kernel argument > node.yaml > inventory > none.
#include <stormnode/common/error.hpp>
#include <stormnode/firstboot/role_source.hpp>

#include <catch2/catch.hpp>

using namespace stormnode;
using namespace stormnode::firstboot;

namespace {

const roles::Catalog& catalog() {
    static const roles::Catalog c =
        roles::load_valid_catalog(std::filesystem::path(STORMNODE_SOURCE_DIR) / "roles/catalog");
    return c;
}

class FakeFetcher final : public Fetcher {
public:
    std::map<std::string, std::string> pages;
    std::vector<std::string> calls;
    std::string fetch(const std::string& url) override {
        calls.push_back(url);
        const auto it = pages.find(url);
        if (it == pages.end()) {
            throw Error(Errc::io, "fetching " + url + ": HTTP status 404");
        }
        return it->second;
    }
};

const std::string kInventory =
    "52:54:00:00:00:01:\n"
    "  hostname: comp-1\n"
    "  roles: [compute]\n"
    "  network: {mac: \"52:54:00:00:00:01\", mode: static, address: 10.1.0.11/16, gateway: 10.1.0.1}\n"
    "52:54:00:00:00:02: {hostname: stor-1, roles: [storage]}\n"
    "52:54:00:00:00:03: {hostname: later-1, roles: []}\n";

roles::NodeFile installed(const std::vector<std::string>& roles) {
    roles::NodeFile node;
    node.roles = roles::parse_role_specs(roles);
    node.hostname = "from-installer";
    return node;
}

}  // namespace

TEST_CASE("the kernel command line is split the way the kernel does", "[role_source][unit]") {
    const auto args = parse_role_args(
        "BOOT_IMAGE=/vmlinuz root=UUID=x ro \"stormnode.role=compute,storage\" quiet "
        "stormnode.inventory=http://h/i.yaml\n");
    CHECK(args.roles == "compute,storage");
    CHECK(args.inventory == "http://h/i.yaml");
    CHECK_FALSE(parse_role_args("stormnode.role= quiet").roles);
    CHECK(parse_role_args("stormnode.role=db stormnode.role=quorum").roles == "quorum");  // the last wins
    CHECK_FALSE(parse_role_args("stormnode.roles=db").roles);
    // common's rules: single quotes group too, a bare key is no value, an empty one takes the role back.
    CHECK(parse_role_args("stormnode.role='db:galera,quorum'").roles == "db:galera,quorum");
    CHECK(parse_role_args("stormnode.role=db stormnode.role").roles == "db");
    CHECK_FALSE(parse_role_args("stormnode.role=db stormnode.role=").roles);
}

TEST_CASE("the kernel argument wins over node.yaml and the inventory", "[role_source][unit]") {
    FakeFetcher fetcher;
    fetcher.pages["http://inv/rack.yaml"] = kInventory;
    SourceInputs in{
        "stormnode.role=compute,storage stormnode.inventory=http://inv/rack.yaml",
        installed({"db"}),
        {"52:54:00:00:00:01"}};
    const auto a = choose_role_source(in, catalog(), fetcher);
    CHECK(a.source == RoleSource::kernel_cmdline);
    CHECK(roles::to_strings(a.node.roles) == std::vector<std::string>{"compute", "storage"});
    CHECK(a.node.hostname == "from-installer");  // node.yaml's other settings stay
    CHECK(a.write_node_file);
    CHECK(fetcher.calls.empty());  // the inventory is not even asked
}

TEST_CASE("a kernel argument may choose variants", "[role_source][unit]") {
    FakeFetcher fetcher;
    const auto a =
        choose_role_source(SourceInputs{"stormnode.role=db:active-passive", {}, {}}, catalog(), fetcher);
    CHECK(roles::to_strings(a.node.roles) == std::vector<std::string>{"db:active-passive"});
    CHECK(a.node.roles == std::vector<roles::RoleSpec>{{"db", "active-passive"}});
}

TEST_CASE("node.yaml from the installer wins over the inventory", "[role_source][unit]") {
    FakeFetcher fetcher;
    fetcher.pages["http://inv/rack.yaml"] = kInventory;
    SourceInputs in{"stormnode.inventory=http://inv/rack.yaml", installed({"quorum"}), {"52:54:00:00:00:01"}};
    const auto a = choose_role_source(in, catalog(), fetcher);
    CHECK(a.source == RoleSource::node_file);
    CHECK(roles::to_strings(a.node.roles) == std::vector<std::string>{"quorum"});
    CHECK_FALSE(a.write_node_file);
    CHECK(fetcher.calls.empty());
}

TEST_CASE("the inventory answers by MAC when nothing else does", "[role_source][unit]") {
    FakeFetcher fetcher;
    fetcher.pages["http://inv/rack.yaml"] = kInventory;
    SourceInputs in{
        "quiet stormnode.inventory=http://inv/rack.yaml",
        installed({}),
        {"52:54:00:00:00:09", "52:54:00:00:00:01"}};
    const auto a = choose_role_source(in, catalog(), fetcher);
    CHECK(a.source == RoleSource::inventory);
    CHECK(a.origin.find("52:54:00:00:00:01") != std::string::npos);
    CHECK(roles::to_strings(a.node.roles) == std::vector<std::string>{"compute"});
    CHECK(a.node.hostname == "comp-1");
    REQUIRE(a.node.network);
    CHECK(a.node.network->address == "10.1.0.11/16");
    CHECK(a.write_node_file);
    CHECK(fetcher.calls == std::vector<std::string>{"http://inv/rack.yaml"});
}

TEST_CASE("nobody answers: no role, and the reason says so", "[role_source][unit]") {
    FakeFetcher fetcher;
    fetcher.pages["http://inv/rack.yaml"] = kInventory;
    CHECK(
        choose_role_source(SourceInputs{"quiet", {}, {"52:54:00:00:00:01"}}, catalog(), fetcher).source ==
        RoleSource::none);
    const auto unknown_mac = choose_role_source(
        SourceInputs{"stormnode.inventory=http://inv/rack.yaml", {}, {"52:54:00:00:00:77"}},
        catalog(),
        fetcher);
    CHECK(unknown_mac.source == RoleSource::none);
    CHECK(unknown_mac.origin.find("no role for this node's MACs") != std::string::npos);
    const auto listed_without_role = choose_role_source(
        SourceInputs{"stormnode.inventory=http://inv/rack.yaml", {}, {"52:54:00:00:00:03"}},
        catalog(),
        fetcher);
    CHECK(listed_without_role.source == RoleSource::none);
    CHECK(listed_without_role.node.hostname == "later-1");
}

TEST_CASE(
    "a bad role argument, a bad inventory or an unreachable one is an error, not 'no role'",
    "[role_source][unit]") {
    FakeFetcher fetcher;
    fetcher.pages["http://inv/bad.yaml"] =
        "52:54:00:00:00:01: {roles: [comptue]}\nnot-a-mac: {roles: [db]}\n";
    CHECK_THROWS_WITH(
        choose_role_source(SourceInputs{"stormnode.role=comptue", {}, {}}, catalog(), fetcher),
        Catch::Contains("stormnode.role=comptue: unknown role 'comptue'"));
    CHECK_THROWS_WITH(
        choose_role_source(SourceInputs{"stormnode.role=db,quorum", {}, {}}, catalog(), fetcher),
        Catch::Contains("cannot share a node"));
    CHECK_THROWS_WITH(
        choose_role_source(SourceInputs{"stormnode.role=db:a:b", {}, {}}, catalog(), fetcher),
        Catch::Contains("kernel argument stormnode.role=db:a:b: role 'db:a:b' has more than one ':'"));
    CHECK_THROWS_WITH(
        choose_role_source(SourceInputs{"stormnode.role=compute,,storage", {}, {}}, catalog(), fetcher),
        Catch::Contains("stormnode.role=compute,,storage: role '' has no name"));
    CHECK_THROWS_WITH(
        choose_role_source(SourceInputs{"stormnode.role=db:multi-master", {}, {}}, catalog(), fetcher),
        Catch::Contains(
            "stormnode.role=db:multi-master: role 'db' has no variant 'multi-master' (variants: "));
    try {
        (void)choose_role_source(
            SourceInputs{"stormnode.inventory=http://inv/bad.yaml", {}, {"52:54:00:00:00:01"}},
            catalog(),
            fetcher);
        FAIL("a bad inventory was accepted");
    } catch (const Error& e) {
        CHECK(e.code() == Errc::invalid_input);
        CHECK_THAT(e.what(), Catch::Contains("http://inv/bad.yaml:1:29: unknown role 'comptue'"));
        CHECK_THAT(
            e.what(), Catch::Contains("http://inv/bad.yaml:2:1: inventory keys must be MAC addresses"));
    }
    try {
        (void)choose_role_source(
            SourceInputs{"stormnode.inventory=http://inv/gone.yaml", {}, {"52:54:00:00:00:01"}},
            catalog(),
            fetcher);
        FAIL("an unreachable inventory was taken for 'no role'");
    } catch (const Error& e) {
        CHECK(e.code() == Errc::io);
        CHECK_THAT(
            describe(e),
            Catch::Contains("stormnode.inventory=http://inv/gone.yaml") && Catch::Contains("404"));
    }
}
