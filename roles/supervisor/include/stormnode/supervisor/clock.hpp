// Time for the supervisor: "now" and one-shot timers. The daemon uses sd-event; unit tests a fake clock.
#pragma once

#include <chrono>
#include <functional>
#include <memory>

namespace stormnode::roles {

class Clock {
public:
    using time_point = std::chrono::steady_clock::time_point;
    using duration = std::chrono::milliseconds;

    // A pending timer; destroying it cancels it.
    class Timer {
    public:
        Timer() = default;
        Timer(const Timer&) = delete;
        Timer& operator=(const Timer&) = delete;
        Timer(Timer&&) = delete;
        Timer& operator=(Timer&&) = delete;
        virtual ~Timer() = default;
    };

    virtual ~Clock() = default;
    [[nodiscard]] virtual time_point now() const = 0;
    // Calls fn once, after d, from the event loop (never from inside after()).
    [[nodiscard]] virtual std::unique_ptr<Timer> after(duration d, std::function<void()> fn) = 0;
};

}  // namespace stormnode::roles
