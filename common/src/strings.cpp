#include "stormnode/common/strings.hpp"

namespace stormnode {

std::vector<std::string> split(std::string_view text, char separator) {
    std::vector<std::string> fields;
    std::size_t start = 0;
    for (auto end = text.find(separator); end != std::string_view::npos; end = text.find(separator, start)) {
        fields.emplace_back(text.substr(start, end - start));
        start = end + 1;
    }
    fields.emplace_back(text.substr(start));
    return fields;
}

std::string_view trim(std::string_view text) noexcept {
    constexpr std::string_view kWhitespace = " \t\n\r\f\v";
    const auto begin = text.find_first_not_of(kWhitespace);
    if (begin == std::string_view::npos) {
        return text.substr(text.size());  // empty, still pointing into text
    }
    const auto end = text.find_last_not_of(kWhitespace);
    return text.substr(begin, end - begin + 1);
}

}  // namespace stormnode
