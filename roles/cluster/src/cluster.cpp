#include "stormnode/cluster/cluster.hpp"

#include <stormnode/catalog/node_file.hpp>
#include <stormnode/cluster/qnetd_tls.hpp>
#include <stormnode/common/error.hpp>
#include <stormnode/common/random.hpp>
#include <stormnode/common/strings.hpp>
#include <stormnode/common/temp_dir.hpp>

#include <sys/stat.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <set>

namespace stormnode::roles {
namespace {

using yaml::value_of;

bool valid_name(const std::string& name) {
    return !name.empty() && name.size() <= 64 && std::all_of(name.begin(), name.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '_';
    });
}

bool valid_zone(const std::string& zone) {
    return !zone.empty() && std::all_of(zone.begin(), zone.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '_' || c == '.';
    });
}

// Positions of a member's fields, for checks made after the whole list is read.
struct MemberMarks {
    Diagnostic entry;
    Diagnostic zone;
    Diagnostic roles;
    std::vector<Diagnostic> role_items;  // by entry of ClusterMember::roles
};

void check_roles(
    const ClusterMember& member, const MemberMarks& marks, const Catalog& catalog, Diagnostics& diags) {
    const RoleListPlaces places{
        marks.roles, marks.role_items, marks.role_items, "member '" + member.hostname + "': "};
    validate_role_specs(catalog, member.roles, diags, &places);
}

// Counts per role, quorum members for the roles that need them, and the spread over zones.
void check_shape(
    const Cluster& cluster,
    const std::vector<MemberMarks>& marks,
    const YAML::Node& members_node,
    const Catalog& catalog,
    Diagnostics& diags) {
    const bool zoned =
        std::any_of(cluster.members.begin(), cluster.members.end(), [](const ClusterMember& m) {
            return !m.zone.empty();
        });
    if (zoned) {
        for (std::size_t i = 0; i < cluster.members.size(); ++i) {
            if (cluster.members[i].zone.empty()) {
                diags.error_at(
                    marks[i].entry,
                    "member '" + cluster.members[i].hostname +
                        "' has no zone while others have one: give every member its zone");
            }
        }
    }
    // The member index of each hostname, for positions.
    const auto index_of = [&](const ClusterMember* member) {
        return static_cast<std::size_t>(member - cluster.members.data());
    };
    for (const auto& name : catalog.role_names()) {
        const Role& role = *catalog.find(name);
        const auto carriers = cluster.members_with(name);
        if (carriers.empty()) {
            continue;
        }
        std::vector<std::string> hostnames;
        for (const auto* member : carriers) {
            hostnames.push_back(member->hostname);
        }
        const Diagnostic last_roles = marks[index_of(carriers.back())].roles;
        if (static_cast<int>(carriers.size()) < role.cluster.min_members) {
            diags.error_at(
                last_roles,
                "role '" + name + "' needs at least " + std::to_string(role.cluster.min_members) +
                    " members, this cluster has " + std::to_string(carriers.size()) + " (" +
                    join(hostnames, ", ") + ")");
        }
        const bool needs_quorum =
            std::find(role.cluster.depends_on.begin(), role.cluster.depends_on.end(), "quorum") !=
            role.cluster.depends_on.end();
        const auto quorum = cluster.members_with("quorum");
        if (needs_quorum && carriers.size() == 2 && quorum.empty()) {
            diags.error_at(
                last_roles,
                "a " + name + " cluster of two (" + join(hostnames, ", ") +
                    ") needs a quorum member: add a member with role quorum, in a third zone");
        }
        if (!zoned) {
            continue;
        }
        std::set<std::string> zones;
        for (const auto* member : carriers) {
            zones.insert(member->zone);
        }
        if (carriers.size() >= 2 && zones.size() == 1 && !zones.begin()->empty()) {
            diags.error_at(
                marks[index_of(carriers.back())].zone,
                "the " + name + " members (" + join(hostnames, ", ") + ") are all in zone '" +
                    *zones.begin() + "': spread them over zones");
        }
        // A tie-breaker inside one of two halves decides nothing.
        if (needs_quorum && carriers.size() == 2) {
            for (const auto* arbiter : quorum) {
                if (!arbiter->zone.empty() && zones.contains(arbiter->zone)) {
                    diags.error_at(
                        marks[index_of(arbiter)].zone,
                        "quorum member '" + arbiter->hostname + "' is in zone '" + arbiter->zone +
                            "' with a " + name + " member: it must be in a third zone");
                }
            }
        }
    }
    (void)members_node;
}

