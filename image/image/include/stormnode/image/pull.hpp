// The client side of the image repo: pulling a ref with GPG verification, over HTTP or from a local
// path, and what the pull cost (for `stormctl os upgrade` and the delta benchmark).
#pragma once

#include <stormnode/common/progress.hpp>
#include <stormnode/image/ostree_handles.hpp>

#include <cstdint>
#include <string>

namespace stormnode::image {

struct PullStats {
    std::uint64_t bytes = 0;       // received, as libostree's fetcher counted them (0 for a local pull)
    unsigned delta_parts = 0;      // static delta parts fetched; 0: no static delta was used
    unsigned delta_fallbacks = 0;  // objects the delta left out (too big for it), fetched one by one
    unsigned objects = 0;          // metadata and content objects fetched one by one
};

// Pulls ref from remote into repo with gpg-verify on, whatever the remote's own setting. libostree
// takes a static delta when the remote has one from a commit repo already holds (listed in the
// remote's summary, or from the commit the remote's ref had here before). An unsigned commit or one
// signed by a key the remote does not trust is refused with Error(refused); any other failure (a
// corrupt delta part, an unreachable server) throws Error(ostree).
PullStats pull_ref(
    OstreeRepo* repo, const std::string& remote, const std::string& ref, ProgressSink& progress);

}  // namespace stormnode::image
