// roled-bench: storm-roled's figures against a real systemd (issue 3's benchmark). Boots the test rootfs
// in systemd-nspawn with storm-roled and the test role, then measures:
//   - failure detection: SIGKILL of testsvc-worker's main PID (host CLOCK_MONOTONIC just before kill())
//     -> storm-roled's "died" journal entry (journald's receive time, CLOCK_MONOTONIC: the kernel's one
//     clock, shared with the container) and -> the host receiving Node1's PropertiesChanged; systemd's own
//     PropertiesChanged for the unit is shown as the floor;
//   - kill -> State healthy again (includes the restart backoff, capped at 1 s here);
//   - storm-roled's RSS;
//   - wake-ups of storm-roled when idle (context switches over a window, scaled to a minute).
// Usage: roled-bench [KILLS=100] [IDLE_SECONDS=20]. Root; prints figures; not a ctest.
#include <stormnode/common/error.hpp>
#include <stormnode/test/bus.hpp>
#include <stormnode/test/nspawn_container.hpp>
#include <stormnode/test/roled_node.hpp>
#include <stormnode/test/rootfs_cache.hpp>

#include <signal.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <optional>
#include <string>
#include <vector>

using namespace std::chrono_literals;
namespace st = stormnode::test;

namespace {

constexpr const char* kVictim = "testsvc-worker.service";

std::uint64_t monotonic_us(std::chrono::steady_clock::time_point t) {
    // steady_clock is CLOCK_MONOTONIC on Linux/libstdc++: the clock journald stamps __MONOTONIC_TIMESTAMP
    // with.
    return static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count());
}

double percentile(std::vector<double> v, double p) {
    if (v.empty()) {
        return 0;
    }
    std::sort(v.begin(), v.end());
    const auto index = static_cast<std::size_t>(p / 100.0 * static_cast<double>(v.size() - 1) + 0.5);
    return v[std::min(index, v.size() - 1)];
}

void print_stats(const char* what, const std::vector<double>& ms) {
    if (ms.empty()) {
        std::printf("%-46s no samples\n", what);
        return;
    }
    std::printf(
        "%-46s n=%zu  p50 %8.3f ms  p99 %8.3f ms  max %8.3f ms\n",
        what,
        ms.size(),
        percentile(ms, 50),
        percentile(ms, 99),
        *std::max_element(ms.begin(), ms.end()));
}

bool unit_left_active(const st::Signal& s) {
    std::string iface;
    const auto props = st::decode_properties_changed(s.message.get(), &iface);
    const auto it = props.find("ActiveState");
    return it != props.end() && it->second != "active";
}

// The Units rows a Node1 PropertiesChanged carries, if it carries Units.
std::optional<std::vector<st::UnitRow>> units_in(const st::Signal& s) {
    if (s.member != "PropertiesChanged") {
        return std::nullopt;
    }
    sd_bus_message* m = s.message.get();
    sd_bus_message_rewind(m, 1);
    const char* iface = nullptr;
    if (sd_bus_message_read_basic(m, 's', &iface) <= 0 ||
        sd_bus_message_enter_container(m, 'a', "{sv}") <= 0) {
        return std::nullopt;
    }
    while (sd_bus_message_enter_container(m, 'e', "sv") > 0) {
        const char* name = nullptr;
        sd_bus_message_read_basic(m, 's', &name);
        if (std::string(name) == "Units") {
            return st::read_unit_rows(m);
        }
        sd_bus_message_skip(m, "v");
        sd_bus_message_exit_container(m);
    }
    return std::nullopt;
}

bool victim_is(const std::vector<st::UnitRow>& rows, const std::function<bool(const st::UnitRow&)>& pred) {
    return std::any_of(
        rows.begin(), rows.end(), [&](const st::UnitRow& r) { return r.unit == kVictim && pred(r); });
}

// Healthy for real: State healthy and the victim active with its check passing, re-read after each signal.
void wait_settled(st::RoledNode& node, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    auto settled = [&] {
        return node.state() == "healthy" && victim_is(node.units(), [](const st::UnitRow& r) {
                   return r.active_state == "active" && r.check_state == "passing";
               });
    };
    while (!settled()) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) {
            throw stormnode::Error(
                stormnode::Errc::timeout, "the role did not settle healthy\n" + node.diagnostics());
        }
        try {
            node.node_signals().wait_for([](const st::Signal&) { return true; }, left, "a Node1 signal");
        } catch (const stormnode::Error&) {  // re-checked above, then the deadline ends it
        }
    }
}

}  // namespace

