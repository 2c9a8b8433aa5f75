// A rack provisioned over the network, in qemu (TCG): this process's own network namespace with a bridge,
// `stormctl pxe serve` on it (dnsmasq DHCP/TFTP + HTTP), and two VMs on tap ports, one per firmware.
// The known MAC (role quorum, BIOS) boots through its NIC's iPXE ROM, installs itself from the live
// root it fetched over HTTP (the commit's GPG signature checked), reboots from its disk and reports its
// role healthy. The unknown MAC (UEFI) boots with OVMF's own PXE client (client-arch 7: dnsmasq hands
// it GRUB's core.efi over TFTP), GRUB's grub.cfg loads its per-MAC config over HTTP, and it boots live
// with no role: UEFI netboot is proven without a third VM. Both are checked on their serial consoles and in
// pxe serve's node table (GET /nodes), and the server-side cost is printed: HTTP bytes per node against
// the boot artifacts, pxe serve's CPU time (its own cgroup) against the node's install.
//
// STORMNODE_SYSTEM_ARTIFACTS: the image fixture's directory (repo, image.env), default
// $STORMNODE_BINARY_DIR/system-artifacts. Exit 77 (system_pxe_main.cpp) without qemu, dnsmasq or
// network namespaces.
#include <stormnode/common/child_process.hpp>
#include <stormnode/common/error.hpp>
#include <stormnode/common/subprocess.hpp>
#include <stormnode/common/temp_dir.hpp>
#include <stormnode/test/qemu_vm.hpp>

#include "system_paths.hpp"

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
using stormnode::test::QemuVm;
using stormnode::test::artifacts;
using stormnode::test::image_env;
using stormnode::test::seconds;
using stormnode::test::source_dir;
using stormnode::test::stormctl;

constexpr const char* kBridge = "br-rack";
constexpr const char* kServer = "10.10.0.1";
constexpr const char* kKnownMac = "52:54:00:5a:00:01";
constexpr const char* kUnknownMac = "52:54:00:5a:00:99";

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

// This process's own network namespace with the rack's bridge and one tap port per VM: everything in
// it vanishes with the process, whatever way the test ends.
class RackNetwork {
public:
    RackNetwork() {
        stormnode::check_errno(::unshare(CLONE_NEWNET), "unshare(CLONE_NEWNET)");
        ip({"link", "set", "lo", "up"});
        ip({"link", "add", kBridge, "type", "bridge", "forward_delay", "0"});
        ip({"addr", "add", std::string(kServer) + "/24", "dev", kBridge});
        ip({"link", "set", kBridge, "up"});
    }
    static void add_tap(const std::string& tap) {
        ip({"tuntap", "add", "dev", tap, "mode", "tap"});
        ip({"link", "set", tap, "master", kBridge});
        ip({"link", "set", tap, "up"});
    }

private:
    static void ip(std::vector<std::string> args) {
        args.insert(args.begin(), "ip");
        run_checked({.argv = args});
    }
};

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
    ~PxeServe() {
        stop();
    }
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
                    stormnode::Errc::timeout, "pxe serve printed no '" + pattern + "'; its last output:\n" + tail());
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
    const auto r = run_checked({.argv = {"curl", "-sS", "--max-time", "20", std::string("http://") + kServer + "/nodes"}});
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

// The quorum node: network boot, unattended install, reboot from its disk, role healthy.
struct KnownResult {
    double install_done = 0;  // seconds since power on
    double healthy = 0;
    double guest_install_cpu = 0;  // what the installer says it used
    double qemu_install_cpu = 0;   // qemu's CPU time over the install (TCG: the guest's cost here)
};

KnownResult provision_known(const fs::path& dir, PxeServe& serve) {
    fs::create_directories(dir);
    stormnode::test::make_qcow2(dir / "disk.qcow2", "12G");
    QemuVm vm(
        {.disks = {{dir / "disk.qcow2"}},
         .work_dir = dir,
         .name = "known",
         .netdev = "tap,id=n0,ifname=tap-known,script=no,downscript=no",
         .mac = kKnownMac,
         .network_boot = true});
    vm.wait_for("stormnode-install: phase check", 1200s);
    const double cpu_at_start = process_cpu_seconds(vm.pid());
    const auto cpu_line = vm.wait_for("stormnode-install: (cpu|failed)", 2400s);
    KnownResult result;
    result.qemu_install_cpu = process_cpu_seconds(vm.pid()) - cpu_at_start;
    std::smatch m;
    REQUIRE(std::regex_search(cpu_line, m, std::regex(R"(cpu ([0-9.]+) s)")));
    result.guest_install_cpu = std::stod(m[1].str());
    vm.wait_for("stormnode-install: phase done", 120s);
    result.install_done = seconds(vm.uptime());
    // SuccessAction=reboot: the same VM comes back from its disk (bootindex 1), the NIC is not asked.
    vm.wait_for("roles quorum from node.yaml", 900s);
    CHECK_THAT(vm.wait_for("roles quorum healthy", 900s), Catch::Matchers::Contains("roles quorum healthy"));
    result.healthy = seconds(vm.uptime());
    // The node reports it over HTTP right after the console line: keep the VM running until pxe serve's
    // table says so.
    serve.wait_for(std::string(kKnownMac) + ".*healthy", 300s);
    return result;
}

