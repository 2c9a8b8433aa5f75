#include "stormnode/installer/install.hpp"

#include "sysroot_ops.hpp"

#include <stormnode/common/error.hpp>
#include <stormnode/common/kernel_cmdline.hpp>
#include <stormnode/common/subprocess.hpp>
#include <stormnode/common/temp_dir.hpp>
#include <stormnode/image/media_objects.hpp>
#include <stormnode/image/repo.hpp>
#include <stormnode/installer/bootloader.hpp>

#include <fcntl.h>
#include <poll.h>
#include <sys/inotify.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <optional>
#include <sstream>

namespace stormnode::installer {
namespace fs = std::filesystem;
using image::GErrorPtr;
using image::throw_gerror;

namespace {

using GFileEnumeratorPtr = CHandle<GFileEnumerator, image::gobject_unref>;

// Sum of the regular files' sizes in a commit: what a checkout occupies, give or take metadata.
// The size image build recorded in the commit's metadata, if it did.
std::optional<std::uint64_t> recorded_tree_bytes(OstreeRepo* repo, const std::string& commit) {
    GErrorPtr error;
    image::GVariantPtr variant;
    if (!ostree_repo_load_variant(
            repo, OSTREE_OBJECT_TYPE_COMMIT, commit.c_str(), out(variant), out(error))) {
        throw_gerror(error, "loading commit " + commit);
    }
    const image::GVariantPtr metadata(g_variant_get_child_value(variant.get(), 0));
    guint64 bytes = 0;
    if (g_variant_lookup(metadata.get(), image::kTreeBytesKey, "t", &bytes) == FALSE) {
        return std::nullopt;
    }
    return bytes;
}

std::uint64_t tree_size(GFile* dir) {
    std::uint64_t total = 0;
    GErrorPtr error;
    GFileEnumeratorPtr children(g_file_enumerate_children(
        dir,
        "standard::name,standard::type,standard::size",
        G_FILE_QUERY_INFO_NOFOLLOW_SYMLINKS,
        nullptr,
        out(error)));
    if (!children) {
        throw_gerror(error, "reading the commit's tree");
    }
    while (true) {
        GFileInfo* info = nullptr;
        GFile* child = nullptr;
        if (!g_file_enumerator_iterate(children.get(), &info, &child, nullptr, out(error))) {
            throw_gerror(error, "reading the commit's tree");
        }
        if (info == nullptr) {
            break;
        }
        const auto type = g_file_info_get_file_type(info);
        if (type == G_FILE_TYPE_DIRECTORY) {
            total += 4096 + tree_size(child);
        } else if (type == G_FILE_TYPE_REGULAR) {
            total += static_cast<std::uint64_t>(g_file_info_get_size(info));
        }
    }
    return total;
}

std::string only_ref(OstreeRepo* repo, const std::string& source) {
    GHashTable* raw = nullptr;
    GErrorPtr error;
    if (!ostree_repo_list_refs(repo, nullptr, &raw, nullptr, out(error))) {
        throw_gerror(error, "listing the refs of " + source);
    }
    CHandle<GHashTable, g_hash_table_unref> refs(raw);
    std::vector<std::string> names;
    GHashTableIter it;
    gpointer key = nullptr;
    g_hash_table_iter_init(&it, refs.get());
    while (g_hash_table_iter_next(&it, &key, nullptr)) {
        names.emplace_back(static_cast<const char*>(key));
    }
    if (names.size() != 1) {
        std::string list;
        for (const auto& n : names) {
            list += " " + n;
        }
        throw Error(
            Errc::invalid_input,
            source + " has " + std::to_string(names.size()) + " refs (" +
                (list.empty() ? std::string(" none") : list) + " ): choose one with --ref");
    }
    // A remote ref ("remote:ref") names its ref after the colon.
    const auto colon = names.front().find(':');
    return colon == std::string::npos ? names.front() : names.front().substr(colon + 1);
}

// The signature check a pull will do, made before the disk is touched.
void verify_local_commit(
    OstreeRepo* repo,
    const std::string& commit,
    const fs::path& key_file,
    const std::string& public_key,
    const std::string& ref) {
    // libostree wants a binary keyring; importing the armored key for a remote of a scratch repo
    // makes one, with no gpg subprocess and without writing to the source repo. Archive mode: the
    // live system's /tmp (overlayfs on tmpfs) has no user xattrs, which bare-user needs.
    TempDir scratch("stormnode-keyring");
    auto scratch_repo = image::open_or_create_repo(scratch.path() / "repo", image::RepoMode::archive);
    image::add_verifying_remote(scratch_repo.get(), "verify", "file:///nonexistent", public_key);
    image::GFilePtr keyring(
        g_file_new_for_path((scratch.path() / "repo" / "verify.trustedkeys.gpg").c_str()));
    GErrorPtr error;
    image::GpgVerifyResult result(
        ostree_repo_verify_commit_ext(repo, commit.c_str(), nullptr, keyring.get(), nullptr, out(error)));
    if (!result) {
        if (error && error->domain == OSTREE_GPG_ERROR && error->code == OSTREE_GPG_ERROR_NO_SIGNATURE) {
            throw Error(Errc::refused, "refusing commit " + commit + " of '" + ref + "': it is not signed");
        }
        throw Error(
            Errc::refused,
            "refusing commit " + commit + " of '" + ref +
                "': " + (error ? std::string(error->message) : std::string("verification failed")));
    }
    if (!ostree_gpg_verify_result_require_valid_signature(result.get(), out(error))) {
        throw Error(
            Errc::refused,
            "refusing commit " + commit + " of '" + ref + "': not signed by the key in " + key_file.string() +
                " (" + error->message + ")");
    }
}

// A regular file is installed to through a loop device, detached at the end.
class LoopDevice {
public:
    explicit LoopDevice(const fs::path& file) {
        auto r = run_checked({.argv = {"losetup", "--find", "--show", file.string()}});
        while (!r.out.empty() && (r.out.back() == '\n' || r.out.back() == ' ')) {
            r.out.pop_back();
        }
        device_ = r.out;
    }
    LoopDevice(const LoopDevice&) = delete;
    LoopDevice& operator=(const LoopDevice&) = delete;
    ~LoopDevice() {
        // Partitions added with partx are not the loop driver's own: remove them before detaching.
        run({.argv = {"partx", "--delete", device_.string()}});
        run({.argv = {"losetup", "--detach", device_.string()}});
    }
    [[nodiscard]] const fs::path& device() const { return device_; }

private:
    fs::path device_;
};

// Mounted filesystems, unmounted in reverse order; the mount point directory is removed only when
// empty (a failed unmount must never let a recursive delete reach the disk).
class Mounts {
public:
    Mounts() {
        std::string pattern = (fs::temp_directory_path() / "stormnode-install.XXXXXX").string();
        if (::mkdtemp(pattern.data()) == nullptr) {
            check_errno(-1, "creating a mount point");
        }
        root_ = pattern;
    }
    Mounts(const Mounts&) = delete;
    Mounts& operator=(const Mounts&) = delete;
    ~Mounts() {
        ::sync();
        for (auto it = mounted_.rbegin(); it != mounted_.rend(); ++it) {
            ::umount2(it->c_str(), 0);
        }
        ::rmdir(root_.c_str());
    }
    void mount(const fs::path& device, const fs::path& where) {
        fs::create_directories(where);
        check_errno(
            ::mount(device.c_str(), where.c_str(), "ext4", 0, nullptr),
            "mounting " + device.string() + " on " + where.string());
        mounted_.push_back(where);
    }
    [[nodiscard]] const fs::path& root() const { return root_; }

private:
    fs::path root_;
    std::vector<fs::path> mounted_;
};

// Waits for device nodes to appear (devtmpfs makes them as the kernel adds partitions): inotify on
// their directory, no polling loop, at most timeout.
void wait_for_nodes(const std::vector<fs::path>& nodes, std::chrono::milliseconds timeout) {
    const auto dir = nodes.front().parent_path();
    UniqueFd fd(::inotify_init1(IN_CLOEXEC | IN_NONBLOCK));
    check_errno(fd.get(), "inotify_init1");
    check_errno(
        ::inotify_add_watch(fd.get(), dir.c_str(), IN_CREATE | IN_ATTRIB | IN_MOVED_TO),
        "watching " + dir.string());
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
        bool all = true;
        for (const auto& n : nodes) {
            struct stat st {};
            all = all && ::stat(n.c_str(), &st) == 0 && S_ISBLK(st.st_mode);
        }
        if (all) {
            return;
        }
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) {
            throw Error(Errc::timeout, "the partitions of the new table did not appear in " + dir.string());
        }
        pollfd p{fd.get(), POLLIN, 0};
        check_errno(::poll(&p, 1, static_cast<int>(left.count())), "waiting for partition devices");
        char buffer[4096];
        while (::read(fd.get(), buffer, sizeof buffer) > 0) {
        }
    }
}