int main(int argc, char** argv) {
    const int kills = argc > 1 ? std::atoi(argv[1]) : 100;
    const int idle_seconds = argc > 2 ? std::atoi(argv[2]) : 20;
    if (const auto reason = st::container_tier_unavailable()) {
        std::fprintf(stderr, "roled-bench: cannot run: %s\n", reason->c_str());
        return 77;
    }
    try {
        const auto rootfs = st::default_test_rootfs();
        st::RoledOptions options;
        options.rootfs = rootfs.tree;
        const char* roled = std::getenv("STORMNODE_TEST_ROLED");  // NOLINT(concurrency-mt-unsafe)
        options.roled_binary = roled != nullptr ? roled : STORMNODE_ROLED_BINARY;
        options.source_dir = STORMNODE_SOURCE_DIR;
        // Restart quickly and never give up: the benchmark kills the same unit over and over.
        options.roled_arguments = {"--backoff-max=1", "--max-failures=1000000"};

        const auto boot_start = std::chrono::steady_clock::now();
        st::RoledNode node(options);
        std::printf(
            "container boot (systemd running): %lld ms\n",
            static_cast<long long>(node.container().boot_time().count()));
        wait_settled(node, 120s);
        std::printf(
            "boot + install + storm-roled start -> healthy: %lld ms\n",
            static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                       std::chrono::steady_clock::now() - boot_start)
                                       .count()));

        const pid_t roled_pid = node.roled_pid_on_host();
        const auto rss_start = st::process_stats(roled_pid).rss_kb;

        // Idle first, while nothing has happened yet: only probes and the watchdog should wake it.
        const auto idle_before = st::process_stats(roled_pid);
        node.node_signals().clear();
        int idle_signals = 0;
        try {
            node.node_signals().wait_for(
                [&](const st::Signal&) {
                    ++idle_signals;
                    return false;
                },
                std::chrono::seconds(idle_seconds),
                "nothing (idle window)");
        } catch (const stormnode::Error&) {  // the window ended, as expected
        }
        const auto idle_after = st::process_stats(roled_pid);
        const double scale = 60.0 / idle_seconds;
        const auto switches = (idle_after.voluntary_switches - idle_before.voluntary_switches) +
                              (idle_after.involuntary_switches - idle_before.involuntary_switches);
        const long ticks = ::sysconf(_SC_CLK_TCK);

        // Failure detection.
        const auto unit_path = st::systemd1::load_unit(node.bus(), kVictim);
        st::SignalRecorder unit_changes(
            node.bus(),
            "type='signal',sender='org.freedesktop.systemd1',interface='org.freedesktop.DBus.Properties',"
            "member='PropertiesChanged',path='" +
                unit_path + "'");
        std::vector<std::uint64_t> kill_us;
        std::vector<double> systemd_ms;
        std::vector<double> node_signal_ms;
        std::vector<double> healthy_ms;
        for (int i = 0; i < kills; ++i) {
            const pid_t victim = node.main_pid_on_host(kVictim);
            node.node_signals().clear();
            unit_changes.clear();
            const auto killed = std::chrono::steady_clock::now();
            if (::kill(victim, SIGKILL) != 0) {
                throw stormnode::Error(stormnode::Errc::io, "kill " + std::to_string(victim));
            }
            kill_us.push_back(monotonic_us(killed));
            const auto down = unit_changes.wait_for(unit_left_active, 10s, "systemd to report the kill");
            systemd_ms.push_back(std::chrono::duration<double, std::milli>(down.received - killed).count());
            // storm-roled published the death: a Units change showing the victim not active.
            const auto first = node.node_signals().wait_for(
                [](const st::Signal& sig) {
                    const auto rows = units_in(sig);
                    return rows &&
                           victim_is(*rows, [](const st::UnitRow& r) { return r.active_state != "active"; });
                },
                10s,
                "storm-roled to publish the death");
            node_signal_ms.push_back(
                std::chrono::duration<double, std::milli>(first.received - killed).count());
            wait_settled(node, 30s);
            healthy_ms.push_back(
                std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - killed).count());
        }

        // storm-roled's own record of each death: its first journal entry about the victim after the kill
        // (a "degraded: ... deactivating (signal)" or "died" line, whichever it logs first).
        std::vector<double> journal_ms;
        std::vector<std::uint64_t> mentions;
        for (const auto& e : node.journal({"_COMM=storm-roled"})) {
            const auto msg = e.find("MESSAGE");
            if (msg != e.end() && msg->second.find(kVictim) != std::string::npos &&
                msg->second.find(" started") == std::string::npos) {
                mentions.push_back(std::stoull(e.at("__MONOTONIC_TIMESTAMP")));
            }
        }
        int missing = 0;
        for (std::size_t k = 0; k < kill_us.size(); ++k) {
            const auto next = k + 1 < kill_us.size() ? kill_us[k + 1] : UINT64_MAX;
            const auto it = std::lower_bound(mentions.begin(), mentions.end(), kill_us[k]);
            if (it != mentions.end() && *it < next) {
                journal_ms.push_back(static_cast<double>(*it - kill_us[k]) / 1000.0);
            } else {
                ++missing;
            }
        }
        const auto end = st::process_stats(roled_pid);

        std::printf("\n== storm-roled figures (%d kills of %s) ==\n", kills, kVictim);
        print_stats("systemd PropertiesChanged at host (floor)", systemd_ms);
        print_stats("storm-roled journal entry (detection)", journal_ms);
        if (missing > 0) {
            std::printf("  (%d kills without a storm-roled journal entry before the next kill)\n", missing);
        }
        print_stats("Node1 signal at host (detection + publish)", node_signal_ms);
        print_stats("kill -> healthy, unit check passing (1 s backoff)", healthy_ms);
        std::printf(
            "storm-roled RSS: %llu kB at start, %llu kB after the kills\n",
            static_cast<unsigned long long>(rss_start),
            static_cast<unsigned long long>(end.rss_kb));
        std::printf(
            "idle %d s: %llu context switches (%.0f per minute), %llu ms CPU, %d Node1 signals\n",
            idle_seconds,
            static_cast<unsigned long long>(switches),
            static_cast<double>(switches) * scale,
            static_cast<unsigned long long>(
                (idle_after.cpu_ticks - idle_before.cpu_ticks) * 1000 / static_cast<std::uint64_t>(ticks)),
            idle_signals);
        std::printf(
            "  expected from the catalog: probes every 1 s (db) + 2 s (api, worker) = %.0f/min, watchdog "
            "(WatchdogSec=30) 4/min\n",
            60.0 / 1 + 60.0 / 2 * 2);
        std::printf(
            "storm-roled CPU over the whole run: %llu ms\n",
            static_cast<unsigned long long>(end.cpu_ticks * 1000 / static_cast<std::uint64_t>(ticks)));
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "roled-bench: %s\n", stormnode::describe(e).c_str());
        return 1;
    }
}
