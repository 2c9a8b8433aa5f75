#include "stormnode/iso/pxe_serve.hpp"

#include <stormnode/common/c_handle.hpp>
#include <stormnode/common/child_process.hpp>
#include <stormnode/common/error.hpp>
#include <stormnode/common/temp_dir.hpp>
#include <stormnode/roles/node_file.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <httplib.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
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
    if (!firstboot::valid_mac(mac) || !s) {
        return false;
    }
    const std::lock_guard lock(mutex_);
    auto& n = entry(firstboot::normalize_mac(mac));
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
        std::replace_if(detail.begin(), detail.end(), [](char c) { return c == '\t' || c == '\n'; }, ' ');
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

// "/boot/grub/52:54:00:00:00:01.cfg" -> the MAC, when it is one
std::optional<std::string> mac_in(const std::string& name) {
    if (!firstboot::valid_mac(name)) {
        return std::nullopt;
    }
    return firstboot::normalize_mac(name);
}

// A file under root, never outside it; nullopt for anything else.
std::optional<fs::path> file_under(const fs::path& root, const std::string& relative) {
    if (relative.empty() || relative.find("..") != std::string::npos || relative.front() == '/') {
        return std::nullopt;
    }
    fs::path path = root / relative;
    std::error_code ec;
    if (!fs::is_regular_file(path, ec)) {
        return std::nullopt;
    }
    return path;
}

class HttpServer {
public:
    HttpServer(const ServeOptions& options, NodeTable& table, int notify_fd)
        : options_(options),
          table_(table),
          notify_fd_(notify_fd) {
        const std::string server = options.inventory.network.server +
                                   (options.http_port == 80 ? "" : ":" + std::to_string(options.http_port));
        server_.Get(
            R"(/boot/(grub|ipxe)/([^/]+)\.(cfg|ipxe))",
            [this, server](const httplib::Request& req, httplib::Response& res) {
                const auto mac = mac_in(req.matches[2]);
                if (!mac) {
                    res.status = 404;
                    return;
                }
                const InventoryNode* node = options_.inventory.find(*mac);
                const BootAction action = node != nullptr ? BootAction::install
                                          : options_.inventory.discovered == DiscoveredPolicy::live
                                              ? BootAction::live
                                              : BootAction::local;
                const BootParams params{server, *mac, {}};
                const bool grub = req.matches[1] == "grub";
                res.set_content(
                    grub ? render_grub_entry(action, params) : render_ipxe_entry(action, params),
                    "text/plain");
                table_.boot_config(*mac, action);
                notify();
            });
        server_.Get(R"(/answers/([^/]+)\.yaml)", [this](const httplib::Request& req, httplib::Response& res) {
            const auto mac = mac_in(req.matches[1]);
            const InventoryNode* node = mac ? options_.inventory.find(*mac) : nullptr;
            if (node == nullptr) {
                res.status = 404;
                res.set_content("no answer file for this MAC: it is not in the inventory\n", "text/plain");
                return;
            }
            res.set_content(render_answers(*node), "application/yaml");
            table_.answers_fetched(node->mac);
            notify();
        });
        server_.Post("/report", [this](const httplib::Request& req, httplib::Response& res) {
            const auto mac = req.get_param_value("mac");
            const auto state = req.get_param_value("state");
            if (!table_.report(mac, state, req.get_param_value("detail"))) {
                res.status = 400;
                res.set_content(
                    "want mac=<MAC>&state=<seen|booting|installing|installed|healthy|failed>\n",
                    "text/plain");
                return;
            }
            res.set_content("ok\n", "text/plain");
            notify();
        });
        server_.Get("/nodes", [this](const httplib::Request&, httplib::Response& res) {
            res.set_content(render_node_tsv(table_.snapshot()), "text/tab-separated-values");
        });
        server_.Get(R"(/repo/(.+))", [this](const httplib::Request& req, httplib::Response& res) {
            if (!options_.repo) {
                res.status = 404;
                return;
            }
            serve_file(req, res, *options_.repo, req.matches[1]);
        });
        server_.Get(R"(/(.+))", [this](const httplib::Request& req, httplib::Response& res) {
            serve_file(req, res, options_.artifacts, req.matches[1]);
        });
    }

    void start() {
        const auto& host = options_.inventory.network.server;
        if (!server_.bind_to_port(host, options_.http_port)) {
            throw Error(
                Errc::io,
                "cannot listen on http://" + host + ":" + std::to_string(options_.http_port) +
                    " (is the address on the interface, is the port free?)");
        }
        thread_ = std::thread([this] { server_.listen_after_bind(); });
    }

    void stop() {
        server_.stop();
        if (thread_.joinable()) {
            thread_.join();
        }
    }

