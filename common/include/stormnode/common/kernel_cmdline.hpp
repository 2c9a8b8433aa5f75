// The kernel command line read the way systemd reads it (proc_cmdline: extract_first_word with
// EXTRACT_UNQUOTE | EXTRACT_RELAX | EXTRACT_RETAIN_ESCAPE), so stormnode sees the same arguments as the
// node's own systemd and dracut:
//   - words are separated by runs of space, tab, newline or carriage return;
//   - double and single quotes group and are removed, wherever they are: a="x y", "a=x y" and a=b"c d"e
//     are one word each ("a=x y", "a=x y", "a=bc de");
//   - a quote left open takes the rest of the line; backslashes are plain characters;
//   - a word splits at its FIRST '=' into key and value, so a value may hold '=' (root=live:CDLABEL=X);
//   - a key compares with '-' and '_' as the same character, as the kernel and systemd compare them.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace stormnode {

struct KernelArg {
    std::string key;
    // nullopt for a bare word ("quiet"), "" for "key=" (present with an empty value).
    std::optional<std::string> value;

    bool operator==(const KernelArg&) const = default;
};

// The words, unquoted, in order.
std::vector<std::string> split_kernel_cmdline(std::string_view text);

// One unquoted word as key and value.
KernelArg kernel_arg_from_word(std::string_view word);

// Every argument, in order, repeated keys included.
std::vector<KernelArg> parse_kernel_cmdline(std::string_view text);

// One argument as a command-line word, quoted so that parsing it gives it back: key="v w" when the value
// has whitespace or a single quote (the kernel reads that form too). The kernel has no way to put a
// double quote in a value; such a value is single-quoted, key='a"b', which systemd and dracut read back.
// Throws Error(Errc::invalid_input) for a key holding '=' (no quoting can keep the split there).
std::string render_kernel_arg(const KernelArg& arg);

// The arguments as a command line, space-separated (render_kernel_arg each).
std::string render_kernel_cmdline(const std::vector<KernelArg>& args);

// The parsed command line, for lookups.
class KernelCmdline {
public:
    KernelCmdline() = default;
    explicit KernelCmdline(std::string_view text) : args_(parse_kernel_cmdline(text)) {}
    explicit KernelCmdline(std::vector<KernelArg> args) : args_(std::move(args)) {}

    [[nodiscard]] const std::vector<KernelArg>& args() const noexcept { return args_; }

    // The last occurrence of `key` (the one that wins, as for the kernel's own arguments), nullptr when
    // absent. Tells "absent" (nullptr), "bare" (no value) and "key=" (empty value) apart.
    [[nodiscard]] const KernelArg* find(std::string_view key) const noexcept;
    // Every occurrence of `key`, in command-line order.
    [[nodiscard]] std::vector<KernelArg> all(std::string_view key) const;
    [[nodiscard]] bool contains(std::string_view key) const noexcept { return find(key) != nullptr; }
    // The last occurrence's value: nullopt when `key` is absent or its last occurrence is bare.
    [[nodiscard]] std::optional<std::string> value(std::string_view key) const;

private:
    std::vector<KernelArg> args_;
};

// True when the two keys are the same with '-' and '_' taken as equal.
bool kernel_arg_key_equal(std::string_view a, std::string_view b) noexcept;

// The first line of `file` without its line end, as systemd reads /proc/cmdline (whose newline would
// otherwise end up in a value left in an open quote).
// Throws Error(Errc::io) naming the file when it cannot be read.
std::string read_proc_cmdline(const std::filesystem::path& file = "/proc/cmdline");

}  // namespace stormnode
