// storm-console's screen flow and its command runner against a fake node: no terminal, no bus.
#include <stormnode/common/error.hpp>
#include <stormnode/console/console_flow.hpp>
#include <stormnode/console/console_worker.hpp>
#include <stormnode/node_client/node_client.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>

namespace fb = stormnode::firstboot;
using stormnode::Errc;
using stormnode::Error;

namespace {

const stormnode::roles::Catalog& catalog() {
    static const auto c =
        stormnode::roles::load_valid_catalog(std::filesystem::path(STORMNODE_SOURCE_DIR) / "roles/catalog");
    return c;
}

bool has_line(const fb::View& view, const std::string& part) {
    return std::any_of(view.text.begin(), view.text.end(), [&](const std::string& l) {
        return l.find(part) != std::string::npos;
    });
}

std::size_t index_of(const std::vector<std::string>& items, const std::string& prefix) {
    for (std::size_t i = 0; i < items.size(); ++i) {
        if (items[i].rfind(prefix, 0) == 0) {
            return i;
        }
    }
    FAIL("no item " << prefix);
    return 0;
}

// Roles as an operator writes them: "db:galera".
std::vector<stormnode::roles::RoleSpec> specs(const std::vector<std::string>& roles) {
    return stormnode::roles::parse_role_specs(roles);
}

fb::NodeView node_with(const std::vector<std::string>& roles, std::string state = "healthy") {
    fb::NodeView node;
    node.connected = true;
    node.hostname = "q1";
    node.interfaces = {fb::ConsoleInterface{"eno1", "52:54:00:12:34:56", {"10.0.0.5/24"}}};
    node.roles = specs(roles);
    node.state = std::move(state);
    node.units = {fb::ConsoleUnit{"corosync-qnetd.service", "active", "passing", 2}};
    return node;
}

class FakeNode final : public fb::NodeBackend {
public:
    std::string password = "secret";
    bool refuse = false;
    bool rollback_available = false;
    std::vector<std::string> calls;

    bool authenticate(const std::string& p) override {
        calls.push_back("auth");
        return p == password;
    }
    fb::NodeView read_status() override { return node_with({"quorum"}); }
    void set_roles(const std::vector<stormnode::roles::RoleSpec>& roles, bool force) override {
        calls.push_back("set_roles " + to_string(roles.front()) + (force ? " force" : ""));
        if (refuse && !force) {
            throw stormnode::roles::DbusError(
                Errc::refused,
                "switching to monitor: leaving quorum would leave 1 of 3 votes",
                "org.stormclouds.Node1.Error.Refused");
        }
    }
    void restart_role(const stormnode::roles::RoleSpec& role) override {
        calls.push_back("restart " + to_string(role));
    }
    std::vector<std::string> journal(const std::string& unit) override {
        calls.push_back("journal " + unit);
        return {"line 1", "line 2"};
    }
    void apply_network(const fb::NetworkCommand& n) override { calls.push_back("network " + n.interface); }
    void os_rollback() override {
        calls.push_back("os_rollback");
        if (!rollback_available) {
            throw Error(Errc::not_found, "Rolling back the OS is not available");
        }
    }
    void reboot() override { calls.push_back("reboot"); }
    void power_off() override { calls.push_back("power_off"); }
};

// The flow's status screen with the node given, then the switch to `to` up to the password screen.
void walk_to_password(fb::ConsoleFlow& flow, const std::string& to) {
    flow.choose(fb::Action::switch_role);
    REQUIRE(flow.screen() == fb::Screen::role_picker);
    auto view = flow.view();
    REQUIRE(view.multiple);
    fb::Input input{.button = fb::kNext};
    input.checked.assign(view.items.size(), false);
    input.checked[index_of(view.items, to)] = true;
    flow.submit(input);
    REQUIRE(flow.screen() == fb::Screen::role_diff);
    flow.submit(fb::Input{.button = fb::kNext});
    REQUIRE(flow.screen() == fb::Screen::password);
}

}  // namespace

