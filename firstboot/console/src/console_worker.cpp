#include "stormnode/console/console_worker.hpp"

#include "console_text.hpp"

#include <stormnode/common/error.hpp>
#include <stormnode/node_client/bus_handles.hpp>
#include <stormnode/node_client/node_api.hpp>
#include <stormnode/node_client/node_client.hpp>

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <ctime>

namespace stormnode::firstboot {
namespace {

UniqueFd make_eventfd() {
    return UniqueFd(check_errno(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK), "creating an eventfd"));
}

void signal_fd(int fd) {
    const std::uint64_t one = 1;
    // An eventfd only fails a write when its counter would overflow: then it is readable anyway.
    [[maybe_unused]] const auto n = write(fd, &one, sizeof one);
}

void drain_fd(int fd) {
    std::uint64_t value = 0;
    [[maybe_unused]] const auto n = read(fd, &value, sizeof value);
}

}  // namespace

std::optional<CommandResult> CommandRunner::start(const ConsoleCommand& command) {
    if (changes_node(command.body) && !backend_.authenticate(command.password)) {
        return CommandResult{Outcome::auth_failed, "Authentication failed.", {}};
    }
    try {
        return std::visit(
            Overloaded{
                [&](const SetRolesCommand& c) -> std::optional<CommandResult> {
                    why_.clear();
                    why_failed_ = false;
                    switching_ = c.roles;  // before the call: the signal may come right after its reply
                    try {
                        backend_.set_roles(c.roles, c.force);
                    } catch (...) {
                        switching_.reset();
                        throw;
                    }
                    return std::nullopt;
                },
                [&](const RestartRoleCommand& c) -> std::optional<CommandResult> {
                    backend_.restart_role(c.role);
                    return CommandResult{
                        Outcome::done, "Restarting the units of " + roles::to_string(c.role) + ".", {}};
                },
                [&](const JournalCommand& c) -> std::optional<CommandResult> {
                    return CommandResult{Outcome::done, "", backend_.journal(c.unit)};
                },
                [&](const NetworkCommand& c) -> std::optional<CommandResult> {
                    backend_.apply_network(c);
                    return CommandResult{
                        Outcome::done,
                        "Wrote the networkd file for " + c.interface + " and reloaded networkd.",
                        {}};
                },
                [&](const OsRollbackCommand&) -> std::optional<CommandResult> {
                    backend_.os_rollback();
                    backend_.reboot();
                    return CommandResult{Outcome::done, "Rolled back; rebooting.", {}};
                },
                [&](const RebootCommand&) -> std::optional<CommandResult> {
                    backend_.reboot();
                    return CommandResult{Outcome::done, "Rebooting.", {}};
                },
                [&](const PowerOffCommand&) -> std::optional<CommandResult> {
                    backend_.power_off();
                    return CommandResult{Outcome::done, "Powering off.", {}};
                },
                [&](const ShellCommand&) -> std::optional<CommandResult> {
                    return CommandResult{Outcome::done, "", {}};  // the UI thread owns the terminal
                },
            },
            command.body);
    } catch (const Error& e) {
        const Outcome outcome = e.code() == Errc::refused     ? Outcome::refused
                                : e.code() == Errc::not_found ? Outcome::not_available
                                                              : Outcome::failed;
        return CommandResult{outcome, e.what(), {}};
    } catch (const std::exception& e) {
        return CommandResult{Outcome::failed, describe(e), {}};
    }
}

void CommandRunner::status(const NodeView& node) {
    if (!switching_ || node.reason.empty()) {
        return;
    }
    // The failure that ends the new roles wins over what the way back passes through.
    if (node.state.rfind("failed", 0) == 0) {
        why_ = node.reason;
        why_failed_ = true;
    } else if (!why_failed_) {
        why_ = node.reason;
    }
}

