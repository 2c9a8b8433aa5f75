#include "stormnode/image/build.hpp"

#include <stormnode/common/error.hpp>
#include <stormnode/common/strings.hpp>
#include <stormnode/common/subprocess.hpp>
#include <stormnode/common/temp_dir.hpp>
#include <stormnode/image/bootstrap_progress.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <set>

namespace stormnode::image {
namespace {

// Run in this order; the names are the files in the hooks directory.
const std::vector<std::string> kSetupHooks{"setup-apt-cache"};
const std::vector<std::string> kEssentialHooks{"essential-policy-rc.d", "essential-defer-initramfs"};
const std::vector<std::string> kCustomizeHooks{
    "customize-10-apt-cache-out", "customize-20-units", "customize-30-initramfs", "customize-40-scrub"};
// Read by the hooks, so part of the cache key.
const std::vector<std::string> kHookData{"keep-enabled.list"};

// The roles named, as catalog entries to resolve: "common" is the layer every role folds in.
std::vector<roles::ResolvedRole> resolved_roles(const Manifest& manifest, const roles::Catalog& catalog) {
    std::vector<roles::ResolvedRole> out;
    for (const auto& name : manifest.roles) {
        const auto* role = catalog.find(name);
        if (role == nullptr) {
            throw Error(Errc::invalid_input, manifest.file.string() + ": unknown role '" + name + "'");
        }
        if (role->kind != roles::RoleKind::role) {
            out.push_back({name, {}, role->body});
            continue;
        }
        out.push_back(roles::resolve(catalog, name));
        for (const auto& [variant, body] : role->variants) {
            (void)body;
            out.push_back(roles::resolve(catalog, name, variant));  // an image carries every variant
        }
    }
    return out;
}

// What a .deb installs, without the file times and compression that change with every package build:
// the cache of root filesystems then survives rebuilding the same stormnode package.
std::string deb_content_digest(const std::filesystem::path& deb) {
    ArchiveIn outer(archive_read_new());
    archive_read_support_format_ar(outer.get());
    check_archive(
        archive_read_open_filename(outer.get(), deb.c_str(), 1 << 16),
        outer.get(),
        "opening " + deb.string());
    std::string material;
    struct archive_entry* e = nullptr;
    while (check_archive(archive_read_next_header(outer.get(), &e), outer.get(), "reading " + deb.string()) !=
           ARCHIVE_EOF) {
        const std::string member = archive_entry_pathname(e);
        std::string bytes(static_cast<std::size_t>(archive_entry_size(e)), '\0');
        if (!bytes.empty() && archive_read_data(outer.get(), bytes.data(), bytes.size()) !=
                                  static_cast<la_ssize_t>(bytes.size())) {
            throw Error(Errc::archive, "reading member " + member + " of " + deb.string());
        }
        if (!member.starts_with("control.tar") && !member.starts_with("data.tar")) {
            continue;
        }
        ArchiveIn inner(archive_read_new());
        archive_read_support_filter_all(inner.get());
        archive_read_support_format_tar(inner.get());
        check_archive(archive_read_open_memory(inner.get(), bytes.data(), bytes.size()), inner.get(), member);
        struct archive_entry* f = nullptr;
        while (check_archive(archive_read_next_header(inner.get(), &f), inner.get(), member) != ARCHIVE_EOF) {
            material += member.substr(0, 4) + " " + archive_entry_pathname(f) + " " +
                        std::to_string(archive_entry_mode(f)) + " " + std::to_string(archive_entry_uid(f)) +
                        ":" + std::to_string(archive_entry_gid(f)) + " " +
                        (archive_entry_symlink(f) != nullptr ? archive_entry_symlink(f) : "") + " ";
            std::string data;
            std::array<char, 65536> buf{};
            la_ssize_t n = 0;
            while ((n = archive_read_data(inner.get(), buf.data(), buf.size())) > 0) {
                data.append(buf.data(), static_cast<std::size_t>(n));
            }
            material += sha256_hex(data) + "\n";
        }
    }
    return sha256_hex(material);
}

}  // namespace

std::set<std::string> manifest_role_names(const roles::Catalog& catalog) {
    std::set<std::string> names;
    for (const auto& entry : catalog.roles) {
        if (entry.second.kind != roles::RoleKind::mixin) {
            names.insert(entry.first);
        }
    }
    return names;
}

std::vector<std::string> image_packages(const Manifest& manifest, const roles::Catalog& catalog) {
    std::set<std::string> all(manifest.base_packages.begin(), manifest.base_packages.end());
    all.insert(manifest.kernel);
    for (const auto& r : resolved_roles(manifest, catalog)) {
        all.insert(r.body.packages.begin(), r.body.packages.end());
    }
    all.insert(manifest.extra_packages.begin(), manifest.extra_packages.end());
    return {all.begin(), all.end()};
}

std::vector<std::string> node_state_paths(const Manifest& manifest, const roles::Catalog& catalog) {
    std::set<std::string> paths;
    for (const auto& r : resolved_roles(manifest, catalog)) {
        for (const auto& s : r.body.node_state) {
            paths.insert(s.path);
        }
    }
    return {paths.begin(), paths.end()};
}

std::vector<std::string> mmdebstrap_argv(const BootstrapPlan& plan) {
    std::vector<std::string> argv{
        "mmdebstrap",
        "--mode=root",
        "--variant=minbase",
        "--format=tar",
        // apt's downloads, dpkg's "Setting up" lines and the hooks' output (dracut) reach the progress
        // reader line by line; without it mmdebstrap holds apt's output back.
        "--verbose",
        "--architectures=" + plan.architecture,
        // Keep every downloaded .deb for the cache: the setup hook puts cached ones in place first.
        "--skip=download/empty",
        "--skip=essential/unlink",
        "--aptopt=Acquire::Retries \"3\"",
        "--include=" + join(plan.packages, ","),
    };
    // Into the chroot's dpkg configuration before the first package: every dpkg run honours them, and the
    // image keeps the file (/etc/dpkg/dpkg.cfg.d/99mmdebstrap) as the record of what was left out.
    for (const auto& glob : plan.path_exclude) {
        argv.push_back("--dpkgopt=path-exclude=" + glob);
    }
    for (const auto& glob : plan.path_include) {
        argv.push_back("--dpkgopt=path-include=" + glob);
    }
    for (const auto& deb : plan.debs) {
        argv.push_back("--include=" + std::filesystem::absolute(deb).string());
    }
    if (!plan.debs.empty()) {
        // Makes the local .debs visible inside the chroot under the same path (mmdebstrap's own hook).
        argv.emplace_back("--hook-dir=/usr/share/mmdebstrap/hooks/file-mirror-automount");
    }
    // dpkg under eatmydata: no fsync per unpacked file; the tarball is written once at the end anyway.
    // mmdebstrap's hook fetches eatmydata into the chroot and removes it again before the customize
    // hooks below run.
    argv.emplace_back("--hook-dir=/usr/share/mmdebstrap/hooks/eatmydata");
    for (const auto& h : kSetupHooks) {
        argv.push_back("--setup-hook=" + (plan.hooks_dir / h).string());
    }
    for (const auto& h : kEssentialHooks) {
        argv.push_back("--essential-hook=" + (plan.hooks_dir / h).string());
    }
    for (const auto& h : kCustomizeHooks) {
        argv.push_back("--customize-hook=" + (plan.hooks_dir / h).string());
    }
    argv.push_back(plan.suite);
    argv.push_back(plan.output.string());
    if (plan.mirror) {
        argv.push_back(*plan.mirror);
    }
    return argv;
}

std::string rootfs_cache_key(const Manifest& manifest, const BootstrapPlan& plan) {
    std::string material = manifest.sha256 + "\n" + join(plan.packages, " ") + "\n" +
                           join(plan.dracut_modules, " ") + "\n" + (plan.mirror ? *plan.mirror : "") + "\n";
    for (const auto& deb : plan.debs) {
        material += deb_content_digest(deb) + "\n";
    }
    for (const auto& list : {kSetupHooks, kEssentialHooks, kCustomizeHooks, kHookData}) {
        for (const auto& h : list) {
            material += h + ":" + sha256_hex(read_file(plan.hooks_dir / h)) + "\n";
        }
    }
    if (!plan.node_state_list.empty()) {
        material += read_file(plan.node_state_list);
    }
    return sha256_hex(material).substr(0, 32);
}

std::filesystem::path default_hooks_dir() {
    if (const char* env = std::getenv("STORMNODE_HOOKS_DIR"); env != nullptr && *env != '\0') {  // NOLINT
        return env;
    }
    const std::filesystem::path installed = STORMNODE_INSTALLED_HOOKS_DIR;
    if (std::filesystem::exists(installed)) {
        return installed;
    }
    return STORMNODE_SOURCE_HOOKS_DIR;
}

namespace {

// Runs mmdebstrap into plan.output, its output read line by line into progress phases, then moves the
// tar to its cache name.
void bootstrap(
    const BootstrapPlan& plan,
    const std::filesystem::path& tar,
    const Manifest& manifest,
    ProgressSink& progress) {
    BootstrapProgress reader(progress);
    const auto on_line = [&reader](std::string_view line) {
        reader.line(line);
    };
    const auto r = run(Command{
        .argv = mmdebstrap_argv(plan),
        .env =
            {{"STORMNODE_APT_CACHE", plan.apt_cache.string()},
             {"STORMNODE_DRACUT_MODULES", join(manifest.dracut.modules, " ")},
             {"STORMNODE_NODE_STATE_LIST", plan.node_state_list.string()},
             {"SOURCE_DATE_EPOCH", std::to_string(source_date_epoch())},
             // Debian's kernel and dracut postinsts would each build an initramfs (twice, ~1 min each):
             // the customize hook builds the one the image needs, once.
             {"INITRD", "No"}},
        // Verbose output is long: only its last lines are kept, for the error message.
        .capture_stdout = false,
        .capture_stderr = false,
        .on_stdout_line = on_line,
        .on_stderr_line = on_line,
    });
    if (!r.ok()) {
        std::error_code ec;
        std::filesystem::remove(plan.output, ec);
        // Its last lines say what went wrong (apt's E: lines, a hook's message).
        throw Error(
            Errc::io,
            "mmdebstrap failed (exit " + std::to_string(r.exit_status) + "); its last output:\n" +
                reader.tail());
    }
    const auto tar_bytes = std::filesystem::file_size(plan.output);
    progress.advance(tar_bytes);
    progress.message(
        std::to_string(reader.packages_set_up()) + " packages installed, " +
        std::to_string(reader.downloaded_packages()) + " downloaded (" +
        std::to_string(reader.downloaded_bytes()) + " bytes; the rest from the cache), " +
        std::to_string(reader.initramfs_modules()) +
        " dracut modules in the initramfs, root filesystem tar " + std::to_string(tar_bytes) + " bytes");
    std::filesystem::rename(plan.output, tar);
}

// The root filesystem tar: given, cached under its key, or bootstrapped now.
std::filesystem::path rootfs_tar(
    const BuildOptions& options,
    const Manifest& manifest,
    BootstrapPlan plan,
    bool& cached,
    ProgressSink& progress) {
    if (options.rootfs_tar.has_value()) {
        return options.rootfs_tar.value();
    }
    const auto tar = options.cache_dir / "image" / (rootfs_cache_key(manifest, plan) + ".tar");
    if (options.reuse_rootfs && std::filesystem::exists(tar)) {
        cached = true;
        progress.phase("bootstrap", 0, "");
        progress.message("reusing the cached root filesystem " + tar.string());
        return tar;
    }
    plan.output = tar;
    plan.output += ".partial-" + std::to_string(::getpid());  // two builds may share a cache
    progress.phase("bootstrap", plan.packages.size(), "packages");
    progress.message(
        "mmdebstrap " + manifest.suite + ": " + std::to_string(plan.packages.size()) +
        " packages; the initramfs (dracut " + join(manifest.dracut.modules, " ") + ") is made inside");
    bootstrap(plan, tar, manifest, progress);
    return tar;
}

GpgKey signing_key(const BuildOptions& options) {
    if (options.gpg.has_value()) {
        return options.gpg.value();
    }
    return ensure_build_key(options.build_key_dir);
}

}  // namespace

BuildResult build_image(const BuildOptions& options, ProgressSink& progress) {
    BuildResult result;
    const auto catalog = roles::load_valid_catalog(options.catalog_dir);
    const auto manifest = load_valid_manifest(options.manifest, manifest_role_names(catalog));
    result.packages = image_packages(manifest, catalog);

    // The key first: it is shipped in the image, and a missing key must fail before the long part.
    const GpgKey key = signing_key(options);
    result.public_key = export_public_key(key);

    // cache_dir/apt: downloaded .debs; cache_dir/image: root filesystem tars by key.
    std::filesystem::create_directories(options.cache_dir / "image");
    std::filesystem::create_directories(options.cache_dir / "apt");
    const auto state_list =
        options.cache_dir / "image" / ("node-state-" + manifest.sha256.substr(0, 16) + ".list");
    {
        std::string text;
        for (const auto& p : node_state_paths(manifest, catalog)) {
            text += p + "\n";
        }
        write_file_atomic(state_list, text);
    }
    BootstrapPlan plan;
    plan.suite = manifest.suite;
    plan.mirror = manifest.mirror;
    plan.architecture = manifest.debian_architecture();
    plan.packages = result.packages;
    plan.debs = options.debs;
    plan.hooks_dir = options.hooks_dir.empty() ? default_hooks_dir() : options.hooks_dir;
    plan.apt_cache = options.cache_dir / "apt";
    plan.node_state_list = state_list;
    plan.dracut_modules = manifest.dracut.modules;
    plan.path_exclude = manifest.path_exclude;
    plan.path_include = manifest.path_include;
    for (const auto& deb : plan.debs) {
        if (!std::filesystem::is_regular_file(deb)) {
            throw Error(Errc::not_found, "the package '" + deb.string() + "' does not exist");
        }
    }
    result.rootfs_tar = rootfs_tar(options, manifest, plan, result.rootfs_cached, progress);

    auto repo = open_or_create_repo(options.repo, RepoMode::archive);
    CommitOptions commit;
    commit.ref = manifest.ref();
    commit.subject = "stormnode " + manifest.version + " (" + manifest.file.filename().string() + ")";
    commit.version = manifest.version;
    commit.roles = manifest.roles;
    commit.manifest_sha256 = manifest.sha256;
    commit.timestamp = source_date_epoch();
    commit.gpg = key;
    commit.import.extra_files.push_back({kPublicKeyPath, result.public_key, 0644});
    commit.import.extra_files.push_back(
        {std::string("usr/etc/ostree/remotes.d/") + kRemoteName + ".conf",
         std::string("[remote \"") + kRemoteName + "\"]\nurl=" + options.remote_url +
             "\ngpg-verify=true\ngpgkeypath=/" + kPublicKeyPath + "\n",
         0644});
    const int fd = ::open(result.rootfs_tar.c_str(), O_RDONLY | O_CLOEXEC);
    check_errno(fd, "opening the root filesystem tar '" + result.rootfs_tar.string() + "'");
    UniqueFd tar(fd);
    result.commit = commit_tar(repo.get(), tar.get(), commit, progress);
    // The build repo verifies its own commits the way a node does: through a remote with the key.
    add_verifying_remote(repo.get(), kRemoteName, options.remote_url, result.public_key);
    return result;
}

}  // namespace stormnode::image
