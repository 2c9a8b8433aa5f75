#include <stormnode/iso/iso_build.hpp>

#include <catch2/catch.hpp>

#include <regex>
#include <string>
#include <vector>

using stormnode::iso::render_iso_grub_cfg;
using stormnode::iso::valid_volume_label;

namespace {

std::vector<std::string> entry_titles(const std::string& cfg) {
    std::vector<std::string> titles;
    const std::regex entry("menuentry '([^']*)'");
    for (auto it = std::sregex_iterator(cfg.begin(), cfg.end(), entry); it != std::sregex_iterator(); ++it) {
        titles.push_back((*it)[1]);
    }
    return titles;
}

std::string default_entry(const std::string& cfg) {
    std::smatch m;
    REQUIRE(std::regex_search(cfg, m, std::regex("set default=([0-9]+)")));
    return entry_titles(cfg).at(std::stoul(m[1]));
}

}  // namespace

TEST_CASE("with an answer file the menu boots the unattended install by default, quickly", "[iso]") {
    const auto cfg = render_iso_grub_cfg({.label = "STORMNODE", .has_answers = true});
    CHECK(entry_titles(cfg).size() == 6);
    CHECK(default_entry(cfg).find("unattended") != std::string::npos);
    CHECK(default_entry(cfg).find("serial") == std::string::npos);
    CHECK(cfg.find("set timeout=3") != std::string::npos);
    CHECK(cfg.find("stormnode.install=unattended") != std::string::npos);
    CHECK(cfg.find("stormnode.install=interactive") != std::string::npos);
}

TEST_CASE("every entry boots the live root by label with the overlayfs overlay", "[iso]") {
    const auto cfg = render_iso_grub_cfg({.label = "MY-LABEL", .has_answers = false});
    const std::regex linux_line("linux /boot/vmlinuz ([^\n]*)");
    int count = 0;
    for (auto it = std::sregex_iterator(cfg.begin(), cfg.end(), linux_line); it != std::sregex_iterator();
         ++it) {
        CHECK((*it)[1].str().starts_with(
            "root=live:CDLABEL=MY-LABEL rd.live.image rd.live.overlay.overlayfs=1"));
        ++count;
    }
    CHECK(count == 4);  // Install, Live, and their serial variants: no unattended entry without answers
    CHECK(cfg.find("stormnode.install=unattended") == std::string::npos);
    CHECK(default_entry(cfg) == "Install stormnode (console menu)");
}

TEST_CASE("iso build --serial makes the serial-console variant the default", "[iso]") {
    const auto cfg = render_iso_grub_cfg({.label = "STORMNODE", .has_answers = true, .serial_default = true});
    const auto title = default_entry(cfg);
    CHECK(title.find("unattended") != std::string::npos);
    CHECK(title.find("serial console") != std::string::npos);
    CHECK(cfg.find("stormnode.install=unattended console=tty0 console=ttyS0,115200") != std::string::npos);
    CHECK(cfg.find("terminal_output console serial") != std::string::npos);
}

TEST_CASE("volume labels that dracut's CDLABEL= can find", "[iso]") {
    CHECK(valid_volume_label("STORMNODE"));
    CHECK(valid_volume_label("STORM_NODE-2"));
    CHECK_FALSE(valid_volume_label(""));
    CHECK_FALSE(valid_volume_label("storm node"));
    CHECK_FALSE(valid_volume_label("lower"));
    CHECK_FALSE(valid_volume_label(std::string(33, 'A')));
}
