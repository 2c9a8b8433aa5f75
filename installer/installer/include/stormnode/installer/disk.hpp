// Target disks: what /sys/block offers, which disk an answer file's selector means, and whether a disk
// may be installed to (whole disk, nothing mounted or held, big enough). Read-only: nothing here writes.
#pragma once

#include <stormnode/installer/answers.hpp>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace stormnode::installer {

struct BlockDisk {
    std::string name;              // "vda", "nvme0n1", "loop3"
    std::filesystem::path device;  // "/dev/vda"
    std::uint64_t size = 0;        // bytes
    std::string model;             // device/model, trimmed; may be empty
    bool removable = false;
    bool read_only = false;
    std::vector<std::string> partitions;  // "vda1", ...
};

// Where the kernel's views live; tests point these at a fake tree.
struct SystemPaths {
    std::filesystem::path sys = "/sys";
    std::filesystem::path dev = "/dev";
    std::filesystem::path mountinfo = "/proc/self/mountinfo";
    std::filesystem::path swaps = "/proc/swaps";
};

// Whole disks worth offering: /sys/block without ram, zram, loop devices with no backing file, and
// read-only or empty devices. Sorted by name.
std::vector<BlockDisk> list_disks(const SystemPaths& paths = {});

// The one disk the selector matches (loop devices never match a selector). Error(not_found) when none
// does, Error(invalid_input) naming the candidates when several do.
BlockDisk select_disk(const DiskSelector& selector, const std::vector<BlockDisk>& disks);

// "20.0 GiB"
std::string format_size(std::uint64_t bytes);

// The device node name of partition number n of disk ("vda" 2 -> "vda2", "loop0" 2 -> "loop0p2").
std::string partition_name(const std::string& disk_name, int number);

// What a target check found. A regular file is a disk too (tests, images): its size is its length.
struct TargetDisk {
    std::filesystem::path path;  // as given
    bool regular_file = false;
    std::string name;  // block device name (empty for a regular file)
    std::uint64_t size = 0;
};

// Checks that path can be installed to: it exists, is a whole disk (not a partition) or a regular file,
// nothing on it is mounted, used as swap or held (device mapper, RAID), and it has at least min_size
// bytes. Throws Error(not_found | refused | invalid_input) with a message naming the disk.
TargetDisk check_target(
    const std::filesystem::path& path, std::uint64_t min_size, const SystemPaths& paths = {});

// The block-device part of check_target, on the disk's /sys/block directory (shown: its name in
// messages). Returns what it read.
BlockDisk check_disk_unused(
    const std::filesystem::path& sys_dir, const std::string& shown, const SystemPaths& paths = {});

}  // namespace stormnode::installer
