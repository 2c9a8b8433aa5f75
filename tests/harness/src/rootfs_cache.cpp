#include "stormnode/test/rootfs_cache.hpp"

#include <stormnode/common/c_handle.hpp>
#include <stormnode/common/error.hpp>
#include <stormnode/common/subprocess.hpp>
#include <stormnode/common/temp_dir.hpp>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <sstream>

namespace stormnode::test {
namespace fs = std::filesystem;
namespace {

// Bump when the way the tree is built changes (arguments below), so old caches are not reused.
constexpr const char* kRecipeVersion = "stormnode-test-rootfs/1 mmdebstrap --mode=root --format=tar";

std::string trim(const std::string& s) {
    const auto begin = s.find_first_not_of(" \t\r");
    if (begin == std::string::npos) {
        return {};
    }
    return s.substr(begin, s.find_last_not_of(" \t\r") - begin + 1);
}

// FNV-1a: a cache key, not a security boundary.
struct Fnv1a {
    std::uint64_t h = 14695981039346656037ULL;
    void add(std::string_view data) {
        for (const char c : data) {
            h ^= static_cast<unsigned char>(c);
            h *= 1099511628211ULL;
        }
        h ^= 0xff;  // separator, so ("ab","c") != ("a","bc")
        h *= 1099511628211ULL;
    }
    [[nodiscard]] std::string hex() const {
        static constexpr char kHex[] = "0123456789abcdef";
        std::string out(16, '0');
        for (int i = 0; i < 16; ++i) {
            out[static_cast<std::size_t>(15 - i)] = kHex[(h >> (4 * i)) & 0xf];
        }
        return out;
    }
};

std::vector<fs::path> hook_files(const fs::path& dir) {
    std::vector<fs::path> files;
    if (dir.empty()) {
        return files;
    }
    for (const auto& entry : fs::directory_iterator(dir)) {
        if (entry.is_regular_file()) {
            files.push_back(entry.path());
        }
    }
    std::sort(files.begin(), files.end());
    return files;
}

// Holds an exclusive flock for the cache directory while building.
class CacheLock {
public:
    explicit CacheLock(const fs::path& file) : fd_(::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644)) {
        check_errno(fd_.get(), "opening " + file.string());
        while (::flock(fd_.get(), LOCK_EX) < 0) {
            if (errno != EINTR) {
                check_errno(-1, "locking " + file.string());
            }
        }
    }

private:
    UniqueFd fd_;
};

std::chrono::milliseconds since(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
}

std::vector<std::string> read_package_list(const fs::path& file) {
    std::vector<std::string> packages;
    std::istringstream in(read_file(file));
    std::string line;
    while (std::getline(in, line)) {
        line = trim(line.substr(0, line.find('#')));
        if (!line.empty()) {
            packages.push_back(line);
        }
    }
    if (packages.empty()) {
        throw Error(Errc::invalid_input, file.string() + ": no packages listed");
    }
    return packages;
}

}  // namespace

RootfsRecipe load_rootfs_recipe(const fs::path& dir, const std::string& variant) {
    RootfsRecipe recipe;
    recipe.packages = read_package_list(dir / "packages.txt");
    if (fs::is_directory(dir / "hooks")) {
        recipe.hook_dir = dir / "hooks";
    }
    if (!variant.empty()) {
        const auto variant_dir = dir / "variants" / variant;
        const auto extra = read_package_list(variant_dir / "packages.txt");
        recipe.packages.insert(recipe.packages.end(), extra.begin(), extra.end());
        if (fs::is_directory(variant_dir / "hooks")) {
            recipe.extra_hook_dirs.push_back(variant_dir / "hooks");
        }
    }
    return recipe;
}

RootfsCache::RootfsCache(fs::path cache_dir) : dir_(std::move(cache_dir)) {}

