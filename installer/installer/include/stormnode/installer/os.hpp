// `stormctl os status|upgrade|rollback`: the deployments of an installed node, on the node itself
// (sysroot /) or on its disk mounted elsewhere (root filesystem with /boot mounted under it).
#pragma once

#include <stormnode/common/progress.hpp>
#include <stormnode/image/pull.hpp>

#include <filesystem>
#include <string>
#include <vector>

namespace stormnode::installer {

struct DeploymentStatus {
    int index = 0;  // 0: the default (boots next)
    std::string osname;
    std::string commit;
    int serial = 0;
    std::string version;
    std::string refspec;  // from its origin
    bool booted = false;
    bool pending = false;   // the default, newer than the booted one
    bool rollback = false;  // the one after the default (or after the booted one)
};

std::vector<DeploymentStatus> os_status(const std::filesystem::path& sysroot);

struct UpgradeOptions {
    std::filesystem::path sysroot = "/";
    std::string source_repo;           // empty: the node's remote "stormnode"
    std::string ref;                   // empty: the default deployment's
    std::filesystem::path public_key;  // empty: the default deployment's /usr/share/stormnode/keys
};

struct UpgradeResult {
    std::string previous;
    std::string commit;
    bool changed = false;   // false: already at the source's commit, nothing deployed
    image::PullStats pull;  // bytes received, and whether a static delta carried them
};

// Pulls (GPG-verified) and deploys the ref's commit as the new default; the previous default stays
// as the rollback; /etc is merged three-way; grub.cfg is regenerated.
UpgradeResult os_upgrade(const UpgradeOptions& options, ProgressSink& progress);

// Makes the rollback deployment the default and regenerates grub.cfg. Returns the new default commit.
std::string os_rollback(const std::filesystem::path& sysroot);

}  // namespace stormnode::installer
