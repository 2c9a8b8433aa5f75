// `stormctl image build|list|diff`: argument parsing and output only; the work is in stormnode::image.
#include <stormnode/catalog/catalog.hpp>
#include <stormnode/common/log.hpp>
#include <stormnode/image/build.hpp>
#include <stormnode/image/cli.hpp>
#include <stormnode/image/repo.hpp>

#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <memory>
#include <set>

namespace stormnode::image {
namespace {

// Progress as log lines: one per phase, and the amounts when a phase ends.
class LogProgress final : public ProgressSink {
public:
    ~LogProgress() override { finish(); }
    void phase(std::string_view name, std::uint64_t total, std::string_view unit) override {
        finish();
        name_ = name;
        unit_ = unit;
        total_ = total;
        done_ = 0;
        started_ = std::chrono::steady_clock::now();
        log::info("image: " + name_ + " ...");
    }
    void advance(std::uint64_t done) override { done_ = done; }
    void message(std::string_view text) override { log::info("image: " + std::string(text)); }
    void finish() {
        if (name_.empty()) {
            return;
        }
        const auto secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
        char line[160];
        std::snprintf(line, sizeof line, "image: %s done in %.1f s", name_.c_str(), secs);
        std::string text = line;
        if (done_ > 0 && !unit_.empty()) {
            text += " (" + std::to_string(done_) + " " + unit_ + ")";
        }
        log::info(text);
        name_.clear();
    }

private:
    std::string name_;
    std::string unit_;
    std::uint64_t total_ = 0;
    std::uint64_t done_ = 0;
    std::chrono::steady_clock::time_point started_;
};

std::string format_time(std::uint64_t t) {
    const auto tt = static_cast<std::time_t>(t);
    std::tm tm{};
    gmtime_r(&tt, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%SZ", &tm);
    return buf;
}

struct BuildArgs {
    std::string manifest = "image/default.yaml";
    std::string repo;
    std::string gpg_homedir;
    std::string gpg_key;
    std::string build_key_dir = "/var/lib/stormnode-build/gpg";
    std::string catalog;
    std::string cache = "/var/cache/stormnode";
    std::string hooks;
    std::vector<std::string> debs;
    std::string rootfs_tar;
    std::string remote_url = "http://stormnode-repo.invalid/ostree";
    bool no_cache = false;
};

struct RepoArgs {
    std::string repo;
    std::string ref = "stormnode/bookworm/x86_64/node";
    std::string remote = kRemoteName;
    std::string a;
    std::string b;
};

void run_build(const BuildArgs& args) {
    if (args.gpg_key.empty() != args.gpg_homedir.empty()) {
        throw Error(Errc::invalid_input, "--gpg-key and --gpg-homedir go together");
    }
    BuildOptions o;
    o.manifest = args.manifest;
    o.repo = args.repo;
    o.catalog_dir = args.catalog.empty() ? roles::default_catalog_dir() : std::filesystem::path(args.catalog);
    if (!args.gpg_key.empty()) {
        o.gpg = GpgKey{args.gpg_homedir, args.gpg_key};
    }
    o.build_key_dir = args.build_key_dir;
    o.cache_dir = args.cache;
    o.hooks_dir = args.hooks;
    for (const auto& d : args.debs) {
        o.debs.emplace_back(d);
    }
    if (!args.rootfs_tar.empty()) {
        o.rootfs_tar = args.rootfs_tar;
    }
    o.reuse_rootfs = !args.no_cache;
    o.remote_url = args.remote_url;
    LogProgress progress;
    const auto r = build_image(o, progress);
    progress.finish();
    const auto& c = r.commit;
    std::cout << "commit " << c.commit << "\nref " << c.ref << "\n";
    std::cout << "tree " << c.tree << "\nkernel " << c.import.kernel_version << "\npackages "
              << r.packages.size() << " requested, " << c.import.packages.size() << " installed\n";
    std::cout << "objects written " << c.objects_written << " (" << c.bytes_written << " bytes)\n";
    std::cout << "signed " << (c.signed_commit ? "yes" : "no") << "\n";
    if (c.delta_bytes) {
        std::cout << "delta from " << c.parent << " " << *c.delta_bytes << " bytes\n";
    }
}

void run_list(const RepoArgs& args) {
    auto repo = open_repo(args.repo);
    for (const auto& c : list_commits(repo.get(), args.ref)) {
        const auto sig = verify_commit(repo.get(), c.checksum, args.remote);
        std::cout << c.checksum << "  " << format_time(c.timestamp) << "  version " << c.version << "  roles "
                  << (c.roles.empty() ? "-" : "");
        for (std::size_t i = 0; i < c.roles.size(); ++i) {
            std::cout << (i ? "," : "") << c.roles[i];
        }
        std::cout << "  packages " << c.packages.size() << "  signature " << to_string(sig.state);
        if (sig.state != SignatureState::good) {
            std::cout << " (" << sig.detail << ")";
        }
        std::cout << "\n";
    }
}

void run_diff(const RepoArgs& args) {
    auto repo = open_repo(args.repo);
    const auto a = read_commit_info(repo.get(), args.a);
    const auto b = read_commit_info(repo.get(), args.b);
    std::cout << "from " << a.checksum << " (version " << a.version << ")\nto   " << b.checksum
              << " (version " << b.version << ")\n";
    const auto changes = diff_packages(a, b);
    for (const auto& ch : changes) {
        if (ch.old_version.empty()) {
            std::cout << "+ " << ch.name << " " << ch.new_version << "\n";
        } else if (ch.new_version.empty()) {
            std::cout << "- " << ch.name << " " << ch.old_version << "\n";
        } else {
            std::cout << "~ " << ch.name << " " << ch.old_version << " -> " << ch.new_version << "\n";
        }
    }
    std::cout << changes.size() << " package change(s)\n";
    if (const auto size = static_delta_size(repo.get(), a.checksum, b.checksum)) {
        std::cout << "static delta " << *size << " bytes\n";
    } else {
        std::cout << "static delta: none in the repo\n";
    }
}

}  // namespace

void add_image_commands(CLI::App& app, int& exit_code) {
    auto* image = app.add_subcommand("image", "Compose and inspect the OSTree node image");
    image->require_subcommand(1);

    auto build_args = std::make_shared<BuildArgs>();
    auto* build = image->add_subcommand("build", "Compose the signed OSTree commit from a manifest");
    build->add_option("manifest", build_args->manifest, "Image manifest")->capture_default_str();
    build->add_option("--repo", build_args->repo, "OSTree repo (created when missing)")->required();
    build->add_option("--gpg-homedir", build_args->gpg_homedir, "GnuPG home with the signing key");
    build->add_option("--gpg-key", build_args->gpg_key, "Signing key id or fingerprint");
    build->add_option("--build-key-dir", build_args->build_key_dir, "Where the generated build key is kept")
        ->capture_default_str();
    build->add_option("--catalog", build_args->catalog, "Role catalog directory");
    build->add_option("--cache", build_args->cache, "Cache of .debs and root filesystems")
        ->capture_default_str();
    build->add_option("--hooks", build_args->hooks, "mmdebstrap hooks directory");
    build->add_option("--deb", build_args->debs, "Local .deb to install (the stormnode package)");
    build->add_option(
        "--rootfs-tar", build_args->rootfs_tar, "Import this root filesystem tar, skip mmdebstrap");
    build->add_option("--remote-url", build_args->remote_url, "URL of the image's 'stormnode' remote")
        ->capture_default_str();
    build->add_flag("--no-cache", build_args->no_cache, "Bootstrap again even when a cached rootfs matches");
    build->callback([build_args, &exit_code] {
        run_build(*build_args);
        exit_code = 0;
    });

    auto pkg_args = std::make_shared<BuildArgs>();
    auto* packages = image->add_subcommand("packages", "The Debian packages a manifest installs, one a line");
    packages->add_option("manifest", pkg_args->manifest, "Image manifest")->capture_default_str();
    packages->add_option("--catalog", pkg_args->catalog, "Role catalog directory");
    packages->callback([pkg_args, &exit_code] {
        const auto catalog = roles::load_valid_catalog(
            pkg_args->catalog.empty() ? roles::default_catalog_dir()
                                      : std::filesystem::path(pkg_args->catalog));
        const auto manifest = load_valid_manifest(pkg_args->manifest, manifest_role_names(catalog));
        for (const auto& p : image_packages(manifest, catalog)) {
            std::cout << p << "\n";
        }
        exit_code = 0;
    });

    auto list_args = std::make_shared<RepoArgs>();
    auto* list = image->add_subcommand("list", "Commits of the image ref with versions and signature status");
    list->add_option("--repo", list_args->repo, "OSTree repo")->required();
    list->add_option("--ref", list_args->ref, "Ref")->capture_default_str();
    list->add_option("--remote", list_args->remote, "Remote whose keys verify the signatures")
        ->capture_default_str();
    list->callback([list_args, &exit_code] {
        run_list(*list_args);
        exit_code = 0;
    });

    auto diff_args = std::make_shared<RepoArgs>();
    auto* diff = image->add_subcommand("diff", "Package changes between two commits, and their delta size");
    diff->add_option("a", diff_args->a, "From (commit or ref)")->required();
    diff->add_option("b", diff_args->b, "To (commit or ref)")->required();
    diff->add_option("--repo", diff_args->repo, "OSTree repo")->required();
    diff->callback([diff_args, &exit_code] {
        run_diff(*diff_args);
        exit_code = 0;
    });
}

}  // namespace stormnode::image
