// Health probes (tcp, http, exec, amqp_peer). A probe never blocks: its result arrives later from the
// event loop, within the check's timeout.
#pragma once

#include <stormnode/catalog/catalog.hpp>
#include <stormnode/supervisor/systemd_manager.hpp>

#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace stormnode::roles {

struct ProbeResult {
    bool ok = false;
    std::string detail;  // why it failed ("connection refused", "status 503", "exit status 2", ...)
    std::optional<int> exit_status;  // exec: how it exited, when it ran to its end
};

class Prober {
public:
    // A running probe; destroying it cancels it (its callback is then never called).
    class Pending {
    public:
        Pending() = default;
        Pending(const Pending&) = delete;
        Pending& operator=(const Pending&) = delete;
        Pending(Pending&&) = delete;
        Pending& operator=(Pending&&) = delete;
        virtual ~Pending() = default;
    };
    using Callback = std::function<void(const ProbeResult&)>;

    Prober() = default;
    Prober(const Prober&) = delete;
    Prober& operator=(const Prober&) = delete;
    Prober(Prober&&) = delete;
    Prober& operator=(Prober&&) = delete;
    virtual ~Prober() = default;

    // done is never called from inside probe() itself. Check kind unit is the supervisor's own business.
    [[nodiscard]] virtual std::unique_ptr<Pending> probe(
        const Check& check, const UnitState& unit, Callback done) = 0;
};

// "tcp 127.0.0.1:5672", "http http://127.0.0.1:5000/healthcheck", "exec /bin/true", "amqp_peer :5672"
std::string describe_check(const Check& check);

}  // namespace stormnode::roles
