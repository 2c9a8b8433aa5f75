// Cluster secrets made into files for the engines (corosync's authkey, database passwords): one way to
// look a secret up and one way to write it.
#pragma once

#include <stormnode/cluster/cluster.hpp>

#include <filesystem>
#include <map>
#include <string>

namespace stormnode::roles {

// The named secret from load_cluster_secrets(cluster); Errc::invalid_input naming the secrets file when
// it is missing.
const std::string& cluster_secret(
    const std::map<std::string, std::string>& secrets, const Cluster& cluster, const std::string& name);

// Written whole and atomically with mode, then given to user (engines refuse keys others can read). Only
// on the running system (live): a test root's users are not this system's.
void write_secret_file(
    const std::filesystem::path& path,
    const std::string& content,
    unsigned mode,
    const std::string& user,
    bool live);

}  // namespace stormnode::roles
