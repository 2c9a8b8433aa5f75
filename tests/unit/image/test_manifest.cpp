#include <stormnode/common/error.hpp>
#include <stormnode/common/temp_dir.hpp>
#include <stormnode/image/build.hpp>
#include <stormnode/image/importer.hpp>
#include <stormnode/image/manifest.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <iterator>
#include <string>

using stormnode::Diagnostics;
namespace image = stormnode::image;

namespace {

const std::set<std::string> kRoles{
    "common", "controller", "network", "compute", "storage", "paas", "db", "quorum", "monitor"};

std::vector<std::string> messages(const Diagnostics& d) {
    std::vector<std::string> out;
    for (const auto& i : d.items()) {
        out.push_back(i.to_string());
    }
    return out;
}

}  // namespace

TEST_CASE("the shipped manifests load", "[image][manifest]") {
    const auto def = image::load_valid_manifest(STORMNODE_SOURCE_DIR "/image/default.yaml", kRoles);
    CHECK(def.roles.size() == 9);
    CHECK(
        def.dracut.modules ==
        std::vector<std::string>{"ostree", "dmsquash-live", "livenet", "network-legacy"});
    CHECK_FALSE(def.dracut.hostonly);
    CHECK(def.ref() == "stormnode/bookworm/x86_64/node");
    CHECK(def.sha256.size() == 64);
    const auto min = image::load_valid_manifest(STORMNODE_SOURCE_DIR "/image/minimal.yaml", kRoles);
    CHECK(min.roles == std::vector<std::string>{"quorum"});
    CHECK(min.kernel == "linux-image-amd64");
    CHECK(min.debian_architecture() == "amd64");
}

TEST_CASE("an unknown key is reported at its line and column", "[image][manifest]") {
    Diagnostics d("m.yaml");
    (void)image::parse_manifest(
        "version: '1'\nbase_packages: [systemd]\ndracut:\n  modules: [ostree]\n  hostonlyy: false\n",
        "m.yaml",
        kRoles,
        d);
    REQUIRE(d.items().size() == 1);
    CHECK(d.items()[0].to_string().rfind("m.yaml:5:3: unknown key 'hostonlyy'", 0) == 0);
}

TEST_CASE("an unknown role names the catalog's roles", "[image][manifest]") {
    Diagnostics d("m.yaml");
    const auto m = image::parse_manifest(
        "version: '1'\nbase_packages: [systemd]\nroles: [quorum, computee]\n", "m.yaml", kRoles, d);
    REQUIRE(d.items().size() == 1);
    CHECK(d.items()[0].line == 3);
    CHECK(d.items()[0].column == 17);
    CHECK(d.items()[0].message.find("unknown role 'computee'") == 0);
    CHECK(d.items()[0].message.find("controller") != std::string::npos);
    CHECK(m.roles == std::vector<std::string>{"quorum"});
}

TEST_CASE("every problem of a manifest is reported, not just the first", "[image][manifest]") {
    Diagnostics d("m.yaml");
    (void)image::parse_manifest(
        "suite: Bookworm!\nbase_packages: [systemd, Bad_Name, systemd]\nmirror: ftp://x\n"
        "dracut: {hostonly: true}\nroles: quorum\n",
        "m.yaml",
        kRoles,
        d);
    const auto all = messages(d);
    INFO(d.to_string());
    REQUIRE(all.size() == 7);
    CHECK(all[0] == "m.yaml:1:1: missing required key 'version'");
    CHECK(all[1].rfind("m.yaml:1:8: 'suite'", 0) == 0);
    CHECK(all[2].rfind("m.yaml:3:9: 'mirror'", 0) == 0);
    CHECK(all[3] == "m.yaml:2:26: 'base_packages': 'Bad_Name' is not a Debian package name");
    CHECK(all[4] == "m.yaml:2:36: 'base_packages': package 'systemd' is listed twice");
    CHECK(all[5].rfind("m.yaml:5:8: 'roles' must be a list", 0) == 0);
    CHECK(all[6].rfind("m.yaml:4:20: 'hostonly: true'", 0) == 0);
}

TEST_CASE("hostonly: true is refused with the reason", "[image][manifest]") {
    Diagnostics d("m.yaml");
    (void)image::parse_manifest(
        "version: '1'\nbase_packages: [systemd]\ndracut: {hostonly: true}\n", "m.yaml", kRoles, d);
    REQUIRE(d.items().size() == 1);
    CHECK(d.items()[0].line == 3);
    CHECK(d.items()[0].message.find("not for a node") != std::string::npos);
}

