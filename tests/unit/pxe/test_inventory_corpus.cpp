// Golden tests: every bad inventory in tests/data/inventory/bad/ gives exactly the diagnostics its
// <case>.expect lists ("file:line:col: message substring"), checked against the real role catalog.
#include "../expect_file.hpp"

#include <stormnode/catalog/catalog.hpp>
#include <stormnode/pxe/pxe_inventory.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <regex>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using namespace stormnode;

namespace {

const fs::path bad_dir = fs::path(STORMNODE_TEST_DATA) / "inventory" / "bad";

using stormnode::test::Expected;
using stormnode::test::read_expect;

}  // namespace

// NOLINTNEXTLINE(readability-function-cognitive-complexity): Catch2's assertion macros
TEST_CASE("every bad inventory produces the diagnostics it is paired with", "[pxe][inventory][golden]") {
    const auto catalog = roles::load_valid_catalog(fs::path(STORMNODE_SOURCE_DIR) / "roles" / "catalog");
    std::vector<std::string> names;
    for (const auto& entry : fs::directory_iterator(bad_dir)) {
        if (entry.path().extension() == ".yaml") {
            names.push_back(entry.path().stem().string());
        }
    }
    std::sort(names.begin(), names.end());
    REQUIRE(names.size() >= 12);
    for (const auto& name : names) {
        DYNAMIC_SECTION(name) {
            const auto expect_file = bad_dir / (name + ".expect");
            REQUIRE(fs::exists(expect_file));
            const auto expected = read_expect(expect_file);
            REQUIRE_FALSE(expected.empty());
            Diagnostics diags;
            const auto inventory = iso::load_inventory(bad_dir / (name + ".yaml"), catalog, diags);
            INFO("got:\n" << diags.to_string());
            CHECK_FALSE(inventory);
            const auto matches = [](const Expected& want, const Diagnostic& d) {
                return fs::path(d.file).filename() == want.file && d.line == want.line &&
                       d.column == want.column && d.message.find(want.message) != std::string::npos;
            };
            for (const auto& want : expected) {
                INFO(
                    "expected " << want.file << ":" << want.line << ":" << want.column << ": "
                                << want.message);
                CHECK(std::any_of(diags.items().begin(), diags.items().end(), [&](const Diagnostic& d) {
                    return matches(want, d);
                }));
            }
            for (const auto& d : diags.items()) {
                INFO("unexpected " << d.to_string());
                CHECK(std::any_of(expected.begin(), expected.end(), [&](const Expected& want) {
                    return matches(want, d);
                }));
            }
        }
    }
}
