// Reads the catalog's YAML files into typed structs in one pass, collecting every problem.
#include "catalog_internal.hpp"
#include "stormnode/catalog/catalog.hpp"

#include <stormnode/common/strings.hpp>
#include <stormnode/common/yaml_diagnostics.hpp>

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <regex>
#include <system_error>

namespace stormnode::roles {
namespace {

const std::set<std::string> body_keys{
    "packages", "units", "tiers", "healthy_when", "config", "node_state", "keep_disabled"};
const std::set<std::string> role_only_keys{
    "mixins", "variants", "default_variant", "cluster", "conflicts_roles"};
const std::set<std::string> unit_keys{"name", "package", "owner", "feature", "checks"};
const std::set<std::string> check_keys{
    "type", "host", "port", "path", "status", "argv", "interval", "timeout", "on_failure"};
const std::set<std::string> config_keys{"path", "template", "mode"};
const std::set<std::string> node_state_keys{"path", "generator", "owner", "mode"};
const std::set<std::string> cluster_keys{
    "peers", "min_members", "recommended_members", "quorum_member", "depends_on", "shared_secrets"};
const std::set<std::string> healthy_when_keys{"required", "degraded_if_down"};

std::set<std::string> role_keys() {
    std::set<std::string> keys{"name", "kind", "description", "conflicts", "standalone"};
    keys.insert(body_keys.begin(), body_keys.end());
    keys.insert(role_only_keys.begin(), role_only_keys.end());
    return keys;
}

// Const access: the non-const operator[] would insert the key.
YAML::Node child(const YAML::Node& map, const char* key) {
    const YAML::Node& const_map = map;
    return const_map[key];
}

std::string index_key(const std::string& base, std::size_t i) {
    return base + "[" + std::to_string(i) + "]";
}

std::string not_applicable(const std::string& key, const std::string& type) {
    return "key '" + key + "' does not apply to checks of type '" + type + "'";
}

bool valid_name(const std::string& name) {
    static const std::regex pattern("[a-z][a-z0-9-]*");
    return std::regex_match(name, pattern);
}

class RoleParser {
public:
    RoleParser(Role& role, Diagnostics& diags) : role_(&role), diags_(&diags) {}

    void parse(const YAML::Node& root, const std::string& stem) {
        role_->where = diags_->position(root);
        if (!yaml::expect_map(root, "a role file", *diags_)) {
            return;
        }
        yaml::reject_unknown_keys(root, role_keys(), *diags_);
        parse_name(root, stem);
        parse_kind(root);
        if (const auto standalone = yaml::optional_bool(root, "standalone", *diags_)) {
            role_->standalone = *standalone;
            if (role_->kind != RoleKind::mixin) {
                diags_->error(child(root, "standalone"), "'standalone' is only allowed for kind: mixin");
            }
        }
        if (const auto description = yaml::optional_string(root, "description", *diags_)) {
            role_->description = *description;
        }
        role_->mixins = names(root, "mixins", "mixins");
        role_->conflicts = names(root, "conflicts", "conflicts");
        role_->conflicts_roles = names(root, "conflicts_roles", "conflicts_roles");
        parse_body(root, "", role_->body);
        parse_cluster(root);
        parse_variants(root);
    }

private:
    void parse_name(const YAML::Node& root, const std::string& stem) {
        const auto name = yaml::require_string(root, "name", *diags_);
        if (!name) {
            role_->name = stem;  // keeps later messages readable
            return;
        }
        const YAML::Node node = child(root, "name");
        role_->name = *name;
        role_->where = diags_->position(node);
        if (!valid_name(*name)) {
            diags_->error(node, "'name' must be lower-case letters, digits and '-', not '" + *name + "'");
        } else if (*name != stem) {
            diags_->error(
                node, "'name' is '" + *name + "' but the file is " + stem + ".yaml (they must match)");
        }
    }

    void parse_kind(const YAML::Node& root) {
        const auto kind = yaml::optional_string(root, "kind", *diags_);
        if (kind) {
            if (*kind == "role") {
                role_->kind = RoleKind::role;
            } else if (*kind == "common") {
                role_->kind = RoleKind::common;
            } else if (*kind == "mixin") {
                role_->kind = RoleKind::mixin;
            } else {
                diags_->error(
                    child(root, "kind"), "unknown kind '" + *kind + "' (known: role, common, mixin)");
            }
        }
        if (role_->kind == RoleKind::role) {
            return;
        }
        for (const auto& key : role_only_keys) {
            const YAML::Node value = child(root, key.c_str());
            if (value) {
                diags_->error(
                    value, "'" + key + "' is only allowed for kind: role, not kind: " + kind.value_or(""));
            }
        }
    }

