// storm-roled: node.yaml + the catalog -> the supervisor, published as org.stormclouds.Node1.
#pragma once

#include <stormnode/cluster/node_config.hpp>
#include <stormnode/supervisor/node_service.hpp>
#include <stormnode/supervisor/sd_event_loop.hpp>
#include <stormnode/supervisor/supervisor.hpp>

#include <filesystem>
#include <memory>
#include <string>

namespace stormnode::roles {

struct DaemonOptions {
    std::filesystem::path config = "/etc/stormnode/node.yaml";
    std::filesystem::path cluster;        // default: cluster.yaml beside config
    std::filesystem::path catalog_dir;    // default: default_catalog_dir()
    std::filesystem::path templates_dir;  // default: templates/ in the catalog directory
    std::filesystem::path state_dir = "/var/lib/stormnode";
    std::filesystem::path config_root = "/";  // where rendered config files go (tests: a temp dir)
    std::string bus = "system";               // system, user, or a D-Bus address
    SupervisorOptions supervisor;
};

// What storm-roled reads when it starts: the catalog, then node.yaml (read once, its roles checked
// against the catalog) and cluster.yaml. Throws Error(invalid_input) naming file:line:col for bad input.
struct DaemonInputs {
    Catalog catalog;
    NodeConfig node;  // empty when node.yaml does not exist (the roles come with SetRoles)
};
DaemonInputs load_daemon_inputs(const DaemonOptions& options);

// Everything of the daemon but its process concerns (signals, sd_notify READY): tests run it on their
// own event loop and bus.
class Daemon final : public SupervisorObserver {
public:
    Daemon(sd_event* event, sd_bus* bus, DaemonOptions options);  // loads its inputs itself
    Daemon(sd_event* event, sd_bus* bus, DaemonOptions options, DaemonInputs inputs);
    Daemon(const Daemon&) = delete;
    Daemon& operator=(const Daemon&) = delete;
    Daemon(Daemon&&) = delete;
    Daemon& operator=(Daemon&&) = delete;
    ~Daemon() override;

    // Requests the bus name and applies the node's roles (adopting units that already run).
    void start();
    [[nodiscard]] Supervisor& supervisor() noexcept { return *supervisor_; }
    [[nodiscard]] std::string status_line() const;

    void state_changed(RoleState state, const std::string& reason) override;
    void units_changed() override;
    void unit_event(const std::string& unit, std::string_view what, const std::string& detail) override;
    void switched(
        const std::vector<RoleSpec>& old_roles,
        const std::vector<RoleSpec>& new_roles,
        const std::string& outcome) override;
    void problem(const std::string& what) override;

private:
    // Roles that did not come from node.yaml (which was checked as it was read): SetRoles and our own
    // records, written by an older catalog perhaps. Throws Error(invalid_input) with every problem.
    void check_roles(const std::vector<RoleSpec>& roles) const;
    [[nodiscard]] Plan make_plan(const std::vector<RoleSpec>& roles) const;
    void write_state() const;
    // The quorum guard over cluster.yaml (read at each switch: membership changes while we run).
    void check_quorum(
        const std::vector<RoleSpec>& old_roles, const std::vector<RoleSpec>& new_roles, bool force) const;
    // The active-passive db pair's configuring member loads Pacemaker's resources once its role is up
    // (corosync's check passing means quorate); a failure is retried (pacemaker may still be electing).
    void configure_pacemaker_when_ready();

    sd_bus* bus_;
    DaemonOptions options_;
    NodeConfig node_;
    std::string hostname_;
    std::vector<RoleSpec> config_roles_;  // node.yaml's roles when the daemon started
    std::map<std::string, std::string> previous_invocations_;
    std::unique_ptr<struct CatalogHolder> catalog_;
    SdEventClock clock_;
    SdBusSystemdManager systemd_;
    SdEventProber prober_;
    std::unique_ptr<Supervisor> supervisor_;
    std::unique_ptr<NodeService> service_;
    bool pacemaker_in_plan_ = false;
    bool pacemaker_configured_ = false;
    std::unique_ptr<Clock::Timer> pacemaker_retry_;
};

// The storm-roled process: its own event loop, SIGTERM/SIGINT, sd_notify (READY, STATUS, WATCHDOG).
// Returns the exit code.
int run_daemon(const DaemonOptions& options);

// The booted OSTree deployment (commit, version), or empty strings on a system that is not OSTree-booted.
NodeService::Image booted_image();

}  // namespace stormnode::roles
