// `stormctl cluster ...`: cluster.yaml made and checked by an operator. The library checks; this file prints.
#include <stormnode/catalog/catalog.hpp>
#include <stormnode/cluster/cli.hpp>
#include <stormnode/cluster/cluster.hpp>
#include <stormnode/common/error.hpp>

#include <CLI/CLI.hpp>

#include <iostream>
#include <memory>
#include <set>
#include <sstream>

namespace stormnode::roles {
namespace {

struct ClusterOptions {
    std::string catalog;  // --catalog; empty: default_catalog_dir()
    std::string validate_path;
    std::string name;
    std::vector<std::string> members;  // HOSTNAME,ADDRESS,ZONE,ROLE[+ROLE...]
    std::vector<std::string> vips;     // NAME=ADDRESS[@ROUTER_ID]
    std::string output;
};

Catalog load_catalog_for(const ClusterOptions& options) {
    return load_valid_catalog(
        options.catalog.empty() ? default_catalog_dir() : std::filesystem::path(options.catalog));
}

std::vector<std::string> split(const std::string& text, char separator) {
    std::vector<std::string> parts;
    std::string part;
    std::istringstream in(text);
    while (std::getline(in, part, separator)) {
        parts.push_back(part);
    }
    if (!text.empty() && text.back() == separator) {
        parts.emplace_back();
    }
    return parts;
}

ClusterMember parse_member_option(const std::string& text) {
    const auto fields = split(text, ',');
    if (fields.size() != 4 || fields[0].empty() || fields[1].empty() || fields[3].empty()) {
        throw Error(
            Errc::invalid_input,
            "--member '" + text + "': expected HOSTNAME,ADDRESS,ZONE,ROLE[+ROLE...] (ZONE may be empty)");
    }
    std::vector<RoleSpec> roles;
    for (const auto& role : split(fields[3], '+')) {
        try {
            roles.push_back(parse_role_spec(role));
        } catch (const Error& e) {
            throw Error(Errc::invalid_input, "--member '" + text + "': " + e.what());
        }
    }
    return ClusterMember{fields[0], fields[1], fields[2], std::move(roles)};
}

Vip parse_vip_option(const std::string& text) {
    const auto eq = text.find('=');
    if (eq == std::string::npos || eq == 0) {
        throw Error(Errc::invalid_input, "--vip '" + text + "': expected NAME=ADDRESS[@VRRP_ROUTER_ID]");
    }
    Vip vip;
    vip.name = text.substr(0, eq);
    vip.address = text.substr(eq + 1);
    if (const auto at = vip.address.find('@'); at != std::string::npos) {
        const auto id = vip.address.substr(at + 1);
        vip.address.resize(at);
        try {
            std::size_t used = 0;
            vip.vrrp_router_id = std::stoi(id, &used);
            if (used != id.size()) {
                throw std::invalid_argument(id);
            }
        } catch (const std::exception&) {
            throw Error(
                Errc::invalid_input, "--vip '" + text + "': VRRP router id '" + id + "' is not a number");
        }
    }
    return vip;
}

int validate(const ClusterOptions& options) {
    const Catalog catalog = load_catalog_for(options);
    Diagnostics diags(options.validate_path);
    const auto cluster = read_cluster_file(options.validate_path, &catalog, diags);
    if (cluster) {
        check_cluster_secrets(*cluster, catalog, diags);
    }
    if (!diags.ok()) {
        for (const auto& item : diags.items()) {
            std::cerr << (item.line > 0 ? item.to_string() : item.file + ": " + item.message) << "\n";
        }
        std::cerr << diags.items().size() << (diags.items().size() == 1 ? " problem" : " problems")
                  << " found\n";
        return 2;
    }
    std::size_t zones = 0;
    std::set<std::string> seen;
    for (const auto& member : cluster->members) {
        zones += !member.zone.empty() && seen.insert(member.zone).second ? 1 : 0;
    }
    std::cout << "valid: cluster " << cluster->name << ", " << cluster->members.size() << " members";
    if (zones > 0) {
        std::cout << " in " << zones << (zones == 1 ? " zone" : " zones");
    }
    std::cout << ", " << cluster->vips.size() << (cluster->vips.size() == 1 ? " VIP" : " VIPs") << "\n";
    return 0;
}

int init(const ClusterOptions& options) {
    const Catalog catalog = load_catalog_for(options);
    Cluster cluster;
    cluster.name = options.name;
    for (const auto& text : options.members) {
        cluster.members.push_back(parse_member_option(text));
    }
    for (const auto& text : options.vips) {
        cluster.vips.push_back(parse_vip_option(text));
    }
    const std::filesystem::path output(options.output);
    const auto update = write_new_cluster(output, cluster, catalog);
    const auto written = load_cluster(output, &catalog);
    std::cout << "wrote " << output.string() << "; secrets " << written.secrets_path().string();
    if (update.created) {
        std::cout << " (generated, 0600)\n";
    } else if (update.added.empty()) {
        std::cout << " (kept: it already exists)\n";
    } else {
        std::string added;
        for (const auto& name : update.added) {
            added += (added.empty() ? "" : ", ") + name;
        }
        std::cout << " (kept, added what it lacked: " << added << "; 0600)\n";
    }
    return 0;
}

}  // namespace

void add_cluster_commands(CLI::App& app, int& exit_code) {
    auto options = std::make_shared<ClusterOptions>();
    CLI::App* cluster = app.add_subcommand("cluster", "cluster.yaml: the nodes a cluster is made of");
    cluster->require_subcommand(1);
    cluster->add_option(
        "--catalog",
        options->catalog,
        "Catalog directory (default: $STORMNODE_CATALOG_DIR, else " + default_catalog_dir().string() + ")");

    CLI::App* check = cluster->add_subcommand(
        "validate",
        "Check a cluster.yaml and its secrets file; prints every problem as file:line:col: message");
    check->fallthrough();
    check->add_option("file", options->validate_path, "cluster.yaml")->required();
    check->callback([options, &exit_code] { exit_code = validate(*options); });

    CLI::App* make = cluster->add_subcommand(
        "init", "Write a new cluster.yaml and generate its shared secrets once (a separate 0600 file)");
    make->fallthrough();
    make->add_option("--name", options->name, "Cluster name (Galera group, corosync cluster_name)")
        ->required();
    make->add_option("--member", options->members, "HOSTNAME,ADDRESS,ZONE,ROLE[+ROLE...] (ZONE may be empty)")
        ->required();
    make->add_option("--vip", options->vips, "NAME=ADDRESS[@VRRP_ROUTER_ID]");
    make->add_option("-o,--output", options->output, "cluster.yaml to write")->required();
    make->callback([options, &exit_code] { exit_code = init(*options); });
}

}  // namespace stormnode::roles
