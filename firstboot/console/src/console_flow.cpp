#include "stormnode/console/console_flow.hpp"

#include "console_text.hpp"

#include <stormnode/common/error.hpp>

#include <algorithm>
#include <set>
#include <utility>

namespace stormnode::firstboot {
namespace {

std::string roles_text(const std::vector<roles::RoleSpec>& roles) {
    return roles.empty() ? std::string("(none)") : joined(roles);
}

std::vector<std::string> unit_names(
    const roles::Catalog& catalog, const std::vector<roles::RoleSpec>& roles) {
    std::vector<std::string> names;
    if (roles.empty()) {
        return names;
    }
    for (const auto& unit : roles::resolve_combination(catalog, roles).body.units) {
        names.push_back(unit.name);
    }
    return names;
}

std::string unit_line(const ConsoleUnit& unit) {
    std::string line = "  " + unit.unit;
    line.resize(std::max<std::size_t>(line.size() + 1, 34), ' ');
    line += unit.active_state;
    line.resize(std::max<std::size_t>(line.size() + 1, 46), ' ');
    line += "check " + unit.check_state;
    if (unit.restarts > 0) {
        line += ", " + std::to_string(unit.restarts) + " restarts";
    }
    return line;
}

// Every screen that asks something offers these.
std::vector<std::string> nav_buttons() {
    return {kNext, kBack, kCancel};
}

std::vector<std::string> split_words(const std::string& text) {
    std::vector<std::string> words;
    std::string word;
    for (const char c : text + " ") {
        if (c == ' ' || c == ',') {
            if (!word.empty()) {
                words.push_back(word);
            }
            word.clear();
        } else {
            word += c;
        }
    }
    return words;
}

}  // namespace

bool changes_node(const CommandBody& body) {
    return !std::holds_alternative<JournalCommand>(body);
}

std::string describe_command(const CommandBody& body) {
    return std::visit(
        Overloaded{
            [](const SetRolesCommand& c) {
                return std::string(c.force ? "Force the switch" : "Switch") + " to role(s) " +
                       roles_text(c.roles);
            },
            [](const RestartRoleCommand& c) { return "Restart role " + roles::to_string(c.role); },
            [](const JournalCommand& c) { return "Journal of " + c.unit; },
            [](const NetworkCommand& c) {
                return "Network " + c.interface + ": " +
                       (c.dhcp ? std::string("DHCP") : "static " + c.address);
            },
            [](const OsRollbackCommand&) {
                return std::string("Roll back to the previous OS deployment and reboot");
            },
            [](const RebootCommand&) { return std::string("Reboot"); },
            [](const PowerOffCommand&) { return std::string("Power off"); },
            [](const ShellCommand&) { return std::string("Root shell"); },
        },
        body);
}

std::string_view to_string(Screen screen) {
    switch (screen) {
        case Screen::status:
            return "status";
        case Screen::role_picker:
            return "role-picker";
        case Screen::role_diff:
            return "role-diff";
        case Screen::force_first:
            return "force-first";
        case Screen::force_second:
            return "force-second";
        case Screen::password:
            return "password";
        case Screen::progress:
            return "progress";
        case Screen::result:
            return "result";
        case Screen::restart_picker:
            return "restart-picker";
        case Screen::journal_picker:
            return "journal-picker";
        case Screen::journal_view:
            return "journal-view";
        case Screen::network_picker:
            return "network-picker";
        case Screen::network_form:
            return "network-form";
        case Screen::confirm:
            return "confirm";
    }
    return "?";
}

std::string_view to_string(Action action) {
    switch (action) {
        case Action::switch_role:
            return "Switch role";
        case Action::restart_role:
            return "Restart role";
        case Action::journal:
            return "Unit journal";
        case Action::network:
            return "Network settings";
        case Action::os_rollback:
            return "Roll back OS and reboot";
        case Action::reboot:
            return "Reboot";
        case Action::power_off:
            return "Power off";
        case Action::shell:
            return "Root shell";
    }
    return "?";
}

RoleDiff role_diff(
    const roles::Catalog& catalog,
    const std::vector<roles::RoleSpec>& from,
    const std::vector<roles::RoleSpec>& to) {
    const auto before = unit_names(catalog, from);
    const auto after = unit_names(catalog, to);
    const std::set<std::string> before_set(before.begin(), before.end());
    const std::set<std::string> after_set(after.begin(), after.end());
    RoleDiff diff;
    for (const auto& name : before) {
        (after_set.contains(name) ? diff.keep : diff.stop).push_back(name);
    }
    for (const auto& name : after) {
        if (!before_set.contains(name)) {
            diff.start.push_back(name);
        }
    }
    return diff;
}

ConsoleFlow::ConsoleFlow(const roles::Catalog& catalog) : catalog_(catalog), offered_(catalog.role_names()) {}

std::vector<Action> ConsoleFlow::actions() const {
    std::vector<Action> list{Action::switch_role};
    if (!node_.roles.empty()) {
        list.push_back(Action::restart_role);
    }
    for (const auto a :
         {Action::journal,
          Action::network,
          Action::os_rollback,
          Action::reboot,
          Action::power_off,
          Action::shell}) {
        list.push_back(a);
    }
    return list;
}

std::vector<std::string> ConsoleFlow::status_text() const {
    std::vector<std::string> text;
    text.push_back("Host: " + (node_.hostname.empty() ? std::string("?") : node_.hostname));
    for (const auto& i : node_.interfaces) {
        text.push_back(
            "  " + i.name + "  " + (i.mac.empty() ? "-" : i.mac) + "  " + joined(i.addresses, " "));
    }
    text.push_back(
        "Image: " +
        (node_.image_version.empty() ? std::string("(not booted from OSTree)") : node_.image_version) +
        (node_.image_commit.empty() ? "" : "  commit " + node_.image_commit.substr(0, 12)));
    for (const auto& d : node_.deployments) {
        text.push_back("  " + d);
    }
    if (!node_.connected) {
        text.push_back("storm-roled: not reachable: " + node_.connect_error);
        return text;
    }
    if (node_.roles.empty()) {
        text.push_back("Discovered node: no role yet. Choose one with 'Choose a role'.");
    } else {
        text.push_back("Roles: " + roles_text(node_.roles) + "   State: " + node_.state);
    }
    if (!node_.reason.empty()) {
        text.push_back("Why: " + node_.reason);
    }
    for (const auto& unit : node_.units) {
        text.push_back(unit_line(unit));
    }
    for (const auto& line : node_.cluster) {
        text.push_back(line);
    }
    if (!node_.last_transaction.empty()) {
        text.push_back("Last switch: " + node_.last_transaction);
    }
    return text;
}

View ConsoleFlow::view() const {
    View v = [this] {
        switch (screen_) {
            case Screen::status:
                return status_view();
            case Screen::role_picker:
                return role_picker_view();
            case Screen::role_diff:
                return role_diff_view();
            case Screen::force_first:
                return force_first_view();
            case Screen::force_second:
                return force_second_view();
            case Screen::password:
                return password_view();
            case Screen::progress:
                return progress_view();
            case Screen::result:
                return result_view();
            case Screen::restart_picker:
                return restart_picker_view();
            case Screen::journal_picker:
                return journal_picker_view();
            case Screen::journal_view:
                return journal_view();
            case Screen::network_picker:
                return network_picker_view();
            case Screen::network_form:
                return network_form_view();
            case Screen::confirm:
                return confirm_view();
        }
        return View{};
    }();
    v.screen = screen_;
    return v;
}

View ConsoleFlow::status_view() const {
    View v;
    v.title = "stormnode " + node_.hostname;
    v.text = status_text();
    for (const auto a : actions()) {
        v.items.emplace_back(
            a == Action::switch_role && node_.roles.empty() ? "Choose a role" : std::string(to_string(a)));
    }
    v.buttons = {"Select"};
    return v;
}

View ConsoleFlow::role_picker_view() const {
    View v;
    v.title = "Roles";
    v.text = {"Current: " + roles_text(node_.roles), "Space marks a role, F12 or Next goes on."};
    if (!password_error_.empty()) {
        v.text.push_back(password_error_);
    }
    v.multiple = true;
    for (const auto& name : offered_) {
        const auto* role = catalog_.find(name);
        v.items.push_back(
            name + (role != nullptr && !role->description.empty() ? " - " + role->description : ""));
        v.checked.push_back(roles::find_role(picked_, name) != nullptr);
    }
    v.buttons = nav_buttons();
    return v;
}

View ConsoleFlow::role_diff_view() const {
    View v;
    v.title = "Switch roles";
    v.text = {"From: " + roles_text(node_.roles), "To:   " + roles_text(picked_)};
    try {
        const auto diff = role_diff(catalog_, node_.roles, picked_);
        const auto section = [&](const std::string& heading, const std::vector<std::string>& units) {
            v.text.push_back(heading + (units.empty() ? " none" : ""));
            for (const auto& u : units) {
                v.text.push_back("  " + u);
            }
        };
        section("Units that stop:", diff.stop);
        section("Units that start:", diff.start);
        section("Units that keep running:", diff.keep);
    } catch (const std::exception& e) {
        v.text.push_back(describe(e));
    }
    v.text.emplace_back("If the new roles do not come up healthy, the old ones are restored.");
    v.buttons = nav_buttons();
    return v;
}

View ConsoleFlow::force_first_view() const {
    View v;
    v.title = "Refused";
    v.text = {
        "storm-roled refused the switch: " + refusal_,
        "Forcing it can cost the cluster its quorum. Force the switch?"};
    v.buttons = {"Force", kBack, kCancel};
    return v;
}

View ConsoleFlow::force_second_view() const {
    View v;
    v.title = "Force the switch";
    v.text = {
        "Really force the switch to " + roles_text(picked_) + "?",
        "The cluster may lose quorum: " + refusal_};
    v.buttons = {"Force", kBack, kCancel};
    return v;
}

View ConsoleFlow::password_view() const {
    View v;
    v.title = "Root password";
    v.text = {describe_command(*pending_), "This changes the node: enter the root password."};
    if (!password_error_.empty()) {
        v.text.push_back(password_error_);
    }
    v.fields = {Field{"Password:", "", true}};
    v.buttons = nav_buttons();
    return v;
}

// No buttons: nothing to choose while the command runs; the node's state shows live.
View ConsoleFlow::progress_view() const {
    View v;
    v.title = "Working";
    v.text = {
        ran_ ? describe_command(*ran_) + " ..." : std::string("..."),
        "Roles: " + roles_text(node_.roles) + "   State: " + node_.state};
    if (!node_.reason.empty()) {
        v.text.push_back("Why: " + node_.reason);
    }
    for (const auto& unit : node_.units) {
        v.text.push_back(unit_line(unit));
    }
    return v;
}

View ConsoleFlow::result_view() const {
    View v;
    v.title = "Result";
    v.text = {ran_ ? describe_command(*ran_) : std::string()};
    if (result_) {
        v.text.push_back(result_->message);
        for (const auto& line : result_->lines) {
            v.text.push_back(line);
        }
    }
    v.buttons = {"OK"};
    // A refused switch may be forced from here.
    if (result_ && result_->outcome == Outcome::refused && ran_ &&
        std::holds_alternative<SetRolesCommand>(*ran_)) {
        v.buttons.emplace_back("Force");
    }
    return v;
}

View ConsoleFlow::restart_picker_view() const {
    View v;
    v.title = "Restart a role";
    v.items = roles::to_strings(node_.roles);
    v.buttons = nav_buttons();
    return v;
}

View ConsoleFlow::journal_picker_view() const {
    View v;
    v.title = "Unit journal";
    v.items = unit_names_;
    v.buttons = nav_buttons();
    return v;
}

View ConsoleFlow::journal_view() const {
    View v;
    v.title = "Journal";
    if (result_) {
        v.text = result_->lines;
        if (v.text.empty()) {
            v.text.push_back(result_->message);
        }
    }
    v.buttons = {"OK", kBack};
    return v;
}

View ConsoleFlow::network_picker_view() const {
    View v;
    v.title = "Network settings";
    v.text = {"Pick the interface to configure (systemd-networkd)."};
    for (const auto& i : node_.interfaces) {
        v.items.push_back(i.name);
    }
    v.buttons = nav_buttons();
    return v;
}

View ConsoleFlow::network_form_view() const {
    View v;
    v.title = "Network " + network_interface_;
    v.text = {"Mode: dhcp or static. Static needs an address with its prefix (10.0.0.5/24)."};
    if (!password_error_.empty()) {
        v.text.push_back(password_error_);
    }
    v.fields = {Field{"Mode:", "dhcp"}, Field{"Address:", ""}, Field{"Gateway:", ""}, Field{"DNS:", ""}};
    v.buttons = nav_buttons();
    return v;
}

View ConsoleFlow::confirm_view() const {
    View v;
    v.title = "Confirm";
    v.text = {describe_command(*pending_) + "?"};
    if (std::holds_alternative<OsRollbackCommand>(*pending_)) {
        v.text.emplace_back("The node boots the previous OSTree deployment; /etc and /var are kept.");
    }
    v.buttons = nav_buttons();
    return v;
}

void ConsoleFlow::go(Screen screen) {
    screen_ = screen;
}

void ConsoleFlow::to_status() {
    pending_.reset();
    password_error_.clear();
    force_ = false;
    go(Screen::status);
}

void ConsoleFlow::ask_password(CommandBody body, Screen back_to) {
    pending_ = std::move(body);
    password_back_ = back_to;
    password_error_.clear();
    go(Screen::password);
}

void ConsoleFlow::start(CommandBody body) {
    ran_ = body;
    result_.reset();
    running_ = true;
    command_ = ConsoleCommand{std::move(body), {}};
    go(Screen::progress);
}

void ConsoleFlow::choose(Action action) {
    if (screen_ != Screen::status) {
        throw Error(Errc::invalid_input, "menu actions are on the status screen");
    }
    password_error_.clear();
    switch (action) {
        case Action::switch_role:
            picked_ = node_.roles;
            go(Screen::role_picker);
            break;
        case Action::restart_role:
            go(Screen::restart_picker);
            break;
        case Action::journal:
            unit_names_.clear();
            for (const auto& u : node_.units) {
                unit_names_.push_back(u.unit);
            }
            unit_names_.emplace_back("storm-roled.service");
            go(Screen::journal_picker);
            break;
        case Action::network:
            go(Screen::network_picker);
            break;
        case Action::os_rollback:
            pending_ = OsRollbackCommand{};
            go(Screen::confirm);
            break;
        case Action::reboot:
            pending_ = RebootCommand{};
            go(Screen::confirm);
            break;
        case Action::power_off:
            pending_ = PowerOffCommand{};
            go(Screen::confirm);
            break;
        case Action::shell:
            ask_password(ShellCommand{}, Screen::status);
            break;
    }
}

void ConsoleFlow::back() {
    password_error_.clear();
    switch (screen_) {
        case Screen::role_diff:
            go(Screen::role_picker);
            break;
        case Screen::force_second:
            go(Screen::force_first);
            break;
        case Screen::password:
            go(password_back_);
            break;
        case Screen::network_form:
            go(Screen::network_picker);
            break;
        case Screen::journal_view:
            go(Screen::journal_picker);
            break;
        default:
            to_status();
            break;
    }
}

void ConsoleFlow::submit(const Input& input) {
    if (screen_ == Screen::progress) {
        return;  // nothing to choose while it runs
    }
    if (input.button == kCancel) {
        to_status();
        return;
    }
    if (input.button == kBack) {
        back();
        return;
    }
    switch (screen_) {
        case Screen::status: {
            const auto list = actions();
            if (input.current < list.size()) {
                choose(list[input.current]);
            }
            break;
        }
        case Screen::role_picker:
            submit_role_picker(input);
            break;
        case Screen::role_diff:
            ask_password(SetRolesCommand{picked_, false}, Screen::role_diff);
            break;
        case Screen::force_first:
            if (input.button == "Force") {
                go(Screen::force_second);
            }
            break;
        case Screen::force_second:
            if (input.button == "Force") {
                ask_password(SetRolesCommand{picked_, true}, Screen::status);
            }
            break;
        case Screen::password:
            submit_password(input);
            break;
        case Screen::result:
            if (input.button == "Force") {
                go(Screen::force_first);
            } else {
                to_status();
            }
            break;
        case Screen::restart_picker:
            if (input.current < node_.roles.size()) {
                ask_password(RestartRoleCommand{node_.roles[input.current]}, Screen::restart_picker);
            }
            break;
        case Screen::journal_picker:
            if (input.current < unit_names_.size()) {
                start(JournalCommand{unit_names_[input.current]});
            }
            break;
        case Screen::journal_view:
            to_status();
            break;
        case Screen::network_picker:
            if (input.current < node_.interfaces.size()) {
                network_interface_ = node_.interfaces[input.current].name;
                password_error_.clear();
                go(Screen::network_form);
            }
            break;
        case Screen::network_form:
            submit_network_form(input);
            break;
        case Screen::confirm:
            ask_password(*pending_, Screen::status);
            break;
        case Screen::progress:
            break;
    }
}

// The marked roles go on to the diff only when they are a change; otherwise the picker says why.
void ConsoleFlow::submit_role_picker(const Input& input) {
    std::vector<roles::RoleSpec> picked;
    for (std::size_t i = 0; i < offered_.size() && i < input.checked.size(); ++i) {
        if (input.checked[i]) {
            // A role the node keeps keeps its variant; the picker offers roles, not variants.
            const auto* current = roles::find_role(node_.roles, offered_[i]);
            picked.push_back(current != nullptr ? *current : roles::RoleSpec{offered_[i], {}});
        }
    }
    picked_ = picked;
    if (picked.empty()) {
        password_error_ = "Mark at least one role (Space).";
    } else if (picked == node_.roles) {
        password_error_ = "The node already has these roles.";
    } else {
        password_error_.clear();
        go(Screen::role_diff);
    }
}

// The pending command runs with the password; the worker checks it before anything changes.
void ConsoleFlow::submit_password(const Input& input) {
    const std::string password = input.fields.empty() ? std::string() : input.fields.front();
    if (password.empty()) {
        password_error_ = "Enter the root password.";
        return;
    }
    auto body = *pending_;
    start(body);
    command_->password = password;
}

// Fields: mode (dhcp or static), address with prefix, gateway, DNS servers (spaces or commas). A
// mistake stays on the form with its reason; a valid form asks for the password.
void ConsoleFlow::submit_network_form(const Input& input) {
    NetworkCommand c;
    c.interface = network_interface_;
    const auto field = [&](std::size_t i) {
        return i < input.fields.size() ? input.fields[i] : std::string();
    };
    const auto words = split_words(field(0));
    const std::string mode = words.empty() ? "dhcp" : words.front();
    if (mode != "dhcp" && mode != "static") {
        password_error_ = "Mode: '" + mode + "' is neither dhcp nor static.";
        return;
    }
    c.dhcp = mode == "dhcp";
    const auto address = split_words(field(1));
    const auto gateway = split_words(field(2));
    c.dns = split_words(field(3));
    if (!c.dhcp) {
        if (address.size() != 1 || address.front().find('/') == std::string::npos) {
            password_error_ = "Address: a static address needs its prefix length, as in 10.0.0.5/24.";
            return;
        }
        c.address = address.front();
        c.gateway = gateway.empty() ? std::string() : gateway.front();
    }
    ask_password(c, Screen::network_form);
}

std::optional<ConsoleCommand> ConsoleFlow::take_command() {
    auto c = std::move(command_);
    command_.reset();
    return c;
}

void ConsoleFlow::finished(const CommandResult& result) {
    running_ = false;
    if (result.outcome == Outcome::auth_failed && pending_) {
        password_error_ = "Wrong password: nothing was changed. " + result.message;
        go(Screen::password);
        return;
    }
    if (ran_ && std::holds_alternative<ShellCommand>(*ran_) && result.outcome == Outcome::done) {
        shell_ = true;
        to_status();
        return;
    }
    result_ = result;
    if (ran_ && std::holds_alternative<SetRolesCommand>(*ran_) && result.outcome == Outcome::refused) {
        refusal_ = result.message;
    }
    pending_.reset();
    go(ran_ && std::holds_alternative<JournalCommand>(*ran_) && result.outcome == Outcome::done
           ? Screen::journal_view
           : Screen::result);
}

void ConsoleFlow::update(NodeView node) {
    node_ = std::move(node);
}

}  // namespace stormnode::firstboot
