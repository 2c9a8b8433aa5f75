// libostree sysroot work shared by install, upgrade and rollback: open, pull with GPG verification
// through a transient remote, deploy, and the boot config written from the BLS entries.
#pragma once

#include <stormnode/common/progress.hpp>
#include <stormnode/image/ostree_handles.hpp>
#include <stormnode/image/pull.hpp>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace stormnode::installer {

using Sysroot = CHandle<OstreeSysroot, image::gobject_unref>;
using Deployment = CHandle<OstreeDeployment, image::gobject_unref>;
using KeyFilePtr = CHandle<GKeyFile, g_key_file_unref>;

inline constexpr const char* kOsName = "stormnode";
inline constexpr const char* kRemote = "stormnode";

// Opens the sysroot at root and loads it; with initialize, makes the ostree directories, the repo
// (bootloader=none: we write grub.cfg) and the stormnode stateroot first.
Sysroot open_sysroot(const std::filesystem::path& root, bool initialize);
// The sysroot's repo (owned by the sysroot; do not unref).
OstreeRepo* sysroot_repo(OstreeSysroot* sysroot);

// A source repo: "file:///dir" or an http(s) URL.
std::string source_url(const std::string& dir_or_url);

// Pulls ref from url into repo with GPG verification against the armored key, through a transient
// remote that is removed afterwards; the ref is then stored as "stormnode:ref" (what the deployment's
// origin names and later upgrades follow). An unsigned commit or one signed by another key is refused
// with Error(refused).
struct Pulled {
    std::string commit;
    image::PullStats stats;  // what came over the network, and whether a static delta did
};
Pulled pull_verified(
    OstreeRepo* repo,
    const std::string& url,
    const std::string& ref,
    const std::string& public_key,
    ProgressSink& progress);

// Pulls ref from the configured remote "stormnode" (a booted node; gpg-verify is the remote's).
Pulled pull_from_remote(OstreeRepo* repo, const std::string& ref, ProgressSink& progress);

// Deploys commit as the new default; with merge (upgrade), /etc is merged three-way and the kernel
// arguments are kept, and merge stays as the rollback. kargs: the new deployment's arguments (install).
Deployment deploy_commit(
    OstreeSysroot* sysroot,
    const std::string& ref,
    const std::string& commit,
    OstreeDeployment* merge,
    const std::optional<std::vector<std::string>>& kargs);

// The deployment's directory under root.
std::filesystem::path deployment_dir(OstreeSysroot* sysroot, OstreeDeployment* deployment);

// The "version" of a commit in repo (empty when unknown).
std::string commit_version(OstreeRepo* repo, const std::string& commit);

}  // namespace stormnode::installer
