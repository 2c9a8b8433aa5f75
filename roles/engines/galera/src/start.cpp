#include "stormnode/galera/start.hpp"

#include <stormnode/common/c_handle.hpp>
#include <stormnode/common/error.hpp>
#include <stormnode/common/temp_dir.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

namespace stormnode::roles {

std::vector<std::string> reachable_addresses(
    const std::vector<std::string>& addresses, int port, std::chrono::milliseconds deadline) {
    struct Attempt {
        std::string address;
        UniqueFd fd;
    };
    std::vector<Attempt> attempts;
    std::vector<std::string> reachable;
    for (const auto& address : addresses) {
        sockaddr_storage storage{};
        socklen_t length = 0;
        int family = AF_INET;
        auto* v4 = reinterpret_cast<sockaddr_in*>(&storage);
        auto* v6 = reinterpret_cast<sockaddr_in6*>(&storage);
        if (::inet_pton(AF_INET, address.c_str(), &v4->sin_addr) == 1) {
            v4->sin_family = AF_INET;
            v4->sin_port = htons(static_cast<std::uint16_t>(port));
            length = sizeof(sockaddr_in);
        } else if (::inet_pton(AF_INET6, address.c_str(), &v6->sin6_addr) == 1) {
            family = AF_INET6;
            v6->sin6_family = AF_INET6;
            v6->sin6_port = htons(static_cast<std::uint16_t>(port));
            length = sizeof(sockaddr_in6);
        } else {
            continue;  // cluster.yaml's checks let no such address through
        }
        UniqueFd fd(::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
        if (fd.get() < 0) {
            continue;
        }
        const int r = ::connect(fd.get(), reinterpret_cast<const sockaddr*>(&storage), length);
        if (r == 0) {
            reachable.push_back(address);
        } else if (errno == EINPROGRESS) {
            attempts.push_back({address, std::move(fd)});
        }
    }
    const auto until = std::chrono::steady_clock::now() + deadline;
    while (!attempts.empty()) {
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
        if (left.count() <= 0) {
            break;
        }
        std::vector<pollfd> fds;
        for (const auto& attempt : attempts) {
            fds.push_back({attempt.fd.get(), POLLOUT, 0});
        }
        const int n = ::poll(fds.data(), fds.size(), static_cast<int>(left.count()));
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break;
        }
        std::vector<Attempt> pending;
        for (std::size_t i = 0; i < attempts.size(); ++i) {
            if (fds[i].revents == 0) {
                pending.push_back(std::move(attempts[i]));
                continue;
            }
            int error = 0;
            socklen_t size = sizeof(error);
            if (::getsockopt(attempts[i].fd.get(), SOL_SOCKET, SO_ERROR, &error, &size) == 0 && error == 0) {
                reachable.push_back(attempts[i].address);
            }
        }
        attempts = std::move(pending);
    }
    return reachable;
}

std::optional<GaleraDecision> prepare_galera_start(
    const NodeConfig& node, const std::filesystem::path& root, std::chrono::milliseconds probe_deadline) {
    if (!node.cluster_model) {
        return std::nullopt;
    }
    const Cluster& cluster = *node.cluster_model;
    const ClusterMember* self = cluster.find(node.hostname);
    if (self == nullptr || !self->carries("db")) {
        return std::nullopt;
    }
    std::optional<GraState> grastate;
    std::error_code ec;
    const auto grastate_path = root / "var/lib/mysql/grastate.dat";
    if (std::filesystem::exists(grastate_path, ec)) {
        grastate = parse_grastate(read_file(grastate_path));
    }
    const auto reachable = reachable_addresses(galera_peers(cluster, node.hostname), 4567, probe_deadline);
    auto decision = decide_galera_start(cluster, node.hostname, grastate, reachable);
    // "+": as root (the unit runs as mysql, and the file must not be writable by it); "-": gone already.
    const auto drop_in = root / kGaleraDropIn;
    std::filesystem::create_directories(drop_in.parent_path());
    write_file_atomic(
        drop_in,
        std::string("# storm-roled: a new Galera cluster is started once, by the start that finds /") +
            kGaleraNewClusterEnv +
            "; it goes when that start ends.\n[Service]\nExecStartPost=-+/bin/rm -f /" +
            kGaleraNewClusterEnv + "\nExecStopPost=-+/bin/rm -f /" + kGaleraNewClusterEnv + "\n",
        0644);
    const auto new_cluster = root / kGaleraNewClusterEnv;
    if (decision.start == GaleraStart::new_cluster) {
        std::filesystem::create_directories(new_cluster.parent_path());
        write_file_atomic(
            new_cluster,
            "# storm-roled: this node starts a new Galera cluster (" + decision.reason +
                ")\n_WSREP_NEW_CLUSTER=--wsrep-new-cluster\n",
            0644);
    } else {
        std::filesystem::remove(new_cluster, ec);
    }
    return decision;
}

}  // namespace stormnode::roles
