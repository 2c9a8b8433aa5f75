// A node in a container: the test rootfs booted in systemd-nspawn with storm-roled from the build tree,
// its unit, bus policy and a role catalog installed, and a bus connection to org.stormclouds.Node1.
// Used by the integration tests (tests/integration/roles) and the benchmark (tests/bench).
#pragma once

#include "stormnode/test/bus.hpp"
#include "stormnode/test/nspawn_container.hpp"

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace stormnode::test {

inline constexpr const char* kNode1Service = "org.stormclouds.Node1";
inline constexpr const char* kNode1Path = "/org/stormclouds/Node1";
inline constexpr const char* kNode1Interface = "org.stormclouds.Node1";

struct RoledOptions {
    std::filesystem::path rootfs;
    std::filesystem::path roled_binary;         // storm-roled from the build tree
    std::filesystem::path source_dir;           // the stormnode source tree
    std::vector<std::string> roles{"testsvc"};  // node.yaml roles
    std::vector<std::string> features;          // node.yaml features
    // The catalog installed: roles/catalog/*.yaml except these files, then tests/data/roles/*.yaml. The
    // common layer is left out: its units (chrony, zabbix-agent, storm-firstboot) are not in the test rootfs.
    std::vector<std::string> catalog_exclude{"common.yaml"};
    std::vector<std::string> roled_arguments;  // appended to ExecStart (e.g. backoff options)
    bool start = true;                         // start storm-roled.service and wait for it
    // For a node of a cluster: node.yaml's hostname, variants ({db: galera}) and variables
    // ({mgmt_address: ...}), /etc/stormnode/cluster.yaml's text (none when empty), the container's
    // machine name and network (a TestNetwork namespace; empty: the host's).
    std::string hostname = "testnode";
    std::map<std::string, std::string> variants;
    std::map<std::string, std::string> variables;
    std::string cluster_yaml;
    std::string machine_name;
    std::filesystem::path network_namespace;
    // Host directories in the container: state that outlives it (a datadir across a power cut).
    std::vector<Bind> binds;
};

// One row of Node1.Units: (unit, active state, check state, restarts).
struct UnitRow {
    std::string unit;
    std::string active_state;
    std::string check_state;
    std::uint32_t restarts = 0;
};

// A journal entry's fields (journalctl -o export).
using JournalEntry = std::map<std::string, std::string>;

class RoledNode {
public:
    explicit RoledNode(RoledOptions options);
    RoledNode(const RoledNode&) = delete;
    RoledNode& operator=(const RoledNode&) = delete;
    RoledNode(RoledNode&&) = delete;
    RoledNode& operator=(RoledNode&&) = delete;
    ~RoledNode();

    [[nodiscard]] NspawnContainer& container() noexcept { return *container_; }
    [[nodiscard]] sd_bus* bus() noexcept { return bus_.get(); }

    // systemctl start storm-roled.service; returns once it is active (Type=notify: READY=1 sent).
    void start_roled();

    // Node1 properties.
    std::string state();
    std::vector<std::string> roles();
    std::vector<UnitRow> units();
    // Waits (on PropertiesChanged/StateChanged of Node1, re-reading State) until State satisfies pred.
    std::string wait_for_state(
        const std::function<bool(const std::string&)>& pred,
        std::chrono::milliseconds timeout,
        const std::string& what);

    // The end of the container's journal and the state of the units involved, for failure messages.
    std::string diagnostics();

    // A unit's property over systemd1 (Unit or Service interface).
    std::string unit_property(const std::string& unit, const std::string& property);
    // The host PID of a unit's main process (MainPID translated out of the container's namespace).
    pid_t main_pid_on_host(const std::string& unit);
    pid_t roled_pid_on_host() { return main_pid_on_host("storm-roled.service"); }

    // Journal entries of the container matching journalctl match arguments ("MESSAGE_ID=...").
    std::vector<JournalEntry> journal(const std::vector<std::string>& matches);

    // Recorders on the container bus, created at construction, so no signal is missed.
    SignalRecorder& node_signals() { return *node_signals_; }

private:
    void install();

    RoledOptions options_;
    std::unique_ptr<NspawnContainer> container_;
    Bus bus_;
    std::unique_ptr<SignalRecorder> node_signals_;
};

// Decodes a(sssu) from a message positioned at the array (or at a variant holding it).
std::vector<UnitRow> read_unit_rows(sd_bus_message* message);

// /proc/<pid>/stat utime+stime in clock ticks, and /proc/<pid>/status fields.
struct ProcessStats {
    std::uint64_t cpu_ticks = 0;
    std::uint64_t rss_kb = 0;
    std::uint64_t voluntary_switches = 0;
    std::uint64_t involuntary_switches = 0;
};
ProcessStats process_stats(pid_t pid);

}  // namespace stormnode::test
