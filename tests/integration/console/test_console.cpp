// storm-console end to end: tmux runs the real storm-console on the host, connected to a real storm-roled
// in systemd-nspawn (the container's system bus via DBUS_SYSTEM_BUS_ADDRESS, its files via --root), and
// the test types on it like an operator. The password is checked by a test-only PAM service (pam_exec and
// a script comparing against a test password) in a private --pam-confdir: the host's users are untouched.
// Waiting is on the pane's output (tmux pipe-pane into a FIFO, read with a deadline), then capture-pane.
#include <stormnode/common/error.hpp>
#include <stormnode/common/subprocess.hpp>
#include <stormnode/common/temp_dir.hpp>
#include <stormnode/roles/catalog.hpp>
#include <stormnode/test/roled_node.hpp>
#include <stormnode/test/rootfs_cache.hpp>

#include <catch2/catch.hpp>
#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <filesystem>
#include <functional>

using namespace std::chrono_literals;
namespace st = stormnode::test;
namespace fs = std::filesystem;

namespace {

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

stormnode::ProcessResult tmux(const fs::path& socket, std::vector<std::string> args) {
    args.insert(args.begin(), {"tmux", "-S", socket.string()});
    stormnode::Command c{.argv = args};
    c.timeout = 20s;
    return stormnode::run_checked(c);
}

class Console {
public:
    Console(const fs::path& dir, const std::vector<std::string>& command)
        : socket_(dir / "tmux.sock"),
          fifo_(dir / "pane.fifo") {
        stormnode::check_errno(mkfifo(fifo_.c_str(), 0600), "creating the pane FIFO");
        // Read-write: opening never blocks and the FIFO never reports EOF while tmux's writer comes and goes.
        fifo_fd_ = stormnode::UniqueFd(stormnode::check_errno(
            open(fifo_.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC), "opening the pane FIFO"));
        std::vector<std::string> args{"new-session", "-d", "-s", "console", "-x", "120", "-y", "50"};
        args.insert(args.end(), command.begin(), command.end());
        tmux(socket_, args);
        tmux(socket_, {"set-option", "-t", "console", "remain-on-exit", "on"});
        tmux(socket_, {"pipe-pane", "-t", "console", "-O", "cat >> " + fifo_.string()});
    }
    Console(const Console&) = delete;
    Console& operator=(const Console&) = delete;
    Console(Console&&) = delete;
    Console& operator=(Console&&) = delete;
    ~Console() { stormnode::run({.argv = {"tmux", "-S", socket_.string(), "kill-server"}}); }

    [[nodiscard]] std::string screen() const {
        return tmux(socket_, {"capture-pane", "-p", "-t", "console"}).out;
    }

    // tmux key names ("Down", "Space", "F12", "Enter") or literal text.
    void keys(const std::vector<std::string>& keys) const {
        std::vector<std::string> args{"send-keys", "-t", "console"};
        args.insert(args.end(), keys.begin(), keys.end());
        tmux(socket_, args);
    }
    void type(const std::string& text) const { tmux(socket_, {"send-keys", "-t", "console", "-l", text}); }

    // Checks the screen each time the pane writes something, until pred holds or the deadline passes.
    std::string wait_for(
        const std::function<bool(const std::string&)>& pred,
        std::chrono::milliseconds timeout,
        const std::string& what) const {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        while (true) {
            auto text = screen();
            if (pred(text)) {
                return text;
            }
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                deadline - std::chrono::steady_clock::now());
            if (left <= 0ms) {
                FAIL("timed out waiting for " << what << "; the screen:\n" << text);
            }
            pollfd p{fifo_fd_.get(), POLLIN, 0};
            if (poll(&p, 1, static_cast<int>(left.count())) > 0) {
                std::array<char, 4096> buffer{};
                while (read(fifo_fd_.get(), buffer.data(), buffer.size()) > 0) {
                }
            }
        }
    }
    std::string wait_for_text(const std::string& part, std::chrono::milliseconds timeout = 30s) const {
        return wait_for(
            [&](const std::string& s) { return s.find(part) != std::string::npos; },
            timeout,
            "'" + part + "'");
    }

private:
    fs::path socket_;
    fs::path fifo_;
    stormnode::UniqueFd fifo_fd_;
};

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
         "--stormctl=/nonexistent/stormctl"});

    // The status screen lists the role's units, as storm-roled reports them.
    auto screen = console.wait_for(
        [](const std::string& s) {
            return contains(s, "Roles: testsvc   State: healthy") && contains(s, "testsvc-api.service");
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
    screen = console.wait_for_text("Units that start:");
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
    screen = console.wait_for_text("rolled back to testsvc", 120s);
    INFO(node.diagnostics());
    CHECK(contains(screen, "did not come up"));
    CHECK(contains(screen, "testsvc-bad.service"));  // why
    console.keys({"Enter"});
    screen = console.wait_for(
        [](const std::string& s) {
            return contains(s, "Roles: testsvc   State: healthy") && contains(s, "testsvc-api.service");
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
            return contains(s, "Roles: quorum   State: healthy") && contains(s, "corosync-qnetd.service");
        },
        60s,
        "the status with quorum healthy");
    CHECK(contains(screen, "Last switch: testsvc -> quorum: switched"));
    CHECK_FALSE(contains(screen, "testsvc-api.service"));
    CHECK(node.roles() == std::vector<std::string>{"quorum"});
}
