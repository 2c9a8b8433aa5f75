// Where the system tests find their inputs: the build (STORMNODE_BINARY_DIR), the sources
// (STORMNODE_SOURCE_DIR) and the image/ISO made once per run (STORMNODE_SYSTEM_ARTIFACTS, default
// <build>/system-artifacts, so a run can point at artifacts made elsewhere).
#pragma once

#include <stormnode/common/temp_dir.hpp>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace stormnode::test {

inline std::string env_or(const char* name, const std::string& fallback) {
    const char* value = std::getenv(name);  // NOLINT(concurrency-mt-unsafe)
    return value != nullptr ? std::string(value) : fallback;
}

inline std::filesystem::path binary_dir() {
    return env_or("STORMNODE_BINARY_DIR", ".");
}

inline std::filesystem::path source_dir() {
    return env_or("STORMNODE_SOURCE_DIR", ".");
}

inline std::filesystem::path artifacts() {
    return env_or("STORMNODE_SYSTEM_ARTIFACTS", (binary_dir() / "system-artifacts").string());
}

inline std::filesystem::path stormctl() {
    return binary_dir() / "bin" / "stormctl";
}

inline double seconds(std::chrono::steady_clock::duration d) {
    return std::chrono::duration<double>(d).count();
}

// A test's own directory under the artifacts (vm/NAME), emptied first: its disks, logs and serial output.
inline std::filesystem::path work_dir(const std::string& name) {
    const auto dir = artifacts() / "vm" / name;
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    return dir;
}

// Removes the disk images under dir once a test no longer needs them: a run has several VMs' worth of
// multi-GB disks otherwise, more than a CI machine's free space. Logs and serial output stay.
inline void drop_disk_images(const std::filesystem::path& dir) {
    std::vector<std::filesystem::path> images;
    for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
        const auto ext = e.path().extension();
        if (e.is_regular_file() && (ext == ".qcow2" || ext == ".raw" || ext == ".img")) {
            images.push_back(e.path());
        }
    }
    for (const auto& image : images) {
        std::filesystem::remove(image);
    }
}

// image.env of the image fixture (tests/system/build_image.sh): REF, COMMIT, FPR.
inline std::map<std::string, std::string> image_env() {
    std::map<std::string, std::string> values;
    std::istringstream in(read_file(artifacts() / "image.env"));
    std::string line;
    while (std::getline(in, line)) {
        if (const auto eq = line.find('='); eq != std::string::npos) {
            values[line.substr(0, eq)] = line.substr(eq + 1);
        }
    }
    return values;
}

}  // namespace stormnode::test