TEST_CASE("role_diff: the units that stop, start and keep running", "[console]") {
    const auto diff = fb::role_diff(catalog(), specs({"quorum"}), specs({"monitor"}));
    CHECK(std::find(diff.stop.begin(), diff.stop.end(), "corosync-qnetd.service") != diff.stop.end());
    CHECK(std::find(diff.start.begin(), diff.start.end(), "zabbix-server.service") != diff.start.end());
    CHECK(
        std::find(diff.keep.begin(), diff.keep.end(), "chrony.service") != diff.keep.end());  // common layer
    CHECK_THROWS_AS(fb::role_diff(catalog(), specs({"quorum"}), specs({"no-such-role"})), Error);
}

TEST_CASE("a discovered node says so and offers the role choice first", "[console]") {
    fb::ConsoleFlow flow(catalog());
    flow.update(node_with({}, "stopped"));
    const auto view = flow.view();
    CHECK(has_line(view, "Discovered node: no role yet"));
    REQUIRE_FALSE(view.items.empty());
    CHECK(view.items.front() == "Choose a role");
    CHECK(std::find(view.items.begin(), view.items.end(), "Restart role") == view.items.end());
    flow.submit(fb::Input{.button = "Select", .current = 0});
    CHECK(flow.screen() == fb::Screen::role_picker);
}

TEST_CASE("the status screen lists roles, units, addresses and the unreachable daemon", "[console]") {
    fb::ConsoleFlow flow(catalog());
    flow.update(node_with({"quorum"}));
    auto view = flow.view();
    CHECK(has_line(view, "Roles: quorum   State: healthy"));
    CHECK(has_line(view, "corosync-qnetd.service"));
    CHECK(has_line(view, "2 restarts"));
    CHECK(has_line(view, "52:54:00:12:34:56"));
    CHECK(has_line(view, "10.0.0.5/24"));

    fb::NodeView gone;
    gone.connect_error = "storm-roled is not running";
    flow.update(gone);
    CHECK(has_line(flow.view(), "storm-roled: not reachable: storm-roled is not running"));
}

TEST_CASE("role switch: picker, diff, password, progress, rolled back with the reason", "[console]") {
    fb::ConsoleFlow flow(catalog());
    FakeNode node;
    fb::CommandRunner runner(node);
    flow.update(node_with({"quorum"}));

    flow.choose(fb::Action::switch_role);
    auto view = flow.view();
    CHECK(view.checked[index_of(view.items, "quorum")]);  // the current roles are marked
    // Nothing marked, or the same roles: the picker says why and stays.
    flow.submit(fb::Input{.button = fb::kNext, .checked = std::vector<bool>(view.items.size(), false)});
    CHECK(flow.screen() == fb::Screen::role_picker);
    CHECK(has_line(flow.view(), "Mark at least one role"));
    flow.submit(fb::Input{.button = fb::kNext, .checked = view.checked});
    CHECK(has_line(flow.view(), "already has these roles"));

    fb::Input pick{.button = fb::kNext};
    pick.checked.assign(view.items.size(), false);
    pick.checked[index_of(view.items, "monitor")] = true;
    flow.submit(pick);
    REQUIRE(flow.screen() == fb::Screen::role_diff);
    view = flow.view();
    CHECK(has_line(view, "Units that stop:"));
    CHECK(has_line(view, "corosync-qnetd.service"));
    CHECK(has_line(view, "zabbix-server.service"));
    flow.submit(fb::Input{.button = fb::kBack});
    CHECK(flow.screen() == fb::Screen::role_picker);
    flow.submit(pick);
    flow.submit(fb::Input{.button = fb::kNext});
    REQUIRE(flow.screen() == fb::Screen::password);
    CHECK_FALSE(flow.take_command());  // nothing runs before the password

    flow.submit(fb::Input{.button = fb::kNext, .fields = {""}});
    CHECK(flow.screen() == fb::Screen::password);
    flow.submit(fb::Input{.button = fb::kNext, .fields = {"secret"}});
    CHECK(flow.screen() == fb::Screen::progress);
    auto command = flow.take_command();
    REQUIRE(command);
    CHECK(command->password == "secret");
    REQUIRE(std::holds_alternative<fb::SetRolesCommand>(command->body));
    CHECK(
        to_strings(std::get<fb::SetRolesCommand>(command->body).roles) ==
        std::vector<std::string>{"monitor"});
    CHECK_FALSE(flow.take_command());  // once

    CHECK_FALSE(runner.start(*command));  // waits for RoleSwitched
    CHECK(node.calls == std::vector<std::string>{"auth", "set_roles monitor"});
    CHECK(runner.waiting());
    // Live progress: storm-roled's state while the new role fails.
    auto failing = node_with({"monitor"}, "failed");
    failing.reason = "unit zabbix-server.service failed 5 times within 300 s";
    runner.status(failing);
    flow.update(failing);
    CHECK(has_line(flow.view(), "Why: unit zabbix-server.service failed"));
    // Another client's switch is not ours.
    CHECK_FALSE(runner.switched(specs({"quorum"}), specs({"compute"}), "switched"));
    auto result = runner.switched(specs({"quorum"}), specs({"monitor"}), "rolled-back");
    REQUIRE(result);
    CHECK(result->outcome == fb::Outcome::rolled_back);
    CHECK(result->message.find("rolled back to quorum") != std::string::npos);
    CHECK(result->message.find("Why: unit zabbix-server.service failed 5 times") != std::string::npos);
    CHECK_FALSE(runner.waiting());

    flow.update(node_with({"quorum"}));
    flow.finished(*result);
    REQUIRE(flow.screen() == fb::Screen::result);
    CHECK(has_line(flow.view(), "rolled back to quorum"));
    flow.submit(fb::Input{.button = "OK"});
    CHECK(flow.screen() == fb::Screen::status);
    CHECK(has_line(flow.view(), "Roles: quorum   State: healthy"));
}

