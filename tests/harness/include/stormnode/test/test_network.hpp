// A private Ethernet segment for containers: a Linux bridge inside a network namespace the test creates
// (the "switch"), and per container a network namespace joined to it by a veth pair, with a static
// address. Containers on it reach each other and nothing else (no route out, the host's namespace is
// not on the bridge). systemd-nspawn joins a container's namespace with --network-namespace-path.
// RAII: the destructor deletes every namespace it made, which removes the bridge and the veths.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace stormnode::test {

class TestNetwork {
public:
    // Creates the switch namespace "<prefix>-sw" with bridge br0 up. Default prefix: unique per process.
    explicit TestNetwork(std::string prefix = {});
    TestNetwork(const TestNetwork&) = delete;
    TestNetwork& operator=(const TestNetwork&) = delete;
    TestNetwork(TestNetwork&&) = delete;
    TestNetwork& operator=(TestNetwork&&) = delete;
    ~TestNetwork();

    // A namespace "<prefix>-<host>" with lo up and host0 carrying address_cidr ("10.77.0.11/24"), its
    // peer enslaved to br0. Returns the namespace's path (/run/netns/...), for --network-namespace-path.
    // The namespace outlives the containers that join it: a container restarted keeps its address.
    std::filesystem::path attach(const std::string& host, const std::string& address_cidr);

private:
    void add_namespace(const std::string& name);
    std::string prefix_;
    std::vector<std::string> namespaces_;  // created, in order; the switch first
    int ports_ = 0;
};

// Why TestNetwork cannot work here (no `ip`, no network namespaces, no bridge or veth), or nullopt.
std::optional<std::string> test_network_unavailable();

}  // namespace stormnode::test
