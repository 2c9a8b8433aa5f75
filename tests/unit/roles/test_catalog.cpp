// The catalog loader, validator and resolver on a small valid catalog (tests/data/catalog/good/).
#include <stormnode/catalog/catalog.hpp>
#include <stormnode/common/error.hpp>
#include <stormnode/common/temp_dir.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using namespace stormnode;
using namespace stormnode::roles;
using Strings = std::vector<std::string>;

namespace {

// Role specs as an operator writes them: "web", "store:single".
std::vector<RoleSpec> specs(const Strings& texts) {
    return parse_role_specs(texts);
}

const fs::path good_dir = fs::path(STORMNODE_TEST_DATA) / "catalog" / "good";

Catalog load_good() {
    Diagnostics diags;
    Catalog catalog = load_catalog({good_dir}, diags);
    validate_catalog(catalog, diags);
    INFO(diags.to_string());
    REQUIRE(diags.ok());
    return catalog;
}

Strings unit_names(const RoleBody& body) {
    Strings names;
    for (const auto& unit : body.units) {
        names.push_back(unit.name);
    }
    return names;
}

const Unit& unit_named(const RoleBody& body, const std::string& name) {
    const auto it =
        std::find_if(body.units.begin(), body.units.end(), [&](const Unit& u) { return u.name == name; });
    REQUIRE(it != body.units.end());
    return *it;
}

bool has_message(const Diagnostics& diags, const std::string& text) {
    return std::any_of(diags.items().begin(), diags.items().end(), [&](const Diagnostic& d) {
        return d.message.find(text) != std::string::npos;
    });
}

// A catalog of a few files written for one test.
fs::path write_catalog(const TempDir& dir, const std::vector<std::pair<std::string, std::string>>& files) {
    for (const auto& [name, text] : files) {
        write_file_atomic(dir.path() / (name + ".yaml"), text);
    }
    return dir.path();
}

}  // namespace

TEST_CASE("a valid mini-catalog loads clean into typed structs", "[roles][catalog]") {
    const Catalog catalog = load_good();
    CHECK(catalog.role_names() == Strings{"cache", "legacy", "store", "web"});
    REQUIRE(catalog.find("lb") != nullptr);
    CHECK(catalog.find("lb")->kind == RoleKind::mixin);
    CHECK(catalog.find("common")->kind == RoleKind::common);
    CHECK(catalog.find("nothing") == nullptr);

    const Role& web = *catalog.find("web");
    CHECK(web.file == (good_dir / "web.yaml").string());
    CHECK(web.where.line == 1);
    CHECK(web.where.column == 7);
    CHECK(web.description == "A web tier with a cache");
    CHECK(web.mixins == Strings{"lb"});
    CHECK(web.body.packages == Strings{"nginx", "memcached"});
    CHECK(unit_names(web.body) == Strings{"memcached.service", "nginx.service"});
    const Unit& nginx = unit_named(web.body, "nginx.service");
    CHECK(nginx.package == "nginx");
    CHECK(nginx.owner == UnitOwner::supervisor);
    REQUIRE(nginx.checks.size() == 1);
    CHECK(nginx.checks[0].kind == CheckKind::http);
    CHECK(nginx.checks[0].host == "127.0.0.1");
    CHECK(nginx.checks[0].port == 80);
    CHECK(nginx.checks[0].path == "/health");
    CHECK(nginx.checks[0].expect_status == std::vector<int>{200, 204});
    CHECK(nginx.checks[0].interval == std::chrono::seconds(10));
    CHECK(nginx.checks[0].timeout == std::chrono::seconds(5));
    CHECK(web.body.tiers == std::vector<Strings>{{"memcached.service"}, {"nginx.service"}});
    CHECK(web.body.required == Strings{"nginx.service"});
    CHECK(web.body.degraded_if_down == Strings{"memcached.service"});
    CHECK(web.body.keep_disabled == Strings{"nginx-debug.service"});
    REQUIRE(web.body.config.size() == 1);
    CHECK(web.body.config[0].path == "/etc/nginx/sites-enabled/web");
    CHECK(web.body.config[0].template_name == "web/site.mustache");
    CHECK(web.cluster.peers == "web");
    CHECK(web.cluster.recommended_members == 2);
    CHECK(web.cluster.depends_on == Strings{"store"});
    CHECK(web.cluster.shared_secrets == Strings{"web-session-key"});
    CHECK_FALSE(web.cluster.quorum_member);
    CHECK(web.conflicts == Strings{"apache2"});
    // Where each reference was written, for diagnostics found after loading.
    CHECK(web.at("cluster.depends_on[0]").line == 28);
    CHECK(web.at("tiers[1][0]").line == 17);
    CHECK(web.at("tiers[1][0]").column == 6);

    const Unit& haproxy = unit_named(catalog.find("lb")->body, "haproxy.service");
    CHECK(haproxy.checks.at(0).interval == std::chrono::seconds(5));
    CHECK(haproxy.checks.at(0).timeout == std::chrono::seconds(2));

    const Role& store = *catalog.find("store");
    CHECK(store.default_variant == "replicated");
    CHECK(store.variants.size() == 2);
    CHECK(store.cluster.quorum_member);
    CHECK(store.conflicts_roles == Strings{"legacy"});
    const Check& ping = unit_named(store.body, "mariadb.service").checks.at(0);
    CHECK(ping.kind == CheckKind::exec);
    CHECK(ping.argv == Strings{"mysqladmin", "ping"});
    CHECK(ping.timeout == std::chrono::seconds(10));
    const RoleBody& replicated = store.variants.at("replicated");
    CHECK(replicated.node_state.at(0).generator == "galera-node");
    CHECK(replicated.node_state.at(0).mode == "0644");
    CHECK(replicated.node_state.at(0).owner == "root");
    CHECK(store.at("variants.replicated.tiers[1][0]").line == 18);
}