TEST_CASE("the picker marks a role the node carries with a variant, and keeps that variant", "[console]") {
    fb::ConsoleFlow flow(catalog());
    flow.update(node_with({"db:active-passive"}));
    flow.choose(fb::Action::switch_role);
    const auto view = flow.view();
    CHECK(view.checked[index_of(view.items, "db")]);
    CHECK_FALSE(view.checked[index_of(view.items, "quorum")]);

    fb::Input pick{.button = fb::kNext, .checked = view.checked};
    pick.checked[index_of(view.items, "monitor")] = true;
    flow.submit(pick);
    REQUIRE(flow.screen() == fb::Screen::role_diff);
    CHECK(has_line(flow.view(), "To:   db:active-passive, monitor"));
    flow.submit(fb::Input{.button = fb::kNext});
    flow.submit(fb::Input{.button = fb::kNext, .fields = {"secret"}});
    const auto command = flow.take_command();
    REQUIRE(command);
    REQUIRE(std::holds_alternative<fb::SetRolesCommand>(command->body));
    CHECK(
        to_strings(std::get<fb::SetRolesCommand>(command->body).roles) ==
        std::vector<std::string>{"db:active-passive", "monitor"});
}

TEST_CASE("a successful switch reports the new roles healthy", "[console]") {
    fb::ConsoleFlow flow(catalog());
    FakeNode node;
    fb::CommandRunner runner(node);
    flow.update(node_with({"quorum"}));
    walk_to_password(flow, "monitor");
    flow.submit(fb::Input{.button = fb::kNext, .fields = {"secret"}});
    auto command = flow.take_command();
    REQUIRE(command);
    CHECK_FALSE(runner.start(*command));
    auto result = runner.switched(specs({"quorum"}), specs({"monitor"}), "switched");
    REQUIRE(result);
    CHECK(result->outcome == fb::Outcome::done);
    flow.finished(*result);
    CHECK(has_line(flow.view(), "Switched to monitor: healthy."));
}

TEST_CASE("a wrong password runs nothing and asks again", "[console]") {
    fb::ConsoleFlow flow(catalog());
    FakeNode node;
    fb::CommandRunner runner(node);
    flow.update(node_with({"quorum"}));
    walk_to_password(flow, "monitor");
    flow.submit(fb::Input{.button = fb::kNext, .fields = {"wrong"}});
    auto command = flow.take_command();
    REQUIRE(command);
    const auto result = runner.start(*command);
    REQUIRE(result);
    CHECK(result->outcome == fb::Outcome::auth_failed);
    CHECK(node.calls == std::vector<std::string>{"auth"});  // no set_roles
    CHECK_FALSE(runner.waiting());
    flow.finished(*result);
    CHECK(flow.screen() == fb::Screen::password);
    CHECK(has_line(flow.view(), "Wrong password: nothing was changed."));
    // The right one then runs the same switch.
    flow.submit(fb::Input{.button = fb::kNext, .fields = {"secret"}});
    command = flow.take_command();
    REQUIRE(command);
    CHECK_FALSE(runner.start(*command));
    CHECK(node.calls.back() == "set_roles monitor");
}

