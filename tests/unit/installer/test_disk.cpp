#include <stormnode/common/error.hpp>
#include <stormnode/common/temp_dir.hpp>
#include <stormnode/installer/disk.hpp>
#include <stormnode/installer/install.hpp>

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

using namespace stormnode;
using namespace stormnode::installer;
namespace fs = std::filesystem;

namespace {

void put(const fs::path& p, const std::string& text) {
    fs::create_directories(p.parent_path());
    std::ofstream(p) << text;
}

// A fake /sys and /proc: disk name, size in GiB, model, major:minor, partitions.
class FakeSystem {
public:
    FakeSystem() {
        paths.sys = dir_.path() / "sys";
        paths.dev = dir_.path() / "dev";
        paths.mountinfo = dir_.path() / "mountinfo";
        paths.swaps = dir_.path() / "swaps";
        put(paths.mountinfo, "22 1 0:21 / /proc rw - proc proc rw\n");
        put(paths.swaps, "Filename Type Size Used Priority\n");
    }
    fs::path disk(
        const std::string& name,
        std::uint64_t gib,
        const std::string& model,
        const std::string& dev,
        int partitions = 0) {
        const auto d = paths.sys / "block" / name;
        put(d / "size", std::to_string(gib * 1024 * 1024 * 2) + "\n");
        put(d / "ro", "0\n");
        put(d / "removable", "0\n");
        put(d / "dev", dev + "\n");
        if (!model.empty()) {
            put(d / "device" / "model", model + "    \n");
        }
        fs::create_directories(d / "holders");
        for (int i = 1; i <= partitions; ++i) {
            const auto p = d / partition_name(name, i);
            put(p / "partition", std::to_string(i));
            put(p / "dev",
                dev.substr(0, dev.find(':')) + ":" +
                    std::to_string(std::stoi(dev.substr(dev.find(':') + 1)) + i));
            fs::create_directories(p / "holders");
        }
        return d;
    }
    void mounted(const std::string& majmin) {
        std::ofstream(paths.mountinfo, std::ios::app) << "40 1 " << majmin << " / /mnt rw - ext4 /dev/x rw\n";
    }
    SystemPaths paths;

private:
    TempDir dir_;
};

}  // namespace

TEST_CASE("disks are listed with size and model; ram, zram and idle loops are not") {
    FakeSystem sys;
    sys.disk("vda", 20, "QEMU HARDDISK", "252:0", 2);
    sys.disk("sdb", 500, "Samsung SSD 870", "8:16");
    sys.disk("zram0", 4, "", "251:0");
    sys.disk("loop0", 1, "", "7:0");
    const auto disks = list_disks(sys.paths);
    REQUIRE(disks.size() == 2);
    CHECK(disks[0].name == "sdb");
    CHECK(disks[1].name == "vda");
    CHECK(disks[1].size == 20ULL * 1024 * 1024 * 1024);
    CHECK(disks[1].model == "QEMU HARDDISK");
    CHECK(disks[1].device == sys.paths.dev / "vda");
    CHECK(disks[1].partitions == std::vector<std::string>{"vda1", "vda2"});
}

TEST_CASE("a selector picks the one disk matching size and model") {
    FakeSystem sys;
    sys.disk("vda", 20, "QEMU HARDDISK", "252:0");
    sys.disk("sdb", 500, "Samsung SSD 870", "8:16");
    sys.disk("sdc", 500, "WDC WD5000", "8:32");
    const auto disks = list_disks(sys.paths);
    DiskSelector by_size{.min_size = 10ULL << 30, .max_size = 100ULL << 30, .model = ""};
    CHECK(select_disk(by_size, disks).name == "vda");
    DiskSelector by_model{.min_size = std::nullopt, .max_size = std::nullopt, .model = "Samsung*"};
    CHECK(select_disk(by_model, disks).name == "sdb");

    DiskSelector two{.min_size = 100ULL << 30, .max_size = std::nullopt, .model = ""};
    try {
        select_disk(two, disks);
        FAIL("no error");
    } catch (const Error& e) {
        CHECK(e.code() == Errc::invalid_input);
        CHECK(std::string(e.what()).find("matches 2 disks") != std::string::npos);
    }
    DiskSelector none{.min_size = 1ULL << 40, .max_size = std::nullopt, .model = ""};
    try {
        select_disk(none, disks);
        FAIL("no error");
    } catch (const Error& e) {
        CHECK(e.code() == Errc::not_found);
        CHECK(std::string(e.what()).find("QEMU HARDDISK") != std::string::npos);  // the candidates are listed
    }
}

TEST_CASE("a disk with a mounted partition is refused") {
    FakeSystem sys;
    const auto d = sys.disk("vda", 20, "QEMU", "252:0", 4);
    CHECK(check_disk_unused(d, "/dev/vda", sys.paths).name == "vda");
    sys.mounted("252:3");
    try {
        check_disk_unused(d, "/dev/vda", sys.paths);
        FAIL("no error");
    } catch (const Error& e) {
        CHECK(e.code() == Errc::refused);
        CHECK(std::string(e.what()) == "disk /dev/vda is in use: vda3 is mounted (unmount it first)");
    }
}

TEST_CASE("a held disk, swap and a partition are refused") {
    FakeSystem sys;
    const auto d = sys.disk("sda", 20, "X", "8:0", 2);
    SECTION("held by device mapper") {
        put(d / "sda2" / "holders" / "dm-0", "");
        CHECK_THROWS_WITH(check_disk_unused(d, "/dev/sda", sys.paths), Catch::Contains("held by dm-0"));
    }
    SECTION("swap") {
        put(sys.paths.swaps, "Filename Type Size Used Priority\n/dev/sda1 partition 1 0 -2\n");
        CHECK_THROWS_WITH(
            check_disk_unused(d, "/dev/sda", sys.paths), Catch::Contains("sda1 is active swap"));
    }
    SECTION("a partition instead of the disk") {
        CHECK_THROWS_WITH(
            check_disk_unused(d / "sda1", "/dev/sda1", sys.paths),
            Catch::Contains("is a partition (of sda)"));
    }
}

TEST_CASE("a missing disk and a too small one are refused by name") {
    TempDir dir;
    try {
        check_target(dir.path() / "nope.img", 0);
        FAIL("no error");
    } catch (const Error& e) {
        CHECK(e.code() == Errc::not_found);
        CHECK(std::string(e.what()).find("nope.img does not exist") != std::string::npos);
    }
    const auto img = dir.path() / "disk.img";
    std::ofstream(img).close();
    fs::resize_file(img, 1ULL << 30);
    const auto min = minimum_disk_size(800ULL << 20);
    CHECK(min > (3ULL << 30));
    try {
        check_target(img, min);
        FAIL("no error");
    } catch (const Error& e) {
        CHECK(e.code() == Errc::refused);
        CHECK(std::string(e.what()).find("too small: 1.0 GiB") != std::string::npos);
    }
    fs::resize_file(img, 8ULL << 30);
    const auto t = check_target(img, min);
    CHECK(t.regular_file);
    CHECK(t.size == 8ULL << 30);
}

TEST_CASE("partition device names") {
    CHECK(partition_name("vda", 2) == "vda2");
    CHECK(partition_name("loop0", 2) == "loop0p2");
    CHECK(partition_name("nvme0n1", 4) == "nvme0n1p4");
}