void write_zeros(int fd, std::uint64_t offset, std::uint64_t length, const std::string& what) {
    static const std::vector<char> zeros(kMiB, 0);
    while (length > 0) {
        const auto n = std::min<std::uint64_t>(length, zeros.size());
        const ssize_t w = ::pwrite(fd, zeros.data(), n, static_cast<off_t>(offset));
        check_errno(static_cast<int>(w < 0 ? -1 : 0), "wiping " + what);
        offset += static_cast<std::uint64_t>(w);
        length -= static_cast<std::uint64_t>(w);
    }
}

// Whatever booted from this disk must not boot any more, before anything new is written: the old
// partitions' first MiB (filesystem superblocks, the FAT of an ESP with its EFI binary — the new table
// would otherwise bring an old ESP back at the same offset), the protective MBR with GRUB's boot code,
// the primary GPT and the BIOS boot partition, and the backup GPT.
void destroy_bootability(const fs::path& device, std::uint64_t size) {
    std::vector<std::uint64_t> starts;
    const auto dump = run({.argv = {"sfdisk", "--dump", device.string()}});
    if (dump.ok()) {
        std::istringstream lines(dump.out);
        std::string line;
        while (std::getline(lines, line)) {
            const auto pos = line.find("start=");
            if (pos != std::string::npos) {
                starts.push_back(std::stoull(line.substr(pos + 6)) * 512);
            }
        }
    }
    UniqueFd fd(::open(device.c_str(), O_WRONLY | O_CLOEXEC));
    check_errno(fd.get(), "opening " + device.string());
    for (const auto start : starts) {
        if (start < size) {
            write_zeros(fd.get(), start, std::min<std::uint64_t>(kMiB, size - start), device.string());
        }
    }
    write_zeros(fd.get(), 0, std::min<std::uint64_t>(4 * kMiB, size), device.string());
    if (size > 4 * kMiB) {
        write_zeros(fd.get(), size - kMiB, kMiB, device.string());
    }
    check_errno(::fsync(fd.get()), "syncing " + device.string());
    run_checked({.argv = {"wipefs", "--all", "--quiet", device.string()}});
}

