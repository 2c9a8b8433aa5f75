// Where this node's roles come from, first that answers: the kernel command line
// (stormnode.role=compute[,storage]), node.yaml written by the installer, the inventory named by
// stormnode.inventory=<URL> (matched by this node's MAC addresses), else nobody: the node is
// "discovered" and waits for the console.
#pragma once

#include <stormnode/catalog/catalog.hpp>
#include <stormnode/catalog/node_file.hpp>

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace stormnode::firstboot {

enum class RoleSource { kernel_cmdline, node_file, inventory, none };
std::string_view to_string(RoleSource source);  // "kernel-cmdline", "node.yaml", "inventory", "none"

struct KernelArgs {
    std::optional<std::string> roles;  // the value of stormnode.role= as given
    std::optional<std::string> inventory;
};

// stormnode.role= and stormnode.inventory= from the kernel command line, read with common's parser
// (systemd's rules: quotes, the first '=' splits); the last of a repeated argument wins.
KernelArgs parse_role_args(std::string_view cmdline);

// "db:galera,quorum" -> roles db:galera and quorum (the node's other settings stay), checked against the
// catalog as node.yaml's are. Throws Error(invalid_input) naming the argument.
void apply_role_arg(const std::string& value, const roles::Catalog& catalog, roles::NodeFile& node);

// The inventory: a YAML map of MAC -> node fields (hostname, roles, variants, zone, network, ...).
// Every entry is checked (the file is the rack's, not just this node's); diagnostics name source.
std::optional<std::map<std::string, roles::NodeFile>> parse_inventory(
    const std::string& text, const std::string& source, const roles::Catalog& catalog, Diagnostics& diags);

// Fetches an inventory; the real one is CurlFetcher (curl_fetcher.hpp), tests use their own.
class Fetcher {
public:
    virtual ~Fetcher() = default;
    // The body, or Error(io) naming the URL and why.
    virtual std::string fetch(const std::string& url) = 0;
};

struct SourceInputs {
    std::string cmdline;                       // the kernel command line
    std::optional<roles::NodeFile> node_file;  // node.yaml as found on the node
    std::vector<std::string> macs;             // this node's MAC addresses, lower case
};

struct Assignment {
    RoleSource source = RoleSource::none;
    std::string origin;            // "kernel command line", the node.yaml path, the inventory URL and MAC
    roles::NodeFile node;          // node.yaml's settings with the chosen source's roles (and fields) on top
    bool write_node_file = false;  // node.yaml must be (re)written: it did not come from there
};

// The chosen source. Throws Error(invalid_input) for a bad stormnode.role= or inventory and
// Error(io) when the inventory cannot be fetched: either is a failure to retry, not "no role".
Assignment choose_role_source(const SourceInputs& inputs, const roles::Catalog& catalog, Fetcher& fetcher);

}  // namespace stormnode::firstboot