ClusterMember parse_member(const YAML::Node& entry, Diagnostics& diags, MemberMarks& marks) {
    ClusterMember member;
    marks.entry = diags.position(entry);
    marks.zone = marks.entry;
    marks.roles = marks.entry;
    yaml::reject_unknown_keys(entry, {"hostname", "address", "zone", "roles"}, diags);
    member.hostname = yaml::require_string(entry, "hostname", diags).value_or("");
    if (const YAML::Node v = value_of(entry, "hostname");
        v && v.IsScalar() && !valid_hostname(member.hostname)) {
        diags.error(v, "'hostname' must be an RFC 1123 host name, not '" + member.hostname + "'");
    }
    member.address = yaml::require_string(entry, "address", diags).value_or("");
    if (const YAML::Node v = value_of(entry, "address"); v && v.IsScalar() && !valid_ip(member.address)) {
        diags.error(v, "'address' must be an IP address (no prefix length), not '" + member.address + "'");
    }
    member.zone = yaml::optional_string(entry, "zone", diags).value_or("");
    if (const YAML::Node v = value_of(entry, "zone"); v && v.IsScalar()) {
        marks.zone = diags.position(v);
        if (!valid_zone(member.zone)) {
            diags.error(v, "'zone' must be letters, digits, '-', '_' or '.', not '" + member.zone + "'");
        }
    }
    if (const YAML::Node v = value_of(entry, "roles")) {
        marks.roles = diags.position(v);
        if (!v.IsSequence()) {
            diags.error(v, "'roles' must be a list");
        } else {
            for (const auto& item : v) {  // "db" or "db:galera"
                if (!item.IsScalar()) {
                    diags.error(item, "items of 'roles' must be strings");
                    continue;
                }
                try {
                    member.roles.push_back(parse_role_spec(item.Scalar()));
                    marks.role_items.push_back(diags.position(item));
                } catch (const Error& e) {
                    diags.error(item, e.what());
                }
            }
        }
        if (v.IsSequence() && v.size() == 0) {
            diags.error(
                v, "member '" + member.hostname + "' has no roles: a member takes part through its roles");
        }
    } else {
        diags.error(entry, "missing required key 'roles'");
    }
    return member;
}

Vip parse_vip(const YAML::Node& entry, Diagnostics& diags) {
    Vip vip;
    yaml::reject_unknown_keys(entry, {"name", "address", "vrrp_router_id", "members"}, diags);
    vip.name = yaml::require_string(entry, "name", diags).value_or("");
    if (const YAML::Node v = value_of(entry, "name"); v && v.IsScalar() && !valid_name(vip.name)) {
        diags.error(v, "VIP 'name' must be letters, digits, '-' or '_', not '" + vip.name + "'");
    }
    vip.address = yaml::require_string(entry, "address", diags).value_or("");
    if (const YAML::Node v = value_of(entry, "address"); v && v.IsScalar() && !valid_ip(vip.address)) {
        diags.error(v, "VIP 'address' must be an IP address (no prefix length), not '" + vip.address + "'");
    }
    vip.vrrp_router_id =
        static_cast<int>(yaml::optional_int(entry, "vrrp_router_id", diags, 1, 255).value_or(0));
    vip.members = yaml::string_list(entry, "members", diags);
    return vip;
}

// Hex of `size` random bytes: 32 for passwords, 256 for corosync's authkey (corosync-keygen's length;
// storm-roled writes the decoded bytes, and knet wants at least 128).
std::string random_secret(std::size_t size = 32) {
    return random_hex(size);
}

}  // namespace

bool ClusterMember::carries(const std::string& role) const {
    return find_role(roles, role) != nullptr;
}

const ClusterMember* Cluster::find(const std::string& hostname) const {
    const auto it = std::find_if(
        members.begin(), members.end(), [&](const ClusterMember& m) { return m.hostname == hostname; });
    return it == members.end() ? nullptr : &*it;
}

