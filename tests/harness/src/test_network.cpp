#include "stormnode/test/test_network.hpp"

#include <stormnode/common/error.hpp>
#include <stormnode/common/subprocess.hpp>

#include <unistd.h>

#include <atomic>
#include <optional>

namespace stormnode::test {
namespace {

constexpr const char* kSwitchSuffix = "-sw";
constexpr const char* kBridge = "br0";

// ip ARGUMENTS..., to completion; throws only when ip cannot be started.
ProcessResult ip_result(const std::vector<std::string>& arguments) {
    Command command{.argv = {"ip"}};
    command.argv.insert(command.argv.end(), arguments.begin(), arguments.end());
    command.timeout = std::chrono::seconds(30);
    return run(command);
}

void ip(const std::vector<std::string>& arguments) {
    if (const auto result = ip_result(arguments); !result.ok()) {
        throw Error(Errc::io, "ip " + format_argv(arguments) + ": " + result.err);
    }
}

std::string unique_prefix() {
    static std::atomic<int> counter{0};
    return "stnet" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
}

}  // namespace

std::optional<std::string> test_network_unavailable() {
    if (::geteuid() != 0) {
        return "needs root (network namespaces)";
    }
    // A throwaway namespace with a bridge and a veth pair: what TestNetwork builds, in miniature.
    const std::string probe = "stprobe" + std::to_string(::getpid());
    ProcessResult added;
    try {
        added = ip_result({"netns", "add", probe});
    } catch (const Error& e) {
        return std::string("cannot run ip (iproute2): ") + e.what();
    }
    if (!added.ok()) {
        return "cannot create a network namespace (ip netns add): " + added.err;
    }
    std::optional<std::string> reason;
    for (const std::vector<std::string>& arguments :
         {std::vector<std::string>{"-n", probe, "link", "add", "br0", "type", "bridge"},
          std::vector<std::string>{"-n", probe, "link", "add", "v0", "type", "veth", "peer", "name", "v1"}}) {
        if (const auto result = ip_result(arguments); !result.ok()) {
            reason =
                "the kernel lacks bridge or veth support (ip " + format_argv(arguments) + "): " + result.err;
            break;
        }
    }
    ip_result({"netns", "del", probe});
    return reason;
}

TestNetwork::TestNetwork(std::string prefix) : prefix_(prefix.empty() ? unique_prefix() : std::move(prefix)) {
    const std::string sw = prefix_ + kSwitchSuffix;
    add_namespace(sw);
    try {
        ip({"-n", sw, "link", "add", kBridge, "type", "bridge"});
        ip({"-n", sw, "link", "set", kBridge, "up"});
    } catch (...) {
        for (auto it = namespaces_.rbegin(); it != namespaces_.rend(); ++it) {
            ip_result({"netns", "del", *it});
        }
        throw;
    }
}

TestNetwork::~TestNetwork() {
    // Deleting a namespace destroys its interfaces; a veth goes with either end.
    for (auto it = namespaces_.rbegin(); it != namespaces_.rend(); ++it) {
        try {
            ip_result({"netns", "del", *it});
        } catch (...) {  // NOLINT(bugprone-empty-catch): nothing more to do while destroying
        }
    }
}

void TestNetwork::add_namespace(const std::string& name) {
    ip({"netns", "add", name});
    namespaces_.push_back(name);
}

std::filesystem::path TestNetwork::attach(const std::string& host, const std::string& address_cidr) {
    const std::string sw = prefix_ + kSwitchSuffix;
    const std::string ns = prefix_ + "-" + host;
    // Interface names are at most 15 characters: the switch side is numbered.
    const std::string port = "port" + std::to_string(ports_++);
    add_namespace(ns);
    // Made in the switch namespace, one end then moved: its name there is host0, as nspawn's own veths.
    ip({"-n", sw, "link", "add", port, "type", "veth", "peer", "name", "host0", "netns", ns});
    ip({"-n", sw, "link", "set", port, "master", kBridge});
    ip({"-n", sw, "link", "set", port, "up"});
    ip({"-n", ns, "link", "set", "lo", "up"});
    ip({"-n", ns, "address", "add", address_cidr, "dev", "host0"});
    ip({"-n", ns, "link", "set", "host0", "up"});
    return std::filesystem::path("/run/netns") / ns;
}

}  // namespace stormnode::test
