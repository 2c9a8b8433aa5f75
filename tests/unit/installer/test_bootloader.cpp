#include <stormnode/common/error.hpp>
#include <stormnode/common/temp_dir.hpp>
#include <stormnode/installer/bootloader.hpp>

#include <catch2/catch.hpp>

#include <filesystem>

using namespace stormnode;
using namespace stormnode::installer;
namespace fs = std::filesystem;

namespace {
const fs::path kFixtures = fs::path(STORMNODE_TEST_DATA) / "installer" / "bls";
}

TEST_CASE("BLS entries are read default first, rollback second") {
    const auto entries = read_bls_entries(kFixtures);
    REQUIRE(entries.size() == 2);
    CHECK(entries[0].version == "2");
    CHECK(entries[0].linux_path == "/ostree/stormnode-bbbb/vmlinuz-6.1.0-29-amd64");
    CHECK(entries[0].initrd == "/ostree/stormnode-bbbb/initramfs-6.1.0-29-amd64.img");
    CHECK(entries[1].version == "1");
    CHECK(entries[0].options.find("ostree=/ostree/boot.1/stormnode/bbbb/0") != std::string::npos);
}

TEST_CASE("version 10 sorts before version 9") {
    std::vector<BlsEntry> e;
    TempDir dir;
    write_file_atomic(dir.path() / "a.conf", "title nine\nversion 9\nlinux /k9\n");
    write_file_atomic(dir.path() / "b.conf", "title ten\nversion 10\nlinux /k10\n");
    const auto entries = read_bls_entries(dir.path());
    REQUIRE(entries.size() == 2);
    CHECK(entries[0].title == "ten");
}

TEST_CASE("grub.cfg boots the default first and offers the rollback second") {
    const auto cfg = render_grub_cfg(read_bls_entries(kFixtures));
    const auto first = cfg.find("menuentry 'Debian GNU/Linux 12 (bookworm) (ostree:0)'");
    const auto second = cfg.find("menuentry 'Debian GNU/Linux 12 (bookworm) (ostree:1) (rollback)'");
    REQUIRE(first != std::string::npos);
    REQUIRE(second != std::string::npos);
    CHECK(first < second);
    CHECK(cfg.find("set default=0") != std::string::npos);
    CHECK(cfg.find("search --no-floppy --label stormnode-boot --set=root") != std::string::npos);
    CHECK(cfg.find("serial --unit=0 --speed=115200") != std::string::npos);
    CHECK(cfg.find("terminal_output console serial") != std::string::npos);
    CHECK(
        cfg.find("    linux /ostree/stormnode-bbbb/vmlinuz-6.1.0-29-amd64 root=LABEL=stormnode-root rw "
                 "systemd.gpt_auto=0 console=ttyS0,115200 ostree=/ostree/boot.1/stormnode/bbbb/0\n") !=
        std::string::npos);
    CHECK(cfg.find("    initrd /ostree/stormnode-aaaa/initramfs-6.1.0-28-amd64.img\n") != std::string::npos);
}

TEST_CASE("with /boot on the root filesystem the paths get the /boot prefix") {
    GrubConfigOptions o;
    o.path_prefix = "/boot";
    o.serial = false;
    const auto cfg = render_grub_cfg(read_bls_entries(kFixtures), o);
    CHECK(cfg.find("linux /boot/ostree/stormnode-bbbb/vmlinuz") != std::string::npos);
    CHECK(cfg.find("serial") == std::string::npos);
}

TEST_CASE("a quote in a title cannot break out of the menuentry") {
    BlsEntry e;
    e.title = "it's";
    e.linux_path = "/k";
    const auto cfg = render_grub_cfg({e});
    CHECK(cfg.find("menuentry 'it'\\''s'") != std::string::npos);
}

TEST_CASE("an entry without a linux line is an error naming the file") {
    try {
        parse_bls_entry("title x\nversion 1\n", "/boot/loader/entries/x.conf");
        FAIL("no error");
    } catch (const Error& e) {
        CHECK(e.code() == Errc::invalid_input);
        CHECK(std::string(e.what()).find("x.conf") != std::string::npos);
    }
}

TEST_CASE("write_grub_cfg refuses a /boot without entries and writes one with them") {
    TempDir boot;
    CHECK_THROWS_AS(write_grub_cfg(boot.path()), Error);
    CHECK_FALSE(fs::exists(boot.path() / "grub" / "grub.cfg"));
    fs::create_directories(boot.path() / "loader" / "entries");
    fs::copy(kFixtures, boot.path() / "loader" / "entries");
    CHECK(write_grub_cfg(boot.path()).size() == 2);
    CHECK(read_file(boot.path() / "grub" / "grub.cfg").find("(rollback)") != std::string::npos);
}

TEST_CASE("the UEFI early config finds /boot by label and hands over to its grub.cfg") {
    const auto cfg = uefi_early_config();
    CHECK(cfg.find("search --no-floppy --label stormnode-boot --set=root") != std::string::npos);
    CHECK(cfg.find("configfile ($root)/grub/grub.cfg") != std::string::npos);
    CHECK(cfg.find("prefix") == std::string::npos);
}