std::string sfdisk_script() {
    std::ostringstream s;
    s << "label: gpt\n"
      << "start=1MiB, size=" << kBiosBootMiB
      << "MiB, type=21686148-6449-6E6F-744E-656564454649, name=\"bios-boot\"\n"
      << "size=" << kEspMiB << "MiB, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name=\"esp\"\n"
      << "size=" << kBootMiB << "MiB, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name=\"" << kBootLabel
      << "\"\n"
      << "type=4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709, name=\"" << kRootLabel << "\"\n";
    return s.str();
}

void write_into(const fs::path& path, const std::string& content, unsigned mode, unsigned dir_mode = 0755) {
    if (!fs::exists(path.parent_path())) {
        fs::create_directories(path.parent_path());
        ::chmod(path.parent_path().c_str(), dir_mode);
    }
    write_file_atomic(path, content, mode);
}

// The deployed system mounts /boot: later upgrades write their boot entries there.
void add_boot_to_fstab(const fs::path& etc) {
    const auto fstab = etc / "fstab";
    std::string text = fs::exists(fstab) ? read_file(fstab) : std::string();
    if (text.find(std::string("LABEL=") + kBootLabel) != std::string::npos) {
        return;
    }
    if (!text.empty() && text.back() != '\n') {
        text += '\n';
    }
    text += std::string("LABEL=") + kBootLabel + " /boot ext4 defaults,nodev,nosuid 0 2\n";
    write_file_atomic(fstab, text, 0644);
}