std::vector<const ClusterMember*> Cluster::members_with(const std::string& role) const {
    std::vector<const ClusterMember*> found;
    for (const auto& member : members) {
        if (member.carries(role)) {
            found.push_back(&member);
        }
    }
    return found;
}

std::filesystem::path Cluster::secrets_path() const {
    const std::filesystem::path written(secrets);
    if (secrets.empty() || written.is_absolute()) {
        return written;
    }
    return std::filesystem::path(file).parent_path() / written;
}

namespace {

// cluster.yaml's members into cluster.members, each checked on its own and against the others (no
// hostname or address twice) and, with a catalog, its roles. Returns where each was written, for
// check_shape.
std::vector<MemberMarks> parse_members(
    const YAML::Node& members, const Catalog* catalog, Cluster& cluster, Diagnostics& diags) {
    std::vector<MemberMarks> marks;
    std::map<std::string, std::string> address_owner;
    std::set<std::string> hostnames;
    for (const auto& entry : members) {
        if (!yaml::expect_map(entry, "a member ({hostname, address, zone, roles})", diags)) {
            continue;
        }
        MemberMarks mark;
        auto member = parse_member(entry, diags, mark);
        if (!member.hostname.empty() && !hostnames.insert(member.hostname).second) {
            diags.error(value_of(entry, "hostname"), "member '" + member.hostname + "' is listed twice");
        }
        if (!member.address.empty()) {
            const auto [it, fresh] = address_owner.emplace(member.address, member.hostname);
            if (!fresh) {
                diags.error(
                    value_of(entry, "address"),
                    "address " + member.address + " of '" + member.hostname + "' is already '" + it->second +
                        "''s");
            }
        }
        if (catalog != nullptr) {
            check_roles(member, mark, *catalog, diags);
        }
        cluster.members.push_back(std::move(member));
        marks.push_back(mark);
    }
    if (cluster.members.empty()) {
        diags.error(members, "'members' is empty: a cluster has at least one member");
    }
    return marks;
}

// cluster.yaml's VIPs, each checked on its own, against the others (no name or VRRP router id twice)
// and against the members (not a member's address, no unknown member).
std::vector<Vip> parse_vips(const YAML::Node& vips, const Cluster& cluster, Diagnostics& diags) {
    std::vector<Vip> parsed;
    std::set<std::string> names;
    std::set<int> router_ids;
    for (const auto& entry : vips) {
        if (!yaml::expect_map(entry, "a VIP ({name, address, vrrp_router_id, members})", diags)) {
            continue;
        }
        auto vip = parse_vip(entry, diags);
        if (!vip.name.empty() && !names.insert(vip.name).second) {
            diags.error(value_of(entry, "name"), "VIP '" + vip.name + "' is listed twice");
        }
        if (vip.vrrp_router_id != 0 && !router_ids.insert(vip.vrrp_router_id).second) {
            diags.error(
                value_of(entry, "vrrp_router_id"),
                "vrrp_router_id " + std::to_string(vip.vrrp_router_id) + " is used by another VIP");
        }
        if (const auto* owner = [&]() -> const ClusterMember* {
                for (const auto& m : cluster.members) {
                    if (m.address == vip.address) {
                        return &m;
                    }
                }
                return nullptr;
            }()) {
            diags.error(
                value_of(entry, "address"),
                "VIP address " + vip.address + " is member '" + owner->hostname + "''s own address");
        }
        if (const YAML::Node list = value_of(entry, "members"); list && list.IsSequence()) {
            for (std::size_t i = 0; i < vip.members.size() && i < list.size(); ++i) {
                if (cluster.find(vip.members[i]) == nullptr) {
                    diags.error(
                        list[i], "VIP '" + vip.name + "' names unknown member '" + vip.members[i] + "'");
                }
            }
        }
        parsed.push_back(std::move(vip));
    }
    return parsed;
}

}  // namespace

