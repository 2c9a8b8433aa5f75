#include "stormnode/firstboot/role_source.hpp"

#include <stormnode/common/error.hpp>
#include <stormnode/common/kernel_cmdline.hpp>

#include <algorithm>
#include <cctype>

namespace stormnode::firstboot {
namespace {

// The inventory entry's fields over node.yaml's: what the rack's inventory says wins, what it
// leaves out stays.
void overlay(roles::NodeFile& base, const roles::NodeFile& entry) {
    base.roles = entry.roles;
    if (!entry.hostname.empty()) {
        base.hostname = entry.hostname;
    }
    if (!entry.zone.empty()) {
        base.zone = entry.zone;
    }
    if (entry.network) {
        base.network = entry.network;
    }
    if (!entry.features.empty()) {
        base.features = entry.features;
    }
    for (const auto& [key, value] : entry.variables) {
        base.variables[key] = value;
    }
}

}  // namespace

std::string_view to_string(RoleSource source) {
    switch (source) {
        case RoleSource::kernel_cmdline:
            return "kernel-cmdline";
        case RoleSource::node_file:
            return "node.yaml";
        case RoleSource::inventory:
            return "inventory";
        case RoleSource::none:
            break;
    }
    return "none";
}

KernelArgs parse_role_args(std::string_view cmdline) {
    KernelArgs args;
    // The last one with a value wins; an empty value takes back an earlier one ("no role").
    const auto last_value = [](std::optional<std::string>& into, const KernelArg& arg) {
        if (arg.value) {
            into = arg.value->empty() ? std::nullopt : arg.value;
        }
    };
    for (const KernelArg& arg : parse_kernel_cmdline(cmdline)) {
        if (kernel_arg_key_equal(arg.key, "stormnode.role")) {
            last_value(args.roles, arg);
        } else if (kernel_arg_key_equal(arg.key, "stormnode.inventory")) {
            last_value(args.inventory, arg);
        }
    }
    return args;
}

void apply_role_arg(const std::string& value, const roles::Catalog& catalog, roles::NodeFile& node) {
    // Checked with the same code as node.yaml's roles; problems of the combination name the catalog line.
    const std::string arg = "stormnode.role=" + value;
    std::vector<roles::RoleSpec> specs;
    try {
        specs = roles::parse_role_list(value);
    } catch (const Error& e) {
        throw Error(Errc::invalid_input, "kernel argument " + arg + ": " + e.what());
    }
    Diagnostics diags(arg);
    const roles::RoleListPlaces places{{arg, 0, 0, {}}, {}, {}, {}};
    roles::validate_role_specs(catalog, specs, diags, &places);
    if (!diags.ok()) {
        std::string problems;
        for (const auto& d : diags.items()) {
            problems += problems.empty() ? d.message : "; " + d.message;
        }
        throw Error(Errc::invalid_input, "kernel argument " + arg + ": " + problems);
    }
    node.roles = std::move(specs);
}

std::optional<std::map<std::string, roles::NodeFile>> parse_inventory(
    const std::string& text, const std::string& source, const roles::Catalog& catalog, Diagnostics& diags) {
    Diagnostics local(source);
    std::map<std::string, roles::NodeFile> entries;
    const auto doc = load_yaml_string(text, local);
    if (doc && yaml::expect_map(*doc, "the inventory (MAC: node settings)", local)) {
        for (const auto& kv : *doc) {
            const auto& mac = kv.first.Scalar();
            if (!roles::valid_mac(mac)) {
                local.error(
                    kv.first,
                    "inventory keys must be MAC addresses like 52:54:00:12:34:56, not '" + mac + "'");
                continue;
            }
            if (!yaml::expect_map(kv.second, "the entry for " + mac, local)) {
                continue;
            }
            yaml::reject_unknown_keys(kv.second, roles::node_field_keys(), local);
            roles::NodeFile entry = roles::parse_node_fields(kv.second, &catalog, local);
            if (!entries.emplace(roles::normalize_mac(mac), std::move(entry)).second) {
                local.error(kv.first, "MAC " + mac + " is listed twice");
            }
        }
    }
    diags.append(local);
    if (!local.ok()) {
        return std::nullopt;
    }
    return entries;
}

Assignment choose_role_source(const SourceInputs& inputs, const roles::Catalog& catalog, Fetcher& fetcher) {
    const KernelArgs args = parse_role_args(inputs.cmdline);
    Assignment result;
    result.node = inputs.node_file.value_or(roles::NodeFile{});

    if (args.roles) {
        apply_role_arg(*args.roles, catalog, result.node);
        result.source = RoleSource::kernel_cmdline;
        result.origin = "kernel command line (stormnode.role=" + *args.roles + ")";
        result.write_node_file = !inputs.node_file || inputs.node_file->roles != result.node.roles;
        return result;
    }
    if (inputs.node_file && !inputs.node_file->roles.empty()) {
        result.source = RoleSource::node_file;
        result.origin = std::string(roles::kNodeFilePath);
        return result;
    }
    if (args.inventory) {
        const std::string& url = *args.inventory;
        std::string body;
        try {
            body = fetcher.fetch(url);
        } catch (const Error&) {
            std::throw_with_nested(
                Error(Errc::io, "fetching the inventory (stormnode.inventory=" + url + ")"));
        }
        Diagnostics diags(url);
        const auto inventory = parse_inventory(body, url, catalog, diags);
        throw_if_errors(diags, "the inventory " + url);
        for (const auto& mac : inputs.macs) {
            const auto it = inventory->find(roles::normalize_mac(mac));
            if (it == inventory->end()) {
                continue;
            }
            overlay(result.node, it->second);
            if (result.node.roles.empty()) {
                break;  // listed, but without a role yet: the console decides
            }
            result.source = RoleSource::inventory;
            result.origin = url + " (entry " + it->first + ")";
            result.write_node_file = true;
            return result;
        }
        result.origin = "no role for this node's MACs in " + url;
        return result;
    }
    return result;
}

}  // namespace stormnode::firstboot
