#include "stormnode/catalog/node_file.hpp"

#include <stormnode/common/error.hpp>
#include <stormnode/common/temp_dir.hpp>

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cstdint>
#include <utility>

namespace stormnode::roles {
namespace {

// The key node of `key` in map, for diagnostics about the key itself.
std::optional<YAML::Node> key_of(const YAML::Node& map, const std::string& key) {
    for (const auto& kv : map) {
        if (kv.first.IsScalar() && kv.first.Scalar() == key) {
            return kv.first;
        }
    }
    return std::nullopt;
}

using yaml::value_of;

bool valid_interface_name(std::string_view name) {
    // The kernel's rule (dev_valid_name): 1..15 bytes, no '/', ':' or white space, not "." or "..".
    if (name.empty() || name.size() > 15 || name == "." || name == "..") {
        return false;
    }
    return std::none_of(name.begin(), name.end(), [](char c) {
        return c == '/' || c == ':' || std::isspace(static_cast<unsigned char>(c)) != 0;
    });
}

bool valid_zone(std::string_view zone) {
    return !zone.empty() && std::all_of(zone.begin(), zone.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '_' || c == '.';
    });
}

struct IpBytes {
    int family = 0;
    std::array<unsigned char, 16> bytes{};
};

std::optional<IpBytes> parse_ip(std::string_view text) {
    const std::string s(text);
    IpBytes ip;
    if (::inet_pton(AF_INET, s.c_str(), ip.bytes.data()) == 1) {
        ip.family = AF_INET;
        return ip;
    }
    if (::inet_pton(AF_INET6, s.c_str(), ip.bytes.data()) == 1) {
        ip.family = AF_INET6;
        return ip;
    }
    return std::nullopt;
}

// `roles` and `variants` make the node's role specs, each checked where it was written: the list's
// structure here, the roles themselves against the catalog (validate_role_specs).
void parse_roles(const YAML::Node& map, const Catalog* catalog, NodeFile& node, Diagnostics& diags) {
    Diagnostics local(diags.file());
    RoleListPlaces places;
    const YAML::Node list = value_of(map, "roles");
    if (list) {
        places.list = local.position(list);
        if (!list.IsSequence()) {
            local.error(list, "'roles' must be a list of role names, like [compute]");
        } else {
            for (const auto& item : list) {
                if (!item.IsScalar() || item.Scalar().empty()) {
                    local.error(item, "items of 'roles' must be role names");
                    continue;
                }
                if (item.Scalar().find(':') != std::string::npos) {
                    local.error(
                        item,
                        "items of 'roles' are role names: give the variant of '" + item.Scalar() +
                            "' under 'variants' ({role: variant})");
                    continue;
                }
                node.roles.push_back({item.Scalar(), {}});
                places.names.push_back(local.position(item));
            }
        }
    }
    places.variants = places.names;
    const YAML::Node variants = value_of(map, "variants");
    if (variants && yaml::expect_map(variants, "'variants' (role: variant)", local)) {
        for (const auto& kv : variants) {
            const auto& name = kv.first.Scalar();
            if (!kv.second.IsScalar()) {
                local.error(kv.second, "the variant of role '" + name + "' must be a name");
                continue;
            }
            const auto entry = std::find_if(node.roles.begin(), node.roles.end(), [&](const RoleSpec& spec) {
                return spec.name == name;
            });
            if (entry == node.roles.end()) {
                local.error(kv.first, "variant given for role '" + name + "', which is not in 'roles'");
                continue;
            }
            entry->variant = kv.second.Scalar();
            places.variants[static_cast<std::size_t>(entry - node.roles.begin())] = local.position(kv.second);
        }
    }

    if (catalog != nullptr) {
        validate_role_specs(*catalog, node.roles, local, &places);
    } else {
        // Without a catalog only what the file itself says: each role once.
        std::set<std::string> seen;
        for (std::size_t i = 0; i < node.roles.size(); ++i) {
            if (!seen.insert(node.roles[i].name).second) {
                local.error_at(places.names[i], "role '" + node.roles[i].name + "' is listed twice");
            }
        }
    }
    // In the order they were written: the list's problems before the variants'.
    auto items = local.items();
    std::stable_sort(items.begin(), items.end(), [](const Diagnostic& a, const Diagnostic& b) {
        return std::pair{a.line, a.column} < std::pair{b.line, b.column};
    });
    for (auto& item : items) {
        diags.error_at(item, std::move(item.message));
    }
}

}  // namespace