    // A list of names, each position recorded under location + "[i]".
    std::vector<std::string> names(const YAML::Node& map, const char* key, const std::string& location) {
        std::vector<std::string> items;
        const YAML::Node value = child(map, key);
        if (!value) {
            return items;
        }
        if (!value.IsSequence()) {
            diags_->error(value, std::string("'") + key + "' must be a list");
            return items;
        }
        for (const auto& item : value) {
            if (!item.IsScalar() || item.Scalar().empty()) {
                diags_->error(item, std::string("items of '") + key + "' must be non-empty strings");
                continue;
            }
            role_->locations[index_key(location, items.size())] = diags_->position(item);
            items.push_back(item.Scalar());
        }
        return items;
    }

    void parse_body(const YAML::Node& map, const std::string& prefix, RoleBody& body) {
        body.packages = names(map, "packages", prefix + "packages");
        body.keep_disabled = names(map, "keep_disabled", prefix + "keep_disabled");
        parse_units(map, body);
        parse_tiers(map, prefix, body);
        const YAML::Node healthy = child(map, "healthy_when");
        if (healthy && yaml::expect_map(healthy, "'healthy_when'", *diags_)) {
            yaml::reject_unknown_keys(healthy, healthy_when_keys, *diags_);
            body.required = names(healthy, "required", prefix + "healthy_when.required");
            body.degraded_if_down =
                names(healthy, "degraded_if_down", prefix + "healthy_when.degraded_if_down");
        }
        parse_config(map, body);
        parse_node_state(map, body);
    }

    void parse_units(const YAML::Node& map, RoleBody& body) {
        const YAML::Node units = child(map, "units");
        if (!units || !yaml::expect_sequence(units, "'units'", *diags_)) {
            return;
        }
        for (const auto& node : units) {
            if (!yaml::expect_map(node, "a unit", *diags_)) {
                continue;
            }
            yaml::reject_unknown_keys(node, unit_keys, *diags_);
            Unit unit;
            const auto name = yaml::require_string(node, "name", *diags_);
            const auto package = yaml::require_string(node, "package", *diags_);
            unit.where = diags_->position(name ? child(node, "name") : YAML::Node(node));
            if (const auto owner = yaml::optional_string(node, "owner", *diags_)) {
                if (*owner == "supervisor") {
                    unit.owner = UnitOwner::supervisor;
                } else if (*owner == "pacemaker") {
                    unit.owner = UnitOwner::pacemaker;
                } else {
                    diags_->error(
                        child(node, "owner"),
                        "unknown owner '" + *owner + "' (known: supervisor, pacemaker)");
                }
            }
            if (const auto feature = yaml::optional_string(node, "feature", *diags_)) {
                unit.feature = *feature;
            }
            parse_checks(node, unit);
            if (name && package) {
                unit.name = *name;
                unit.package = *package;
                body.units.push_back(std::move(unit));
            }
        }
    }

    void parse_checks(const YAML::Node& unit_node, Unit& unit) {
        const YAML::Node checks = child(unit_node, "checks");
        if (!checks || !yaml::expect_sequence(checks, "'checks'", *diags_)) {
            return;
        }
        for (const auto& node : checks) {
            if (!yaml::expect_map(node, "a check", *diags_)) {
                continue;
            }
            if (auto check = parse_check(node)) {
                unit.checks.push_back(std::move(*check));
            }
        }
    }

