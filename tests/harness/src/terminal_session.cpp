#include "stormnode/test/terminal_session.hpp"

#include <stormnode/common/error.hpp>
#include <stormnode/common/subprocess.hpp>

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>

namespace stormnode::test {
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

constexpr const char* kSession = "console";

ProcessResult tmux(const fs::path& socket, std::vector<std::string> args) {
    args.insert(args.begin(), {"tmux", "-S", socket.string()});
    Command c{.argv = std::move(args)};
    c.timeout = 20s;
    return run_checked(c);
}

}  // namespace

TerminalSession::TerminalSession(
    const fs::path& dir, const std::vector<std::string>& command, int columns, int rows, Capture capture)
    : socket_(dir / "tmux.sock"),
      fifo_(dir / "pane.fifo"),
      capture_(capture) {
    check_errno(::mkfifo(fifo_.c_str(), 0600), "creating the pane FIFO");
    // Read-write: opening never blocks and the FIFO never reports EOF while tmux's writer comes and goes.
    fifo_fd_ = UniqueFd(
        check_errno(::open(fifo_.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC), "opening the pane FIFO"));
    // A placeholder first: remain-on-exit and the pipe are in place before the command can exit.
    tmux(
        socket_,
        {"new-session",
         "-d",
         "-s",
         kSession,
         "-x",
         std::to_string(columns),
         "-y",
         std::to_string(rows),
         "cat"});
    tmux(socket_, {"set-option", "-t", kSession, "remain-on-exit", "on"});
    tmux(socket_, {"pipe-pane", "-t", kSession, "-O", "cat >> " + fifo_.string()});
    std::vector<std::string> args{"respawn-pane", "-k", "-t", kSession};
    args.insert(args.end(), command.begin(), command.end());
    tmux(socket_, args);
}

TerminalSession::~TerminalSession() {
    run({.argv = {"tmux", "-S", socket_.string(), "kill-server"}});
}

std::string TerminalSession::screen() const {
    if (capture_ == Capture::transcript) {
        return tmux(socket_, {"capture-pane", "-p", "-J", "-S", "-", "-t", kSession}).out;
    }
    return tmux(socket_, {"capture-pane", "-p", "-t", kSession}).out;
}

std::string TerminalSession::dead_status() const {
    return tmux(
               socket_,
               {"display-message",
                "-p",
                "-t",
                kSession,
                "#{pane_dead}:#{pane_dead_status}:#{pane_dead_signal}"})
        .out;
}

void TerminalSession::keys(const std::vector<std::string>& keys) const {
    std::vector<std::string> args{"send-keys", "-t", kSession};
    args.insert(args.end(), keys.begin(), keys.end());
    tmux(socket_, args);
}

void TerminalSession::type(const std::string& text) const {
    tmux(socket_, {"send-keys", "-t", kSession, "-l", text});
}

std::string TerminalSession::wait_for(
    const std::function<bool(const std::string&)>& pred,
    std::chrono::milliseconds timeout,
    const std::string& what,
    sd_bus* bus) const {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
        if (bus != nullptr) {
            while (check_r(sd_bus_process(bus, nullptr), "processing the test's bus") > 0) {
            }
        }
        auto text = screen();
        if (pred(text)) {
            return text;
        }
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left <= 0ms) {
            throw Error(Errc::timeout, "timed out waiting for " + what + "; the screen:\n" + text);
        }
        std::array<pollfd, 2> fds{{
            {fifo_fd_.get(), POLLIN, 0},
            {bus != nullptr ? sd_bus_get_fd(bus) : -1,
             static_cast<short>(bus != nullptr ? sd_bus_get_events(bus) : 0),
             0},
        }};
        if (::poll(fds.data(), fds.size(), static_cast<int>(left.count())) > 0) {
            std::array<char, 4096> buffer{};
            while (::read(fifo_fd_.get(), buffer.data(), buffer.size()) > 0) {
            }
        }
    }
}

std::string TerminalSession::wait_for_text(
    const std::string& part, std::chrono::milliseconds timeout, sd_bus* bus) const {
    return wait_for(
        [&](const std::string& s) { return s.find(part) != std::string::npos; },
        timeout,
        "'" + part + "'",
        bus);
}

}  // namespace stormnode::test
