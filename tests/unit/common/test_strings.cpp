#include <stormnode/common/strings.hpp>

#include <catch2/catch.hpp>

#include <array>
#include <list>
#include <ranges>
#include <set>
#include <string>
#include <string_view>
#include <vector>

using stormnode::join;
using stormnode::split;
using stormnode::trim;

TEST_CASE("join puts the separator between items of any range of strings", "[common][strings]") {
    CHECK(join(std::vector<std::string>{"a", "b", "c"}, ", ") == "a, b, c");
    CHECK(join(std::set<std::string>{"b", "a"}, ",") == "a,b");  // the set's order
    CHECK(join(std::vector<std::string_view>{"x", "y"}, " ") == "x y");
    CHECK(join(std::list<std::string>{"one"}, ", ") == "one");
    CHECK(join(std::array<const char*, 2>{"p", "q"}, "/") == "p/q");
    CHECK(join({"l", "m"}, "--") == "l--m");
    const std::vector<int> numbers{1, 2, 3};
    CHECK(join(numbers | std::views::transform([](int n) { return std::to_string(n); }), "+") == "1+2+3");
}

TEST_CASE("join keeps empty items in their place and gives nothing for nothing", "[common][strings]") {
    CHECK(join(std::vector<std::string>{}, ", ").empty());
    CHECK(join(std::vector<std::string>{""}, ", ").empty());
    // The copies this replaces dropped the separator after an empty first item.
    CHECK(join(std::vector<std::string>{"", "b"}, ",") == ",b");
    CHECK(join(std::vector<std::string>{"a", "", "c"}, ",") == "a,,c");
    CHECK(join(std::vector<std::string>{"a", "b"}, "") == "ab");
}

TEST_CASE("split keeps empty fields: n separators make n + 1 fields", "[common][strings]") {
    using Fields = std::vector<std::string>;
    const struct {
        std::string_view text;
        Fields fields;
    } cases[] = {
        {"a,b,c", {"a", "b", "c"}},
        {"a,,b", {"a", "", "b"}},
        {"a,", {"a", ""}},
        {",a", {"", "a"}},
        {",", {"", ""}},
        {"", {""}},
        {"abc", {"abc"}},
        {"compute:large,storage", {"compute:large", "storage"}},
    };
    for (const auto& c : cases) {
        INFO("text: '" << c.text << "'");
        CHECK(split(c.text, ',') == c.fields);
        CHECK(join(split(c.text, ','), ",") == c.text);  // the round trip
    }
    CHECK(split("/usr/bin:/bin", ':') == Fields{"/usr/bin", "/bin"});
}

TEST_CASE("trim drops whitespace at both ends only", "[common][strings]") {
    CHECK(trim("  a b \t\n") == "a b");
    CHECK(trim("\r\n\f\vx") == "x");
    CHECK(trim("x") == "x");
    CHECK(trim("   ").empty());
    CHECK(trim("").empty());
    const std::string text = "  value  ";
    const auto view = trim(text);
    CHECK(view.data() == text.data() + 2);  // a view into the argument, no copy
}
