#include "stormnode/installer/disk.hpp"

#include <stormnode/common/error.hpp>

#include <fnmatch.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <set>
#include <sstream>

namespace stormnode::installer {
namespace fs = std::filesystem;
namespace {

std::string read_trimmed(const fs::path& path) {
    std::ifstream in(path);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) {
        text.pop_back();
    }
    const auto start = text.find_first_not_of(" \t");
    return start == std::string::npos ? std::string() : text.substr(start);
}

std::uint64_t read_number(const fs::path& path) {
    const auto text = read_trimmed(path);
    try {
        return text.empty() ? 0 : std::stoull(text);
    } catch (const std::exception&) {
        return 0;
    }
}

bool is_virtual_name(const std::string& name) {
    return name.starts_with("ram") || name.starts_with("zram") || name.starts_with("sr") ||
           name.starts_with("fd") || name.starts_with("dm-") || name.starts_with("md");
}

BlockDisk read_disk(const fs::path& dir, const SystemPaths& paths) {
    BlockDisk d;
    d.name = dir.filename().string();
    d.device = paths.dev / d.name;
    d.size = read_number(dir / "size") * 512;  // always 512-byte units, whatever the logical block size
    d.model = read_trimmed(dir / "device" / "model");
    d.removable = read_number(dir / "removable") != 0;
    d.read_only = read_number(dir / "ro") != 0;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(dir, ec)) {
        if (entry.is_directory() && fs::exists(entry.path() / "partition")) {
            d.partitions.push_back(entry.path().filename().string());
        }
    }
    std::sort(d.partitions.begin(), d.partitions.end());
    return d;
}

// The major:minor of every mounted filesystem's device, and of active swap devices.
std::set<std::string> devices_in_use(const SystemPaths& paths, std::set<std::string>& swap_names) {
    std::set<std::string> in_use;
    std::ifstream mi(paths.mountinfo);
    std::string line;
    while (std::getline(mi, line)) {
        std::istringstream fields(line);
        std::string id, parent, majmin;
        fields >> id >> parent >> majmin;
        in_use.insert(majmin);
    }
    std::ifstream sw(paths.swaps);
    std::getline(sw, line);  // header
    while (std::getline(sw, line)) {
        std::istringstream fields(line);
        std::string name;
        fields >> name;
        swap_names.insert(fs::path(name).filename().string());
    }
    return in_use;
}

}  // namespace

std::vector<BlockDisk> list_disks(const SystemPaths& paths) {
    std::vector<BlockDisk> disks;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(paths.sys / "block", ec)) {
        const auto name = entry.path().filename().string();
        if (is_virtual_name(name)) {
            continue;
        }
        if (name.starts_with("loop") && !fs::exists(entry.path() / "loop" / "backing_file")) {
            continue;
        }
        auto disk = read_disk(entry.path(), paths);
        if (disk.size == 0 || disk.read_only) {
            continue;
        }
        disks.push_back(std::move(disk));
    }
    std::sort(disks.begin(), disks.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
    return disks;
}

std::string format_size(std::uint64_t bytes) {
    static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    double value = static_cast<double>(bytes);
    std::size_t unit = 0;
    while (value >= 1024.0 && unit + 1 < std::size(kUnits)) {
        value /= 1024.0;
        ++unit;
    }
    char text[32];
    std::snprintf(text, sizeof text, unit == 0 ? "%.0f %s" : "%.1f %s", value, kUnits[unit]);
    return text;
}

BlockDisk select_disk(const DiskSelector& selector, const std::vector<BlockDisk>& disks) {
    std::vector<const BlockDisk*> matches;
    for (const auto& d : disks) {
        if (d.name.starts_with("loop")) {
            continue;
        }
        if (selector.min_size && d.size < *selector.min_size) {
            continue;
        }
        if (selector.max_size && d.size > *selector.max_size) {
            continue;
        }
        if (!selector.model.empty() && ::fnmatch(selector.model.c_str(), d.model.c_str(), 0) != 0) {
            continue;
        }
        matches.push_back(&d);
    }
    std::string candidates;
    for (const auto& d : disks) {
        candidates += "\n  " + d.device.string() + "  " + format_size(d.size) + "  " +
                      (d.model.empty() ? "(no model)" : d.model);
    }
    if (matches.empty()) {
        throw Error(
            Errc::not_found,
            "no disk matches the answer file's disk selector; disks:" +
                (candidates.empty() ? std::string(" none") : candidates));
    }
    if (matches.size() > 1) {
        std::string names;
        for (const auto* d : matches) {
            names += (names.empty() ? "" : ", ") + d->device.string();
        }
        throw Error(
            Errc::invalid_input,
            "the answer file's disk selector matches " + std::to_string(matches.size()) + " disks (" + names +
                "): narrow it (size, model) or name the disk");
    }
    return *matches.front();
}