TEST_CASE("a catalog directory is every .yaml file in it, sorted, and nothing else", "[roles][catalog]") {
    const TempDir dir;
    write_file_atomic(dir.path() / "README.md", "# not a role\nname: [\n");
    write_file_atomic(dir.path() / "notes.txt", "unitz: 1\n");
    write_catalog(dir, {{"b", "name: b\n"}, {"a", "name: a\ncluster: {depends_on: [b]}\n"}});
    Diagnostics diags;
    const Catalog catalog = load_catalog({dir.path()}, diags);
    validate_catalog(catalog, diags);
    INFO(diags.to_string());
    CHECK(diags.ok());
    CHECK(catalog.role_names() == Strings{"a", "b"});
}

TEST_CASE(
    "files and directories mix, and a role defined twice or a missing path is reported", "[roles][catalog]") {
    const TempDir dir;
    write_catalog(dir, {{"web", "name: web\n"}});
    const fs::path missing = dir.path() / "missing.yaml";
    Diagnostics diags;
    const Catalog catalog = load_catalog({good_dir, dir.path() / "web.yaml", missing}, diags);
    REQUIRE(diags.items().size() == 2);
    CHECK(diags.items()[0].file == (dir.path() / "web.yaml").string());
    CHECK(diags.items()[0].line == 1);
    CHECK(
        diags.items()[0].message ==
        "role 'web' is already defined at " + (good_dir / "web.yaml").string() + ":1");
    CHECK(diags.items()[1].to_string() == missing.string() + ": no such file or directory");
    CHECK(catalog.find("web")->file == (good_dir / "web.yaml").string());  // the first definition is kept
}

TEST_CASE("an empty directory is not a catalog", "[roles][catalog]") {
    const TempDir dir;
    Diagnostics diags;
    (void)load_catalog({dir.path()}, diags);
    REQUIRE(diags.items().size() == 1);
    CHECK(diags.items()[0].message == "no *.yaml files in this directory");
}

// NOLINTNEXTLINE(readability-function-cognitive-complexity): Catch2's assertion macros
TEST_CASE("load_valid_catalog throws invalid_input with every diagnostic, or not_found", "[roles][catalog]") {
    CHECK(load_valid_catalog(good_dir).roles.size() == 6);
    try {
        (void)load_valid_catalog(fs::path(STORMNODE_TEST_DATA) / "catalog" / "bad" / "cycle");
        FAIL("expected an error");
    } catch (const Error& e) {
        CHECK(e.code() == Errc::invalid_input);
        const std::string what = e.what();
        CHECK(what.find("alpha.yaml:4:16: depends_on cycle") != std::string::npos);
        CHECK(what.find("beta.yaml:4:16: depends_on cycle") != std::string::npos);
    }
    try {
        (void)load_valid_catalog("/nonexistent/stormnode/catalog");
        FAIL("expected an error");
    } catch (const Error& e) {
        CHECK(e.code() == Errc::not_found);
    }
}