TEST_CASE("the quorum guard's refusal can be forced, after asking twice", "[console]") {
    fb::ConsoleFlow flow(catalog());
    FakeNode node;
    node.refuse = true;
    fb::CommandRunner runner(node);
    flow.update(node_with({"quorum"}));
    walk_to_password(flow, "monitor");
    flow.submit(fb::Input{.button = fb::kNext, .fields = {"secret"}});
    auto result = runner.start(*flow.take_command());
    REQUIRE(result);
    CHECK(result->outcome == fb::Outcome::refused);
    flow.finished(*result);
    REQUIRE(flow.screen() == fb::Screen::result);
    auto view = flow.view();
    CHECK(std::find(view.buttons.begin(), view.buttons.end(), "Force") != view.buttons.end());

    SECTION("Cancel on the second question forces nothing") {
        flow.submit(fb::Input{.button = "Force"});
        CHECK(flow.screen() == fb::Screen::force_first);
        CHECK(has_line(flow.view(), "leaving quorum would leave 1 of 3 votes"));
        flow.submit(fb::Input{.button = "Force"});
        CHECK(flow.screen() == fb::Screen::force_second);
        flow.submit(fb::Input{.button = fb::kCancel});
        CHECK(flow.screen() == fb::Screen::status);
        CHECK_FALSE(flow.take_command());
    }
    SECTION("Force twice, then the password, sends force=true") {
        flow.submit(fb::Input{.button = "Force"});
        flow.submit(fb::Input{.button = "Force"});
        flow.submit(fb::Input{.button = "Force"});
        REQUIRE(flow.screen() == fb::Screen::password);
        flow.submit(fb::Input{.button = fb::kNext, .fields = {"secret"}});
        auto command = flow.take_command();
        REQUIRE(command);
        CHECK(std::get<fb::SetRolesCommand>(command->body).force);
        CHECK_FALSE(runner.start(*command));
        CHECK(node.calls.back() == "set_roles monitor force");
    }
}

TEST_CASE("Cancel on any step of the switch returns to the status with nothing to run", "[console]") {
    for (int steps = 0; steps < 3; ++steps) {
        fb::ConsoleFlow flow(catalog());
        flow.update(node_with({"quorum"}));
        flow.choose(fb::Action::switch_role);
        auto view = flow.view();
        fb::Input pick{.button = fb::kNext};
        pick.checked.assign(view.items.size(), false);
        pick.checked[index_of(view.items, "monitor")] = true;
        if (steps >= 1) {
            flow.submit(pick);
        }
        if (steps >= 2) {
            flow.submit(fb::Input{.button = fb::kNext});
        }
        flow.submit(fb::Input{.button = fb::kCancel});
        CHECK(flow.screen() == fb::Screen::status);
        CHECK_FALSE(flow.take_command());
    }
}

TEST_CASE("OS rollback: confirm, password, and a clear message when stormctl cannot", "[console]") {
    fb::ConsoleFlow flow(catalog());
    FakeNode node;
    fb::CommandRunner runner(node);
    flow.update(node_with({"quorum"}));
    flow.choose(fb::Action::os_rollback);
    CHECK(flow.screen() == fb::Screen::confirm);
    flow.submit(fb::Input{.button = fb::kNext});
    CHECK(flow.screen() == fb::Screen::password);
    flow.submit(fb::Input{.button = fb::kNext, .fields = {"secret"}});
    const auto result = runner.start(*flow.take_command());
    REQUIRE(result);
    CHECK(result->outcome == fb::Outcome::not_available);
    CHECK(node.calls == std::vector<std::string>{"auth", "os_rollback"});  // no reboot
    flow.finished(*result);
    CHECK(has_line(flow.view(), "not available"));
}

