// What pxe serve hands to dnsmasq and to booting machines, and how it reads them back.
#include <stormnode/catalog/catalog.hpp>
#include <stormnode/pxe/pxe_build.hpp>
#include <stormnode/pxe/pxe_report.hpp>
#include <stormnode/pxe/pxe_serve.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace fs = std::filesystem;
using namespace stormnode;
using namespace stormnode::iso;

namespace {

Inventory rack() {
    static const auto catalog =
        roles::load_valid_catalog(fs::path(STORMNODE_SOURCE_DIR) / "roles" / "catalog");
    Diagnostics diags;
    auto inv =
        load_inventory(fs::path(STORMNODE_TEST_DATA) / "inventory" / "good" / "rack.yaml", catalog, diags);
    INFO(diags.to_string());
    REQUIRE(inv);
    return *inv;
}

bool has_line(const std::string& text, const std::string& line) {
    std::istringstream in(text);
    std::string l;
    while (std::getline(in, l)) {
        if (l == line) {
            return true;
        }
    }
    return false;
}

}  // namespace

TEST_CASE("dnsmasq gets a range, one dhcp-host per MAC and a boot file per client kind", "[pxe][dnsmasq]") {
    const auto conf = render_dnsmasq_conf(rack(), {"br0", false, "/srv/pxe", "/run/x/leases", 80});
    INFO(conf);
    CHECK(has_line(conf, "port=0"));
    CHECK(has_line(conf, "interface=br0"));
    CHECK(has_line(conf, "tftp-root=/srv/pxe"));
    CHECK(has_line(conf, "dhcp-range=10.10.0.100,10.10.0.199,255.255.255.0,1h"));
    CHECK(has_line(conf, "dhcp-host=52:54:00:00:00:01,10.10.0.11,db-1"));
    CHECK(has_line(conf, "dhcp-host=52:54:00:00:00:03,10.10.0.13,quorum-1"));
    CHECK(has_line(conf, "dhcp-boot=tag:ipxe,http://10.10.0.1/boot.ipxe"));
    CHECK(has_line(conf, "dhcp-boot=tag:!ipxe,tag:efi64,grub/x86_64-efi/core.efi,,10.10.0.1"));
    CHECK(has_line(conf, "dhcp-boot=tag:!ipxe,tag:!efi64,grub/i386-pc/core.0,,10.10.0.1"));
    CHECK(conf.find("proxy") == std::string::npos);
}

TEST_CASE("proxy-DHCP hands out no addresses, only boot information", "[pxe][dnsmasq]") {
    const auto conf = render_dnsmasq_conf(rack(), {"br0", true, "/srv/pxe", "/run/x/leases", 8080});
    INFO(conf);
    CHECK(has_line(conf, "dhcp-range=10.10.0.0,proxy,255.255.255.0"));
    CHECK(conf.find("dhcp-host=") == std::string::npos);
    CHECK(conf.find("10.10.0.100") == std::string::npos);
    CHECK(has_line(conf, "dhcp-boot=tag:ipxe,http://10.10.0.1:8080/boot.ipxe"));
    CHECK(conf.find("pxe-service=tag:!ipxe,x86PC,") != std::string::npos);
    CHECK(conf.find("pxe-service=tag:!ipxe,X86-64_EFI,") != std::string::npos);
}

TEST_CASE("a known MAC boots to the unattended install with its own answer file", "[pxe][boot]") {
    const BootParams p{"10.10.0.1", "52:54:00:00:00:01", {}};
    const auto args = kernel_args(BootAction::install, p);
    CHECK(args.find("root=live:http://10.10.0.1/squashfs.img") != std::string::npos);
    CHECK(args.find("rd.live.overlay.overlayfs=1") != std::string::npos);
    CHECK(args.find("ip=dhcp rd.neednet=1") != std::string::npos);
    CHECK(args.find("stormnode.install=unattended") != std::string::npos);
    CHECK(
        args.find("stormnode.answers=http://10.10.0.1/answers/52:54:00:00:00:01.yaml") != std::string::npos);
    CHECK(args.find("stormnode.report=http://10.10.0.1/report") != std::string::npos);
    CHECK(report_url_from_cmdline("BOOT_IMAGE=x " + args) == "http://10.10.0.1/report");

    const auto live = kernel_args(BootAction::live, p);
    CHECK(live.find("stormnode.install") == std::string::npos);
    CHECK(live.find("stormnode.answers") == std::string::npos);

    const auto grub = render_grub_entry(BootAction::install, p);
    CHECK(grub.find("linux (http,10.10.0.1)/vmlinuz root=live:") != std::string::npos);
    CHECK(grub.find("initrd (http,10.10.0.1)/initrd.img") != std::string::npos);
    const auto ipxe = render_ipxe_entry(BootAction::install, p);
    CHECK(ipxe.rfind("#!ipxe\n", 0) == 0);
    CHECK(ipxe.find("kernel http://10.10.0.1/vmlinuz initrd=initrd.img root=live:") != std::string::npos);
    CHECK(ipxe.find("\nboot\n") != std::string::npos);
    CHECK(render_grub_entry(BootAction::local, p).find("exit") != std::string::npos);
    CHECK(render_ipxe_entry(BootAction::local, p).find("exit") != std::string::npos);
}