const std::set<std::string>& node_field_keys() {
    static const std::set<std::string> keys{
        "roles", "variants", "hostname", "zone", "network", "features", "variables"};
    return keys;
}

bool valid_hostname(std::string_view name) {
    if (name.empty() || name.size() > 253) {
        return false;
    }
    std::size_t start = 0;
    while (start <= name.size()) {
        const std::size_t dot = std::min(name.find('.', start), name.size());
        const auto label = name.substr(start, dot - start);
        if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') {
            return false;
        }
        const bool chars_ok = std::all_of(label.begin(), label.end(), [](char c) {
            return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-';
        });
        if (!chars_ok) {
            return false;
        }
        start = dot + 1;
    }
    return true;
}

bool valid_mac(std::string_view mac) {
    if (mac.size() != 17) {
        return false;
    }
    bool all_zero = true;
    for (std::size_t i = 0; i < mac.size(); ++i) {
        const char c = mac[i];
        if (i % 3 == 2) {
            if (c != ':') {
                return false;
            }
            continue;
        }
        if (std::isxdigit(static_cast<unsigned char>(c)) == 0) {
            return false;
        }
        all_zero = all_zero && c == '0';
    }
    return !all_zero;
}

std::string normalize_mac(std::string_view mac) {
    std::string text(mac);
    std::transform(text.begin(), text.end(), text.begin(), [](unsigned char c) {
        return static_cast<char>(std::tolower(c));
    });
    return text;
}

bool valid_ip(std::string_view address) {
    return parse_ip(address).has_value();
}

std::optional<int> cidr_prefix(std::string_view cidr) {
    const auto slash = cidr.find('/');
    if (slash == std::string_view::npos) {
        return std::nullopt;
    }
    const auto ip = parse_ip(cidr.substr(0, slash));
    const auto digits = cidr.substr(slash + 1);
    int prefix = -1;
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), prefix);
    if (!ip || digits.empty() || ec != std::errc() || end != digits.data() + digits.size()) {
        return std::nullopt;
    }
    const int max = ip->family == AF_INET ? 32 : 128;
    if (prefix < 0 || prefix > max) {
        return std::nullopt;
    }
    return prefix;
}

bool in_subnet(std::string_view cidr, std::string_view ip) {
    const auto prefix = cidr_prefix(cidr);
    if (!prefix) {
        return false;
    }
    const auto net = parse_ip(cidr.substr(0, cidr.find('/')));
    const auto host = parse_ip(ip);
    if (!net || !host || net->family != host->family) {
        return false;
    }
    const int full = *prefix / 8;
    const int rest = *prefix % 8;
    for (int i = 0; i < full; ++i) {
        if (net->bytes[i] != host->bytes[i]) {
            return false;
        }
    }
    if (rest == 0) {
        return true;
    }
    const auto mask = static_cast<unsigned char>(0xFFU << (8 - rest));
    return (net->bytes[full] & mask) == (host->bytes[full] & mask);
}

