#include "stormnode/installer/answers.hpp"

#include <stormnode/common/error.hpp>
#include <stormnode/common/temp_dir.hpp>

#include <algorithm>
#include <array>
#include <cctype>
#include <limits>
#include <sstream>

namespace stormnode::installer {
namespace {

using yaml::value_of;

std::optional<std::vector<unsigned char>> decode_base64(std::string_view text) {
    static constexpr std::string_view kAlphabet =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    if (text.empty() || text.size() % 4 != 0) {
        return std::nullopt;
    }
    std::vector<unsigned char> bytes;
    unsigned buffer = 0;
    int bits = 0;
    std::size_t padding = 0;
    for (std::size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if (c == '=') {
            if (i + 2 < text.size()) {
                return std::nullopt;  // '=' only in the last two places
            }
            ++padding;
            continue;
        }
        const auto pos = kAlphabet.find(c);
        if (pos == std::string_view::npos || padding > 0) {
            return std::nullopt;
        }
        buffer = (buffer << 6U) | static_cast<unsigned>(pos);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            bytes.push_back(static_cast<unsigned char>((buffer >> static_cast<unsigned>(bits)) & 0xFFU));
        }
    }
    return bytes;
}

std::optional<std::uint64_t> size_field(const YAML::Node& map, const char* key, Diagnostics& diags) {
    const YAML::Node node = value_of(map, key);
    if (!node) {
        return std::nullopt;
    }
    const auto size = node.IsScalar() ? parse_size(node.Scalar()) : std::nullopt;
    if (!size) {
        diags.error(node, std::string("'") + key + "' must be a size like 20G, 512MiB or a number of bytes");
    }
    return size;
}

void parse_disk(const YAML::Node& doc, Answers& answers, Diagnostics& diags) {
    const YAML::Node disk = value_of(doc, "disk");
    if (!disk) {
        diags.error(doc, "missing required key 'disk' (a device like /dev/vda, or {min_size: 20G})");
        return;
    }
    if (disk.IsScalar()) {
        answers.disk = disk.Scalar();
        if (answers.disk.rfind("/dev/", 0) != 0 || answers.disk.size() <= 5) {
            diags.error(disk, "'disk' must be a device path like /dev/vda, not '" + answers.disk + "'");
        }
        return;
    }
    if (!disk.IsMap()) {
        diags.error(disk, "'disk' must be a device path or a selector {min_size, max_size, model}");
        return;
    }
    yaml::reject_unknown_keys(disk, {"min_size", "max_size", "model"}, diags);
    DiskSelector selector;
    selector.min_size = size_field(disk, "min_size", diags);
    selector.max_size = size_field(disk, "max_size", diags);
    selector.model = yaml::optional_string(disk, "model", diags).value_or("");
    if (!value_of(disk, "min_size") && !value_of(disk, "max_size") && !value_of(disk, "model")) {
        diags.error(disk, "a disk selector needs min_size, max_size or model");
    }
    if (selector.min_size && selector.max_size && *selector.min_size > *selector.max_size) {
        diags.error(value_of(disk, "max_size"), "'max_size' is smaller than 'min_size'");
    }
    answers.selector = selector;
}

void parse_root(const YAML::Node& doc, Answers& answers, Diagnostics& diags) {
    const YAML::Node root = value_of(doc, "root");
    if (!root || !yaml::expect_map(root, "'root'", diags)) {
        return;
    }
    yaml::reject_unknown_keys(root, {"ssh_keys"}, diags);
    answers.root_ssh_keys = yaml::string_list(root, "ssh_keys", diags);
    if (const YAML::Node keys = value_of(root, "ssh_keys"); keys && keys.IsSequence()) {
        for (const auto& key : keys) {
            if (key.IsScalar() && !valid_ssh_public_key(key.Scalar())) {
                diags.error(
                    key,
                    "not an SSH public key: expected '<type> <base64> [comment]' with type ssh-ed25519, "
                    "ssh-rsa or ecdsa-sha2-nistp256/384/521 (one line of a .pub file)");
            }
        }
    }
}

std::optional<Answers> parse(
    const std::string& text,
    const std::string& file_name,
    const roles::Catalog* catalog,
    Diagnostics& diags,
    const std::optional<std::filesystem::path>& base_dir) {
    Diagnostics local(file_name);
    Answers answers;
    const auto doc = load_yaml_string(text, local);
    if (doc && yaml::expect_map(*doc, "the answer file", local)) {
        answers.where = local.position(*doc);
        auto allowed = roles::node_field_keys();
        allowed.insert({"disk", "wipe", "root", "cluster"});
        yaml::reject_unknown_keys(*doc, allowed, local);
        parse_disk(*doc, answers, local);
        answers.wipe = yaml::optional_bool(*doc, "wipe", local).value_or(false);
        answers.node = roles::parse_node_fields(*doc, catalog, local);
        parse_root(*doc, answers, local);
        if (const auto cluster = yaml::optional_string(*doc, "cluster", local)) {
            answers.cluster_file = *cluster;
            if (cluster->empty()) {
                local.error(value_of(*doc, "cluster"), "'cluster' must name a file");
            } else if (base_dir) {
                answers.cluster_file = *base_dir / *cluster;  // an absolute path stays as it is
                std::error_code ec;
                if (!std::filesystem::is_regular_file(answers.cluster_file, ec)) {
                    local.error(
                        value_of(*doc, "cluster"),
                        "cluster file " + answers.cluster_file.string() + " does not exist");
                }
            }
        }
    }
    diags.append(local);
    if (!local.ok()) {
        return std::nullopt;
    }
    return answers;
}

}  // namespace