TEST_CASE("resolve folds common, mixins, the role and its variant", "[roles][catalog][resolve]") {
    const Catalog catalog = load_good();

    const ResolvedRole web = resolve(catalog, "web");
    CHECK(web.name == "web");
    CHECK(web.variant.empty());
    CHECK(
        web.body.packages ==
        Strings{"chrony", "zabbix-agent", "haproxy", "keepalived", "nginx", "memcached"});
    CHECK(
        unit_names(web.body) == Strings{
                                    "chrony.service",
                                    "zabbix-agent.service",
                                    "keepalived.service",
                                    "haproxy.service",
                                    "memcached.service",
                                    "nginx.service"});
    // Dependencies first: the common layer's tier, then the mixin's, then the role's.
    CHECK(
        web.body.tiers == std::vector<Strings>{
                              {"chrony.service", "zabbix-agent.service"},
                              {"keepalived.service"},
                              {"haproxy.service"},
                              {"memcached.service"},
                              {"nginx.service"}});
    CHECK(web.body.required == Strings{"chrony.service", "haproxy.service", "nginx.service"});
    CHECK(
        web.body.degraded_if_down ==
        Strings{"zabbix-agent.service", "keepalived.service", "memcached.service"});
    CHECK(web.body.config.size() == 2);
    CHECK(web.body.node_state.size() == 1);

    const ResolvedRole store = resolve(catalog, "store");
    CHECK(store.variant == "replicated");
    CHECK(
        unit_names(store.body) ==
        Strings{"chrony.service", "zabbix-agent.service", "mariadb.service", "garb.service"});
    CHECK(store.body.tiers.back() == Strings{"garb.service"});
    CHECK(store.body.node_state.size() == 2);

    const ResolvedRole single = resolve(catalog, "store", "single");
    CHECK(single.variant == "single");
    CHECK(unit_names(single.body) == Strings{"chrony.service", "zabbix-agent.service", "mariadb.service"});
    CHECK(single.body.keep_disabled == Strings{"garb.service"});
    CHECK(single.body.packages == Strings{"chrony", "zabbix-agent", "mariadb-server"});
}

TEST_CASE("resolve refuses unknown roles and variants", "[roles][catalog][resolve]") {
    const Catalog catalog = load_good();
    const auto code_of = [&](const std::string& role, const std::string& variant) {
        try {
            (void)resolve(catalog, role, variant);
        } catch (const Error& e) {
            return e.code();
        }
        return Errc::aborted;  // no error at all
    };
    CHECK(code_of("nosuch", "") == Errc::invalid_input);
    CHECK(code_of("store", "gallera") == Errc::invalid_input);
    CHECK(code_of("web", "replicated") == Errc::invalid_input);
    CHECK_THROWS_WITH(
        resolve(catalog, "store", "x"), "role 'store' has no variant 'x' (variants: replicated, single)");
}

TEST_CASE(
    "resolve_combination merges shared units once and orders roles by depends_on",
    "[roles][catalog][resolve]") {
    const Catalog catalog = load_good();
    const ResolvedRole node = resolve_combination(catalog, specs({"web", "cache", "store"}));
    CHECK(node.name == "store+web+cache");
    CHECK(node.variant == "store:replicated");
    // memcached.service is declared by web and cache: once, with the checks of both.
    const auto names = unit_names(node.body);
    CHECK(std::count(names.begin(), names.end(), "memcached.service") == 1);
    const Unit& memcached = unit_named(node.body, "memcached.service");
    REQUIRE(memcached.checks.size() == 2);
    CHECK(memcached.checks[0].kind == CheckKind::tcp);
    CHECK(memcached.checks[1].kind == CheckKind::exec);
    // Common first, then store (web and cache depend on it), then web with its mixin, then cache.
    CHECK(
        node.body.tiers == std::vector<Strings>{
                               {"chrony.service", "zabbix-agent.service"},
                               {"mariadb.service"},
                               {"garb.service"},
                               {"keepalived.service"},
                               {"haproxy.service"},
                               {"memcached.service"},
                               {"nginx.service"}});
    // web says memcached is degraded-if-down, cache requires it: required wins.
    CHECK(std::count(node.body.required.begin(), node.body.required.end(), "memcached.service") == 1);
    CHECK(
        std::count(
            node.body.degraded_if_down.begin(), node.body.degraded_if_down.end(), "memcached.service") == 0);
    CHECK(node.body.packages.size() == 9);

    const ResolvedRole single = resolve_combination(catalog, specs({"store:single", "cache"}));
    CHECK(single.name == "store+cache");
    CHECK(single.variant == "store:single");
    CHECK(single.body.keep_disabled == Strings{"garb.service"});
}

TEST_CASE("validate_role_specs accepts roles that can share a node", "[roles][catalog][combination]") {
    const Catalog catalog = load_good();
    Diagnostics diags("--roles");
    validate_role_specs(catalog, specs({"web", "store", "cache"}), diags);
    INFO(diags.to_string());
    CHECK(diags.ok());
}

