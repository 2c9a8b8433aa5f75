#include "stormnode/installer/os.hpp"

#include "sysroot_ops.hpp"

#include <stormnode/common/error.hpp>
#include <stormnode/common/temp_dir.hpp>
#include <stormnode/installer/bootloader.hpp>
#include <stormnode/installer/install.hpp>

namespace stormnode::installer {
namespace fs = std::filesystem;
using image::GErrorPtr;
using image::throw_gerror;

namespace {

std::vector<OstreeDeployment*> deployments_of(OstreeSysroot* sysroot) {
    image::GPtrArrayPtr list(ostree_sysroot_get_deployments(sysroot));
    std::vector<OstreeDeployment*> out;
    for (guint i = 0; i < list->len; ++i) {
        out.push_back(static_cast<OstreeDeployment*>(list->pdata[i]));  // owned by the sysroot
    }
    return out;
}

std::string origin_ref(OstreeDeployment* d) {
    GKeyFile* origin = ostree_deployment_get_origin(d);
    if (origin == nullptr) {
        return {};
    }
    image::GCharPtr refspec(g_key_file_get_string(origin, "origin", "refspec", nullptr));
    return refspec ? refspec.get() : "";
}

}  // namespace

std::vector<DeploymentStatus> os_status(const fs::path& root) {
    auto sysroot = open_sysroot(root, false);
    OstreeRepo* repo = sysroot_repo(sysroot.get());
    OstreeDeployment* booted = ostree_sysroot_get_booted_deployment(sysroot.get());
    std::vector<DeploymentStatus> result;
    const auto list = deployments_of(sysroot.get());
    int booted_index = -1;
    for (std::size_t i = 0; i < list.size(); ++i) {
        if (booted != nullptr && ostree_deployment_equal(list[i], booted)) {
            booted_index = static_cast<int>(i);
        }
    }
    for (std::size_t i = 0; i < list.size(); ++i) {
        DeploymentStatus s;
        s.index = static_cast<int>(i);
        s.osname = ostree_deployment_get_osname(list[i]);
        s.commit = ostree_deployment_get_csum(list[i]);
        s.serial = ostree_deployment_get_deployserial(list[i]);
        s.version = commit_version(repo, s.commit);
        s.refspec = origin_ref(list[i]);
        s.booted = s.index == booted_index;
        s.pending = booted_index > 0 && i == 0;
        // Not booted from this sysroot (a disk on the host): the second entry is the rollback.
        s.rollback = booted_index < 0 ? i == 1 : static_cast<int>(i) == booted_index + 1;
        result.push_back(s);
    }
    return result;
}

UpgradeResult os_upgrade(const UpgradeOptions& options, ProgressSink& progress) {
    auto sysroot = open_sysroot(options.sysroot, false);
    OstreeRepo* repo = sysroot_repo(sysroot.get());
    Deployment merge(ostree_sysroot_get_merge_deployment(sysroot.get(), kOsName));
    if (!merge) {
        throw Error(Errc::not_found, "no stormnode deployment in " + options.sysroot.string());
    }
    UpgradeResult result;
    result.previous = ostree_deployment_get_csum(merge.get());
    std::string ref = options.ref;
    if (ref.empty()) {
        ref = origin_ref(merge.get());
        const auto colon = ref.find(':');
        ref = colon == std::string::npos ? ref : ref.substr(colon + 1);
    }
    if (ref.empty()) {
        throw Error(Errc::invalid_input, "the default deployment has no origin ref: give --ref");
    }
    progress.phase("pull", 0, "objects");
    Pulled pulled;
    if (options.source_repo.empty()) {
        pulled = pull_from_remote(repo, ref, progress);
    } else {
        fs::path key = options.public_key;
        if (key.empty()) {
            key = deployment_dir(sysroot.get(), merge.get()) / fs::path(kDefaultPublicKey).relative_path();
        }
        pulled = pull_verified(repo, source_url(options.source_repo), ref, read_file(key), progress);
    }
    result.commit = pulled.commit;
    result.pull = pulled.stats;
    if (result.commit == result.previous) {
        return result;
    }
    progress.phase("deploy", 0, "");
    deploy_commit(sysroot.get(), ref, result.commit, merge.get(), std::nullopt);
    progress.phase("bootloader", 0, "");
    write_grub_cfg(options.sysroot / "boot");
    result.changed = true;
    return result;
}

std::string os_rollback(const fs::path& root) {
    auto sysroot = open_sysroot(root, false);
    auto list = deployments_of(sysroot.get());
    if (list.size() < 2) {
        throw Error(Errc::not_found, "no rollback deployment in " + root.string());
    }
    OstreeDeployment* booted = ostree_sysroot_get_booted_deployment(sysroot.get());
    // The rollback of a booted node is the one after the booted deployment; on a disk, the second one.
    std::size_t target = 1;
    if (booted != nullptr) {
        for (std::size_t i = 0; i < list.size(); ++i) {
            if (ostree_deployment_equal(list[i], booted)) {
                target = i + 1 < list.size() ? i + 1 : (i == 0 ? 1 : 0);
                if (i > 0) {
                    target = i;  // a pending deployment is ahead of the booted one: go back to it
                }
            }
        }
    }
    image::GPtrArrayPtr order(g_ptr_array_new_with_free_func(g_object_unref));
    g_ptr_array_add(order.get(), g_object_ref(list[target]));
    for (std::size_t i = 0; i < list.size(); ++i) {
        if (i != target) {
            g_ptr_array_add(order.get(), g_object_ref(list[i]));
        }
    }
    const std::string commit = ostree_deployment_get_csum(list[target]);
    GErrorPtr error;
    if (!ostree_sysroot_write_deployments(sysroot.get(), order.get(), nullptr, out(error))) {
        throw_gerror(error, "writing the deployment order");
    }
    write_grub_cfg(root / "boot");
    return commit;
}

}  // namespace stormnode::installer
