// storm-firstboot on a temporary root: a fake /etc/passwd, /proc/cmdline and /sys/class/net, the real
// catalog, the real ssh-keygen and openssl, and an inventory served over HTTP on 127.0.0.1.
#include <stormnode/common/error.hpp>
#include <stormnode/common/subprocess.hpp>
#include <stormnode/common/temp_dir.hpp>
#include <stormnode/firstboot/curl_fetcher.hpp>
#include <stormnode/firstboot/firstboot.hpp>

#include <catch2/catch.hpp>
#include <httplib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <map>
#include <thread>

namespace fs = std::filesystem;
using namespace stormnode;
using namespace stormnode::firstboot;

namespace {

const fs::path kCatalog = fs::path(STORMNODE_SOURCE_DIR) / "roles/catalog";

struct FileInfo {
    std::string content;
    unsigned mode = 0;
    unsigned uid = 0;
    unsigned gid = 0;
    struct timespec mtime {};
    bool operator==(const FileInfo& o) const {
        return content == o.content && mode == o.mode && uid == o.uid && gid == o.gid &&
               mtime.tv_sec == o.mtime.tv_sec && mtime.tv_nsec == o.mtime.tv_nsec;
    }
};

// A node root as the image leaves it: accounts of the role packages, no identity, no network.
class FakeNode {
public:
    FakeNode() {
        write(
            "etc/passwd",
            "root:x:0:0:root:/root:/bin/bash\n"
            "www-data:x:33:33:www-data:/var/www:/usr/sbin/nologin\n"
            "rabbitmq:x:120:130::/var/lib/rabbitmq:/usr/sbin/nologin\n"
            "keystone:x:121:131::/var/lib/keystone:/usr/sbin/nologin\n"
            "coroqnetd:x:122:132::/etc/corosync/qnetd:/usr/sbin/nologin\n"
            "mysql:x:123:133::/nonexistent:/bin/false\n"
            "postgres:x:124:134::/var/lib/postgresql:/bin/bash\n");
        write("etc/group", "root:x:0:\nssl-cert:x:110:postgres\n");
        write("etc/machine-id", "");  // as the image ships it
        write("sys/class/net/lo/address", "00:00:00:00:00:00\n");
        write("sys/class/net/ens3/address", "52:54:00:aa:bb:01\n");
        write("sys/class/net/ens4/address", "52:54:00:aa:bb:02\n");
        cmdline("BOOT_IMAGE=/vmlinuz ro quiet");
    }
    [[nodiscard]] const fs::path& root() const { return dir_.path(); }
    void write(const std::string& rel, const std::string& content) const {
        fs::create_directories((root() / rel).parent_path());
        write_file_atomic(root() / rel, content, 0644);
    }
    void cmdline(const std::string& text) const { write("proc/cmdline", text + "\n"); }
    [[nodiscard]] bool has(const std::string& rel) const { return fs::exists(root() / rel); }
    [[nodiscard]] std::string read(const std::string& rel) const { return read_file(root() / rel); }
    [[nodiscard]] FileInfo info(const std::string& rel) const {
        struct stat st {};
        REQUIRE(::lstat((root() / rel).c_str(), &st) == 0);
        FileInfo i{
            S_ISREG(st.st_mode) ? read(rel) : std::string(),
            st.st_mode & 07777U,
            st.st_uid,
            st.st_gid,
            st.st_mtim};
        return i;
    }
    // Every regular file under etc/ and var/, with what a user would compare.
    [[nodiscard]] std::map<std::string, FileInfo> snapshot() const {
        std::map<std::string, FileInfo> files;
        for (const auto& e : fs::recursive_directory_iterator(root())) {
            const auto rel = fs::relative(e.path(), root()).string();
            if (e.is_regular_file() && rel != "var/lib/stormnode/firstboot.state") {
                files[rel] = info(rel);
            }
        }
        return files;
    }
    [[nodiscard]] Report run(Fetcher& fetcher) const {
        Options options;
        options.root = root();
        options.catalog_dir = kCatalog;
        options.set_owner = ::geteuid() == 0;
        return run_firstboot(options, fetcher);
    }
    [[nodiscard]] Report run() const {
        CurlFetcher fetcher(std::chrono::seconds(10));
        return run(fetcher);
    }

private:
    TempDir dir_{"fb-root"};
};

std::string failures(const Report& r) {
    std::string text;
    for (const auto& f : r.failures) {
        text += f + "\n";
    }
    return text;
}

const Action* action(const Report& r, const std::string& what) {
    for (const auto& a : r.actions) {
        if (a.what == what) {
            return &a;
        }
    }
    return nullptr;
}

// An inventory server on an ephemeral loopback port, for the length of a test.
class InventoryServer {
public:
    explicit InventoryServer(std::string body) : body_(std::move(body)) {
        server_.Get("/rack.yaml", [this](const httplib::Request&, httplib::Response& res) {
            ++hits_;
            res.set_content(body_, "application/yaml");
        });
        port_ = server_.bind_to_any_port("127.0.0.1");  // listening from here on: no race with the client
        REQUIRE(port_ > 0);
        thread_ = std::thread([this] { server_.listen_after_bind(); });
    }
    InventoryServer(const InventoryServer&) = delete;
    InventoryServer& operator=(const InventoryServer&) = delete;
    ~InventoryServer() {
        server_.stop();
        thread_.join();
    }
    [[nodiscard]] std::string url(const std::string& path = "/rack.yaml") const {
        return "http://127.0.0.1:" + std::to_string(port_) + path;
    }
    [[nodiscard]] int hits() const { return hits_; }

private:
    std::string body_;
    httplib::Server server_;
    int port_ = 0;
    std::atomic<int> hits_{0};
    std::thread thread_;
};

}  // namespace

