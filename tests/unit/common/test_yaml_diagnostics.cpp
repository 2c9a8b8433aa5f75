#include <stormnode/common/error.hpp>
#include <stormnode/common/yaml_diagnostics.hpp>

#include <catch2/catch.hpp>

using stormnode::Diagnostics;
namespace yaml = stormnode::yaml;

TEST_CASE("unknown keys are reported at their line and column", "[common][yaml]") {
    Diagnostics diags("node.yaml");
    const auto root =
        stormnode::load_yaml_string("name: x\nunits:\n  - name: a.service\n    unitz: []\n", diags);
    REQUIRE(root);
    const auto unit = (*root)["units"][0];
    yaml::reject_unknown_keys(unit, {"name"}, diags);
    REQUIRE(diags.items().size() == 1);
    CHECK(diags.items()[0].line == 4);
    CHECK(diags.items()[0].column == 5);
    CHECK(diags.items()[0].to_string().rfind("node.yaml:4:5: unknown key 'unitz'", 0) == 0);
}

TEST_CASE("a syntax error becomes a diagnostic with its position", "[common][yaml]") {
    Diagnostics diags("bad.yaml");
    const auto root = stormnode::load_yaml_string("a: [1, 2\nb: c\n", diags);
    CHECK_FALSE(root);
    REQUIRE(diags.items().size() == 1);
    CHECK(diags.items()[0].line >= 1);
    CHECK(diags.items()[0].message.find("YAML syntax error") == 0);
}

TEST_CASE("field readers report missing and ill-typed fields", "[common][yaml]") {
    Diagnostics diags("f.yaml");
    const auto root = stormnode::load_yaml_string("port: abc\nlist: x\nflag: maybe\n", diags);
    REQUIRE(root);
    CHECK_FALSE(yaml::require_string(*root, "name", diags));
    CHECK_FALSE(yaml::optional_int(*root, "port", diags, 1, 65535));
    CHECK(yaml::string_list(*root, "list", diags).empty());
    CHECK_FALSE(yaml::optional_bool(*root, "flag", diags));
    REQUIRE(diags.items().size() == 4);
    CHECK(diags.items()[0].message == "missing required key 'name'");
    CHECK(diags.items()[1].message == "'port' must be a whole number");
    CHECK(diags.items()[2].message == "'list' must be a list");
    CHECK(diags.items()[3].message == "'flag' must be true or false");
}

TEST_CASE("throw_if_errors carries every diagnostic", "[common][yaml]") {
    Diagnostics diags("x.yaml");
    diags.error_in_file("first");
    diags.error_in_file("second");
    try {
        stormnode::throw_if_errors(diags, "invalid input");
        FAIL("expected an error");
    } catch (const stormnode::Error& e) {
        CHECK(e.code() == stormnode::Errc::invalid_input);
        CHECK(std::string(e.what()) == "invalid input:\nx.yaml: first\nx.yaml: second");
    }
}
