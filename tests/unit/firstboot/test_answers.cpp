// The answer-file corpus in tests/data/answers: good/ files parse without a word, each bad/X.yaml gives
// exactly the diagnostics in bad/X.expected ("line:col: message", the message may be a prefix).
#include <stormnode/catalog/catalog.hpp>
#include <stormnode/common/temp_dir.hpp>
#include <stormnode/installer/answers.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace fs = std::filesystem;
using namespace stormnode;
using installer::Answers;

namespace {

const roles::Catalog& catalog() {
    static const roles::Catalog c =
        roles::load_valid_catalog(fs::path(STORMNODE_SOURCE_DIR) / "roles/catalog");
    return c;
}

const fs::path kCorpus = fs::path(STORMNODE_TEST_DATA) / "answers";

std::vector<fs::path> corpus(const std::string& dir) {
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(kCorpus / dir)) {
        if (e.path().extension() == ".yaml") {
            files.push_back(e.path());
        }
    }
    std::sort(files.begin(), files.end());
    return files;
}

std::string located(const Diagnostic& d) {
    return std::to_string(d.line) + ":" + std::to_string(d.column) + ": " + d.message;
}

std::optional<Answers> parse_text(const std::string& text, Diagnostics& diags) {
    return installer::parse_answers(text, "answers.yaml", &catalog(), diags);
}

}  // namespace

TEST_CASE("every good answer file parses without diagnostics", "[answers][unit]") {
    const auto files = corpus("good");
    REQUIRE(files.size() >= 4);
    for (const auto& file : files) {
        INFO(file.string());
        Diagnostics diags;
        const auto answers = installer::load_answers(file, &catalog(), diags);
        INFO(diags.to_string());
        CHECK(diags.ok());
        CHECK(answers.has_value());
    }
}

TEST_CASE("every bad answer file gives exactly its expected diagnostics", "[answers][unit]") {
    const auto files = corpus("bad");
    REQUIRE(files.size() >= 10);
    for (const auto& file : files) {
        Diagnostics diags;
        const auto answers = installer::load_answers(file, &catalog(), diags);
        std::string actual;
        for (const auto& d : diags.items()) {
            CHECK(d.file == file.string());  // every diagnostic names the answer file
            actual += located(d) + "\n";
        }
        INFO(file.filename().string() << " gave:\n" << actual);
        CHECK_FALSE(answers.has_value());
        auto expected_path = file;
        expected_path.replace_extension(".expected");
        REQUIRE(fs::exists(expected_path));
        std::ifstream in(expected_path);
        std::vector<std::string> expected;
        for (std::string line; std::getline(in, line);) {
            if (!line.empty() && line[0] != '#') {
                expected.push_back(line);
            }
        }
        REQUIRE(diags.items().size() == expected.size());
        for (std::size_t i = 0; i < expected.size(); ++i) {
            const auto got = located(diags.items()[i]);
            INFO("expected: " << expected[i] << "\n     got: " << got);
            CHECK(got.rfind(expected[i], 0) == 0);
        }
    }
}

TEST_CASE("a good answer file gives the model the installer needs", "[answers][unit]") {
    Diagnostics diags;
    const auto answers =
        installer::load_answers(kCorpus / "good/selector-static-mac.yaml", &catalog(), diags);
    REQUIRE(answers);
    CHECK(answers->disk.empty());
    REQUIRE(answers->selector);
    CHECK(answers->selector->min_size == 20ULL << 30U);
    CHECK(answers->selector->max_size == 2ULL << 40U);
    CHECK(answers->selector->model == "QEMU*");
    CHECK(answers->wipe);
    CHECK(answers->node.roles == std::vector<roles::RoleSpec>{{"db", "active-passive"}});
    CHECK(roles::to_strings(answers->node.roles) == std::vector<std::string>{"db:active-passive"});
    CHECK(answers->node.hostname == "db-1.rack1.example.net");
    CHECK(answers->node.zone == "rack-1");
    REQUIRE(answers->node.network);
    CHECK(answers->node.network->mac == "52:54:00:ab:cd:01");  // normalised to lower case
    CHECK(answers->node.network->mode == roles::AddressMode::fixed);
    CHECK(answers->node.network->dns == std::vector<std::string>{"10.0.0.2", "2001:db8::53"});
    CHECK(answers->root_ssh_keys.size() == 1);
    CHECK(
        fs::weakly_canonical(answers->cluster_file) == fs::weakly_canonical(kCorpus / "clusters/rack1.yaml"));
}

