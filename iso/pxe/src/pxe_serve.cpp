#include "stormnode/pxe/pxe_serve.hpp"

#include "stormnode/pxe/pxe_http.hpp"

#include <stormnode/catalog/node_file.hpp>
#include <stormnode/common/c_handle.hpp>
#include <stormnode/common/child_process.hpp>
#include <stormnode/common/error.hpp>
#include <stormnode/common/temp_dir.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <fstream>
#include <memory>
#include <thread>

namespace stormnode::iso {
namespace fs = std::filesystem;

std::string_view to_string(NodeState state) {
    switch (state) {
        case NodeState::seen:
            return "seen";
        case NodeState::booting:
            return "booting";
        case NodeState::installing:
            return "installing";
        case NodeState::installed:
            return "installed";
        case NodeState::healthy:
            return "healthy";
        case NodeState::failed:
            return "failed";
    }
    return "?";
}

std::optional<NodeState> node_state_from_string(std::string_view text) {
    for (auto s :
         {NodeState::seen,
          NodeState::booting,
          NodeState::installing,
          NodeState::installed,
          NodeState::healthy,
          NodeState::failed}) {
        if (to_string(s) == text) {
            return s;
        }
    }
    return std::nullopt;
}

NodeTable::NodeTable(const Inventory& inventory) {
    for (const auto& node : inventory.nodes) {
        NodeStatus status;
        status.mac = node.mac;
        status.hostname = node.answers.node.hostname;
        status.ip = node.address;
        status.known = true;
        status.detail = "not seen yet";
        nodes_.emplace(node.mac, status);
        order_.push_back(node.mac);
    }
}

NodeStatus& NodeTable::entry(const std::string& mac) {
    auto [it, inserted] = nodes_.try_emplace(mac);
    if (inserted) {
        it->second.mac = mac;
        order_.push_back(mac);
    }
    ++version_;
    return it->second;
}

void NodeTable::dhcp(const DhcpEvent& event) {
    const std::lock_guard lock(mutex_);
    auto& n = entry(event.mac);
    if (!event.ip.empty()) {
        n.ip = event.ip;
        mac_by_ip_[event.ip] = event.mac;
    }
    if (n.hostname.empty() && !event.hostname.empty()) {
        n.hostname = event.hostname;
    }
    n.detail = event.kind + (event.ip.empty() ? "" : " " + event.ip);
}

void NodeTable::http(const std::string& client_ip, const std::string& path, std::uint64_t bytes) {
    const std::lock_guard lock(mutex_);
    const auto it = mac_by_ip_.find(client_ip);
    if (it == mac_by_ip_.end()) {
        return;  // not a DHCP client of ours (a proxy-DHCP network, or a test from the server itself)
    }
    auto& n = entry(it->second);
    n.http_bytes += bytes;
    ++n.http_requests;
    n.detail = "GET " + path;
}

void NodeTable::answers_fetched(const std::string& mac) {
    const std::lock_guard lock(mutex_);
    auto& n = entry(mac);
    n.answers_fetched = true;
    n.detail = "answer file fetched";
}

void NodeTable::boot_config(const std::string& mac, BootAction action) {
    const std::lock_guard lock(mutex_);
    auto& n = entry(mac);
    if (n.state == NodeState::seen || n.state == NodeState::installed || n.state == NodeState::failed) {
        n.state = NodeState::booting;
    }
    n.detail = action == BootAction::install ? "boot loader: install"
               : action == BootAction::live  ? "boot loader: live (discovered)"
                                             : "boot loader: ignored";
}

bool NodeTable::report(const std::string& mac, const std::string& state, const std::string& detail) {
    const auto s = node_state_from_string(state);
    if (!roles::valid_mac(mac) || !s) {
        return false;
    }
    const std::lock_guard lock(mutex_);
    auto& n = entry(roles::normalize_mac(mac));
    n.state = *s;
    n.detail = detail.empty() ? "reported " + state : detail;
    return true;
}

std::vector<NodeStatus> NodeTable::snapshot() const {
    const std::lock_guard lock(mutex_);
    std::vector<NodeStatus> out;
    out.reserve(order_.size());
    for (const auto& mac : order_) {
        out.push_back(nodes_.at(mac));
    }
    std::stable_partition(out.begin(), out.end(), [](const NodeStatus& n) { return n.known; });
    return out;
}

std::uint64_t NodeTable::version() const {
    const std::lock_guard lock(mutex_);
    return version_;
}

std::string render_node_table(const std::vector<NodeStatus>& nodes) {
    std::string text;
    char line[256];
    std::snprintf(
        line,
        sizeof line,
        "%-17s  %-16s  %-15s  %-10s  %10s  %s\n",
        "MAC",
        "HOSTNAME",
        "ADDRESS",
        "STATE",
        "HTTP MB",
        "LAST EVENT");
    text += line;
    for (const auto& n : nodes) {
        const std::string name =
            n.known ? n.hostname : (n.hostname.empty() ? "(discovered)" : n.hostname + "?");
        std::snprintf(
            line,
            sizeof line,
            "%-17s  %-16.16s  %-15s  %-10s  %10.1f  %s\n",
            n.mac.c_str(),
            name.c_str(),
            n.ip.empty() ? "-" : n.ip.c_str(),
            std::string(to_string(n.state)).c_str(),
            static_cast<double>(n.http_bytes) / 1e6,
            n.detail.c_str());
        text += line;
    }
    return text;
}

std::string render_node_tsv(const std::vector<NodeStatus>& nodes) {
    std::string text = "mac\thostname\taddress\tknown\tstate\thttp_bytes\thttp_requests\tanswers\tdetail\n";
    for (const auto& n : nodes) {
        std::string detail = n.detail;
        std::replace_if(
            detail.begin(), detail.end(), [](char c) { return c == '\t' || c == '\n'; }, ' ');
        text += n.mac + "\t" + n.hostname + "\t" + n.ip + "\t" + (n.known ? "yes" : "no") + "\t" +
                std::string(to_string(n.state)) + "\t" + std::to_string(n.http_bytes) + "\t" +
                std::to_string(n.http_requests) + "\t" + (n.answers_fetched ? "yes" : "no") + "\t" + detail +
                "\n";
    }
    return text;
}

namespace {

// Signals go to the signalfd from here on, in this thread and the threads it starts.
class BlockedSignals {
public:
    BlockedSignals() {
        sigemptyset(&set_);
        sigaddset(&set_, SIGINT);
        sigaddset(&set_, SIGTERM);
        check_r(-pthread_sigmask(SIG_BLOCK, &set_, &old_), "blocking SIGINT and SIGTERM");
        fd_ = UniqueFd(check_errno(::signalfd(-1, &set_, SFD_CLOEXEC | SFD_NONBLOCK), "signalfd"));
    }
    BlockedSignals(const BlockedSignals&) = delete;
    BlockedSignals& operator=(const BlockedSignals&) = delete;
    BlockedSignals(BlockedSignals&&) = delete;
    BlockedSignals& operator=(BlockedSignals&&) = delete;
    ~BlockedSignals() { pthread_sigmask(SIG_SETMASK, &old_, nullptr); }
    [[nodiscard]] int fd() const { return fd_.get(); }

private:
    sigset_t set_{};
    sigset_t old_{};
    UniqueFd fd_;
};

// Whether the IPv4 address is one of the interface's.
bool has_address(const std::string& interface, const std::string& address) {
    in_addr wanted{};
    if (::inet_pton(AF_INET, address.c_str(), &wanted) != 1) {
        return false;
    }
    ifaddrs* raw = nullptr;
    check_errno(::getifaddrs(&raw), "listing the network interfaces' addresses");
    const std::unique_ptr<ifaddrs, decltype(&::freeifaddrs)> list(raw, &::freeifaddrs);
    for (const ifaddrs* a = list.get(); a != nullptr; a = a->ifa_next) {
        if (a->ifa_addr != nullptr && a->ifa_addr->sa_family == AF_INET && interface == a->ifa_name &&
            reinterpret_cast<const sockaddr_in*>(a->ifa_addr)->sin_addr.s_addr == wanted.s_addr) {
            return true;
        }
    }
    return false;
}

// Lines of dnsmasq's output, as they complete.
class LineReader {
public:
    template <typename F>
    bool read(int fd, F&& on_line) {
        std::array<char, 4096> buffer{};
        for (;;) {
            const auto n = ::read(fd, buffer.data(), buffer.size());
            if (n > 0) {
                pending_.append(buffer.data(), static_cast<std::size_t>(n));
                std::size_t nl = 0;
                while ((nl = pending_.find('\n')) != std::string::npos) {
                    on_line(std::string_view(pending_).substr(0, nl));
                    pending_.erase(0, nl + 1);
                }
                continue;
            }
            return n != 0 || errno == EAGAIN;  // false at end of file
        }
    }

private:
    std::string pending_;
};

// Everything that would make serving fail or do harm, checked before anything starts: the interface,
// the server address on it, a DHCP range (unless proxy-DHCP), the artifacts, and no other DHCP server.
void check_can_serve(const ServeOptions& options, const std::string& interface) {
    if (interface.empty()) {
        throw Error(
            Errc::invalid_input, "no interface: give --interface or network.interface in the inventory");
    }
    // if_nametoindex asks the kernel in this network namespace; /sys/class/net shows the namespace that
    // mounted /sys, which is not this one under unshare or nsenter.
    if (::if_nametoindex(interface.c_str()) == 0) {
        throw Error(Errc::invalid_input, "interface '" + interface + "' does not exist");
    }
    // Nodes are told to fetch from network.server: it must be this machine's, on that interface.
    if (!has_address(interface, options.inventory.network.server)) {
        throw Error(
            Errc::invalid_input,
            "the inventory's server address " + options.inventory.network.server + " is not on interface '" +
                interface + "': nodes could not reach this server (add it: ip addr add " +
                options.inventory.network.server + "/PREFIX dev " + interface + ")");
    }
    const bool proxy = options.proxy_dhcp || options.inventory.network.proxy_dhcp;
    if (!proxy && options.inventory.network.range_start.empty()) {
        throw Error(
            Errc::invalid_input,
            "the inventory's network has no 'range': it can only be served with --proxy-dhcp");
    }
    for (const char* file :
         {kBiosBootFile, kUefiBootFile, kIpxeScript, "vmlinuz", "initrd.img", "squashfs.img"}) {
        if (!fs::exists(options.artifacts / file)) {
            throw Error(
                Errc::invalid_input,
                (options.artifacts / file).string() + " is missing: run stormctl pxe build first");
        }
    }
    if (!proxy) {
        if (const auto other = probe_dhcp_server(interface, options.dhcp_probe_timeout)) {
            throw Error(
                Errc::refused,
                "another DHCP server (" + *other + ") answers on " + interface +
                    ": refusing to start a second one; use --proxy-dhcp to add only the boot information");
        }
    }
}

// The main loop while dnsmasq runs: its output lines to the listener and the node table (ready once
// its TFTP server is up), the table's changes to the listener. Returns "" on SIGINT or SIGTERM, or
// how dnsmasq ended.
std::string watch_dnsmasq(
    ChildProcess& child,
    int signal_fd,
    int changed_fd,
    NodeTable& table,
    ServeListener& listener,
    const std::string& ready) {
    LineReader lines;
    bool announced = false;
    std::uint64_t shown_version = ~std::uint64_t{0};
    for (;;) {
        std::array<pollfd, 4> fds{
            {{signal_fd, POLLIN, 0},
             {child.pidfd(), POLLIN, 0},
             {child.output_fd(), POLLIN, 0},
             {changed_fd, POLLIN, 0}}};
        const int n = ::poll(fds.data(), fds.size(), -1);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        check_errno(n, "waiting for events");
        if ((fds[2].revents & (POLLIN | POLLHUP)) != 0) {
            lines.read(child.output_fd(), [&](std::string_view line) {
                listener.dnsmasq_line(line);
                if (const auto event = parse_dnsmasq_line(line)) {
                    table.dhcp(*event);
                }
                if (!announced && line.find("TFTP root is") != std::string_view::npos) {
                    announced = true;
                    listener.ready(ready);
                }
            });
        }
        if ((fds[3].revents & POLLIN) != 0) {
            std::uint64_t count = 0;
            (void)::read(changed_fd, &count, sizeof count);
        }
        if (table.version() != shown_version) {
            shown_version = table.version();
            listener.nodes_changed(table.snapshot());
        }
        if ((fds[0].revents & POLLIN) != 0) {
            signalfd_siginfo info{};
            (void)::read(signal_fd, &info, sizeof info);
            return {};
        }
        if ((fds[1].revents & POLLIN) != 0) {
            const auto status = child.wait(std::chrono::milliseconds(0));
            return "dnsmasq " + (status ? describe_wait_status(*status) : std::string("ended"));
        }
    }
}

}  // namespace

void serve(const ServeOptions& options, ServeListener& listener) {
    const std::string interface =
        options.interface.empty() ? options.inventory.network.interface : options.interface;
    check_can_serve(options, interface);
    const bool proxy = options.proxy_dhcp || options.inventory.network.proxy_dhcp;

    fs::create_directories(options.run_dir);
    const fs::path conf = options.run_dir / "dnsmasq.conf";
    const DnsmasqConfig dnsmasq{
        interface,
        proxy,
        fs::absolute(options.artifacts),
        options.run_dir / "dnsmasq.leases",
        options.http_port};
    write_file_atomic(conf, render_dnsmasq_conf(options.inventory, dnsmasq));

    const BlockedSignals signals;
    NodeTable table(options.inventory);
    const UniqueFd changed(check_errno(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK), "eventfd"));
    // Who fetched which file and how much of it: the figures behind "nothing fetched twice" and
    // "an update costs its static delta" (client, path, bytes, status; tab-separated).
    std::mutex access_log_mutex;
    std::ofstream access_log(options.run_dir / "http.log", std::ios::app);
    PxeHttpServer http(
        options,
        table,
        [fd = changed.get()] {
            const std::uint64_t one = 1;
            (void)::write(fd, &one, sizeof one);  // wakes the main loop
        },
        [&](const HttpTransfer& t) {
            const std::lock_guard lock(access_log_mutex);
            access_log << t.client << "\t" << t.path << "\t" << t.bytes << "\t" << t.status << "\n"
                       << std::flush;
        });
    http.start();

    ChildProcess child(
        {.argv =
             {"dnsmasq",
              "--keep-in-foreground",
              "--conf-file=" + conf.string(),
              "--pid-file=",
              "--user=root"},
         .pipe_output = true,
         .die_with_parent = true});
    const std::string ready = std::string(proxy ? "proxy-DHCP" : "DHCP") + " and TFTP on " + interface +
                              ", HTTP on http://" + options.inventory.network.server + ":" +
                              std::to_string(options.http_port) + "/, " +
                              std::to_string(options.inventory.nodes.size()) + " known nodes";
    const std::string failure = watch_dnsmasq(child, signals.fd(), changed.get(), table, listener, ready);
    http.stop();
    if (child.running()) {
        child.terminate(std::chrono::seconds(5));
    }
    if (!failure.empty()) {
        throw Error(Errc::io, failure + " (its log: the lines above; its config: " + conf.string() + ")");
    }
}

}  // namespace stormnode::iso