std::optional<CommandResult> CommandRunner::switched(
    const std::vector<roles::RoleSpec>& old_roles,
    const std::vector<roles::RoleSpec>& new_roles,
    const std::string& outcome) {
    if (!switching_ || new_roles != *switching_) {
        return std::nullopt;  // another client's switch
    }
    switching_.reset();
    const std::string why = why_.empty() ? std::string() : " Why: " + why_;
    if (outcome == "switched") {
        return CommandResult{
            Outcome::done, "Switched to " + joined(new_roles, ", ", "(none)") + ": healthy.", {}};
    }
    if (outcome == "rolled-back") {
        return CommandResult{
            Outcome::rolled_back,
            "The switch to " + joined(new_roles, ", ", "(none)") + " did not come up; rolled back to " +
                joined(old_roles, ", ", "(none)") + "." + why,
            {}};
    }
    return CommandResult{
        Outcome::failed,
        "The switch to " + joined(new_roles, ", ", "(none)") + " failed and so did the way back to " +
            joined(old_roles, ", ", "(none)") + "." + why,
        {}};
}

std::optional<CommandResult> CommandRunner::daemon_gone() {
    if (!switching_) {
        return std::nullopt;
    }
    switching_.reset();
    return CommandResult{
        Outcome::failed,
        "storm-roled left the bus during the switch; it rolls an unfinished switch back when it starts "
        "again.",
        {}};
}

ConsoleWorker::ConsoleWorker(std::unique_ptr<NodeBackend> backend, std::string bus_address)
    : backend_(std::move(backend)),
      bus_address_(std::move(bus_address)),
      events_fd_(make_eventfd()),
      commands_fd_(make_eventfd()),
      stop_fd_(make_eventfd()) {
    thread_ = std::thread([this] { run(); });
}

ConsoleWorker::~ConsoleWorker() {
    signal_fd(stop_fd_.get());
    thread_.join();
}

void ConsoleWorker::post(ConsoleCommand command) {
    {
        const std::lock_guard lock(mutex_);
        commands_.push_back(std::move(command));
    }
    signal_fd(commands_fd_.get());
}

std::vector<WorkerEvent> ConsoleWorker::take_events() {
    drain_fd(events_fd_.get());
    const std::lock_guard lock(mutex_);
    return std::exchange(events_, {});
}

void ConsoleWorker::emit(WorkerEvent event) {
    {
        const std::lock_guard lock(mutex_);
        events_.push_back(std::move(event));
    }
    signal_fd(events_fd_.get());
}

void ConsoleWorker::run() noexcept {
    try {
        loop();
    } catch (const std::exception& e) {
        NodeView view;
        view.connect_error = "the console's bus worker stopped: " + describe(e);
        {
            const std::lock_guard lock(mutex_);
            stop_reason_ = view.connect_error;
        }
        // Before the event that wakes the UI: set after it, a UI that took the event first saw a worker
        // still running and waited for another event that never came (seen under load).
        stopped_ = true;
        emit(view);
    }
}

std::string ConsoleWorker::stop_reason() {
    const std::lock_guard lock(mutex_);
    return stop_reason_;
}

namespace {

struct Watch {
    bool dirty = true;
    bool gone = false;
    std::vector<NodeView> seen;  // State/Reason pairs from PropertiesChanged, in order
    std::vector<std::pair<std::vector<roles::RoleSpec>, std::pair<std::vector<roles::RoleSpec>, std::string>>>
        switched;

