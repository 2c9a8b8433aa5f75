// A rack provisioned over the network, in qemu (TCG), the way a user rehearses one: `stormctl vm rack`
// makes an isolated libvirt network and one network-booting VM per inventory node, plus one on a MAC the
// inventory does not list, and `stormctl pxe serve` (dnsmasq DHCP/TFTP + HTTP) serves them on that
// bridge. libvirtd is the test's own (PrivateLibvirt), in this process's network namespace.
// Known MACs (BIOS) boot through their NIC's iPXE ROM, install themselves from the live root they
// fetched over HTTP (the commit's GPG signature checked), reboot from their disk and report their role
// healthy. The unknown MAC (UEFI) boots with OVMF's own PXE client (client-arch 7: dnsmasq hands it
// GRUB's core.efi over TFTP), GRUB loads its per-MAC config over HTTP, and it boots live with no role.
// All are checked on their serial consoles and in pxe serve's node table (GET /nodes), and the
// server-side cost is printed: HTTP bytes per node against the boot artifacts, pxe serve's CPU time
// (its own cgroup) against the nodes' installs.
//
// STORMNODE_PXE_RACK_KNOWN (default 3) and STORMNODE_PXE_RACK_UNKNOWN (0 or 1, default 1) shape the rack
// (tests/bench/pxe_bench.sh runs 1 and 4 known nodes). STORMNODE_SYSTEM_ARTIFACTS: the image fixture's
// directory (repo, image.env), default $STORMNODE_BINARY_DIR/system-artifacts. Exit 77
// (system_pxe_main.cpp) without qemu, libvirt, dnsmasq or network namespaces.
#include "system_paths.hpp"

#include <stormnode/common/child_process.hpp>
#include <stormnode/common/error.hpp>
#include <stormnode/common/subprocess.hpp>
#include <stormnode/common/temp_dir.hpp>
#include <stormnode/test/libvirt_rig.hpp>
#include <stormnode/test/qemu_vm.hpp>

#include <catch2/catch.hpp>
#include <poll.h>
#include <sched.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <iostream>
#include <map>
#include <mutex>
#include <regex>
#include <sstream>
#include <thread>

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using stormnode::run_checked;
using stormnode::test::artifacts;
using stormnode::test::DomainConsole;
using stormnode::test::image_env;
using stormnode::test::PrivateLibvirt;
using stormnode::test::seconds;
using stormnode::test::source_dir;
using stormnode::test::stormctl;

constexpr const char* kBridge = "br-rack";
constexpr const char* kServer = "10.10.0.1";
constexpr const char* kRack = "t";

int env_count(const char* name, int fallback, int most) {
    const auto text = stormnode::test::env_or(name, std::to_string(fallback));
    const int value = std::stoi(text);
    if (value < 0 || value > most) {
        throw stormnode::Error(
            stormnode::Errc::invalid_input, std::string(name) + ": 0.." + std::to_string(most));
    }
    return value;
}