std::optional<Network> parse_network(const YAML::Node& node, Diagnostics& diags) {
    if (!yaml::expect_map(node, "'network'", diags)) {
        return std::nullopt;
    }
    const std::size_t before = diags.items().size();
    yaml::reject_unknown_keys(node, {"interface", "mac", "mode", "address", "gateway", "dns"}, diags);
    Network net;
    net.interface = yaml::optional_string(node, "interface", diags).value_or("");
    if (const YAML::Node v = value_of(node, "interface");
        v && v.IsScalar() && !valid_interface_name(net.interface)) {
        diags.error(v, "'interface' must be a network interface name like eno1, not '" + net.interface + "'");
    }
    if (const auto mac = yaml::optional_string(node, "mac", diags)) {
        if (!valid_mac(*mac)) {
            diags.error(
                value_of(node, "mac"),
                "'mac' must be six hex pairs like 52:54:00:12:34:56, not '" + *mac + "'");
        }
        net.mac = normalize_mac(*mac);
        if (!net.interface.empty()) {
            diags.error(*key_of(node, "mac"), "give 'interface' or 'mac' to choose the NIC, not both");
        }
    }
    const auto mode = yaml::optional_string(node, "mode", diags).value_or("dhcp");
    if (mode == "static") {
        net.mode = AddressMode::fixed;
    } else if (mode != "dhcp") {
        diags.error(value_of(node, "mode"), "'mode' must be dhcp or static, not '" + mode + "'");
    }
    net.address = yaml::optional_string(node, "address", diags).value_or("");
    net.gateway = yaml::optional_string(node, "gateway", diags).value_or("");
    net.dns = yaml::string_list(node, "dns", diags);

    if (net.mode == AddressMode::dhcp) {
        for (const char* key : {"address", "gateway", "dns"}) {
            if (const auto k = key_of(node, key)) {
                diags.error(
                    *k, std::string("'") + key + "' is only for mode: static (this network uses DHCP)");
            }
        }
    } else {
        if (net.interface.empty() && net.mac.empty()) {
            diags.error(node, "static addressing needs 'interface' or 'mac' to say which NIC it is for");
        }
        if (!value_of(node, "address")) {
            diags.error(node, "static addressing needs 'address' (CIDR, like 10.0.0.5/24)");
        } else if (!cidr_prefix(net.address)) {
            diags.error(
                value_of(node, "address"),
                "'address' must be an IP address with a prefix length, like 10.0.0.5/24, not '" +
                    net.address + "'");
        }
        if (const YAML::Node g = value_of(node, "gateway"); g && g.IsScalar()) {
            if (!valid_ip(net.gateway)) {
                diags.error(g, "'gateway' must be an IP address, not '" + net.gateway + "'");
            } else if (cidr_prefix(net.address) && !in_subnet(net.address, net.gateway)) {
                diags.error(g, "gateway " + net.gateway + " is not in the subnet of address " + net.address);
            }
        }
        if (const YAML::Node d = value_of(node, "dns"); d && d.IsSequence()) {
            for (const auto& server : d) {
                if (server.IsScalar() && !valid_ip(server.Scalar())) {
                    diags.error(server, "DNS server must be an IP address, not '" + server.Scalar() + "'");
                }
            }
        }
    }
    if (diags.items().size() != before) {
        return std::nullopt;
    }
    return net;
}

NodeFile parse_node_fields(const YAML::Node& map, const Catalog* catalog, Diagnostics& diags) {
    NodeFile node;
    parse_roles(map, catalog, node, diags);
    if (const auto hostname = yaml::optional_string(map, "hostname", diags)) {
        node.hostname = *hostname;
        if (!valid_hostname(*hostname)) {
            diags.error(
                value_of(map, "hostname"),
                "'hostname' must be letters, digits and '-' in dot-separated labels of at most 63 (RFC "
                "1123), "
                "not '" +
                    *hostname + "'");
        }
    }
    if (const auto zone = yaml::optional_string(map, "zone", diags)) {
        node.zone = *zone;
        if (!valid_zone(*zone)) {
            diags.error(
                value_of(map, "zone"),
                "'zone' must be letters, digits, '-', '_' or '.', not '" + *zone + "'");
        }
    }
    if (const YAML::Node net = value_of(map, "network")) {
        node.network = parse_network(net, diags);
    }
    node.features = yaml::string_list(map, "features", diags);
    if (const YAML::Node vars = value_of(map, "variables");
        vars && yaml::expect_map(vars, "'variables'", diags)) {
        for (const auto& kv : vars) {
            if (!kv.second.IsScalar()) {
                diags.error(kv.second, "variable '" + kv.first.Scalar() + "' must be a scalar");
                continue;
            }
            node.variables[kv.first.Scalar()] = kv.second.Scalar();
        }
    }
    return node;
}