TEST_CASE("restart role and reboot need the password, the journal does not", "[console]") {
    fb::ConsoleFlow flow(catalog());
    FakeNode node;
    fb::CommandRunner runner(node);
    flow.update(node_with({"quorum"}));

    flow.choose(fb::Action::restart_role);
    flow.submit(fb::Input{.button = fb::kNext, .current = 0});
    REQUIRE(flow.screen() == fb::Screen::password);
    flow.submit(fb::Input{.button = fb::kNext, .fields = {"secret"}});
    auto result = runner.start(*flow.take_command());
    REQUIRE(result);
    CHECK(node.calls == std::vector<std::string>{"auth", "restart quorum"});
    flow.finished(*result);
    flow.submit(fb::Input{.button = "OK"});

    node.calls.clear();
    flow.choose(fb::Action::journal);
    REQUIRE(flow.screen() == fb::Screen::journal_picker);
    CHECK(flow.view().items.front() == "corosync-qnetd.service");
    flow.submit(fb::Input{.button = fb::kNext, .current = 0});
    auto command = flow.take_command();
    REQUIRE(command);
    CHECK(command->password.empty());
    result = runner.start(*command);
    CHECK(node.calls == std::vector<std::string>{"journal corosync-qnetd.service"});
    flow.finished(*result);
    CHECK(flow.screen() == fb::Screen::journal_view);
    CHECK(has_line(flow.view(), "line 2"));
    flow.submit(fb::Input{.button = "OK"});

    node.calls.clear();
    flow.choose(fb::Action::reboot);
    flow.submit(fb::Input{.button = fb::kNext});
    flow.submit(fb::Input{.button = fb::kNext, .fields = {"nope"}});
    result = runner.start(*flow.take_command());
    CHECK(result->outcome == fb::Outcome::auth_failed);
    CHECK(node.calls == std::vector<std::string>{"auth"});
}

TEST_CASE(
    "network settings: a static address needs its prefix and the command carries the form", "[console]") {
    fb::ConsoleFlow flow(catalog());
    flow.update(node_with({"quorum"}));
    flow.choose(fb::Action::network);
    flow.submit(fb::Input{.button = fb::kNext, .current = 0});
    REQUIRE(flow.screen() == fb::Screen::network_form);
    flow.submit(fb::Input{.button = fb::kNext, .fields = {"static", "10.0.0.9", "", ""}});
    CHECK(flow.screen() == fb::Screen::network_form);
    CHECK(has_line(flow.view(), "needs its prefix length"));
    flow.submit(fb::Input{.button = fb::kNext, .fields = {"bogus", "", "", ""}});
    CHECK(has_line(flow.view(), "neither dhcp nor static"));
    flow.submit(
        fb::Input{.button = fb::kNext, .fields = {"static", "10.0.0.9/24", "10.0.0.1", "10.0.0.2 10.0.0.3"}});
    REQUIRE(flow.screen() == fb::Screen::password);
    flow.submit(fb::Input{.button = fb::kNext, .fields = {"secret"}});
    const auto command = flow.take_command();
    REQUIRE(command);
    const auto& network = std::get<fb::NetworkCommand>(command->body);
    CHECK(network.interface == "eno1");
    CHECK_FALSE(network.dhcp);
    CHECK(network.address == "10.0.0.9/24");
    CHECK(network.gateway == "10.0.0.1");
    CHECK(network.dns == std::vector<std::string>{"10.0.0.2", "10.0.0.3"});
}

TEST_CASE("root shell: the password first, then the UI is told to run it", "[console]") {
    fb::ConsoleFlow flow(catalog());
    FakeNode node;
    fb::CommandRunner runner(node);
    flow.update(node_with({"quorum"}));
    flow.choose(fb::Action::shell);
    REQUIRE(flow.screen() == fb::Screen::password);
    flow.submit(fb::Input{.button = fb::kNext, .fields = {"secret"}});
    flow.finished(*runner.start(*flow.take_command()));
    CHECK(flow.take_shell());
    CHECK_FALSE(flow.take_shell());
    CHECK(flow.screen() == fb::Screen::status);
}