Cluster parse_cluster(const YAML::Node& doc, const Catalog* catalog, Diagnostics& diags) {
    Cluster cluster;
    cluster.file = diags.file();
    if (!yaml::expect_map(doc, "cluster.yaml", diags)) {
        return cluster;
    }
    yaml::reject_unknown_keys(doc, {"name", "secrets", "members", "vips"}, diags);
    cluster.name = yaml::require_string(doc, "name", diags).value_or("");
    if (const YAML::Node v = value_of(doc, "name"); v && v.IsScalar() && !valid_name(cluster.name)) {
        diags.error(v, "'name' must be letters, digits, '-' or '_' (at most 64), not '" + cluster.name + "'");
    }
    cluster.secrets = yaml::optional_string(doc, "secrets", diags).value_or("");

    const YAML::Node members = value_of(doc, "members");
    std::vector<MemberMarks> marks;
    if (!members) {
        diags.error(doc, "missing required key 'members'");
    } else if (yaml::expect_sequence(members, "'members'", diags)) {
        marks = parse_members(members, catalog, cluster, diags);
    }

    if (const YAML::Node vips = value_of(doc, "vips"); vips && yaml::expect_sequence(vips, "'vips'", diags)) {
        cluster.vips = parse_vips(vips, cluster, diags);
    }
    if (catalog != nullptr && marks.size() == cluster.members.size()) {
        check_shape(cluster, marks, members, *catalog, diags);
    }
    return cluster;
}

std::optional<Cluster> read_cluster_file(
    const std::filesystem::path& path, const Catalog* catalog, Diagnostics& diags) {
    Diagnostics local(path.string());
    const auto doc = load_yaml_file(path, local);
    std::optional<Cluster> cluster;
    if (doc) {
        cluster = parse_cluster(*doc, catalog, local);
    }
    diags.append(local);
    if (!local.ok()) {
        return std::nullopt;
    }
    return cluster;
}

Cluster load_cluster(const std::filesystem::path& path, const Catalog* catalog) {
    Diagnostics diags(path.string());
    auto cluster = read_cluster_file(path, catalog, diags);
    throw_if_errors(diags, path.string());
    return std::move(*cluster);
}

std::vector<std::string> needed_secrets(const Cluster& cluster, const Catalog& catalog) {
    std::set<std::string> names;
    for (const auto& member : cluster.members) {
        for (const auto& spec : member.roles) {
            if (const Role* role = catalog.find(spec.name)) {
                const auto secrets = role->shared_secrets(spec.variant);
                names.insert(secrets.begin(), secrets.end());
            }
        }
    }
    // qnetd serves corosync-qdevice only: without a member presenting a client certificate (a Galera
    // cluster's quorum member runs garbd), its CA and server certificate would be made for no one.
    if (!names.contains(kQnetdClientCertSecret)) {
        std::erase_if(names, [](const std::string& name) { return is_qnetd_tls_secret(name); });
    }
    return {names.begin(), names.end()};
}

void check_cluster_secrets(const Cluster& cluster, const Catalog& catalog, Diagnostics& diags) {
    const auto needed = needed_secrets(cluster, catalog);
    if (cluster.secrets.empty()) {
        if (!needed.empty()) {
            diags.error_in_file(
                "no 'secrets' file, and the members' roles need " + join(needed, ", ") +
                " (stormctl cluster init makes it)");
        }
        return;
    }
    const auto path = cluster.secrets_path();
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
        diags.error_in_file("secrets file " + path.string() + " cannot be read: " + std::strerror(errno));
        return;
    }
    if ((st.st_mode & 077U) != 0) {
        diags.error_in_file("secrets file " + path.string() + " is readable by others: it must be 0600");
    }
    Diagnostics secret_diags(path.string());
    const auto doc = load_yaml_file(path, secret_diags);
    if (doc && yaml::expect_map(*doc, "the secrets file (name: value)", secret_diags)) {
        for (const auto& name : needed) {
            const YAML::Node value = value_of(*doc, name.c_str());
            if (!value || !value.IsScalar() || value.Scalar().empty()) {
                secret_diags.error(*doc, "secret '" + name + "' is missing");
            }
        }
    }
    diags.append(secret_diags);
}

