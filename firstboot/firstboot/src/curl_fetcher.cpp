#include "stormnode/firstboot/curl_fetcher.hpp"

#include <stormnode/common/c_handle.hpp>
#include <stormnode/common/error.hpp>

#include <curl/curl.h>

namespace stormnode::firstboot {
namespace {

using CurlEasy = CHandle<CURL, curl_easy_cleanup>;

constexpr std::size_t kMaxInventory = 16U << 20U;

struct Sink {
    std::string body;
    bool too_big = false;
};

std::size_t collect(char* data, std::size_t size, std::size_t count, void* user) {
    auto* sink = static_cast<Sink*>(user);
    const std::size_t n = size * count;
    if (sink->body.size() + n > kMaxInventory) {
        sink->too_big = true;
        return 0;  // makes curl stop with CURLE_WRITE_ERROR
    }
    sink->body.append(data, n);
    return n;
}

void check_curl(CURLcode rc, const std::string& what) {
    if (rc != CURLE_OK) {
        throw Error(Errc::io, what + ": " + curl_easy_strerror(rc));
    }
}

}  // namespace

std::string CurlFetcher::fetch(const std::string& url) {
    static const CURLcode init = curl_global_init(CURL_GLOBAL_DEFAULT);
    check_curl(init, "initialising libcurl");
    CurlEasy curl(curl_easy_init());
    if (!curl) {
        throw Error(Errc::io, "fetching " + url + ": cannot create a libcurl handle");
    }
    Sink sink;
    const std::string what = "fetching " + url;
    check_curl(curl_easy_setopt(curl.get(), CURLOPT_URL, url.c_str()), what);
    check_curl(curl_easy_setopt(curl.get(), CURLOPT_PROTOCOLS_STR, "http,https,file"), what);
    check_curl(curl_easy_setopt(curl.get(), CURLOPT_FOLLOWLOCATION, 1L), what);
    check_curl(curl_easy_setopt(curl.get(), CURLOPT_NOSIGNAL, 1L), what);
    check_curl(curl_easy_setopt(curl.get(), CURLOPT_TIMEOUT, static_cast<long>(timeout_.count())), what);
    check_curl(curl_easy_setopt(curl.get(), CURLOPT_WRITEFUNCTION, &collect), what);
    check_curl(curl_easy_setopt(curl.get(), CURLOPT_WRITEDATA, &sink), what);
    const CURLcode rc = curl_easy_perform(curl.get());
    if (sink.too_big) {
        throw Error(Errc::io, what + ": larger than 16 MiB");
    }
    check_curl(rc, what);
    long status = 0;
    check_curl(curl_easy_getinfo(curl.get(), CURLINFO_RESPONSE_CODE, &status), what);
    if (status >= 400) {
        throw Error(Errc::io, what + ": HTTP status " + std::to_string(status));
    }
    return sink.body;
}

}  // namespace stormnode::firstboot
