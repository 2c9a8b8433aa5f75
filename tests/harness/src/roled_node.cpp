#include "stormnode/test/roled_node.hpp"

#include <stormnode/common/error.hpp>
#include <stormnode/common/temp_dir.hpp>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <sstream>

namespace stormnode::test {
namespace fs = std::filesystem;
namespace {

std::string yaml_list(const std::vector<std::string>& items) {
    std::string text = "[";
    for (const auto& item : items) {
        text += (text.size() > 1 ? ", " : "") + item;
    }
    return text + "]";
}

// The daemon's shipped unit with ExecStart pointing where the binary was installed (plus test arguments).
std::string roled_unit(
    const fs::path& source, const std::string& exec, const std::vector<std::string>& arguments) {
    std::string args;
    for (const auto& a : arguments) {
        args += " " + a;
    }
    std::istringstream in(read_file(source / "roles/supervisor/daemon/storm-roled.service"));
    std::string text;
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind("ExecStart=", 0) == 0) {
            line = "ExecStart=" + exec + args;
        }
        text += line + "\n";
    }
    return text;
}

void copy_tree(const NspawnContainer& c, const fs::path& from, const std::string& to, unsigned mode) {
    if (!fs::is_directory(from)) {
        return;
    }
    for (const auto& entry : fs::recursive_directory_iterator(from)) {
        if (entry.is_regular_file()) {
            c.copy_in(entry.path(), to + "/" + fs::relative(entry.path(), from).string(), mode);
        }
    }
}

}  // namespace

RoledNode::RoledNode(RoledOptions options) : options_(std::move(options)) {
    container_ = std::make_unique<NspawnContainer>(ContainerOptions{
        .rootfs = options_.rootfs,
        .name = options_.machine_name,
        .binds = options_.binds,
        .network_namespace = options_.network_namespace});
    bus_ = connect_bus(container_->bus_address());
    node_signals_ =
        std::make_unique<SignalRecorder>(bus_.get(), std::string("type='signal',path='") + kNode1Path + "'");
    systemd1::subscribe(bus_.get());
    install();
    if (options_.start) {
        start_roled();
    }
}

RoledNode::~RoledNode() {
    node_signals_.reset();
    bus_.reset();
    container_.reset();
}

void RoledNode::install() {
    const auto& c = *container_;
    const auto& src = options_.source_dir;
    if (!fs::exists(options_.roled_binary)) {
        throw Error(
            Errc::not_found, "storm-roled binary " + options_.roled_binary.string() + " does not exist");
    }
    // Where the image puts it (stormnode ships under /usr, never /usr/local).
    const std::string exec = "/usr/libexec/stormnode/storm-roled";
    c.copy_in(options_.roled_binary, exec, 0755);
    // The build tree's default catalog path is the configured prefix's; the test installs it under /usr.
    auto arguments = options_.roled_arguments;
    arguments.insert(arguments.begin(), "--catalog=/usr/share/stormnode/roles");
    c.write_file("/etc/systemd/system/storm-roled.service", roled_unit(src, exec, arguments));
    // The bus policy as the package installs it; without it storm-roled may not own its name.
    c.copy_in(
        src / "roles/supervisor/daemon/org.stormclouds.Node1.conf",
        "/usr/share/dbus-1/system.d/org.stormclouds.Node1.conf");
    if (fs::exists(src / "roles/supervisor/daemon/org.stormclouds.Node1.xml")) {
        c.copy_in(
            src / "roles/supervisor/daemon/org.stormclouds.Node1.xml",
            "/usr/share/dbus-1/interfaces/org.stormclouds.Node1.xml");
    }

    // The test catalog: the real one (quorum's corosync-qnetd is used as is) plus the test roles.
    const auto data = src / "tests/data/roles";
    for (const auto& dir : {src / "roles/catalog", data}) {
        for (const auto& entry : fs::directory_iterator(dir)) {
            const auto file = entry.path().filename().string();
            const bool excluded =
                dir != data &&
                std::find(options_.catalog_exclude.begin(), options_.catalog_exclude.end(), file) !=
                    options_.catalog_exclude.end();
            if (entry.path().extension() == ".yaml" && !excluded) {
                c.copy_in(entry.path(), "/usr/share/stormnode/roles/" + file);
            }
        }
    }
    copy_tree(c, src / "roles/catalog/templates", "/usr/share/stormnode/roles/templates", 0644);
    copy_tree(c, data / "units", "/etc/systemd/system", 0644);
    copy_tree(c, data / "scripts", "/usr/local/lib/stormnode-test", 0755);

    std::string node_yaml = "roles: " + yaml_list(options_.roles) + "\nhostname: " + options_.hostname + "\n";
    if (!options_.features.empty()) {
        node_yaml += "features: " + yaml_list(options_.features) + "\n";
    }
    for (const auto& [key, map] :
         {std::pair{"variants", &options_.variants}, std::pair{"variables", &options_.variables}}) {
        if (!map->empty()) {
            node_yaml += std::string(key) + ":\n";
            for (const auto& [name, value] : *map) {
                node_yaml += "  " + name + ": \"" + value + "\"\n";
            }
        }
    }
    c.write_file("/etc/stormnode/node.yaml", node_yaml);
    if (!options_.cluster_yaml.empty()) {
        c.write_file("/etc/stormnode/cluster.yaml", options_.cluster_yaml);
    }
    // dbus-daemon picks up the policy on reload; systemd the new unit files.
    c.exec_checked(
        {"busctl",
         "call",
         "org.freedesktop.DBus",
         "/org/freedesktop/DBus",
         "org.freedesktop.DBus",
         "ReloadConfig"});
    systemd1::reload(bus_.get());
}