TEST_CASE("an answer file that is not a file is one clear diagnostic", "[answers][unit]") {
    Diagnostics diags;
    CHECK_FALSE(installer::load_answers(kCorpus / "no-such.yaml", &catalog(), diags));
    REQUIRE(diags.items().size() == 1);
    CHECK(diags.items()[0].to_string().find("no-such.yaml: ") != std::string::npos);
}

TEST_CASE("sizes take binary suffixes and reject anything else", "[answers][unit]") {
    CHECK(installer::parse_size("1000") == 1000U);
    CHECK(installer::parse_size("20G") == 20ULL << 30U);
    CHECK(installer::parse_size("512MiB") == 512ULL << 20U);
    CHECK(installer::parse_size("2tb") == 2ULL << 40U);
    CHECK(installer::parse_size("8B") == 8U);
    CHECK_FALSE(installer::parse_size(""));
    CHECK_FALSE(installer::parse_size("G"));
    CHECK_FALSE(installer::parse_size("20 G"));
    CHECK_FALSE(installer::parse_size("20X"));
    CHECK_FALSE(installer::parse_size("-1"));
    CHECK_FALSE(installer::parse_size("99999999999P"));  // overflows 64 bits
}

TEST_CASE("SSH keys must be a known type whose blob names the same type", "[answers][unit]") {
    const std::string ed = "AAAAC3NzaC1lZDI1NTE5AAAAIKDpot5krmBsqC6zSkVBxr8J08X7qsbVInsS5Z3GXLN3";
    CHECK(installer::valid_ssh_public_key("ssh-ed25519 " + ed));
    CHECK(installer::valid_ssh_public_key("ssh-ed25519 " + ed + " admin@laptop with spaces"));
    CHECK_FALSE(installer::valid_ssh_public_key("ssh-rsa " + ed));  // the blob says ssh-ed25519
    CHECK_FALSE(installer::valid_ssh_public_key("ssh-ed25519 " + ed.substr(0, ed.size() - 1)));  // not base64
    CHECK_FALSE(installer::valid_ssh_public_key("ssh-ed25519"));
    CHECK_FALSE(installer::valid_ssh_public_key("ssh-dss AAAAB3NzaC1kc3MAAACBAP"));
    CHECK_FALSE(installer::valid_ssh_public_key(""));
}

TEST_CASE("without a catalog, role names are not checked but everything else is", "[answers][unit]") {
    Diagnostics diags("answers.yaml");
    const auto answers = installer::parse_answers(
        "disk: /dev/vda\nroles: [anything]\nhostname: bad_name\n", "answers.yaml", nullptr, diags);
    CHECK_FALSE(answers);
    REQUIRE(diags.items().size() == 1);
    CHECK(located(diags.items()[0]).rfind("3:11: 'hostname' must be", 0) == 0);
}

TEST_CASE("a parsed answer file carries its roles into node.yaml unchanged", "[answers][unit]") {
    Diagnostics diags;
    const auto answers = parse_text(
        "disk: /dev/vda\nroles: [db, monitor]\nvariants: {db: galera}\nhostname: db-2\nzone: z\n"
        "network: {interface: eno2, mode: static, address: 192.168.1.20/24, gateway: 192.168.1.1}\n",
        diags);
    INFO(diags.to_string());
    REQUIRE(answers);
    const std::string text = roles::render_node_file(answers->node);
    Diagnostics again("node.yaml");
    const auto node = roles::parse_node_file(text, "node.yaml", &catalog(), again);
    INFO(text << again.to_string());
    REQUIRE(node);
    CHECK(*node == answers->node);
}
