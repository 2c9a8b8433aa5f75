// Catch2 main for the container tier: exits 77 (skipped, with the reason) only when this machine cannot
// boot a systemd in systemd-nspawn at all.
#define CATCH_CONFIG_RUNNER
#include <stormnode/test/nspawn_container.hpp>

#include <catch2/catch.hpp>

#include <cstdio>

int main(int argc, char* argv[]) {
    if (const auto reason = stormnode::test::container_tier_unavailable()) {
        std::fprintf(stderr, "skipped: %s\n", reason->c_str());
        return 77;
    }
    return Catch::Session().run(argc, argv);
}
