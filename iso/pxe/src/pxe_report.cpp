#include "stormnode/pxe/pxe_report.hpp"

#include <stormnode/catalog/node_file.hpp>
#include <stormnode/common/c_handle.hpp>
#include <stormnode/common/error.hpp>
#include <stormnode/common/kernel_cmdline.hpp>
#include <stormnode/common/temp_dir.hpp>

#include <curl/curl.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace stormnode::iso {
namespace {

using CurlEasy = CHandle<CURL, curl_easy_cleanup>;

std::string escaped(CURL* curl, const std::string& text) {
    char* e = curl_easy_escape(curl, text.c_str(), static_cast<int>(text.size()));
    std::string out = e != nullptr ? e : "";
    curl_free(e);
    return out;
}

std::string trimmed_file(const std::filesystem::path& path) {
    std::ifstream in(path);
    std::string text;
    std::getline(in, text);
    return text;
}

}  // namespace

std::optional<std::string> report_url_from_cmdline(std::string_view cmdline) {
    auto url = KernelCmdline(cmdline).value("stormnode.report");  // the last one wins
    if (url && url->empty()) {
        return std::nullopt;
    }
    return url;
}

std::string primary_mac() {
    namespace fs = std::filesystem;
    std::ifstream routes("/proc/net/route");
    std::string line;
    std::getline(routes, line);  // header
    while (std::getline(routes, line)) {
        std::istringstream fields(line);
        std::string interface;
        std::string destination;
        fields >> interface >> destination;
        if (destination == "00000000") {
            const auto mac = trimmed_file(fs::path("/sys/class/net") / interface / "address");
            if (roles::valid_mac(mac)) {
                return mac;
            }
        }
    }
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator("/sys/class/net", ec)) {
        if (trimmed_file(entry.path() / "type") != "1" || trimmed_file(entry.path() / "operstate") != "up") {
            continue;  // ARPHRD_ETHER links that are up
        }
        const auto mac = trimmed_file(entry.path() / "address");
        if (roles::valid_mac(mac)) {
            return mac;
        }
    }
    throw Error(Errc::not_found, "no network link with a MAC address is up");
}

void send_report(
    const std::string& url, const std::string& mac, const std::string& state, const std::string& detail) {
    CurlEasy curl(curl_easy_init());
    if (!curl) {
        throw Error(Errc::io, "curl_easy_init failed");
    }
    const std::string body = "mac=" + escaped(curl.get(), mac) + "&state=" + escaped(curl.get(), state) +
                             "&detail=" + escaped(curl.get(), detail);
    curl_easy_setopt(curl.get(), CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl.get(), CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl.get(), CURLOPT_POSTFIELDS, body.c_str());
    curl_easy_setopt(curl.get(), CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(curl.get(), CURLOPT_FAILONERROR, 1L);
    curl_easy_setopt(
        curl.get(), CURLOPT_WRITEFUNCTION, +[](char*, size_t size, size_t n, void*) { return size * n; });
    const CURLcode rc = curl_easy_perform(curl.get());
    if (rc != CURLE_OK) {
        throw Error(Errc::io, "reporting '" + state + "' to " + url + ": " + curl_easy_strerror(rc));
    }
}

}  // namespace stormnode::iso
