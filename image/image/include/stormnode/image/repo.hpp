// The OSTree side of image composition: a transactional commit of an imported tar, GPG signing,
// static deltas, and reading back what a commit carries (for `image list` and `image diff`).
#pragma once

#include <stormnode/common/progress.hpp>
#include <stormnode/image/importer.hpp>
#include <stormnode/image/ostree_handles.hpp>

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace stormnode::image {

enum class RepoMode { archive, bare_user };

// Opens the repo at path, creating it (in mode) when the directory has none.
Repo open_or_create_repo(const std::filesystem::path& path, RepoMode mode = RepoMode::archive);
// Opens an existing repo; Error(not_found) when there is none.
Repo open_repo(const std::filesystem::path& path);

struct GpgKey {
    std::filesystem::path homedir;
    std::string key_id;  // fingerprint or key id
};

// The commit's timestamp: $SOURCE_DATE_EPOCH when set (reproducible builds), else now.
// Throws Error(invalid_input) for a malformed value.
std::uint64_t source_date_epoch();

struct CommitOptions {
    std::string ref;
    std::string subject;
    std::string version;
    std::vector<std::string> roles;
    std::string manifest_sha256;
    std::uint64_t timestamp = 0;  // seconds since the epoch
    ImportOptions import;
    std::optional<GpgKey> gpg;   // none: unsigned
    bool require_kernel = true;  // a node image without a kernel cannot boot
    bool static_delta = true;    // from the ref's previous commit, when there is one
};

struct CommitResult {
    std::string commit;
    std::string parent;  // empty for the first commit of the ref
    std::string tree;    // the root's contents checksum: same tar, same tree
    std::string ref;
    ImportStats import;
    std::uint64_t objects_written = 0;  // objects new to the repo
    std::uint64_t bytes_written = 0;
    bool signed_commit = false;
    std::optional<std::uint64_t> delta_bytes;
};

// Imports the tar read from fd and commits it. The ref moves only once the commit is complete and
// (when asked) signed: on any error the repo's refs are as they were. Then the static delta from the
// previous commit and the (signed) summary that lists it.
CommitResult commit_tar(OstreeRepo* repo, int fd, const CommitOptions& options, ProgressSink& progress);

// A build key in homedir (created with mode 0700 and a new RSA key when it has no secret key).
GpgKey ensure_build_key(const std::filesystem::path& homedir);
// ASCII-armored public key.
std::string export_public_key(const GpgKey& key);

// Adds remote name (gpg-verify=true) to repo unless it exists and imports the armored public key.
void add_verifying_remote(
    OstreeRepo* repo, const std::string& name, const std::string& url, const std::string& public_key);

enum class SignatureState { good, unsigned_commit, bad, unknown_key, error };
struct SignatureStatus {
    SignatureState state = SignatureState::error;
    std::string detail;  // the key that signed, or why it did not verify
};
// Checks the commit's signatures against the keys imported for remote.
SignatureStatus verify_commit(OstreeRepo* repo, const std::string& commit, const std::string& remote);
std::string_view to_string(SignatureState state);

struct CommitInfo {
    std::string checksum;
    std::string parent;
    std::string subject;
    std::string version;
    std::uint64_t timestamp = 0;
    std::vector<std::string> roles;
    std::map<std::string, std::string> packages;
    std::string manifest_sha256;
    std::string kernel;
};

// rev is a ref or a checksum (or a unique prefix).
CommitInfo read_commit_info(OstreeRepo* repo, const std::string& rev);
// The ref's commit and its ancestors still present in the repo, newest first.
std::vector<CommitInfo> list_commits(OstreeRepo* repo, const std::string& ref, std::size_t max = 50);

struct PackageChange {
    std::string name;
    std::string old_version;  // empty: added
    std::string new_version;  // empty: removed
};
std::vector<PackageChange> diff_packages(const CommitInfo& from, const CommitInfo& to);

// Size on disk of the static delta from -> to (from empty: a full delta), if the repo has one.
std::optional<std::uint64_t> static_delta_size(
    OstreeRepo* repo, const std::string& from, const std::string& to);
// Generates it and returns its size.
std::uint64_t generate_static_delta(OstreeRepo* repo, const std::string& from, const std::string& to);
// Rewrites the repo's summary (its refs and the static deltas it has; a client over HTTP finds a delta
// through it), signed with gpg when given.
void update_summary(OstreeRepo* repo, const std::optional<GpgKey>& gpg);

inline constexpr const char* kPackagesKey = "stormnode.packages";
inline constexpr const char* kRolesKey = "stormnode.roles";
inline constexpr const char* kManifestKey = "stormnode.manifest-sha256";
// Bytes of the checked-out tree (file content plus 4 KiB a directory): the installer sizes the disk
// from it without walking every object of the commit (minutes on a slow machine).
inline constexpr const char* kTreeBytesKey = "stormnode.tree-bytes";

}  // namespace stormnode::image