std::map<std::string, std::string> load_cluster_secrets(const Cluster& cluster) {
    if (cluster.secrets.empty()) {
        throw Error(
            Errc::invalid_input, cluster.file + ": no 'secrets' file (stormctl cluster init makes it)");
    }
    const auto path = cluster.secrets_path();
    struct stat st {};
    check_errno(::stat(path.c_str(), &st), "reading the secrets file " + path.string());
    if ((st.st_mode & 077U) != 0) {
        throw Error(
            Errc::invalid_input, "secrets file " + path.string() + " is readable by others: it must be 0600");
    }
    Diagnostics diags(path.string());
    const auto doc = load_yaml_file(path, diags);
    std::map<std::string, std::string> secrets;
    if (doc && yaml::expect_map(*doc, "the secrets file (name: value)", diags)) {
        for (const auto& entry : *doc) {
            if (!entry.second.IsScalar() || entry.second.Scalar().empty()) {
                diags.error(entry.second, "secret '" + entry.first.Scalar() + "' is not a non-empty string");
                continue;
            }
            secrets[entry.first.Scalar()] = entry.second.Scalar();
        }
    }
    throw_if_errors(diags, path.string());
    return secrets;
}

namespace {

// HAProxy's galera listener (lb): every Galera db member (db, db:galera) as a backend, writes to the
// first, the others "backup" (a key present only for those: mustache has no "but the first").
YAML::Node galera_backends(const Cluster& cluster) {
    YAML::Node backends(YAML::NodeType::Sequence);
    for (const auto& member : cluster.members) {
        const bool galera_member =
            std::any_of(member.roles.begin(), member.roles.end(), [](const RoleSpec& r) {
                return r.name == "db" && (r.variant.empty() || r.variant == "galera");
            });
        if (galera_member) {
            YAML::Node backend(YAML::NodeType::Map);
            backend["hostname"] = member.hostname;
            backend["address"] = member.address;
            if (backends.size() > 0) {
                backend["backup"] = "backup";
            }
            backends.push_back(backend);
        }
    }
    return backends;
}

}  // namespace

YAML::Node cluster_template_data(const Cluster& cluster) {
    YAML::Node data(YAML::NodeType::Map);
    data["name"] = cluster.name;
    YAML::Node all(YAML::NodeType::Sequence);
    YAML::Node by_role(YAML::NodeType::Map);
    int position = 0;
    for (const auto& member : cluster.members) {
        YAML::Node entry(YAML::NodeType::Map);
        entry["hostname"] = member.hostname;
        entry["address"] = member.address;
        entry["zone"] = member.zone;
        entry["nodeid"] = std::to_string(++position);  // corosync's nodeid: 1-based, stable with the file
        all.push_back(entry);
        for (const auto& spec : member.roles) {
            by_role[spec.name].push_back(entry);
        }
    }
    data["all_members"] = all;
    data["members"] = by_role;
    std::vector<std::string> galera;
    for (const auto* member : cluster.members_with("db")) {
        galera.push_back(member->address);
    }
    data["galera_nodes"] = join(galera, ",");
    if (!galera.empty()) {
        for (const auto* member : cluster.members_with("quorum")) {
            galera.push_back(member->address);  // garbd
        }
    }
    data["galera_members"] = join(galera, ",");
    if (const YAML::Node backends = galera_backends(cluster); backends.size() > 0) {
        data["galera"]["backends"] = backends;
    }
    // The Zabbix pair: agents accept passive checks from every monitor member (Server, commas) and send
    // active checks to the HA cluster (ServerActive: one cluster's nodes are separated by semicolons).
    std::vector<std::string> monitors;
    for (const auto* member : cluster.members_with("monitor")) {
        monitors.push_back(member->address);
    }
    if (!monitors.empty()) {  // absent, not "": templates test them with {{#...}}
        data["monitor_servers"] = join(monitors, ",");
        data["monitor_server_active"] = join(monitors, ";");
    }
    const Vip* main_vip = nullptr;
    YAML::Node vips(YAML::NodeType::Map);
    for (const auto& vip : cluster.vips) {
        vips[vip.name]["address"] = vip.address;
        if (vip.vrrp_router_id != 0) {
            vips[vip.name]["vrrp_router_id"] = std::to_string(vip.vrrp_router_id);
        }
        if (main_vip == nullptr || vip.name == "mgmt") {
            main_vip = &vip;
        }
    }
    data["vips"] = vips;
    if (main_vip != nullptr) {
        data["vip"] = main_vip->address;
        if (main_vip->vrrp_router_id != 0) {
            data["vrrp_router_id"] = std::to_string(main_vip->vrrp_router_id);
        }
    }
    // The Zabbix database: the db role's behind the VIP when the cluster has db members, else the
    // first monitor member's own MariaDB (feature local_db; see zabbix_bootstrap.hpp).
    if (!galera.empty()) {
        data["monitor_db_host"] = main_vip != nullptr ? main_vip->address : std::string();
    } else if (!monitors.empty()) {
        data["monitor_db_host"] = monitors.front();
    }
    return data;
}

