// The role catalog: what each role of a node installs, starts, checks and needs from its cluster.
// Loaded from roles/catalog/*.yaml (installed as /usr/share/stormnode/roles/); see roles/catalog/README.md.
#pragma once

#include <stormnode/catalog/role_spec.hpp>
#include <stormnode/common/yaml_diagnostics.hpp>

#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace stormnode::roles {

enum class CheckKind { unit, tcp, http, exec, amqp_peer };

// A check's host that storm-roled replaces with node.yaml's variables.mgmt_address (127.0.0.1 when the
// node has none): for services whose templates bind them to the management address only.
inline constexpr const char* kMgmtAddressHost = "mgmt_address";

struct Check {
    CheckKind kind = CheckKind::unit;
    std::string host = "127.0.0.1";       // tcp, http; kMgmtAddressHost: the node's mgmt_address
    int port = 0;                         // tcp, http, amqp_peer (default 5672)
    std::string path = "/";               // http
    std::vector<int> expect_status{200};  // http: any of these
    std::vector<std::string> argv;        // exec
    std::chrono::milliseconds interval{10000};
    std::chrono::milliseconds timeout{5000};
    // on_failure: degrade. Its failure marks the role degraded and never restarts the unit, nor holds
    // back the next tier: the state of a cluster (a Galera member gone), not of this node's service.
    bool degrade_only = false;
    // on_failure: hold (implies degrade_only). While it fails, no check restarts the unit: the engine
    // itself says a restart cannot help (a Galera node outside a Primary component must wait for the
    // component to come back, or for an operator). Only an exec check exiting with status 1 holds; one
    // that cannot run, is killed or times out does not. The unit dying is still restarted.
    bool holds_restarts = false;

    bool operator==(const Check&) const = default;
};

enum class UnitOwner {
    supervisor,  // storm-roled enables, starts, checks and restarts it
    pacemaker,   // Pacemaker runs it; storm-roled only watches
};

struct Unit {
    std::string name;           // exact systemd unit name, with suffix: "neutron-api.service"
    std::string package;        // the Debian package that ships the unit file
    std::vector<Check> checks;  // a unit check (ActiveState == active) is always implied
    UnitOwner owner = UnitOwner::supervisor;
    std::string feature;  // non-empty: only when the node enables this optional feature
    Diagnostic where;     // for later diagnostics
};

struct ConfigFile {
    std::string path;           // where it is rendered on the node
    std::string template_name;  // under roles/catalog/templates/ ; empty: left as the package ships it
    std::string mode = "0644";
    Diagnostic where;
};

// Per-node material that must never be baked into the image: generated at first boot.
struct NodeState {
    std::string path;
    std::string generator;  // one of known_generators()
    std::string owner = "root";
    std::string mode = "0600";
    Diagnostic where;
};

struct ClusterNeeds {
    std::string peers;  // role whose members form this role's cluster ("" = none)
    int min_members = 1;
    int recommended_members = 1;
    std::vector<std::string> depends_on;      // other roles this one needs somewhere in the cluster
    std::vector<std::string> shared_secrets;  // every member of the role needs them
    // variants.<name>.cluster.shared_secrets: only the members carrying that variant need them (db's
    // Galera and PostgreSQL pairs share no secret).
    std::map<std::string, std::vector<std::string>> variant_secrets;
    bool quorum_member = false;  // leaving the cluster can cost quorum: guard role switches
};

// The parts a variant may replace or extend.
struct RoleBody {
    std::vector<std::string> packages;
    std::vector<Unit> units;
    std::vector<std::vector<std::string>> tiers;  // start order; every tier is gated on the previous one
    std::vector<std::string> required;            // healthy_when.required
    std::vector<std::string> degraded_if_down;    // healthy_when.degraded_if_down
    std::vector<ConfigFile> config;
    std::vector<NodeState> node_state;
    std::vector<std::string> keep_disabled;  // units the packages ship that must stay off on this role
};

