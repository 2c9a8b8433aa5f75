// `stormctl role status|set|restart`: this node's roles as storm-roled reports them over D-Bus
// (org.stormclouds.Node1 on the system bus). NodeClient talks; this file prints.
#include <stormnode/common/error.hpp>
#include <stormnode/common/log.hpp>
#include <stormnode/common/strings.hpp>
#include <stormnode/node_client/message_ids.hpp>
#include <stormnode/node_client/node_client.hpp>

#include <CLI/CLI.hpp>

#include <algorithm>
#include <iomanip>
#include <iostream>
#include <memory>
#include <sstream>
#include <string_view>

namespace stormnode::roles {
namespace {

struct NodeOptions {
    bool json = false;
    std::vector<std::string> roles;
    bool force = false;
    bool wait = true;
    int timeout_seconds = 0;
    std::string role;
};

std::string json_string(const std::string& text) {
    std::string out = "\"";
    for (const char c : text) {
        switch (c) {
            case '"':
                out += "\\\"";
                break;
            case '\\':
                out += "\\\\";
                break;
            case '\n':
                out += "\\n";
                break;
            case '\t':
                out += "\\t";
                break;
            default:
                if (static_cast<unsigned char>(c) < 0x20) {
                    static constexpr std::string_view kHex = "0123456789abcdef";
                    const auto byte = static_cast<unsigned char>(c);
                    out += "\\u00";
                    out += kHex[byte >> 4U];
                    out += kHex[byte & 0xfU];
                } else {
                    out += c;
                }
        }
    }
    return out + "\"";
}

void print_json(const NodeStatus& status) {
    std::ostringstream out;
    out << "{\"roles\":[";
    for (std::size_t i = 0; i < status.roles.size(); ++i) {
        out << (i == 0 ? "" : ",") << json_string(status.roles[i]);
    }
    out << "],\"state\":" << json_string(status.state) << ",\"reason\":" << json_string(status.reason)
        << ",\"units\":[";
    for (std::size_t i = 0; i < status.units.size(); ++i) {
        const auto& u = status.units[i];
        out << (i == 0 ? "" : ",") << "{\"unit\":" << json_string(u.unit)
            << ",\"active_state\":" << json_string(u.active_state)
            << ",\"check_state\":" << json_string(u.check_state) << ",\"restarts\":" << u.restarts << "}";
    }
    out << R"(],"image":{"commit":)" << json_string(status.image_commit)
        << ",\"version\":" << json_string(status.image_version) << "}}\n";
    std::cout << out.str();
}

void print_status(const NodeStatus& status) {
    auto& out = std::cout;
    out << "roles:  " << (status.roles.empty() ? "(none)" : join(status.roles, ", ")) << "\n";
    out << "state:  " << status.state << (status.reason.empty() ? "" : " (" + status.reason + ")") << "\n";
    if (status.image_commit.empty()) {
        out << "image:  (not booted from an OSTree commit)\n";
    } else {
        out << "image:  " << status.image_commit
            << (status.image_version.empty() ? "" : " (version " + status.image_version + ")") << "\n";
    }
    if (status.units.empty()) {
        out << "\nno units\n";
        return;
    }
    std::size_t unit_width = 4;
    std::size_t active_width = 6;
    std::size_t check_width = 5;
    for (const auto& u : status.units) {
        unit_width = std::max(unit_width, u.unit.size());
        active_width = std::max(active_width, u.active_state.size());
        check_width = std::max(check_width, u.check_state.size());
    }
    const auto column = [](std::size_t width) {
        return std::setw(static_cast<int>(width + 2));
    };
    out << "\n"
        << std::left << column(unit_width) << "UNIT" << column(active_width) << "ACTIVE"
        << column(check_width) << "CHECK"
        << "RESTARTS\n";
    for (const auto& u : status.units) {
        out << column(unit_width) << u.unit << column(active_width) << u.active_state << column(check_width)
            << u.check_state << u.restarts << "\n";
    }
}

// Node1's named errors are shown with their message and name; bad role names are usage errors (2).
int report(const DbusError& e) {
    const bool ours = e.name().rfind("org.stormclouds.Node1.Error.", 0) == 0;
    log::error(describe(e) + (ours ? " [" + e.name() + "]" : ""));
    const bool usage = e.name() == "org.stormclouds.Node1.Error.InvalidRoles" ||
                       e.name() == "org.stormclouds.Node1.Error.UnknownRole";
    return usage ? 2 : 1;
}

int show_status(const NodeOptions& options) {
    auto client = NodeClient::system();
    const NodeStatus status = client.status();
    options.json ? print_json(status) : print_status(status);
    return 0;
}

int set_roles(const NodeOptions& options) {
    auto client = NodeClient::system();
    const auto result = client.set_roles(
        options.roles, options.force, options.wait, std::chrono::seconds(options.timeout_seconds));
    const std::string wanted = join(options.roles, ",");
    if (!result) {
        std::cout << "switching to " << wanted << " (not waiting: see stormctl role status)\n";
        return 0;
    }
    const std::string from = result->old_roles.empty() ? "(none)" : join(result->old_roles, ",");
    if (result->outcome == "switched") {
        std::cout << "switched: " << from << " -> " << wanted << "\n";
        return 0;
    }
    if (result->outcome == "rolled-back") {
        std::cout << "rolled back: " << wanted << " did not become healthy; the node runs " << from
                  << " again\n";
    } else {
        std::cout << "failed: " << wanted << " did not become healthy and " << from
                  << " did not come back either; see stormctl role status\n";
    }
    std::cout << "why: journalctl -u storm-roled MESSAGE_ID=" << message_id::kRoleFailed << "\n";
    return 1;
}

int restart_role(const NodeOptions& options) {
    auto client = NodeClient::system();
    client.restart_role(options.role);
    std::cout << "restarting the units of " << options.role << " (see stormctl role status)\n";
    return 0;
}

// Runs one command; D-Bus errors are reported here, other errors go to stormctl's main.
template <typename F>
auto reporting(int& exit_code, std::shared_ptr<NodeOptions> options, F fn) {
    return [&exit_code, options = std::move(options), fn] {
        try {
            exit_code = fn(*options);
        } catch (const DbusError& e) {
            exit_code = report(e);
        }
    };
}

}  // namespace

void add_node_commands(CLI::App& role, int& exit_code) {
    auto options = std::make_shared<NodeOptions>();

    CLI::App* status =
        role.add_subcommand("status", "Show this node's roles, their state and units (from storm-roled)");
    status->add_flag("--json", options->json, "Print one JSON object");
    status->callback(reporting(exit_code, options, show_status));

    CLI::App* set = role.add_subcommand(
        "set", "Switch this node to these roles as one transaction (rolled back if they do not come up)");
    set->add_option("roles", options->roles, "Roles, comma-separated (name[:variant])")
        ->required()
        ->delimiter(',');
    set->add_flag("--force", options->force, "Switch even when the quorum guard refuses");
    set->add_flag("--wait,!--no-wait", options->wait, "Wait for the outcome (default) or return at once");
    set->add_option(
           "--timeout", options->timeout_seconds, "Stop waiting after this many seconds (0: no limit)")
        ->check(CLI::NonNegativeNumber);
    set->callback(reporting(exit_code, options, set_roles));

    CLI::App* restart =
        role.add_subcommand("restart", "Restart the units of one of this node's roles, tier by tier");
    restart->add_option("role", options->role, "Role")->required();
    restart->callback(reporting(exit_code, options, restart_role));
}

}  // namespace stormnode::roles
