// The answer file of an unattended install (stormctl install --answers FILE, stormnode.answers=):
//
//   disk: /dev/vda                      # or a selector: {min_size: 20G, max_size: 2T, model: "QEMU*"}
//   wipe: true                          # the disk's content is destroyed: say so
//   roles: [db]                         # catalog roles, checked as a combination; may be empty
//   variants: {db: active-passive}      # optional, per role
//   hostname: db-1
//   zone: rack-3
//   network: {interface: eno1, mode: static, address: 10.0.0.5/24, gateway: 10.0.0.1, dns: [10.0.0.2]}
//   root:
//     ssh_keys: ["ssh-ed25519 AAAA... admin@laptop"]
//   cluster: cluster.yaml               # optional; relative to the answer file
//
// Every problem is reported at file:line:col before anything is touched; unknown keys are errors.
#pragma once

#include <stormnode/catalog/catalog.hpp>
#include <stormnode/catalog/node_file.hpp>
#include <stormnode/common/yaml_diagnostics.hpp>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace stormnode::installer {

struct DiskSelector {
    std::optional<std::uint64_t> min_size;  // bytes
    std::optional<std::uint64_t> max_size;
    std::string model;  // a shell-style pattern (fnmatch) over the disk's model; empty: any

    bool operator==(const DiskSelector&) const = default;
};

struct Answers {
    std::string disk;  // a device path, or empty when selector is set
    std::optional<DiskSelector> selector;
    bool wipe = false;
    roles::NodeFile node;  // roles, variants, hostname, zone, network: becomes node.yaml
    std::vector<std::string> root_ssh_keys;
    std::filesystem::path cluster_file;  // empty: none; else absolute or relative to the answer file
    Diagnostic where;                    // the document, for diagnostics found later (the disk is too small)
};

// Parses and checks the text; file_name is what diagnostics name. With a catalog, roles are checked
// against it. nullopt when there is any diagnostic.
std::optional<Answers> parse_answers(
    const std::string& text, const std::string& file_name, const roles::Catalog* catalog, Diagnostics& diags);

// The same for a file; a relative cluster file is resolved against the answer file's directory and
// must exist.
std::optional<Answers> load_answers(
    const std::filesystem::path& path, const roles::Catalog* catalog, Diagnostics& diags);

// "20G", "512MiB", "2T", "1000000" -> bytes (K/M/G/T/P are powers of 1024; a trailing "B"/"iB" is allowed).
std::optional<std::uint64_t> parse_size(std::string_view text);

// "ssh-ed25519 AAAA... comment": a known key type and a base64 blob that encodes that same type.
bool valid_ssh_public_key(std::string_view line);

}  // namespace stormnode::installer