TEST_CASE(
    "a controller named on the kernel command line gets its identity and secrets", "[firstboot][component]") {
    const FakeNode node;
    node.cmdline("BOOT_IMAGE=/vmlinuz stormnode.role=controller quiet");
    const Report report = node.run();
    INFO(failures(report));
    REQUIRE(report.ok());
    CHECK(report.assignment.source == RoleSource::kernel_cmdline);

    // machine-id: 32 hex digits, 0444
    const auto id = node.info("etc/machine-id");
    CHECK(id.content.size() == 33);
    CHECK(id.mode == 0444);
    // hostname made from it, since nobody named one
    CHECK(node.read("etc/hostname") == "stormnode-" + id.content.substr(0, 8) + "\n");
    // DHCP on every Ethernet link
    CHECK(
        node.read("etc/systemd/network/10-stormnode-ethernet.network").find("DHCP=yes") != std::string::npos);
    // node.yaml says what storm-roled will run
    CHECK(node.read("etc/stormnode/node.yaml").find("roles: [controller]") != std::string::npos);
    // ssh host keys: private 0600, public 0644, all three types, real keys
    for (const char* type : {"rsa", "ecdsa", "ed25519"}) {
        const std::string key = std::string("etc/ssh/ssh_host_") + type + "_key";
        CHECK(node.info(key).mode == 0600);
        CHECK(node.info(key + ".pub").mode == 0644);
        CHECK(run({.argv = {"ssh-keygen", "-l", "-f", (node.root() / key).string()}}).ok());
    }
    // snakeoil: root:ssl-cert 0640 key, a certificate that matches it
    const auto snake = node.info("etc/ssl/private/ssl-cert-snakeoil.key");
    CHECK(snake.mode == 0640);
    CHECK(node.has("etc/ssl/certs/ssl-cert-snakeoil.pem"));
    // the controller's own: modes from the catalog, owners from the node's passwd (not this machine's)
    const auto cookie = node.info("var/lib/rabbitmq/.erlang.cookie");
    CHECK(cookie.mode == 0400);
    CHECK(cookie.content.size() == 20);
    CHECK(cookie.content.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZ") == std::string::npos);
    const auto fernet = node.info("etc/keystone/fernet-keys");
    CHECK(fernet.mode == 0700);
    CHECK(node.info("etc/keystone/fernet-keys/0").content.size() == 44);
    CHECK(node.info("etc/keystone/fernet-keys/1").mode == 0600);
    CHECK(node.info("var/lib/openstack-dashboard/secret-key/.secret_key_store").mode == 0600);
    if (::geteuid() == 0) {
        CHECK(snake.gid == 110);
        CHECK((cookie.uid == 120 && cookie.gid == 130));
        CHECK((fernet.uid == 121 && fernet.gid == 131));
        CHECK(node.info("etc/keystone/fernet-keys/0").uid == 121);
        CHECK(node.info("var/lib/openstack-dashboard/secret-key/.secret_key_store").uid == 33);
    } else {
        REQUIRE(action(report, "erlang-cookie"));
        CHECK_THAT(
            action(report, "erlang-cookie")->note, Catch::Contains("owner rabbitmq (uid 120) not applied"));
    }
    // the stamp lists what was done
    const auto stamp = node.read("var/lib/stormnode/firstboot.done");
    CHECK(stamp.find("source: kernel-cmdline") != std::string::npos);
    CHECK(
        stamp.find("{what: erlang-cookie, path: /var/lib/rabbitmq/.erlang.cookie, result: created") !=
        std::string::npos);
    CHECK(node.read("var/lib/stormnode/firstboot.state").find("state: assigned") != std::string::npos);
}

TEST_CASE(
    "a second run does nothing, and a run without the stamp changes nothing that exists",
    "[firstboot][component]") {
    const FakeNode node;
    node.cmdline("stormnode.role=compute,storage");
    REQUIRE(node.run().ok());
    const auto before = node.snapshot();
    CHECK(before.contains("etc/iscsi/initiatorname.iscsi"));
    CHECK(
        before.at("etc/iscsi/initiatorname.iscsi")
            .content.find("InitiatorName=iqn.2004-10.com.stormclouds:stormnode-") != std::string::npos);

    const Report again = node.run();
    CHECK(again.already_done);
    CHECK(again.actions.empty());
    CHECK(node.snapshot() == before);

    // Without the stamp (as after a failure) every step runs, finds its work done and keeps it.
    fs::remove(node.root() / "var/lib/stormnode/firstboot.done");
    const Report rerun = node.run();
    INFO(failures(rerun));
    REQUIRE(rerun.ok());
    for (const auto& a : rerun.actions) {
        INFO(a.what);
        CHECK(a.outcome == Outcome::kept);
    }
    auto after = node.snapshot();
    after.erase("var/lib/stormnode/firstboot.done");
    auto expected = before;
    expected.erase("var/lib/stormnode/firstboot.done");
    CHECK(after == expected);
}

TEST_CASE(
    "an existing secret is never overwritten; a placeholder IQN is replaced", "[firstboot][component]") {
    const FakeNode node;
    node.cmdline("stormnode.role=controller,compute");
    node.write("var/lib/rabbitmq/.erlang.cookie", "CLUSTERCOOKIEFROMOPS");
    node.write("etc/iscsi/initiatorname.iscsi", "GenerateName=yes\n");
    node.write("etc/hostname", "rack3-node7\n");
    const Report report = node.run();
    INFO(failures(report));
    REQUIRE(report.ok());
    CHECK(node.read("var/lib/rabbitmq/.erlang.cookie") == "CLUSTERCOOKIEFROMOPS");
    CHECK(node.info("var/lib/rabbitmq/.erlang.cookie").mode == 0400);  // but its mode is put right
    CHECK(action(report, "erlang-cookie")->outcome == Outcome::kept);
    CHECK(
        node.read("etc/iscsi/initiatorname.iscsi")
            .find("InitiatorName=iqn.2004-10.com.stormclouds:rack3-node7-") != std::string::npos);
    CHECK(report.hostname == "rack3-node7");  // the image's hostname stays when nobody names another
}

TEST_CASE(
    "a failed step leaves no stamp, and the retry redoes only what is missing", "[firstboot][component]") {
    const FakeNode node;
    node.cmdline("stormnode.role=quorum");
    // corosync-qnetd-certutil is not in this root: the qnetd CA cannot be made.
    const Report failed = node.run();
    REQUIRE_FALSE(failed.ok());
    REQUIRE(failed.failures.size() == 1);
    CHECK_THAT(
        failed.failures[0],
        Catch::Contains("qnetd-nssdb (/etc/corosync/qnetd/nssdb)") &&
            Catch::Contains("corosync-qnetd-certutil is not in") && Catch::Contains("corosync-qnetd"));
    CHECK_FALSE(node.has("var/lib/stormnode/firstboot.done"));
    CHECK(node.read("var/lib/stormnode/firstboot.state").find("state: failed") != std::string::npos);
    // everything else is done
    CHECK(node.has("etc/ssh/ssh_host_ed25519_key"));
    CHECK(node.has("etc/stormnode/node.yaml"));
    const auto before = node.snapshot();

    // The operator makes the database (or installs the tool); the next run completes.
    node.write("etc/corosync/qnetd/nssdb/cert9.db", "nss");
    const Report retried = node.run();
    INFO(failures(retried));
    REQUIRE(retried.ok());
    CHECK(node.has("var/lib/stormnode/firstboot.done"));
    auto after = node.snapshot();
    for (const auto& [path, info] : before) {
        INFO(path);
        CHECK(after.at(path) == info);  // not one existing file rewritten
    }
    CHECK(node.info("etc/corosync/qnetd/nssdb").mode == 0770);
}

TEST_CASE("an owner missing from the node's passwd is a failure naming that file", "[firstboot][component]") {
    const FakeNode node;
    node.write("etc/passwd", "root:x:0:0:root:/root:/bin/bash\n");
    node.cmdline("stormnode.role=controller");
    const Report report = node.run();
    CHECK_FALSE(report.ok());
    CHECK_THAT(
        failures(report),
        Catch::Contains(
            "owner 'rabbitmq' of /var/lib/rabbitmq/.erlang.cookie is not a user in " +
            (node.root() / "etc/passwd").string()));
    CHECK_FALSE(node.has("var/lib/rabbitmq/.erlang.cookie"));
    CHECK_FALSE(node.has("var/lib/stormnode/firstboot.done"));
}

TEST_CASE("db roles leave their datadir to role init, with a marker", "[firstboot][component]") {
    const FakeNode node;
    node.cmdline("stormnode.role=db:active-passive");
    const Report report = node.run();
    INFO(failures(report));
    REQUIRE(report.ok());
    CHECK(action(report, "postgresql-cluster")->outcome == Outcome::deferred);
    CHECK(node.info("var/lib/postgresql/15/main").mode == 0700);
    CHECK(
        node.read("var/lib/stormnode/role-init/postgresql-cluster")
            .find("path: /var/lib/postgresql/15/main") != std::string::npos);
    CHECK(node.info("etc/corosync/authkey").content.size() == 256);
    CHECK(node.info("etc/corosync/authkey").mode == 0400);
}

TEST_CASE("with no role from anywhere the node is discovered: identity, no stamp", "[firstboot][component]") {
    const FakeNode node;
    const Report report = node.run();
    INFO(failures(report));
    REQUIRE(report.ok());
    CHECK(report.discovered());
    CHECK(node.has("etc/ssh/ssh_host_ed25519_key"));  // reachable over ssh
    CHECK_FALSE(node.has("etc/stormnode/node.yaml"));
    CHECK_FALSE(node.has("var/lib/stormnode/firstboot.done"));  // the next boot asks again
    CHECK(node.read("var/lib/stormnode/firstboot.state").find("state: discovered") != std::string::npos);
}

TEST_CASE(
    "node.yaml from the installer gives the roles, the hostname and a static network",
    "[firstboot][component]") {
    const FakeNode node;
    node.write(
        "etc/stormnode/node.yaml",
        "roles: [network]\nhostname: net-1\nnetwork: {interface: ens3, mode: static, address: 10.0.0.9/24, "
        "gateway: 10.0.0.1, dns: [10.0.0.2]}\n");
    const auto installed = node.read("etc/stormnode/node.yaml");
    const Report report = node.run();
    INFO(failures(report));
    REQUIRE(report.ok());
    CHECK(report.assignment.source == RoleSource::node_file);
    CHECK(node.read("etc/hostname") == "net-1\n");
    CHECK(
        node.read("etc/systemd/network/10-stormnode-ens3.network")
            .find("Address=10.0.0.9/24\nGateway=10.0.0.1\n") != std::string::npos);
    CHECK(node.read("etc/stormnode/node.yaml") == installed);  // not rewritten
    CHECK(node.read("etc/openvswitch/system-id.conf").size() == 37);
}

TEST_CASE("the inventory is fetched over HTTP and matched by MAC", "[firstboot][component]") {
    InventoryServer server(
        "52:54:00:aa:bb:02:\n"
        "  hostname: comp-12\n"
        "  zone: rack-2\n"
        "  roles: [compute]\n"
        "  network: {mac: \"52:54:00:aa:bb:02\", mode: static, address: 10.2.0.12/16, gateway: 10.2.0.1}\n"
        "52:54:00:ff:ff:ff: {hostname: other, roles: [storage]}\n");
    const FakeNode node;
    node.cmdline("ro stormnode.inventory=" + server.url());
    const Report report = node.run();
    INFO(failures(report));
    REQUIRE(report.ok());
    CHECK(server.hits() == 1);
    CHECK(report.assignment.source == RoleSource::inventory);
    CHECK(node.read("etc/hostname") == "comp-12\n");
    const auto yaml = node.read("etc/stormnode/node.yaml");
    CHECK(yaml.find("roles: [compute]") != std::string::npos);
    CHECK(yaml.find("zone: rack-2") != std::string::npos);
    CHECK(
        node.read("etc/systemd/network/10-stormnode-525400aabb02.network")
            .find("MACAddress=52:54:00:aa:bb:02\n\n[Network]\nAddress=10.2.0.12/16\n") != std::string::npos);
    CHECK(node.has("etc/iscsi/initiatorname.iscsi"));
}

TEST_CASE(
    "an inventory that cannot be fetched is a failure, not a discovered node", "[firstboot][component]") {
    InventoryServer server("{}\n");
    const FakeNode node;
    node.cmdline("stormnode.inventory=" + server.url("/missing.yaml"));
    const Report report = node.run();
    REQUIRE_FALSE(report.ok());
    CHECK_THAT(failures(report), Catch::Contains("choosing the roles") && Catch::Contains("HTTP status 404"));
    CHECK_FALSE(node.has("var/lib/stormnode/firstboot.done"));
    CHECK(node.has("etc/ssh/ssh_host_ed25519_key"));  // identity regardless
}

TEST_CASE("storm-firstboot tells the console: no role, failure, done", "[firstboot][component]") {
    const FakeNode node;
    const TempDir out("fb-console");
    const auto console = out.path() / "console";
    write_file_atomic(console, "");
    auto firstboot = [&] {
        return run(
            {.argv =
                 {STORM_FIRSTBOOT_PATH,
                  "--root",
                  node.root().string(),
                  "--catalog",
                  kCatalog.string(),
                  "--console",
                  console.string()},
             .env = {{"JOURNAL_STREAM", ""}}});
    };
    auto r = firstboot();
    CHECK(r.exit_status == 0);
    CHECK_THAT(
        read_file(console), Catch::Contains("storm-firstboot: no role assigned: waiting for the console"));

    node.cmdline("stormnode.role=nosuchrole");
    r = firstboot();
    CHECK(r.exit_status == 1);
    CHECK_THAT(
        read_file(console),
        Catch::Contains("FAILED: choosing the roles") && Catch::Contains("unknown role 'nosuchrole'"));
    CHECK_THAT(r.err, Catch::Contains("unknown role 'nosuchrole'"));
    CHECK_FALSE(node.has("var/lib/stormnode/firstboot.done"));

    node.cmdline("stormnode.role=storage");
    r = firstboot();
    CHECK(r.exit_status == 0);
    CHECK_THAT(read_file(console), Catch::Contains("roles storage from kernel-cmdline"));
    CHECK(node.has("var/lib/stormnode/firstboot.done"));
    r = firstboot();
    CHECK(r.exit_status == 0);
    CHECK_THAT(r.err, Catch::Contains("first boot already done"));
}

TEST_CASE("a snakeoil key without its certificate is certified, not replaced", "[firstboot][component]") {
    const FakeNode node;
    node.write("etc/hostname", "web-3\n");
    const auto key = node.root() / "etc/ssl/private/ssl-cert-snakeoil.key";
    fs::create_directories(key.parent_path());
    REQUIRE(run({.argv = {"openssl", "genpkey", "-algorithm", "ed25519", "-out", key.string()}}).ok());
    const auto original = node.read("etc/ssl/private/ssl-cert-snakeoil.key");
    const Report report = node.run();
    INFO(failures(report));
    REQUIRE(report.ok());
    CHECK(node.read("etc/ssl/private/ssl-cert-snakeoil.key") == original);
    CHECK(node.info("etc/ssl/private/ssl-cert-snakeoil.key").mode == 0640);
    const auto cert = (node.root() / "etc/ssl/certs/ssl-cert-snakeoil.pem").string();
    const auto subject = run({.argv = {"openssl", "x509", "-noout", "-subject", "-in", cert}});
    CHECK_THAT(subject.out, Catch::Contains("CN = web-3"));
    // the certificate is for that key
    const auto cert_key = run({.argv = {"openssl", "x509", "-noout", "-pubkey", "-in", cert}});
    const auto key_pub = run({.argv = {"openssl", "pkey", "-pubout", "-in", key.string()}});
    CHECK(cert_key.out == key_pub.out);
}

TEST_CASE("a machine-id that is already there is kept", "[firstboot][component]") {
    const FakeNode node;
    node.write("etc/machine-id", "0123456789abcdef0123456789abcdef\n");
    const Report report = node.run();
    REQUIRE(report.ok());
    CHECK(node.read("etc/machine-id") == "0123456789abcdef0123456789abcdef\n");
    CHECK(report.hostname == "stormnode-01234567");
}
