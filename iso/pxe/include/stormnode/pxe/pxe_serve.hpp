// stormctl pxe serve: dnsmasq (DHCP or proxy-DHCP, TFTP) and an HTTP server (cpp-httplib) for the
// artifacts of `pxe build`, the OSTree repo and per-MAC answer files, with a table of the nodes seen.
//
// HTTP:  GET /vmlinuz /initrd.img /squashfs.img /boot.ipxe /grub/...   the artifacts directory
//        GET /repo/...                          the OSTree repo (archive), when one is given
//        GET /boot/grub/<mac>.cfg, /boot/ipxe/<mac>.ipxe   what this MAC boots (install, live, local)
//        GET /answers/<mac>.yaml                the answer file of a known MAC (404 otherwise)
//        POST /report  mac=<mac>&state=<state>[&detail=<text>]   a node says how far it is
//        GET /nodes                             the node table, tab-separated (render_node_tsv)
#pragma once

#include "stormnode/pxe/pxe_build.hpp"
#include "stormnode/pxe/pxe_inventory.hpp"

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace stormnode::iso {

struct DnsmasqConfig {
    std::string interface;
    bool proxy_dhcp = false;
    std::filesystem::path tftp_root;   // the artifacts directory
    std::filesystem::path lease_file;  // in the run directory
    int http_port = 80;
};

// dnsmasq.conf for the inventory: no DNS, DHCP (a range plus one dhcp-host per MAC) or proxy-DHCP,
// TFTP from tftp_root, boot file by client: iPXE -> HTTP boot.ipxe, UEFI -> core.efi, BIOS -> core.0.
std::string render_dnsmasq_conf(const Inventory& inventory, const DnsmasqConfig& config);

// One DHCP event from dnsmasq's log ("dnsmasq-dhcp: DHCPACK(br0) 10.10.0.11 52:54:00:00:00:01 db-1").
struct DhcpEvent {
    std::string kind;  // DHCPDISCOVER, DHCPOFFER, DHCPREQUEST, DHCPACK, PXE, ...
    std::string ip;    // may be empty (DHCPDISCOVER)
    std::string mac;   // lower case
    std::string hostname;
};
std::optional<DhcpEvent> parse_dnsmasq_line(std::string_view line);

// Broadcasts a DHCPDISCOVER on the interface and waits up to `timeout` for an offer. Returns the
// address of the server that answered, nullopt when none did. Needs root (port 68, SO_BINDTODEVICE).
std::optional<std::string> probe_dhcp_server(const std::string& interface, std::chrono::milliseconds timeout);

// What a node is doing, as far as the server knows.
enum class NodeState { seen, booting, installing, installed, healthy, failed };
std::string_view to_string(NodeState state);
std::optional<NodeState> node_state_from_string(std::string_view text);

struct NodeStatus {
    std::string mac;
    std::string hostname;  // from the inventory, else from DHCP
    std::string ip;
    bool known = false;  // in the inventory
    NodeState state = NodeState::seen;
    std::string detail;  // the last event, in words
    std::uint64_t http_bytes = 0;
    std::uint64_t http_requests = 0;
    bool answers_fetched = false;
};

// The nodes seen, fed by dnsmasq's log, HTTP requests and reports; safe to use from several threads.
class NodeTable {
public:
    explicit NodeTable(const Inventory& inventory);
    void dhcp(const DhcpEvent& event);
    void http(const std::string& client_ip, const std::string& path, std::uint64_t bytes);
    void answers_fetched(const std::string& mac);
    void boot_config(const std::string& mac, BootAction action);
    // false when the MAC or state is not valid
    bool report(const std::string& mac, const std::string& state, const std::string& detail);
    [[nodiscard]] std::vector<NodeStatus> snapshot() const;  // known nodes first, in inventory order
    [[nodiscard]] std::uint64_t version() const;             // changes whenever anything does

private:
    NodeStatus& entry(const std::string& mac);  // with mutex_ held
    mutable std::mutex mutex_;
    std::map<std::string, NodeStatus> nodes_;
    std::map<std::string, std::string> mac_by_ip_;
    std::vector<std::string> order_;
    std::uint64_t version_ = 0;
};

// A plain-text table of the nodes (for the terminal).
std::string render_node_table(const std::vector<NodeStatus>& nodes);
// The same for programs (GET /nodes): a header line, then one tab-separated line per node with
// mac, hostname, address, known (yes|no), state, http_bytes, http_requests, answers (yes|no), detail.
std::string render_node_tsv(const std::vector<NodeStatus>& nodes);

struct ServeOptions {
    Inventory inventory;
    std::string interface;  // empty: the inventory's
    bool proxy_dhcp = false;
    std::filesystem::path artifacts;
    std::optional<std::filesystem::path> repo;
    std::filesystem::path run_dir;  // dnsmasq.conf, leases, dnsmasq.log, http.log (access log) go here
    int http_port = 80;
    std::chrono::milliseconds dhcp_probe_timeout{
        5000};  // servers ping an address before offering it (dnsmasq: ~3 s)
};

class ServeListener {
public:
    virtual ~ServeListener() = default;
    virtual void ready(const std::string& summary) = 0;
    virtual void nodes_changed(const std::vector<NodeStatus>& nodes) = 0;
    virtual void dnsmasq_line(std::string_view line) = 0;
};

// Probes for another DHCP server (unless proxy-DHCP), starts dnsmasq and the HTTP server and runs until
// SIGINT or SIGTERM (read through a signalfd), then stops both. Throws Error(refused) when another DHCP
// server answers, Error(io) when dnsmasq cannot start or dies.
void serve(const ServeOptions& options, ServeListener& listener);

}  // namespace stormnode::iso
