// YAML input checked with every problem reported as file:line:col, not just the first.
#pragma once

#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace stormnode {

struct Diagnostic {
    std::string file;
    int line = 0;    // 1-based; 0 when the problem is about the file as a whole
    int column = 0;  // 1-based
    std::string message;

    [[nodiscard]] std::string to_string() const;  // "roles/catalog/db.yaml:12:7: unknown key 'unitz'"
};

class Diagnostics {
public:
    Diagnostics() = default;
    explicit Diagnostics(std::string file) : file_(std::move(file)) {}

    void error(const YAML::Mark& at, std::string message);
    void error(const YAML::Node& at, std::string message);
    void error_in_file(std::string message);  // no position: the file is missing or unreadable
    // A problem found in another file than the one this collector was made for.
    void error_at(const Diagnostic& where, std::string message);
    void append(const Diagnostics& other);

    [[nodiscard]] bool ok() const noexcept { return items_.empty(); }
    [[nodiscard]] const std::vector<Diagnostic>& items() const noexcept { return items_; }
    [[nodiscard]] const std::string& file() const noexcept { return file_; }
    [[nodiscard]] std::string to_string() const;  // one diagnostic a line

    // Where a node is, as a diagnostic with an empty message (for pointing back at it later).
    [[nodiscard]] Diagnostic position(const YAML::Node& node) const;

private:
    std::string file_;
    std::vector<Diagnostic> items_;
};

// Throws Error(Errc::invalid_input) with every diagnostic when there are any.
void throw_if_errors(const Diagnostics& diags, const std::string& what);

// Parses a YAML file; a syntax error becomes a diagnostic and nullopt.
std::optional<YAML::Node> load_yaml_file(const std::filesystem::path& path, Diagnostics& diags);
// Reads a whole file; an unreadable file becomes a diagnostic (naming it) and nullopt.
std::optional<std::string> read_text_file(const std::filesystem::path& path, Diagnostics& diags);
std::optional<YAML::Node> load_yaml_string(const std::string& text, Diagnostics& diags);

namespace yaml {

// map[key] through const access, which never inserts: a missing key is a null node, and the map unchanged.
YAML::Node value_of(const YAML::Node& map, const char* key);

// Field readers: a missing or ill-typed field is a diagnostic at the field (or its parent map).
std::optional<std::string> require_string(const YAML::Node& map, const char* key, Diagnostics& diags);
std::optional<std::string> optional_string(const YAML::Node& map, const char* key, Diagnostics& diags);
std::optional<long long> optional_int(
    const YAML::Node& map, const char* key, Diagnostics& diags, long long min, long long max);
std::optional<bool> optional_bool(const YAML::Node& map, const char* key, Diagnostics& diags);
// A list of strings; a lone scalar is not accepted (say [x]).
std::vector<std::string> string_list(const YAML::Node& map, const char* key, Diagnostics& diags);
bool expect_map(const YAML::Node& node, const std::string& what, Diagnostics& diags);
bool expect_sequence(const YAML::Node& node, const std::string& what, Diagnostics& diags);
void reject_unknown_keys(const YAML::Node& map, const std::set<std::string>& allowed, Diagnostics& diags);

}  // namespace yaml
}  // namespace stormnode
