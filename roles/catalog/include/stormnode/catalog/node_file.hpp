// This node's own settings, /etc/stormnode/node.yaml: written by the installer or by storm-firstboot,
// read by storm-firstboot and storm-roled. The same fields appear in the installer's answer file and
// in an inventory entry, so their parser is shared (parse_node_fields). It lives in the catalog library
// so that storm-roled reads node.yaml with the very parser storm-firstboot and the installer write it for.
//
//   roles: [db, quorum]              # catalog role names; may be empty (the role comes later)
//   variants: {db: galera}           # optional, per listed role (the two make NodeFile::roles)
//   hostname: db-1                   # RFC 1123
//   zone: rack-3
//   network:                         # optional; absent: DHCP on every Ethernet link
//     interface: eno1                #   or  mac: "52:54:00:12:34:56"  (one of the two, or neither for DHCP)
//     mode: static                   #   dhcp (default) | static
//     address: 10.0.0.5/24           #   static only
//     gateway: 10.0.0.1              #   static only, inside the address's subnet
//     dns: [10.0.0.2]                #   static only
//   features: [local_db]             # storm-roled's keys, kept as they are (the node's, not a role's)
//   variables: {key: value}
#pragma once

#include <stormnode/catalog/catalog.hpp>
#include <stormnode/catalog/role_spec.hpp>
#include <stormnode/common/yaml_diagnostics.hpp>

#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace stormnode::roles {

enum class AddressMode { dhcp, fixed };

struct Network {
    std::string interface;  // match by kernel name ("eno1") ...
    std::string mac;  // ... or by MAC ("52:54:00:12:34:56", lower case); both empty: every Ethernet link
    AddressMode mode = AddressMode::dhcp;
    std::string address;  // fixed: "10.0.0.5/24" or "2001:db8::5/64"
    std::string gateway;  // fixed, optional
    std::vector<std::string> dns;

    bool operator==(const Network&) const = default;
};

struct NodeFile {
    std::vector<RoleSpec> roles;  // `roles` with each one's entry of `variants`, in the listed order
    std::string hostname;
    std::string zone;
    std::optional<Network> network;
    // storm-roled's, carried through. Node-wide, beside the roles and not in them: the units of any
    // role may name a feature, and a role switch keeps them (role_spec.hpp).
    std::vector<std::string> features;
    std::map<std::string, std::string> variables;  // storm-roled's, carried through

    bool operator==(const NodeFile&) const = default;
};

inline constexpr std::string_view kNodeFilePath = "etc/stormnode/node.yaml";  // under the node's root

// The keys parse_node_fields reads; a file format that embeds them adds its own to this set.
const std::set<std::string>& node_field_keys();

// Reads roles, variants, hostname, zone, network, features and variables from a map, reporting every
// problem at its file:line:col. With a catalog, the roles are checked with validate_role_specs too.
// Unknown keys are not reported here (the caller knows what else its format allows).
NodeFile parse_node_fields(const YAML::Node& map, const Catalog* catalog, Diagnostics& diags);
std::optional<Network> parse_network(const YAML::Node& node, Diagnostics& diags);

// node.yaml: a map of exactly node_field_keys(). nullopt (with diagnostics) when it is not valid.
// parse_node_document takes the document already loaded (storm-roled keeps it for its templates);
// diagnostics name diags.file().
std::optional<NodeFile> parse_node_document(
    const YAML::Node& doc, const Catalog* catalog, Diagnostics& diags);
std::optional<NodeFile> parse_node_file(
    const std::string& text, const std::string& file_name, const Catalog* catalog, Diagnostics& diags);
std::optional<NodeFile> read_node_file(
    const std::filesystem::path& path, const Catalog* catalog, Diagnostics& diags);

// node.yaml's keys and values, into a map the emitter has open (an answer file embeds them).
void emit_node_fields(YAML::Emitter& out, const NodeFile& node);
// The YAML text of node.yaml, readable by parse_node_file (which storm-roled's load_node_config uses).
std::string render_node_file(const NodeFile& node);
// Writes it atomically (0644), creating the directory.
void write_node_file(const std::filesystem::path& path, const NodeFile& node);

// Field checks, also used by the answer file.
bool valid_hostname(std::string_view name);  // RFC 1123: dot-separated labels of [a-z0-9-], 1..63, <= 253
bool valid_mac(std::string_view mac);        // six colon-separated hex pairs, not all zero
std::string normalize_mac(std::string_view mac);  // lower case
bool valid_ip(std::string_view address);          // IPv4 or IPv6
// "10.0.0.5/24": nullopt when malformed, else the prefix length.
std::optional<int> cidr_prefix(std::string_view cidr);
// Whether ip lies in the subnet of cidr (same family, same first prefix bits).
bool in_subnet(std::string_view cidr, std::string_view ip);

}  // namespace stormnode::roles
