#include "stormnode/pxe/pxe_inventory.hpp"

#include <stormnode/catalog/node_file.hpp>
#include <stormnode/common/strings.hpp>

#include <arpa/inet.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <set>

namespace stormnode::iso {
namespace {

using roles::in_subnet;
using roles::normalize_mac;

using yaml::value_of;

std::string at_line(const Diagnostic& d) {
    return "line " + std::to_string(d.line);
}

std::optional<std::uint32_t> ipv4(const std::string& text) {
    in_addr a{};
    if (::inet_pton(AF_INET, text.c_str(), &a) != 1) {
        return std::nullopt;
    }
    return ntohl(a.s_addr);
}

// An IPv4 address field, checked to lie in the subnet.
std::string address_field(
    const YAML::Node& map, const char* key, const std::string& subnet, bool required, Diagnostics& diags) {
    const auto text =
        required ? yaml::require_string(map, key, diags) : yaml::optional_string(map, key, diags);
    if (!text) {
        return {};
    }
    if (!ipv4(*text)) {
        diags.error(
            value_of(map, key), std::string("'") + key + "' must be an IPv4 address, not '" + *text + "'");
        return {};
    }
    if (!subnet.empty() && !in_subnet(subnet, *text)) {
        diags.error(
            value_of(map, key),
            std::string("'") + key + "' " + *text + " is outside the provisioning subnet " + subnet);
    }
    return *text;
}

ProvisioningNetwork parse_network(const YAML::Node& doc, Diagnostics& diags) {
    ProvisioningNetwork net;
    const YAML::Node map = value_of(doc, "network");
    if (!map) {
        diags.error(doc, "missing required key 'network' (the provisioning network: subnet, server, range)");
        return net;
    }
    if (!yaml::expect_map(map, "'network'", diags)) {
        return net;
    }
    yaml::reject_unknown_keys(
        map, {"interface", "subnet", "server", "range", "gateway", "dns", "proxy_dhcp"}, diags);
    net.interface = yaml::optional_string(map, "interface", diags).value_or("");
    net.proxy_dhcp = yaml::optional_bool(map, "proxy_dhcp", diags).value_or(false);
    if (const auto subnet = yaml::require_string(map, "subnet", diags)) {
        const auto prefix = roles::cidr_prefix(*subnet);
        const auto base = ipv4(subnet->substr(0, subnet->find('/')));
        if (!prefix || !base || *prefix < 8 || *prefix > 30) {
            diags.error(
                value_of(map, "subnet"),
                "'subnet' must be an IPv4 network with a prefix of /8 to /30, like 10.10.0.0/24, not '" +
                    *subnet + "'");
        } else {
            net.subnet = *subnet;
        }
    }
    net.server = address_field(map, "server", net.subnet, true, diags);
    net.gateway = address_field(map, "gateway", net.subnet, false, diags);
    net.dns = yaml::string_list(map, "dns", diags);
    if (const YAML::Node dns = value_of(map, "dns"); dns && dns.IsSequence()) {
        for (const auto& d : dns) {
            if (d.IsScalar() && !ipv4(d.Scalar())) {
                diags.error(d, "'dns' entries must be IPv4 addresses, not '" + d.Scalar() + "'");
            }
        }
    }
    const YAML::Node range = value_of(map, "range");
    if (!range) {
        if (!net.proxy_dhcp) {
            diags.error(
                map,
                "missing required key 'range' ([first, last] addresses for unknown MACs), or proxy_dhcp: "
                "true");
        }
        return net;
    }
    if (!range.IsSequence() || range.size() != 2 || !range[0].IsScalar() || !range[1].IsScalar()) {
        diags.error(range, "'range' must be [first, last], like [10.10.0.100, 10.10.0.199]");
        return net;
    }
    const auto first = ipv4(range[0].Scalar());
    const auto last = ipv4(range[1].Scalar());
    for (std::size_t i = 0; i < 2; ++i) {
        const auto& text = range[i].Scalar();
        if (!ipv4(text)) {
            diags.error(range[i], "'range' entries must be IPv4 addresses, not '" + text + "'");
        } else if (!net.subnet.empty() && !in_subnet(net.subnet, text)) {
            diags.error(
                range[i], "'range' address " + text + " is outside the provisioning subnet " + net.subnet);
        }
    }
    if (first && last && *first > *last) {
        diags.error(range, "'range' ends before it starts");
    }
    const auto server = ipv4(net.server);
    if (first && last && server && *server >= *first && *server <= *last) {
        diags.error(range, "'range' contains the server address " + net.server);
    }
    net.range_start = range[0].Scalar();
    net.range_end = range[1].Scalar();
    return net;
}

// The fields an answer file has beyond node.yaml's: disk, wipe, root.
struct InstallFields {
    std::optional<std::string> disk;
    std::optional<installer::DiskSelector> selector;
    std::optional<bool> wipe;
    std::optional<std::vector<std::string>> ssh_keys;
};

InstallFields parse_install_fields(const YAML::Node& map, Diagnostics& diags) {
    InstallFields fields;
    if (const YAML::Node disk = value_of(map, "disk")) {
        if (disk.IsScalar()) {
            if (disk.Scalar().rfind("/dev/", 0) != 0 || disk.Scalar().size() <= 5) {
                diags.error(disk, "'disk' must be a device path like /dev/vda, not '" + disk.Scalar() + "'");
            }
            fields.disk = disk.Scalar();
        } else if (disk.IsMap()) {
            yaml::reject_unknown_keys(disk, {"min_size", "max_size", "model"}, diags);
            installer::DiskSelector selector;
            for (const char* key : {"min_size", "max_size"}) {
                const YAML::Node size = value_of(disk, key);
                if (!size) {
                    continue;
                }
                const auto bytes = size.IsScalar() ? installer::parse_size(size.Scalar()) : std::nullopt;
                if (!bytes) {
                    diags.error(
                        size,
                        std::string("'") + key + "' must be a size like 20G, 512MiB or a number of bytes");
                }
                (std::string(key) == "min_size" ? selector.min_size : selector.max_size) = bytes;
            }
            selector.model = yaml::optional_string(disk, "model", diags).value_or("");
            if (!selector.min_size && !selector.max_size && selector.model.empty()) {
                diags.error(disk, "a disk selector needs min_size, max_size or model");
            }
            fields.selector = selector;
        } else {
            diags.error(disk, "'disk' must be a device path or a selector {min_size, max_size, model}");
        }
    }
    fields.wipe = yaml::optional_bool(map, "wipe", diags);
    if (const YAML::Node root = value_of(map, "root"); root && yaml::expect_map(root, "'root'", diags)) {
        yaml::reject_unknown_keys(root, {"ssh_keys"}, diags);
        fields.ssh_keys = yaml::string_list(root, "ssh_keys", diags);
        if (const YAML::Node keys = value_of(root, "ssh_keys"); keys && keys.IsSequence()) {
            for (const auto& key : keys) {
                if (key.IsScalar() && !installer::valid_ssh_public_key(key.Scalar())) {
                    diags.error(
                        key, "not an SSH public key (one line of a .pub file: '<type> <base64> [comment]')");
                }
            }
        }
    }
    return fields;
}

struct Defaults {
    InstallFields install;
    roles::NodeFile node;  // zone, network, features, variables
};

Defaults parse_defaults(const YAML::Node& doc, Diagnostics& diags) {
    Defaults defaults;
    const YAML::Node map = value_of(doc, "defaults");
    if (!map || !yaml::expect_map(map, "'defaults'", diags)) {
        return defaults;
    }
    yaml::reject_unknown_keys(
        map, {"disk", "wipe", "root", "zone", "network", "features", "variables"}, diags);
    defaults.install = parse_install_fields(map, diags);
    defaults.node = roles::parse_node_fields(map, nullptr, diags);
    return defaults;
}

// A node's answers: its own fields, else the defaults.
installer::Answers merge(const InstallFields& own, roles::NodeFile node, const Defaults& defaults) {
    installer::Answers answers;
    const InstallFields& d = defaults.install;
    if (own.disk || own.selector) {
        answers.disk = own.disk.value_or("");
        answers.selector = own.selector;
    } else {
        answers.disk = d.disk.value_or("");
        answers.selector = d.selector;
    }
    answers.wipe = own.wipe ? *own.wipe : d.wipe.value_or(false);
    answers.root_ssh_keys = own.ssh_keys ? *own.ssh_keys : d.ssh_keys.value_or(std::vector<std::string>{});
    if (node.zone.empty()) {
        node.zone = defaults.node.zone;
    }
    if (!node.network) {
        node.network = defaults.node.network;
    }
    if (node.features.empty()) {
        node.features = defaults.node.features;
    }
    for (const auto& [key, value] : defaults.node.variables) {
        node.variables.emplace(key, value);  // the node's own value wins
    }
    answers.node = std::move(node);
    return answers;
}

const std::set<std::string>& node_keys() {
    static const std::set<std::string> keys = [] {
        auto k = roles::node_field_keys();
        k.insert({"address", "disk", "wipe", "root"});
        return k;
    }();
    return keys;
}

// Cluster needs from the catalog, over the whole inventory: minimum members of a role's own cluster
// and the roles it depends_on (here or in external_roles). Reported at the first member's `roles`.
void check_cluster(
    const Inventory& inventory,
    const std::vector<Diagnostic>& roles_marks,
    const roles::Catalog& catalog,
    Diagnostics& diags) {
    std::map<std::string, std::vector<std::size_t>> members;  // role -> node indexes
    for (std::size_t i = 0; i < inventory.nodes.size(); ++i) {
        for (const auto& role : inventory.nodes[i].answers.node.roles) {
            members[role.name].push_back(i);
        }
    }
    std::set<std::string> present(inventory.external_roles.begin(), inventory.external_roles.end());
    for (const auto& [role, nodes] : members) {
        present.insert(role);
    }
    for (const auto& [name, nodes] : members) {
        const roles::Role* role = catalog.find(name);
        if (role == nullptr) {
            continue;  // reported where it was written
        }
        const Diagnostic& first = roles_marks[nodes.front()];
        const auto& needs = role->cluster;
        const auto count = static_cast<int>(nodes.size());
        if (needs.peers == name && count < needs.min_members &&
            std::find(inventory.external_roles.begin(), inventory.external_roles.end(), name) ==
                inventory.external_roles.end()) {
            diags.error_at(
                first,
                "role '" + name + "' has " + std::to_string(count) +
                    " member(s) in this inventory; its cluster needs at least " +
                    std::to_string(needs.min_members) + " (" + role->file + ")");
        }
        for (const auto& needed : needs.depends_on) {
            if (!present.contains(needed)) {
                diags.error_at(
                    first,
                    "role '" + name + "' depends on role '" + needed +
                        "', which no node in this inventory carries (add a node, or list it in "
                        "external_roles)");
            }
        }
    }
}

void parse_nodes(
    const YAML::Node& doc,
    const Defaults& defaults,
    const roles::Catalog& catalog,
    Inventory& inventory,
    Diagnostics& diags) {
    const YAML::Node nodes = value_of(doc, "nodes");
    if (!nodes) {
        diags.error(doc, "missing required key 'nodes' (MAC: node settings; {} for none)");
        return;
    }
    if (!yaml::expect_map(nodes, "'nodes' (MAC: node settings)", diags)) {
        return;
    }
    std::map<std::string, Diagnostic> macs;
    std::map<std::string, Diagnostic> hostnames;
    std::map<std::string, Diagnostic> addresses;
    std::vector<Diagnostic> roles_marks;
    const auto server = inventory.network.server;
    for (const auto& kv : nodes) {
        const std::string key = kv.first.IsScalar() ? kv.first.Scalar() : std::string();
        const Diagnostic key_at = diags.position(kv.first);
        if (!roles::valid_mac(key)) {
            diags.error(
                kv.first, "node keys must be MAC addresses like 52:54:00:12:34:56, not '" + key + "'");
            continue;
        }
        const std::string mac = normalize_mac(key);
        if (const auto [it, inserted] = macs.emplace(mac, key_at); !inserted) {
            diags.error(kv.first, "duplicate MAC " + mac + " (first at " + at_line(it->second) + ")");
            continue;
        }
        const YAML::Node map = kv.second;
        if (!yaml::expect_map(map, "node " + mac, diags)) {
            continue;
        }
        yaml::reject_unknown_keys(map, node_keys(), diags);
        InventoryNode node;
        node.mac = mac;
        node.where = key_at;
        auto fields = roles::parse_node_fields(map, &catalog, diags);
        const auto install = parse_install_fields(map, diags);
        if (const YAML::Node hostname = value_of(map, "hostname"); !hostname) {
            diags.error(kv.first, "node " + mac + " has no 'hostname'");
        } else if (!fields.hostname.empty()) {
            if (const auto [it, inserted] = hostnames.emplace(fields.hostname, diags.position(hostname));
                !inserted) {
                diags.error(
                    hostname,
                    "duplicate hostname '" + fields.hostname + "' (first at " + at_line(it->second) + ")");
            }
        }
        if (const YAML::Node address = value_of(map, "address")) {
            node.address = address_field(map, "address", inventory.network.subnet, false, diags);
            if (!node.address.empty() && node.address == server) {
                diags.error(address, "'address' " + node.address + " is the server's own address");
            } else if (!node.address.empty()) {
                if (const auto [it, inserted] = addresses.emplace(node.address, diags.position(address));
                    !inserted) {
                    diags.error(
                        address,
                        "duplicate address " + node.address + " (first at " + at_line(it->second) + ")");
                }
            }
        }
        if (!install.disk && !install.selector && !defaults.install.disk && !defaults.install.selector) {
            diags.error(kv.first, "node " + mac + " has no 'disk' (and 'defaults' gives none)");
        }
        const YAML::Node roles = value_of(map, "roles");
        roles_marks.push_back(diags.position(roles ? roles : kv.first));
        node.answers = merge(install, std::move(fields), defaults);
        node.answers.where = key_at;
        inventory.nodes.push_back(std::move(node));
    }
    check_cluster(inventory, roles_marks, catalog, diags);
}

}  // namespace

const InventoryNode* Inventory::find(const std::string& mac) const {
    const auto wanted = normalize_mac(mac);
    const auto it =
        std::find_if(nodes.begin(), nodes.end(), [&](const InventoryNode& n) { return n.mac == wanted; });
    return it == nodes.end() ? nullptr : &*it;
}

std::optional<Inventory> parse_inventory(
    const std::string& text,
    const std::string& file_name,
    const roles::Catalog& catalog,
    Diagnostics& diags) {
    Diagnostics local(file_name);
    Inventory inventory;
    const auto doc = load_yaml_string(text, local);
    if (doc && yaml::expect_map(*doc, "the inventory", local)) {
        yaml::reject_unknown_keys(
            *doc, {"network", "defaults", "discovered", "external_roles", "nodes"}, local);
        inventory.network = parse_network(*doc, local);
        if (const auto policy = yaml::optional_string(*doc, "discovered", local)) {
            if (*policy == "live") {
                inventory.discovered = DiscoveredPolicy::live;
            } else if (*policy == "ignore") {
                inventory.discovered = DiscoveredPolicy::ignore;
            } else {
                local.error(
                    value_of(*doc, "discovered"),
                    "'discovered' must be live (unknown MACs boot the live system) or ignore, not '" +
                        *policy + "'");
            }
        }
        inventory.external_roles = yaml::string_list(*doc, "external_roles", local);
        if (const YAML::Node ext = value_of(*doc, "external_roles"); ext && ext.IsSequence()) {
            for (const auto& item : ext) {
                const roles::Role* role = item.IsScalar() ? catalog.find(item.Scalar()) : nullptr;
                if (item.IsScalar() && (role == nullptr || !role->placeable())) {
                    local.error(
                        item,
                        "unknown role '" + item.Scalar() +
                            "' (roles: " + join(catalog.placeable_names(), ", ") + ")");
                }
            }
        }
        const Defaults defaults = parse_defaults(*doc, local);
        parse_nodes(*doc, defaults, catalog, inventory, local);
    }
    diags.append(local);
    if (!local.ok()) {
        return std::nullopt;
    }
    return inventory;
}

std::optional<Inventory> load_inventory(
    const std::filesystem::path& path, const roles::Catalog& catalog, Diagnostics& diags) {
    const auto text = read_text_file(path, diags);
    if (!text) {
        return std::nullopt;
    }
    return parse_inventory(*text, path.string(), catalog, diags);
}

std::string render_answers(const InventoryNode& node) {
    const auto& a = node.answers;
    YAML::Emitter out;
    out << YAML::Comment("stormnode answer file for " + node.mac + " (from the rack inventory)");
    out << YAML::BeginMap;
    out << YAML::Key << "disk" << YAML::Value;
    if (a.selector) {
        out << YAML::Flow << YAML::BeginMap;
        if (a.selector->min_size) {
            out << YAML::Key << "min_size" << YAML::Value << *a.selector->min_size;
        }
        if (a.selector->max_size) {
            out << YAML::Key << "max_size" << YAML::Value << *a.selector->max_size;
        }
        if (!a.selector->model.empty()) {
            out << YAML::Key << "model" << YAML::Value << YAML::DoubleQuoted << a.selector->model;
        }
        out << YAML::EndMap;
    } else {
        out << a.disk;
    }
    out << YAML::Key << "wipe" << YAML::Value << a.wipe;
    roles::emit_node_fields(out, a.node);  // node.yaml's own writer; the installer's keys go around them
    if (!a.root_ssh_keys.empty()) {
        out << YAML::Key << "root" << YAML::Value << YAML::BeginMap << YAML::Key << "ssh_keys" << YAML::Value
            << a.root_ssh_keys << YAML::EndMap;
    }
    out << YAML::EndMap;
    return std::string(out.c_str()) + "\n";
}

}  // namespace stormnode::iso
