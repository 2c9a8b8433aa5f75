// The test rootfs: a Debian bookworm tree built once with mmdebstrap and cached by the hash of its recipe
// (package list + hooks), so repeated test runs reuse it. Containers boot it with --volatile=overlay,
// which keeps the cached tree pristine.
//
// Hook for the image composer: when STORMNODE_TEST_ROOTFS names a directory (a checkout of the node
// image commit), that tree is booted instead and nothing is built. Once `stormctl image build` can
// produce a checkout, RootfsCache::ensure() is the one place to switch over to it.
#pragma once

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

namespace stormnode::test {

struct RootfsRecipe {
    std::string suite = "bookworm";
    std::string variant = "minbase";
    std::vector<std::string> packages;
    std::filesystem::path hook_dir;  // mmdebstrap --hook-dir (customize*.sh ...); empty: none
    std::vector<std::filesystem::path> extra_hook_dirs;  // a variant's hooks, run after hook_dir's
};

// Reads packages.txt (one name a line, '#' comments) and hooks/ from a directory such as
// tests/data/rootfs. A variant (e.g. "cluster") adds variants/<variant>/packages.txt and its hooks/: the
// base tree plus a role's real packages, cached under its own key.
RootfsRecipe load_rootfs_recipe(const std::filesystem::path& dir, const std::string& variant = {});

struct Rootfs {
    std::filesystem::path tree;     // unpacked directory to boot
    std::filesystem::path tarball;  // cached tarball (empty when STORMNODE_TEST_ROOTFS was used)
    std::string key;                // recipe hash
    bool built = false;             // this call ran mmdebstrap
    std::chrono::milliseconds build_time{0};
    std::chrono::milliseconds unpack_time{0};
};

class RootfsCache {
public:
    explicit RootfsCache(std::filesystem::path cache_dir = "/var/cache/stormnode/rootfs");

    // The recipe's hash: the cache key (16 hex digits).
    [[nodiscard]] static std::string key(const RootfsRecipe& recipe);

    // Builds the tarball and unpacks it unless already cached. Safe against concurrent callers (a lock
    // file) and crashes (everything is built under a temporary name and renamed when complete).
    Rootfs ensure(const RootfsRecipe& recipe);

private:
    std::filesystem::path dir_;
};

// The recipe in tests/data/rootfs of this source tree (STORMNODE_SOURCE_DIR or the compiled-in path),
// ensured in the default cache, or STORMNODE_TEST_ROOTFS when set.
Rootfs default_test_rootfs();
// The same for a variant of that recipe (see load_rootfs_recipe); STORMNODE_TEST_ROOTFS overrides it too.
Rootfs test_rootfs_variant(const std::string& variant);

}  // namespace stormnode::test
