// `stormctl image build`: manifest -> package set -> mmdebstrap rootfs tar -> signed OSTree commit.
#pragma once

#include <stormnode/catalog/catalog.hpp>
#include <stormnode/common/progress.hpp>
#include <stormnode/image/manifest.hpp>
#include <stormnode/image/repo.hpp>

#include <filesystem>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace stormnode::image {

// The names a manifest may list: the catalog's roles and its common layer (not mixins).
std::set<std::string> manifest_role_names(const roles::Catalog& catalog);

// Every package the image installs: base, kernel, the roles' packages (all variants, mixins and the
// common layer folded in) and the extra ones; sorted, each once.
std::vector<std::string> image_packages(const Manifest& manifest, const roles::Catalog& catalog);

// Per-node paths the roles declare (node_state): removed from the image, generated at first boot.
std::vector<std::string> node_state_paths(const Manifest& manifest, const roles::Catalog& catalog);

struct BootstrapPlan {
    std::string suite;
    std::optional<std::string> mirror;
    std::string architecture;  // Debian's: amd64
    std::vector<std::string> packages;
    std::vector<std::filesystem::path> debs;  // local .deb files (the stormnode package)
    std::filesystem::path hooks_dir;
    std::filesystem::path apt_cache;        // downloaded .debs kept here between builds
    std::filesystem::path node_state_list;  // file of paths for the scrub hook
    std::vector<std::string> dracut_modules;
    std::vector<std::string> path_exclude;  // dpkg path filters (the manifest's)
    std::vector<std::string> path_include;
    std::filesystem::path output;  // the rootfs tar
};

// The mmdebstrap command line (argv) for the plan; hooks are files in hooks_dir.
std::vector<std::string> mmdebstrap_argv(const BootstrapPlan& plan);

// A key for the cached rootfs: manifest, package set, local .debs and hooks.
std::string rootfs_cache_key(const Manifest& manifest, const BootstrapPlan& plan);

struct BuildOptions {
    std::filesystem::path manifest;
    std::filesystem::path repo;
    std::filesystem::path catalog_dir;
    std::optional<GpgKey> gpg;  // none: the build key in build_key_dir
    std::filesystem::path build_key_dir = "/var/lib/stormnode-build/gpg";
    std::filesystem::path cache_dir = "/var/cache/stormnode";
    std::filesystem::path hooks_dir;
    std::vector<std::filesystem::path> debs;
    std::optional<std::filesystem::path> rootfs_tar;  // import this tar instead of bootstrapping
    bool reuse_rootfs = true;                         // use a cached rootfs tar with the same key
    std::string remote_url = "http://stormnode-repo.invalid/ostree";
};

struct BuildResult {
    CommitResult commit;
    std::filesystem::path rootfs_tar;
    bool rootfs_cached = false;
    std::vector<std::string> packages;
    std::string public_key;  // armored, as shipped in the image
};

BuildResult build_image(const BuildOptions& options, ProgressSink& progress);

// The default hooks directory: $STORMNODE_HOOKS_DIR, else the installed one, else the source tree's.
std::filesystem::path default_hooks_dir();

inline constexpr const char* kRemoteName = "stormnode";
inline constexpr const char* kPublicKeyPath = "usr/share/stormnode/keys/stormnode.asc";

}  // namespace stormnode::image