// CPU seconds (user + system) a process has used so far, from /proc/PID/stat.
double process_cpu_seconds(pid_t pid) {
    std::string stat = stormnode::read_file("/proc/" + std::to_string(pid) + "/stat");
    std::istringstream fields(stat.substr(stat.rfind(')') + 2));  // after "pid (comm) "
    std::string field;
    double ticks = 0;
    for (int i = 3; fields >> field && i <= 15; ++i) {
        if (i == 14 || i == 15) {  // utime, stime
            ticks += std::stod(field);
        }
    }
    return ticks / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

// This process's own network namespace: the rack's bridge (made by libvirt), dnsmasq and the VMs' taps
// vanish with the process, whatever way the test ends.
void enter_own_network_namespace() {
    stormnode::check_errno(::unshare(CLONE_NEWNET), "unshare(CLONE_NEWNET)");
    run_checked({.argv = {"ip", "link", "set", "lo", "up"}});
}

// pxe serve's CPU time, its children's included: a cgroup of its own (cgroup v1 cpuacct, else v2).
class CpuCgroup {
public:
    CpuCgroup() {
        const std::string name = "stormnode-pxe-rack-" + std::to_string(::getpid());
        for (const fs::path root : {"/sys/fs/cgroup/cpuacct", "/sys/fs/cgroup/unified", "/sys/fs/cgroup"}) {
            if (fs::exists(root / "cgroup.procs") && ::access(root.c_str(), W_OK) == 0) {
                dir_ = root / name;
                fs::create_directory(dir_);
                v1_ = root.filename() == "cpuacct";
                return;
            }
        }
    }
    CpuCgroup(const CpuCgroup&) = delete;
    CpuCgroup& operator=(const CpuCgroup&) = delete;
    CpuCgroup(CpuCgroup&&) = delete;
    CpuCgroup& operator=(CpuCgroup&&) = delete;
    ~CpuCgroup() {
        if (!dir_.empty()) {
            ::rmdir(dir_.c_str());  // empty once pxe serve and dnsmasq are gone
        }
    }
    [[nodiscard]] std::vector<fs::path> dirs() const {
        return dir_.empty() ? std::vector<fs::path>{} : std::vector<fs::path>{dir_};
    }
    // Seconds of CPU used by the processes that were ever in it; negative when unknown.
    [[nodiscard]] double seconds() const {
        if (dir_.empty()) {
            return -1;
        }
        if (v1_) {
            return std::stod(stormnode::read_file(dir_ / "cpuacct.usage")) / 1e9;
        }
        std::istringstream stat(stormnode::read_file(dir_ / "cpu.stat"));
        std::string key;
        double value = 0;
        while (stat >> key >> value) {
            if (key == "usage_usec") {
                return value / 1e6;
            }
        }
        return -1;
    }

private:
    fs::path dir_;
    bool v1_ = false;
};

// `stormctl pxe serve` with its output read on a thread of its own (a full pipe would stall its main
// loop and with it dnsmasq), and waited on by pattern.
class PxeServe {
public:
    PxeServe(const std::vector<std::string>& argv, const std::vector<fs::path>& cgroups)
        // die_with_parent: a test killed on its timeout must not leave pxe serve and dnsmasq behind.
        : child_({.argv = argv, .pipe_output = true, .cgroups = cgroups, .die_with_parent = true}),
          reader_([this] { read_loop(); }) {}
    PxeServe(const PxeServe&) = delete;
    PxeServe& operator=(const PxeServe&) = delete;
    PxeServe(PxeServe&&) = delete;
    PxeServe& operator=(PxeServe&&) = delete;
    ~PxeServe() { stop(); }
    // Blocks until a line of its output matches, it ends, or the time is up.
    std::string wait_for(const std::string& pattern, std::chrono::seconds timeout) {
        const std::regex wanted(pattern);
        std::unique_lock lock(mutex_);
        std::size_t scanned = 0;
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        for (;;) {
            std::size_t end = 0;
            while ((end = output_.find('\n', scanned)) != std::string::npos) {
                const auto line = output_.substr(scanned, end - scanned);
                scanned = end + 1;
                if (std::regex_search(line, wanted)) {
                    return line;
                }
            }
            if (ended_) {
                throw stormnode::Error(stormnode::Errc::io, "pxe serve ended:\n" + tail());
            }
            if (changed_.wait_until(lock, deadline) == std::cv_status::timeout) {
                throw stormnode::Error(
                    stormnode::Errc::timeout,
                    "pxe serve printed no '" + pattern + "'; its last output:\n" + tail());
            }
        }
    }
    // SIGTERM (pxe serve stops dnsmasq), then its exit status.
    int stop() {
        const int status = child_.running() ? child_.terminate(30s) : child_.wait_status().value_or(0);
        if (reader_.joinable()) {
            reader_.join();
        }
        return status;
    }

private:
    // The end of its output (the last node table), with mutex_ held.
    [[nodiscard]] std::string tail() const {
        constexpr std::size_t kTail = 1500;
        return output_.size() <= kTail ? output_ : output_.substr(output_.size() - kTail);
    }

    void read_loop() {
        std::array<char, 8192> buffer{};
        for (;;) {
            pollfd p{child_.output_fd(), POLLIN, 0};
            if (::poll(&p, 1, -1) < 0 && errno != EINTR) {
                break;
            }
            const ssize_t n = ::read(child_.output_fd(), buffer.data(), buffer.size());
            if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
                break;  // end of output: pxe serve has ended
            }
            if (n > 0) {
                const std::lock_guard lock(mutex_);
                output_.append(buffer.data(), static_cast<std::size_t>(n));
                changed_.notify_all();
            }
        }
        const std::lock_guard lock(mutex_);
        ended_ = true;
        changed_.notify_all();
    }

    stormnode::ChildProcess child_;
    std::mutex mutex_;
    std::condition_variable changed_;
    std::string output_;
    bool ended_ = false;
    std::thread reader_;
};

