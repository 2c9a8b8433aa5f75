// `stormctl role ...` run as an operator runs it: exit status, stdout and stderr.
#include <stormnode/common/subprocess.hpp>

#include <catch2/catch.hpp>

#include <filesystem>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using stormnode::Command;
using stormnode::ProcessResult;

namespace {

const fs::path data_dir = fs::path(STORMNODE_TEST_DATA) / "catalog";
const std::string good_dir = (data_dir / "good").string();

ProcessResult stormctl(std::vector<std::string> args) {
    Command command;
    command.argv = {STORMCTL_PATH};
    command.argv.insert(command.argv.end(), args.begin(), args.end());
    command.env["STORMNODE_CATALOG_DIR"] = "/nonexistent/stormnode/catalog";  // never the machine's
    command.timeout = std::chrono::seconds(60);
    ProcessResult result = stormnode::run(command);
    UNSCOPED_INFO(
        "stormctl " << stormnode::format_argv(args) << " -> " << result.exit_status << "\nstdout:\n"
                    << result.out << "stderr:\n"
                    << result.err);
    return result;
}

bool contains(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("role validate on a malformed file exits 2 naming file:line:col", "[roles][cli]") {
    const std::string file = (data_dir / "bad" / "port-range.yaml").string();
    const auto result = stormctl({"role", "validate", file});
    CHECK(result.exit_status == 2);
    CHECK(result.out.empty());
    CHECK(contains(result.err, file + ":8:15: 'port' must be between 1 and 65535, not 70000\n"));
    CHECK(contains(result.err, file + ":9:28: 'port' must be between 1 and 65535, not 0\n"));
    CHECK(contains(result.err, "2 problems found"));
}

TEST_CASE("role validate reports every file of a directory", "[roles][cli]") {
    const fs::path dir = data_dir / "bad" / "cycle";
    const auto result = stormctl({"role", "validate", dir.string()});
    CHECK(result.exit_status == 2);
    CHECK(contains(result.err, (dir / "alpha.yaml").string() + ":4:16: depends_on cycle"));
    CHECK(contains(result.err, (dir / "gamma.yaml").string() + ":3:16: depends_on cycle"));
}

TEST_CASE("role validate on a valid catalog exits 0 with a summary", "[roles][cli]") {
    auto result = stormctl({"role", "validate", good_dir});
    CHECK(result.exit_status == 0);
    CHECK(result.out == "valid: 4 roles (cache, legacy, store, web), 1 common layer, 1 mixin\n");

    // Without a path: the --catalog directory.
    result = stormctl({"role", "--catalog", good_dir, "validate", "--roles", "web,store:single,cache"});
    CHECK(result.exit_status == 0);
    CHECK(contains(result.out, "web + store:single + cache can share a node"));
}

TEST_CASE("role validate --roles refuses roles that cannot share a node", "[roles][cli]") {
    const auto result = stormctl({"role", "validate", good_dir, "--roles", "store,legacy"});
    CHECK(result.exit_status == 2);
    const std::string store = good_dir + "/store.yaml";
    CHECK(contains(result.err, store + ":37:19: role 'store' cannot share a node with role 'legacy'"));
    CHECK(contains(result.err, store + ":36:13: package 'postgresql' conflicts with role 'store'"));

    const auto unknown = stormctl({"role", "validate", good_dir, "--roles", "web,nosuch"});
    CHECK(unknown.exit_status == 2);
    CHECK(contains(unknown.err, "--roles web,nosuch: unknown role 'nosuch'"));

    const auto malformed = stormctl({"role", "validate", good_dir, "--roles", "web,store:"});
    CHECK(malformed.exit_status == 2);
    CHECK(contains(malformed.err, "--roles web,store:: role 'store:' has an empty variant after ':'"));
}

TEST_CASE("install --role is checked against the catalog before anything is touched", "[roles][cli]") {
    // An install that would fail at its disk if the roles got through: each --role ROLE given.
    const auto install_with_roles = [](const std::vector<std::string>& roles) {
        std::vector<std::string> argv{
            "install",
            "--catalog",
            good_dir,
            "--cmdline-file",
            "/dev/null",
            "--disk",
            "/nonexistent/disk",
            "--yes"};
        for (const auto& role : roles) {
            argv.insert(argv.end(), {"--role", role});
        }
        return stormctl(argv);
    };

    const auto bad = install_with_roles({"web", "nosuch", "store:gallera"});
    CHECK(bad.exit_status == 2);
    CHECK(contains(bad.err, "unknown role 'nosuch' (roles: cache, legacy, store, web)"));
    CHECK(contains(bad.err, "role 'store' has no variant 'gallera' (variants: replicated, single)"));

    const auto forbidden = install_with_roles({"store", "legacy"});
    CHECK(forbidden.exit_status == 2);
    CHECK(contains(forbidden.err, "role 'store' cannot share a node with role 'legacy'"));

    const auto malformed = install_with_roles({"db:a:b"});
    CHECK(malformed.exit_status == 2);
    CHECK(contains(malformed.err, "role 'db:a:b' has more than one ':'"));
}

TEST_CASE("role list and role show describe the catalog", "[roles][cli]") {
    const auto list = stormctl({"role", "list", "--catalog", good_dir});
    CHECK(list.exit_status == 0);
    CHECK(contains(list.out, "NAME    VARIANT         DESCRIPTION\n"));
    CHECK(contains(list.out, "store   replicated      A replicated database\n"));
    CHECK(contains(list.out, "web     -               A web tier with a cache\n"));
    CHECK_FALSE(contains(list.out, "lb "));  // mixins and the common layer are not roles

    const auto show = stormctl({"role", "show", "web", "--catalog", good_dir});
    CHECK(show.exit_status == 0);
    CHECK(contains(show.out, "web: A web tier with a cache\n"));
    CHECK(contains(show.out, "nginx.service         package nginx  [from web]\n"));
    CHECK(contains(show.out, "haproxy.service       package haproxy  [from lb]\n"));
    CHECK(contains(show.out, "check http http://127.0.0.1:80/health -> 200|204, every 10s, timeout 5s"));
    CHECK(contains(show.out, "  1. chrony.service zabbix-agent.service\n"));
    CHECK(contains(show.out, "  depends on:      store\n"));
    CHECK(contains(show.out, "  packages:        apache2\n"));

    const auto variant = stormctl({"role", "--catalog", good_dir, "show", "store", "--variant", "single"});
    CHECK(variant.exit_status == 0);
    CHECK(contains(variant.out, "variant:      single  [variants: replicated (default), single]"));
    CHECK(contains(variant.out, "kept disabled:     garb.service"));
}

TEST_CASE("role subcommands exit 2 on usage errors and 1 on operational ones", "[roles][cli]") {
    CHECK(stormctl({"role"}).exit_status == 2);
    CHECK(stormctl({"role", "show", "--catalog", good_dir}).exit_status == 2);
    CHECK(stormctl({"role", "frobnicate"}).exit_status == 2);

    const auto unknown = stormctl({"role", "show", "nosuch", "--catalog", good_dir});
    CHECK(unknown.exit_status == 2);
    CHECK(contains(unknown.err, "unknown role 'nosuch'"));
    CHECK(stormctl({"role", "show", "store", "--variant", "x", "--catalog", good_dir}).exit_status == 2);

    // An invalid catalog is the operator's input: 2, with its diagnostics.
    const auto invalid = stormctl({"role", "list", "--catalog", (data_dir / "bad" / "cycle").string()});
    CHECK(invalid.exit_status == 2);
    CHECK(contains(invalid.err, "alpha.yaml:4:16: depends_on cycle"));

    // No catalog where it should be: an operational error. STORMNODE_CATALOG_DIR points nowhere.
    const auto missing = stormctl({"role", "list"});
    CHECK(missing.exit_status == 1);
    CHECK(contains(missing.err, "/nonexistent/stormnode/catalog"));
}

TEST_CASE("every role subcommand has --help", "[roles][cli]") {
    for (const auto& sub : {"list", "show", "validate"}) {
        const auto result = stormctl({"role", sub, "--help"});
        INFO(sub);
        CHECK(result.exit_status == 0);
        CHECK(contains(result.out, "Usage"));
    }
    CHECK(contains(stormctl({"role", "validate", "--help"}).out, "--roles"));
    CHECK(contains(stormctl({"role", "--help"}).out, "--catalog"));
}

// The shipped catalog (roles/catalog/*.yaml).
TEST_CASE("stormctl validates the shipped catalog and all-in-one", "[roles][cli][shipped]") {
    const std::string dir = std::string(STORMNODE_SOURCE_DIR) + "/roles/catalog";
    const auto result = stormctl({"role", "validate", dir, "--roles", "controller,network,compute,storage"});
    CHECK(result.exit_status == 0);
    CHECK(result.err.empty());
    const auto show = stormctl({"role", "--catalog", dir, "show", "controller"});
    CHECK(show.exit_status == 0);
    CHECK(contains(show.out, "keystone"));
    CHECK(contains(show.out, "neutron-api.service"));
}