void RoledNode::start_roled() {
    SignalRecorder jobs(
        bus_.get(),
        "type='signal',sender='org.freedesktop.systemd1',interface='org.freedesktop.systemd1.Manager',"
        "member='JobRemoved'");
    const auto job = systemd1::start_unit(bus_.get(), "storm-roled.service");
    const auto removed = jobs.wait_for(
        [&](const Signal& s) {
            uint32_t id = 0;
            const char* path = nullptr;
            const char* unit = nullptr;
            const char* result = nullptr;
            sd_bus_message_rewind(s.message.get(), 1);
            return sd_bus_message_read(s.message.get(), "uoss", &id, &path, &unit, &result) > 0 &&
                   job == path;
        },
        std::chrono::seconds(60),
        "storm-roled.service to start");
    uint32_t id = 0;
    const char* path = nullptr;
    const char* unit = nullptr;
    const char* result = nullptr;
    sd_bus_message_rewind(removed.message.get(), 1);
    check_r(
        sd_bus_message_read(removed.message.get(), "uoss", &id, &path, &unit, &result),
        "reading JobRemoved",
        Errc::dbus);
    if (std::strcmp(result, "done") != 0) {
        const auto log =
            container_->exec({"journalctl", "-u", "storm-roled.service", "--no-pager", "-n", "30"});
        throw Error(
            Errc::unit_failed, std::string("starting storm-roled.service: job ") + result + "\n" + log.out);
    }
}

std::string RoledNode::state() {
    return get_property(bus_.get(), kNode1Service, kNode1Path, kNode1Interface, "State");
}

std::vector<std::string> RoledNode::roles() {
    const auto text = get_property(bus_.get(), kNode1Service, kNode1Path, kNode1Interface, "Roles");
    std::vector<std::string> out;
    std::istringstream in(text);
    std::string item;
    while (std::getline(in, item, ',')) {
        out.push_back(item);
    }
    return out;
}

std::vector<UnitRow> read_unit_rows(sd_bus_message* m) {
    char type = 0;
    const char* contents = nullptr;
    check_r(sd_bus_message_peek_type(m, &type, &contents), "peeking Units", Errc::dbus);
    const bool variant = type == SD_BUS_TYPE_VARIANT;
    if (variant) {
        check_r(
            sd_bus_message_enter_container(m, SD_BUS_TYPE_VARIANT, "a(sssu)"), "entering Units", Errc::dbus);
    }
    std::vector<UnitRow> rows;
    check_r(sd_bus_message_enter_container(m, SD_BUS_TYPE_ARRAY, "(sssu)"), "entering a(sssu)", Errc::dbus);
    for (;;) {
        const char* unit = nullptr;
        const char* active = nullptr;
        const char* check = nullptr;
        uint32_t restarts = 0;
        const int r = check_r(
            sd_bus_message_read(m, "(sssu)", &unit, &active, &check, &restarts),
            "reading a Units row",
            Errc::dbus);
        if (r == 0) {
            break;
        }
        rows.push_back({unit, active, check, restarts});
    }
    check_r(sd_bus_message_exit_container(m), "leaving a(sssu)", Errc::dbus);
    if (variant) {
        check_r(sd_bus_message_exit_container(m), "leaving Units", Errc::dbus);
    }
    return rows;
}

std::vector<UnitRow> RoledNode::units() {
    auto reply = get_property_message(bus_.get(), kNode1Service, kNode1Path, kNode1Interface, "Units");
    return read_unit_rows(reply.get());
}

