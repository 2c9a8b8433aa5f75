#include "stormnode/test/bus.hpp"

#include <stormnode/common/error.hpp>

#include <cerrno>
#include <optional>

namespace stormnode::test {
namespace {

struct BusError {
    sd_bus_error error = SD_BUS_ERROR_NULL;
    BusError() = default;
    BusError(const BusError&) = delete;
    BusError& operator=(const BusError&) = delete;
    BusError(BusError&&) = delete;
    BusError& operator=(BusError&&) = delete;
    ~BusError() { sd_bus_error_free(&error); }
};

void check_call(int r, const BusError& e, const std::string& what) {
    if (r < 0) {
        const std::string detail =
            sd_bus_error_is_set(&e.error) != 0
                ? std::string(e.error.name) + ": " + (e.error.message ? e.error.message : "")
                : std::error_code(-r, std::system_category()).message();
        throw Error(Errc::dbus, what + ": " + detail, std::error_code(-r, std::system_category()));
    }
}

// Reads one variant (the message is positioned at it) into text.
std::string read_variant(sd_bus_message* m) {
    char type = 0;
    const char* contents = nullptr;
    check_r(sd_bus_message_peek_type(m, &type, &contents), "peeking a variant", Errc::dbus);
    check_r(
        sd_bus_message_enter_container(m, SD_BUS_TYPE_VARIANT, contents), "entering a variant", Errc::dbus);
    std::string text;
    const std::string sig = contents;
    if (sig == "s" || sig == "o" || sig == "g") {
        const char* s = nullptr;
        check_r(sd_bus_message_read_basic(m, sig[0], &s), "reading a string", Errc::dbus);
        text = s;
    } else if (sig == "u") {
        uint32_t v = 0;
        check_r(sd_bus_message_read_basic(m, 'u', &v), "reading u", Errc::dbus);
        text = std::to_string(v);
    } else if (sig == "i") {
        int32_t v = 0;
        check_r(sd_bus_message_read_basic(m, 'i', &v), "reading i", Errc::dbus);
        text = std::to_string(v);
    } else if (sig == "t") {
        uint64_t v = 0;
        check_r(sd_bus_message_read_basic(m, 't', &v), "reading t", Errc::dbus);
        text = std::to_string(v);
    } else if (sig == "x") {
        int64_t v = 0;
        check_r(sd_bus_message_read_basic(m, 'x', &v), "reading x", Errc::dbus);
        text = std::to_string(v);
    } else if (sig == "b") {
        int v = 0;
        check_r(sd_bus_message_read_basic(m, 'b', &v), "reading b", Errc::dbus);
        text = v != 0 ? "true" : "false";
    } else if (sig == "as") {
        check_r(sd_bus_message_enter_container(m, SD_BUS_TYPE_ARRAY, "s"), "entering as", Errc::dbus);
        const char* s = nullptr;
        while (check_r(sd_bus_message_read_basic(m, 's', &s), "reading as", Errc::dbus) > 0) {
            text += text.empty() ? s : std::string(",") + s;
        }
        check_r(sd_bus_message_exit_container(m), "leaving as", Errc::dbus);
    } else if (sig == "ay") {
        const void* data = nullptr;
        size_t size = 0;
        check_r(sd_bus_message_read_array(m, 'y', &data, &size), "reading ay", Errc::dbus);
        static constexpr char kHex[] = "0123456789abcdef";
        for (size_t i = 0; i < size; ++i) {
            const auto byte = static_cast<const unsigned char*>(data)[i];
            text += kHex[byte >> 4];
            text += kHex[byte & 0xf];
        }
    } else {
        check_r(sd_bus_message_skip(m, contents), "skipping a variant", Errc::dbus);
        text = "<" + sig + ">";
    }
    check_r(sd_bus_message_exit_container(m), "leaving a variant", Errc::dbus);
    return text;
}

PropertyMap read_property_dict(sd_bus_message* m) {
    PropertyMap result;
    check_r(sd_bus_message_enter_container(m, SD_BUS_TYPE_ARRAY, "{sv}"), "entering a{sv}", Errc::dbus);
    while (check_r(
               sd_bus_message_enter_container(m, SD_BUS_TYPE_DICT_ENTRY, "sv"), "entering {sv}", Errc::dbus) >
           0) {
        const char* name = nullptr;
        check_r(sd_bus_message_read_basic(m, 's', &name), "reading a property name", Errc::dbus);
        const std::string key = name;
        result[key] = read_variant(m);
        check_r(sd_bus_message_exit_container(m), "leaving {sv}", Errc::dbus);
    }
    check_r(sd_bus_message_exit_container(m), "leaving a{sv}", Errc::dbus);
    return result;
}

}  // namespace

Bus connect_bus(const std::string& address) {
    Bus bus;
    check_r(sd_bus_new(out(bus)), "creating a bus", Errc::dbus);
    check_r(sd_bus_set_address(bus.get(), address.c_str()), "setting bus address " + address, Errc::dbus);
    check_r(sd_bus_set_bus_client(bus.get(), 1), "making a bus client", Errc::dbus);
    check_r(sd_bus_start(bus.get()), "connecting to " + address, Errc::dbus);
    return bus;
}

std::string get_property(
    sd_bus* bus,
    const std::string& destination,
    const std::string& path,
    const std::string& interface,
    const std::string& property) {
    BusError error;
    Message reply;
    const int r = sd_bus_call_method(
        bus,
        destination.c_str(),
        path.c_str(),
        "org.freedesktop.DBus.Properties",
        "Get",
        &error.error,
        out(reply),
        "ss",
        interface.c_str(),
        property.c_str());
    check_call(r, error, "reading " + interface + "." + property + " of " + path);
    return read_variant(reply.get());
}

Message get_property_message(
    sd_bus* bus,
    const std::string& destination,
    const std::string& path,
    const std::string& interface,
    const std::string& property) {
    BusError error;
    Message reply;
    const int r = sd_bus_call_method(
        bus,
        destination.c_str(),
        path.c_str(),
        "org.freedesktop.DBus.Properties",
        "Get",
        &error.error,
        out(reply),
        "ss",
        interface.c_str(),
        property.c_str());
    check_call(r, error, "reading " + interface + "." + property + " of " + path);
    return reply;
}

PropertyMap get_all_properties(
    sd_bus* bus, const std::string& destination, const std::string& path, const std::string& interface) {
    BusError error;
    Message reply;
    const int r = sd_bus_call_method(
        bus,
        destination.c_str(),
        path.c_str(),
        "org.freedesktop.DBus.Properties",
        "GetAll",
        &error.error,
        out(reply),
        "s",
        interface.c_str());
    check_call(r, error, "reading the properties of " + interface + " at " + path);
    return read_property_dict(reply.get());
}

PropertyMap decode_properties_changed(sd_bus_message* message, std::string* interface) {
    check_r(sd_bus_message_rewind(message, 1), "rewinding a message", Errc::dbus);
    const char* iface = nullptr;
    check_r(sd_bus_message_read_basic(message, 's', &iface), "reading the interface", Errc::dbus);
    if (interface != nullptr) {
        *interface = iface;
    }
    return read_property_dict(message);
}

SignalRecorder::SignalRecorder(sd_bus* bus, const std::string& match_rule) : bus_(bus) {
    check_r(
        sd_bus_add_match(bus, out(slot_), match_rule.c_str(), &SignalRecorder::on_message, this),
        "adding match " + match_rule,
        Errc::dbus);
}

int SignalRecorder::on_message(sd_bus_message* m, void* userdata, sd_bus_error* /*error*/) {
    auto* self = static_cast<SignalRecorder*>(userdata);
    Signal s;
    s.received = std::chrono::steady_clock::now();
    s.received_wall = std::chrono::system_clock::now();
    s.message.reset(sd_bus_message_ref(m));
    s.path = sd_bus_message_get_path(m) != nullptr ? sd_bus_message_get_path(m) : "";
    s.member = sd_bus_message_get_member(m) != nullptr ? sd_bus_message_get_member(m) : "";
    self->queue_.push_back(std::move(s));
    return 0;
}

void SignalRecorder::clear() {
    while (check_r(sd_bus_process(bus_, nullptr), "processing the bus", Errc::dbus) > 0) {
    }
    queue_.clear();
}

Signal SignalRecorder::wait_for(
    const std::function<bool(const Signal&)>& pred,
    std::chrono::milliseconds timeout,
    const std::string& what) {
    std::optional<Signal> found;
    std::size_t scanned = 0;
    auto scan = [&] {
        for (; scanned < queue_.size(); ++scanned) {
            if (pred(queue_[scanned])) {
                found = std::move(queue_[scanned]);
                queue_.erase(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(scanned) + 1);
                return true;
            }
        }
        return false;
    };
    if (!process_until(bus_, scan, timeout)) {
        throw Error(
            Errc::timeout, "timed out after " + std::to_string(timeout.count()) + " ms waiting for " + what);
    }
    return std::move(*found);
}

bool process_until(sd_bus* bus, const std::function<bool()>& done, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        if (done()) {
            return true;
        }
        const int r = check_r(sd_bus_process(bus, nullptr), "processing the bus", Errc::dbus);
        if (r > 0) {
            continue;
        }
        const auto now = std::chrono::steady_clock::now();
        if (now >= deadline) {
            return done();
        }
        const auto left = std::chrono::duration_cast<std::chrono::microseconds>(deadline - now);
        const int w = sd_bus_wait(bus, static_cast<uint64_t>(left.count()));
        if (w < 0 && w != -EINTR) {
            check_r(w, "waiting on the bus", Errc::dbus);
        }
    }
}

