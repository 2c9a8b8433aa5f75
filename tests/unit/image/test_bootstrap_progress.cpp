#include <stormnode/image/bootstrap_progress.hpp>

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using stormnode::image::apt_get_line_bytes;
using stormnode::image::BootstrapProgress;

namespace {

// Records what a sink is told, as text lines: "phase initramfs modules", "advance 3", "message ...".
class RecordingSink final : public stormnode::ProgressSink {
public:
    void phase(std::string_view name, std::uint64_t total, std::string_view unit) override {
        events.push_back(
            "phase " + std::string(name) + " " + std::to_string(total) + " " + std::string(unit));
    }
    void advance(std::uint64_t done) override { events.push_back("advance " + std::to_string(done)); }
    void message(std::string_view text) override { events.push_back("message " + std::string(text)); }
    std::vector<std::string> events;
};

}  // namespace

TEST_CASE("apt's Get: lines give the download size in bytes", "[image][progress]") {
    CHECK(
        apt_get_line_bytes(
            "Get:1 http://deb.debian.org/debian bookworm/main amd64 libc6 amd64 2.36-9 [2755 kB]") ==
        2755000);
    CHECK(
        apt_get_line_bytes(
            "Get:7 http://deb.debian.org/debian bookworm/main amd64 tzdata all 2024a-0 [255 B]") == 255);
    CHECK(
        apt_get_line_bytes("Get:9 http://x bookworm/main amd64 linux-image amd64 6.1 [68.5 MB]") == 68500000);
    CHECK_FALSE(apt_get_line_bytes("Get:2 http://deb.debian.org/debian bookworm InRelease [151 kB"));
    CHECK_FALSE(apt_get_line_bytes("Hit:1 http://deb.debian.org/debian bookworm InRelease"));
    CHECK_FALSE(apt_get_line_bytes("Get:3 http://x [12 parsecs]"));
}

TEST_CASE("mmdebstrap's verbose output becomes phases with amounts", "[image][progress]") {
    RecordingSink sink;
    BootstrapProgress reader(sink);
    // Lines as mmdebstrap --verbose prints them (trimmed), with dracut's from the initramfs hook.
    for (const char* line : {
             "I: running apt-get update...",
             "Get:2 http://deb.debian.org/debian bookworm InRelease [151 kB]",
             "I: running --setup-hook directly: /hooks/setup-apt-cache /tmp/mmdebstrap.x",
             "I: downloading packages with apt...",
             "Get:1 http://deb.debian.org/debian bookworm/main amd64 libc6 amd64 2.36-9 [2755 kB]",
             "Get:2 http://deb.debian.org/debian bookworm/main amd64 zstd amd64 1.5.4 [1000 B]",
             "I: extracting archives...",
             "I: installing essential packages...",
             "Setting up libc6:amd64 (2.36-9) ...",
             "I: installing remaining packages inside the chroot...",
             "Setting up dracut-core (059-4) ...",
             "I: running --customize-hook directly: /hooks/customize-20-units /tmp/mmdebstrap.x",
             "I: running --customize-hook directly: /hooks/customize-30-initramfs /tmp/mmdebstrap.x",
             "dracut: *** Including module: bash ***",
             "dracut: *** Including module: ostree ***",
             "dracut: *** Creating initramfs image file '/boot/initrd.img-6.1.0-28-amd64' done ***",
             "I: running --customize-hook directly: /hooks/customize-40-scrub /tmp/mmdebstrap.x",
             "I: creating tarball...",
         }) {
        reader.line(line);
    }
    CHECK(
        sink.events ==
        std::vector<std::string>{
            "phase download 0 bytes",
            "advance 2755000",
            "advance 2756000",
            "phase install 0 packages",
            "advance 1",
            "advance 2",
            "phase customize 0 hooks",
            "advance 1",
            "phase initramfs 0 modules",
            "message generating the initramfs with dracut",
            "advance 1",
            "advance 2",
            "message *** Creating initramfs image file '/boot/initrd.img-6.1.0-28-amd64' done ***",
            "phase customize 0 hooks",
            "advance 2",
            "phase tarball 0 bytes",
        });
    CHECK(reader.downloaded_packages() == 2);
    CHECK(reader.downloaded_bytes() == 2756000);
    CHECK(reader.packages_set_up() == 2);
    CHECK(reader.initramfs_modules() == 2);
}

TEST_CASE("the tail keeps the last lines for an error message", "[image][progress]") {
    RecordingSink sink;
    BootstrapProgress reader(sink);
    for (int i = 0; i < 100; ++i) {
        reader.line("line " + std::to_string(i));
    }
    reader.line("E: Unable to locate package no-such-package");
    const auto tail = reader.tail();
    CHECK(tail.find("E: Unable to locate package no-such-package\n") != std::string::npos);
    CHECK(tail.find("line 99\n") != std::string::npos);
    CHECK(tail.find("line 10\n") == std::string::npos);
}
