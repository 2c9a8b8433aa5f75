// Small string helpers every domain needs; one copy here instead of one per file.
#pragma once

#include <concepts>
#include <initializer_list>
#include <ranges>
#include <string>
#include <string_view>
#include <vector>

namespace stormnode {

// The items with `separator` between them: join(names, ", ") is "a, b, c". Any range whose elements
// convert to std::string_view: std::vector<std::string>, std::set<std::string>,
// std::vector<std::string_view>, a view. Empty items keep their place (join({"", "b"}, ",") is ",b");
// an empty range gives "".
template <std::ranges::input_range Range>
    requires std::convertible_to<std::ranges::range_reference_t<Range>, std::string_view>
std::string join(Range&& items, std::string_view separator) {
    std::string text;
    bool first = true;
    for (auto&& item : items) {
        if (!first) {
            text += separator;
        }
        first = false;
        text += std::string_view(item);
    }
    return text;
}

// For a braced list: join({"a", "b"}, ", ").
inline std::string join(std::initializer_list<std::string_view> items, std::string_view separator) {
    return join(std::vector<std::string_view>(items), separator);
}

// The fields between separators, empty ones included: "a,,b" gives {"a", "", "b"}, "a," gives {"a", ""},
// and "" gives {""} (one empty field; n separators always make n + 1 fields). So join(split(t, c), c) == t.
std::vector<std::string> split(std::string_view text, char separator);

// `text` without leading and trailing whitespace (space, \t, \n, \r, \f, \v). A view into `text`: keep
// what it views alive, or copy it (std::string(trim(...))).
std::string_view trim(std::string_view text) noexcept;

}  // namespace stormnode
