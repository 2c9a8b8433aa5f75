// Repo objects kept on the boot media instead of inside the repo: the live ISO's kernel and initramfs are
// at once the files GRUB loads and two content objects of the offline-install repo. Storing them once
// means the repo in the squashfs lacks them and names where they are; the installer writes them back
// into the target repo (checksum-verified) before it pulls.
#pragma once

#include <ostree.h>
#include <sys/types.h>

#include <filesystem>
#include <string>
#include <vector>

namespace stormnode::image {

// In the source repo's directory: one line per object, "<checksum> <uid> <gid> <mode-octal> <media-path>".
inline constexpr const char* kMediaObjectsFile = "stormnode-media-objects";

struct MediaObject {
    std::string checksum;  // the content object's checksum
    uid_t uid = 0;
    gid_t gid = 0;
    mode_t mode = 0;         // permission bits and S_IFREG
    std::string media_path;  // relative to the media's root, e.g. "boot/vmlinuz"
};

// The content object behind a regular file of a commit, described for the media list. Throws when the
// path is not a regular file or carries xattrs (the list does not record them).
MediaObject describe_media_object(
    OstreeRepo* repo,
    const std::string& commit,
    const std::string& path_in_tree,
    const std::string& media_path);

std::string format_media_objects(const std::vector<MediaObject>& objects);

// Throws Error(invalid_input) naming the file and line of a malformed entry.
std::vector<MediaObject> read_media_objects(const std::filesystem::path& list_file);

// Writes the objects listed in source_repo_dir's media list that `target` lacks, reading them from
// media_root. Each write checks the content against its checksum. Returns how many were written; 0 when
// the source repo has no list.
std::size_t seed_media_objects(
    OstreeRepo* target,
    const std::filesystem::path& source_repo_dir,
    const std::filesystem::path& media_root);

}  // namespace stormnode::image
