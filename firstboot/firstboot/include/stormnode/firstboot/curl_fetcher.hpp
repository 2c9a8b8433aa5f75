// The inventory over HTTP(S) (or file://) with libcurl.
#pragma once

#include "stormnode/firstboot/role_source.hpp"

#include <chrono>

namespace stormnode::firstboot {

class CurlFetcher final : public Fetcher {
public:
    explicit CurlFetcher(std::chrono::seconds timeout = std::chrono::seconds(60)) : timeout_(timeout) {}
    // HTTP status >= 400, a timeout or more than 16 MiB are errors.
    std::string fetch(const std::string& url) override;

private:
    std::chrono::seconds timeout_;
};

}  // namespace stormnode::firstboot
