// A program on a terminal the test can read and type on: a detached tmux session whose pane runs the
// command, for full-screen programs such as storm-console. Waiting is on the pane's output (tmux
// pipe-pane into a FIFO, polled with a deadline), then the screen is captured and checked again.
// RAII: the destructor kills the tmux server (its own socket, so nothing else is touched).
#pragma once

#include <stormnode/common/c_handle.hpp>

#include <systemd/sd-bus.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace stormnode::test {

class TerminalSession {
public:
    // What a capture returns: the visible screen, or everything the pane printed (wrapped lines joined,
    // with what scrolled off) for line-oriented output.
    enum class Capture { screen, transcript };

    // Runs command in dir/tmux.sock's session on a columns x rows terminal. The pane stays after the
    // command exits (remain-on-exit is set before it starts), so its last words and status stay readable.
    TerminalSession(
        const std::filesystem::path& dir,
        const std::vector<std::string>& command,
        int columns,
        int rows,
        Capture capture = Capture::screen);
    TerminalSession(const TerminalSession&) = delete;
    TerminalSession& operator=(const TerminalSession&) = delete;
    TerminalSession(TerminalSession&&) = delete;
    TerminalSession& operator=(TerminalSession&&) = delete;
    ~TerminalSession();

    [[nodiscard]] std::string screen() const;
    // "0::" while the command runs; "1:<exit status>:" or "1::<signal>" after.
    [[nodiscard]] std::string dead_status() const;

    // tmux key names ("Down", "Space", "F12", "Enter"), each a key press.
    void keys(const std::vector<std::string>& keys) const;
    // Literal text.
    void type(const std::string& text) const;

    // Checks the screen each time the pane writes something, until pred holds; throws Errc::timeout with
    // the last screen when the deadline passes. bus (optional) is processed meanwhile, so a test's own
    // D-Bus objects answer the program's calls.
    std::string wait_for(
        const std::function<bool(const std::string&)>& pred,
        std::chrono::milliseconds timeout,
        const std::string& what,
        sd_bus* bus = nullptr) const;
    std::string wait_for_text(
        const std::string& part,
        std::chrono::milliseconds timeout = std::chrono::seconds(30),
        sd_bus* bus = nullptr) const;

private:
    std::filesystem::path socket_;
    std::filesystem::path fifo_;
    UniqueFd fifo_fd_;
    Capture capture_;
};

}  // namespace stormnode::test
