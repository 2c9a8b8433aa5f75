// stormnode-test-rootfs [VARIANT]: builds (once) and unpacks the cached test rootfs (or its variant,
// tests/data/rootfs/variants/VARIANT); prints where it is. The ctest fixtures integration.rootfs and
// integration.rootfs_<variant> run it so the container tests share one build.
#include <stormnode/common/error.hpp>
#include <stormnode/test/nspawn_container.hpp>
#include <stormnode/test/rootfs_cache.hpp>

#include <cstdio>

int main(int argc, char** argv) {
    if (const auto reason = stormnode::test::container_tier_unavailable()) {
        std::fprintf(stderr, "skipped: %s\n", reason->c_str());
        return 77;
    }
    try {
        const auto rootfs = stormnode::test::test_rootfs_variant(argc > 1 ? argv[1] : "");
        std::printf(
            "rootfs %s (key %s): %s in %lld ms, unpacked in %lld ms\n",
            rootfs.tree.c_str(),
            rootfs.key.c_str(),
            rootfs.built ? "built" : "cached",
            static_cast<long long>(rootfs.build_time.count()),
            static_cast<long long>(rootfs.unpack_time.count()));
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "stormnode-test-rootfs: %s\n", stormnode::describe(e).c_str());
        return 1;
    }
}
