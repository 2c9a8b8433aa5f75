// delta-pull SERVER_REPO REF CLIENT_REPO PUBLIC_KEY
// An update over HTTP measured on the server side: serves SERVER_REPO with pxe serve's HTTP server on
// 127.0.0.1, pulls REF into CLIENT_REPO (which holds the ref's parent commit) with GPG verification the
// way stormctl os upgrade does, and prints the bytes served against the static delta parent -> REF on
// disk. Exit 1 when the pull fails or no static delta was used. delta_bench.sh prepares the repos.
#include <stormnode/common/error.hpp>
#include <stormnode/common/temp_dir.hpp>
#include <stormnode/image/pull.hpp>
#include <stormnode/image/repo.hpp>
#include <stormnode/pxe/pxe_http.hpp>

#include <chrono>
#include <cstdio>
#include <mutex>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;
namespace image = stormnode::image;
namespace iso = stormnode::iso;

int run(
    const fs::path& server_repo, const std::string& ref, const fs::path& client_repo, const fs::path& key) {
    auto served = image::open_repo(server_repo);
    const auto to = image::read_commit_info(served.get(), ref);
    const auto delta = image::static_delta_size(served.get(), to.parent, to.checksum);
    if (!delta) {
        std::fprintf(
            stderr,
            "delta-pull: %s has no static delta %s -> %s\n",
            server_repo.c_str(),
            to.parent.c_str(),
            to.checksum.c_str());
        return 1;
    }

    const stormnode::TempDir artifacts("delta-bench");
    iso::ServeOptions options;
    options.inventory.network.server = "127.0.0.1";
    options.artifacts = artifacts.path();
    options.repo = server_repo;
    options.http_port = 0;
    iso::NodeTable table(options.inventory);
    std::mutex mutex;
    std::vector<iso::HttpTransfer> transfers;
    iso::PxeHttpServer http(
        options,
        table,
        [] {},
        [&](const iso::HttpTransfer& t) {
            const std::lock_guard lock(mutex);
            transfers.push_back(t);
        });
    const std::string url = "http://127.0.0.1:" + std::to_string(http.start()) + "/repo";

    auto client = image::open_repo(client_repo);
    image::add_verifying_remote(client.get(), "stormnode", url, stormnode::read_file(key));
    stormnode::NullProgress progress;
    const auto start = std::chrono::steady_clock::now();
    const auto stats = image::pull_ref(client.get(), "stormnode", ref, progress);
    const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
    http.stop();
    const auto signature = image::verify_commit(client.get(), to.checksum, "stormnode");

    std::uint64_t bytes = 0;
    std::uint64_t object_bytes = 0;
    std::size_t objects = 0;
    for (const auto& t : transfers) {
        bytes += t.bytes;
        if (t.path.starts_with("/repo/objects/") && !t.path.ends_with(".commitmeta") && t.status == 200) {
            ++objects;
            object_bytes += t.bytes;
        }
    }
    if (transfers.size() <= 40) {  // a delta's few requests; an object-by-object pull is a list too long
        for (const auto& t : transfers) {
            std::printf("  %d %s %llu\n", t.status, t.path.c_str(), static_cast<unsigned long long>(t.bytes));
        }
    }
    std::printf(
        "update %s -> %s (%s)\n",
        to.parent.substr(0, 12).c_str(),
        to.checksum.substr(0, 12).c_str(),
        ref.c_str());
    std::printf("static delta on disk:  %llu bytes\n", static_cast<unsigned long long>(*delta));
    std::printf(
        "HTTP bytes served:     %llu in %zu requests (%.3f x the delta), %.2f s\n",
        static_cast<unsigned long long>(bytes),
        transfers.size(),
        static_cast<double>(bytes) / static_cast<double>(*delta),
        took.count());
    std::printf(
        "objects one by one:    %zu, %llu bytes (the signature aside; libostree 2022.7 may fetch some of the "
        "delta's objects twice)\n",
        objects,
        static_cast<unsigned long long>(object_bytes));
    std::printf(
        "client:                %u delta parts, %u fallback objects, %llu bytes; signature %s (%s)\n",
        stats.delta_parts,
        stats.delta_fallbacks,
        static_cast<unsigned long long>(stats.bytes),
        std::string(image::to_string(signature.state)).c_str(),
        signature.detail.c_str());
    return stats.delta_parts > 0 && signature.state == image::SignatureState::good ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 5) {
        std::fprintf(stderr, "usage: delta-pull SERVER_REPO REF CLIENT_REPO PUBLIC_KEY\n");
        return 2;
    }
    try {
        return run(argv[1], argv[2], argv[3], argv[4]);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "delta-pull: %s\n", stormnode::describe(e).c_str());
        return 1;
    }
}
