#include "sysroot_ops.hpp"

#include <stormnode/image/pull.hpp>
#include <stormnode/image/repo.hpp>

#include <unistd.h>

#include <initializer_list>
#include <utility>

namespace stormnode::installer {
namespace fs = std::filesystem;
using image::GErrorPtr;
using image::throw_gerror;

namespace {

constexpr const char* kTransientRemote = "stormnode-install-source";

std::string resolve(OstreeRepo* repo, const std::string& refspec) {
    GErrorPtr error;
    char* raw = nullptr;
    if (!ostree_repo_resolve_rev(repo, refspec.c_str(), FALSE, &raw, out(error))) {
        throw_gerror(error, "resolving '" + refspec + "'");
    }
    image::GCharPtr checksum(raw);
    return checksum.get();
}

}  // namespace

Sysroot open_sysroot(const fs::path& root, bool initialize) {
    image::GFilePtr path(g_file_new_for_path(root.c_str()));
    Sysroot sysroot(ostree_sysroot_new(path.get()));
    GErrorPtr error;
    if (initialize) {
        if (!ostree_sysroot_ensure_initialized(sysroot.get(), nullptr, out(error))) {
            throw_gerror(error, "initializing the OSTree sysroot in " + root.string());
        }
        // What `ostree admin init-fs` adds beside ostree/: a deployment's /tmp is a link to
        // sysroot/tmp, so the physical root needs a world-writable sticky tmp.
        for (const auto& [name, mode] : std::initializer_list<std::pair<const char*, fs::perms>>{
                 {"dev", fs::perms(0755)},
                 {"proc", fs::perms(0755)},
                 {"run", fs::perms(0755)},
                 {"sys", fs::perms(0755)},
                 {"root", fs::perms(0700)},
                 {"tmp", fs::perms(01777)}}) {
            fs::create_directories(root / name);
            fs::permissions(root / name, mode);
        }
    }
    if (!ostree_sysroot_load(sysroot.get(), nullptr, out(error))) {
        throw_gerror(error, "loading the OSTree sysroot in " + root.string());
    }
    if (initialize) {
        OstreeRepo* repo = sysroot_repo(sysroot.get());
        KeyFilePtr config(ostree_repo_copy_config(repo));
        // Debian's GRUB has no blscfg and ostree's detection looks for Fedora's grub2-mkconfig: we
        // write grub.cfg from the BLS entries ourselves.
        g_key_file_set_string(config.get(), "sysroot", "bootloader", "none");
        if (!ostree_repo_write_config(repo, config.get(), out(error))) {
            throw_gerror(error, "writing the sysroot repo's config");
        }
        if (!ostree_sysroot_init_osname(sysroot.get(), kOsName, nullptr, out(error))) {
            throw_gerror(error, std::string("creating the OSTree stateroot '") + kOsName + "'");
        }
        if (!ostree_sysroot_load(sysroot.get(), nullptr, out(error))) {
            throw_gerror(error, "loading the OSTree sysroot in " + root.string());
        }
    }
    return sysroot;
}

OstreeRepo* sysroot_repo(OstreeSysroot* sysroot) {
    OstreeRepo* repo = nullptr;
    GErrorPtr error;
    if (!ostree_sysroot_get_repo(sysroot, &repo, nullptr, out(error))) {
        throw_gerror(error, "opening the sysroot's repo");
    }
    // get_repo hands out a new reference; the sysroot keeps its own, so this one can go.
    g_object_unref(repo);
    return repo;
}

std::string source_url(const std::string& dir_or_url) {
    if (dir_or_url.find("://") != std::string::npos) {
        return dir_or_url;
    }
    return "file://" + fs::absolute(dir_or_url).lexically_normal().string();
}

namespace {

bool remove_transient_remote(OstreeRepo* repo, GError** error) {
    return ostree_repo_remote_change(
               repo,
               nullptr,
               OSTREE_REPO_REMOTE_CHANGE_DELETE_IF_EXISTS,
               kTransientRemote,
               nullptr,
               nullptr,
               nullptr,
               error) != FALSE;
}

}  // namespace

Pulled pull_verified(
    OstreeRepo* repo,
    const std::string& url,
    const std::string& ref,
    const std::string& public_key,
    ProgressSink& progress) {
    GErrorPtr error;
    // A leftover from an interrupted run would carry an old URL or key.
    (void)remove_transient_remote(repo, nullptr);
    image::add_verifying_remote(repo, kTransientRemote, url, public_key);
    Pulled pulled;
    std::string& commit = pulled.commit;
    try {
        // This remote has no ref here yet: libostree finds a static delta from what the repo holds
        // through the server's summary (image build writes it with every commit).
        pulled.stats = image::pull_ref(repo, kTransientRemote, ref, progress);
        commit = resolve(repo, std::string(kTransientRemote) + ":" + ref);
        // Belt and braces: the commit in the repo verifies against the key, whatever the pull did.
        const auto sig = image::verify_commit(repo, commit, kTransientRemote);
        if (sig.state != image::SignatureState::good) {
            throw Error(
                Errc::refused,
                "refusing commit " + commit + " of '" + ref + "': signature " +
                    std::string(image::to_string(sig.state)) + " (" + sig.detail + ")");
        }
    } catch (...) {
        (void)remove_transient_remote(repo, nullptr);
        throw;
    }
    if (!ostree_repo_set_ref_immediate(repo, kRemote, ref.c_str(), commit.c_str(), nullptr, out(error))) {
        throw_gerror(error, "setting ref " + std::string(kRemote) + ":" + ref);
    }
    ostree_repo_set_ref_immediate(repo, kTransientRemote, ref.c_str(), nullptr, nullptr, nullptr);
    // The node's own remote comes from its /etc/ostree/remotes.d (the image ships it, with the key);
    // a second definition in the repo config would make ostree refuse both.
    if (!remove_transient_remote(repo, out(error))) {
        throw_gerror(error, "removing the transient remote");
    }
    return pulled;
}

Pulled pull_from_remote(OstreeRepo* repo, const std::string& ref, ProgressSink& progress) {
    Pulled pulled;
    pulled.stats = image::pull_ref(repo, kRemote, ref, progress);
    pulled.commit = resolve(repo, std::string(kRemote) + ":" + ref);
    return pulled;
}

Deployment deploy_commit(
    OstreeSysroot* sysroot,
    const std::string& ref,
    const std::string& commit,
    OstreeDeployment* merge,
    const std::optional<std::vector<std::string>>& kargs) {
    const std::string refspec = std::string(kRemote) + ":" + ref;
    KeyFilePtr origin(ostree_sysroot_origin_new_from_refspec(sysroot, refspec.c_str()));
    std::vector<char*> argv;
    if (kargs) {
        for (const auto& k : *kargs) {
            argv.push_back(const_cast<char*>(k.c_str()));
        }
        argv.push_back(nullptr);
    }
    GErrorPtr error;
    OstreeDeployment* raw = nullptr;
    if (!ostree_sysroot_deploy_tree(
            sysroot,
            kOsName,
            commit.c_str(),
            origin.get(),
            merge,
            kargs ? argv.data() : nullptr,
            &raw,
            nullptr,
            out(error))) {
        throw_gerror(error, "deploying " + commit);
    }
    Deployment deployment(raw);
    if (!ostree_sysroot_simple_write_deployment(
            sysroot,
            kOsName,
            deployment.get(),
            merge,
            OSTREE_SYSROOT_SIMPLE_WRITE_DEPLOYMENT_FLAGS_NONE,
            nullptr,
            out(error))) {
        throw_gerror(error, "writing the deployment list");
    }
    return deployment;
}

fs::path deployment_dir(OstreeSysroot* sysroot, OstreeDeployment* deployment) {
    image::GCharPtr rel(ostree_sysroot_get_deployment_dirpath(sysroot, deployment));
    image::GFilePtr root(ostree_sysroot_get_path(sysroot));
    g_object_ref(root.get());  // get_path does not transfer ownership
    image::GCharPtr root_path(g_file_get_path(root.get()));
    return fs::path(root_path.get()) / rel.get();
}

std::string commit_version(OstreeRepo* repo, const std::string& commit) {
    GVariant* raw = nullptr;
    GErrorPtr error;
    if (!ostree_repo_load_variant_if_exists(
            repo, OSTREE_OBJECT_TYPE_COMMIT, commit.c_str(), &raw, out(error)) ||
        raw == nullptr) {
        return {};
    }
    image::GVariantPtr variant(raw);
    image::GVariantPtr metadata(g_variant_get_child_value(variant.get(), 0));
    const char* version = nullptr;
    if (g_variant_lookup(metadata.get(), "version", "&s", &version) && version != nullptr) {
        return version;
    }
    return {};
}

}  // namespace stormnode::installer
