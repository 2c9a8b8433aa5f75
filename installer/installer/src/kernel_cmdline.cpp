#include "stormnode/installer/kernel_cmdline.hpp"

#include <stormnode/common/error.hpp>

#include <vector>

namespace stormnode::installer {
namespace {

// Words as the kernel splits them: spaces separate, double quotes group (and are dropped).
std::vector<std::string> split_cmdline(std::string_view text) {
    std::vector<std::string> words;
    std::string word;
    bool quoted = false;
    bool in_word = false;
    for (const char c : text) {
        if (c == '"') {
            quoted = !quoted;
            in_word = true;
        } else if (!quoted && (c == ' ' || c == '\t' || c == '\n')) {
            if (in_word) {
                words.push_back(word);
            }
            word.clear();
            in_word = false;
        } else {
            word += c;
            in_word = true;
        }
    }
    if (in_word) {
        words.push_back(word);
    }
    return words;
}

}  // namespace

bool kernel_arg(std::string_view cmdline, std::string_view key, std::string& value) {
    bool found = false;
    for (const auto& w : split_cmdline(cmdline)) {  // the last one wins, as for the kernel's own
        if (w == key) {
            found = true;
            value.clear();
        } else if (w.size() > key.size() && w.starts_with(key) && w[key.size()] == '=') {
            found = true;
            value = w.substr(key.size() + 1);
        }
    }
    return found;
}

InstallRequest parse_install_request(std::string_view cmdline) {
    InstallRequest r;
    std::string value;
    if (kernel_arg(cmdline, "stormnode.install", value)) {
        if (value == "unattended") {
            r.mode = InstallMode::unattended;
        } else if (value.empty() || value == "interactive") {
            r.mode = InstallMode::interactive;
        } else {
            throw Error(
                Errc::invalid_input,
                "stormnode.install=" + value +
                    " on the kernel command line: expected unattended or interactive");
        }
    }
    if (kernel_arg(cmdline, "stormnode.answers", value) && !value.empty()) {
        r.answers = value;
    }
    return r;
}

}  // namespace stormnode::installer
