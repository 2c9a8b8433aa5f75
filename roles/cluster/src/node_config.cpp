#include "stormnode/cluster/node_config.hpp"

#include <stormnode/catalog/node_file.hpp>
#include <stormnode/cluster/cluster.hpp>
#include <stormnode/common/error.hpp>
#include <stormnode/common/temp_dir.hpp>
#include <stormnode/common/yaml_diagnostics.hpp>

#include <kainjow/mustache.hpp>

#include <system_error>

namespace stormnode::roles {
namespace {

namespace mustache = kainjow::mustache;

mustache::data to_data(const YAML::Node& node) {
    if (node.IsMap()) {
        mustache::data object{mustache::data::type::object};
        for (const auto& kv : node) {
            object.set(kv.first.as<std::string>(), to_data(kv.second));
        }
        return object;
    }
    if (node.IsSequence()) {
        mustache::data list{mustache::data::type::list};
        for (const auto& item : node) {
            list.push_back(to_data(item));
        }
        return list;
    }
    if (node.IsScalar()) {
        return mustache::data{node.Scalar()};
    }
    return mustache::data{std::string()};
}

unsigned parse_mode(const ConfigFile& file) {
    try {
        std::size_t used = 0;
        const unsigned long mode = std::stoul(file.mode, &used, 8);
        if (used == file.mode.size() && mode <= 07777) {
            return static_cast<unsigned>(mode);
        }
    } catch (const std::exception&) {
    }
    throw Error(
        Errc::invalid_input, "config file '" + file.path + "': mode '" + file.mode + "' is not octal");
}

}  // namespace

NodeConfig load_node_config(
    const std::filesystem::path& node_yaml,
    const std::filesystem::path& cluster_yaml,
    const Catalog* catalog) {
    // One read: the fields and the document templates see come from the same text.
    Diagnostics diags(node_yaml.string());
    const auto text = read_text_file(node_yaml, diags);
    const auto document = text ? load_yaml_string(*text, diags) : std::nullopt;
    const auto node = document ? parse_node_document(*document, catalog, diags) : std::nullopt;
    throw_if_errors(diags, node_yaml.string());
    NodeConfig config;
    if (node) {
        config.roles = node->roles;
        config.hostname = node->hostname;
        config.zone = node->zone;
        config.features.insert(node->features.begin(), node->features.end());
        config.variables = node->variables;
        config.document = *document;
    }

    std::error_code ec;
    if (!cluster_yaml.empty() && std::filesystem::exists(cluster_yaml, ec)) {
        // The one cluster model; templates see its derived view (members per role, galera_nodes, vip).
        config.cluster_model = load_cluster(cluster_yaml, catalog);
        config.cluster = cluster_template_data(*config.cluster_model);
    }
    return config;
}

std::string render_template(
    const std::string& text,
    const std::string& template_name,
    const NodeConfig& node,
    const std::vector<RoleSpec>& roles) {
    mustache::mustache tmpl{text};
    if (!tmpl.is_valid()) {
        throw Error(Errc::invalid_input, "template '" + template_name + "': " + tmpl.error_message());
    }
    tmpl.set_custom_escape([](const std::string& s) { return s; });  // config files, not HTML

    mustache::data data = node.document && node.document.IsMap()
                              ? to_data(node.document)
                              : mustache::data{mustache::data::type::object};
    data.set("hostname", node.hostname);
    data.set("zone", node.zone);
    mustache::data role_list{mustache::data::type::list};
    mustache::data has_role{mustache::data::type::object};
    for (const auto& role : roles) {
        const std::string written = to_string(role);
        role_list.push_back(mustache::data{written});
        has_role.set(written, mustache::data::type::bool_true);
        has_role.set(role.name, mustache::data::type::bool_true);
    }
    data.set("roles", role_list);
    data.set("has_role", has_role);
    mustache::data variables{mustache::data::type::object};
    for (const auto& [key, value] : node.variables) {
        variables.set(key, value);
    }
    data.set("variables", variables);
    data.set(
        "cluster",
        node.cluster && node.cluster.IsMap() ? to_data(node.cluster)
                                             : mustache::data{mustache::data::type::object});
    std::string rendered = tmpl.render(data);
    if (!tmpl.is_valid()) {
        throw Error(Errc::invalid_input, "template '" + template_name + "': " + tmpl.error_message());
    }
    return rendered;
}

void render_config(
    const std::vector<ConfigFile>& files,
    const NodeConfig& node,
    const std::vector<RoleSpec>& roles,
    const std::filesystem::path& templates_dir,
    const std::filesystem::path& root) {
    struct Output {
        std::filesystem::path path;
        std::string content;
        unsigned mode;
    };
    std::vector<Output> outputs;
    for (const auto& file : files) {
        if (file.template_name.empty()) {
            continue;
        }
        const auto source = templates_dir / file.template_name;
        std::string text;
        try {
            text = read_file(source);
        } catch (const std::exception&) {
            std::throw_with_nested(Error(Errc::not_found, "template for '" + file.path + "'"));
        }
        const auto relative = std::filesystem::path(file.path).relative_path();
        outputs.push_back(
            {root / relative, render_template(text, file.template_name, node, roles), parse_mode(file)});
    }
    for (const auto& out : outputs) {
        std::filesystem::create_directories(out.path.parent_path());
        write_file_atomic(out.path, out.content, out.mode);
    }
}

std::vector<std::filesystem::path> sysctl_files(
    const std::vector<ConfigFile>& files, const std::filesystem::path& root) {
    std::vector<std::filesystem::path> out;
    for (const auto& file : files) {
        const std::filesystem::path path(file.path);
        if (!file.template_name.empty() && path.parent_path() == "/etc/sysctl.d" &&
            path.extension() == ".conf") {
            out.push_back(root / path.relative_path());
        }
    }
    return out;
}

}  // namespace stormnode::roles