std::string render_cluster_file(const Cluster& cluster) {
    YAML::Emitter out;
    out << YAML::BeginMap;
    out << YAML::Key << "name" << YAML::Value << cluster.name;
    if (!cluster.secrets.empty()) {
        out << YAML::Key << "secrets" << YAML::Value << cluster.secrets;
    }
    out << YAML::Key << "members" << YAML::Value << YAML::BeginSeq;
    for (const auto& member : cluster.members) {
        out << YAML::Flow << YAML::BeginMap;
        out << YAML::Key << "hostname" << YAML::Value << member.hostname;
        out << YAML::Key << "address" << YAML::Value << member.address;
        if (!member.zone.empty()) {
            out << YAML::Key << "zone" << YAML::Value << member.zone;
        }
        out << YAML::Key << "roles" << YAML::Value << YAML::Flow << to_strings(member.roles);
        out << YAML::EndMap;
    }
    out << YAML::EndSeq;
    if (!cluster.vips.empty()) {
        out << YAML::Key << "vips" << YAML::Value << YAML::BeginSeq;
        for (const auto& vip : cluster.vips) {
            out << YAML::Flow << YAML::BeginMap;
            out << YAML::Key << "name" << YAML::Value << vip.name;
            out << YAML::Key << "address" << YAML::Value << vip.address;
            if (vip.vrrp_router_id != 0) {
                out << YAML::Key << "vrrp_router_id" << YAML::Value << vip.vrrp_router_id;
            }
            if (!vip.members.empty()) {
                out << YAML::Key << "members" << YAML::Value << YAML::Flow << vip.members;
            }
            out << YAML::EndMap;
        }
        out << YAML::EndSeq;
    }
    out << YAML::EndMap;
    return "# The cluster this node belongs to (stormctl cluster init). Its secrets are in the file named\n"
           "# by 'secrets' (0600), never here.\n" +
           std::string(out.c_str()) + "\n";
}