struct NodeRow {
    std::string state;
    std::uint64_t http_bytes = 0;
    bool answers = false;
    std::string detail;
};

// pxe serve's GET /nodes (tab-separated), by MAC.
std::map<std::string, NodeRow> node_table() {
    const auto r = run_checked(
        {.argv = {"curl", "-sS", "--max-time", "20", std::string("http://") + kServer + "/nodes"}});
    std::map<std::string, NodeRow> rows;
    std::istringstream lines(r.out);
    std::string line;
    std::getline(lines, line);  // header
    while (std::getline(lines, line)) {
        std::vector<std::string> f;
        std::istringstream cells(line);
        std::string cell;
        while (std::getline(cells, cell, '\t')) {
            f.push_back(cell);
        }
        if (f.size() >= 9) {
            rows[f[0]] = NodeRow{f[4], std::stoull(f[5]), f[7] == "yes", f[8]};
        }
    }
    return rows;
}

// A VM of the rack as `stormctl vm rack` printed it.
struct RackVm {
    std::string name;
    std::string mac;
    std::string firmware;
    fs::path serial_log;
};

std::vector<RackVm> parse_rack_vms(const std::string& out) {
    std::vector<RackVm> vms;
    const std::regex line(R"(^vm (\S+) mac (\S+) firmware (\S+) serial-log (\S+)$)");
    std::istringstream lines(out);
    std::string text;
    std::smatch m;
    while (std::getline(lines, text)) {
        if (std::regex_match(text, m, line)) {
            vms.push_back({m[1].str(), m[2].str(), m[3].str(), m[4].str()});
        }
    }
    return vms;
}

// `stormctl vm rack` with this test's libvirt, state directory and inventory.
std::vector<std::string> vm_rack_argv(const fs::path& work, const fs::path& inventory) {
    return {
        stormctl().string(),
        "vm",
        "--connect",
        PrivateLibvirt::kUri,
        "--state-dir",
        (work / "vms").string(),
        "rack",
        "--inventory",
        inventory.string(),
        "--name",
        kRack,
        "--catalog",
        (source_dir() / "roles" / "catalog").string()};
}

// Removes the rack's VMs (and with them their disks) whatever way the test ends; their serial logs are
// kept next to the test's other files first.
class RackGuard {
public:
    RackGuard(std::vector<std::string> argv, std::vector<RackVm> vms, fs::path keep_dir)
        : argv_(std::move(argv)),
          vms_(std::move(vms)),
          keep_dir_(std::move(keep_dir)) {}
    RackGuard(const RackGuard&) = delete;
    RackGuard& operator=(const RackGuard&) = delete;
    RackGuard(RackGuard&&) = delete;
    RackGuard& operator=(RackGuard&&) = delete;
    ~RackGuard() {
        for (const auto& vm : vms_) {
            std::error_code ignored;
            fs::copy_file(
                vm.serial_log,
                keep_dir_ / (vm.name + ".serial.log"),
                fs::copy_options::overwrite_existing,
                ignored);
        }
        argv_.emplace_back("--destroy");
        const auto r = stormnode::run({.argv = argv_, .timeout = 120s});
        if (!r.ok()) {
            std::cerr << "vm rack --destroy: " << r.err << "\n";
        }
    }

private:
    std::vector<std::string> argv_;
    std::vector<RackVm> vms_;
    fs::path keep_dir_;
};

