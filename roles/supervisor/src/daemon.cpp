#include "stormnode/supervisor/daemon.hpp"

#include <stormnode/catalog/catalog.hpp>
#include <stormnode/cluster/quorum_guard.hpp>
#include <stormnode/common/error.hpp>
#include <stormnode/common/log.hpp>
#include <stormnode/common/subprocess.hpp>
#include <stormnode/common/temp_dir.hpp>
#include <stormnode/galera/start.hpp>
#include <stormnode/node_client/message_ids.hpp>
#include <stormnode/pacemaker/start.hpp>
#include <stormnode/qnetd/nssdb.hpp>
#include <stormnode/supervisor/transaction.hpp>
#include <stormnode/zabbix/start.hpp>

#include <signal.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <set>
#include <sstream>

namespace stormnode::roles {

struct CatalogHolder {
    Catalog catalog;
};

namespace {

// Loads the roles' kernel settings now (forwarding for the network role, non-local binds for lb). A
// setting the kernel refuses (a container's read-only /proc/sys) is logged; the role's own checks see
// what it breaks.
void load_sysctl_files(const std::vector<std::filesystem::path>& files) {
    for (const auto& file : files) {
        const auto r = run({.argv = {"sysctl", "--quiet", "--load=" + file.string()}});
        if (!r.ok()) {
            log::warning(
                "sysctl could not load " + file.string() + ": " + r.err,
                {{"STORMNODE_CONFIG", file.string()}});
        }
    }
}

// A step that holds the event loop for long (a former PostgreSQL primary's rejoin: pg_rewind, or a
// base backup of the whole database): systemd's start timeout and watchdog would kill storm-roled in the
// middle of it, so both are stretched to the step's bound, and the watchdog goes back to the unit's after.
class LongStep {
public:
    explicit LongStep(std::chrono::minutes bound) {
        std::uint64_t usec = 0;
        unit_watchdog_usec_ = sd_watchdog_enabled(0, &usec) > 0 ? usec : 0;
        const auto bound_usec = static_cast<unsigned long long>(
            std::chrono::duration_cast<std::chrono::microseconds>(bound).count());
        (void)sd_notifyf(0, "EXTEND_TIMEOUT_USEC=%llu", bound_usec);
        if (unit_watchdog_usec_ != 0) {
            (void)sd_notifyf(0, "WATCHDOG=1\nWATCHDOG_USEC=%llu", bound_usec);
        }
    }
    LongStep(const LongStep&) = delete;
    LongStep& operator=(const LongStep&) = delete;
    LongStep(LongStep&&) = delete;
    LongStep& operator=(LongStep&&) = delete;
    ~LongStep() {
        if (unit_watchdog_usec_ != 0) {
            (void)sd_notifyf(
                0, "WATCHDOG=1\nWATCHDOG_USEC=%llu", static_cast<unsigned long long>(unit_watchdog_usec_));
        }
    }

private:
    std::uint64_t unit_watchdog_usec_ = 0;
};

bool plan_has_unit(const Plan& plan, const std::string& name) {
    return std::any_of(
        plan.body.units.begin(), plan.body.units.end(), [&](const Unit& unit) { return unit.name == name; });
}

// The engines' work before their units start, each logged once (what they decided and why).
void prepare_galera(const NodeConfig& node, const std::filesystem::path& root) {
    if (const auto decision = prepare_galera_start(node, root, std::chrono::milliseconds(1500))) {
        log::info(
            std::string("galera: ") + (decision->start == GaleraStart::new_cluster ? "new cluster" : "join") +
                ": " + decision->reason,
            {{"STORMNODE_CLUSTER", node.cluster_model->name}});
    }
}

void prepare_pacemaker(const NodeConfig& node, const std::filesystem::path& root) {
    const LongStep rejoin_bound(kPostgresRejoinBound);  // a PostgreSQL rejoin may copy the whole database
    if (const auto start = prepare_pacemaker_start(node, root)) {
        log::info(
            std::string("pacemaker: ") + (start->configuring ? "configuring member: " : "member: ") +
                start->summary,
            {{"STORMNODE_CLUSTER", node.cluster_model->name}});
        if (const auto& rejoin = start->rejoin) {
            const bool rejoined = rejoin->method != RejoinMethod::none;
            const std::string took = std::to_string(rejoin->took.count());
            log::write(
                rejoined ? LOG_NOTICE : LOG_INFO,
                "postgresql: " + rejoin->decision.reason +
                    (rejoin->details.empty() ? std::string() : ": " + rejoin->details) +
                    (rejoined ? " (" + took + " ms)" : std::string()),
                {{"STORMNODE_CLUSTER", node.cluster_model->name},
                 {"STORMNODE_PG_REJOIN", std::string(to_string(rejoin->method))},
                 {"STORMNODE_PG_SOURCE", rejoin->decision.source ? rejoin->decision.source->hostname : ""},
                 {"STORMNODE_PG_REJOIN_MS", took}},
                std::source_location::current());
        }
    }
}

void prepare_qnetd(const NodeConfig& node, const std::filesystem::path& root) {
    if (const auto done = prepare_qnetd_start(node, root)) {
        log::info("quorum: " + *done, {{"STORMNODE_CLUSTER", node.cluster_model->name}});
    }
}

void prepare_monitor(const NodeConfig& node, const std::filesystem::path& root) {
    if (const auto start = prepare_monitor_start(node, root)) {
        log::info("monitor: " + *start, {{"STORMNODE_CLUSTER", node.cluster_model->name}});
    }
}

// "db:galera,quorum", for messages and journal fields.
std::string joined(const std::vector<RoleSpec>& roles) {
    return to_string(roles, ",");
}

struct SavedState {
    std::vector<RoleSpec> roles;
    std::vector<RoleSpec> config_roles;
    std::map<std::string, std::string> invocations;
};

// The defaults that depend on other options.
DaemonOptions completed(DaemonOptions options) {
    if (options.cluster.empty()) {
        options.cluster = options.config.parent_path() / "cluster.yaml";
    }
    if (options.catalog_dir.empty()) {
        options.catalog_dir = default_catalog_dir();
    }
    if (options.templates_dir.empty()) {
        options.templates_dir = options.catalog_dir / "templates";
    }
    return options;
}

// The state file is ours alone: a damaged one is ignored (node.yaml stays the source of truth).
SavedState read_state(const std::filesystem::path& file) {
    SavedState saved;
    std::error_code ec;
    if (!std::filesystem::exists(file, ec)) {
        return saved;
    }
    try {
        const YAML::Node doc = YAML::LoadFile(file.string());
        if (doc["roles"]) {
            saved.roles = parse_role_specs(doc["roles"].as<std::vector<std::string>>());
        }
        if (doc["config_roles"]) {
            saved.config_roles = parse_role_specs(doc["config_roles"].as<std::vector<std::string>>());
        }
        if (doc["units"]) {
            saved.invocations = doc["units"].as<std::map<std::string, std::string>>();
        }
    } catch (const YAML::Exception&) {
        return SavedState{};
    } catch (const Error&) {
        return SavedState{};
    }
    return saved;
}

}  // namespace

NodeService::Image booted_image() {
    NodeService::Image image;
    std::error_code ec;
    if (!std::filesystem::exists("/run/ostree-booted", ec)) {
        return image;
    }
    Command command{{"ostree", "admin", "status"}};
    command.timeout = std::chrono::seconds(10);
    const auto result = run(command);
    if (!result.ok()) {
        return image;
    }
    // "* stormnode 3f2a...c1.0\n    Version: 2024.3\n    origin refspec: ..."
    std::istringstream lines(result.out);
    std::string line;
    bool booted = false;
    while (std::getline(lines, line)) {
        if (line.rfind("* ", 0) == 0) {
            std::istringstream words(line.substr(2));
            std::string osname;
            std::string deployment;
            words >> osname >> deployment;
            image.commit = deployment.substr(0, deployment.rfind('.'));
            booted = true;
        } else if (booted && line.find("Version: ") != std::string::npos) {
            image.version = line.substr(line.find("Version: ") + 9);
            break;
        } else if (booted && line.rfind("  ", 0) != 0) {
            break;
        }
    }
    return image;
}

DaemonInputs load_daemon_inputs(const DaemonOptions& options) {
    const DaemonOptions complete = completed(options);
    DaemonInputs inputs{load_valid_catalog(complete.catalog_dir), {}};
    std::error_code ec;
    if (std::filesystem::exists(complete.config, ec)) {
        inputs.node = load_node_config(complete.config, complete.cluster, &inputs.catalog);
    }
    return inputs;
}

Daemon::Daemon(sd_event* event, sd_bus* bus, DaemonOptions options)
    : Daemon(event, bus, options, load_daemon_inputs(options)) {}

Daemon::Daemon(sd_event* event, sd_bus* bus, DaemonOptions options, DaemonInputs inputs)
    : bus_(bus),
      options_(completed(std::move(options))),
      node_(std::move(inputs.node)),
      clock_(event),
      systemd_(bus),
      prober_(event) {
    catalog_ = std::make_unique<CatalogHolder>(CatalogHolder{std::move(inputs.catalog)});
    config_roles_ = node_.roles;
    hostname_ = node_.hostname;
    if (hostname_.empty()) {
        std::array<char, 256> name{};
        if (gethostname(name.data(), name.size() - 1) == 0) {
            hostname_ = name.data();
        }
    }
    options_.supervisor.state_dir = options_.state_dir;

    auto renderer = [this](const Plan& plan) {
        render_config(plan.body.config, node_, plan.roles, options_.templates_dir, options_.config_root);
        if (options_.config_root == "/") {  // a test's temporary root says nothing about this kernel
            load_sysctl_files(sysctl_files(plan.body.config, options_.config_root));
        }
        if (plan_has_unit(plan, "mariadb.service")) {
            prepare_galera(node_, options_.config_root);
        }
        pacemaker_in_plan_ = plan_has_unit(plan, "pacemaker.service");
        pacemaker_configured_ = false;
        if (pacemaker_in_plan_) {
            prepare_pacemaker(node_, options_.config_root);
        }
        if (plan_has_unit(plan, "corosync-qnetd.service")) {
            prepare_qnetd(node_, options_.config_root);
        }
        if (plan_has_unit(plan, "zabbix-server.service")) {
            prepare_monitor(node_, options_.config_root);
        }
    };
    supervisor_ =
        std::make_unique<Supervisor>(systemd_, prober_, clock_, options_.supervisor, renderer, this);
    service_ = std::make_unique<NodeService>(
        bus_,
        *supervisor_,
        [this](const std::vector<RoleSpec>& roles) {
            check_roles(roles);
            return make_plan(roles);
        },
        booted_image(),
        [this](const std::vector<RoleSpec>& old_roles, const std::vector<RoleSpec>& new_roles, bool force) {
            check_quorum(old_roles, new_roles, force);
        });
}

Daemon::~Daemon() = default;

void Daemon::check_roles(const std::vector<RoleSpec>& roles) const {
    Diagnostics diags("roles " + joined(roles));
    validate_role_specs(catalog_->catalog, roles, diags);
    throw_if_errors(diags, "roles " + joined(roles));
}

Plan Daemon::make_plan(const std::vector<RoleSpec>& roles) const {
    const auto& catalog = catalog_->catalog;
    Plan plan;
    plan.roles = roles;
    plan.body = resolve_combination(catalog, roles).body;
    for (const auto& role : roles) {
        for (const auto& unit : resolve(catalog, role.name, role.variant).body.units) {
            plan.role_units[role].push_back(unit.name);
        }
    }
    plan.features = node_.features;
    // host: mgmt_address names the address a service listens on when its template binds it to the
    // management network only (MariaDB's bind-address, garbd, qnetd): 127.0.0.1 would be refused.
    const auto mgmt = node_.variables.find("mgmt_address");
    for (auto& unit : plan.body.units) {
        for (auto& check : unit.checks) {
            if (check.host == kMgmtAddressHost) {
                check.host =
                    mgmt != node_.variables.end() && !mgmt->second.empty() ? mgmt->second : "127.0.0.1";
            }
        }
    }
    return plan;
}

void Daemon::check_quorum(
    const std::vector<RoleSpec>& old_roles, const std::vector<RoleSpec>& new_roles, bool force) const {
    std::set<std::string> quorum_roles;
    for (const auto& [name, role] : catalog_->catalog.roles) {
        if (role.kind == RoleKind::role && role.cluster.quorum_member) {
            quorum_roles.insert(name);
        }
    }
    std::optional<std::string> refusal;
    try {
        const auto cluster = load_optional_cluster(options_.cluster, &catalog_->catalog);
        refusal =
            quorum_refusal(quorum_roles, cluster ? &*cluster : nullptr, hostname_, old_roles, new_roles);
    } catch (const std::exception& e) {
        // Without a readable members list nothing proves the cluster keeps quorum.
        for (const auto& role : old_roles) {
            if (quorum_roles.contains(role.name) &&
                std::find(new_roles.begin(), new_roles.end(), role) == new_roles.end()) {
                refusal =
                    "leaving " + to_string(role) + ": cannot read the cluster's members: " + describe(e);
                break;
            }
        }
    }
    if (!refusal) {
        return;
    }
    if (force) {
        log::warning(
            "quorum guard overridden by force: " + *refusal,
            {{"STORMNODE_ROLE", joined(new_roles)}, {"STORMNODE_OLD_ROLE", joined(old_roles)}});
        return;
    }
    throw Error(Errc::refused, *refusal + " (force overrides)");
}

void Daemon::configure_pacemaker_when_ready() {
    if (pacemaker_configured_ || pacemaker_retry_ || !pacemaker_in_plan_) {
        return;
    }
    try {
        if (const auto done = configure_pacemaker(node_, options_.config_root)) {
            log::notice(
                "pacemaker: " + (done->empty() ? std::string("resources already in the CIB") : *done),
                {{"STORMNODE_CLUSTER", node_.cluster_model->name}});
        }
        pacemaker_configured_ = true;
    } catch (const std::exception& e) {
        // Not yet taken in by the DC is the usual first answer (the first DC is elected after
        // dc-deadtime): not a problem, and looked at again sooner.
        const auto* error = dynamic_cast<const Error*>(&e);
        const bool waiting = error != nullptr && error->code() == Errc::timeout;
        const auto retry = std::chrono::seconds(waiting ? 2 : 5);
        log::write(
            waiting ? LOG_INFO : LOG_WARNING,
            "pacemaker: " + describe(e) + "; retrying in " + std::to_string(retry.count()) + " s",
            {},
            std::source_location::current());
        pacemaker_retry_ = clock_.after(retry, [this] {
            pacemaker_retry_.reset();
            if (supervisor_->state() == RoleState::healthy || supervisor_->state() == RoleState::degraded) {
                configure_pacemaker_when_ready();
            }
        });
    }
}

void Daemon::start() {
    const TransactionLog transactions(options_.state_dir);
    std::optional<SwitchRecord> interrupted;
    try {
        interrupted = transactions.unfinished();
    } catch (const std::exception& e) {
        log::warning("ignoring the role switch record: " + describe(e));
    }
    if (interrupted) {
        check_r(
            sd_bus_request_name(bus_, kNodeBusName, 0), std::string("owning ") + kNodeBusName, Errc::dbus);
        // The new roles never proved healthy: go back to the old ones.
        log::warning(
            "the role switch " + joined(interrupted->old_roles) + " -> " + joined(interrupted->new_roles) +
                " was interrupted (phase " + interrupted->phase + "); rolling back to " +
                (interrupted->old_roles.empty() ? std::string("no roles") : joined(interrupted->old_roles)),
            {{"STORMNODE_ROLE", joined(interrupted->new_roles)},
             {"STORMNODE_OLD_ROLE", joined(interrupted->old_roles)}});
        previous_invocations_ = read_state(options_.state_dir / "state.yaml").invocations;
        Plan new_plan;
        try {
            check_roles(interrupted->new_roles);
            new_plan = make_plan(interrupted->new_roles);
        } catch (const std::exception& e) {
            log::warning("cannot tell which units the new roles started: " + describe(e));
        }
        Plan old_plan;
        if (!interrupted->old_roles.empty()) {
            check_roles(interrupted->old_roles);
            old_plan = make_plan(interrupted->old_roles);
        }
        supervisor_->recover(*interrupted, std::move(old_plan), new_plan);
        return;
    }
    const auto saved = read_state(options_.state_dir / "state.yaml");
    previous_invocations_ = saved.invocations;
    // A switch over D-Bus outlives node.yaml only while node.yaml still says what it said then.
    std::vector<RoleSpec> roles = node_.roles;  // checked when node.yaml was read
    const bool switched_over_dbus = !saved.roles.empty() && saved.config_roles == node_.roles;
    if (switched_over_dbus) {
        roles = saved.roles;
        check_roles(roles);
    }
    check_r(sd_bus_request_name(bus_, kNodeBusName, 0), std::string("owning ") + kNodeBusName, Errc::dbus);
    if (roles.empty()) {
        log::notice("no roles configured; waiting for SetRoles");
        return;
    }
    supervisor_->apply(make_plan(roles));
}

std::string Daemon::status_line() const {
    std::string line = std::string(to_string(supervisor_->state()));
    if (!supervisor_->roles().empty()) {
        line += ": " + joined(supervisor_->roles());
    }
    if (!supervisor_->reason().empty()) {
        line += " (" + supervisor_->reason() + ")";
    }
    return line;
}

void Daemon::write_state() const {
    YAML::Emitter out;
    out << YAML::BeginMap;
    out << YAML::Key << "roles" << YAML::Value << YAML::Flow << to_strings(supervisor_->roles());
    out << YAML::Key << "config_roles" << YAML::Value << YAML::Flow << to_strings(config_roles_);
    out << YAML::Key << "state" << YAML::Value << std::string(to_string(supervisor_->state()));
    out << YAML::Key << "units" << YAML::Value << YAML::BeginMap;
    for (const auto& [unit, invocation] : supervisor_->invocation_ids()) {
        out << YAML::Key << unit << YAML::Value << invocation;
    }
    out << YAML::EndMap << YAML::EndMap;
    try {
        std::filesystem::create_directories(options_.state_dir);
        write_file_atomic(options_.state_dir / "state.yaml", std::string(out.c_str()) + "\n", 0644);
    } catch (const std::exception& e) {
        log::warning("cannot save state: " + describe(e));
    }
}

void Daemon::state_changed(RoleState state, const std::string& reason) {
    const std::string roles = joined(supervisor_->roles());
    switch (state) {
        case RoleState::starting:
            log::info(
                "starting roles " + roles,
                {{"MESSAGE_ID", std::string(message_id::kRoleStarting)}, {"STORMNODE_ROLE", roles}});
            break;
        case RoleState::healthy:
            log::notice(
                "roles " + roles + " healthy",
                {{"MESSAGE_ID", std::string(message_id::kRoleHealthy)}, {"STORMNODE_ROLE", roles}});
            break;
        case RoleState::degraded:
        case RoleState::failed: {
            // log::write takes an initializer_list: one call with STORMNODE_UNIT, one without.
            const bool failed = state == RoleState::failed;
            const std::string text = "roles " + roles + (failed ? " failed: " : " degraded: ") + reason;
            const int priority = failed ? LOG_ERR : LOG_WARNING;
            const std::string id(failed ? message_id::kRoleFailed : message_id::kRoleDegraded);
            const std::string& unit = supervisor_->reason_unit();
            if (unit.empty()) {
                log::write(
                    priority,
                    text,
                    {{"MESSAGE_ID", id}, {"STORMNODE_ROLE", roles}, {"STORMNODE_REASON", reason}},
                    std::source_location::current());
            } else {
                log::write(
                    priority,
                    text,
                    {{"MESSAGE_ID", id},
                     {"STORMNODE_ROLE", roles},
                     {"STORMNODE_UNIT", unit},
                     {"STORMNODE_REASON", reason}},
                    std::source_location::current());
            }
            break;
        }
        case RoleState::stopped:
            log::info("no roles running", {{"STORMNODE_ROLE", roles}});
            break;
    }
    (void)sd_notifyf(0, "STATUS=%s", status_line().c_str());
    write_state();
    service_->state_changed();
    if (state == RoleState::healthy || state == RoleState::degraded) {
        configure_pacemaker_when_ready();
    }
}

void Daemon::units_changed() {
    service_->units_changed();
}

void Daemon::unit_event(const std::string& unit, std::string_view what, const std::string& detail) {
    const std::string roles = joined(supervisor_->roles());
    const std::string text = std::string(what);
    if (what == "adopted") {
        const auto it = previous_invocations_.find(unit);
        const bool same = it != previous_invocations_.end() && it->second == detail;
        log::info(
            unit + " adopted, running since before storm-roled started" +
                (same ? " (InvocationID unchanged)" : ""),
            {{"STORMNODE_ROLE", roles}, {"STORMNODE_UNIT", unit}, {"STORMNODE_INVOCATION_ID", detail}});
        write_state();
    } else if (what == "started") {
        log::info(
            unit + " started",
            {{"STORMNODE_ROLE", roles}, {"STORMNODE_UNIT", unit}, {"STORMNODE_INVOCATION_ID", detail}});
        write_state();
    } else if (what == "restarting") {
        log::notice(
            unit + " restarting " + detail,
            {{"MESSAGE_ID", std::string(message_id::kUnitRestarted)},
             {"STORMNODE_ROLE", roles},
             {"STORMNODE_UNIT", unit}});
    } else if (
        what == "died" || what == "gave-up" || what == "check-failing" || what == "stop-failed" ||
        what == "restart-held") {
        log::warning(
            unit + " " + text + ": " + detail, {{"STORMNODE_ROLE", roles}, {"STORMNODE_UNIT", unit}});
    } else {
        log::info(
            unit + " " + text + (detail.empty() ? "" : ": " + detail),
            {{"STORMNODE_ROLE", roles}, {"STORMNODE_UNIT", unit}});
    }
}

void Daemon::switched(
    const std::vector<RoleSpec>& old_roles,
    const std::vector<RoleSpec>& new_roles,
    const std::string& outcome) {
    log::notice(
        "role switch " + joined(old_roles) + " -> " + joined(new_roles) + ": " + outcome,
        {{"MESSAGE_ID", std::string(message_id::kRoleSwitched)},
         {"STORMNODE_ROLE", joined(new_roles)},
         {"STORMNODE_OLD_ROLE", joined(old_roles)},
         {"STORMNODE_OUTCOME", outcome}});
    write_state();
    service_->roles_switched(old_roles, new_roles, outcome);
}

void Daemon::problem(const std::string& what) {
    log::warning(what, {{"STORMNODE_ROLE", joined(supervisor_->roles())}});
}

int run_daemon(const DaemonOptions& options) {
    log::set_identifier("storm-roled");
    try {
        sigset_t mask;
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        check_errno(sigprocmask(SIG_BLOCK, &mask, nullptr), "blocking signals");
        EventLoop event;
        check_r(sd_event_default(out(event)), "creating the event loop");
        // No handler: SIGTERM and SIGINT end the loop. Units keep running; the next start adopts them.
        check_r(sd_event_add_signal(event.get(), nullptr, SIGTERM, nullptr, nullptr), "SIGTERM");
        check_r(sd_event_add_signal(event.get(), nullptr, SIGINT, nullptr, nullptr), "SIGINT");
        check_r(sd_event_set_watchdog(event.get(), 1), "watchdog");  // WATCHDOG=1 when WatchdogSec= is set
        set_callback_error_handler([](const std::string& what) { log::error("internal error: " + what); });

        // Bad input is reported before anything else happens: the catalog, node.yaml (read once, here)
        // and cluster.yaml, before the bus is opened.
        auto inputs = load_daemon_inputs(options);
        auto bus = open_bus(options.bus, event.get());
        Daemon daemon(event.get(), bus.get(), options, std::move(inputs));
        daemon.start();
        (void)sd_notifyf(0, "READY=1\nSTATUS=%s", daemon.status_line().c_str());
        check_r(sd_event_loop(event.get()), "running the event loop");
        (void)sd_notify(0, "STOPPING=1");
        return 0;
    } catch (const Error& e) {
        log::error(describe(e));
        return e.code() == Errc::invalid_input ? 2 : 1;
    } catch (const std::exception& e) {
        log::error(describe(e));
        return 1;
    }
}

}  // namespace stormnode::roles
