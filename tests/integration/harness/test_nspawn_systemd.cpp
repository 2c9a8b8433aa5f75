// Proves the harness against a real systemd: boot the test rootfs in systemd-nspawn, drive a unit over
// the container's system bus from the host with sd-bus, break it, and see systemd say so.
#include <stormnode/common/error.hpp>
#include <stormnode/test/bus.hpp>
#include <stormnode/test/nspawn_container.hpp>
#include <stormnode/test/rootfs_cache.hpp>

#include <catch2/catch.hpp>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>

using namespace std::chrono_literals;
namespace st = stormnode::test;
namespace sd = stormnode::test::systemd1;

namespace {

// A plain service (no transient unit): a python listener that tells systemd READY=1 once it listens,
// so "active" means the port accepts connections.
constexpr const char* kEchoUnit = R"UNIT([Unit]
Description=harness echo service

[Service]
Type=notify
ExecStart=/usr/bin/python3 /usr/local/bin/harness-echo.py 7001
Restart=on-failure
RestartSec=200ms
)UNIT";

constexpr const char* kEchoScript = R"PY(import os, socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen()
n = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
n.connect(os.environ["NOTIFY_SOCKET"])
n.send(b"READY=1")
while True:
    s.accept()[0].close()
)PY";

const st::Rootfs& rootfs() {
    static const st::Rootfs instance = st::default_test_rootfs();
    return instance;
}

std::string job_removed_result(const st::Signal& s, std::string* job_path = nullptr) {
    uint32_t id = 0;
    const char* job = nullptr;
    const char* unit = nullptr;
    const char* result = nullptr;
    sd_bus_message_rewind(s.message.get(), 1);
    stormnode::check_r(
        sd_bus_message_read(s.message.get(), "uoss", &id, &job, &unit, &result), "reading JobRemoved");
    if (job_path != nullptr) {
        *job_path = job;
    }
    return result;
}

}  // namespace

TEST_CASE("the test rootfs boots to a running systemd and stops cleanly", "[harness][integration]") {
    st::NspawnContainer container({.rootfs = rootfs().tree});
    INFO("boot took " << container.boot_time().count() << " ms");
    CHECK(container.boot_state() == "running");
    CHECK(container.leader() > 1);

    const auto uname = container.exec_checked({"systemctl", "is-system-running"});
    CHECK(uname.out == "running\n");
    // The container sees its own PID 1 as systemd.
    CHECK(container.exec_checked({"cat", "/proc/1/comm"}).out == "systemd\n");

    const auto cgroup = std::filesystem::path("/sys/fs/cgroup/systemd/nspawn-" + container.name());
    CHECK(std::filesystem::exists(cgroup));
    CHECK(container.stop() == "exited with status 0");
    CHECK_FALSE(std::filesystem::exists(cgroup));
}