namespace {

// The secrets file's entries in file order; Error naming the file when it is not a map of strings.
std::vector<std::pair<std::string, std::string>> read_secret_entries(const std::filesystem::path& path) {
    Diagnostics diags(path.string());
    const auto doc = load_yaml_file(path, diags);
    std::vector<std::pair<std::string, std::string>> entries;
    if (doc && !doc->IsNull() && yaml::expect_map(*doc, "the secrets file (name: value)", diags)) {
        for (const auto& entry : *doc) {
            if (!entry.second.IsScalar() || entry.second.Scalar().empty()) {
                diags.error(entry.second, "secret '" + entry.first.Scalar() + "' is not a non-empty string");
                continue;
            }
            entries.emplace_back(entry.first.Scalar(), entry.second.Scalar());
        }
    }
    throw_if_errors(diags, path.string());
    return entries;
}

// Values for the missing secrets. qnetd's CA and the certificates it signs are made together
// (stormnode/cluster/qnetd_tls.hpp): one of them cannot be added to the others, the CA's key being gone.
std::vector<std::pair<std::string, std::string>> make_secrets(
    const std::vector<std::string>& missing,
    const std::vector<std::pair<std::string, std::string>>& existing,
    const Cluster& cluster) {
    std::vector<std::string> kept_qnetd;
    for (const auto& [name, value] : existing) {
        if (is_qnetd_tls_secret(name)) {
            kept_qnetd.push_back(name);
        }
    }
    std::vector<std::string> missing_qnetd;
    std::copy_if(missing.begin(), missing.end(), std::back_inserter(missing_qnetd), is_qnetd_tls_secret);
    if (!missing_qnetd.empty() && !kept_qnetd.empty()) {
        throw Error(
            Errc::invalid_input,
            cluster.secrets_path().string() + ": it holds " + join(kept_qnetd, ", ") + " but not " +
                join(missing_qnetd, ", ") +
                ", and they come from one CA whose key is not kept: remove every qnetd-* secret from it and "
                "run init again (the members rebuild their qnetd and qdevice databases at their next start)");
    }
    std::optional<QnetdTlsMaterial> qnetd_tls;
    if (!missing_qnetd.empty()) {
        qnetd_tls = make_qnetd_tls(cluster.name);
    }
    std::vector<std::pair<std::string, std::string>> made;
    for (const auto& name : missing) {
        made.emplace_back(
            name,
            is_qnetd_tls_secret(name) ? qnetd_tls_secret(*qnetd_tls, name)
                                      : random_secret(name == "corosync-authkey" ? 256 : 32));
    }
    return made;
}

std::string render_secrets_file(
    const std::string& cluster_name, const std::vector<std::pair<std::string, std::string>>& entries) {
    YAML::Emitter out;
    out << YAML::BeginMap;
    for (const auto& [name, value] : entries) {
        out << YAML::Key << name << YAML::Value;
        if (value.find('\n') != std::string::npos) {
            out << YAML::Literal;  // PEM
        }
        out << value;
    }
    out << YAML::EndMap;
    return "# Shared secrets of cluster " + cluster_name + " (stormctl cluster init). Keep it 0600.\n" +
           std::string(out.c_str()) + "\n";
}

}  // namespace

SecretsUpdate write_new_cluster(
    const std::filesystem::path& cluster_yaml, Cluster cluster, const Catalog& catalog) {
    if (cluster.secrets.empty()) {
        cluster.secrets = cluster_yaml.stem().string() + ".secrets.yaml";
    }
    cluster.file = cluster_yaml.string();
    // Checked as a reader will read it, before anything is written.
    const std::string text = render_cluster_file(cluster);
    Diagnostics diags(cluster_yaml.string());
    if (const auto doc = load_yaml_string(text, diags)) {
        (void)parse_cluster(*doc, &catalog, diags);
    }
    throw_if_errors(diags, cluster_yaml.string());

    const auto secrets_path = cluster.secrets_path();
    std::error_code ec;
    SecretsUpdate update;
    update.created = !std::filesystem::exists(secrets_path, ec);
    const auto existing = update.created ? std::vector<std::pair<std::string, std::string>>()
                                         : read_secret_entries(secrets_path);
    std::vector<std::string> missing;
    for (const auto& name : needed_secrets(cluster, catalog)) {
        const bool present = std::any_of(
            existing.begin(), existing.end(), [&](const auto& entry) { return entry.first == name; });
        if (!present) {
            missing.push_back(name);
        }
    }
    if (update.created || !missing.empty()) {
        auto entries = existing;  // kept as they are, in their order; the new ones after them
        for (auto& entry : make_secrets(missing, existing, cluster)) {
            entries.push_back(std::move(entry));
        }
        const std::string secrets_text = render_secrets_file(cluster.name, entries);
        // Never a file that changed a secret: read back as storm-roled will, before it replaces the old one.
        Diagnostics check(secrets_path.string());
        const auto doc = load_yaml_string(secrets_text, check);
        for (const auto& [name, value] : entries) {
            const YAML::Node read = doc ? value_of(*doc, name.c_str()) : YAML::Node();
            if (!read || !read.IsScalar() || read.Scalar() != value) {
                throw Error(
                    Errc::io,
                    secrets_path.string() + ": secret '" + name + "' would not read back as written");
            }
        }
        std::filesystem::create_directories(
            secrets_path.parent_path().empty() ? "." : secrets_path.parent_path());
        write_file_atomic(secrets_path, secrets_text, 0600);
        update.added = std::move(missing);
    }
    write_file_atomic(cluster_yaml, text, 0644);
    return update;
}

}  // namespace stormnode::roles