// What a local source repo (a directory) holds for the plan. Everything that can fail once the disk
// is touched is checked now: the ref, the commit's signature, the media objects a live ISO's repo keeps
// outside it.
struct LocalImage {
    std::string ref;
    std::string commit;
    fs::path media_dir;  // empty: the repo holds every object itself
    std::uint64_t tree_bytes = 0;
};

LocalImage inspect_local_image(
    const fs::path& dir, const InstallOptions& options, const std::string& public_key) {
    LocalImage local;
    std::error_code ec;
    if (!fs::exists(dir / "config")) {
        throw Error(Errc::not_found, "no OSTree repo at " + dir.string());
    }
    auto repo = image::open_repo(dir);
    local.ref = options.ref.empty() ? only_ref(repo.get(), dir.string()) : options.ref;
    GErrorPtr error;
    char* raw = nullptr;
    if (!ostree_repo_resolve_rev(repo.get(), local.ref.c_str(), FALSE, &raw, out(error))) {
        throw Error(Errc::not_found, "no ref '" + local.ref + "' in " + dir.string());
    }
    image::GCharPtr commit(raw);
    local.commit = commit.get();
    verify_local_commit(repo.get(), local.commit, options.public_key, public_key, local.ref);
    GFile* root_raw = nullptr;
    if (!ostree_repo_read_commit(repo.get(), local.commit.c_str(), &root_raw, nullptr, nullptr, out(error))) {
        throw_gerror(error, "reading commit " + local.commit);
    }
    image::GFilePtr root(root_raw);
    // A live ISO's repo keeps the kernel and initramfs on the media: they must be readable now,
    // before the disk is touched.
    if (fs::exists(dir / image::kMediaObjectsFile)) {
        for (const auto& object : image::read_media_objects(dir / image::kMediaObjectsFile)) {
            if (!fs::is_regular_file(options.media_dir / object.media_path, ec)) {
                throw Error(
                    Errc::not_found,
                    dir.string() + " keeps object " + object.checksum + " on its boot media, but " +
                        (options.media_dir / object.media_path).string() +
                        " is not there: give --media-dir the mounted ISO, or a complete --source-repo");
            }
        }
        local.media_dir = options.media_dir;
    }
    local.tree_bytes = recorded_tree_bytes(repo.get(), local.commit).value_or(0);
    if (local.tree_bytes == 0) {  // a commit not made by stormctl image build
        local.tree_bytes = tree_size(root.get());
    }
    return local;
}

// The device node of partition n of the disk at device (/dev/vda 2 -> /dev/vda2).
fs::path partition(const fs::path& device, int n) {
    return device.parent_path() / partition_name(device.filename().string(), n);
}

// Phase "partition": the old system stops booting, then the new table, which the kernel must show as
// device nodes before anything is formatted.
void partition_disk(const fs::path& device, std::uint64_t size, ProgressSink& progress) {
    progress.phase("partition", 4, "steps");
    destroy_bootability(device, size);
    progress.advance(1);
    run_checked(
        {.argv =
             {"sfdisk", "--quiet", "--no-reread", "--no-tell-kernel", "--wipe", "always", device.string()},
         .stdin_data = sfdisk_script()});
    progress.advance(2);
    // The kernel learns the new table from partx: this host's kernel has no partition parsers, and
    // on one that has them, the old partitions go first.
    run({.argv = {"partx", "--delete", device.string()}});
    // Where udev runs (the live system), it re-reads a disk's table once a writer closes it, so the
    // kernel may already have the new partitions and partx then fails with "busy": the nodes decide.
    const auto added = run({.argv = {"partx", "--add", device.string()}});
    progress.advance(3);
    try {
        wait_for_nodes(
            {partition(device, 1), partition(device, 2), partition(device, 3), partition(device, 4)},
            std::chrono::seconds(30));
    } catch (const Error& error) {
        if (!added.ok()) {
            throw Error(
                Errc::io,
                "the kernel did not take the new partition table of " + device.string() +
                    ": partx --add: " + added.err);
        }
        throw;
    }
    progress.advance(4);
}

