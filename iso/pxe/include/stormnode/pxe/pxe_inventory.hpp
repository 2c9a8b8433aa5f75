// A rack's inventory for network installs (stormctl pxe validate|serve):
//
//   network:                        # the provisioning network pxe serve answers on
//     interface: br-prov            # default for --interface
//     subnet: 10.10.0.0/24
//     server: 10.10.0.1             # this machine's address there: HTTP and TFTP
//     range: [10.10.0.100, 10.10.0.199]   # addresses for unknown MACs (not needed with proxy_dhcp)
//     gateway: 10.10.0.1            # optional DHCP router option
//     dns: [10.10.0.1]              # optional
//     proxy_dhcp: false             # true: another DHCP server hands out addresses, we only add boot info
//   defaults:                       # every node's, unless the node says otherwise
//     disk: {min_size: 20G}         # as in the installer's answer file
//     wipe: true
//     zone: rack-1
//     root: {ssh_keys: ["ssh-ed25519 AAAA... admin"]}
//   discovered: live                # unknown MACs: live (boot the live system, no install) | ignore
//   external_roles: [controller]    # roles the cluster has outside this rack (for depends_on checks)
//   nodes:
//     "52:54:00:00:00:01":          # MAC -> the node
//       hostname: db-1
//       roles: [db]
//       address: 10.10.0.11         # fixed provisioning address (a DHCP reservation)
//       disk: /dev/vda              # and any other answer-file field: variants, zone, network, ...
//
// Every problem is reported at file:line:col: duplicate MACs, hostnames and addresses, unknown roles,
// role combinations the catalog forbids, and cluster needs (minimum members, depends_on).
#pragma once

#include <stormnode/catalog/catalog.hpp>
#include <stormnode/common/yaml_diagnostics.hpp>
#include <stormnode/installer/answers.hpp>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace stormnode::iso {

struct ProvisioningNetwork {
    std::string interface;  // may be empty: then --interface must say
    std::string subnet;     // "10.10.0.0/24"
    std::string server;     // "10.10.0.1"
    std::string range_start;
    std::string range_end;
    std::string gateway;
    std::vector<std::string> dns;
    bool proxy_dhcp = false;
};

enum class DiscoveredPolicy { live, ignore };

struct InventoryNode {
    std::string mac;             // lower case
    std::string address;         // provisioning address; empty: from the range
    installer::Answers answers;  // defaults folded in: what the node's answer file says
    Diagnostic where;            // its MAC key
};

struct Inventory {
    ProvisioningNetwork network;
    DiscoveredPolicy discovered = DiscoveredPolicy::live;
    std::vector<std::string> external_roles;
    std::vector<InventoryNode> nodes;  // in file order

    [[nodiscard]] const InventoryNode* find(const std::string& mac) const;  // any case
};

// Parses and checks everything, the cluster included; nullopt when there is any diagnostic.
std::optional<Inventory> parse_inventory(
    const std::string& text, const std::string& file_name, const roles::Catalog& catalog, Diagnostics& diags);
std::optional<Inventory> load_inventory(
    const std::filesystem::path& path, const roles::Catalog& catalog, Diagnostics& diags);

// The node's answer file, in the installer's format (installer::parse_answers reads it back).
std::string render_answers(const InventoryNode& node);

}  // namespace stormnode::iso