// A known node: network boot, unattended install, reboot from its disk, its inventory role healthy.
// The threads that wait on the consoles use no Catch2 assertions (they are not thread-safe): they return
// what they saw, or throw, and the test's thread checks it.
struct KnownResult {
    std::string hostname;
    std::string mac;
    std::string healthy_line;
    double install_done = 0;  // seconds since power on
    double healthy = 0;
    double guest_install_cpu = 0;  // what the installer says it used
    double qemu_install_cpu = 0;   // qemu's CPU time over the install (TCG: the guest's cost here)
};

KnownResult provision_known(
    DomainConsole& vm, const RackVm& rack_vm, const std::string& hostname, PxeServe& serve) {
    vm.wait_for("stormnode-install: phase check", 1500s);
    const double cpu_at_start = process_cpu_seconds(vm.pid());
    const auto cpu_line = vm.wait_for("stormnode-install: (cpu|failed)", 2400s);
    KnownResult result;
    result.hostname = hostname;
    result.mac = rack_vm.mac;
    result.qemu_install_cpu = process_cpu_seconds(vm.pid()) - cpu_at_start;
    std::smatch m;
    if (!std::regex_search(cpu_line, m, std::regex(R"(cpu ([0-9.]+) s)"))) {
        throw stormnode::Error(stormnode::Errc::io, hostname + ": the install ended with: " + cpu_line);
    }
    result.guest_install_cpu = std::stod(m[1].str());
    vm.wait_for("stormnode-install: phase done", 120s);
    result.install_done = seconds(vm.uptime());
    // SuccessAction=reboot: the same VM comes back from its disk (booted before the NIC).
    vm.wait_for("roles quorum from node.yaml", 1200s);
    result.healthy_line = vm.wait_for("roles quorum healthy", 1200s);
    result.healthy = seconds(vm.uptime());
    // The node reports it over HTTP right after the console line: keep the VM running until pxe serve's
    // table says so.
    serve.wait_for(rack_vm.mac + ".*healthy", 300s);
    return result;
}

// The unknown MAC: UEFI, live over the network, storm-roled says it has no role.
struct UnknownResult {
    std::string boot_file_line;
    double no_role_after = 0;
};

UnknownResult discover_unknown(DomainConsole& vm) {
    UnknownResult result;
    // OVMF's own PXE client got GRUB's EFI image (dnsmasq's client-arch 7 match); which per-MAC config
    // GRUB then fetched is in pxe serve's access log (checked at the end).
    result.boot_file_line = vm.wait_for("NBP filename is", 900s);
    // storm-roled's notice, echoed on the console by storm-roled-console.service
    vm.wait_for("no roles configured", 2400s);
    result.no_role_after = seconds(vm.uptime());
    return result;
}

std::uint64_t bytes_of(const fs::path& file) {
    return static_cast<std::uint64_t>(fs::file_size(file));
}

}  // namespace