// Phase "format": the ESP, /boot and the root filesystem (the BIOS boot partition stays raw).
void format_partitions(const fs::path& device, ProgressSink& progress) {
    progress.phase("format", 3, "filesystems");
    run_checked({.argv = {"mkfs.vfat", "-F", "32", "-n", "STORMESP", partition(device, 2).string()}});
    progress.advance(1);
    run_checked({.argv = {"mkfs.ext4", "-q", "-F", "-L", kBootLabel, partition(device, 3).string()}});
    progress.advance(2);
    run_checked({.argv = {"mkfs.ext4", "-q", "-F", "-L", kRootLabel, partition(device, 4).string()}});
    progress.advance(3);
}

// Phase "configure": the node's settings into the new deployment's /etc (node.yaml, cluster.yaml, the
// /boot mount) and root's SSH keys into the stateroot's /var, under the mounted root filesystem.
void configure_deployment(const InstallPlan& plan, const fs::path& etc, const fs::path& root) {
    write_into(etc / std::string(roles::kNodeFilePath).substr(4), roles::render_node_file(plan.node), 0644);
    if (!plan.cluster_file.empty()) {
        write_into(etc / "stormnode" / "cluster.yaml", read_file(plan.cluster_file), 0600);
    }
    if (!plan.root_ssh_keys.empty()) {
        std::string keys;
        for (const auto& k : plan.root_ssh_keys) {
            keys += k + "\n";
        }
        // /root is /var/roothome; the stateroot's /var is shared by its deployments.
        const auto home = root / "ostree" / "deploy" / kOsName / "var" / "roothome";
        fs::create_directories(home);
        ::chmod(home.c_str(), 0700);
        write_into(home / ".ssh" / "authorized_keys", keys, 0600, 0700);
    }
    add_boot_to_fstab(etc);
}

// Phase "bootloader": GRUB's config on /boot, then GRUB for BIOS (in the BIOS boot partition) and UEFI
// (on the ESP).
void install_bootloader(const fs::path& device, const fs::path& boot, ProgressSink& progress) {
    progress.phase("bootloader", 3, "steps");
    write_grub_cfg(boot);
    progress.advance(1);
    install_grub_bios(device, boot, kMiB / 512, kBiosBootMiB * kMiB);
    progress.advance(2);
    install_grub_uefi(partition(device, 2));
    progress.advance(3);
}

}  // namespace

std::uint64_t minimum_disk_size(std::uint64_t tree_bytes) {
    const std::uint64_t fixed = (1 + kBiosBootMiB + kEspMiB + kBootMiB + 1) * kMiB;
    const std::uint64_t root = 2 * tree_bytes + 1024 * kMiB;
    return fixed + root;
}

std::vector<std::string> node_kargs(const std::string& proc_cmdline, const std::vector<std::string>& extra) {
    std::vector<std::string> kargs{std::string("root=LABEL=") + kRootLabel, "rw", "systemd.gpt_auto=0"};
    for (const KernelArg& arg : parse_kernel_cmdline(proc_cmdline)) {
        // stormnode.report=: a network-installed node tells pxe serve when its roles are healthy.
        if (arg.value && (arg.key == "console" || arg.key == "stormnode.report")) {
            kargs.push_back(render_kernel_arg(arg));
        }
    }
    kargs.insert(kargs.end(), extra.begin(), extra.end());
    return kargs;
}