TEST_CASE(
    "a unit written into the container starts, and a SIGKILL of its MainPID is seen",
    "[harness][integration]") {
    st::NspawnContainer container({.rootfs = rootfs().tree});
    container.write_file("/etc/systemd/system/harness-echo.service", kEchoUnit);
    container.write_file("/usr/local/bin/harness-echo.py", kEchoScript);

    auto bus = st::connect_bus(container.bus_address());
    st::SignalRecorder jobs(
        bus.get(),
        "type='signal',sender='org.freedesktop.systemd1',interface='org.freedesktop.systemd1.Manager',"
        "member='JobRemoved'");
    sd::subscribe(bus.get());
    sd::reload(bus.get());

    const auto unit_path = sd::load_unit(bus.get(), "harness-echo.service");
    st::SignalRecorder changes(
        bus.get(),
        "type='signal',sender='org.freedesktop.systemd1',interface='org.freedesktop.DBus.Properties',"
        "member='PropertiesChanged',path='" +
            unit_path + "'");

    const auto started = std::chrono::steady_clock::now();
    const auto job = sd::start_unit(bus.get(), "harness-echo.service");
    const auto removed = jobs.wait_for(
        [&](const st::Signal& s) {
            std::string path;
            job_removed_result(s, &path);
            return path == job;
        },
        10s,
        "JobRemoved of the StartUnit job");
    CHECK(job_removed_result(removed) == "done");
    INFO(
        "StartUnit -> JobRemoved in "
        << std::chrono::duration_cast<std::chrono::milliseconds>(removed.received - started).count()
        << " ms");
    CHECK(sd::unit_property(bus.get(), "harness-echo.service", sd::kUnit, "ActiveState") == "active");
    const auto invocation = sd::unit_property(bus.get(), "harness-echo.service", sd::kUnit, "InvocationID");

    // The service really listens inside the container.
    const auto main_pid =
        std::stoi(sd::unit_property(bus.get(), "harness-echo.service", sd::kServiceInterface, "MainPID"));
    REQUIRE(main_pid > 0);
    CHECK(container.exec({"nc", "-z", "127.0.0.1", "7001"}).ok());

    changes.clear();
    const pid_t host_pid = container.host_pid(main_pid);
    REQUIRE(::kill(host_pid, SIGKILL) == 0);
    const auto killed_at = std::chrono::steady_clock::now();

    // systemd reports the death: the unit leaves "active" with Result=signal, then restarts.
    const auto down = changes.wait_for(
        [](const st::Signal& s) {
            std::string iface;
            const auto props = st::decode_properties_changed(s.message.get(), &iface);
            const auto state = props.find("ActiveState");
            return iface == sd::kUnit && state != props.end() &&
                   (state->second == "failed" || state->second == "activating");
        },
        10s,
        "PropertiesChanged to failed/activating after SIGKILL");
    INFO(
        "SIGKILL -> PropertiesChanged in "
        << std::chrono::duration_cast<std::chrono::microseconds>(down.received - killed_at).count() << " us");
    CHECK(sd::unit_property(bus.get(), "harness-echo.service", sd::kServiceInterface, "Result") == "signal");

    // Restart=on-failure brings it back as a new invocation.
    changes.wait_for(
        [](const st::Signal& s) {
            std::string iface;
            const auto props = st::decode_properties_changed(s.message.get(), &iface);
            const auto state = props.find("ActiveState");
            return iface == sd::kUnit && state != props.end() && state->second == "active";
        },
        10s,
        "PropertiesChanged back to active");
    CHECK(sd::unit_property(bus.get(), "harness-echo.service", sd::kServiceInterface, "NRestarts") == "1");
    CHECK(sd::unit_property(bus.get(), "harness-echo.service", sd::kUnit, "InvocationID") != invocation);
}

TEST_CASE(
    "two containers run side by side and one's shutdown leaves the other running", "[harness][integration]") {
    st::NspawnContainer first({.rootfs = rootfs().tree});
    std::string second_name;
    {
        st::NspawnContainer second({.rootfs = rootfs().tree});
        second_name = second.name();
        CHECK(second.bus_address() != first.bus_address());
        CHECK(second.stop() == "exited with status 0");
    }
    // The cgroup pitfall: without a cgroup per container, this one would be torn down too.
    CHECK(first.exec_checked({"systemctl", "is-system-running"}).out == "running\n");
    // The name is reusable right away.
    st::NspawnContainer again({.rootfs = rootfs().tree, .name = second_name});
    CHECK(again.boot_state() == "running");
}

TEST_CASE("the rootfs cache key follows the package list and the hooks", "[harness][integration]") {
    const auto recipe =
        st::load_rootfs_recipe(std::filesystem::path(STORMNODE_SOURCE_DIR) / "tests/data/rootfs");
    CHECK(std::find(recipe.packages.begin(), recipe.packages.end(), "systemd") != recipe.packages.end());
    CHECK(
        std::find(recipe.packages.begin(), recipe.packages.end(), "corosync-qnetd") != recipe.packages.end());
    const auto key = st::RootfsCache::key(recipe);
    CHECK(key.size() == 16);
    // The order of the list does not matter; its content does.
    auto reordered = recipe;
    std::reverse(reordered.packages.begin(), reordered.packages.end());
    CHECK(st::RootfsCache::key(reordered) == key);
    auto more = recipe;
    more.packages.push_back("curl");
    CHECK(st::RootfsCache::key(more) != key);
    auto no_hooks = recipe;
    no_hooks.hook_dir.clear();
    CHECK(st::RootfsCache::key(no_hooks) != key);
    // The cached tree is the one the tests boot.
    if (std::getenv("STORMNODE_TEST_ROOTFS") == nullptr) {  // NOLINT(concurrency-mt-unsafe)
        CHECK(rootfs().key == key);
        CHECK(std::filesystem::exists(rootfs().tarball));
        CHECK(std::filesystem::exists(rootfs().tree / "usr/lib/systemd/systemd"));
    }
}
