#include "stormnode/image/media_objects.hpp"

#include <stormnode/common/error.hpp>
#include <stormnode/common/temp_dir.hpp>
#include <stormnode/image/ostree_handles.hpp>

#include <sys/stat.h>

#include <charconv>
#include <sstream>

namespace stormnode::image {
namespace fs = std::filesystem;

namespace {

using RepoFile = CHandle<GFile, gobject_unref>;

std::string octal(mode_t mode) {
    std::ostringstream out;
    out << std::oct << mode;
    return out.str();
}

template <typename Number>
bool parse_number(const std::string& text, Number& value, int base) {
    const auto* end = text.data() + text.size();
    const auto [ptr, ec] = std::from_chars(text.data(), end, value, base);
    return ec == std::errc() && ptr == end;
}

bool has_content_object(OstreeRepo* repo, const std::string& checksum) {
    gboolean has = FALSE;
    GErrorPtr error;
    if (!ostree_repo_has_object(repo, OSTREE_OBJECT_TYPE_FILE, checksum.c_str(), &has, nullptr, out(error))) {
        throw_gerror(error, "looking up object " + checksum);
    }
    return has != FALSE;
}

void write_from_media(OstreeRepo* repo, const MediaObject& object, const fs::path& file) {
    std::error_code ec;
    const auto size = fs::file_size(file, ec);
    if (ec) {
        throw Error(
            Errc::not_found,
            "the install source keeps object " + object.checksum + " on the boot media as " + file.string() +
                ", which cannot be read (" + ec.message() +
                "): install from the ISO it came with, or give --source-repo a complete repo or URL",
            ec);
    }
    GErrorPtr error;
    const GFilePtr gfile(g_file_new_for_path(file.c_str()));
    const GInputStreamPtr input(G_INPUT_STREAM(g_file_read(gfile.get(), nullptr, out(error))));
    if (!input) {
        throw_gerror(error, "opening " + file.string(), Errc::io);
    }
    const GFileInfoPtr info(g_file_info_new());
    g_file_info_set_file_type(info.get(), G_FILE_TYPE_REGULAR);
    g_file_info_set_size(info.get(), static_cast<goffset>(size));
    g_file_info_set_attribute_uint32(info.get(), "unix::uid", object.uid);
    g_file_info_set_attribute_uint32(info.get(), "unix::gid", object.gid);
    g_file_info_set_attribute_uint32(info.get(), "unix::mode", object.mode);
    GInputStream* raw_content = nullptr;
    guint64 length = 0;
    if (!ostree_raw_file_to_content_stream(
            input.get(), info.get(), nullptr, &raw_content, &length, nullptr, out(error))) {
        throw_gerror(error, "reading " + file.string());
    }
    const GInputStreamPtr content(raw_content);
    guchar* raw_csum = nullptr;
    // With the expected checksum given, libostree refuses content that does not hash to it.
    if (!ostree_repo_write_content(
            repo, object.checksum.c_str(), content.get(), length, &raw_csum, nullptr, out(error))) {
        throw_gerror(error, file.string() + " is not object " + object.checksum, Errc::refused);
    }
    g_free(raw_csum);
}

}  // namespace

MediaObject describe_media_object(
    OstreeRepo* repo,
    const std::string& commit,
    const std::string& path_in_tree,
    const std::string& media_path) {
    GErrorPtr error;
    GFile* raw_root = nullptr;
    if (!ostree_repo_read_commit(repo, commit.c_str(), &raw_root, nullptr, nullptr, out(error))) {
        throw_gerror(error, "reading commit " + commit);
    }
    const RepoFile root(raw_root);
    const RepoFile file(g_file_resolve_relative_path(root.get(), path_in_tree.c_str()));
    if (!ostree_repo_file_ensure_resolved(OSTREE_REPO_FILE(file.get()), out(error))) {
        throw_gerror(error, "commit " + commit + ": " + path_in_tree, Errc::not_found);
    }
    MediaObject object{
        .checksum = ostree_repo_file_get_checksum(OSTREE_REPO_FILE(file.get())), .media_path = media_path};
    GFileInfo* raw_info = nullptr;
    GVariant* raw_xattrs = nullptr;
    if (!ostree_repo_load_file(
            repo, object.checksum.c_str(), nullptr, &raw_info, &raw_xattrs, nullptr, out(error))) {
        throw_gerror(error, "loading " + path_in_tree + " of commit " + commit);
    }
    const GFileInfoPtr info(raw_info);
    const GVariantPtr xattrs(raw_xattrs);
    if (g_file_info_get_file_type(info.get()) != G_FILE_TYPE_REGULAR) {
        throw Error(Errc::invalid_input, path_in_tree + " of commit " + commit + " is not a regular file");
    }
    if (xattrs && g_variant_n_children(xattrs.get()) > 0) {
        throw Error(
            Errc::invalid_input,
            path_in_tree + " of commit " + commit + " has xattrs: it cannot live on the media");
    }
    object.uid = g_file_info_get_attribute_uint32(info.get(), "unix::uid");
    object.gid = g_file_info_get_attribute_uint32(info.get(), "unix::gid");
    object.mode = g_file_info_get_attribute_uint32(info.get(), "unix::mode");
    return object;
}

std::string format_media_objects(const std::vector<MediaObject>& objects) {
    std::string text;
    for (const auto& o : objects) {
        text += o.checksum + " " + std::to_string(o.uid) + " " + std::to_string(o.gid) + " " + octal(o.mode) +
                " " + o.media_path + "\n";
    }
    return text;
}

std::vector<MediaObject> read_media_objects(const fs::path& list_file) {
    std::vector<MediaObject> objects;
    std::istringstream in(read_file(list_file));
    std::string line;
    int line_no = 0;
    while (std::getline(in, line)) {
        ++line_no;
        if (line.empty()) {
            continue;
        }
        std::istringstream fields(line);
        MediaObject o;
        std::string uid;
        std::string gid;
        std::string mode;
        fields >> o.checksum >> uid >> gid >> mode >> o.media_path;
        const bool ok = o.checksum.size() == 64 &&
                        ostree_validate_checksum_string(o.checksum.c_str(), nullptr) &&
                        parse_number(uid, o.uid, 10) && parse_number(gid, o.gid, 10) &&
                        parse_number(mode, o.mode, 8) && S_ISREG(o.mode) && !o.media_path.empty() &&
                        fs::path(o.media_path).is_relative() && o.media_path.find("..") == std::string::npos;
        if (!ok) {
            throw Error(
                Errc::invalid_input,
                list_file.string() + ":" + std::to_string(line_no) +
                    ": expected '<checksum> <uid> <gid> <octal mode of a regular file> <relative media "
                    "path>'");
        }
        objects.push_back(std::move(o));
    }
    return objects;
}

std::size_t seed_media_objects(
    OstreeRepo* target, const fs::path& source_repo_dir, const fs::path& media_root) {
    const fs::path list = source_repo_dir / kMediaObjectsFile;
    if (!fs::exists(list)) {
        return 0;
    }
    std::size_t written = 0;
    // write_content needs an open transaction; an error aborts it, so nothing half-written stays.
    RepoTransaction transaction(target);
    for (const auto& object : read_media_objects(list)) {
        if (has_content_object(target, object.checksum)) {
            continue;
        }
        write_from_media(target, object, media_root / object.media_path);
        ++written;
    }
    transaction.commit();
    return written;
}

}  // namespace stormnode::image
