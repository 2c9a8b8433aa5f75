// A private dbus-daemon for one test, and a way to run an sd-event loop until something happens.
#pragma once

#include <stormnode/common/error.hpp>
#include <stormnode/common/subprocess.hpp>
#include <stormnode/common/temp_dir.hpp>
#include <stormnode/supervisor/sd_event_loop.hpp>

#include <signal.h>

#include <chrono>
#include <functional>
#include <sstream>
#include <string>

namespace stormnode::roles::testing {

class PrivateBus {
public:
    PrivateBus() {
        const auto result = run_checked(Command{
            {"dbus-daemon",
             "--session",
             "--address=unix:path=" + (dir_.path() / "bus").string(),
             "--print-address=1",
             "--print-pid=1",
             "--fork"}});
        std::istringstream lines(result.out);
        std::getline(lines, address_);
        std::string pid;
        std::getline(lines, pid);
        pid_ = std::stoi(pid);
    }
    PrivateBus(const PrivateBus&) = delete;
    PrivateBus& operator=(const PrivateBus&) = delete;
    PrivateBus(PrivateBus&&) = delete;
    PrivateBus& operator=(PrivateBus&&) = delete;
    ~PrivateBus() {
        if (pid_ > 0) {
            ::kill(pid_, SIGTERM);
        }
    }
    [[nodiscard]] const std::string& address() const noexcept { return address_; }
    [[nodiscard]] const TempDir& dir() const noexcept { return dir_; }

private:
    TempDir dir_{"stormnode-bus"};
    std::string address_;
    int pid_ = -1;
};

// Runs the loop (waiting on its sources, no sleeping) until done() or the time is up.
inline bool run_until(
    sd_event* event,
    const std::function<bool()>& done,
    std::chrono::milliseconds limit = std::chrono::milliseconds(5000)) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!done()) {
        const auto left = deadline - std::chrono::steady_clock::now();
        if (left <= std::chrono::milliseconds(0)) {
            return false;
        }
        const auto usec = std::chrono::duration_cast<std::chrono::microseconds>(left).count();
        check_r(sd_event_run(event, static_cast<uint64_t>(usec)), "running the event loop");
    }
    return true;
}

}  // namespace stormnode::roles::testing
