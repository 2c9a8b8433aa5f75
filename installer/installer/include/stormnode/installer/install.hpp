// `stormctl install`: a plan checked in full before anything is written, then the execution in an
// order that survives a power cut at any point — the old system's bootability is destroyed first and
// the bootloader is installed last, so the disk holds either the complete new system or nothing that
// boots, and running the installer again always works.
#pragma once

#include <stormnode/common/progress.hpp>
#include <stormnode/installer/answers.hpp>
#include <stormnode/installer/disk.hpp>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace stormnode::installer {

inline constexpr const char* kDefaultSourceRepo = "/ostree/repo";
inline constexpr const char* kDefaultPublicKey = "/usr/share/stormnode/keys/stormnode.asc";
// Where dracut's dmsquash-live mounts the boot media (the ISO): the live repo's kernel and initramfs
// objects are read from there (image/media_objects.hpp).
inline constexpr const char* kDefaultMediaDir = "/run/initramfs/live";

// The partition layout (GPT): sizes in MiB; root takes the rest.
inline constexpr std::uint64_t kMiB = 1024ULL * 1024ULL;
inline constexpr std::uint64_t kBiosBootMiB = 1;
inline constexpr std::uint64_t kEspMiB = 256;
inline constexpr std::uint64_t kBootMiB = 768;

struct InstallOptions {
    std::string disk;                    // a path; empty: the answer file's
    std::optional<Answers> answers;      // loaded and checked by the caller
    std::vector<roles::RoleSpec> roles;  // replace the answer file's when given (checked by the caller)
    std::string hostname;                // replaces the answer file's when given
    std::string source_repo = kDefaultSourceRepo;  // a directory or a URL
    std::string ref;                               // empty: the only ref of the source repo
    std::filesystem::path public_key = kDefaultPublicKey;
    std::filesystem::path media_dir = kDefaultMediaDir;  // for a source repo that lists media objects
    bool wipe = false;                                   // the operator confirmed that the disk is wiped
    std::vector<std::string> extra_kargs;
    std::string proc_cmdline;  // the running kernel's command line (console= is copied)
    SystemPaths paths;
};

struct InstallPlan {
    TargetDisk disk;
    std::string source_url;  // file:///ostree/repo or http(s)://
    std::string ref;
    std::string commit;            // empty when the source is remote (known after the pull)
    std::uint64_t tree_bytes = 0;  // the commit's content, for the size check
    std::uint64_t min_disk_size = 0;
    std::string public_key;           // armored
    std::filesystem::path media_dir;  // empty: the source repo holds every object itself
    std::vector<std::string> kargs;
    roles::NodeFile node;
    std::vector<std::string> root_ssh_keys;
    std::filesystem::path cluster_file;
};

// The smallest disk for a tree of tree_bytes: the fixed partitions, and a root with room for two
// deployments (an upgrade) and /var.
std::uint64_t minimum_disk_size(std::uint64_t tree_bytes);

// Kernel arguments of the installed node: root by label, rw, no GPT auto-mounting, the console= and
// stormnode.report= arguments of the running kernel (a serial install gives a serial node, a network
// install one that reports to its pxe serve), then extra.
std::vector<std::string> node_kargs(const std::string& proc_cmdline, const std::vector<std::string>& extra);

// Checks everything that can be checked without writing: the source repo, the ref, the commit's
// signature (local sources), the disk (exists, whole, unused, big enough) and the wipe confirmation.
// Throws Error (invalid_input, not_found or refused) naming the problem; nothing is touched.
InstallPlan plan_install(const InstallOptions& options);

struct InstallResult {
    std::string commit;
    std::string deployment;  // its directory, relative to the root filesystem
    std::filesystem::path device;
};

// Executes a plan: phases "wipe", "partition", "format", "pull", "deploy", "configure", "bootloader".
InstallResult run_install(const InstallPlan& plan, ProgressSink& progress);

}  // namespace stormnode::installer
