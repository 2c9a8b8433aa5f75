// The real node behind storm-console: storm-roled through NodeClient, the node's own files, and the tools
// that change it (networkctl, journalctl, systemctl, stormctl os rollback), all through run() with argv.
#include "console_text.hpp"
#include "stormnode/console/console_worker.hpp"
#include "stormnode/firstboot/networkd.hpp"

#include <stormnode/cluster/quorum_guard.hpp>
#include <stormnode/common/error.hpp>
#include <stormnode/common/subprocess.hpp>
#include <stormnode/common/temp_dir.hpp>
#include <stormnode/node_client/node_client.hpp>
#include <stormnode/supervisor/transaction.hpp>

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <security/pam_appl.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <set>

namespace stormnode::firstboot {
namespace {

std::string first_line(const std::filesystem::path& file) {
    std::ifstream in(file);
    std::string line;
    std::getline(in, line);
    return line;
}

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> lines;
    std::string line;
    for (const char c : text) {
        if (c == '\n') {
            lines.push_back(line);
            line.clear();
        } else {
            line += c;
        }
    }
    if (!line.empty()) {
        lines.push_back(line);
    }
    return lines;
}

std::vector<ConsoleInterface> read_interfaces() {
    ifaddrs* list = nullptr;
    if (getifaddrs(&list) != 0) {
        return {};
    }
    const std::unique_ptr<ifaddrs, decltype(&freeifaddrs)> owned(list, freeifaddrs);
    std::map<std::string, ConsoleInterface> by_name;
    std::vector<std::string> order;
    for (const ifaddrs* a = list; a != nullptr; a = a->ifa_next) {
        if (a->ifa_name == nullptr || a->ifa_addr == nullptr || (a->ifa_flags & IFF_LOOPBACK) != 0) {
            continue;
        }
        auto [it, added] = by_name.try_emplace(a->ifa_name);
        if (added) {
            it->second.name = a->ifa_name;
            order.emplace_back(a->ifa_name);
        }
        auto& entry = it->second;
        const int family = a->ifa_addr->sa_family;
        if (family == AF_PACKET) {
            const auto* ll = reinterpret_cast<const sockaddr_ll*>(a->ifa_addr);  // NOLINT: C socket API
            std::string mac;
            for (int i = 0; i < ll->sll_halen; ++i) {
                std::array<char, 4> byte{};
                std::snprintf(byte.data(), byte.size(), "%02x", ll->sll_addr[i]);
                mac += (i == 0 ? "" : ":") + std::string(byte.data());
            }
            entry.mac = mac;
        } else if (family == AF_INET || family == AF_INET6) {
            std::array<char, INET6_ADDRSTRLEN> text{};
            const void* raw =
                family == AF_INET
                    ? static_cast<const void*>(
                          &reinterpret_cast<const sockaddr_in*>(a->ifa_addr)->sin_addr)  // NOLINT
                    : static_cast<const void*>(
                          &reinterpret_cast<const sockaddr_in6*>(a->ifa_addr)->sin6_addr);  // NOLINT
            if (inet_ntop(family, raw, text.data(), text.size()) == nullptr) {
                continue;
            }
            int prefix = 0;
            if (a->ifa_netmask != nullptr) {
                const auto* bytes =
                    family == AF_INET
                        ? reinterpret_cast<const unsigned char*>(
                              &reinterpret_cast<const sockaddr_in*>(a->ifa_netmask)->sin_addr)  // NOLINT
                        : reinterpret_cast<const unsigned char*>(
                              &reinterpret_cast<const sockaddr_in6*>(a->ifa_netmask)->sin6_addr);  // NOLINT
                const int length = family == AF_INET ? 4 : 16;
                for (int i = 0; i < length; ++i) {
                    prefix += __builtin_popcount(bytes[i]);  // NOLINT: pointer arithmetic on a C struct
                }
            }
            entry.addresses.push_back(std::string(text.data()) + "/" + std::to_string(prefix));
        }
    }
    std::vector<ConsoleInterface> interfaces;
    for (const auto& name : order) {
        interfaces.push_back(by_name.at(name));
    }
    return interfaces;
}

class RealNode final : public NodeBackend {
public:
    RealNode(BackendOptions options, const roles::Catalog& catalog)
        : options_(std::move(options)),
          catalog_(catalog) {}

