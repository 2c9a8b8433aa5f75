// An image manifest (image/default.yaml, image/minimal.yaml): what one node image is composed from.
#pragma once

#include <stormnode/common/yaml_diagnostics.hpp>

#include <filesystem>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace stormnode::image {

struct Dracut {
    std::vector<std::string> modules;  // added to the generic initramfs: ostree, dmsquash-live, ...
    bool hostonly = false;             // the build host's hardware says nothing about a node's
};

struct Manifest {
    std::string version;  // the image version, in the commit's "version" metadata
    std::string suite = "bookworm";
    std::optional<std::string> mirror;    // none: mmdebstrap's default (the machine's apt source)
    std::string architecture = "x86_64";  // OSTree's name; Debian's is amd64
    std::vector<std::string> base_packages;
    std::vector<std::string> roles;  // names from the role catalog ("common" included or implied)
    std::vector<std::string> extra_packages;
    std::string kernel = "linux-image-amd64";
    Dracut dracut;
    // dpkg path filters (dpkg --path-exclude, then --path-include): files no package installs into the
    // image, such as documentation or drivers a class of machine never has. Globs on dpkg's own paths.
    std::vector<std::string> path_exclude;
    std::vector<std::string> path_include;
    std::filesystem::path file;
    std::string sha256;                  // of the file's bytes: the commit records which manifest made it
    Diagnostic where;                    // of the document
    std::vector<Diagnostic> role_where;  // of each role name, parallel to roles

    // stormnode/<suite>/<arch>/node
    [[nodiscard]] std::string ref() const;
    [[nodiscard]] std::string debian_architecture() const;
};

// Parses and checks a manifest; role names are checked against known_roles when it is not empty.
// Every problem lands in diags as file:line:col.
Manifest parse_manifest(
    const std::string& text,
    const std::filesystem::path& file,
    const std::set<std::string>& known_roles,
    Diagnostics& diags);
Manifest load_manifest(
    const std::filesystem::path& path, const std::set<std::string>& known_roles, Diagnostics& diags);

// Loads, throwing Error(invalid_input) with every diagnostic on failure.
Manifest load_valid_manifest(const std::filesystem::path& path, const std::set<std::string>& known_roles);

// Lowercase hex SHA-256 of bytes.
std::string sha256_hex(std::string_view bytes);

}  // namespace stormnode::image