namespace systemd1 {

void subscribe(sd_bus* bus) {
    BusError error;
    const int r = sd_bus_call_method(bus, kService, kPath, kManager, "Subscribe", &error.error, nullptr, "");
    check_call(r, error, "Subscribe");
}

void reload(sd_bus* bus) {
    BusError error;
    const int r = sd_bus_call_method(bus, kService, kPath, kManager, "Reload", &error.error, nullptr, "");
    check_call(r, error, "Reload");
}

std::string load_unit(sd_bus* bus, const std::string& unit) {
    BusError error;
    Message reply;
    const int r = sd_bus_call_method(
        bus, kService, kPath, kManager, "LoadUnit", &error.error, out(reply), "s", unit.c_str());
    check_call(r, error, "LoadUnit " + unit);
    const char* path = nullptr;
    check_r(sd_bus_message_read(reply.get(), "o", &path), "reading LoadUnit's reply", Errc::dbus);
    return path;
}

std::string start_unit(sd_bus* bus, const std::string& unit, const std::string& method) {
    BusError error;
    Message reply;
    const int r = sd_bus_call_method(
        bus,
        kService,
        kPath,
        kManager,
        method.c_str(),
        &error.error,
        out(reply),
        "ss",
        unit.c_str(),
        "replace");
    check_call(r, error, method + " " + unit);
    const char* job = nullptr;
    check_r(sd_bus_message_read(reply.get(), "o", &job), "reading the job path", Errc::dbus);
    return job;
}

std::string unit_property(
    sd_bus* bus, const std::string& unit, const std::string& interface, const std::string& property) {
    return get_property(bus, kService, load_unit(bus, unit), interface, property);
}

}  // namespace systemd1
}  // namespace stormnode::test