    bool authenticate(const std::string& password) override {
        return pam_check_password(options_.pam_service, options_.pam_user, password, options_.pam_confdir);
    }

    NodeView read_status() override {
        NodeView view;
        if (options_.root == "/") {
            std::array<char, 256> name{};
            gethostname(name.data(), name.size() - 1);
            view.hostname = name.data();
        } else {
            view.hostname = first_line(options_.root / "etc/hostname");
        }
        view.interfaces = read_interfaces();
        read_deployments(view);
        read_cluster(view);
        read_last_transaction(view);
        try {
            const auto status = client().status();
            view.connected = true;
            view.roles = roles::parse_role_specs(status.roles);  // the bus carries them as text
            view.state = status.state;
            view.reason = status.reason;
            view.image_commit = status.image_commit;
            view.image_version = status.image_version;
            for (const auto& u : status.units) {
                view.units.push_back(ConsoleUnit{u.unit, u.active_state, u.check_state, u.restarts});
            }
        } catch (const std::exception& e) {
            client_.reset();  // a new connection next time (the bus may have gone)
            view.connect_error = describe(e);
            image_from_deployments(view);  // still worth showing: a live boot has no storm-roled
        }
        return view;
    }

    void set_roles(const std::vector<roles::RoleSpec>& specs, bool force) override {
        client().set_roles(roles::to_strings(specs), force, false, {});
    }
    void restart_role(const roles::RoleSpec& role) override { client().restart_role(roles::to_string(role)); }

    std::vector<std::string> journal(const std::string& unit) override {
        std::vector<std::string> argv{"journalctl", "--no-pager", "-o", "short", "-n", "40", "-u", unit};
        if (options_.root != "/") {
            argv.push_back("--root=" + options_.root.string());
        }
        stormnode::Command c{.argv = argv};
        c.timeout = std::chrono::seconds(20);
        const auto result = run_checked(c);
        return lines_of(result.out);
    }

    void apply_network(const NetworkCommand& network) override {
        roles::Network n;
        n.interface = network.interface;
        n.mode = network.dhcp ? roles::AddressMode::dhcp : roles::AddressMode::fixed;
        n.address = network.address;
        n.gateway = network.gateway;
        n.dns = network.dns;
        const auto file = render_networkd(n);
        const auto dir = options_.root / "etc/systemd/network";
        std::filesystem::create_directories(dir);
        write_file_atomic(dir / file.name, file.text, 0644);
        stormnode::Command reload{.argv = {"networkctl", "reload"}};
        reload.timeout = std::chrono::seconds(30);
        run_checked(reload);
        stormnode::Command reconfigure{.argv = {"networkctl", "reconfigure", network.interface}};
        reconfigure.timeout = std::chrono::seconds(30);
        run_checked(reconfigure);
    }

    void os_rollback() override {
        stormnode::Command probe{.argv = {options_.stormctl, "os", "rollback", "--help"}};
        probe.timeout = std::chrono::seconds(20);
        bool available = false;
        try {
            available = run(probe).ok();
        } catch (const Error&) {
            available = false;  // no stormctl at all
        }
        if (!available) {
            throw Error(
                Errc::not_found,
                "Rolling back the OS is not available: this image's stormctl has no 'os rollback'.");
        }
        stormnode::Command rollback{.argv = {options_.stormctl, "os", "rollback"}};
        rollback.timeout = std::chrono::minutes(5);
        run_checked(rollback);
    }
    void reboot() override { systemctl("reboot"); }
    void power_off() override { systemctl("poweroff"); }

private:
    roles::NodeClient& client() {
        if (!client_) {
            client_ = std::make_unique<roles::NodeClient>(roles::NodeClient::system());
        }
        return *client_;
    }

    static void systemctl(const std::string& verb) {
        stormnode::Command c{.argv = {"systemctl", verb}};
        c.timeout = std::chrono::seconds(30);
        run_checked(c);
    }

    void read_deployments(NodeView& view) const {
        if (!std::filesystem::exists(options_.root / "ostree/deploy")) {
            return;
        }
        stormnode::Command c{.argv = {"ostree", "admin", "status", "--sysroot=" + options_.root.string()}};
        c.timeout = std::chrono::seconds(20);
        try {
            const auto result = run(c);
            for (const auto& line : lines_of(result.ok() ? result.out : result.err)) {
                if (!line.empty()) {
                    view.deployments.push_back(line);
                }
            }
        } catch (const Error& e) {
            view.deployments.push_back(e.what());
        }
    }