std::optional<std::uint64_t> parse_size(std::string_view text) {
    std::size_t digits = 0;
    while (digits < text.size() && std::isdigit(static_cast<unsigned char>(text[digits])) != 0) {
        ++digits;
    }
    if (digits == 0 || digits > 19) {
        return std::nullopt;
    }
    std::uint64_t number = std::stoull(std::string(text.substr(0, digits)));
    std::string unit(text.substr(digits));
    std::transform(unit.begin(), unit.end(), unit.begin(), [](unsigned char c) {
        return static_cast<char>(std::toupper(c));
    });
    if (unit.size() > 1 && (unit.ends_with("IB") || unit.ends_with("B"))) {
        unit.resize(unit.size() - (unit.ends_with("IB") ? 2 : 1));
    } else if (unit == "B") {
        unit.clear();
    }
    static constexpr std::string_view kUnits = "KMGTP";
    int shift = 0;
    if (!unit.empty()) {
        const auto pos = kUnits.find(unit);
        if (unit.size() != 1 || pos == std::string_view::npos) {
            return std::nullopt;
        }
        shift = static_cast<int>(pos + 1) * 10;
    }
    if (shift > 0 && number > (std::numeric_limits<std::uint64_t>::max() >> shift)) {
        return std::nullopt;
    }
    return number << shift;
}

bool valid_ssh_public_key(std::string_view line) {
    static constexpr std::array<std::string_view, 7> kTypes{
        "ssh-ed25519",
        "ssh-rsa",
        "ecdsa-sha2-nistp256",
        "ecdsa-sha2-nistp384",
        "ecdsa-sha2-nistp521",
        "sk-ssh-ed25519@openssh.com",
        "sk-ecdsa-sha2-nistp256@openssh.com"};
    std::istringstream fields{std::string(line)};
    std::string type;
    std::string blob;
    fields >> type >> blob;
    if (std::find(kTypes.begin(), kTypes.end(), type) == kTypes.end()) {
        return false;
    }
    // The blob starts with its own type as an SSH string (4-byte length, then the name).
    const auto bytes = decode_base64(blob);
    if (!bytes || bytes->size() < 4 + type.size()) {
        return false;
    }
    const std::size_t length = (std::size_t{(*bytes)[0]} << 24U) | (std::size_t{(*bytes)[1]} << 16U) |
                               (std::size_t{(*bytes)[2]} << 8U) | std::size_t{(*bytes)[3]};
    return length == type.size() && std::equal(type.begin(), type.end(), bytes->begin() + 4);
}

std::optional<Answers> parse_answers(
    const std::string& text,
    const std::string& file_name,
    const roles::Catalog* catalog,
    Diagnostics& diags) {
    return parse(text, file_name, catalog, diags, std::nullopt);
}

std::optional<Answers> load_answers(
    const std::filesystem::path& path, const roles::Catalog* catalog, Diagnostics& diags) {
    auto text = read_text_file(path, diags);
    if (!text) {
        return std::nullopt;
    }
    return parse(*text, path.string(), catalog, diags, path.parent_path());
}

}  // namespace stormnode::installer
