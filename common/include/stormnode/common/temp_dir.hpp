#pragma once

#include <filesystem>
#include <string>

namespace stormnode {

// A directory removed with its content when this goes out of scope.
class TempDir {
public:
    explicit TempDir(const std::string& prefix = "stormnode");
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    TempDir(TempDir&&) = delete;
    TempDir& operator=(TempDir&&) = delete;
    ~TempDir();

    [[nodiscard]] const std::filesystem::path& path() const noexcept { return path_; }

private:
    std::filesystem::path path_;
};

// Writes a file atomically: a temporary file beside it, fsync, rename. Never half-written.
void write_file_atomic(const std::filesystem::path& path, std::string_view content, unsigned mode = 0644);
std::string read_file(const std::filesystem::path& path);

}  // namespace stormnode
