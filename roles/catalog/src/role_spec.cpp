#include "stormnode/catalog/role_spec.hpp"

#include <stormnode/common/error.hpp>

#include <algorithm>

namespace stormnode::roles {
namespace {

[[noreturn]] void bad_spec(std::string_view text, const std::string& why) {
    throw Error(
        Errc::invalid_input, "role '" + std::string(text) + "' " + why + " (a role is name or name:variant)");
}

}  // namespace

RoleSpec parse_role_spec(std::string_view text) {
    const auto colon = text.find(':');
    RoleSpec spec;
    spec.name = text.substr(0, colon);
    if (spec.name.empty()) {
        bad_spec(text, "has no name");
    }
    if (colon == std::string_view::npos) {
        return spec;
    }
    spec.variant = text.substr(colon + 1);
    if (spec.variant.empty()) {
        bad_spec(text, "has an empty variant after ':'");
    }
    if (spec.variant.find(':') != std::string::npos) {
        bad_spec(text, "has more than one ':'");
    }
    return spec;
}

std::string to_string(const RoleSpec& spec) {
    return spec.variant.empty() ? spec.name : spec.name + ":" + spec.variant;
}

std::vector<RoleSpec> parse_role_list(std::string_view comma_separated) {
    std::vector<RoleSpec> specs;
    std::size_t start = 0;
    while (start <= comma_separated.size()) {
        const auto comma = std::min(comma_separated.find(',', start), comma_separated.size());
        specs.push_back(parse_role_spec(comma_separated.substr(start, comma - start)));
        start = comma + 1;
    }
    return specs;
}

std::vector<RoleSpec> parse_role_specs(const std::vector<std::string>& texts) {
    std::vector<RoleSpec> specs;
    specs.reserve(texts.size());
    for (const auto& text : texts) {
        specs.push_back(parse_role_spec(text));
    }
    return specs;
}

std::vector<std::string> to_strings(const std::vector<RoleSpec>& specs) {
    std::vector<std::string> texts;
    texts.reserve(specs.size());
    for (const auto& spec : specs) {
        texts.push_back(to_string(spec));
    }
    return texts;
}

std::string to_string(const std::vector<RoleSpec>& specs, std::string_view separator) {
    std::string text;
    for (const auto& spec : specs) {
        if (!text.empty()) {
            text += separator;
        }
        text += to_string(spec);
    }
    return text;
}

const RoleSpec* find_role(const std::vector<RoleSpec>& specs, std::string_view name) {
    const auto it =
        std::find_if(specs.begin(), specs.end(), [&](const RoleSpec& spec) { return spec.name == name; });
    return it == specs.end() ? nullptr : &*it;
}

}  // namespace stormnode::roles
