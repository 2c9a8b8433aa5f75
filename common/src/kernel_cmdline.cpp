#include "stormnode/common/kernel_cmdline.hpp"

#include <stormnode/common/c_handle.hpp>
#include <stormnode/common/error.hpp>
#include <stormnode/common/strings.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>

namespace stormnode {
namespace {

// systemd's WHITESPACE, the separators of extract_first_word.
constexpr std::string_view kSeparators = " \t\n\r";

bool is_separator(char c) noexcept {
    return kSeparators.find(c) != std::string_view::npos;
}

// Appends `text` so that extract_first_word gives it back unchanged and whole.
void append_quoted(std::string& out, std::string_view text) {
    if (text.find_first_of(" \t\n\r\"'") == std::string_view::npos) {
        out += text;
    } else if (text.find('"') == std::string_view::npos) {
        out += '"';
        out += text;
        out += '"';
    } else if (text.find('\'') == std::string_view::npos) {
        out += '\'';
        out += text;
        out += '\'';
    } else {
        // Both kinds: the runs between double quotes in double quotes, each double quote in single ones.
        std::size_t start = 0;
        while (start < text.size()) {
            const auto quote = std::min(text.find('"', start), text.size());
            if (quote > start) {
                out += '"';
                out += text.substr(start, quote - start);
                out += '"';
            }
            if (quote < text.size()) {
                out += "'\"'";
            }
            start = quote + 1;
        }
    }
}

}  // namespace

std::vector<std::string> split_kernel_cmdline(std::string_view text) {
    std::vector<std::string> words;
    std::size_t i = 0;
    while (true) {
        while (i < text.size() && is_separator(text[i])) {
            ++i;
        }
        if (i == text.size()) {
            return words;
        }
        std::string word;
        char quote = 0;  // the quote we are inside, 0 outside
        for (; i < text.size(); ++i) {
            const char c = text[i];
            if (quote != 0) {
                if (c == quote) {
                    quote = 0;
                } else {
                    word += c;
                }
            } else if (c == '"' || c == '\'') {
                quote = c;
            } else if (is_separator(c)) {
                break;
            } else {
                word += c;
            }
        }
        words.push_back(std::move(word));  // "" for a word that was only quotes: systemd keeps it too
    }
}

KernelArg kernel_arg_from_word(std::string_view word) {
    const auto eq = word.find('=');
    if (eq == std::string_view::npos) {
        return KernelArg{std::string(word), std::nullopt};
    }
    return KernelArg{std::string(word.substr(0, eq)), std::string(word.substr(eq + 1))};
}

std::vector<KernelArg> parse_kernel_cmdline(std::string_view text) {
    std::vector<KernelArg> args;
    for (const auto& word : split_kernel_cmdline(text)) {
        args.push_back(kernel_arg_from_word(word));
    }
    return args;
}

std::string render_kernel_arg(const KernelArg& arg) {
    if (arg.key.find('=') != std::string::npos) {
        throw Error(Errc::invalid_input, "kernel argument name '" + arg.key + "' contains '='");
    }
    if (arg.key.empty() && !arg.value) {
        return "\"\"";  // an empty word
    }
    std::string word;
    append_quoted(word, arg.key);
    if (arg.value) {
        word += '=';
        append_quoted(word, *arg.value);
    }
    return word;
}

std::string render_kernel_cmdline(const std::vector<KernelArg>& args) {
    std::vector<std::string> words;
    words.reserve(args.size());
    for (const auto& arg : args) {
        words.push_back(render_kernel_arg(arg));
    }
    return join(words, " ");
}

bool kernel_arg_key_equal(std::string_view a, std::string_view b) noexcept {
    const auto dash_as_underscore = [](char c) {
        return c == '-' ? '_' : c;
    };
    return std::ranges::equal(a, b, {}, dash_as_underscore, dash_as_underscore);
}

const KernelArg* KernelCmdline::find(std::string_view key) const noexcept {
    for (auto it = args_.rbegin(); it != args_.rend(); ++it) {
        if (kernel_arg_key_equal(it->key, key)) {
            return &*it;
        }
    }
    return nullptr;
}

std::vector<KernelArg> KernelCmdline::all(std::string_view key) const {
    std::vector<KernelArg> found;
    for (const auto& arg : args_) {
        if (kernel_arg_key_equal(arg.key, key)) {
            found.push_back(arg);
        }
    }
    return found;
}

std::optional<std::string> KernelCmdline::value(std::string_view key) const {
    const auto* arg = find(key);
    return arg != nullptr ? arg->value : std::nullopt;
}

std::string read_proc_cmdline(const std::filesystem::path& file) {
    const UniqueFd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
    check_errno(fd.get(), "reading " + file.string());
    std::string text;
    std::array<char, 4096> buffer{};
    for (;;) {
        const ssize_t n = ::read(fd.get(), buffer.data(), buffer.size());
        if (n < 0 && errno == EINTR) {
            continue;
        }
        check_errno(static_cast<int>(n), "reading " + file.string());
        if (n == 0) {
            break;
        }
        text.append(buffer.data(), static_cast<std::size_t>(n));
    }
    // The first line, as read_one_line_file gives it: without "\n", "\r\n" or what follows a NUL.
    text.resize(std::min(text.find_first_of(std::string_view("\n\r\0", 3)), text.size()));
    return text;
}

}  // namespace stormnode
