#include "stormnode/catalog/catalog.hpp"

#include "catalog_internal.hpp"

#include <stormnode/common/error.hpp>

#include <algorithm>
#include <cstdlib>

namespace stormnode::roles {

const Role* Catalog::find(const std::string& name) const {
    const auto it = roles.find(name);
    return it == roles.end() ? nullptr : &it->second;
}

std::vector<std::string> Catalog::role_names() const {
    std::vector<std::string> names;
    for (const auto& [name, role] : roles) {
        if (role.kind == RoleKind::role) {
            names.push_back(name);
        }
    }
    return names;
}

std::vector<std::string> Catalog::placeable_names() const {
    std::vector<std::string> names;
    for (const auto& [name, role] : roles) {
        if (role.placeable()) {
            names.push_back(name);
        }
    }
    return names;
}

Diagnostic Role::at(const std::string& path) const {
    const auto it = locations.find(path);
    return it == locations.end() ? where : it->second;
}

std::vector<std::string> Role::variant_names() const {
    std::vector<std::string> names;
    names.reserve(variants.size());
    for (const auto& variant : variants) {
        names.push_back(variant.first);
    }
    return names;
}

std::vector<std::string> Role::shared_secrets(const std::string& variant) const {
    std::vector<std::string> names = cluster.shared_secrets;
    const auto it = cluster.variant_secrets.find(variant.empty() ? default_variant : variant);
    if (it != cluster.variant_secrets.end()) {
        names.insert(names.end(), it->second.begin(), it->second.end());
    }
    return names;
}

const std::set<std::string>& known_generators() {
    // Keep in step with storm-firstboot's generators (roles-notes.md §5: per-node material).
    static const std::set<std::string> generators{
        "corosync-authkey",      // /etc/corosync/authkey
        "drbd-node-id",          // this node's DRBD node-id / resource stanza
        "erlang-cookie",         // /var/lib/rabbitmq/.erlang.cookie
        "galera-node",           // wsrep_node_name / wsrep_node_address
        "horizon-secret-key",    // openstack-dashboard SECRET_KEY (shared by the controllers)
        "iscsi-iqn",             // /etc/iscsi/initiatorname.iscsi
        "keystone-fernet-keys",  // fernet/credential keys (first controller; the others receive them)
        "machine-id",            // /etc/machine-id
        "mariadb-datadir",       // mysql_install_db into an empty datadir
        "nats-server-name",      // nats server_name / cluster routes
        "ovs-system-id",         // /etc/openvswitch/system-id.conf
        "postgresql-cluster",    // pg_createcluster 15 main
        "qnetd-nssdb",           // corosync-qnetd-certutil -i -G (a cluster member's: storm-roled's)
        "random-base64",         // a random secret, base64
        "random-hex",            // a random secret, hex
        "snakeoil-cert",         // make-ssl-cert generate-default-snakeoil --force-overwrite
        "ssh-host-keys",         // ssh-keygen -A
        "swift-rings",           // rings built from cluster.yaml
        "uuid",                  // a random UUID (libvirt host uuid, ...)
        "zabbix-psk",            // TLS PSK for zabbix-agent <-> server/proxy
    };
    return generators;
}

std::string_view to_string(CheckKind kind) {
    switch (kind) {
        case CheckKind::unit:
            return "unit";
        case CheckKind::tcp:
            return "tcp";
        case CheckKind::http:
            return "http";
        case CheckKind::exec:
            return "exec";
        case CheckKind::amqp_peer:
            return "amqp_peer";
    }
    return "unknown";
}

std::filesystem::path default_catalog_dir() {
    // Read once at start-up by the tools, before any thread exists.
    const char* env = std::getenv("STORMNODE_CATALOG_DIR");  // NOLINT(concurrency-mt-unsafe)
    if (env != nullptr && *env != '\0') {
        return env;
    }
    return STORMNODE_CATALOG_DIR;
}

Catalog load_valid_catalog(const std::filesystem::path& dir) {
    std::error_code ec;
    if (!std::filesystem::exists(dir, ec)) {
        throw Error(Errc::not_found, "role catalog '" + dir.string() + "' does not exist");
    }
    Diagnostics diags(dir.string());
    Catalog catalog = load_catalog({dir}, diags);
    validate_catalog(catalog, diags);
    throw_if_errors(diags, "role catalog '" + dir.string() + "' is invalid");
    return catalog;
}

namespace detail {

const std::vector<std::string>& unit_suffixes() {
    static const std::vector<std::string> suffixes{
        ".service", ".socket", ".timer", ".target", ".mount", ".path", ".slice"};
    return suffixes;
}

bool has_unit_suffix(const std::string& unit) {
    return std::ranges::any_of(unit_suffixes(), [&](const std::string& suffix) {
        return unit.size() > suffix.size() && unit.ends_with(suffix);
    });
}

const Role* common_of(const Catalog& catalog) {
    for (const auto& [name, role] : catalog.roles) {
        if (role.kind == RoleKind::common) {
            return &role;
        }
    }
    return nullptr;
}

std::vector<Layer> layers_of(const Catalog& catalog, const Role& role, const std::string& variant) {
    std::vector<Layer> layers;
    const Role* common = common_of(catalog);
    if (common != nullptr && role.kind != RoleKind::common) {
        layers.push_back({common, &common->body, {}});
    }
    for (const auto& mixin_name : role.mixins) {
        const Role* mixin = catalog.find(mixin_name);
        if (mixin != nullptr && mixin->kind == RoleKind::mixin && mixin != &role) {
            layers.push_back({mixin, &mixin->body, {}});
        }
    }
    layers.push_back({&role, &role.body, {}});
    const std::string& chosen = variant.empty() ? role.default_variant : variant;
    const auto it = role.variants.find(chosen);
    if (it != role.variants.end()) {
        layers.push_back({&role, &it->second, "variants." + chosen + "."});
    }
    return layers;
}

}  // namespace detail
}  // namespace stormnode::roles
