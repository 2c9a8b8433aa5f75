// storm-console end to end: tmux runs the real storm-console on the host, connected to a real storm-roled
// in systemd-nspawn (the container's system bus via DBUS_SYSTEM_BUS_ADDRESS, its files via --root), and
// the test types on it like an operator. The password is checked by a test-only PAM service (pam_exec and
// a script comparing against a test password) in a private --pam-confdir: the host's users are untouched.
// The terminal is the harness's TerminalSession (tmux).
#include <stormnode/catalog/catalog.hpp>
#include <stormnode/common/error.hpp>
#include <stormnode/common/subprocess.hpp>
#include <stormnode/common/temp_dir.hpp>
#include <stormnode/test/roled_node.hpp>
#include <stormnode/test/rootfs_cache.hpp>
#include <stormnode/test/terminal_session.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <functional>

using namespace std::chrono_literals;
namespace st = stormnode::test;
namespace fs = std::filesystem;

namespace {

using Console = st::TerminalSession;

constexpr const char* kPassword = "console-test-pass";

// A role whose one unit cannot start: the switch to it must roll back by itself.
constexpr const char* kBadRole = R"(name: testbad
kind: role
description: Test role - a unit that cannot start.
packages: [python3]
units:
  - name: testsvc-bad.service
    package: python3
tiers:
  - [testsvc-bad.service]
healthy_when:
  required: [testsvc-bad.service]
)";
constexpr const char* kBadUnit = R"unit([Unit]
Description=stormnode test role: a service that cannot start
StartLimitIntervalSec=0

[Service]
# oneshot: the start job itself fails, as for a daemon that dies before it is ready
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/bin/python3 -c "import sys; print('testsvc-bad: cannot open /etc/testsvc/bad.conf', file=sys.stderr); sys.exit(1)"
)unit";

bool contains(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
}

// Moves the picker's cursor from the top and marks exactly `want` (the node's current roles are marked).
void pick_roles(
    const Console& console,
    const std::vector<std::string>& names,
    const std::vector<std::string>& marked,
    const std::vector<std::string>& want) {
    std::size_t at = 0;
    for (std::size_t i = 0; i < names.size(); ++i) {
        const bool is_marked = std::find(marked.begin(), marked.end(), names[i]) != marked.end();
        const bool wanted = std::find(want.begin(), want.end(), names[i]) != want.end();
        if (is_marked != wanted) {
            std::vector<std::string> keys(i - at, "Down");
            keys.emplace_back("Space");
            console.keys(keys);
            at = i;
        }
    }
}

}  // namespace