    std::optional<Check> parse_check(const YAML::Node& node) {
        static const std::map<std::string, std::pair<CheckKind, std::set<std::string>>> check_types{
            {"unit", {CheckKind::unit, {}}},
            {"tcp", {CheckKind::tcp, {"host", "port"}}},
            {"http", {CheckKind::http, {"host", "port", "path", "status"}}},
            {"exec", {CheckKind::exec, {"argv"}}},
            {"amqp_peer", {CheckKind::amqp_peer, {"port"}}},
        };
        const std::size_t before = diags_->items().size();
        const auto type = yaml::require_string(node, "type", *diags_);
        const std::string type_name = type.value_or("");
        const auto it = check_types.find(type_name);
        if (type && it == check_types.end()) {
            diags_->error(
                child(node, "type"),
                "unknown check type '" + type_name + "' (known: unit, tcp, http, exec, amqp_peer)");
        }
        for (const auto& kv : node) {
            const std::string key = kv.first.Scalar();
            if (!check_keys.contains(key)) {
                diags_->error(kv.first, "unknown key '" + key + "' (known: " + join(check_keys, ", ") + ")");
            } else if (
                it != check_types.end() && key != "type" && key != "interval" && key != "timeout" &&
                key != "on_failure" && !it->second.second.contains(key)) {
                diags_->error(kv.first, not_applicable(key, type_name));
            }
        }
        Check check;
        if (it != check_types.end()) {
            check.kind = it->second.first;
        }
        if (const auto host = yaml::optional_string(node, "host", *diags_)) {
            check.host = *host;
        }
        const auto port = yaml::optional_int(node, "port", *diags_, 1, 65535);
        if (port) {
            check.port = static_cast<int>(*port);
        } else if (check.kind == CheckKind::amqp_peer) {
            check.port = 5672;
        } else if ((check.kind == CheckKind::tcp || check.kind == CheckKind::http) && !child(node, "port")) {
            diags_->error(node, "missing required key 'port' (checks of type '" + type_name + "' need one)");
        }
        if (const auto path = yaml::optional_string(node, "path", *diags_)) {
            if (!path->starts_with('/')) {
                diags_->error(child(node, "path"), "'path' must start with '/', not '" + *path + "'");
            }
            check.path = *path;
        }
        parse_status(node, check);
        if (check.kind == CheckKind::exec) {
            check.argv = yaml::string_list(node, "argv", *diags_);
            if (check.argv.empty() && diags_->items().size() == before) {
                diags_->error(node, "an exec check needs a non-empty 'argv'");
            }
        }
        if (const auto interval = yaml::optional_int(node, "interval", *diags_, 1, 86400)) {
            check.interval = std::chrono::seconds(*interval);
        }
        if (const auto timeout = yaml::optional_int(node, "timeout", *diags_, 1, 86400)) {
            check.timeout = std::chrono::seconds(*timeout);
        }
        if (const auto on_failure = yaml::optional_string(node, "on_failure", *diags_)) {
            if (*on_failure == "degrade" || *on_failure == "hold") {
                check.degrade_only = true;
                check.holds_restarts = *on_failure == "hold";
            } else if (*on_failure != "restart") {
                diags_->error(
                    child(node, "on_failure"),
                    "'on_failure' must be restart, degrade or hold, not '" + *on_failure + "'");
            }
        }
        if (diags_->items().size() != before) {
            return std::nullopt;
        }
        return check;
    }

    void parse_status(const YAML::Node& node, Check& check) {
        const YAML::Node status = child(node, "status");
        if (!status) {
            return;
        }
        if (!status.IsSequence() || status.size() == 0) {
            diags_->error(status, "'status' must be a non-empty list of HTTP status codes");
            return;
        }
        check.expect_status.clear();
        for (const auto& item : status) {
            int code = 0;
            if (!item.IsScalar() || !YAML::convert<int>::decode(item, code) || code < 100 || code > 599) {
                diags_->error(item, "'status' items must be HTTP status codes (100 to 599)");
                continue;
            }
            check.expect_status.push_back(code);
        }
    }

    std::optional<std::string> absolute_path(const YAML::Node& node) {
        auto path = yaml::require_string(node, "path", *diags_);
        if (path && !path->starts_with('/')) {
            diags_->error(child(node, "path"), "'path' must be absolute, not '" + *path + "'");
            return std::nullopt;
        }
        return path;
    }

    std::optional<std::string> file_mode(const YAML::Node& node) {
        static const std::regex pattern("0?[0-7]{3}");
        const auto mode = yaml::optional_string(node, "mode", *diags_);
        if (!mode) {
            return std::nullopt;
        }
        if (!std::regex_match(*mode, pattern)) {
            diags_->error(
                child(node, "mode"), "'mode' must be an octal file mode like \"0644\", not '" + *mode + "'");
            return std::nullopt;
        }
        return mode->size() == 3 ? "0" + *mode : *mode;
    }