TEST_CASE(
    "a rack over the network: known MACs install and report their roles healthy, an unknown one boots live",
    "[pxe]") {
    const int known_count = env_count("STORMNODE_PXE_RACK_KNOWN", 3, 9);
    const int unknown_count = env_count("STORMNODE_PXE_RACK_UNKNOWN", 1, 1);
    const auto image = image_env();
    REQUIRE(image.count("REF") == 1);
    const fs::path work = stormnode::test::work_dir("pxe-rack");

    enter_own_network_namespace();
    const auto libvirt_start = std::chrono::steady_clock::now();
    const PrivateLibvirt libvirt(work / "libvirt");
    std::cout << "libvirtd ready: " << seconds(std::chrono::steady_clock::now() - libvirt_start) << " s\n";

    // Boot artifacts from the fixture's repo: kernel, initrd, one squashfs (live root + signed repo).
    const auto build_start = std::chrono::steady_clock::now();
    run_checked(
        {.argv =
             {stormctl().string(),
              "pxe",
              "build",
              "--repo",
              (artifacts() / "repo").string(),
              "--ref",
              image.at("REF"),
              "-o",
              (work / "pxe").string()},
         .timeout = 30min});
    std::cout << "pxe build: " << seconds(std::chrono::steady_clock::now() - build_start) << " s\n";

    // The test image carries the quorum role only (image/minimal.yaml): every known node is a quorum node
    // with its own name and address.
    const fs::path inventory = work / "rack.yaml";
    {
        std::ofstream out(inventory);
        out << "network:\n"
               "  interface: "
            << kBridge
            << "\n"
               "  subnet: 10.10.0.0/24\n"
               "  server: "
            << kServer
            << "\n"
               "  range: [10.10.0.100, 10.10.0.199]\n"
               "  gateway: "
            << kServer
            << "\n"
               "defaults:\n"
               "  disk: /dev/vda\n"
               "  wipe: true\n"
               "discovered: live\n"
               "nodes:"
            << (known_count == 0 ? " {}" : "") << "\n";
        for (int i = 1; i <= known_count; ++i) {
            out << "  \"52:54:00:5a:00:0" << i << "\":\n"
                << "    hostname: quorum-" << i << "\n"
                << "    roles: [quorum]\n"
                << "    address: 10.10.0." << 10 + i << "\n";
        }
    }

    // The rack, defined but not started: a VM that finds no DHCP server gives up its network boot.
    const auto rack_argv = vm_rack_argv(work, inventory);
    auto define = rack_argv;
    define.insert(define.end(), {"--disk-size", "12", "--no-start"});
    if (unknown_count > 0) {
        define.insert(define.end(), {"--unknown", "uefi"});
    }
    const auto defined = run_checked({.argv = define, .timeout = 5min});
    const auto vms = parse_rack_vms(defined.out);
    INFO(defined.out);
    REQUIRE(vms.size() == static_cast<std::size_t>(known_count + unknown_count));
    const RackGuard guard(rack_argv, vms, work);

    const CpuCgroup cgroup;
    PxeServe serve(
        {stormctl().string(),
         "pxe",
         "serve",
         "--inventory",
         inventory.string(),
         "--interface",
         kBridge,
         "--artifacts",
         (work / "pxe").string(),
         "--run-dir",
         (work / "run").string(),
         "--catalog",
         (source_dir() / "roles" / "catalog").string(),
         "--dhcp-probe-ms",
         "3000"},
        cgroup.dirs());
    serve.wait_for("HOSTNAME", 60s);  // the first table: dnsmasq and HTTP are up

    // Every VM at one vCPU, all at once on this machine's cores.
    auto start = rack_argv;
    start.emplace_back("--start");
    run_checked({.argv = start, .timeout = 5min});
    const auto started = std::chrono::steady_clock::now();
    std::vector<std::unique_ptr<DomainConsole>> consoles;
    for (const auto& vm : vms) {
        consoles.push_back(std::make_unique<DomainConsole>(vm.name, vm.serial_log));
    }
    std::vector<std::future<KnownResult>> known;
    std::optional<std::future<UnknownResult>> unknown;
    std::optional<RackVm> unknown_vm;
    for (std::size_t i = 0; i < vms.size(); ++i) {
        auto& console = *consoles[i];
        const auto& vm = vms[i];
        if (vm.name.starts_with(std::string(kRack) + "-unknown-")) {
            unknown_vm = vm;
            unknown = std::async(std::launch::async, [&console] { return discover_unknown(console); });
        } else {
            const auto hostname = vm.name.substr(std::string(kRack).size() + 1);
            known.push_back(std::async(std::launch::async, [&console, &vm, hostname, &serve] {
                return provision_known(console, vm, hostname, serve);
            }));
        }
    }
    const UnknownResult discovered = unknown ? unknown->get() : UnknownResult{};
    std::vector<KnownResult> results;
    for (auto& f : known) {
        results.push_back(f.get());
    }
    const double wall = seconds(std::chrono::steady_clock::now() - started);

    const auto table = node_table();
    const auto squashfs = bytes_of(work / "pxe" / "squashfs.img");
    const auto boot_set =
        squashfs + bytes_of(work / "pxe" / "vmlinuz") + bytes_of(work / "pxe" / "initrd.img");
    double guest_install_cpu = 0;
    std::uint64_t known_bytes = 0;
    for (const auto& result : results) {
        INFO(result.hostname);
        CHECK_THAT(result.healthy_line, Catch::Matchers::Contains("roles quorum healthy"));
        REQUIRE(table.count(result.mac) == 1);
        const auto& node = table.at(result.mac);
        CHECK(node.state == "healthy");
        CHECK(node.detail == "roles quorum healthy");
        CHECK(node.answers);
        const double ratio = static_cast<double>(node.http_bytes) / static_cast<double>(boot_set);
        std::printf(
            "pxe rack: %s: install done after %.0f s, role healthy after %.0f s; install CPU %.1f s in the "
            "guest, %.1f s of qemu (TCG) here; HTTP %llu bytes = %.3f x the boot artifacts\n",
            result.hostname.c_str(),
            result.install_done,
            result.healthy,
            result.guest_install_cpu,
            result.qemu_install_cpu,
            static_cast<unsigned long long>(node.http_bytes),
            ratio);
        // Nothing fetched twice: the live root once, the install from the repo inside it.
        CHECK(ratio <= 1.05);
        guest_install_cpu += result.guest_install_cpu;
        known_bytes += node.http_bytes;
    }
    if (unknown_vm) {
        CHECK_THAT(discovered.boot_file_line, Catch::Matchers::Contains("x86_64-efi/core.efi"));
        REQUIRE(table.count(unknown_vm->mac) == 1);
        CHECK(table.at(unknown_vm->mac).state == "booting");  // the live system reported; no install
        CHECK_FALSE(table.at(unknown_vm->mac).answers);
    }

    CHECK(serve.stop() == 0);
    const double serve_cpu = cgroup.seconds();

    // Known nodes went through iPXE's per-MAC script; the UEFI node through GRUB's per-MAC config over
    // HTTP, never through iPXE's.
    const auto access_log = stormnode::read_file(work / "run" / "http.log");
    INFO(access_log);
    for (const auto& vm : vms) {
        if (unknown_vm && vm.name == unknown_vm->name) {
            CHECK_THAT(access_log, Catch::Matchers::Contains("/boot/grub/" + vm.mac + ".cfg\t"));
            CHECK_THAT(access_log, !Catch::Matchers::Contains("/boot/ipxe/" + vm.mac));
        } else {
            CHECK_THAT(access_log, Catch::Matchers::Contains("/boot/ipxe/" + vm.mac + ".ipxe\t"));
        }
    }

    const auto nodes = static_cast<double>(vms.size());
    std::printf(
        "pxe rack: %d known + %d unknown nodes from one server: all known healthy after %.0f s (wall from "
        "power on)\n",
        known_count,
        unknown_count,
        wall);
    if (unknown_vm) {
        std::printf("pxe rack: unknown node live without a role after %.0f s\n", discovered.no_role_after);
    }
    std::printf(
        "pxe rack: HTTP bytes to the known nodes: %.3f x the boot artifacts (%llu) per node, %.3f x the "
        "squashfs (%llu; it holds the kernel and initramfs too)\n",
        known_count > 0 ? static_cast<double>(known_bytes) / known_count / static_cast<double>(boot_set)
                        : 0.0,
        static_cast<unsigned long long>(boot_set),
        known_count > 0 ? static_cast<double>(known_bytes) / known_count / static_cast<double>(squashfs)
                        : 0.0,
        static_cast<unsigned long long>(squashfs));
    std::printf(
        "pxe rack: CPU: pxe serve + dnsmasq %.2f s for %d nodes (%.2f s per node); the known nodes' installs "
        "%.1f s in the guests; server per node / guest install per node = %.2f %%\n",
        serve_cpu,
        static_cast<int>(nodes),
        serve_cpu / nodes,
        guest_install_cpu,
        serve_cpu >= 0 && guest_install_cpu > 0
            ? 100 * (serve_cpu / nodes) / (guest_install_cpu / known_count)
            : -1.0);
}