TEST_CASE("validate_role_specs refuses conflicting roles and packages", "[roles][catalog][combination]") {
    const Catalog catalog = load_good();
    Diagnostics diags("--roles");
    validate_role_specs(catalog, specs({"store", "legacy"}), diags);
    INFO(diags.to_string());
    REQUIRE(diags.items().size() == 2);
    const fs::path store = good_dir / "store.yaml";
    CHECK(
        diags.items()[0].to_string() ==
        store.string() + ":37:19: role 'store' cannot share a node with role 'legacy'");
    CHECK(
        diags.items()[1].to_string() ==
        store.string() +
            ":36:13: package 'postgresql' conflicts with role 'store', but role 'legacy' installs it");
}

TEST_CASE(
    "validate_role_specs reports unknown roles, variants and repeats", "[roles][catalog][combination]") {
    const Catalog catalog = load_good();
    Diagnostics diags("--roles");
    validate_role_specs(catalog, specs({"web", "nosuch", "lb", "store:gallera", "web"}), diags);
    INFO(diags.to_string());
    REQUIRE(diags.items().size() == 4);
    CHECK(
        diags.items()[0].to_string() == "--roles: unknown role 'nosuch' (roles: cache, legacy, store, web)");
    CHECK(diags.items()[1].message == "'lb' is a mixin, not a role (roles: cache, legacy, store, web)");
    CHECK(diags.items()[2].message == "role 'store' has no variant 'gallera' (variants: replicated, single)");
    CHECK(diags.items()[3].message == "role 'web' is listed twice");
}

TEST_CASE(
    "validate_role_specs: kept-disabled units and one unit from two packages",
    "[roles][catalog][combination]") {
    const TempDir dir;
    write_catalog(
        dir,
        {{"db",
          "name: db\n"
          "packages: [mariadb-server]\n"
          "units: [{name: mariadb.service, package: mariadb-server}]\n"
          "keep_disabled: [garb.service]\n"},
         {"arbiter",
          "name: arbiter\n"
          "packages: [galera-arbitrator-4]\n"
          "units: [{name: garb.service, package: galera-arbitrator-4}]\n"},
         {"other-db",
          "name: other-db\n"
          "packages: [mysql-server]\n"
          "units:\n"
          "  - {name: mariadb.service, package: mysql-server}\n"}});
    Diagnostics load_diags;
    const Catalog catalog = load_catalog({dir.path()}, load_diags);
    validate_catalog(catalog, load_diags);
    INFO(load_diags.to_string());
    REQUIRE(load_diags.ok());  // each role alone is fine

    Diagnostics disabled;
    validate_role_specs(catalog, specs({"db", "arbiter"}), disabled);
    REQUIRE(disabled.items().size() == 1);
    CHECK(
        disabled.items()[0].to_string() ==
        (dir.path() / "db.yaml").string() +
            ":4:17: role 'db' keeps unit 'garb.service' disabled, but role 'arbiter' runs it");

    Diagnostics packages;
    validate_role_specs(catalog, specs({"db", "other-db"}), packages);
    REQUIRE(packages.items().size() == 1);
    CHECK(
        packages.items()[0].to_string() ==
        (dir.path() / "other-db.yaml").string() +
            ":4:12: unit 'mariadb.service' comes from package 'mysql-server' in role 'other-db' but from "
            "package 'mariadb-server' in role 'db'");
}

TEST_CASE("the validator checks across files: mixins, common and unit packages", "[roles][catalog]") {
    const TempDir dir;
    write_catalog(
        dir,
        {{"common",
          "name: common\nkind: common\npackages: [chrony]\n"
          "units: [{name: chrony.service, package: chrony}]\n"},
         {"zz-common", "name: zz-common\nkind: common\n"},
         {"app",
          "name: app\n"
          "mixins: [common, web]\n"
          "packages: [chrony]\n"
          "units: [{name: chrony.service, package: chrony-ng}]\n"
          "tiers: [[chrony.service]]\n"
          "cluster: {peers: lb, depends_on: [app]}\n"
          "conflicts_roles: [app]\n"},
         {"web", "name: web\n"}});
    Diagnostics diags;
    const Catalog catalog = load_catalog({dir.path()}, diags);
    validate_catalog(catalog, diags);
    INFO(diags.to_string());
    CHECK(has_message(diags, "a second common layer 'zz-common' (the first is 'common')"));
    CHECK(has_message(diags, "'mixins' names 'common', which is a common layer, not a mixin"));
    CHECK(has_message(diags, "'mixins' names 'web', which is a role, not a mixin"));
    CHECK(has_message(diags, "'peers' names unknown role 'lb'"));
    CHECK(has_message(diags, "depends_on cycle: app -> app"));
    CHECK(has_message(diags, "role 'app' cannot conflict with itself"));
    CHECK(has_message(
        diags,
        "unit 'chrony.service' comes from package 'chrony-ng' here but from package 'chrony' in 'common'"));
}

