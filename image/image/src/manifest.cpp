#include "stormnode/image/manifest.hpp"

#include <stormnode/common/error.hpp>
#include <stormnode/common/temp_dir.hpp>

#include <glib.h>

#include <algorithm>
#include <cctype>
#include <regex>

namespace stormnode::image {
namespace {

const std::set<std::string> kTopKeys{
    "version",
    "suite",
    "mirror",
    "architecture",
    "base_packages",
    "roles",
    "extra_packages",
    "kernel",
    "dracut",
    "path_exclude",
    "path_include"};
const std::set<std::string> kDracutKeys{"modules", "hostonly"};

// Debian policy §5.6.1: lowercase letters, digits, + - . ; at least two characters, starting alphanumeric.
bool valid_package_name(const std::string& name) {
    static const std::regex re("[a-z0-9][a-z0-9+.-]+");
    return std::regex_match(name, re);
}

// Checks the scalar items of map[key] (string_list already reported the others).
void check_packages(const YAML::Node& map, const char* key, Diagnostics& diags) {
    const YAML::Node list = map[key];
    if (!list || !list.IsSequence()) {
        return;
    }
    std::set<std::string> seen;
    for (const auto& item : list) {
        if (!item.IsScalar()) {
            continue;
        }
        const std::string name = item.Scalar();
        if (!valid_package_name(name)) {
            diags.error(item, std::string("'") + key + "': '" + name + "' is not a Debian package name");
        } else if (!seen.insert(name).second) {
            diags.error(item, std::string("'") + key + "': package '" + name + "' is listed twice");
        }
    }
}

// dpkg reads each filter as one line of its configuration: an absolute glob, no whitespace.
std::vector<std::string> path_filters(const YAML::Node& map, const char* key, Diagnostics& diags) {
    auto globs = yaml::string_list(map, key, diags);
    const YAML::Node list = map[key];
    if (!list || !list.IsSequence()) {
        return globs;
    }
    for (const auto& item : list) {
        if (!item.IsScalar()) {
            continue;
        }
        const std::string& glob = item.Scalar();
        if (glob.size() < 2 || glob.front() != '/' || std::any_of(glob.begin(), glob.end(), [](char c) {
                return std::isspace(static_cast<unsigned char>(c));
            })) {
            diags.error(
                item,
                std::string("'") + key + "': '" + glob + "' must be an absolute path glob without spaces");
        } else if (glob == "/*" || glob == "/") {
            diags.error(item, std::string("'") + key + "': '" + glob + "' would leave every file out");
        }
    }
    return globs;
}

}  // namespace

std::string Manifest::ref() const {
    return "stormnode/" + suite + "/" + architecture + "/node";
}

std::string Manifest::debian_architecture() const {
    return architecture == "x86_64" ? "amd64" : architecture == "aarch64" ? "arm64" : architecture;
}

std::string sha256_hex(std::string_view bytes) {
    gchar* hex = g_compute_checksum_for_data(
        G_CHECKSUM_SHA256, reinterpret_cast<const guchar*>(bytes.data()), bytes.size());
    std::string out(hex);
    g_free(hex);
    return out;
}

Manifest parse_manifest(
    const std::string& text,
    const std::filesystem::path& file,
    const std::set<std::string>& known_roles,
    Diagnostics& diags) {
    Manifest m;
    m.file = file;
    m.sha256 = sha256_hex(text);
    const auto root = load_yaml_string(text, diags);
    if (!root || !yaml::expect_map(*root, "manifest", diags)) {
        return m;
    }
    const YAML::Node& r = *root;
    m.where = diags.position(r);
    yaml::reject_unknown_keys(r, kTopKeys, diags);

    if (auto v = yaml::require_string(r, "version", diags)) {
        m.version = *v;
        if (m.version.empty()) {
            diags.error(r["version"], "'version' must not be empty");
        }
    }
    if (auto v = yaml::optional_string(r, "suite", diags)) {
        m.suite = *v;
        if (!std::regex_match(m.suite, std::regex("[a-z][a-z0-9-]*"))) {
            diags.error(r["suite"], "'suite' must be a Debian suite name like 'bookworm'");
        }
    }
    if (auto v = yaml::optional_string(r, "mirror", diags)) {
        if (!std::regex_match(*v, std::regex("(https?|file)://.+"))) {
            diags.error(r["mirror"], "'mirror' must be an http://, https:// or file:// URL");
        }
        m.mirror = *v;
    }
    if (auto v = yaml::optional_string(r, "architecture", diags)) {
        m.architecture = *v;
        if (m.architecture != "x86_64" && m.architecture != "aarch64") {
            diags.error(r["architecture"], "'architecture' must be x86_64 or aarch64");
        }
    }
    m.base_packages = yaml::string_list(r, "base_packages", diags);
    check_packages(r, "base_packages", diags);
    if (!r["base_packages"]) {
        diags.error(r, "missing required key 'base_packages'");
    }
    m.extra_packages = yaml::string_list(r, "extra_packages", diags);
    check_packages(r, "extra_packages", diags);

    (void)yaml::string_list(r, "roles", diags);  // reports a non-list and non-string items
    std::set<std::string> seen;
    for (const auto& item : r["roles"] && r["roles"].IsSequence() ? r["roles"] : YAML::Node()) {
        if (!item.IsScalar()) {
            continue;
        }
        const std::string name = item.Scalar();
        if (!known_roles.empty() && !known_roles.contains(name)) {
            std::string known;
            for (const auto& k : known_roles) {
                known += (known.empty() ? "" : ", ") + k;
            }
            diags.error(item, "unknown role '" + name + "' (the catalog has: " + known + ")");
        } else if (!seen.insert(name).second) {
            diags.error(item, "role '" + name + "' is listed twice");
        } else {
            m.roles.push_back(name);
            m.role_where.push_back(diags.position(item));
        }
    }
    if (auto v = yaml::optional_string(r, "kernel", diags)) {
        m.kernel = *v;
        if (!valid_package_name(m.kernel)) {
            diags.error(r["kernel"], "'kernel' must be a Debian package name like linux-image-amd64");
        }
    }
    const YAML::Node dracut = r["dracut"];
    if (dracut && yaml::expect_map(dracut, "dracut", diags)) {
        yaml::reject_unknown_keys(dracut, kDracutKeys, diags);
        m.dracut.modules = yaml::string_list(dracut, "modules", diags);
        if (auto v = yaml::optional_bool(dracut, "hostonly", diags)) {
            m.dracut.hostonly = *v;
            if (*v) {
                diags.error(
                    dracut["hostonly"],
                    "'hostonly: true' would build an initramfs for the build machine, not for a node");
            }
        }
    }
    m.path_exclude = path_filters(r, "path_exclude", diags);
    m.path_include = path_filters(r, "path_include", diags);
    if (r["path_include"] && m.path_exclude.empty()) {
        diags.error(r["path_include"], "'path_include' only takes back files that 'path_exclude' leaves out");
    }
    return m;
}

Manifest load_manifest(
    const std::filesystem::path& path, const std::set<std::string>& known_roles, Diagnostics& diags) {
    std::string text;
    try {
        text = read_file(path);
    } catch (const std::exception& e) {
        diags.error_in_file(std::string("cannot read the manifest: ") + e.what());
        Manifest m;
        m.file = path;
        return m;
    }
    return parse_manifest(text, path, known_roles, diags);
}

Manifest load_valid_manifest(const std::filesystem::path& path, const std::set<std::string>& known_roles) {
    Diagnostics diags(path.string());
    auto m = load_manifest(path, known_roles, diags);
    throw_if_errors(diags, "invalid manifest '" + path.string() + "'");
    return m;
}

}  // namespace stormnode::image
