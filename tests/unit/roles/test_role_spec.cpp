// RoleSpec: one role assignment ("db:galera"), parsed once where it enters, formatted back where it
// leaves, and checked against the catalog by one function whatever its source.
#include <stormnode/catalog/catalog.hpp>
#include <stormnode/catalog/role_spec.hpp>
#include <stormnode/common/error.hpp>

#include <catch2/catch.hpp>

#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using namespace stormnode;
using namespace stormnode::roles;
using Strings = std::vector<std::string>;

namespace {

const fs::path good_dir = fs::path(STORMNODE_TEST_DATA) / "catalog" / "good";

// cache, legacy, store (variants replicated, single; conflicts with legacy), web; lb is a mixin.
const Catalog& good() {
    static const Catalog catalog = load_valid_catalog(good_dir);
    return catalog;
}

Strings messages(const Diagnostics& diags) {
    Strings out;
    for (const auto& d : diags.items()) {
        out.push_back(d.to_string());
    }
    return out;
}

}  // namespace

TEST_CASE("a role spec is a name and an optional variant", "[roles][role_spec]") {
    struct Good {
        std::string text;
        RoleSpec spec;
    };
    const std::vector<Good> good{
        {"db:galera", {"db", "galera"}},
        {"quorum", {"quorum", ""}},
        {"db:active-passive", {"db", "active-passive"}},
        {"lb", {"lb", ""}},
    };
    for (const auto& [text, spec] : good) {
        INFO(text);
        CHECK(parse_role_spec(text) == spec);
        CHECK(to_string(spec) == text);  // formatting gives back what was parsed
    }
}

TEST_CASE("a role spec that is not name or name:variant is invalid input", "[roles][role_spec]") {
    struct Bad {
        std::string text;
        std::string why;
    };
    const std::vector<Bad> bad{
        {"", "role '' has no name"},
        {":x", "role ':x' has no name"},
        {":", "role ':' has no name"},
        {"db:", "role 'db:' has an empty variant after ':'"},
        {"db:a:b", "role 'db:a:b' has more than one ':'"},
        {"db::", "role 'db::' has more than one ':'"},
    };
    for (const auto& [text, why] : bad) {
        INFO("'" << text << "'");
        try {
            (void)parse_role_spec(text);
            FAIL("accepted");
        } catch (const Error& e) {
            CHECK(e.code() == Errc::invalid_input);
            CHECK_THAT(
                e.what(), Catch::StartsWith(why) && Catch::EndsWith("(a role is name or name:variant)"));
        }
    }
}

TEST_CASE("role lists: the kernel argument's commas, the bus's strings", "[roles][role_spec]") {
    const auto list = parse_role_list("db:galera,quorum");
    CHECK(list == std::vector<RoleSpec>{{"db", "galera"}, {"quorum", ""}});
    CHECK(to_string(list) == "db:galera,quorum");
    CHECK(to_string(list, ", ") == "db:galera, quorum");
    CHECK(to_strings(list) == Strings{"db:galera", "quorum"});
    CHECK(parse_role_specs({"db:galera", "quorum"}) == list);
    CHECK(parse_role_list("compute") == std::vector<RoleSpec>{{"compute", ""}});
    CHECK(to_string(std::vector<RoleSpec>{}).empty());

    for (const std::string text : {"", ",", "db,,quorum", "db,", ",db", "db:,quorum", "db:a:b,quorum"}) {
        INFO("'" << text << "'");
        CHECK_THROWS_AS(parse_role_list(text), Error);
    }
    CHECK_THROWS_AS(parse_role_specs({"db", "quorum:"}), Error);
}

TEST_CASE("role specs find a role by name and order by name, then variant", "[roles][role_spec]") {
    const auto list = parse_role_list("db:galera,quorum");
    REQUIRE(find_role(list, "db") != nullptr);
    CHECK(find_role(list, "db")->variant == "galera");
    CHECK(find_role(list, "d") == nullptr);
    CHECK(find_role(list, "db:galera") == nullptr);  // a name, not a spec

    // Maps keyed by RoleSpec (a plan's units per role) order as the text did.
    const std::map<RoleSpec, int> by_spec{
        {{"db", "galera"}, 1}, {{"db", ""}, 2}, {{"db", "active-passive"}, 3}};
    Strings order;
    for (const auto& [spec, n] : by_spec) {
        order.push_back(to_string(spec));
    }
    CHECK(order == Strings{"db", "db:active-passive", "db:galera"});
}

