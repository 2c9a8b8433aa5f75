#include <stormnode/cluster/node_config.hpp>
#include <stormnode/common/error.hpp>
#include <stormnode/common/temp_dir.hpp>

#include <catch2/catch.hpp>
#include <sys/stat.h>

using namespace stormnode;
using namespace stormnode::roles;

namespace {

NodeConfig node_from(TempDir& dir, const std::string& node, const std::string& cluster = {}) {
    write_file_atomic(dir.path() / "node.yaml", node);
    if (!cluster.empty()) {
        write_file_atomic(dir.path() / "cluster.yaml", cluster);
    }
    return load_node_config(dir.path() / "node.yaml", dir.path() / "cluster.yaml");
}

}  // namespace

TEST_CASE("node.yaml gives roles, hostname, zone, features and variables", "[node_config][unit]") {
    TempDir dir;
    const auto node = node_from(
        dir,
        "roles: [controller, monitor]\nhostname: ctl1\nzone: rack-a\n"
        "features: [telemetry]\nvariables: {mtu: 9000}\nnetwork: {interface: eno1}\n");
    CHECK(node.roles == parse_role_specs({"controller", "monitor"}));
    CHECK(node.hostname == "ctl1");
    CHECK(node.zone == "rack-a");
    CHECK(node.features == std::set<std::string>{"telemetry"});
    CHECK(node.variables.at("mtu") == "9000");
}

TEST_CASE("a bad node.yaml is reported at file:line:col", "[node_config][unit]") {
    TempDir dir;
    try {
        node_from(dir, "hostname: ctl1\nroles: controller\n");
        FAIL("no error");
    } catch (const Error& e) {
        CHECK(e.code() == Errc::invalid_input);
        CHECK_THAT(e.what(), Catch::Contains("node.yaml:2:8"));
        CHECK_THAT(e.what(), Catch::Contains("roles"));
    }
}

TEST_CASE("templates render node and cluster data without HTML escaping", "[node_config][unit]") {
    TempDir dir;
    const auto node = node_from(
        dir,
        "roles: [db]\nhostname: db1\nvariables: {pool: \"a&b\"}\n",
        "name: c1\nmembers:\n  - {hostname: db1, address: 10.0.0.1, roles: [db]}\n"
        "  - {hostname: db2, address: 10.0.0.2, roles: [db]}\n");
    const auto text = render_template(
        "[mysqld]\nwsrep_node_name={{hostname}}\npool={{variables.pool}}\n"
        "wsrep_cluster_address=gcomm://{{#cluster.members.db}}{{address}},{{/cluster.members.db}}\n"
        "{{#has_role.db}}db=yes{{/has_role.db}}{{#has_role.compute}}compute=yes{{/has_role.compute}}\n",
        "galera.cnf",
        node,
        node.roles);
    CHECK(
        text ==
        "[mysqld]\nwsrep_node_name=db1\npool=a&b\n"
        "wsrep_cluster_address=gcomm://10.0.0.1,10.0.0.2,\ndb=yes\n");
}

TEST_CASE(
    "render_config writes every file with its mode, or none on a template error", "[node_config][unit]") {
    TempDir dir;
    const auto node = node_from(dir, "roles: [quorum]\nhostname: q1\n");
    std::filesystem::create_directories(dir.path() / "templates");
    write_file_atomic(dir.path() / "templates" / "good.conf", "name={{hostname}}\n");
    write_file_atomic(dir.path() / "templates" / "bad.conf", "name={{#hostname}}\n");
    const auto root = dir.path() / "root";

    ConfigFile good{"/etc/q/good.conf", "good.conf", "0640", {}};
    ConfigFile bad{"/etc/q/bad.conf", "bad.conf", "0644", {}};
    CHECK_THROWS_WITH(
        render_config({good, bad}, node, node.roles, dir.path() / "templates", root),
        Catch::Contains("template 'bad.conf'"));
    CHECK_FALSE(std::filesystem::exists(root / "etc/q/good.conf"));

    render_config({good}, node, node.roles, dir.path() / "templates", root);
    CHECK(read_file(root / "etc/q/good.conf") == "name=q1\n");
    struct stat st {};
    REQUIRE(::stat((root / "etc/q/good.conf").c_str(), &st) == 0);
    CHECK((st.st_mode & 07777) == 0640);

    ConfigFile missing{"/etc/q/x.conf", "nope.conf", "0644", {}};
    CHECK_THROWS_AS(render_config({missing}, node, node.roles, dir.path() / "templates", root), Error);
}

TEST_CASE(
    "the kernel settings among a role's files are the rendered /etc/sysctl.d/*.conf", "[node_config][unit]") {
    const std::vector<ConfigFile> files{
        {"/etc/sysctl.d/60-stormnode-lb.conf", "lb/sysctl.conf.mustache", "0644", {}},
        {"/etc/haproxy/haproxy.cfg", "lb/haproxy.cfg.mustache", "0644", {}},
        {"/etc/sysctl.d/README", "x.mustache", "0644", {}},
        {"/etc/sysctl.d/99-kept.conf", "", "0644", {}},  // no template: not rendered, not loaded
        {"/etc/sysctl.d/sub/61.conf", "y.mustache", "0644", {}}};
    CHECK(
        sysctl_files(files, "/") == std::vector<std::filesystem::path>{"/etc/sysctl.d/60-stormnode-lb.conf"});
    CHECK(
        sysctl_files(files, "/tmp/r") ==
        std::vector<std::filesystem::path>{"/tmp/r/etc/sysctl.d/60-stormnode-lb.conf"});
}

TEST_CASE(
    "node.yaml's variants become name:variant role specs, as firstboot writes them", "[node_config][unit]") {
    TempDir dir;
    const auto node = node_from(dir, "roles: [db, monitor]\nvariants: {db: galera}\nhostname: db1\n");
    CHECK(node.roles == std::vector<RoleSpec>{{"db", "galera"}, {"monitor", ""}});
    CHECK(to_strings(node.roles) == std::vector<std::string>{"db:galera", "monitor"});
    const auto text = render_template("{{#has_role.db}}db{{/has_role.db}}", "t", node, node.roles);
    CHECK(text == "db");
    // Templates see node.yaml as written, from the same read as the fields above.
    CHECK(node.document["variants"]["db"].as<std::string>() == "galera");
    CHECK(render_template("{{#roles}}{{.}} {{/roles}}", "t", node, node.roles) == "db:galera monitor ");
}

TEST_CASE(
    "node.yaml keys storm-firstboot does not know are refused at file:line:col", "[node_config][unit]") {
    TempDir dir;
    CHECK_THROWS_WITH(
        node_from(dir, "roles: [db]\nhostnam: db1\n"),
        Catch::Contains("node.yaml:2:1") && Catch::Contains("hostnam"));
}