std::string partition_name(const std::string& disk_name, int number) {
    const bool ends_in_digit =
        !disk_name.empty() && std::isdigit(static_cast<unsigned char>(disk_name.back()));
    return disk_name + (ends_in_digit ? "p" : "") + std::to_string(number);
}

BlockDisk check_disk_unused(const fs::path& sys_dir, const std::string& shown, const SystemPaths& paths) {
    if (fs::exists(sys_dir / "partition")) {
        throw Error(
            Errc::invalid_input,
            shown + " is a partition (of " + sys_dir.parent_path().filename().string() +
                "): give the whole disk");
    }
    auto disk = read_disk(sys_dir, paths);
    if (disk.read_only) {
        throw Error(Errc::refused, "disk " + shown + " is read-only");
    }
    std::set<std::string> swaps;
    const auto in_use = devices_in_use(paths, swaps);
    std::vector<std::string> names{disk.name};
    names.insert(names.end(), disk.partitions.begin(), disk.partitions.end());
    for (const auto& name : names) {
        const auto dir = name == disk.name ? sys_dir : sys_dir / name;
        const auto dev = read_trimmed(dir / "dev");
        if (in_use.count(dev) != 0) {
            throw Error(
                Errc::refused, "disk " + shown + " is in use: " + name + " is mounted (unmount it first)");
        }
        if (swaps.count(name) != 0) {
            throw Error(Errc::refused, "disk " + shown + " is in use: " + name + " is active swap");
        }
        std::error_code ec;
        for (const auto& holder : fs::directory_iterator(dir / "holders", ec)) {
            throw Error(
                Errc::refused,
                "disk " + shown + " is in use: " + name + " is held by " + holder.path().filename().string() +
                    " (device mapper, RAID or LVM)");
        }
    }
    return disk;
}

TargetDisk check_target(const fs::path& path, std::uint64_t min_size, const SystemPaths& paths) {
    TargetDisk t;
    t.path = path;
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
        throw Error(Errc::not_found, "disk " + path.string() + " does not exist");
    }
    if (S_ISREG(st.st_mode)) {
        t.regular_file = true;
        t.size = static_cast<std::uint64_t>(st.st_size);
        // A disk image attached to a loop device is in use when that device is (a killed install
        // leaves its mounts behind).
        std::error_code ec;
        const auto file = fs::canonical(path, ec);
        for (const auto& entry : fs::directory_iterator(paths.sys / "block", ec)) {
            const auto backing = read_trimmed(entry.path() / "loop" / "backing_file");
            if (!backing.empty() && backing == file.string()) {
                check_disk_unused(
                    entry.path(),
                    path.string() + " (attached to " + entry.path().filename().string() + ")",
                    paths);
            }
        }
    } else if (S_ISBLK(st.st_mode)) {
        const auto majmin = std::to_string(major(st.st_rdev)) + ":" + std::to_string(minor(st.st_rdev));
        std::error_code ec;
        const auto sys_dir = fs::canonical(paths.sys / "dev" / "block" / majmin, ec);
        if (ec) {
            throw Error(
                Errc::not_found, "disk " + path.string() + ": no " + majmin + " in " + paths.sys.string());
        }
        const auto disk = check_disk_unused(sys_dir, path.string(), paths);
        t.name = disk.name;
        t.size = disk.size;
    } else {
        throw Error(Errc::invalid_input, path.string() + " is neither a block device nor a regular file");
    }
    if (t.size < min_size) {
        throw Error(
            Errc::refused,
            "disk " + path.string() + " is too small: " + format_size(t.size) +
                ", the image needs at least " + format_size(min_size));
    }
    return t;
}

}  // namespace stormnode::installer
