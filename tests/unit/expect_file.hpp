// The .expect files paired with the malformed-input corpora (catalog, cluster, inventory): one
// "file:line:col: message" a line, '#' comments; the tests compare them with the loaders' diagnostics.
#pragma once

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <regex>
#include <string>
#include <vector>

namespace stormnode::test {

struct Expected {
    std::string file;
    int line = 0;
    int column = 0;
    std::string message;
};

inline std::vector<Expected> read_expect(const std::filesystem::path& path) {
    static const std::regex format(R"(^([^:]+):(\d+):(\d+): (.+)$)");
    std::vector<Expected> expected;
    std::ifstream in(path);
    std::string text;
    while (std::getline(in, text)) {
        if (text.empty() || text[0] == '#') {
            continue;
        }
        std::smatch m;
        INFO(path.string() << ": " << text);
        REQUIRE(std::regex_match(text, m, format));
        expected.push_back({m[1], std::stoi(m[2]), std::stoi(m[3]), m[4]});
    }
    return expected;
}

}  // namespace stormnode::test