    void parse_config(const YAML::Node& map, RoleBody& body) {
        const YAML::Node config = child(map, "config");
        if (!config || !yaml::expect_sequence(config, "'config'", *diags_)) {
            return;
        }
        for (const auto& node : config) {
            if (!yaml::expect_map(node, "a config entry", *diags_)) {
                continue;
            }
            yaml::reject_unknown_keys(node, config_keys, *diags_);
            ConfigFile file;
            file.where = diags_->position(node);
            const auto path = absolute_path(node);
            if (const auto name = yaml::optional_string(node, "template", *diags_)) {
                file.template_name = *name;
            }
            if (const auto mode = file_mode(node)) {
                file.mode = *mode;
            }
            if (path) {
                file.path = *path;
                body.config.push_back(std::move(file));
            }
        }
    }

    void parse_node_state(const YAML::Node& map, RoleBody& body) {
        const YAML::Node states = child(map, "node_state");
        if (!states || !yaml::expect_sequence(states, "'node_state'", *diags_)) {
            return;
        }
        for (const auto& node : states) {
            if (!yaml::expect_map(node, "a node_state entry", *diags_)) {
                continue;
            }
            yaml::reject_unknown_keys(node, node_state_keys, *diags_);
            NodeState state;
            state.where = diags_->position(node);
            const auto path = absolute_path(node);
            const auto generator = yaml::require_string(node, "generator", *diags_);
            if (generator && !known_generators().contains(*generator)) {
                const auto& known = known_generators();
                diags_->error(
                    child(node, "generator"),
                    "unknown generator '" + *generator + "' (known: " + join(known, ", ") + ")");
            }
            if (const auto owner = yaml::optional_string(node, "owner", *diags_)) {
                state.owner = *owner;
            }
            if (const auto mode = file_mode(node)) {
                state.mode = *mode;
            }
            if (path && generator) {
                state.path = *path;
                state.generator = *generator;
                body.node_state.push_back(std::move(state));
            }
        }
    }

    void parse_tiers(const YAML::Node& map, const std::string& prefix, RoleBody& body) {
        const YAML::Node tiers = child(map, "tiers");
        if (!tiers || !yaml::expect_sequence(tiers, "'tiers'", *diags_)) {
            return;
        }
        for (const auto& tier_node : tiers) {
            if (!tier_node.IsSequence() || tier_node.size() == 0) {
                diags_->error(tier_node, "a tier must be a non-empty list of unit names");
                continue;
            }
            const std::string tier_key = index_key(prefix + "tiers", body.tiers.size());
            std::vector<std::string> tier;
            for (const auto& item : tier_node) {
                if (!item.IsScalar() || item.Scalar().empty()) {
                    diags_->error(item, "a tier must list unit names");
                    continue;
                }
                role_->locations[index_key(tier_key, tier.size())] = diags_->position(item);
                tier.push_back(item.Scalar());
            }
            role_->locations[tier_key] = diags_->position(tier_node);
            body.tiers.push_back(std::move(tier));
        }
    }

    void parse_cluster(const YAML::Node& root) {
        const YAML::Node cluster = child(root, "cluster");
        if (!cluster || !yaml::expect_map(cluster, "'cluster'", *diags_)) {
            return;
        }
        yaml::reject_unknown_keys(cluster, cluster_keys, *diags_);
        ClusterNeeds& needs = role_->cluster;
        if (const auto peers = yaml::optional_string(cluster, "peers", *diags_)) {
            needs.peers = *peers;
            role_->locations["cluster.peers"] = diags_->position(child(cluster, "peers"));
        }
        const auto min_members = yaml::optional_int(cluster, "min_members", *diags_, 1, 1000);
        const auto recommended = yaml::optional_int(cluster, "recommended_members", *diags_, 1, 1000);
        if (min_members) {
            needs.min_members = static_cast<int>(*min_members);
        }
        needs.recommended_members = recommended ? static_cast<int>(*recommended) : needs.min_members;
        if (recommended && needs.recommended_members < needs.min_members) {
            diags_->error(
                child(cluster, "recommended_members"),
                "'recommended_members' (" + std::to_string(needs.recommended_members) +
                    ") is less than 'min_members' (" + std::to_string(needs.min_members) + ")");
        }
        if (const auto quorum = yaml::optional_bool(cluster, "quorum_member", *diags_)) {
            needs.quorum_member = *quorum;
        }
        needs.depends_on = names(cluster, "depends_on", "cluster.depends_on");
        needs.shared_secrets = names(cluster, "shared_secrets", "cluster.shared_secrets");
    }

