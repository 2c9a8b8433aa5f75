#include "stormnode/common/temp_dir.hpp"

#include <stormnode/common/c_handle.hpp>
#include <stormnode/common/error.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <vector>

namespace stormnode {

TempDir::TempDir(const std::string& prefix) {
    auto pattern = (std::filesystem::temp_directory_path() / (prefix + ".XXXXXX")).string();
    std::vector<char> buffer(pattern.begin(), pattern.end());
    buffer.push_back('\0');
    if (::mkdtemp(buffer.data()) == nullptr) {
        check_errno(
            -1, "creating a temporary directory in " + std::filesystem::temp_directory_path().string());
    }
    path_ = buffer.data();
}

TempDir::~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
}

void write_file_atomic(const std::filesystem::path& path, std::string_view content, unsigned mode) {
    const auto tmp = path.parent_path() / ("." + path.filename().string() + ".tmp");
    {
        UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode));
        check_errno(fd.get(), "creating " + tmp.string());
        check_errno(::fchmod(fd.get(), mode), "setting the mode of " + tmp.string());
        std::size_t written = 0;
        while (written < content.size()) {
            const ssize_t n = ::write(fd.get(), content.data() + written, content.size() - written);
            if (n < 0 && errno == EINTR) {
                continue;
            }
            if (n < 0) {
                const int e = errno;
                ::unlink(tmp.c_str());
                errno = e;
                check_errno(-1, "writing " + tmp.string());
            }
            written += static_cast<std::size_t>(n);
        }
        check_errno(::fsync(fd.get()), "syncing " + tmp.string());
    }
    check_errno(::rename(tmp.c_str(), path.c_str()), "renaming " + tmp.string() + " to " + path.string());
}

std::string read_file(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        check_errno(-1, "reading " + path.string());
    }
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

}  // namespace stormnode
