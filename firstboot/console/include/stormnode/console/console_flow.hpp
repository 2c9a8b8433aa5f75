// storm-console's screen flow: a state machine from screen to screen (Next/Back/Cancel on every step) that
// renders each screen as a plain view (title, text, a list, input fields, buttons) and turns the
// operator's choices into commands for the node. Pure logic: no terminal, no bus; the newt UI draws the
// views and a worker runs the commands (console_worker.hpp), so tests drive it with a fake node.
#pragma once

#include <stormnode/catalog/catalog.hpp>
#include <stormnode/catalog/role_spec.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace stormnode::firstboot {

struct ConsoleInterface {
    std::string name;
    std::string mac;
    std::vector<std::string> addresses;  // "10.0.0.5/24"
};

struct ConsoleUnit {
    std::string unit;
    std::string active_state;
    std::string check_state;
    std::uint32_t restarts = 0;
};

// What the status screen shows; every field is filled by the worker from its source.
struct NodeView {
    bool connected = false;     // storm-roled answers on the bus
    std::string connect_error;  // why not
    std::string hostname;
    std::vector<ConsoleInterface> interfaces;
    std::string image_version;
    std::string image_commit;
    std::vector<std::string> deployments;  // `ostree admin status` lines, booted first
    std::vector<roles::RoleSpec> roles;
    std::string state;   // stopped, starting, healthy, degraded, failed
    std::string reason;  // why degraded or failed
    std::vector<ConsoleUnit> units;
    std::vector<std::string> cluster;  // membership and quorum lines
    std::string last_transaction;      // "testsvc -> quorum: rolled-back (2026-11-28T05:00:00Z)"
};

// Commands the flow asks the worker to run. Those that change the node carry the root password: the
// worker checks it first and runs nothing when it is wrong.
struct SetRolesCommand {
    std::vector<roles::RoleSpec> roles;
    bool force = false;
};
struct RestartRoleCommand {
    roles::RoleSpec role;
};
struct JournalCommand {
    std::string unit;
};
struct NetworkCommand {
    std::string interface;
    bool dhcp = true;
    std::string address;  // "10.0.0.5/24"
    std::string gateway;
    std::vector<std::string> dns;
};
struct OsRollbackCommand {};
struct RebootCommand {};
struct PowerOffCommand {};
struct ShellCommand {};

using CommandBody = std::variant<
    SetRolesCommand,
    RestartRoleCommand,
    JournalCommand,
    NetworkCommand,
    OsRollbackCommand,
    RebootCommand,
    PowerOffCommand,
    ShellCommand>;

struct ConsoleCommand {
    CommandBody body;
    std::string password;  // empty for reads (journal)
};

// True for commands that change the node (and so need the password).
bool changes_node(const CommandBody& body);
std::string describe_command(const CommandBody& body);

enum class Outcome {
    done,         // it worked (a switch: "switched")
    rolled_back,  // a switch did not come up and the old roles are back
    refused,      // a policy said no (the quorum guard): may be forced
    auth_failed,  // wrong password: nothing was done
    failed,       // anything else
    not_available,
};

struct CommandResult {
    Outcome outcome = Outcome::done;
    std::string message;             // what happened, for the result screen
    std::vector<std::string> lines;  // journal lines
};

enum class Screen {
    status,
    role_picker,
    role_diff,
    force_first,
    force_second,
    password,
    progress,
    result,
    restart_picker,
    journal_picker,
    journal_view,
    network_picker,
    network_form,
    confirm,
};
std::string_view to_string(Screen screen);

struct Field {
    std::string label;
    std::string value;
    bool secret = false;
};

// One screen as the UI draws it.
struct View {
    Screen screen = Screen::status;
    std::string title;
    std::vector<std::string> text;
    std::vector<std::string> items;  // the list
    bool multiple = false;           // items are checkboxes
    std::vector<bool> checked;
    std::size_t current = 0;
    std::vector<Field> fields;
    std::vector<std::string> buttons;  // the first is the default (Enter on the list, F12)
};