std::string RootfsCache::key(const RootfsRecipe& recipe) {
    Fnv1a hash;
    hash.add(kRecipeVersion);
    hash.add(recipe.suite);
    hash.add(recipe.variant);
    auto packages = recipe.packages;
    std::sort(packages.begin(), packages.end());
    for (const auto& p : packages) {
        hash.add(p);
    }
    for (const auto& file : hook_files(recipe.hook_dir)) {
        hash.add(file.filename().string());
        hash.add(read_file(file));
    }
    // Only a variant has these: the base recipe's key stays what it was.
    for (const auto& dir : recipe.extra_hook_dirs) {
        for (const auto& file : hook_files(dir)) {
            hash.add(file.filename().string());
            hash.add(read_file(file));
        }
    }
    return hash.hex();
}

Rootfs RootfsCache::ensure(const RootfsRecipe& recipe) {
    Rootfs result;
    result.key = key(recipe);
    result.tarball = dir_ / (result.key + ".tar");
    result.tree = dir_ / result.key;
    fs::create_directories(dir_);
    // One lock per recipe: two different rootfs builds (the ctest fixtures) may run side by side.
    const CacheLock lock(dir_ / ("." + result.key + ".lock"));

    if (!fs::exists(result.tarball)) {
        const auto start = std::chrono::steady_clock::now();
        const auto partial = dir_ / ("." + result.key + ".tar.partial");
        fs::remove(partial);
        std::string include;
        for (const auto& p : recipe.packages) {
            include += include.empty() ? p : "," + p;
        }
        std::vector<std::string> argv{
            "mmdebstrap",
            "--mode=root",
            "--variant=" + recipe.variant,
            "--format=tar",
            "--include=" + include};
        if (!recipe.hook_dir.empty()) {
            argv.push_back("--hook-dir=" + recipe.hook_dir.string());
        }
        for (const auto& dir : recipe.extra_hook_dirs) {
            argv.push_back("--hook-dir=" + dir.string());
        }
        argv.push_back(recipe.suite);
        argv.push_back(partial.string());
        Command command{.argv = argv};
        command.timeout = std::chrono::minutes(20);
        try {
            run_checked(command);
        } catch (...) {
            fs::remove(partial);
            std::throw_with_nested(Error(Errc::io, "building the test rootfs " + result.tarball.string()));
        }
        fs::rename(partial, result.tarball);
        result.built = true;
        result.build_time = since(start);
    }
    if (!fs::exists(result.tree)) {
        const auto start = std::chrono::steady_clock::now();
        const auto partial = dir_ / ("." + result.key + ".partial");
        fs::remove_all(partial);
        fs::create_directories(partial);
        try {
            run_checked(Command{
                .argv = {
                    "tar",
                    "--numeric-owner",
                    "--xattrs",
                    "--xattrs-include=*",
                    "-xpf",
                    result.tarball.string(),
                    "-C",
                    partial.string()}});
        } catch (...) {
            fs::remove_all(partial);
            std::throw_with_nested(Error(Errc::io, "unpacking " + result.tarball.string()));
        }
        fs::rename(partial, result.tree);
        result.unpack_time = since(start);
    }
    return result;
}

Rootfs default_test_rootfs() {
    return test_rootfs_variant({});
}

Rootfs test_rootfs_variant(const std::string& variant) {
    if (const char* image = std::getenv("STORMNODE_TEST_ROOTFS");
        image != nullptr && *image != '\0') {  // NOLINT(concurrency-mt-unsafe)
        Rootfs result;
        result.tree = image;
        if (!fs::is_directory(result.tree / "usr/lib/systemd")) {
            throw Error(
                Errc::invalid_input,
                "STORMNODE_TEST_ROOTFS=" + result.tree.string() + " is not a systemd rootfs");
        }
        return result;
    }
    fs::path source = STORMNODE_HARNESS_SOURCE_DIR;
    if (const char* env = std::getenv("STORMNODE_SOURCE_DIR");
        env != nullptr && *env != '\0') {  // NOLINT(concurrency-mt-unsafe)
        source = env;
    }
    return RootfsCache().ensure(load_rootfs_recipe(source / "tests/data/rootfs", variant));
}

}  // namespace stormnode::test