TEST_CASE("known generators and the default catalog directory", "[roles][catalog]") {
    CHECK(known_generators().contains("erlang-cookie"));
    CHECK(known_generators().contains("qnetd-nssdb"));
    CHECK(known_generators().contains("iscsi-iqn"));
    CHECK_FALSE(known_generators().contains("erlang-cookies"));

    // The test binary runs one test case per process (catch_discover_tests): no other thread.
    REQUIRE(::setenv("STORMNODE_CATALOG_DIR", "/tmp/elsewhere", 1) == 0);  // NOLINT(concurrency-mt-unsafe)
    CHECK(default_catalog_dir() == "/tmp/elsewhere");
    REQUIRE(::unsetenv("STORMNODE_CATALOG_DIR") == 0);  // NOLINT(concurrency-mt-unsafe)
    CHECK(default_catalog_dir() == fs::path(STORMNODE_CATALOG_DIR_BUILT_IN));
}

// The shipped catalog (roles/catalog/*.yaml), as the node image carries it.
// NOLINTNEXTLINE(readability-function-cognitive-complexity): Catch2's assertion macros
TEST_CASE(
    "the shipped catalog validates and all-in-one is a valid combination", "[roles][catalog][shipped]") {
    const fs::path dir = fs::path(STORMNODE_SOURCE_DIR) / "roles" / "catalog";
    Diagnostics diags;
    const Catalog catalog = load_catalog({dir}, diags);
    validate_catalog(catalog, diags);
    INFO(diags.to_string());
    REQUIRE(diags.ok());
    CHECK(
        catalog.role_names() ==
        Strings{"compute", "controller", "db", "monitor", "network", "paas", "quorum", "storage"});
    REQUIRE(catalog.find("common") != nullptr);
    CHECK(catalog.find("common")->kind == RoleKind::common);
    REQUIRE(catalog.find("lb") != nullptr);
    CHECK(catalog.find("lb")->kind == RoleKind::mixin);
    CHECK(catalog.find("db")->variants.contains("galera"));
    CHECK(catalog.find("db")->variants.contains("active-passive"));

    Diagnostics all_in_one("all-in-one");
    validate_role_specs(catalog, specs({"controller", "network", "compute", "storage"}), all_in_one);
    INFO(all_in_one.to_string());
    CHECK(all_in_one.ok());
    const ResolvedRole node =
        resolve_combination(catalog, specs({"controller", "network", "compute", "storage"}));
    CHECK_FALSE(node.body.tiers.empty());
    for (const auto& name : catalog.role_names()) {
        const ResolvedRole role = resolve(catalog, name);
        INFO(name);
        CHECK_FALSE(role.body.units.empty());
        CHECK_FALSE(role.body.tiers.empty());
    }
}

TEST_CASE(
    "a standalone mixin may be carried on its own: the shipped lb beside quorum",
    "[roles][catalog][combination]") {
    const Catalog shipped = load_valid_catalog(fs::path(STORMNODE_SOURCE_DIR) / "roles" / "catalog");
    REQUIRE(shipped.find("lb") != nullptr);
    CHECK(shipped.find("lb")->standalone);
    CHECK(shipped.find("lb")->placeable());
    Diagnostics combination("--roles quorum,lb");
    validate_role_specs(shipped, specs({"quorum", "lb"}), combination);
    INFO(combination.to_string());
    CHECK(combination.ok());
    const auto node = resolve_combination(shipped, specs({"quorum", "lb"}));
    const auto has_unit = [&](const std::string& name) {
        return std::any_of(
            node.body.units.begin(), node.body.units.end(), [&](const Unit& u) { return u.name == name; });
    };
    CHECK(has_unit("garb.service"));
    CHECK(has_unit("haproxy.service"));
    // Still not a role in the role list, and only a mixin may say standalone.
    const auto names = shipped.role_names();
    CHECK(std::find(names.begin(), names.end(), "lb") == names.end());

    const TempDir dir;
    write_catalog(dir, {{"web", "name: web\nkind: role\nstandalone: true\n"}});
    Diagnostics diags;
    (void)load_catalog({dir.path()}, diags);
    CHECK(has_message(diags, "'standalone' is only allowed for kind: mixin"));
}