TEST_CASE(
    "a YAML syntax error and a missing file are diagnostics, and load_valid throws", "[image][manifest]") {
    Diagnostics d("m.yaml");
    (void)image::parse_manifest("version: [1\n", "m.yaml", kRoles, d);
    REQUIRE_FALSE(d.ok());
    CHECK(d.items()[0].message.find("YAML syntax error") == 0);
    try {
        (void)image::load_valid_manifest("/nonexistent/x.yaml", kRoles);
        FAIL("no exception");
    } catch (const stormnode::Error& e) {
        CHECK(e.code() == stormnode::Errc::invalid_input);
        CHECK(std::string(e.what()).find("cannot read the manifest") != std::string::npos);
    }
}

TEST_CASE("the dpkg status file gives installed packages with versions", "[image][importer]") {
    const auto p = image::parse_dpkg_status(
        "Package: a\nStatus: install ok installed\nVersion: 1.0-1\n\n"
        "Package: b\nStatus: deinstall ok config-files\nVersion: 2\n\n"
        "Package: c\nVersion: 3:4.5\nStatus: install ok installed\nDescription: x\n continued\n");
    CHECK(p == std::map<std::string, std::string>{{"a", "1.0-1"}, {"c", "3:4.5"}});
}

TEST_CASE(
    "the image's packages are base + kernel + every role's (all variants, common folded in)",
    "[image][build]") {
    stormnode::roles::Catalog catalog;
    auto add =
        [&](const std::string& name, stormnode::roles::RoleKind kind, std::vector<std::string> packages) {
            stormnode::roles::Role r;
            r.name = name;
            r.kind = kind;
            r.body.packages = std::move(packages);
            catalog.roles[name] = r;
            return &catalog.roles[name];
        };
    add("common", stormnode::roles::RoleKind::common, {"chrony"});
    add("quorum", stormnode::roles::RoleKind::role, {"corosync-qnetd"});
    auto* db = add("db", stormnode::roles::RoleKind::role, {"mariadb-server"});
    db->variants["galera"].packages = {"galera-4"};
    db->variants["active-passive"].packages = {"pacemaker"};
    db->default_variant = "galera";
    db->body.node_state.push_back({"/var/lib/mysql", "mariadb-datadir", "mysql", "0700", {}});

    Diagnostics d("m.yaml");
    const auto m = image::parse_manifest(
        "version: '1'\nbase_packages: [systemd, dbus]\nroles: [quorum, db]\nextra_packages: [less, "
        "systemd]\n",
        "m.yaml",
        {"common", "quorum", "db"},
        d);
    REQUIRE(d.ok());
    CHECK(
        image::image_packages(m, catalog) == std::vector<std::string>{
                                                 "chrony",
                                                 "corosync-qnetd",
                                                 "dbus",
                                                 "galera-4",
                                                 "less",
                                                 "linux-image-amd64",
                                                 "mariadb-server",
                                                 "pacemaker",
                                                 "systemd"});
    CHECK(image::node_state_paths(m, catalog) == std::vector<std::string>{"/var/lib/mysql"});
}

TEST_CASE("mmdebstrap runs from our hook files and keeps the .debs for the cache", "[image][build]") {
    image::BootstrapPlan plan;
    plan.suite = "bookworm";
    plan.architecture = "amd64";
    plan.packages = {"systemd", "linux-image-amd64"};
    plan.debs = {"/tmp/stormnode_0.1.0_amd64.deb"};
    plan.hooks_dir = STORMNODE_SOURCE_DIR "/image/hooks";
    plan.output = "/tmp/rootfs.tar";
    const auto argv = image::mmdebstrap_argv(plan);
    auto has = [&](const std::string& a) {
        return std::find(argv.begin(), argv.end(), a) != argv.end();
    };
    CHECK(argv.front() == "mmdebstrap");
    CHECK(has("--include=systemd,linux-image-amd64"));
    CHECK(has("--include=/tmp/stormnode_0.1.0_amd64.deb"));
    CHECK(has("--skip=essential/unlink"));
    CHECK(has("--customize-hook=" STORMNODE_SOURCE_DIR "/image/hooks/customize-20-units"));
    CHECK(has("--essential-hook=" STORMNODE_SOURCE_DIR "/image/hooks/essential-defer-initramfs"));
    CHECK(has("--hook-dir=/usr/share/mmdebstrap/hooks/eatmydata"));
    CHECK(argv[argv.size() - 2] == "bookworm");
    CHECK(argv.back() == "/tmp/rootfs.tar");
    for (const auto& a : argv) {
        const auto eq = a.find('=');
        if (a.find("-hook=") != std::string::npos && a.find("--hook-dir") == std::string::npos) {
            INFO(a);
            CHECK(std::filesystem::is_regular_file(a.substr(eq + 1)));  // every hook is a file we ship
        }
    }
    plan.mirror = "http://deb.debian.org/debian";
    CHECK(image::mmdebstrap_argv(plan).back() == "http://deb.debian.org/debian");
}

