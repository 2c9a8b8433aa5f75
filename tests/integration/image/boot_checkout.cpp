// Boots a checkout of the node image in systemd-nspawn and follows it to a supervised role:
// storm-firstboot settles the role from /etc/stormnode/node.yaml and generates the node's identity,
// then storm-roled brings the role up. Usage: image-boot-check CHECKOUT ROLE UNIT. Exit 0 when the system
// is running and storm-roled runs ROLE with UNIT active, 1 otherwise (with what went wrong), 77 when
// containers cannot run here. The role's overall health is printed, not asserted: in a container the
// common layer's chrony is skipped by its ConditionCapability=CAP_SYS_TIME, which storm-roled does not
// yet count as "not configured".
#include <stormnode/common/error.hpp>
#include <stormnode/test/bus.hpp>
#include <stormnode/test/nspawn_container.hpp>

#include <iostream>
#include <string>

namespace test = stormnode::test;
using namespace std::chrono_literals;

namespace {

int failures = 0;

void check(bool ok, const std::string& what, const std::string& detail = {}) {
    std::cout << (ok ? "ok: " : "FAILED: ") << what << (detail.empty() ? "" : ": " + detail) << "\n";
    if (!ok) {
        ++failures;
    }
}

std::string trimmed(std::string text) {
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) {
        text.pop_back();
    }
    return text;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 4) {
        std::cerr << "usage: image-boot-check CHECKOUT ROLE UNIT\n";
        return 2;
    }
    if (const auto why = test::container_tier_unavailable()) {
        std::cout << "skipped: " << *why << "\n";
        return 77;
    }
    const std::string role = argv[2];
    const std::string unit = argv[3];
    try {
        test::NspawnContainer node(test::ContainerOptions{.rootfs = argv[1], .boot_timeout = 240s});
        std::cout << "booted to '" << node.boot_state() << "' in " << node.boot_time().count() << " ms\n";
        check(node.boot_state() == "running", "the system boots to 'running'", node.boot_state());

        const auto firstboot = node.exec({"systemctl", "is-active", "storm-firstboot.service"});
        check(trimmed(firstboot.out) == "active", "storm-firstboot ran", trimmed(firstboot.out));
        const auto machine_id = node.exec({"cat", "/etc/machine-id"});
        check(
            trimmed(machine_id.out).size() == 32, "the node has its own machine-id", trimmed(machine_id.out));
        const auto keys = node.exec({"sh", "-c", "stat -c '%a %n' /etc/ssh/ssh_host_ed25519_key"});
        check(
            keys.ok() && keys.out.rfind("600 ", 0) == 0,
            "ssh host keys were generated, 0600",
            trimmed(keys.out));

        auto bus = test::connect_bus(node.bus_address());
        test::SignalRecorder changes(
            bus.get(),
            "type='signal',sender='org.stormclouds.Node1',path='/org/stormclouds/Node1',"
            "interface='org.freedesktop.DBus.Properties',member='PropertiesChanged'");
        const auto state = [&] {
            return test::get_property(
                bus.get(),
                "org.stormclouds.Node1",
                "/org/stormclouds/Node1",
                "org.stormclouds.Node1",
                "State");
        };
        // Wait until storm-roled has settled the role one way or the other.
        const auto deadline = std::chrono::steady_clock::now() + 180s;
        std::string current = state();
        while (current == "starting" && std::chrono::steady_clock::now() < deadline) {
            try {
                (void)changes.wait_for(
                    [](const test::Signal&) { return true; }, 10s, "a Node1 property change");
            } catch (const stormnode::Error& e) {
                if (e.code() != stormnode::Errc::timeout) {
                    throw;
                }
            }
            current = state();
        }
        const auto roles = test::get_property(
            bus.get(), "org.stormclouds.Node1", "/org/stormclouds/Node1", "org.stormclouds.Node1", "Roles");
        check(roles.find(role) != std::string::npos, "storm-roled runs the role from node.yaml", roles);
        const auto active = node.exec({"systemctl", "is-active", unit});
        check(trimmed(active.out) == "active", "storm-roled started " + unit, trimmed(active.out));
        const auto reason = test::get_property(
            bus.get(), "org.stormclouds.Node1", "/org/stormclouds/Node1", "org.stormclouds.Node1", "Reason");
        std::cout << "role state: " << current << (reason.empty() ? "" : " (" + reason + ")") << "\n";
        if (failures != 0) {
            std::cout << node.exec({"journalctl", "-b", "--no-pager", "-n", "60"}).out;
        }
        const auto failed = node.exec({"systemctl", "--failed", "--no-legend", "--plain"});
        std::cout << "failed units: " << (trimmed(failed.out).empty() ? "none" : "\n" + failed.out) << "\n";
        node.stop();
    } catch (const std::exception& e) {
        std::cout << "FAILED: " << stormnode::describe(e) << "\n";
        return 1;
    }
    std::cout << (failures == 0 ? "booted and supervised\n" : "boot check failed\n");
    return failures == 0 ? 0 : 1;
}
