// Shared by the cluster tests (Galera, Pacemaker pair, Zabbix pair): a member's options on the cluster
// rootfs variant, stormctl cluster init as an operator runs it, and State's first word.
#pragma once

#include <stormnode/common/error.hpp>
#include <stormnode/common/subprocess.hpp>
#include <stormnode/common/temp_dir.hpp>
#include <stormnode/test/roled_node.hpp>
#include <stormnode/test/rootfs_cache.hpp>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

namespace stormnode::test {

struct Member {
    std::string hostname;
    std::string address;
};

// The one test rootfs the cluster tests share (ctest fixture integration.rootfs_cluster).
inline const Rootfs& cluster_rootfs() {
    static const Rootfs instance = test_rootfs_variant("cluster");
    return instance;
}

// A member's node: storm-roled from the build (or $STORMNODE_TEST_ROLED), its hostname and management
// address, cluster.yaml's text, on its network namespace. Roles and the rest are the test's.
inline RoledOptions member_options(
    const Member& member,
    const std::filesystem::path& netns,
    const std::string& cluster_yaml,
    const std::filesystem::path& roled_binary,
    const std::filesystem::path& source_dir) {
    RoledOptions o;
    o.rootfs = cluster_rootfs().tree;
    const char* roled = std::getenv("STORMNODE_TEST_ROLED");  // NOLINT(concurrency-mt-unsafe)
    o.roled_binary = roled != nullptr && *roled != '\0' ? std::filesystem::path(roled) : roled_binary;
    o.source_dir = source_dir;
    o.hostname = member.hostname;
    o.variables = {{"mgmt_address", member.address}};
    o.cluster_yaml = cluster_yaml;
    o.network_namespace = netns;
    return o;
}

// cluster.yaml and its secrets file as an operator makes them.
struct ClusterFiles {
    std::string cluster_yaml;
    std::string secrets_yaml;
};

// `stormctl cluster --catalog <source>/roles/catalog init <init_arguments> -o cluster.yaml`; throws with
// stormctl's output when it fails.
inline ClusterFiles init_cluster(
    const std::filesystem::path& stormctl,
    const std::filesystem::path& source_dir,
    const std::vector<std::string>& init_arguments) {
    const TempDir dir("stormnode-cluster-init");
    const auto output = dir.path() / "cluster.yaml";
    std::vector<std::string> argv{
        stormctl.string(), "cluster", "--catalog", (source_dir / "roles/catalog").string(), "init"};
    argv.insert(argv.end(), init_arguments.begin(), init_arguments.end());
    argv.insert(argv.end(), {"-o", output.string()});
    run_checked(Command{.argv = argv, .timeout = std::chrono::seconds(60)});
    return {read_file(output), read_file(dir.path() / "cluster.secrets.yaml")};
}

// State's first word: "degraded(mariadb.service: ...)" -> "degraded".
inline std::string state_word(const std::string& state) {
    return state.substr(0, state.find_first_of("( :"));
}

}  // namespace stormnode::test