TEST_CASE("the static boot configs ask the server per MAC and fall back to live", "[pxe][boot]") {
    const auto grub = render_grub_cfg(80);
    INFO(grub);
    CHECK(grub.find("insmod http") != std::string::npos);
    CHECK(
        grub.find("configfile (http,${net_default_server})/boot/grub/${net_default_mac}.cfg") !=
        std::string::npos);
    CHECK(grub.find("root=live:http://${net_default_server}/squashfs.img") != std::string::npos);
    CHECK(grub.find("stormnode.install") == std::string::npos);  // the fallback never installs
    const auto ipxe = render_ipxe_script(8080);
    INFO(ipxe);
    CHECK(ipxe.rfind("#!ipxe\n", 0) == 0);
    CHECK(
        ipxe.find("chain http://${next-server}:8080/boot/ipxe/${mac}.ipxe || goto live") !=
        std::string::npos);
    CHECK(ipxe.find("stormnode.install") == std::string::npos);
}

TEST_CASE("dnsmasq's DHCP log lines become events", "[pxe][dnsmasq]") {
    auto e =
        parse_dnsmasq_line("dnsmasq-dhcp[123]: 2946513150 DHCPACK(br0) 10.10.0.11 52:54:00:00:00:0A db-1");
    REQUIRE(e);
    CHECK(e->kind == "DHCPACK");
    CHECK(e->ip == "10.10.0.11");
    CHECK(e->mac == "52:54:00:00:00:0a");
    CHECK(e->hostname == "db-1");
    e = parse_dnsmasq_line("dnsmasq-dhcp: DHCPDISCOVER(br0) 52:54:00:00:00:01");
    REQUIRE(e);
    CHECK(e->kind == "DHCPDISCOVER");
    CHECK(e->ip.empty());
    CHECK_FALSE(parse_dnsmasq_line("dnsmasq-dhcp: 2946513150 vendor class: PXEClient:Arch:00000"));
    CHECK_FALSE(parse_dnsmasq_line("dnsmasq-tftp: sent /srv/pxe/grub/i386-pc/core.0 to 10.10.0.11"));
}

TEST_CASE("the node table follows DHCP, boot configs, HTTP and reports", "[pxe][table]") {
    NodeTable table(rack());
    auto nodes = table.snapshot();
    REQUIRE(nodes.size() == 3);
    CHECK(nodes[0].hostname == "db-1");
    CHECK(nodes[0].state == NodeState::seen);

    table.dhcp({"DHCPDISCOVER", "", "52:54:00:00:00:99", ""});  // an unknown machine
    table.dhcp({"DHCPACK", "10.10.0.150", "52:54:00:00:00:99", "localhost"});
    table.dhcp({"DHCPACK", "10.10.0.11", "52:54:00:00:00:01", "db-1"});
    table.boot_config("52:54:00:00:00:01", BootAction::install);
    table.http("10.10.0.11", "/squashfs.img", 1000);
    table.http("10.10.0.11", "/vmlinuz", 24);
    table.http("10.9.9.9", "/vmlinuz", 24);  // not a client of ours: not counted anywhere
    table.answers_fetched("52:54:00:00:00:01");
    CHECK(table.report("52:54:00:00:00:01", "installing", ""));
    CHECK_FALSE(table.report("52:54:00:00:00:01", "dancing", ""));
    CHECK_FALSE(table.report("not-a-mac", "installed", ""));

    nodes = table.snapshot();
    REQUIRE(nodes.size() == 4);
    CHECK(nodes[0].state == NodeState::installing);
    CHECK(nodes[0].http_bytes == 1024);
    CHECK(nodes[0].http_requests == 2);
    CHECK(nodes[0].answers_fetched);
    CHECK(nodes[3].mac == "52:54:00:00:00:99");  // unknown nodes after the inventory's
    CHECK_FALSE(nodes[3].known);
    CHECK(nodes[3].ip == "10.10.0.150");
    const auto text = render_node_table(nodes);
    CHECK(text.find("db-1") != std::string::npos);
    CHECK(text.find("installing") != std::string::npos);
    // GET /nodes: the exact byte count, one tab-separated line per node after the header.
    const auto tsv = render_node_tsv(nodes);
    CHECK(tsv.rfind("mac\thostname\taddress\tknown\tstate\thttp_bytes\t", 0) == 0);
    CHECK(
        tsv.find("\n52:54:00:00:00:01\tdb-1\t10.10.0.11\tyes\tinstalling\t1024\t2\tyes\t") !=
        std::string::npos);
    CHECK(std::count(tsv.begin(), tsv.end(), '\n') == 5);
}
