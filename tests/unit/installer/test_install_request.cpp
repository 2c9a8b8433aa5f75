#include <stormnode/common/error.hpp>
#include <stormnode/installer/install.hpp>
#include <stormnode/installer/install_request.hpp>

#include <catch2/catch.hpp>

using namespace stormnode;
using namespace stormnode::installer;

TEST_CASE("no stormnode.install: nothing to do") {
    const auto r = parse_install_request("BOOT_IMAGE=/vmlinuz root=live:LABEL=x quiet");
    CHECK(r.mode == InstallMode::none);
    CHECK(r.answers == kDefaultAnswersPath);
}

TEST_CASE("unattended with the ISO's answer file") {
    const auto r = parse_install_request("quiet stormnode.install=unattended console=ttyS0,115200\n");
    CHECK(r.mode == InstallMode::unattended);
    CHECK(r.answers == "/run/initramfs/live/stormnode/answers.yaml");
}

TEST_CASE("interactive, bare flag and an answers path") {
    CHECK(parse_install_request("stormnode.install=interactive").mode == InstallMode::interactive);
    CHECK(parse_install_request("stormnode.install").mode == InstallMode::interactive);
    CHECK(parse_install_request("stormnode.install stormnode.answers=/tmp/a.yaml").answers == "/tmp/a.yaml");
}

TEST_CASE("the last stormnode.install wins, a quoted answers path is unquoted") {
    const auto r = parse_install_request(
        "stormnode.install=interactive stormnode.answers=\"/run/my answers.yaml\" "
        "stormnode.install=unattended");
    CHECK(r.mode == InstallMode::unattended);
    CHECK(r.answers == "/run/my answers.yaml");
    CHECK(parse_install_request("stormnode.installx=1").mode == InstallMode::none);
}

TEST_CASE("an unknown install mode is invalid input") {
    try {
        parse_install_request("stormnode.install=yes-please");
        FAIL("no error");
    } catch (const Error& e) {
        CHECK(e.code() == Errc::invalid_input);
        CHECK(std::string(e.what()).find("yes-please") != std::string::npos);
    }
}

TEST_CASE("node kernel arguments copy the console of the install") {
    const auto k =
        node_kargs("BOOT_IMAGE=x console=tty0 quiet console=ttyS0,115200n8 stormnode.install", {"nomodeset"});
    const std::vector<std::string> expected{
        "root=LABEL=stormnode-root",
        "rw",
        "systemd.gpt_auto=0",
        "console=tty0",
        "console=ttyS0,115200n8",
        "nomodeset"};
    CHECK(k == expected);
    CHECK(node_kargs("quiet", {}).size() == 3);
}

TEST_CASE("a copied argument keeps its quoting") {
    const auto k = node_kargs("console=\"ttyS0,115200\" stormnode.report='http://h/r?a b'", {});
    CHECK(k.at(3) == "console=ttyS0,115200");
    CHECK(k.at(4) == "stormnode.report=\"http://h/r?a b\"");
}

TEST_CASE("a network install's node keeps its report URL and nothing else of the live boot") {
    const auto k = node_kargs(
        "root=live:http://10.10.0.1/squashfs.img ip=dhcp rd.neednet=1 console=ttyS0,115200 "
        "stormnode.report=http://10.10.0.1/report stormnode.install=unattended "
        "stormnode.answers=http://10.10.0.1/answers/52:54:00:00:00:01.yaml",
        {});
    const std::vector<std::string> expected{
        "root=LABEL=stormnode-root",
        "rw",
        "systemd.gpt_auto=0",
        "console=ttyS0,115200",
        "stormnode.report=http://10.10.0.1/report"};
    CHECK(k == expected);
}