// What the operator did on a screen: a button (or Enter on the list: the default button), with the list
// cursor, the checked items and the field values as they were.
struct Input {
    std::string button;
    std::size_t current = 0;
    std::vector<bool> checked;
    std::vector<std::string> fields;
};

inline constexpr const char* kNext = "Next";
inline constexpr const char* kBack = "Back";
inline constexpr const char* kCancel = "Cancel";

// The main menu on the status screen.
enum class Action { switch_role, restart_role, journal, network, os_rollback, reboot, power_off, shell };
std::string_view to_string(Action action);

// Units that stop, start and stay when a node goes from one role set to another.
struct RoleDiff {
    std::vector<std::string> stop;
    std::vector<std::string> start;
    std::vector<std::string> keep;
};
// Throws Error(invalid_input) for an unknown role.
RoleDiff role_diff(
    const roles::Catalog& catalog,
    const std::vector<roles::RoleSpec>& from,
    const std::vector<roles::RoleSpec>& to);

class ConsoleFlow {
public:
    // catalog: the roles offered (kind role); the flow keeps a reference.
    explicit ConsoleFlow(const roles::Catalog& catalog);

    [[nodiscard]] Screen screen() const noexcept { return screen_; }
    [[nodiscard]] View view() const;
    [[nodiscard]] const NodeView& node() const noexcept { return node_; }

    // The operator's input on the current screen.
    void submit(const Input& input);
    // Shortcut for tests and the UI: the menu action on the status screen.
    void choose(Action action);

    // The command to run, once (the worker takes it, then reports with finished()).
    std::optional<ConsoleCommand> take_command();
    [[nodiscard]] bool busy() const noexcept { return running_; }
    void finished(const CommandResult& result);
    // True once after the password for the root shell was accepted: the UI runs it on the terminal.
    bool take_shell() noexcept { return std::exchange(shell_, false); }

    // A fresh status from the worker (storm-roled's signals); progress screens show it live.
    void update(NodeView node);

    [[nodiscard]] std::vector<Action> actions() const;

private:
    void go(Screen screen);
    void start(CommandBody body);
    void ask_password(CommandBody body, Screen back_to);
    void back();
    void to_status();
    [[nodiscard]] std::vector<std::string> status_text() const;

    // One view per screen (view() adds which screen it is).
    [[nodiscard]] View status_view() const;
    [[nodiscard]] View role_picker_view() const;
    [[nodiscard]] View role_diff_view() const;
    [[nodiscard]] View force_first_view() const;
    [[nodiscard]] View force_second_view() const;
    [[nodiscard]] View password_view() const;
    [[nodiscard]] View progress_view() const;
    [[nodiscard]] View result_view() const;
    [[nodiscard]] View restart_picker_view() const;
    [[nodiscard]] View journal_picker_view() const;
    [[nodiscard]] View journal_view() const;
    [[nodiscard]] View network_picker_view() const;
    [[nodiscard]] View network_form_view() const;
    [[nodiscard]] View confirm_view() const;

    // The input of the screens that check it before going on.
    void submit_role_picker(const Input& input);
    void submit_password(const Input& input);
    void submit_network_form(const Input& input);

    const roles::Catalog& catalog_;
    std::vector<std::string> offered_;  // role names in the picker
    NodeView node_;
    Screen screen_ = Screen::status;

    std::vector<roles::RoleSpec> picked_;  // role picker
    bool force_ = false;
    std::string refusal_;
    std::optional<CommandBody> pending_;  // waits for the password (or a confirm)
    Screen password_back_ = Screen::status;
    std::string password_error_;
    std::optional<ConsoleCommand> command_;
    bool running_ = false;
    std::optional<CommandBody> ran_;
    std::optional<CommandResult> result_;
    std::vector<std::string> unit_names_;  // journal picker
    std::string network_interface_;
    bool shell_ = false;
};

}  // namespace stormnode::firstboot
