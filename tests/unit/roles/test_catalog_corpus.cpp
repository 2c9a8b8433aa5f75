// Golden tests: every malformed catalog in tests/data/catalog/bad/ must produce the diagnostics its
// <case>.expect lists ("file:line:col: message substring", file relative to bad/).
#include "../expect_file.hpp"

#include <stormnode/catalog/catalog.hpp>
#include <stormnode/common/temp_dir.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <regex>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using namespace stormnode;
using namespace stormnode::roles;

namespace {

const fs::path bad_dir = fs::path(STORMNODE_TEST_DATA) / "catalog" / "bad";

using stormnode::test::Expected;
using stormnode::test::read_expect;

std::string relative_to_bad(const std::string& file) {
    return fs::path(file).lexically_relative(bad_dir).generic_string();
}

std::vector<std::string> case_names() {
    std::vector<std::string> names;
    for (const auto& entry : fs::directory_iterator(bad_dir)) {
        if (entry.path().extension() == ".expect") {
            names.push_back(entry.path().stem().string());
        }
    }
    std::sort(names.begin(), names.end());
    return names;
}

}  // namespace

// NOLINTNEXTLINE(readability-function-cognitive-complexity): Catch2's assertion macros
TEST_CASE("every malformed catalog produces the diagnostics it is paired with", "[roles][catalog][golden]") {
    const auto names = case_names();
    REQUIRE(names.size() >= 14);
    for (const auto& name : names) {
        DYNAMIC_SECTION(name) {
            const fs::path file = bad_dir / (name + ".yaml");
            const fs::path input = fs::exists(file) ? file : bad_dir / name;  // a directory: several files
            REQUIRE(fs::exists(input));
            const auto expected = read_expect(bad_dir / (name + ".expect"));
            REQUIRE_FALSE(expected.empty());

            Diagnostics diags;
            const Catalog catalog = load_catalog({input}, diags);
            validate_catalog(catalog, diags);
            INFO("got:\n" << diags.to_string());
            CHECK_FALSE(diags.ok());
            const auto matches = [](const Expected& want, const Diagnostic& d) {
                return relative_to_bad(d.file) == want.file && d.line == want.line &&
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
            // And nothing the case does not expect: each case is about its own mistakes.
            for (const auto& d : diags.items()) {
                INFO("unexpected " << d.to_string());
                CHECK(std::any_of(expected.begin(), expected.end(), [&](const Expected& want) {
                    return matches(want, d);
                }));
            }
        }
    }
}

TEST_CASE("every case in the malformed corpus has its .expect file", "[roles][catalog][golden]") {
    for (const auto& entry : fs::directory_iterator(bad_dir)) {
        if (entry.path().extension() == ".expect") {
            continue;
        }
        const fs::path expect = bad_dir / (entry.path().stem().string() + ".expect");
        INFO(entry.path().string());
        CHECK(fs::exists(expect));
    }
}