std::string RoledNode::wait_for_state(
    const std::function<bool(const std::string&)>& pred,
    std::chrono::milliseconds timeout,
    const std::string& what) {
    std::string current = state();
    if (pred(current)) {
        return current;
    }
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    // Any Node1 signal may carry a new State: re-read it after each one.
    while (!pred(current)) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) {
            throw Error(
                Errc::timeout,
                "timed out waiting for " + what + " (State is '" + current + "')\n" + diagnostics());
        }
        try {
            node_signals_->wait_for([](const Signal&) { return true; }, left, what);
        } catch (const Error& e) {
            if (e.code() != Errc::timeout) {
                throw;
            }
            current = state();
            if (pred(current)) {
                break;
            }
            throw Error(
                Errc::timeout,
                "timed out waiting for " + what + " (State is '" + current + "')\n" + diagnostics());
        }
        current = state();
    }
    return current;
}

std::string RoledNode::diagnostics() {
    std::string text = "--- journal (last 60 lines) ---\n";
    text += container_->exec({"journalctl", "--no-pager", "-n", "60", "-o", "short-monotonic"}).out;
    text += "--- units ---\n";
    text += container_
                ->exec(
                    {"systemctl",
                     "--no-pager",
                     "--all",
                     "list-units",
                     "testsvc-*",
                     "storm-roled*",
                     "corosync*",
                     "mariadb*",
                     "garb*"})
                .out;
    return text;
}

std::string RoledNode::unit_property(const std::string& unit, const std::string& property) {
    static const std::vector<std::string> service_props{
        "MainPID", "NRestarts", "Result", "ExecMainStatus", "ExecMainPID"};
    const bool service =
        std::find(service_props.begin(), service_props.end(), property) != service_props.end();
    return systemd1::unit_property(
        bus_.get(), unit, service ? systemd1::kServiceInterface : systemd1::kUnit, property);
}

pid_t RoledNode::main_pid_on_host(const std::string& unit) {
    const int pid = std::stoi(unit_property(unit, "MainPID"));
    if (pid <= 0) {
        throw Error(Errc::not_found, unit + " has no main process");
    }
    return container_->host_pid(pid);
}

std::vector<JournalEntry> RoledNode::journal(const std::vector<std::string>& matches) {
    std::vector<std::string> argv{"journalctl", "--no-pager", "-o", "export"};
    argv.insert(argv.end(), matches.begin(), matches.end());
    const auto result = container_->exec_checked(argv);
    std::vector<JournalEntry> entries;
    JournalEntry entry;
    const std::string& text = result.out;
    std::size_t pos = 0;
    while (pos < text.size()) {
        const auto eol = text.find('\n', pos);
        const std::string line = text.substr(pos, eol == std::string::npos ? std::string::npos : eol - pos);
        pos = eol == std::string::npos ? text.size() : eol + 1;
        if (line.empty()) {
            if (!entry.empty()) {
                entries.push_back(std::move(entry));
                entry.clear();
            }
            continue;
        }
        const auto eq = line.find('=');
        if (eq != std::string::npos) {
            entry[line.substr(0, eq)] = line.substr(eq + 1);
            continue;
        }
        // Binary field: name, newline, 64-bit little-endian size, data, newline.
        if (pos + 8 > text.size()) {
            break;
        }
        std::uint64_t size = 0;
        for (int i = 7; i >= 0; --i) {
            size = (size << 8) | static_cast<unsigned char>(text[pos + static_cast<std::size_t>(i)]);
        }
        pos += 8;
        entry[line] = text.substr(pos, static_cast<std::size_t>(size));
        pos += static_cast<std::size_t>(size) + 1;
    }
    if (!entry.empty()) {
        entries.push_back(std::move(entry));
    }
    return entries;
}

ProcessStats process_stats(pid_t pid) {
    ProcessStats stats;
    const auto dir = fs::path("/proc") / std::to_string(pid);
    const auto stat = read_file(dir / "stat");
    // Fields after the command name in parentheses (which may contain spaces): state is field 3,
    // utime 14, stime 15.
    std::istringstream rest(stat.substr(stat.rfind(')') + 2));
    std::vector<std::string> fields;
    std::string field;
    while (rest >> field) {
        fields.push_back(field);
    }
    if (fields.size() > 12) {
        stats.cpu_ticks = std::stoull(fields[11]) + std::stoull(fields[12]);
    }
    std::istringstream status(read_file(dir / "status"));
    std::string line;
    while (std::getline(status, line)) {
        const auto value = [&] {
            return std::stoull(line.substr(line.find(':') + 1));
        };
        if (line.rfind("VmRSS:", 0) == 0) {
            stats.rss_kb = value();
        } else if (line.rfind("voluntary_ctxt_switches:", 0) == 0) {
            stats.voluntary_switches = value();
        } else if (line.rfind("nonvoluntary_ctxt_switches:", 0) == 0) {
            stats.involuntary_switches = value();
        }
    }
    return stats;
}

}  // namespace stormnode::test