enum class RoleKind { role, common, mixin };

struct Role {
    std::string name;
    RoleKind kind = RoleKind::role;
    std::string description;
    std::vector<std::string> mixins;
    RoleBody body;
    std::map<std::string, RoleBody> variants;  // e.g. db: galera, active-passive
    std::string default_variant;
    ClusterNeeds cluster;
    std::vector<std::string> conflicts;        // Debian packages that cannot share a node with this role
    std::vector<std::string> conflicts_roles;  // roles that cannot share a node with this one
    // kind: mixin with standalone: true: a node may also carry it as a role of its own (lb: a load
    // balancer node in front of the db role, where no controller folds it in).
    bool standalone = false;
    std::string file;  // the YAML file it came from
    Diagnostic where;  // its `name:` (or the document when that is missing)
    // Where each name in the lists above was written, for diagnostics found after loading. Keyed by
    // its path in the file: "mixins[0]", "conflicts[1]", "conflicts_roles[0]", "default_variant",
    // "cluster.peers", "cluster.depends_on[2]", "tiers[1][0]", "healthy_when.required[0]",
    // "keep_disabled[0]", and the same body keys under "variants.<name>." ("variants.galera.tiers[0][1]").
    std::map<std::string, Diagnostic> locations;

    // The location of `path` in locations, or where when it is not recorded.
    [[nodiscard]] Diagnostic at(const std::string& path) const;
    [[nodiscard]] std::vector<std::string> variant_names() const;  // sorted
    // The shared secrets a member carrying variant needs ("": the default variant): the role's and the
    // variant's, in that order.
    [[nodiscard]] std::vector<std::string> shared_secrets(const std::string& variant = {}) const;
    // A node may carry it: a role, or a standalone mixin.
    [[nodiscard]] bool placeable() const noexcept { return kind == RoleKind::role || standalone; }
};

struct Catalog {
    std::map<std::string, Role> roles;  // roles, common and mixins, by name

    [[nodiscard]] const Role* find(const std::string& name) const;
    // kind == role only (no standalone mixins), sorted
    [[nodiscard]] std::vector<std::string> role_names() const;
    // What a node may carry: roles and standalone mixins.
    [[nodiscard]] std::vector<std::string> placeable_names() const;
};

// A role with its variant, mixins and the common layer folded in: what a node actually runs.
struct ResolvedRole {
    std::string name;
    std::string variant;
    RoleBody body;
};

// The names of the generators storm-firstboot implements.
const std::set<std::string>& known_generators();

// Loads every *.yaml in dir (or the given files), reporting all problems; the result is only
// meaningful when diags.ok().
Catalog load_catalog(const std::vector<std::filesystem::path>& paths, Diagnostics& diags);

// Semantic checks across files: names, tiers, mixins, depends_on, cycles, package conflicts, ...
void validate_catalog(const Catalog& catalog, Diagnostics& diags);

// A node's roles are checked against the catalog with validate_role_specs (role_spec.hpp).

// Throws Error(invalid_input) for an unknown role or variant.
ResolvedRole resolve(const Catalog& catalog, const std::string& role, const std::string& variant = {});

// Several roles on one node: units merged so that a shared unit appears once (first tier wins).
// An entry without a variant runs its default one. The common layer's tiers come first, then each
// role's, ordered so that a role comes after the roles of the set it depends_on. Throws
// Error(invalid_input) for an unknown role or variant.
ResolvedRole resolve_combination(const Catalog& catalog, const std::vector<RoleSpec>& roles);

// Loads and validates, throwing Error(invalid_input) with every diagnostic on failure.
Catalog load_valid_catalog(const std::filesystem::path& dir);

// The catalog directory: $STORMNODE_CATALOG_DIR, else the installed one.
std::filesystem::path default_catalog_dir();

std::string_view to_string(CheckKind kind);

}  // namespace stormnode::roles
