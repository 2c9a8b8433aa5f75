#include "fs_util.hpp"

#include <stormnode/common/error.hpp>
#include <stormnode/common/temp_dir.hpp>

#include <cerrno>

namespace stormnode::firstboot::detail {

std::filesystem::path under(const std::filesystem::path& root, const std::filesystem::path& node_path) {
    return root / node_path.relative_path();
}

void make_dirs(const std::filesystem::path& dir) {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) {
        throw Error(Errc::io, "creating " + dir.string() + ": " + ec.message(), ec);
    }
}

bool present(const std::filesystem::path& path) {
    std::error_code ec;
    return std::filesystem::exists(std::filesystem::symlink_status(path, ec));
}

bool dir_is_empty(const std::filesystem::path& dir) {
    std::error_code ec;
    if (!std::filesystem::is_directory(dir, ec)) {
        return true;
    }
    return std::filesystem::directory_iterator(dir, ec) == std::filesystem::directory_iterator();
}

std::optional<std::string> read_if_exists(const std::filesystem::path& path) {
    if (!present(path)) {
        return std::nullopt;
    }
    return read_file(path);
}

std::string to_base64(const std::vector<unsigned char>& bytes, bool url_safe) {
    const std::string_view alphabet =
        url_safe ? "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
                 : "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string text;
    std::size_t i = 0;
    for (; i + 2 < bytes.size(); i += 3) {
        const unsigned v = (unsigned{bytes[i]} << 16U) | (unsigned{bytes[i + 1]} << 8U) | bytes[i + 2];
        text += alphabet[(v >> 18U) & 63U];
        text += alphabet[(v >> 12U) & 63U];
        text += alphabet[(v >> 6U) & 63U];
        text += alphabet[v & 63U];
    }
    if (const std::size_t rest = bytes.size() - i; rest > 0) {
        const unsigned v = (unsigned{bytes[i]} << 16U) | (rest == 2 ? unsigned{bytes[i + 1]} << 8U : 0U);
        text += alphabet[(v >> 18U) & 63U];
        text += alphabet[(v >> 12U) & 63U];
        text += rest == 2 ? alphabet[(v >> 6U) & 63U] : '=';
        text += '=';
    }
    return text;
}

std::string random_chars(std::size_t n, std::string_view alphabet) {
    // Rejection sampling keeps every character equally likely.
    const std::size_t limit = 256 - (256 % alphabet.size());
    std::string text;
    while (text.size() < n) {
        for (const unsigned char b : random_bytes(n)) {
            if (b < limit && text.size() < n) {
                text += alphabet[b % alphabet.size()];
            }
        }
    }
    return text;
}

std::string random_uuid() {
    auto bytes = random_bytes(16);
    bytes[6] = static_cast<unsigned char>((bytes[6] & 0x0FU) | 0x40U);  // version 4
    bytes[8] = static_cast<unsigned char>((bytes[8] & 0x3FU) | 0x80U);  // RFC 4122 variant
    const std::string hex = to_hex(bytes);
    return hex.substr(0, 8) + "-" + hex.substr(8, 4) + "-" + hex.substr(12, 4) + "-" + hex.substr(16, 4) +
           "-" + hex.substr(20);
}

unsigned parse_mode(const std::string& octal, const std::string& what) {
    try {
        std::size_t used = 0;
        const unsigned long mode = std::stoul(octal, &used, 8);
        if (used == octal.size() && mode <= 07777) {
            return static_cast<unsigned>(mode);
        }
    } catch (const std::exception&) {
    }
    throw Error(Errc::invalid_input, what + ": mode '" + octal + "' is not octal");
}

}  // namespace stormnode::firstboot::detail
