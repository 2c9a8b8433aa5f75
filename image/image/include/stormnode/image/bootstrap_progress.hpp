// mmdebstrap's output (run with --verbose: apt's downloads, dpkg's "Setting up", the hooks' own output
// such as dracut's) read line by line as it comes and reported as progress phases with amounts.
#pragma once

#include <stormnode/common/progress.hpp>

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>

namespace stormnode::image {

class BootstrapProgress {
public:
    explicit BootstrapProgress(ProgressSink& sink) : sink_(sink) {}

    // One line of mmdebstrap's stdout or stderr, without its newline.
    void line(std::string_view text);

    // The last lines seen, for an error message when mmdebstrap fails.
    [[nodiscard]] std::string tail() const;

    [[nodiscard]] std::uint64_t downloaded_packages() const noexcept { return downloaded_packages_; }
    [[nodiscard]] std::uint64_t downloaded_bytes() const noexcept { return downloaded_bytes_; }
    [[nodiscard]] std::uint64_t packages_set_up() const noexcept { return packages_set_up_; }
    [[nodiscard]] std::uint64_t initramfs_modules() const noexcept { return initramfs_modules_; }

private:
    void enter(std::string_view phase, std::string_view unit);

    ProgressSink& sink_;
    std::string phase_;
    std::deque<std::string> tail_;
    std::uint64_t downloaded_packages_ = 0;
    std::uint64_t downloaded_bytes_ = 0;
    std::uint64_t packages_set_up_ = 0;
    std::uint64_t initramfs_modules_ = 0;
    std::uint64_t hooks_ = 0;
};

// apt's "Get:1 http://... amd64 libc6 amd64 2.36-9 [2755 kB]" → 2755000; nullopt for any other line.
std::optional<std::uint64_t> apt_get_line_bytes(std::string_view text);

}  // namespace stormnode::image