TEST_CASE("validate_role_specs: one check for every source of a node's roles", "[roles][role_spec]") {
    struct Case {
        Strings roles;
        Strings expected;  // diagnostics in diags.file() ("--roles"), or at the catalog line
    };
    const std::string store = (good_dir / "store.yaml").string();
    const std::vector<Case> cases{
        {{"web"}, {}},
        {{"store:single", "cache"}, {}},
        {{"web", "store", "cache"}, {}},
        {{}, {}},
        {{"nosuch"}, {"--roles: unknown role 'nosuch' (roles: cache, legacy, store, web)"}},
        {{"lb"}, {"--roles: 'lb' is a mixin, not a role (roles: cache, legacy, store, web)"}},
        {{"store:gallera"},
         {"--roles: role 'store' has no variant 'gallera' (variants: replicated, single)"}},
        {{"web:fast"}, {"--roles: role 'web' has no variant 'fast' (it has none)"}},
        {{"web", "web"}, {"--roles: role 'web' is listed twice"}},
        {{"store:single", "store:replicated"}, {"--roles: role 'store' is listed twice"}},
        // Forbidden pairs: reported at the catalog line that forbids them.
        {{"store", "legacy"},
         {store + ":37:19: role 'store' cannot share a node with role 'legacy'",
          store + ":36:13: package 'postgresql' conflicts with role 'store', but role 'legacy' installs it"}},
        // An entry's problem stops the combination check: nothing is said about pairs of unknown roles.
        {{"nosuch", "store", "legacy"},
         {"--roles: unknown role 'nosuch' (roles: cache, legacy, store, web)"}},
    };
    for (const auto& c : cases) {
        INFO("roles: " << to_string(parse_role_specs(c.roles)));
        Diagnostics diags("--roles");
        validate_role_specs(good(), parse_role_specs(c.roles), diags);
        CHECK(messages(diags) == c.expected);
    }
}

TEST_CASE("validate_role_specs reports where each entry and the list were written", "[roles][role_spec]") {
    const auto at = [](int line, int column) {
        return Diagnostic{"node.yaml", line, column, {}};
    };
    RoleListPlaces places;
    places.list = at(1, 8);
    places.names = {at(1, 9), at(1, 14), at(1, 20)};
    places.variants = {at(2, 16), at(1, 14), at(1, 20)};
    places.combination_context = "member 'db-1': ";

    Diagnostics entries("node.yaml");
    validate_role_specs(good(), parse_role_specs({"store:gallera", "nosuch", "nosuch"}), entries, &places);
    CHECK(
        messages(entries) ==
        Strings{
            "node.yaml:2:16: role 'store' has no variant 'gallera' (variants: replicated, single)",
            "node.yaml:1:14: unknown role 'nosuch' (roles: cache, legacy, store, web)",
            "node.yaml:1:20: role 'nosuch' is listed twice"});

    Diagnostics pair("node.yaml");
    validate_role_specs(good(), parse_role_specs({"store", "legacy"}), pair, &places);
    const std::string store = (good_dir / "store.yaml").string();
    CHECK(
        messages(pair) ==
        Strings{
            "node.yaml:1:8: member 'db-1': role 'store' cannot share a node with role 'legacy' (" + store +
                ":37:19)",
            "node.yaml:1:8: member 'db-1': package 'postgresql' conflicts with role 'store', but role "
            "'legacy' "
            "installs it (" +
                store + ":36:13)"});
}

TEST_CASE("resolve_combination takes role specs, a variant or the default one", "[roles][role_spec]") {
    const auto single = resolve_combination(good(), parse_role_list("store:single,cache"));
    CHECK(single.name == "store+cache");
    CHECK(single.variant == "store:single");
    const auto replicated = resolve_combination(good(), parse_role_list("store,cache"));
    CHECK(replicated.variant == "store:replicated");  // the catalog's default_variant
    CHECK_THROWS_WITH(
        resolve_combination(good(), parse_role_list("store:x")),
        "role 'store' has no variant 'x' (variants: replicated, single)");
    CHECK_THROWS_WITH(resolve_combination(good(), parse_role_list("nosuch")), "unknown role 'nosuch'");
}
