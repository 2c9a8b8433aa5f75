#include "stormnode/image/bootstrap_progress.hpp"

#include <charconv>
#include <cmath>

namespace stormnode::image {
namespace {

constexpr std::size_t kTailLines = 40;

bool starts_with(std::string_view text, std::string_view prefix) {
    return text.substr(0, prefix.size()) == prefix;
}

bool contains(std::string_view text, std::string_view part) {
    return text.find(part) != std::string_view::npos;
}

}  // namespace

std::optional<std::uint64_t> apt_get_line_bytes(std::string_view text) {
    if (!starts_with(text, "Get:") || text.empty() || text.back() != ']') {
        return std::nullopt;
    }
    const auto open = text.rfind('[');
    if (open == std::string_view::npos) {
        return std::nullopt;
    }
    const auto inside = text.substr(open + 1, text.size() - open - 2);  // "2755 kB"
    const auto space = inside.find(' ');
    if (space == std::string_view::npos) {
        return std::nullopt;
    }
    double number = 0;
    const auto number_text = inside.substr(0, space);
    const auto [end, ec] =
        std::from_chars(number_text.data(), number_text.data() + number_text.size(), number);
    if (ec != std::errc() || end != number_text.data() + number_text.size()) {
        return std::nullopt;
    }
    const auto unit = inside.substr(space + 1);
    double scale = 0;  // apt's SizeToStr uses powers of 1000
    if (unit == "B") {
        scale = 1;
    } else if (unit == "kB") {
        scale = 1e3;
    } else if (unit == "MB") {
        scale = 1e6;
    } else if (unit == "GB") {
        scale = 1e9;
    } else {
        return std::nullopt;
    }
    return static_cast<std::uint64_t>(std::llround(number * scale));
}

void BootstrapProgress::enter(std::string_view phase, std::string_view unit) {
    if (phase_ != phase) {
        phase_ = phase;
        sink_.phase(phase, 0, unit);
    }
}

void BootstrapProgress::line(std::string_view text) {
    tail_.emplace_back(text);
    if (tail_.size() > kTailLines) {
        tail_.pop_front();
    }
    if (starts_with(text, "I: ")) {
        const auto info = text.substr(3);
        if (starts_with(info, "downloading packages")) {
            enter("download", "bytes");
        } else if (starts_with(info, "extracting archives") || starts_with(info, "installing essential")) {
            enter("install", "packages");
        } else if (starts_with(info, "running --customize-hook") && contains(info, "initramfs")) {
            enter("initramfs", "modules");
            sink_.message("generating the initramfs with dracut");
        } else if (starts_with(info, "running --customize-hook")) {
            enter("customize", "hooks");
            sink_.advance(++hooks_);
        } else if (starts_with(info, "creating tarball")) {
            enter("tarball", "bytes");
        }
        return;
    }
    // apt-get update's Get: lines (the indexes) come before the download phase and are not packages.
    if (const auto bytes = apt_get_line_bytes(text); bytes && phase_ == "download") {
        ++downloaded_packages_;
        downloaded_bytes_ += *bytes;
        sink_.advance(downloaded_bytes_);
        return;
    }
    if (starts_with(text, "Setting up ")) {
        ++packages_set_up_;
        if (phase_ == "install") {
            sink_.advance(packages_set_up_);
        }
        return;
    }
    if (starts_with(text, "dracut: *** Including module: ")) {
        ++initramfs_modules_;
        if (phase_ == "initramfs") {
            sink_.advance(initramfs_modules_);
        }
        return;
    }
    if (starts_with(text, "dracut: *** Creating initramfs image file") ||
        (starts_with(text, "dracut: *** Creating image file"))) {
        sink_.message(text.substr(8));
    }
}

std::string BootstrapProgress::tail() const {
    std::string text;
    for (const auto& l : tail_) {
        text += l;
        text += '\n';
    }
    return text;
}

}  // namespace stormnode::image