TEST_CASE(
    "path filters reach dpkg in order: excludes, then the includes that take files back", "[image][build]") {
    image::BootstrapPlan plan;
    plan.suite = "bookworm";
    plan.architecture = "amd64";
    plan.packages = {"systemd"};
    plan.hooks_dir = STORMNODE_SOURCE_DIR "/image/hooks";
    plan.output = "/tmp/rootfs.tar";
    plan.path_exclude = {"/usr/share/doc/*", "/usr/share/man/*"};
    plan.path_include = {"/usr/share/doc/*/copyright"};
    const auto argv = image::mmdebstrap_argv(plan);
    std::vector<std::string> dpkg;
    std::copy_if(argv.begin(), argv.end(), std::back_inserter(dpkg), [](const std::string& a) {
        return a.rfind("--dpkgopt=", 0) == 0;
    });
    CHECK(
        dpkg == std::vector<std::string>{
                    "--dpkgopt=path-exclude=/usr/share/doc/*",
                    "--dpkgopt=path-exclude=/usr/share/man/*",
                    "--dpkgopt=path-include=/usr/share/doc/*/copyright"});
}

TEST_CASE("path filters are absolute globs; an include needs an exclude", "[image][manifest]") {
    Diagnostics d("m.yaml");
    const auto m = image::parse_manifest(
        "version: '1'\nbase_packages: [systemd]\npath_exclude: [/usr/share/doc/*, usr/share/man/*, '/a b', "
        "/*]\n",
        "m.yaml",
        kRoles,
        d);
    const auto msgs = messages(d);
    REQUIRE(msgs.size() == 3);
    CHECK(
        msgs[0].rfind("m.yaml:3:34: 'path_exclude': 'usr/share/man/*' must be an absolute path glob", 0) ==
        0);
    CHECK(msgs[1].rfind("m.yaml:3:51: 'path_exclude': '/a b' must be an absolute", 0) == 0);
    CHECK(msgs[2].rfind("m.yaml:3:59: 'path_exclude': '/*' would leave every file out", 0) == 0);

    Diagnostics d2("m.yaml");
    (void)image::parse_manifest(
        "version: '1'\nbase_packages: [systemd]\npath_include: [/usr/share/doc/*/copyright]\n",
        "m.yaml",
        kRoles,
        d2);
    REQUIRE(d2.items().size() == 1);
    CHECK(d2.items()[0].to_string().rfind("m.yaml:3:15: 'path_include' only takes back", 0) == 0);

    const auto def = image::load_valid_manifest(STORMNODE_SOURCE_DIR "/image/default.yaml", kRoles);
    CHECK(
        std::find(def.path_exclude.begin(), def.path_exclude.end(), "/usr/share/doc/*") !=
        def.path_exclude.end());
    CHECK(def.path_include == std::vector<std::string>{"/usr/share/doc/*/copyright"});
}

TEST_CASE("the rootfs cache key follows the package set and the hooks", "[image][build]") {
    stormnode::TempDir dir("key");
    std::filesystem::copy(STORMNODE_SOURCE_DIR "/image/hooks", dir.path() / "hooks");
    image::Manifest m;
    m.sha256 = image::sha256_hex("manifest");
    image::BootstrapPlan plan;
    plan.packages = {"systemd"};
    plan.hooks_dir = dir.path() / "hooks";
    const auto key = image::rootfs_cache_key(m, plan);
    CHECK(image::rootfs_cache_key(m, plan) == key);
    plan.packages.push_back("less");
    const auto key2 = image::rootfs_cache_key(m, plan);
    CHECK(key2 != key);
    stormnode::write_file_atomic(dir.path() / "hooks" / "customize-40-scrub", "#!/bin/sh\n", 0755);
    CHECK(image::rootfs_cache_key(m, plan) != key2);
}