    static std::vector<std::string> strv(sd_bus_message* m) {
        char** items = nullptr;
        check_r(sd_bus_message_read_strv(m, &items), "reading RoleSwitched", Errc::dbus);
        std::vector<std::string> out;
        for (char** s = items; s != nullptr && *s != nullptr; ++s) {
            out.emplace_back(*s);
            std::free(*s);  // NOLINT(cppcoreguidelines-no-malloc): sd-bus allocated it
        }
        std::free(static_cast<void*>(items));  // NOLINT(cppcoreguidelines-no-malloc)
        return out;
    }
    static int on_change(sd_bus_message* /*m*/, void* userdata, sd_bus_error* /*error*/) {
        static_cast<Watch*>(userdata)->dirty = true;
        return 0;
    }
    // The State and Reason a PropertiesChanged carries, as they were when sent: a failure that is rolled
    // back at once is gone by the time a GetAll could read it.
    static int on_properties(sd_bus_message* m, void* userdata, sd_bus_error* /*error*/) {
        auto* self = static_cast<Watch*>(userdata);
        self->dirty = true;
        try {
            const char* what = "reading PropertiesChanged";
            const char* interface = nullptr;
            check_r(sd_bus_message_read(m, "s", &interface), what, Errc::dbus);
            check_r(sd_bus_message_enter_container(m, 'a', "{sv}"), what, Errc::dbus);
            NodeView seen;
            while (check_r(sd_bus_message_enter_container(m, 'e', "sv"), what, Errc::dbus) > 0) {
                const char* name = nullptr;
                check_r(sd_bus_message_read(m, "s", &name), what, Errc::dbus);
                const std::string property = name;
                if (property == "State" || property == "Reason") {
                    const char* value = nullptr;
                    check_r(sd_bus_message_read(m, "v", "s", &value), what, Errc::dbus);
                    (property == "State" ? seen.state : seen.reason) = value;
                } else {
                    check_r(sd_bus_message_skip(m, "v"), what, Errc::dbus);
                }
                check_r(sd_bus_message_exit_container(m), what, Errc::dbus);
            }
            if (!seen.reason.empty()) {
                self->seen.push_back(std::move(seen));
            }
        } catch (const std::exception&) {
            // Not ours to act on; the status re-read still shows the truth.
        }
        return 0;
    }
    static int on_switched(sd_bus_message* m, void* userdata, sd_bus_error* /*error*/) {
        auto* self = static_cast<Watch*>(userdata);
        self->dirty = true;
        try {
            auto old_roles = roles::parse_role_specs(strv(m));  // the bus carries them as text
            auto new_roles = roles::parse_role_specs(strv(m));
            const char* outcome = nullptr;
            check_r(sd_bus_message_read(m, "s", &outcome), "reading RoleSwitched", Errc::dbus);
            self->switched.push_back({std::move(old_roles), {std::move(new_roles), outcome}});
        } catch (const std::exception&) {
            // A malformed signal is not ours to act on; the status re-read still shows the truth.
        }
        return 0;
    }
    static int on_owner(sd_bus_message* m, void* userdata, sd_bus_error* /*error*/) {
        auto* self = static_cast<Watch*>(userdata);
        self->dirty = true;
        const char* name = nullptr;
        const char* old_owner = nullptr;
        const char* new_owner = nullptr;
        if (sd_bus_message_read(m, "sss", &name, &old_owner, &new_owner) >= 0 && new_owner != nullptr &&
            *new_owner == '\0') {
            self->gone = true;
        }
        return 0;
    }
};

// The system bus, or the bus at address (tests).
roles::BusConnection connect_bus(const std::string& address) {
    roles::BusConnection bus;
    if (address.empty()) {
        check_r(sd_bus_open_system(out(bus)), "connecting to the system bus", Errc::dbus);
    } else {
        check_r(sd_bus_new(out(bus)), "creating a bus connection", Errc::dbus);
        check_r(sd_bus_set_address(bus.get(), address.c_str()), "setting the bus address", Errc::dbus);
        check_r(sd_bus_set_bus_client(bus.get(), 1), "setting up the bus connection", Errc::dbus);
        check_r(sd_bus_start(bus.get()), "connecting to " + address, Errc::dbus);
    }
    return bus;
}

// The matches that feed watch, for as long as the slots live.
struct WatchSlots {
    roles::BusSlot properties;
    roles::BusSlot node_signals;
    roles::BusSlot switched;
    roles::BusSlot owner;
};

WatchSlots watch_node(sd_bus* bus, Watch& watch) {
    WatchSlots slots;
    const std::string path = roles::kNodeObjectPath;
    const std::string node_rule =
        "type='signal',path='" + path + "',interface='" + roles::kNodeInterface + "'";
    const std::string properties_rule =
        "type='signal',path='" + path +
        "',interface='org.freedesktop.DBus.Properties',member='PropertiesChanged'";
    const std::string owner_rule =
        std::string(
            "type='signal',sender='org.freedesktop.DBus',path='/org/freedesktop/DBus',"
            "interface='org.freedesktop.DBus',member='NameOwnerChanged',arg0='") +
        roles::kNodeBusName + "'";
    check_r(
        sd_bus_add_match(bus, out(slots.properties), properties_rule.c_str(), Watch::on_properties, &watch),
        "watching storm-roled",
        Errc::dbus);
    check_r(
        sd_bus_add_match(bus, out(slots.node_signals), node_rule.c_str(), Watch::on_change, &watch),
        "watching storm-roled",
        Errc::dbus);
    check_r(
        sd_bus_match_signal(
            bus,
            out(slots.switched),
            nullptr,
            roles::kNodeObjectPath,
            roles::kNodeInterface,
            "RoleSwitched",
            Watch::on_switched,
            &watch),
        "watching RoleSwitched",
        Errc::dbus);
    check_r(
        sd_bus_add_match(bus, out(slots.owner), owner_rule.c_str(), Watch::on_owner, &watch),
        "watching storm-roled",
        Errc::dbus);
    return slots;
}

// How long poll() may sleep: until sd-bus's own next timeout (a pending call's reply), at most a
// minute; -1 when it has none.
int bus_timeout_ms(sd_bus* bus) {
    std::uint64_t usec = UINT64_MAX;
    check_r(sd_bus_get_timeout(bus, &usec), "reading the bus timeout", Errc::dbus);
    int timeout_ms = -1;
    if (usec != UINT64_MAX) {
        timespec now{};
        clock_gettime(CLOCK_MONOTONIC, &now);
        const std::uint64_t now_usec = static_cast<std::uint64_t>(now.tv_sec) * 1000000U +
                                       static_cast<std::uint64_t>(now.tv_nsec) / 1000U;
        timeout_ms = usec <= now_usec
                         ? 0
                         : static_cast<int>(std::min<std::uint64_t>((usec - now_usec) / 1000U + 1, 60000));
    }
    return timeout_ms;
}

}  // namespace