TEST_CASE(
    "storm-console against a real storm-roled: status, wrong password, rollback, switch",
    "[console][integration]") {
    st::RoledOptions o;
    o.rootfs = st::default_test_rootfs().tree;
    o.roled_binary = STORMNODE_ROLED_BINARY;
    o.source_dir = STORMNODE_SOURCE_DIR;
    o.roles = {"testsvc"};
    o.roled_arguments = {"--backoff-initial=0.1", "--max-failures=3"};
    o.start = false;
    st::RoledNode node(o);
    auto& c = node.container();
    c.write_file("/usr/share/stormnode/roles/testbad.yaml", kBadRole);
    c.write_file("/etc/systemd/system/testsvc-bad.service", kBadUnit);
    c.exec_checked({"systemctl", "daemon-reload"});
    node.start_roled();
    node.wait_for_state([](const std::string& s) { return s == "healthy"; }, 60s, "testsvc healthy");

    const auto catalog_dir = c.host_path("/usr/share/stormnode/roles");
    const auto names = stormnode::roles::load_valid_catalog(catalog_dir).role_names();

    stormnode::TempDir dir("storm-console-test");
    const fs::path pam_dir = dir.path() / "pam.d";
    fs::create_directories(pam_dir);
    const fs::path checker = dir.path() / "check-password";
    stormnode::write_file_atomic(
        checker, std::string("#!/bin/sh\n[ \"$(tr -d '\\000')\" = '") + kPassword + "' ]\n", 0755);
    stormnode::write_file_atomic(
        pam_dir / "storm-console-test",
        "auth required pam_exec.so expose_authtok quiet " + checker.string() +
            "\naccount required pam_permit.so\n");

    Console console(
        dir.path(),
        {"env",
         "DBUS_SYSTEM_BUS_ADDRESS=" + c.bus_address(),
         "TERM=screen",
         STORMNODE_CONSOLE_BINARY,
         "--root=" + c.host_path("/").string(),
         "--catalog=" + catalog_dir.string(),
         "--pam-service=storm-console-test",
         "--pam-confdir=" + pam_dir.string(),
         "--stormctl=/nonexistent/stormctl"},
        120,
        50);

    // The status screen lists the role's units, as storm-roled reports them.
    auto screen = console.wait_for(
        [](const std::string& s) {
            // "Switch role" (the menu) is drawn after the text: the status is whole.
            return contains(s, "Roles: testsvc   State: healthy") && contains(s, "testsvc-api.service") &&
                   contains(s, "Switch role");
        },
        30s,
        "the status screen with testsvc healthy");
    CHECK(contains(screen, "testsvc-db.service"));
    CHECK(contains(screen, "testsvc-worker.service"));
    CHECK(contains(screen, "Switch role"));

    // A wrong password changes nothing.
    console.keys({"Enter"});
    console.wait_for_text("Space marks a role");
    pick_roles(console, names, {"testsvc"}, {"testbad"});
    console.keys({"F12"});
    // The text's last line: the whole list is drawn.
    screen = console.wait_for(
        [](const std::string& s) {
            return contains(s, "Units that start:") && contains(s, "the old ones are restored");
        },
        30s,
        "the switch's unit list");
    CHECK(contains(screen, "testsvc-bad.service"));
    CHECK(contains(screen, "testsvc-api.service"));  // among the units that stop
    console.keys({"F12"});
    console.wait_for_text("enter the root password");
    console.type("not-the-password");
    console.keys({"Enter"});
    console.wait_for_text("Wrong password: nothing was changed", 30s);
    CHECK(node.roles() == std::vector<std::string>{"testsvc"});
    CHECK(node.state() == "healthy");
    CHECK_FALSE(fs::exists(c.host_path("/var/lib/stormnode/transaction.yaml")));

    // The right password: the switch to the role that cannot start rolls back by itself, and says why.
    console.type(kPassword);
    console.keys({"Enter"});
    screen = console.wait_for(
        [](const std::string& s) {
            return contains(s, "rolled back to testsvc") && contains(s, "testsvc-bad.service");
        },
        120s,
        "the switch rolled back, and why");
    INFO(node.diagnostics());
    CHECK(contains(screen, "did not come up"));
    CHECK(contains(screen, "testsvc-bad.service"));  // why
    console.keys({"Enter"});
    screen = console.wait_for(
        [](const std::string& s) {
            return contains(s, "Roles: testsvc   State: healthy") && contains(s, "testsvc-api.service") &&
                   contains(s, "Switch role");
        },
        60s,
        "the status with testsvc healthy again");
    CHECK(contains(screen, "Last switch: testsvc -> testbad: rolled-back"));
    CHECK(node.roles() == std::vector<std::string>{"testsvc"});

    // A switch to another role succeeds and the status shows it healthy.
    console.keys({"Enter"});
    console.wait_for_text("Space marks a role");
    pick_roles(console, names, {"testsvc"}, {"quorum"});
    console.keys({"F12"});
    console.wait_for_text("Units that start:");
    console.keys({"F12"});
    console.wait_for_text("enter the root password");
    console.type(kPassword);
    console.keys({"Enter"});
    console.wait_for_text("Switched to quorum: healthy.", 120s);
    console.keys({"Enter"});
    screen = console.wait_for(
        [](const std::string& s) {
            return contains(s, "Roles: quorum   State: healthy") && contains(s, "corosync-qnetd.service") &&
                   contains(s, "Switch role");
        },
        60s,
        "the status with quorum healthy");
    CHECK(contains(screen, "Last switch: testsvc -> quorum: switched"));
    CHECK_FALSE(contains(screen, "testsvc-api.service"));
    CHECK(node.roles() == std::vector<std::string>{"quorum"});
}
