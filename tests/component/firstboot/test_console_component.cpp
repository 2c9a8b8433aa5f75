// storm-console without storm-roled, as on a live boot from the ISO (storm-roled.service does not run
// there): tmux drives the real binary on a private dbus-daemon with nothing owning org.stormclouds.Node1.
// The console must stay up, say "storm-roled is not running" next to the hostname, and follow the name
// coming and going (NameOwnerChanged) by itself. With no bus at all, or no terminal, it must exit 1 with a
// clear message (it used to crash or exit silently in a restart loop). The terminal is the harness's
// TerminalSession (tmux), read as a transcript: the exit message may scroll.
#include <stormnode/common/error.hpp>
#include <stormnode/common/subprocess.hpp>
#include <stormnode/common/temp_dir.hpp>
#include <stormnode/test/bus.hpp>
#include <stormnode/test/terminal_session.hpp>

#include <catch2/catch.hpp>
#include <signal.h>
#include <systemd/sd-bus.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <sstream>
#include <string>

using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

using Console = stormnode::test::TerminalSession;

constexpr const char* kNodeBusName = "org.stormclouds.Node1";

// A private dbus-daemon in dir/bus, stopped by its pid.
class PrivateBus {
public:
    explicit PrivateBus(const fs::path& dir) : address_("unix:path=" + (dir / "bus").string()) {
        const auto result = stormnode::run_checked(
            {.argv = {
                 "dbus-daemon",
                 "--session",
                 "--address=" + address_,
                 "--print-address=1",
                 "--print-pid=1",
                 "--fork"}});
        std::istringstream lines(result.out);
        std::string printed_address;
        lines >> printed_address >> pid_;
        REQUIRE(pid_ > 0);
    }
    PrivateBus(const PrivateBus&) = delete;
    PrivateBus& operator=(const PrivateBus&) = delete;
    PrivateBus(PrivateBus&&) = delete;
    PrivateBus& operator=(PrivateBus&&) = delete;
    ~PrivateBus() { kill(pid_, SIGTERM); }

    [[nodiscard]] const std::string& address() const noexcept { return address_; }

private:
    std::string address_;
    pid_t pid_ = 0;
};

bool contains(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
}

std::vector<std::string> console_command(const std::string& bus_address, const fs::path& root) {
    return {
        "env",
        "DBUS_SYSTEM_BUS_ADDRESS=" + bus_address,
        "TERM=screen",
        STORM_CONSOLE_PATH,
        "--root=" + root.string(),
        "--catalog=" + std::string(STORMNODE_SOURCE_DIR) + "/roles/catalog"};
}

fs::path node_root(const fs::path& dir) {
    const auto root = dir / "root";
    fs::create_directories(root / "etc");
    stormnode::write_file_atomic(root / "etc/hostname", "livehost\n", 0644);
    return root;
}

}  // namespace

TEST_CASE("storm-console with no storm-roled on the bus stays up and follows Node1", "[console][component]") {
    stormnode::TempDir dir("storm-console-noroled");
    const PrivateBus bus(dir.path());
    const Console console(
        dir.path(),
        console_command(bus.address(), node_root(dir.path())),
        120,
        40,
        Console::Capture::transcript);

    // The menu is drawn after the text: waiting for both sees a whole screen, not one half-drawn.
    auto screen = console.wait_for(
        [](const std::string& s) {
            return contains(s, "storm-roled is not running") && contains(s, "Choose a role");
        },
        30s,
        "the status saying storm-roled is not running, with the menu (the console did not exit)");
    CHECK(contains(screen, "Host: livehost"));
    CHECK(contains(screen, "Image:"));
    CHECK(console.dead_status() == "0::\n");

    {
        // Something takes the name but serves no Node1 object: the console re-reads on NameOwnerChanged
        // and says what it got now, without being poked.
        auto owner = stormnode::test::connect_bus(bus.address());
        stormnode::check_r(sd_bus_request_name(owner.get(), kNodeBusName, 0), "taking the Node1 name");
        screen = console.wait_for(
            [](const std::string& s) {
                return !contains(s, "is not running") && contains(s, "Unknown object");
            },
            30s,
            "the status after Node1 appeared",
            owner.get());
        CHECK(contains(screen, "Host: livehost"));
    }  // the owner's connection closes: the name goes away again

    screen = console.wait_for_text("storm-roled is not running");
    CHECK(console.dead_status() == "0::\n");
}

TEST_CASE("storm-console with no system bus exits 1 with the reason", "[console][component]") {
    stormnode::TempDir dir("storm-console-nobus");
    auto command = console_command("unix:path=" + (dir.path() / "no-bus").string(), node_root(dir.path()));
    // The shell says how it ended, as output the wait sees (tmux's own pane status has no event).
    command.insert(command.begin(), {"sh", "-c", R"("$0" "$@"; echo "storm-console exited with $?")"});
    const Console console(dir.path(), command, 120, 40, Console::Capture::transcript);
    const auto screen = console.wait_for_text("storm-console exited with");
    auto unwrapped = screen;  // the terminal wraps the message anywhere
    std::erase(unwrapped, '\n');
    CHECK(contains(unwrapped, "connecting to the system bus: No such file or directory"));
    CHECK(contains(screen, "storm-console exited with 1\n"));  // 1, not 128+signal as for a crash
}

TEST_CASE("storm-console with no terminal exits 1 with the reason", "[console][component]") {
    stormnode::TempDir dir("storm-console-notty");
    PrivateBus bus(dir.path());
    stormnode::Command c{.argv = {STORM_CONSOLE_PATH, "--root=" + node_root(dir.path()).string()}};
    c.env = {{"DBUS_SYSTEM_BUS_ADDRESS", bus.address()}, {"TERM", "linux"}};
    c.timeout = 20s;  // stdin is /dev/null
    const auto result = stormnode::run(c);
    CHECK_FALSE(result.timed_out);
    CHECK(result.term_signal == 0);
    CHECK(result.exit_status == 1);
    CHECK(contains(result.err, "no terminal"));
}