std::optional<NodeFile> parse_node_document(
    const YAML::Node& doc, const Catalog* catalog, Diagnostics& diags) {
    Diagnostics local(diags.file());
    std::optional<NodeFile> node;
    if (yaml::expect_map(doc, "node.yaml", local)) {
        yaml::reject_unknown_keys(doc, node_field_keys(), local);
        if (!value_of(doc, "roles")) {
            local.error(doc, "missing required key 'roles' (an empty list is fine: [])");
        }
        node = parse_node_fields(doc, catalog, local);
    }
    diags.append(local);
    if (!local.ok()) {
        return std::nullopt;
    }
    return node;
}

std::optional<NodeFile> parse_node_file(
    const std::string& text, const std::string& file_name, const Catalog* catalog, Diagnostics& diags) {
    Diagnostics local(file_name);
    const auto doc = load_yaml_string(text, local);
    auto node = doc ? parse_node_document(*doc, catalog, local) : std::nullopt;
    diags.append(local);
    return node;
}

std::optional<NodeFile> read_node_file(
    const std::filesystem::path& path, const Catalog* catalog, Diagnostics& diags) {
    auto text = read_text_file(path, diags);
    if (!text) {
        return std::nullopt;
    }
    return parse_node_file(*text, path.string(), catalog, diags);
}

void emit_node_fields(YAML::Emitter& out, const NodeFile& node) {
    std::vector<std::string> names;
    std::map<std::string, std::string> variants;
    for (const auto& spec : node.roles) {
        names.push_back(spec.name);
        if (!spec.variant.empty()) {
            variants[spec.name] = spec.variant;
        }
    }
    out << YAML::Key << "roles" << YAML::Value << YAML::Flow << names;
    if (!variants.empty()) {
        out << YAML::Key << "variants" << YAML::Value << YAML::Flow << variants;
    }
    if (!node.hostname.empty()) {
        out << YAML::Key << "hostname" << YAML::Value << node.hostname;
    }
    if (!node.zone.empty()) {
        out << YAML::Key << "zone" << YAML::Value << node.zone;
    }
    if (node.network) {
        const auto& net = *node.network;
        out << YAML::Key << "network" << YAML::Value << YAML::BeginMap;
        if (!net.interface.empty()) {
            out << YAML::Key << "interface" << YAML::Value << net.interface;
        }
        if (!net.mac.empty()) {
            out << YAML::Key << "mac" << YAML::Value << YAML::DoubleQuoted << net.mac;
        }
        out << YAML::Key << "mode" << YAML::Value << (net.mode == AddressMode::fixed ? "static" : "dhcp");
        if (!net.address.empty()) {
            out << YAML::Key << "address" << YAML::Value << net.address;
        }
        if (!net.gateway.empty()) {
            out << YAML::Key << "gateway" << YAML::Value << net.gateway;
        }
        if (!net.dns.empty()) {
            out << YAML::Key << "dns" << YAML::Value << YAML::Flow << net.dns;
        }
        out << YAML::EndMap;
    }
    if (!node.features.empty()) {
        out << YAML::Key << "features" << YAML::Value << YAML::Flow << node.features;
    }
    if (!node.variables.empty()) {
        out << YAML::Key << "variables" << YAML::Value << node.variables;
    }
}

std::string render_node_file(const NodeFile& node) {
    YAML::Emitter out;
    out << YAML::BeginMap;
    emit_node_fields(out, node);
    out << YAML::EndMap;
    return "# This node's roles and settings (storm-firstboot, storm-roled). Written by the installer or\n"
           "# storm-firstboot; edit with care.\n" +
           std::string(out.c_str()) + "\n";
}

void write_node_file(const std::filesystem::path& path, const NodeFile& node) {
    std::filesystem::create_directories(path.parent_path());
    write_file_atomic(path, render_node_file(node), 0644);
}

}  // namespace stormnode::roles
