// storm-console's worker side: the node seam (NodeBackend: storm-roled over D-Bus, PAM, systemd-networkd,
// journalctl, stormctl os rollback), the pure logic that turns a command and storm-roled's signals into a
// result (CommandRunner), and the worker thread that owns the bus and posts events to the UI thread
// through an eventfd the newt loop watches. Only the UI thread calls newt; only the worker calls sd-bus.
#pragma once

#include "stormnode/console/console_flow.hpp"

#include <stormnode/common/c_handle.hpp>

#include <atomic>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <variant>
#include <vector>

namespace stormnode::firstboot {

// What the console does to the node. The real one is make_node_backend(); tests use a fake.
class NodeBackend {
public:
    NodeBackend() = default;
    NodeBackend(const NodeBackend&) = delete;
    NodeBackend& operator=(const NodeBackend&) = delete;
    NodeBackend(NodeBackend&&) = delete;
    NodeBackend& operator=(NodeBackend&&) = delete;
    virtual ~NodeBackend() = default;

    // False for a wrong password (after the failure delay); throws only when the check cannot run.
    virtual bool authenticate(const std::string& password) = 0;
    // Never throws: what cannot be read is said in the view (connected=false, connect_error).
    virtual NodeView read_status() = 0;
    // Calls SetRoles and returns once storm-roled accepted it (the outcome comes as RoleSwitched).
    // Throws DbusError (Errc::refused for the quorum guard) when it is not accepted.
    virtual void set_roles(const std::vector<roles::RoleSpec>& roles, bool force) = 0;
    virtual void restart_role(const roles::RoleSpec& role) = 0;
    virtual std::vector<std::string> journal(const std::string& unit) = 0;
    virtual void apply_network(const NetworkCommand& network) = 0;
    // Throws Error(not_found) when this image has no `stormctl os rollback`.
    virtual void os_rollback() = 0;
    virtual void reboot() = 0;
    virtual void power_off() = 0;
};

struct BackendOptions {
    std::filesystem::path root = "/";  // where the node's files are (/var/lib/stormnode, /etc/stormnode)
    std::filesystem::path catalog_dir;
    std::string pam_service = "storm-console";
    std::string pam_user = "root";
    std::filesystem::path pam_confdir;  // empty: /etc/pam.d
    std::string stormctl = "stormctl";
};
// The real node: sd-bus (its own connection; call from the worker thread only), PAM, networkd files.
std::unique_ptr<NodeBackend> make_node_backend(const BackendOptions& options, const roles::Catalog& catalog);

// Checks user's password with PAM service `service` (pam_start_confdir when confdir is set). Blocks for
// the failure delay the PAM stack asks for (pam_faildelay) on a wrong password.
bool pam_check_password(
    const std::string& service,
    const std::string& user,
    const std::string& password,
    const std::filesystem::path& confdir);

// Runs one command at a time on the backend. A switch is asynchronous: start() returns nullopt and the
// result comes from switched() (storm-roled's RoleSwitched) or daemon_gone().
class CommandRunner {
public:
    explicit CommandRunner(NodeBackend& backend) : backend_(backend) {}

    std::optional<CommandResult> start(const ConsoleCommand& command);
    // A fresh status while a switch runs: remembers why the new roles did not come up.
    void status(const NodeView& node);
    std::optional<CommandResult> switched(
        const std::vector<roles::RoleSpec>& old_roles,
        const std::vector<roles::RoleSpec>& new_roles,
        const std::string& outcome);
    std::optional<CommandResult> daemon_gone();
    [[nodiscard]] bool waiting() const noexcept { return switching_.has_value(); }

private:
    NodeBackend& backend_;
    std::optional<std::vector<roles::RoleSpec>> switching_;
    std::string why_;  // the last reason seen while switching
    bool why_failed_ = false;
};

using WorkerEvent = std::variant<NodeView, CommandResult>;

// The worker thread. Owns the bus connection that watches storm-roled (PropertiesChanged, StateChanged,
// RoleSwitched, NameOwnerChanged) and the backend; re-reads the status on each signal.
class ConsoleWorker {
public:
    // bus_address empty: the system bus ($DBUS_SYSTEM_BUS_ADDRESS).
    ConsoleWorker(std::unique_ptr<NodeBackend> backend, std::string bus_address);
    ConsoleWorker(const ConsoleWorker&) = delete;
    ConsoleWorker& operator=(const ConsoleWorker&) = delete;
    ConsoleWorker(ConsoleWorker&&) = delete;
    ConsoleWorker& operator=(ConsoleWorker&&) = delete;
    ~ConsoleWorker();  // stops and joins the thread

    // From the UI thread.
    void post(ConsoleCommand command);
    // Readable when events wait (the UI watches it with newtFormWatchFd).
    [[nodiscard]] int event_fd() const noexcept { return events_fd_.get(); }
    std::vector<WorkerEvent> take_events();
    // The thread ended on an error (the bus went away): the console exits and systemd restarts it.
    [[nodiscard]] bool stopped() const noexcept { return stopped_; }
    // Why it stopped (set before stopped() turns true, so never empty once it has).
    [[nodiscard]] std::string stop_reason();

private:
    void run() noexcept;
    void loop();
    void emit(WorkerEvent event);

    std::unique_ptr<NodeBackend> backend_;
    std::string bus_address_;
    UniqueFd events_fd_;
    UniqueFd commands_fd_;
    UniqueFd stop_fd_;
    std::mutex mutex_;
    std::vector<WorkerEvent> events_;
    std::vector<ConsoleCommand> commands_;
    std::string stop_reason_;
    std::atomic<bool> stopped_ = false;
    std::thread thread_;
};

}  // namespace stormnode::firstboot
