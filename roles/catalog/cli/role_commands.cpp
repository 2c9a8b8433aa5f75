// `stormctl role ...`: the catalog seen by an operator. The library checks; this file prints.
#include <stormnode/catalog/catalog.hpp>
#include <stormnode/catalog/cli.hpp>
#include <stormnode/common/error.hpp>
#include <stormnode/common/strings.hpp>
#include <stormnode/node_client/node_client.hpp>

#include <CLI/CLI.hpp>

#include <algorithm>
#include <iomanip>
#include <iostream>
#include <memory>
#include <sstream>

namespace stormnode::roles {
namespace {

struct RoleOptions {
    std::string catalog;  // --catalog; empty: default_catalog_dir()
    std::string show_name;
    std::string show_variant;
    std::vector<std::string> validate_paths;
    std::vector<std::string> validate_roles;
};

std::filesystem::path catalog_dir(const RoleOptions& options) {
    return options.catalog.empty() ? default_catalog_dir() : std::filesystem::path(options.catalog);
}

std::string or_none(const std::vector<std::string>& items) {
    return items.empty() ? "(none)" : join(items, ", ");
}

// Long lists wrapped under an indent, so that `role show` stays readable in 100 columns.
std::string wrapped(const std::vector<std::string>& items, std::size_t indent, std::size_t width = 100) {
    if (items.empty()) {
        return "(none)";
    }
    std::string text;
    std::size_t column = indent;
    for (const auto& item : items) {
        if (column != indent && column + 1 + item.size() > width) {
            text += "\n" + std::string(indent, ' ');
            column = indent;
        } else if (column != indent) {
            text += ' ';
            ++column;
        }
        text += item;
        column += item.size();
    }
    return text;
}

std::string seconds(std::chrono::milliseconds duration) {
    const auto ms = duration.count();
    return ms % 1000 == 0 ? std::to_string(ms / 1000) + "s" : std::to_string(ms) + "ms";
}

std::string describe_check(const Check& check) {
    std::ostringstream text;
    text << to_string(check.kind);
    switch (check.kind) {
        case CheckKind::unit:
            text << " (ActiveState == active)";
            break;
        case CheckKind::tcp:
            text << " " << check.host << ":" << check.port;
            break;
        case CheckKind::http: {
            std::vector<std::string> codes;
            codes.reserve(check.expect_status.size());
            for (const int code : check.expect_status) {
                codes.push_back(std::to_string(code));
            }
            text << " http://" << check.host << ":" << check.port << check.path << " -> " << join(codes, "|");
            break;
        }
        case CheckKind::exec:
            text << " " << join(check.argv, " ");
            break;
        case CheckKind::amqp_peer:
            text << " (main PID connected to :" << check.port << ")";
            break;
    }
    text << ", every " << seconds(check.interval) << ", timeout " << seconds(check.timeout);
    return text.str();
}

// Which layer (common, a mixin, the role or its variant) declares the unit first.
std::string origin_of(
    const Catalog& catalog, const Role& role, const std::string& variant, const std::string& unit) {
    const auto declares = [&](const RoleBody& body) {
        return std::any_of(
            body.units.begin(), body.units.end(), [&](const Unit& u) { return u.name == unit; });
    };
    for (const auto& [name, other] : catalog.roles) {
        if (other.kind == RoleKind::common && &other != &role && declares(other.body)) {
            return name;
        }
    }
    for (const auto& mixin : role.mixins) {
        const Role* found = catalog.find(mixin);
        if (found != nullptr && declares(found->body)) {
            return mixin;
        }
    }
    if (declares(role.body)) {
        return role.name;
    }
    return role.name + ":" + variant;
}

void print_diagnostics(const Diagnostics& diags) {
    for (const auto& item : diags.items()) {
        std::cerr << (item.file.empty() ? item.message : item.to_string()) << "\n";
    }
}

void list_roles(const RoleOptions& options) {
    const Catalog catalog = load_valid_catalog(catalog_dir(options));
    const auto names = catalog.role_names();
    std::size_t width = 4;
    for (const auto& name : names) {
        width = std::max(width, name.size());
    }
    std::cout << std::left << std::setw(static_cast<int>(width + 2)) << "NAME" << std::setw(16) << "VARIANT"
              << "DESCRIPTION\n";
    for (const auto& name : names) {
        const Role& role = *catalog.find(name);
        std::cout << std::setw(static_cast<int>(width + 2)) << name << std::setw(16)
                  << (role.default_variant.empty() ? "-" : role.default_variant) << role.description << "\n";
    }
}

void show_role(const RoleOptions& options) {
    const Catalog catalog = load_valid_catalog(catalog_dir(options));
    const ResolvedRole resolved = resolve(catalog, options.show_name, options.show_variant);
    const Role& role = *catalog.find(options.show_name);
    const RoleBody& body = resolved.body;
    auto& out = std::cout;

    out << role.name << ": " << role.description << "\n";
    out << "  file:         " << role.file << "\n";
    if (!role.variants.empty()) {
        std::vector<std::string> names;
        names.reserve(role.variants.size());
        for (const auto& [name, variant_body] : role.variants) {
            names.push_back(name == role.default_variant ? name + " (default)" : name);
        }
        out << "  variant:      " << resolved.variant << "  [variants: " << join(names, ", ") << "]\n";
    }
    if (!role.mixins.empty()) {
        out << "  mixins:       " << join(role.mixins, ", ") << "\n";
    }
    out << "  (common layer and mixins folded in)\n";
    out << "\npackages (" << body.packages.size() << "):\n  " << wrapped(body.packages, 2) << "\n";

    out << "\nunits (" << body.units.size() << "):\n";
    std::size_t width = 0;
    for (const auto& unit : body.units) {
        width = std::max(width, unit.name.size());
    }
    for (const auto& unit : body.units) {
        out << "  " << std::left << std::setw(static_cast<int>(width + 2)) << unit.name << "package "
            << unit.package << "  [from " << origin_of(catalog, role, resolved.variant, unit.name) << "]";
        if (unit.owner == UnitOwner::pacemaker) {
            out << "  owner: pacemaker";
        }
        if (!unit.feature.empty()) {
            out << "  feature: " << unit.feature;
        }
        out << "\n";
        for (const auto& check : unit.checks) {
            out << "      check " << describe_check(check) << "\n";
        }
    }

    out << "\ntiers (start order):\n";
    for (std::size_t i = 0; i < body.tiers.size(); ++i) {
        out << "  " << i + 1 << ". " << join(body.tiers[i], " ") << "\n";
    }
    out << "\nhealthy when:\n";
    out << "  required:          " << or_none(body.required) << "\n";
    out << "  degraded if down:  " << or_none(body.degraded_if_down) << "\n";
    if (!body.keep_disabled.empty()) {
        out << "  kept disabled:     " << join(body.keep_disabled, ", ") << "\n";
    }

    out << "\nconfig:\n";
    if (body.config.empty()) {
        out << "  (none)\n";
    }
    for (const auto& file : body.config) {
        out << "  " << file.path << "  mode " << file.mode << "  "
            << (file.template_name.empty() ? "as packaged" : "template " + file.template_name) << "\n";
    }
    out << "\nnode state (generated at first boot):\n";
    if (body.node_state.empty()) {
        out << "  (none)\n";
    }
    for (const auto& state : body.node_state) {
        out << "  " << state.path << "  generator " << state.generator << ", owner " << state.owner
            << ", mode " << state.mode << "\n";
    }

    const ClusterNeeds& cluster = role.cluster;
    out << "\ncluster:\n";
    out << "  peers:           " << (cluster.peers.empty() ? "(none)" : cluster.peers) << "\n";
    out << "  members:         min " << cluster.min_members << ", recommended " << cluster.recommended_members
        << (cluster.quorum_member ? ", quorum member (role switches are guarded)" : "") << "\n";
    out << "  depends on:      " << or_none(cluster.depends_on) << "\n";
    out << "  shared secrets:  " << or_none(role.shared_secrets(resolved.variant)) << "\n";
    out << "\nconflicts:\n";
    out << "  packages:        " << or_none(role.conflicts) << "\n";
    out << "  roles:           " << or_none(role.conflicts_roles) << "\n";
}

int validate(const RoleOptions& options) {
    std::vector<std::filesystem::path> paths(options.validate_paths.begin(), options.validate_paths.end());
    if (paths.empty()) {
        paths.push_back(catalog_dir(options));
    }
    Diagnostics diags;
    const Catalog catalog = load_catalog(paths, diags);
    validate_catalog(catalog, diags);
    if (!options.validate_roles.empty()) {
        Diagnostics combination("--roles " + join(options.validate_roles, ","));
        std::vector<RoleSpec> specs;
        for (const auto& text : options.validate_roles) {
            try {
                specs.push_back(parse_role_spec(text));
            } catch (const Error& e) {
                combination.error_in_file(e.what());
            }
        }
        if (combination.ok()) {
            validate_role_specs(catalog, specs, combination);
        }
        diags.append(combination);
    }
    if (!diags.ok()) {
        print_diagnostics(diags);
        std::cerr << diags.items().size() << (diags.items().size() == 1 ? " problem" : " problems")
                  << " found\n";
        return 2;
    }
    std::size_t roles = 0;
    std::size_t mixins = 0;
    std::size_t common = 0;
    for (const auto& [name, role] : catalog.roles) {
        (role.kind == RoleKind::role ? roles : role.kind == RoleKind::mixin ? mixins : common) += 1;
    }
    std::cout << "valid: " << roles << " roles (" << join(catalog.role_names(), ", ") << "), " << common
              << " common layer, " << mixins << (mixins == 1 ? " mixin" : " mixins");
    if (!options.validate_roles.empty()) {
        std::cout << "; " << join(options.validate_roles, " + ") << " can share a node";
    }
    std::cout << "\n";
    return 0;
}

}  // namespace

void add_role_commands(CLI::App& app, int& exit_code) {
    auto options = std::make_shared<RoleOptions>();
    CLI::App* role = app.add_subcommand("role", "Role catalog and this node's roles");
    role->require_subcommand(1);
    role->add_option(
        "--catalog",
        options->catalog,
        "Catalog directory (default: $STORMNODE_CATALOG_DIR, else " + default_catalog_dir().string() + ")");

    CLI::App* list = role->add_subcommand("list", "List the roles: name, default variant, description");
    list->fallthrough();
    list->callback([options] { list_roles(*options); });

    CLI::App* show = role->add_subcommand(
        "show", "Show what a role installs, starts, checks and needs (common layer and mixins folded in)");
    show->fallthrough();
    show->add_option("name", options->show_name, "Role, mixin or common layer")->required();
    show->add_option("--variant", options->show_variant, "Variant (default: the role's default_variant)");
    show->callback([options] { show_role(*options); });

    CLI::App* check = role->add_subcommand(
        "validate", "Check catalog files or directories; prints every problem as file:line:col: message");
    check->fallthrough();
    check->add_option(
        "path", options->validate_paths, "Files or directories (default: the catalog directory)");
    check
        ->add_option(
            "--roles",
            options->validate_roles,
            "Also check that these roles (name[:variant]) can share a node")
        ->delimiter(',');
    check->callback([options, &exit_code] { exit_code = validate(*options); });

    // status, set, restart over D-Bus: roles/node_client/cli/node_commands.cpp
    add_node_commands(*role, exit_code);
}

}  // namespace stormnode::roles
