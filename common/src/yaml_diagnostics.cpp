#include "stormnode/common/yaml_diagnostics.hpp"

#include <stormnode/common/error.hpp>
#include <stormnode/common/temp_dir.hpp>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace stormnode {

std::string Diagnostic::to_string() const {
    std::string text = file;
    if (line > 0) {
        text += ":" + std::to_string(line) + ":" + std::to_string(column);
    }
    return text + ": " + message;
}

void Diagnostics::error(const YAML::Mark& at, std::string message) {
    if (at.is_null()) {
        items_.push_back({file_, 0, 0, std::move(message)});
        return;
    }
    items_.push_back({file_, at.line + 1, at.column + 1, std::move(message)});
}

void Diagnostics::error(const YAML::Node& at, std::string message) {
    error(at.Mark(), std::move(message));
}

void Diagnostics::error_in_file(std::string message) {
    items_.push_back({file_, 0, 0, std::move(message)});
}

void Diagnostics::error_at(const Diagnostic& where, std::string message) {
    items_.push_back({where.file, where.line, where.column, std::move(message)});
}

void Diagnostics::append(const Diagnostics& other) {
    items_.insert(items_.end(), other.items_.begin(), other.items_.end());
}

std::string Diagnostics::to_string() const {
    std::string text;
    for (const auto& d : items_) {
        text += d.to_string() + "\n";
    }
    return text;
}

Diagnostic Diagnostics::position(const YAML::Node& node) const {
    const auto mark = node.Mark();
    if (mark.is_null()) {
        return {file_, 0, 0, {}};
    }
    return {file_, mark.line + 1, mark.column + 1, {}};
}

void throw_if_errors(const Diagnostics& diags, const std::string& what) {
    if (diags.ok()) {
        return;
    }
    auto text = diags.to_string();
    text.pop_back();
    throw Error(Errc::invalid_input, what + ":\n" + text);
}

std::optional<YAML::Node> load_yaml_string(const std::string& text, Diagnostics& diags) {
    try {
        YAML::Node root = YAML::Load(text);
        if (!root || root.IsNull()) {
            diags.error_in_file("the document is empty");
            return std::nullopt;
        }
        return root;
    } catch (const YAML::ParserException& e) {
        diags.error(e.mark, "YAML syntax error: " + e.msg);
        return std::nullopt;
    }
}

std::optional<std::string> read_text_file(const std::filesystem::path& path, Diagnostics& diags) {
    try {
        return read_file(path);
    } catch (const Error& e) {
        Diagnostics local(path.string());
        local.error_in_file(e.what());
        diags.append(local);
        return std::nullopt;
    }
}

std::optional<YAML::Node> load_yaml_file(const std::filesystem::path& path, Diagnostics& diags) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        diags.error_in_file("cannot open: " + std::string(std::strerror(errno)));
        return std::nullopt;
    }
    std::ostringstream text;
    text << in.rdbuf();
    return load_yaml_string(text.str(), diags);
}

namespace yaml {

YAML::Node value_of(const YAML::Node& map, const char* key) {
    const YAML::Node& const_map = map;
    return const_map[key];
}
namespace {

std::optional<YAML::Node> field(const YAML::Node& map, const char* key) {
    const YAML::Node& const_map = map;
    YAML::Node value = const_map[key];  // const access never inserts
    if (!value) {
        return std::nullopt;
    }
    return value;
}

}  // namespace

std::optional<std::string> require_string(const YAML::Node& map, const char* key, Diagnostics& diags) {
    const auto value = field(map, key);
    if (!value) {
        diags.error(map, std::string("missing required key '") + key + "'");
        return std::nullopt;
    }
    return optional_string(map, key, diags);
}

std::optional<std::string> optional_string(const YAML::Node& map, const char* key, Diagnostics& diags) {
    const auto value = field(map, key);
    if (!value) {
        return std::nullopt;
    }
    if (!value->IsScalar()) {
        diags.error(*value, std::string("'") + key + "' must be a string");
        return std::nullopt;
    }
    return value->Scalar();
}

std::optional<long long> optional_int(
    const YAML::Node& map, const char* key, Diagnostics& diags, long long min, long long max) {
    const auto value = field(map, key);
    if (!value) {
        return std::nullopt;
    }
    long long number = 0;
    if (!value->IsScalar() || !YAML::convert<long long>::decode(*value, number)) {
        diags.error(*value, std::string("'") + key + "' must be a whole number");
        return std::nullopt;
    }
    if (number < min || number > max) {
        diags.error(
            *value,
            std::string("'") + key + "' must be between " + std::to_string(min) + " and " +
                std::to_string(max) + ", not " + std::to_string(number));
        return std::nullopt;
    }
    return number;
}

std::optional<bool> optional_bool(const YAML::Node& map, const char* key, Diagnostics& diags) {
    const auto value = field(map, key);
    if (!value) {
        return std::nullopt;
    }
    bool flag = false;
    if (!value->IsScalar() || !YAML::convert<bool>::decode(*value, flag)) {
        diags.error(*value, std::string("'") + key + "' must be true or false");
        return std::nullopt;
    }
    return flag;
}

std::vector<std::string> string_list(const YAML::Node& map, const char* key, Diagnostics& diags) {
    std::vector<std::string> items;
    const auto value = field(map, key);
    if (!value) {
        return items;
    }
    if (!value->IsSequence()) {
        diags.error(*value, std::string("'") + key + "' must be a list");
        return items;
    }
    for (const auto& item : *value) {
        if (!item.IsScalar()) {
            diags.error(item, std::string("items of '") + key + "' must be strings");
            continue;
        }
        items.push_back(item.Scalar());
    }
    return items;
}

bool expect_map(const YAML::Node& node, const std::string& what, Diagnostics& diags) {
    if (!node.IsMap()) {
        diags.error(node, what + " must be a mapping");
        return false;
    }
    return true;
}

bool expect_sequence(const YAML::Node& node, const std::string& what, Diagnostics& diags) {
    if (!node.IsSequence()) {
        diags.error(node, what + " must be a list");
        return false;
    }
    return true;
}

void reject_unknown_keys(const YAML::Node& map, const std::set<std::string>& allowed, Diagnostics& diags) {
    if (!map.IsMap()) {
        return;
    }
    for (const auto& kv : map) {
        const auto key = kv.first.Scalar();
        if (!allowed.contains(key)) {
            std::string known;
            for (const auto& k : allowed) {
                known += known.empty() ? k : ", " + k;
            }
            diags.error(kv.first, "unknown key '" + key + "' (known: " + known + ")");
        }
    }
}

}  // namespace yaml
}  // namespace stormnode
