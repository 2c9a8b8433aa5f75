// Small file and randomness helpers shared by the generators and run_firstboot.
#pragma once

#include <stormnode/common/random.hpp>

#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace stormnode::firstboot::detail {

// root + an absolute node path ("/etc/hostname") -> "<root>/etc/hostname".
std::filesystem::path under(const std::filesystem::path& root, const std::filesystem::path& node_path);

// mkdir -p with mode 0755 for what it creates; Error(io) on failure.
void make_dirs(const std::filesystem::path& dir);
bool present(const std::filesystem::path& path);      // anything there, even a dangling link
bool dir_is_empty(const std::filesystem::path& dir);  // true when missing too
std::optional<std::string> read_if_exists(const std::filesystem::path& path);

// Kernel randomness (getrandom), and encodings of it.
using stormnode::random_bytes;
using stormnode::to_hex;
std::string to_base64(const std::vector<unsigned char>& bytes, bool url_safe = false);
std::string random_chars(std::size_t n, std::string_view alphabet);  // uniform over the alphabet
std::string random_uuid();                                           // version 4, "8-4-4-4-12"

unsigned parse_mode(const std::string& octal, const std::string& what);

}  // namespace stormnode::firstboot::detail
