// A booted systemd in systemd-nspawn, for tests that need a real systemd (PID 1 on the host is not
// systemd). Flags and pitfalls: shared/reference/platform-facts.md. RAII: the destructor stops it.
#pragma once

#include "stormnode/test/bus.hpp"
#include "stormnode/test/child.hpp"

#include <stormnode/common/subprocess.hpp>
#include <stormnode/common/temp_dir.hpp>

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace stormnode::test {

struct Bind {
    std::filesystem::path host;
    std::string container;
    bool read_only = true;
};

struct ContainerOptions {
    std::filesystem::path rootfs;
    std::string name;  // machine name; default: unique per process and container
    std::vector<Bind> binds;
    std::chrono::milliseconds boot_timeout{60000};
    // --network-namespace-path (a TestNetwork namespace); empty: the host's network, as before.
    std::filesystem::path network_namespace;
};

class NspawnContainer {
public:
    // Boots the rootfs and returns once Manager.SystemState is "running" (or "degraded"; see
    // system_state()). Throws Error with the end of the console log when it does not boot.
    explicit NspawnContainer(ContainerOptions options);
    NspawnContainer(const NspawnContainer&) = delete;
    NspawnContainer& operator=(const NspawnContainer&) = delete;
    NspawnContainer(NspawnContainer&&) = delete;
    NspawnContainer& operator=(NspawnContainer&&) = delete;
    ~NspawnContainer();

    [[nodiscard]] const std::string& name() const noexcept { return options_.name; }
    [[nodiscard]] pid_t leader() const noexcept { return leader_; }  // the container's PID 1, host view
    // sd-bus address of the container's system bus, usable from the host.
    [[nodiscard]] std::string bus_address() const;
    // A path inside the container as the host sees it (through /proc/<leader>/root: the overlay).
    [[nodiscard]] std::filesystem::path host_path(const std::string& container_path) const;
    [[nodiscard]] std::chrono::milliseconds boot_time() const noexcept { return boot_time_; }
    [[nodiscard]] const std::string& boot_state() const noexcept { return boot_state_; }
    [[nodiscard]] std::string console_log() const;

    // Runs argv inside all the container's namespaces (nsenter -a), to completion.
    ProcessResult exec(
        const std::vector<std::string>& argv,
        std::chrono::milliseconds timeout = std::chrono::seconds(60)) const;
    ProcessResult exec_checked(
        const std::vector<std::string>& argv,
        std::chrono::milliseconds timeout = std::chrono::seconds(60)) const;

    // Files into the container (atomically; parent directories are created).
    void write_file(const std::string& container_path, std::string_view content, unsigned mode = 0644) const;
    void copy_in(
        const std::filesystem::path& host_file,
        const std::string& container_path,
        unsigned mode = 0644) const;

    // A host PID of a process inside (as systemd reports MainPID: its PID in the container).
    [[nodiscard]] pid_t host_pid(pid_t container_pid) const;

    // SIGTERM to nspawn (systemd shuts down), wait via pidfd, SIGKILL after the timeout; cgroups and
    // the host directory are removed. Returns how nspawn ended. Idempotent.
    std::string stop(std::chrono::milliseconds timeout = std::chrono::seconds(30));
    // Pulls the plug: SIGKILL to the container's PID 1 (the whole PID namespace dies, no shutdown),
    // then the same clean-up as stop(). Returns how nspawn ended.
    std::string kill();

private:
    void wait_for_bus_socket(std::chrono::steady_clock::time_point deadline);
    void find_leader();
    Bus connect_when_listening(std::chrono::steady_clock::time_point deadline);
    void wait_until_running(std::chrono::steady_clock::time_point deadline);
    std::string finish(const std::string& how);  // the clean-up after nspawn ended
    void empty_cgroup() noexcept;
    void remove_cgroups() noexcept;
    [[noreturn]] void fail(const std::string& what);

    ContainerOptions options_;
    std::unique_ptr<TempDir> host_dir_;
    std::vector<std::filesystem::path> cgroups_;
    std::unique_ptr<Child> nspawn_;
    pid_t leader_ = -1;
    std::chrono::milliseconds boot_time_{0};
    std::string boot_state_;
    std::optional<std::string> stopped_;
};

// Why integration tests cannot run here (not root, no systemd-nspawn, no mmdebstrap), or nullopt.
std::optional<std::string> container_tier_unavailable();

}  // namespace stormnode::test
