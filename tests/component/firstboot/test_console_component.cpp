// storm-console without storm-roled, as on a live boot from the ISO (storm-roled.service does not run
// there): tmux drives the real binary on a private dbus-daemon with nothing owning org.stormclouds.Node1.
// The console must stay up, say "storm-roled is not running" next to the hostname, and follow the name
// coming and going (NameOwnerChanged) by itself. With no bus at all, or no terminal, it must exit 1 with a
// clear message (it used to crash or exit silently in a restart loop). Waiting is on the pane's output
// (tmux pipe-pane into a FIFO, read with a deadline), then capture-pane.
#include <stormnode/common/error.hpp>
#include <stormnode/common/subprocess.hpp>
#include <stormnode/common/temp_dir.hpp>
#include <stormnode/test/bus.hpp>

#include <catch2/catch.hpp>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <systemd/sd-bus.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <filesystem>
#include <functional>
#include <sstream>
#include <string>

using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

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
        // remain-on-exit before the command runs: an early exit still leaves its status and last words.
        tmux(socket_, {"new-session", "-d", "-s", "console", "-x", "120", "-y", "40", "cat"});
        tmux(socket_, {"set-option", "-t", "console", "remain-on-exit", "on"});
        tmux(socket_, {"pipe-pane", "-t", "console", "-O", "cat >> " + fifo_.string()});
        std::vector<std::string> args{"respawn-pane", "-k", "-t", "console"};
        args.insert(args.end(), command.begin(), command.end());
        tmux(socket_, args);
    }
    Console(const Console&) = delete;
    Console& operator=(const Console&) = delete;
    Console(Console&&) = delete;
    Console& operator=(Console&&) = delete;
    ~Console() { stormnode::run({.argv = {"tmux", "-S", socket_.string(), "kill-server"}}); }

    [[nodiscard]] std::string screen() const {
        return tmux(socket_, {"capture-pane", "-p", "-J", "-S", "-", "-t", "console"})
            .out;  // -J: wrapped lines joined; -S -: with what scrolled off
    }
    // "0::" while the command runs; "1:<exit status>:" or "1::<signal>" after.
    [[nodiscard]] std::string dead_status() const {
        return tmux(
                   socket_,
                   {"display-message",
                    "-p",
                    "-t",
                    "console",
                    "#{pane_dead}:#{pane_dead_status}:#{pane_dead_signal}"})
            .out;
    }

    // Checks the screen each time the pane writes something, until pred holds or the deadline passes.
    // bus (optional) is processed meanwhile: the test's own connection answers the console's calls.
    std::string wait_for(
        const std::function<bool(const std::string&)>& pred,
        std::chrono::milliseconds timeout,
        const std::string& what,
        sd_bus* bus = nullptr) const {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        while (true) {
            if (bus != nullptr) {
                while (stormnode::check_r(sd_bus_process(bus, nullptr), "processing the test bus") > 0) {
                }
            }
            auto text = screen();
            if (pred(text)) {
                return text;
            }
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                deadline - std::chrono::steady_clock::now());
            if (left <= 0ms) {
                FAIL("timed out waiting for " << what << "; the screen:\n" << text);
            }
            std::array<pollfd, 2> fds{{
                {fifo_fd_.get(), POLLIN, 0},
                {bus != nullptr ? sd_bus_get_fd(bus) : -1,
                 static_cast<short>(bus != nullptr ? sd_bus_get_events(bus) : 0),
                 0},
            }};
            if (poll(fds.data(), fds.size(), static_cast<int>(left.count())) > 0) {
                std::array<char, 4096> buffer{};
                while (read(fifo_fd_.get(), buffer.data(), buffer.size()) > 0) {
                }
            }
        }
    }
    std::string wait_for_text(
        const std::string& part, std::chrono::milliseconds timeout = 30s, sd_bus* bus = nullptr) const {
        return wait_for(
            [&](const std::string& s) { return s.find(part) != std::string::npos; },
            timeout,
            "'" + part + "'",
            bus);
    }

private:
    fs::path socket_;
    fs::path fifo_;
    stormnode::UniqueFd fifo_fd_;
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
    const Console console(dir.path(), console_command(bus.address(), node_root(dir.path())));

    auto screen = console.wait_for_text("storm-roled is not running");
    CHECK(contains(screen, "Host: livehost"));
    CHECK(contains(screen, "Image:"));
    CHECK(contains(screen, "Choose a role"));  // the menu is there: the console did not exit
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
    const Console console(dir.path(), command);
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