    // The booted deployment's "Version:" from the `ostree admin status` lines (storm-roled says the same
    // when it runs): "* stormnode <commit>.0" then "    Version: 2024.3".
    static void image_from_deployments(NodeView& view) {
        bool booted = false;
        for (const auto& line : view.deployments) {
            if (line.rfind("* ", 0) == 0) {
                booted = true;
            } else if (booted && line.find("Version: ") != std::string::npos) {
                view.image_version = line.substr(line.find("Version: ") + 9);
                return;
            } else if (booted && line.rfind("  ", 0) != 0) {
                return;
            }
        }
    }

    void read_cluster(NodeView& view) const {
        try {
            const auto cluster =
                roles::load_optional_cluster(options_.root / "etc/stormnode/cluster.yaml", &catalog_);
            if (!cluster) {
                view.cluster.emplace_back("Cluster: no cluster.yaml (not a cluster member yet)");
                return;
            }
            view.cluster.push_back(
                "Cluster: " + (cluster->name.empty() ? std::string("(unnamed)") : cluster->name) + ", " +
                std::to_string(cluster->members.size()) + " members");
            for (const auto& [name, role] : catalog_.roles) {
                const auto members = cluster->members_with(name);
                if (role.cluster.quorum_member && !members.empty()) {
                    view.cluster.push_back(
                        "  " + name + ": " + std::to_string(members.size()) + " members, quorum needs " +
                        std::to_string(members.size() / 2 + 1));
                }
            }
        } catch (const std::exception& e) {
            view.cluster.push_back("Cluster: " + describe(e));
        }
    }

    void read_last_transaction(NodeView& view) const {
        try {
            const roles::TransactionLog log(options_.root / "var/lib/stormnode");
            if (const auto last = log.last()) {
                view.last_transaction = joined(last->old_roles, ",", "(none)") + " -> " +
                                        joined(last->new_roles, ",") + ": " +
                                        (last->finished() ? last->outcome + " at " + last->finished_at
                                                          : last->phase + " (in progress)");
            }
        } catch (const std::exception& e) {
            view.last_transaction = describe(e);
        }
    }

    BackendOptions options_;
    const roles::Catalog& catalog_;
    std::unique_ptr<roles::NodeClient> client_;
};

// PAM's conversation: the one answer is the password.
int answer_with_password(int count, const pam_message** messages, pam_response** responses, void* data) {
    auto* replies = static_cast<pam_response*>(
        std::calloc(static_cast<std::size_t>(count), sizeof(pam_response)));  // NOLINT: PAM frees it
    if (replies == nullptr) {
        return PAM_BUF_ERR;
    }
    for (int i = 0; i < count; ++i) {
        if (messages[i]->msg_style == PAM_PROMPT_ECHO_OFF ||
            messages[i]->msg_style == PAM_PROMPT_ECHO_ON) {            // NOLINT
            replies[i].resp = strdup(static_cast<const char*>(data));  // NOLINT
        }
    }
    *responses = replies;
    return PAM_SUCCESS;
}

}  // namespace

bool pam_check_password(
    const std::string& service,
    const std::string& user,
    const std::string& password,
    const std::filesystem::path& confdir) {
    const pam_conv conversation{answer_with_password, const_cast<char*>(password.c_str())};  // NOLINT: C API
    pam_handle_t* handle = nullptr;
    const int started =
        confdir.empty()
            ? pam_start(service.c_str(), user.c_str(), &conversation, &handle)
            : pam_start_confdir(service.c_str(), user.c_str(), &conversation, confdir.c_str(), &handle);
    if (started != PAM_SUCCESS) {
        throw Error(Errc::io, "starting PAM service " + service + ": " + pam_strerror(handle, started));
    }
    // The stack's own delay (pam_faildelay) or, when it sets none, two seconds after a failure.
    pam_fail_delay(handle, 2000000);
    int r = pam_authenticate(handle, 0);
    if (r == PAM_SUCCESS) {
        r = pam_acct_mgmt(handle, 0);
    }
    pam_end(handle, r);
    return r == PAM_SUCCESS;
}

std::unique_ptr<NodeBackend> make_node_backend(const BackendOptions& options, const roles::Catalog& catalog) {
    return std::make_unique<RealNode>(options, catalog);
}

}  // namespace stormnode::firstboot