InstallPlan plan_install(const InstallOptions& options) {
    InstallPlan plan;
    const Answers* answers = options.answers ? &*options.answers : nullptr;
    if (answers != nullptr) {
        plan.node = answers->node;
        plan.root_ssh_keys = answers->root_ssh_keys;
        plan.cluster_file = answers->cluster_file;
    }
    if (!options.roles.empty()) {
        plan.node.roles = options.roles;
    }
    if (!options.hostname.empty()) {
        if (!roles::valid_hostname(options.hostname)) {
            throw Error(
                Errc::invalid_input, "--hostname '" + options.hostname + "' is not a valid host name");
        }
        plan.node.hostname = options.hostname;
    }

    // The image first: its size decides which disks are big enough.
    plan.source_url = source_url(options.source_repo);
    std::error_code ec;
    if (!fs::exists(options.public_key, ec)) {
        throw Error(
            Errc::not_found, "the image's public key " + options.public_key.string() + " does not exist");
    }
    plan.public_key = read_file(options.public_key);
    if (plan.source_url.starts_with("file://")) {
        const fs::path dir = plan.source_url.substr(7);
        auto local = inspect_local_image(dir, options, plan.public_key);
        plan.ref = std::move(local.ref);
        plan.commit = std::move(local.commit);
        plan.media_dir = std::move(local.media_dir);
        plan.tree_bytes = local.tree_bytes;
    } else {
        if (options.ref.empty()) {
            throw Error(Errc::invalid_input, "a remote source repo needs --ref");
        }
        plan.ref = options.ref;
        plan.tree_bytes = 2048 * kMiB;  // unknown until pulled: a generous node image
    }
    plan.min_disk_size = minimum_disk_size(plan.tree_bytes);

    std::string disk = options.disk;
    if (disk.empty() && answers != nullptr) {
        disk = answers->selector ? select_disk(*answers->selector, list_disks(options.paths)).device.string()
                                 : answers->disk;
    }
    if (disk.empty()) {
        throw Error(Errc::invalid_input, "no disk: give --disk or an answer file with 'disk'");
    }
    plan.disk = check_target(disk, plan.min_disk_size, options.paths);
    if (!options.wipe && (answers == nullptr || !answers->wipe)) {
        throw Error(
            Errc::refused,
            "installing wipes " + disk + ": confirm with --wipe (or 'wipe: true' in the answer file)");
    }
    plan.kargs = node_kargs(options.proc_cmdline, options.extra_kargs);
    return plan;
}

InstallResult run_install(const InstallPlan& plan, ProgressSink& progress) {
    InstallResult result;
    std::optional<LoopDevice> loop;
    fs::path device = plan.disk.path;
    if (plan.disk.regular_file) {
        loop.emplace(plan.disk.path);
        device = loop->device();
    }
    result.device = device;

    partition_disk(device, plan.disk.size, progress);
    format_partitions(device, progress);

    Mounts mounts;
    mounts.mount(partition(device, 4), mounts.root());
    mounts.mount(partition(device, 3), mounts.root() / "boot");
    auto sysroot = open_sysroot(mounts.root(), true);
    OstreeRepo* repo = sysroot_repo(sysroot.get());

    progress.phase("pull", 0, "objects");
    if (!plan.media_dir.empty()) {
        image::seed_media_objects(
            repo, plan.source_url.substr(std::string_view("file://").size()), plan.media_dir);
    }
    result.commit = pull_verified(repo, plan.source_url, plan.ref, plan.public_key, progress).commit;
    if (!plan.commit.empty() && result.commit != plan.commit) {
        throw Error(
            Errc::aborted,
            "the source's '" + plan.ref + "' moved during the install (" + plan.commit + " -> " +
                result.commit + ")");
    }

    progress.phase("deploy", 0, "");
    auto deployment = deploy_commit(sysroot.get(), plan.ref, result.commit, nullptr, plan.kargs);
    const auto dir = deployment_dir(sysroot.get(), deployment.get());
    result.deployment = fs::relative(dir, mounts.root()).string();

    progress.phase("configure", 0, "");
    configure_deployment(plan, dir / "etc", mounts.root());
    ::sync();

    // Last: only now does the disk boot, and it boots the complete system.
    install_bootloader(device, mounts.root() / "boot", progress);
    ::sync();
    return result;
}

}  // namespace stormnode::installer