    HttpServer(const HttpServer&) = delete;
    HttpServer& operator=(const HttpServer&) = delete;
    HttpServer(HttpServer&&) = delete;
    HttpServer& operator=(HttpServer&&) = delete;
    ~HttpServer() { stop(); }

private:
    void notify() {
        const std::uint64_t one = 1;
        (void)::write(notify_fd_, &one, sizeof one);  // an eventfd: wakes the main loop
    }

    // Streams the file (squashfs.img is hundreds of MB: never read whole into memory), counting bytes per
    // client.
    void serve_file(
        const httplib::Request& req, httplib::Response& res, const fs::path& root, const std::string& rel) {
        const auto path = file_under(root, rel);
        if (!path) {
            res.status = 404;
            return;
        }
        auto fd = std::make_shared<UniqueFd>(::open(path->c_str(), O_RDONLY | O_CLOEXEC));
        struct stat st {};
        if (fd->get() < 0 || ::fstat(fd->get(), &st) != 0) {
            res.status = 403;
            return;
        }
        const auto size = static_cast<std::size_t>(st.st_size);
        const std::string client = req.remote_addr;
        const std::string shown = "/" + rel;
        res.set_content_provider(
            size,
            "application/octet-stream",
            [fd](std::size_t offset, std::size_t length, httplib::DataSink& sink) {
                std::array<char, 1 << 16> buffer{};
                const auto want = std::min(length, buffer.size());
                const auto n = ::pread(fd->get(), buffer.data(), want, static_cast<off_t>(offset));
                if (n <= 0) {
                    return false;
                }
                return sink.write(buffer.data(), static_cast<std::size_t>(n));
            },
            [this, client, shown, size](bool success) {
                table_.http(client, shown, success ? size : 0);
                notify();
            });
    }

    const ServeOptions& options_;
    NodeTable& table_;
    int notify_fd_;
    httplib::Server server_;
    std::thread thread_;
};

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

}  // namespace

void serve(const ServeOptions& options, ServeListener& listener) {
    const std::string interface =
        options.interface.empty() ? options.inventory.network.interface : options.interface;
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
    HttpServer http(options, table, changed.get());
    http.start();

    ChildProcess child(
        {.argv =
             {"dnsmasq",
              "--keep-in-foreground",
              "--conf-file=" + conf.string(),
              "--pid-file=",
              "--user=root"},
         .pipe_output = true});
    LineReader lines;
    bool announced = false;
    std::uint64_t shown_version = ~std::uint64_t{0};
    std::string failure;
    for (;;) {
        std::array<pollfd, 4> fds{
            {{signals.fd(), POLLIN, 0},
             {child.pidfd(), POLLIN, 0},
             {child.output_fd(), POLLIN, 0},
             {changed.get(), POLLIN, 0}}};
        const int ready = ::poll(fds.data(), fds.size(), -1);
        if (ready < 0 && errno == EINTR) {
            continue;
        }
        check_errno(ready, "waiting for events");
        if ((fds[2].revents & (POLLIN | POLLHUP)) != 0) {
            lines.read(child.output_fd(), [&](std::string_view line) {
                listener.dnsmasq_line(line);
                if (const auto event = parse_dnsmasq_line(line)) {
                    table.dhcp(*event);
                }
                if (!announced && line.find("TFTP root is") != std::string_view::npos) {
                    announced = true;
                    listener.ready(
                        std::string(proxy ? "proxy-DHCP" : "DHCP") + " and TFTP on " + interface +
                        ", HTTP on http://" + options.inventory.network.server + ":" +
                        std::to_string(options.http_port) + "/, " +
                        std::to_string(options.inventory.nodes.size()) + " known nodes");
                }
            });
        }
        if ((fds[3].revents & POLLIN) != 0) {
            std::uint64_t count = 0;
            (void)::read(changed.get(), &count, sizeof count);
        }
        if (table.version() != shown_version) {
            shown_version = table.version();
            listener.nodes_changed(table.snapshot());
        }
        if ((fds[0].revents & POLLIN) != 0) {
            signalfd_siginfo info{};
            (void)::read(signals.fd(), &info, sizeof info);
            break;
        }
        if ((fds[1].revents & POLLIN) != 0) {
            const auto status = child.wait(std::chrono::milliseconds(0));
            failure = "dnsmasq " + (status ? describe_wait_status(*status) : std::string("ended")) +
                      " (its log: the lines above; its config: " + conf.string() + ")";
            break;
        }
    }
    http.stop();
    if (child.running()) {
        child.terminate(std::chrono::seconds(5));
    }
    if (!failure.empty()) {
        throw Error(Errc::io, failure);
    }
}

}  // namespace stormnode::iso