// The unknown MAC: UEFI, no disk, live over the network, storm-roled says it has no role.
double discover_unknown(const fs::path& dir) {
    QemuVm vm(
        {.firmware = stormnode::test::Firmware::uefi,
         .memory_mib = 1536,
         .work_dir = dir,
         .name = "unknown",
         .netdev = "tap,id=n0,ifname=tap-unknown,script=no,downscript=no",
         .mac = kUnknownMac,
         .network_boot = true});
    // OVMF's own PXE client got GRUB's EFI image (dnsmasq's client-arch 7 match); which per-MAC config
    // GRUB then fetched is in pxe serve's access log (checked at the end).
    CHECK_THAT(vm.wait_for("NBP filename is", 600s), Catch::Matchers::Contains("x86_64-efi/core.efi"));
    // storm-roled's notice, echoed on the console by storm-roled-console.service
    CHECK_THAT(
        vm.wait_for("no roles configured", 1500s), Catch::Matchers::Contains("no roles configured"));
    return seconds(vm.uptime());
}

std::uint64_t bytes_of(const fs::path& file) {
    return static_cast<std::uint64_t>(fs::file_size(file));
}

}  // namespace

TEST_CASE(
    "a rack over the network: a known MAC installs and reports its role healthy, an unknown one boots live",
    "[pxe]") {
    const auto image = image_env();
    REQUIRE(image.count("REF") == 1);
    const fs::path work = stormnode::test::work_dir("pxe-rack");

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

    const fs::path inventory = work / "rack.yaml";
    std::ofstream(inventory) << "network:\n"
                                "  interface: " << kBridge << "\n"
                                "  subnet: 10.10.0.0/24\n"
                                "  server: " << kServer << "\n"
                                "  range: [10.10.0.100, 10.10.0.199]\n"
                                "  gateway: " << kServer << "\n"
                                "defaults:\n"
                                "  disk: /dev/vda\n"
                                "  wipe: true\n"
                                "discovered: live\n"
                                "nodes:\n"
                                "  \"" << kKnownMac << "\":\n"
                                "    hostname: quorum-1\n"
                                "    roles: [quorum]\n"
                                "    address: 10.10.0.11\n";

    const RackNetwork network;
    RackNetwork::add_tap("tap-known");
    RackNetwork::add_tap("tap-unknown");
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

    // Two VMs at -smp 1 on two cores, side by side.
    const auto start = std::chrono::steady_clock::now();
    auto known = std::async(std::launch::async, [&] { return provision_known(work / "known", serve); });
    auto unknown = std::async(std::launch::async, [&] { return discover_unknown(work / "unknown"); });
    const double discovered_after = unknown.get();
    const KnownResult result = known.get();
    const double wall = seconds(std::chrono::steady_clock::now() - start);

    const auto table = node_table();
    REQUIRE(table.count(kKnownMac) == 1);
    const auto& node = table.at(kKnownMac);
    CHECK(node.state == "healthy");
    CHECK(node.detail == "roles quorum healthy");
    CHECK(node.answers);
    REQUIRE(table.count(kUnknownMac) == 1);
    CHECK(table.at(kUnknownMac).state == "booting");  // the live system reported; no install
    CHECK_FALSE(table.at(kUnknownMac).answers);

    CHECK(serve.stop() == 0);
    const double serve_cpu = cgroup.seconds();

    // The UEFI node's boot went through GRUB's per-MAC config over HTTP, never through iPXE's.
    const auto access_log = stormnode::read_file(work / "run" / "http.log");
    INFO(access_log);
    CHECK_THAT(access_log, Catch::Matchers::Contains(std::string("/boot/grub/") + kUnknownMac + ".cfg\t"));
    CHECK_THAT(access_log, !Catch::Matchers::Contains(std::string("/boot/ipxe/") + kUnknownMac));
    CHECK_THAT(access_log, Catch::Matchers::Contains(std::string("/boot/ipxe/") + kKnownMac + ".ipxe\t"));

    const auto squashfs = bytes_of(work / "pxe" / "squashfs.img");
    const auto boot_set =
        squashfs + bytes_of(work / "pxe" / "vmlinuz") + bytes_of(work / "pxe" / "initrd.img");
    const double ratio = static_cast<double>(node.http_bytes) / static_cast<double>(boot_set);
    std::printf(
        "pxe rack: known node: install done after %.0f s, role healthy after %.0f s (wall %.0f s); "
        "unknown node: no role after %.0f s\n",
        result.install_done,
        result.healthy,
        wall,
        discovered_after);
    // The squashfs holds the kernel and initramfs too (the offline-install repo needs their objects):
    // against the squashfs alone, the ratio shows that double.
    std::printf(
        "pxe rack: HTTP bytes served to the known node %llu = %.3f x the boot artifacts (%llu) = %.3f x "
        "the squashfs (%llu); unknown node %llu\n",
        static_cast<unsigned long long>(node.http_bytes),
        ratio,
        static_cast<unsigned long long>(boot_set),
        static_cast<double>(node.http_bytes) / static_cast<double>(squashfs),
        static_cast<unsigned long long>(squashfs),
        static_cast<unsigned long long>(table.at(kUnknownMac).http_bytes));
    std::printf(
        "pxe rack: CPU: pxe serve + dnsmasq %.2f s for 2 nodes (%.2f s per node); the node's install "
        "%.1f s in the guest, %.1f s of qemu (TCG) on this machine; server/guest install = %.1f %%\n",
        serve_cpu,
        serve_cpu / 2,
        result.guest_install_cpu,
        result.qemu_install_cpu,
        serve_cpu >= 0 && result.guest_install_cpu > 0 ? 100 * serve_cpu / 2 / result.guest_install_cpu : -1.0);
    // Nothing fetched twice: the live root once, the install from the repo inside it.
    CHECK(ratio <= 1.05);
    stormnode::test::drop_disk_images(work);
}