    // A variant's cluster section holds only the secrets its members need beyond the role's.
    void parse_variant_cluster(const YAML::Node& variant, const std::string& name) {
        const YAML::Node cluster = child(variant, "cluster");
        if (!cluster || !yaml::expect_map(cluster, "'cluster'", *diags_)) {
            return;
        }
        yaml::reject_unknown_keys(cluster, {"shared_secrets"}, *diags_);
        auto secrets = names(cluster, "shared_secrets", "variants." + name + ".cluster.shared_secrets");
        if (!secrets.empty()) {
            role_->cluster.variant_secrets[name] = std::move(secrets);
        }
    }

    void parse_variants(const YAML::Node& root) {
        if (const auto chosen = yaml::optional_string(root, "default_variant", *diags_)) {
            role_->default_variant = *chosen;
            role_->locations["default_variant"] = diags_->position(child(root, "default_variant"));
        }
        const YAML::Node variants = child(root, "variants");
        if (!variants || !yaml::expect_map(variants, "'variants'", *diags_)) {
            return;
        }
        for (const auto& kv : variants) {
            const std::string name = kv.first.Scalar();
            if (!valid_name(name)) {
                diags_->error(
                    kv.first,
                    "a variant name must be lower-case letters, digits and '-', not '" + name + "'");
                continue;
            }
            role_->locations["variants." + name] = diags_->position(kv.first);
            RoleBody body;
            if (kv.second.IsMap()) {
                auto keys = body_keys;
                keys.insert("cluster");
                yaml::reject_unknown_keys(kv.second, keys, *diags_);
                parse_body(kv.second, "variants." + name + ".", body);
                parse_variant_cluster(kv.second, name);
            } else if (!kv.second.IsNull()) {  // "name:" alone is an empty variant
                diags_->error(kv.second, "variant '" + name + "' must be a mapping");
            }
            role_->variants.emplace(name, std::move(body));
        }
    }

    Role* role_;
    Diagnostics* diags_;
};

// The files a path stands for: itself, or every *.yaml of a directory, sorted.
std::vector<std::filesystem::path> expand(const std::filesystem::path& path, Diagnostics& diags) {
    Diagnostics problems(path.string());
    std::vector<std::filesystem::path> files;
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec)) {
        for (const auto& entry : std::filesystem::directory_iterator(path, ec)) {
            if (entry.path().extension() == ".yaml" && entry.is_regular_file(ec)) {
                files.push_back(entry.path());
            }
        }
        if (ec) {
            problems.error_in_file("cannot read the directory: " + ec.message());
        } else if (files.empty()) {
            problems.error_in_file("no *.yaml files in this directory");
        }
        std::sort(files.begin(), files.end());
    } else if (std::filesystem::exists(path, ec)) {
        files.push_back(path);
    } else {
        problems.error_in_file("no such file or directory");
    }
    diags.append(problems);
    return files;
}

void load_file(const std::filesystem::path& file, Catalog& catalog, Diagnostics& diags) {
    Diagnostics file_diags(file.string());
    const auto root = load_yaml_file(file, file_diags);
    if (root) {
        Role role;
        role.file = file.string();
        RoleParser(role, file_diags).parse(*root, file.stem().string());
        const auto [it, inserted] = catalog.roles.emplace(role.name, role);
        if (!inserted) {
            file_diags.error_at(
                role.where,
                "role '" + role.name + "' is already defined at " + it->second.where.file + ":" +
                    std::to_string(it->second.where.line));
        }
    }
    diags.append(file_diags);
}

}  // namespace

Catalog load_catalog(const std::vector<std::filesystem::path>& paths, Diagnostics& diags) {
    Catalog catalog;
    for (const auto& path : paths) {
        for (const auto& file : expand(path, diags)) {
            load_file(file, catalog, diags);
        }
    }
    return catalog;
}

}  // namespace stormnode::roles
