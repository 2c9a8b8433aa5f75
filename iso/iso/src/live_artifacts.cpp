// The live root and the offline-install repo of one commit, stored once: a bare repo and a
// hardlinked checkout of it share every file's inode, and mksquashfs stores a hardlinked file once.
#include "stormnode/iso/live_artifacts.hpp"

#include <stormnode/common/error.hpp>
#include <stormnode/common/subprocess.hpp>
#include <stormnode/common/temp_dir.hpp>
#include <stormnode/image/media_objects.hpp>
#include <stormnode/image/ostree_handles.hpp>

#include <fcntl.h>

#include <filesystem>
#include <string>
#include <vector>

namespace stormnode::iso {
namespace {

namespace fs = std::filesystem;
using image::GErrorPtr;
using image::throw_gerror;
using stormnode::out;

image::Repo open_repo(const fs::path& path) {
    GErrorPtr error;
    image::Repo repo(ostree_repo_new(image::GFilePtr(g_file_new_for_path(path.c_str())).get()));
    if (!ostree_repo_open(repo.get(), nullptr, out(error))) {
        throw_gerror(error, "opening the OSTree repo " + path.string(), Errc::invalid_input);
    }
    return repo;
}

// bare (not bare-user): we run as root, so objects keep their real owners, modes (setuid) and xattrs,
// and the hardlinked live root is exactly the image, not a root-owned approximation of it.
image::Repo create_bare_repo(const fs::path& path) {
    fs::create_directories(path);
    GErrorPtr error;
    image::Repo repo(ostree_repo_new(image::GFilePtr(g_file_new_for_path(path.c_str())).get()));
    if (!ostree_repo_create(repo.get(), OSTREE_REPO_MODE_BARE, nullptr, out(error))) {
        throw_gerror(error, "creating the bare repo " + path.string());
    }
    return repo;
}

std::string resolve(OstreeRepo* repo, const std::string& ref, const fs::path& where) {
    GErrorPtr error;
    image::GCharPtr checksum;
    if (!ostree_repo_resolve_rev(repo, ref.c_str(), FALSE, out(checksum), out(error))) {
        throw_gerror(error, where.string() + ": ref '" + ref + "'", Errc::invalid_input);
    }
    return checksum.get();
}

std::string commit_version(OstreeRepo* repo, const std::string& checksum) {
    GErrorPtr error;
    image::GVariantPtr commit;
    if (!ostree_repo_load_variant(
            repo, OSTREE_OBJECT_TYPE_COMMIT, checksum.c_str(), out(commit), out(error))) {
        throw_gerror(error, "loading commit " + checksum);
    }
    const image::GVariantPtr metadata(g_variant_get_child_value(commit.get(), 0));
    const char* version = nullptr;
    if (g_variant_lookup(metadata.get(), OSTREE_COMMIT_META_KEY_VERSION, "&s", &version) == FALSE) {
        return {};
    }
    return version;
}

// pull-local: the commit, its objects, the ref and the detached metadata (the GPG signature).
void pull_local(OstreeRepo* into, const fs::path& from, const std::string& ref) {
    const std::string url = "file://" + fs::absolute(from).string();
    GVariantBuilder builder;
    g_variant_builder_init(&builder, G_VARIANT_TYPE("a{sv}"));
    const char* refs[] = {ref.c_str(), nullptr};
    g_variant_builder_add(&builder, "{s@v}", "refs", g_variant_new_variant(g_variant_new_strv(refs, -1)));
    g_variant_builder_add(
        &builder, "{s@v}", "flags", g_variant_new_variant(g_variant_new_int32(OSTREE_REPO_PULL_FLAGS_NONE)));
    const image::GVariantPtr options(g_variant_ref_sink(g_variant_builder_end(&builder)));
    GErrorPtr error;
    if (!ostree_repo_pull_with_options(into, url.c_str(), options.get(), nullptr, nullptr, out(error))) {
        throw_gerror(error, "pulling " + ref + " from " + from.string());
    }
}

// Every file of the checkout is a hardlink to its object in the repo (no copy fallback: a copy would
// store the content twice).
void checkout_hardlinked(OstreeRepo* repo, const std::string& checksum, const fs::path& destination) {
    OstreeRepoCheckoutAtOptions options{};
    options.mode = OSTREE_REPO_CHECKOUT_MODE_NONE;
    options.overwrite_mode = OSTREE_REPO_CHECKOUT_OVERWRITE_NONE;
    options.no_copy_fallback = TRUE;
    GErrorPtr error;
    if (!ostree_repo_checkout_at(
            repo, &options, AT_FDCWD, destination.c_str(), checksum.c_str(), nullptr, out(error))) {
        throw_gerror(error, "checking out " + checksum + " to " + destination.string());
    }
}

// The live boot has no deployment to make /etc from /usr/etc: hardlink it into place.
void restore_etc(const fs::path& root) {
    const fs::path usr_etc = root / "usr/etc";
    if (!fs::is_directory(usr_etc)) {
        throw Error(Errc::invalid_input, "the commit has no usr/etc: is it a stormnode image?");
    }
    fs::remove_all(root / "etc");
    fs::copy(
        usr_etc,
        root / "etc",
        fs::copy_options::recursive | fs::copy_options::create_hard_links | fs::copy_options::copy_symlinks);
}

std::string find_kernel_version(const fs::path& root) {
    for (const auto& entry : fs::directory_iterator(root / "usr/lib/modules")) {
        if (fs::exists(entry.path() / "vmlinuz") && fs::exists(entry.path() / "initramfs.img")) {
            return entry.path().filename().string();
        }
    }
    throw Error(Errc::invalid_input, "the commit has no usr/lib/modules/<kver>/{vmlinuz,initramfs.img}");
}

// Takes the kernel and initramfs out of the live tree: both the checkout's link and the repo object
// (one inode), and lists the objects in the repo for the installer. A file whose inode has other links
// stays: its content would be in the squashfs anyway.
void move_boot_files_to_media(
    OstreeRepo* repo,
    const std::string& commit,
    const fs::path& root,
    const std::vector<std::pair<std::string, std::string>>& tree_to_media) {
    std::vector<image::MediaObject> objects;
    for (const auto& [in_tree, on_media] : tree_to_media) {
        auto object = image::describe_media_object(repo, commit, in_tree, on_media);
        const fs::path checkout_file = root / in_tree;
        const fs::path object_file = root / kLiveRepoPath / "objects" / object.checksum.substr(0, 2) /
                                     (object.checksum.substr(2) + ".file");
        if (fs::hard_link_count(checkout_file) != 2 || !fs::equivalent(checkout_file, object_file)) {
            continue;
        }
        fs::remove(checkout_file);
        fs::remove(object_file);
        objects.push_back(std::move(object));
    }
    write_file_atomic(root / kLiveRepoPath / image::kMediaObjectsFile, image::format_media_objects(objects));
}

std::uint64_t tree_bytes(const fs::path& root) {
    std::uint64_t total = 0;
    for (const auto& entry : fs::recursive_directory_iterator(root)) {
        if (entry.is_regular_file() && !entry.is_symlink()) {
            total += entry.file_size();
        }
    }
    return total;
}

}  // namespace

LiveArtifacts make_live_artifacts(const LiveArtifactsOptions& options, ProgressSink& progress) {
    LiveArtifacts result;
    fs::create_directories(options.output_dir);
    const fs::path work = options.output_dir / ".live-work";
    fs::remove_all(work);
    fs::create_directories(work);
    const fs::path root = work / "root";
    const fs::path repo_dir = work / "repo";

    progress.phase("resolve", 0, "");
    const image::Repo source = open_repo(options.repo);
    result.commit = resolve(source.get(), options.ref, options.repo);
    result.version = commit_version(source.get(), result.commit);
    progress.message(
        "commit " + result.commit + (result.version.empty() ? "" : " version " + result.version));

    progress.phase("pull", 0, "");
    const image::Repo live_repo = create_bare_repo(repo_dir);
    pull_local(live_repo.get(), options.repo, options.ref);

    progress.phase("checkout", 0, "");
    checkout_hardlinked(live_repo.get(), result.commit, root);
    restore_etc(root);
    result.kernel_version = find_kernel_version(root);
    // The checkout's ostree -> sysroot/ostree link makes this /ostree/repo in the live system.
    fs::create_directories((root / kLiveRepoPath).parent_path());
    // tmp -> sysroot/tmp: a deployment finds it on the physical root; the live root needs its own.
    fs::create_directories(root / "sysroot/tmp");
    fs::permissions(root / "sysroot/tmp", fs::perms::all | fs::perms::sticky_bit);
    fs::rename(repo_dir, root / kLiveRepoPath);

    const fs::path modules = root / "usr/lib/modules" / result.kernel_version;
    result.kernel = options.output_dir / "vmlinuz";
    result.initramfs = options.output_dir / "initrd.img";
    result.squashfs = options.output_dir / "squashfs.img";
    fs::copy_file(modules / "vmlinuz", result.kernel, fs::copy_options::overwrite_existing);
    fs::copy_file(modules / "initramfs.img", result.initramfs, fs::copy_options::overwrite_existing);
    if (!options.media_kernel_path.empty() && !options.media_initramfs_path.empty()) {
        const std::string modules_in_tree = "usr/lib/modules/" + result.kernel_version + "/";
        move_boot_files_to_media(
            live_repo.get(),
            result.commit,
            root,
            {{modules_in_tree + "vmlinuz", options.media_kernel_path},
             {modules_in_tree + "initramfs.img", options.media_initramfs_path}});
    }
    // Served over HTTP and TFTP for network boot: readable by the servers' unprivileged users.
    for (const auto& file : {result.kernel, result.initramfs}) {
        fs::permissions(
            file,
            fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read | fs::perms::others_read);
    }

    // Hardlinked files are counted once per link here: the figure is the apparent size.
    progress.phase("squashfs", tree_bytes(root / "usr"), "bytes");
    fs::remove(result.squashfs);
    run_checked(
        {.argv = {
             "mksquashfs",
             root.string(),
             result.squashfs.string(),
             "-noappend",
             "-no-progress",
             "-quiet",
             "-comp",
             "zstd",
             "-Xcompression-level",
             std::to_string(options.squashfs_zstd_level),
             "-wildcards",
             "-e",
             "proc/*",
             "sys/*",
             "dev/*",
             "run/*",
             "tmp/*"}});
    progress.advance(fs::file_size(result.squashfs));
    progress.message("squashfs " + std::to_string(fs::file_size(result.squashfs) >> 20) + " MiB");
    fs::remove_all(work);
    return result;
}

}  // namespace stormnode::iso