void ConsoleWorker::loop() {
    const roles::BusConnection bus = connect_bus(bus_address_);
    Watch watch;
    const WatchSlots slots = watch_node(bus.get(), watch);

    CommandRunner runner(*backend_);
    while (true) {
        // Everything queued on the bus first, then one status read for all of it.
        while (check_r(sd_bus_process(bus.get(), nullptr), "reading the bus", Errc::dbus) > 0) {
        }
        for (const auto& seen : std::exchange(watch.seen, {})) {
            runner.status(seen);
        }
        if (watch.dirty) {
            watch.dirty = false;
            auto view = backend_->read_status();
            runner.status(view);
            emit(view);
        }
        for (auto& [old_roles, rest] : std::exchange(watch.switched, {})) {
            if (auto result = runner.switched(old_roles, rest.first, rest.second)) {
                emit(*result);
            }
        }
        if (watch.gone) {
            watch.gone = false;
            if (auto result = runner.daemon_gone()) {
                emit(*result);
            }
        }
        std::vector<ConsoleCommand> commands;
        {
            const std::lock_guard lock(mutex_);
            commands = std::exchange(commands_, {});
        }
        for (const auto& command : commands) {
            if (auto result = runner.start(command)) {
                emit(*result);
                watch.dirty = true;  // a change shows in the status even when no signal says so
            }
        }
        if (!commands.empty() || watch.dirty) {
            continue;
        }

        const int timeout_ms = bus_timeout_ms(bus.get());
        std::array<pollfd, 3> fds{{
            {sd_bus_get_fd(bus.get()), static_cast<short>(sd_bus_get_events(bus.get())), 0},
            {commands_fd_.get(), POLLIN, 0},
            {stop_fd_.get(), POLLIN, 0},
        }};
        const int r = poll(fds.data(), fds.size(), timeout_ms);
        if (r < 0 && errno != EINTR) {
            check_errno(r, "waiting for the bus");
        }
        if ((fds[2].revents & POLLIN) != 0) {
            return;
        }
        if ((fds[1].revents & POLLIN) != 0) {
            drain_fd(commands_fd_.get());
        }
    }
}

}  // namespace stormnode::firstboot
