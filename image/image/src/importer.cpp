// Per-entry writes rather than ostree_repo_import_archive_to_mtree: its filter can only keep or drop an
// entry (and rename it), while this layout also moves the kernel by version, turns /var into tmpfiles.d
// lines, replaces directories by links into /var and reads the dpkg database on the way through.
#include "stormnode/image/importer.hpp"

#include "archive_stream.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <array>
#include <set>
#include <sstream>

namespace stormnode::image {
namespace {

constexpr std::size_t kReadBlock = 1 << 20;

// Directories whose whole content moves into /var (platform-facts "OSTree end to end").
struct VarLink {
    const char* tree_path;
    const char* var_path;
    const char* link_target;
    unsigned default_mode;
};
constexpr std::array kVarLinks{
    VarLink{"home", "/var/home", "var/home", 0755},
    VarLink{"root", "/var/roothome", "var/roothome", 0700},
    VarLink{"srv", "/var/srv", "var/srv", 0755},
    VarLink{"opt", "/var/opt", "var/opt", 0755},
    VarLink{"mnt", "/var/mnt", "var/mnt", 0755},
    VarLink{"usr/local", "/var/usrlocal", "../var/usrlocal", 0755},
};
// Replaced by links whose content is not kept at all.
const std::map<std::string, std::string> kDropLinks{
    {"media", "run/media"}, {"tmp", "sysroot/tmp"}, {"ostree", "sysroot/ostree"}};
// Kept as empty directories: filled at run time.
const std::set<std::string> kEmptyDirs{"dev", "proc", "sys", "run", "boot", "var", "sysroot"};
// Debian's kernel links at the top of the tree point into /boot, which stays empty.
const std::set<std::string> kTopKernelLinks{"vmlinuz", "vmlinuz.old", "initrd.img", "initrd.img.old"};

enum class Where { root, tree, var, drop };

struct Placement {
    Where where = Where::tree;
    std::string path;  // tree: relative to the tree root; var: absolute /var/... path
};

std::string normalize(std::string p) {
    while (p.starts_with("./")) {
        p.erase(0, 2);
    }
    while (p.starts_with("/")) {
        p.erase(0, 1);
    }
    while (p.ends_with("/")) {
        p.pop_back();
    }
    return p == "." ? std::string() : p;
}

bool under(const std::string& p, const std::string& dir) {
    return p == dir || (p.size() > dir.size() && p.starts_with(dir) && p[dir.size()] == '/');
}

std::string rest_of(const std::string& p, const std::string& dir) {
    return p.size() > dir.size() ? p.substr(dir.size()) : std::string();  // keeps the leading '/'
}

// The kernel files of boot/: name prefix -> file name under usr/lib/modules/<kver>/.
struct KernelFile {
    const char* prefix;
    const char* target;
};
constexpr std::array kKernelFiles{
    KernelFile{"vmlinuz-", "vmlinuz"},
    KernelFile{"initrd.img-", "initramfs.img"},
    KernelFile{"config-", "config"},
    KernelFile{"System.map-", "System.map"},
};

Placement place(const std::string& p, std::string& kernel_version) {
    if (p.empty()) {
        return {Where::root, {}};
    }
    const std::string top = p.substr(0, p.find('/'));
    if (kEmptyDirs.contains(top) && top != "boot" && top != "var") {
        return p == top ? Placement{Where::tree, p} : Placement{Where::drop, {}};
    }
    if (kDropLinks.contains(top) || kTopKernelLinks.contains(p)) {
        return {Where::drop, {}};
    }
    if (top == "boot") {
        if (p == "boot") {
            return {Where::tree, p};
        }
        const std::string name = p.substr(5);
        for (const auto& k : kKernelFiles) {
            if (name.starts_with(k.prefix) && name.find('/') == std::string::npos) {
                const std::string kver = name.substr(std::string_view(k.prefix).size());
                if (std::string_view(k.prefix) == "vmlinuz-") {
                    if (!kernel_version.empty() && kernel_version != kver) {
                        throw Error(
                            Errc::invalid_input,
                            "the root filesystem has two kernels (" + kernel_version + " and " + kver +
                                "): an OSTree commit boots exactly one");
                    }
                    kernel_version = kver;
                }
                return {Where::tree, "usr/lib/modules/" + kver + "/" + k.target};
            }
        }
        return {Where::drop, {}};
    }
    if (under(p, "etc")) {
        return {Where::tree, "usr/" + p};
    }
    if (under(p, "var/lib/dpkg")) {
        return {Where::tree, kDpkgDbPath + rest_of(p, "var/lib/dpkg")};
    }
    if (p == "var") {
        return {Where::tree, p};
    }
    if (under(p, "var")) {
        return {Where::var, "/" + p};
    }
    for (const auto& l : kVarLinks) {
        if (under(p, l.tree_path)) {
            return {Where::var, l.var_path + rest_of(p, l.tree_path)};
        }
    }
    return {Where::tree, p};
}

std::string octal_mode(unsigned mode) {
    std::ostringstream s;
    s << '0' << std::oct << (mode & 07777);
    return s.str();
}

// tmpfiles.d(5) arguments and paths: whitespace and backslashes must be C-escaped.
std::string tmpfiles_escape(const std::string& s) {
    std::string out;
    for (const char c : s) {
        if (c == ' ' || c == '\t' || c == '\\' || c == '\n') {
            std::ostringstream hex;
            hex << "\\x" << std::hex << static_cast<int>(static_cast<unsigned char>(c));
            out += hex.str();
        } else {
            out += c;
        }
    }
    return out;
}

std::string owner_name(const char* name, la_int64_t id) {
    return name != nullptr && *name != '\0' ? std::string(name) : std::to_string(id);
}

GVariantPtr entry_xattrs(struct archive_entry* e) {
    std::vector<std::pair<std::string, std::string>> items;
    archive_entry_xattr_reset(e);
    const char* name = nullptr;
    const void* value = nullptr;
    std::size_t size = 0;
    while (archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK) {
        items.emplace_back(name, std::string(static_cast<const char*>(value), size));
    }
    // ostree compares xattrs as serialized: keep them sorted. A pax header may carry the same xattr
    // twice (LIBARCHIVE.xattr and SCHILY.xattr): keep one.
    std::sort(items.begin(), items.end());
    items.erase(
        std::unique(
            items.begin(), items.end(), [](const auto& x, const auto& y) { return x.first == y.first; }),
        items.end());
    GVariantBuilder builder;
    g_variant_builder_init(&builder, G_VARIANT_TYPE("a(ayay)"));
    for (const auto& [n, v] : items) {
        g_variant_builder_add(
            &builder,
            "(@ay@ay)",
            g_variant_new_bytestring(n.c_str()),
            g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, v.data(), v.size(), 1));
    }
    return take_variant(g_variant_builder_end(&builder));
}

GFileInfoPtr file_info(
    GFileType type, unsigned mode, std::uint32_t uid, std::uint32_t gid, std::uint64_t size) {
    GFileInfoPtr info(g_file_info_new());
    g_file_info_set_attribute_uint32(info.get(), "standard::type", type);
    g_file_info_set_attribute_boolean(info.get(), "standard::is-symlink", type == G_FILE_TYPE_SYMBOLIC_LINK);
    g_file_info_set_attribute_uint32(info.get(), "unix::uid", uid);
    g_file_info_set_attribute_uint32(info.get(), "unix::gid", gid);
    g_file_info_set_attribute_uint32(info.get(), "unix::mode", mode);
    if (type == G_FILE_TYPE_REGULAR) {
        g_file_info_set_size(info.get(), static_cast<goffset>(size));
    }
    return info;
}

GPtrArrayPtr split_path(const std::string& path) {
    GPtrArrayPtr parts(g_ptr_array_new_with_free_func(g_free));
    std::size_t start = 0;
    while (start < path.size()) {
        const auto end = std::min(path.find('/', start), path.size());
        if (end > start) {
            g_ptr_array_add(parts.get(), g_strndup(path.data() + start, end - start));
        }
        start = end + 1;
    }
    return parts;
}

class TreeWriter {
public:
    TreeWriter(OstreeRepo* repo, OstreeMutableTree* root) : repo_(repo), root_(root) {
        auto info = file_info(G_FILE_TYPE_DIRECTORY, S_IFDIR | 0755, 0, 0, 0);
        default_dirmeta_ = dirmeta(info.get(), nullptr);
    }

    // Writes a content object (a file's data and metadata, or a symlink) and returns its checksum.
    std::string write_content(GInputStream* data, GFileInfo* info, GVariant* xattrs) {
        GInputStreamPtr object;
        guint64 length = 0;
        GErrorPtr error;
        if (!ostree_raw_file_to_content_stream(
                data, info, xattrs, out(object), &length, nullptr, out(error))) {
            throw_gerror(error, "preparing a content object");
        }
        guchar* raw = nullptr;
        if (!ostree_repo_write_content(repo_, nullptr, object.get(), length, &raw, nullptr, out(error))) {
            throw_gerror(error, "writing a content object");
        }
        GCharPtr hex(ostree_checksum_from_bytes(raw));
        g_free(raw);
        return hex.get();
    }

    std::string dirmeta(GFileInfo* info, GVariant* xattrs) {
        GVariantBuilder empty;
        GVariantPtr none;
        if (xattrs == nullptr) {
            g_variant_builder_init(&empty, G_VARIANT_TYPE("a(ayay)"));
            none = take_variant(g_variant_builder_end(&empty));
            xattrs = none.get();
        }
        GVariantPtr meta = take_variant(ostree_create_directory_metadata(info, xattrs));
        GBytesPtr key(g_variant_get_data_as_bytes(meta.get()));
        std::string cache_key(
            static_cast<const char*>(g_bytes_get_data(key.get(), nullptr)), g_bytes_get_size(key.get()));
        if (const auto it = dirmeta_cache_.find(cache_key); it != dirmeta_cache_.end()) {
            return it->second;
        }
        guchar* raw = nullptr;
        GErrorPtr error;
        if (!ostree_repo_write_metadata(
                repo_, OSTREE_OBJECT_TYPE_DIR_META, nullptr, meta.get(), &raw, nullptr, out(error))) {
            throw_gerror(error, "writing directory metadata");
        }
        GCharPtr hex(ostree_checksum_from_bytes(raw));
        g_free(raw);
        dirmeta_cache_.emplace(cache_key, hex.get());
        return hex.get();
    }

    // The directory at path, created (with default metadata) along with its parents when missing.
    OstreeMutableTree* ensure_dir(const std::string& path) {
        if (path.empty()) {
            return root_;
        }
        auto parts = split_path(path);
        OstreeMutableTree* dir = root_;
        GErrorPtr error;
        for (guint i = 0; i < parts->len; ++i) {
            const auto* name = static_cast<const char*>(g_ptr_array_index(parts.get(), i));
            OstreeMutableTree* sub = nullptr;
            if (!ostree_mutable_tree_ensure_dir(dir, name, &sub, out(error))) {
                throw_gerror(error, "creating directory '" + path + "' in the tree");
            }
            // ensure_dir returns a new reference; the tree keeps its own, so the pointer stays valid.
            g_object_unref(sub);
            if (ostree_mutable_tree_get_metadata_checksum(sub) == nullptr) {
                ostree_mutable_tree_set_metadata_checksum(sub, default_dirmeta_.c_str());
            }
            dir = sub;
        }
        return dir;
    }

    void set_dir_metadata(const std::string& path, const std::string& checksum) {
        ostree_mutable_tree_set_metadata_checksum(ensure_dir(path), checksum.c_str());
    }

    void place_file(const std::string& path, const std::string& checksum) {
        const auto slash = path.rfind('/');
        OstreeMutableTree* parent =
            ensure_dir(slash == std::string::npos ? std::string() : path.substr(0, slash));
        const std::string name = slash == std::string::npos ? path : path.substr(slash + 1);
        // An earlier entry may have made a directory here (e.g. a link replacing it): a file wins.
        GErrorPtr error;
        ostree_mutable_tree_remove(parent, name.c_str(), TRUE, nullptr);
        if (!ostree_mutable_tree_replace_file(parent, name.c_str(), checksum.c_str(), out(error))) {
            throw_gerror(error, "adding '" + path + "' to the tree");
        }
    }

    std::string write_symlink(
        const std::string& target, std::uint32_t uid, std::uint32_t gid, GVariant* xattrs) {
        auto info = file_info(G_FILE_TYPE_SYMBOLIC_LINK, S_IFLNK | 0777, uid, gid, 0);
        g_file_info_set_symlink_target(info.get(), target.c_str());
        return write_content(nullptr, info.get(), xattrs);
    }

    std::string write_bytes(
        const std::string& data, unsigned mode, std::uint32_t uid, std::uint32_t gid, GVariant* xattrs) {
        auto info = file_info(G_FILE_TYPE_REGULAR, S_IFREG | (mode & 07777), uid, gid, data.size());
        GInputStreamPtr in(
            g_memory_input_stream_new_from_data(data.data(), static_cast<gssize>(data.size()), nullptr));
        return write_content(in.get(), info.get(), xattrs);
    }

    const std::string& default_dirmeta() const noexcept { return default_dirmeta_; }

private:
    OstreeRepo* repo_;
    OstreeMutableTree* root_;
    std::string default_dirmeta_;
    std::map<std::string, std::string> dirmeta_cache_;
};

std::string read_all(struct archive* a, std::uint64_t size) {
    std::string data;
    data.reserve(size);
    std::array<char, 65536> buf{};
    for (;;) {
        const la_ssize_t n = archive_read_data(a, buf.data(), buf.size());
        if (n < 0) {
            check_archive(static_cast<int>(n), a, "reading the tar stream");
        }
        if (n <= 0) {
            break;
        }
        data.append(buf.data(), static_cast<std::size_t>(n));
    }
    return data;
}

// One tar stream's import, entry by entry: each to its place in the tree, to the tmpfiles.d lines that
// make /var at boot, or nowhere. Keeps what later entries and the end need: each entry's content (hard
// links name an earlier entry), what was dropped, /var's directories, and the kernel's version.
class TarImport {
public:
    TarImport(OstreeRepo* repo, OstreeMutableTree* root, ImportStats& stats)
        : tree_(repo, root),
          stats_(stats) {}

    // One entry; a regular file's content is read from a. True for a regular file: the stream moved
    // on by its size.
    bool add(struct archive* a, struct archive_entry* e) {
        ++stats_.entries;
        Entry entry;
        entry.tar_path = normalize(archive_entry_pathname(e) != nullptr ? archive_entry_pathname(e) : "");
        entry.at = place(entry.tar_path, kernel_version_);
        const auto filetype = archive_entry_filetype(e);
        entry.uid = static_cast<std::uint32_t>(archive_entry_uid(e));
        entry.gid = static_cast<std::uint32_t>(archive_entry_gid(e));
        entry.perm = archive_entry_perm(e);
        entry.user = owner_name(archive_entry_uname(e), archive_entry_uid(e));
        entry.group = owner_name(archive_entry_gname(e), archive_entry_gid(e));
        const char* hardlink = archive_entry_hardlink(e);

        if (entry.at.where == Where::drop) {
            dropped_.insert(entry.tar_path);
            ++stats_.skipped;
            return false;
        }
        if (hardlink != nullptr) {
            add_hardlink(entry, hardlink);
            return false;
        }
        if (filetype != AE_IFREG && filetype != AE_IFDIR && filetype != AE_IFLNK) {
            ++stats_.skipped;  // device nodes, fifos, sockets: ostree cannot commit them
            return false;
        }
        auto xattrs = entry_xattrs(e);
        if (filetype == AE_IFDIR) {
            add_directory(entry, xattrs.get());
            return false;
        }
        if (filetype == AE_IFLNK) {
            add_symlink(
                entry, archive_entry_symlink(e) != nullptr ? archive_entry_symlink(e) : "", xattrs.get());
            return false;
        }
        add_file(a, entry, static_cast<std::uint64_t>(archive_entry_size(e)), xattrs.get());
        return true;
    }

    // After the last entry: the fixed part of the layout (the directories filled at run time, the links
    // into /var), the tmpfiles.d file for /var (also in stats.tmpfiles) and the extra files.
    void finish(const ImportOptions& options) {
        for (const auto& dir : kEmptyDirs) {
            tree_.ensure_dir(dir);
        }
        for (const auto& l : kVarLinks) {
            tree_.place_file(l.tree_path, tree_.write_symlink(l.link_target, 0, 0, nullptr));
            if (!var_dirs_.contains(l.var_path)) {
                tmpfiles_.push_back(
                    std::string("d ") + l.var_path + " " + octal_mode(l.default_mode) + " root root -");
            }
        }
        for (const auto& [path, target] : kDropLinks) {
            tree_.place_file(path, tree_.write_symlink(target, 0, 0, nullptr));
        }
        tmpfiles_.push_back(std::string("L /var/lib/dpkg - - - - ../../") + kDpkgDbPath);

        stats_.tmpfiles =
            "# Generated by stormctl image build: the image's /var, recreated at boot (OSTree does not "
            "deploy "
            "/var).\n";
        for (const auto& line : tmpfiles_) {
            stats_.tmpfiles += line + "\n";
        }
        tree_.place_file(kVarTmpfilesPath, tree_.write_bytes(stats_.tmpfiles, 0644, 0, 0, nullptr));
        for (const auto& f : options.extra_files) {
            tree_.place_file(f.path, tree_.write_bytes(f.content, f.mode, 0, 0, nullptr));
        }
    }

    [[nodiscard]] const std::string& kernel_version() const noexcept { return kernel_version_; }

private:
    struct Entry {
        std::string tar_path;  // normalized
        Placement at;
        std::uint32_t uid = 0;
        std::uint32_t gid = 0;
        unsigned perm = 0;
        std::string user;
        std::string group;
    };

    // The content of an earlier entry, again; nothing when that one was dropped.
    void add_hardlink(const Entry& entry, const std::string& target) {
        const auto it = by_tar_path_.find(normalize(target));
        if (it == by_tar_path_.end() && dropped_.contains(normalize(target))) {
            ++stats_.skipped;
            return;
        }
        if (it == by_tar_path_.end()) {
            throw Error(
                Errc::archive,
                "tar entry '" + entry.tar_path + "' is a hard link to '" + target +
                    "', which the stream has not had");
        }
        ++stats_.hardlinks;
        by_tar_path_[entry.tar_path] = it->second;
        if (entry.at.where == Where::var) {
            var_file(entry.at.path, it->second, false, entry.perm, entry.user, entry.group);
            ++stats_.var_entries;
        } else {
            tree_.place_file(entry.at.path, it->second);
        }
    }

    void add_directory(const Entry& entry, GVariant* xattrs) {
        ++stats_.directories;
        if (entry.at.where == Where::var) {
            var_dirs_.insert(entry.at.path);
            tmpfiles_.push_back(
                "d " + tmpfiles_escape(entry.at.path) + " " + octal_mode(entry.perm) + " " + entry.user +
                " " + entry.group + " -");
            ++stats_.var_entries;
            return;
        }
        auto info = file_info(G_FILE_TYPE_DIRECTORY, S_IFDIR | entry.perm, entry.uid, entry.gid, 0);
        const auto meta = tree_.dirmeta(info.get(), xattrs);
        tree_.set_dir_metadata(entry.at.where == Where::root ? std::string() : entry.at.path, meta);
    }

    void add_symlink(const Entry& entry, const std::string& target, GVariant* xattrs) {
        ++stats_.symlinks;
        if (entry.at.where == Where::var) {
            tmpfiles_.push_back(
                "L " + tmpfiles_escape(entry.at.path) + " - - - - " + tmpfiles_escape(target));
            ++stats_.var_entries;
            return;
        }
        const auto checksum = tree_.write_symlink(target, entry.uid, entry.gid, xattrs);
        by_tar_path_[entry.tar_path] = checksum;
        tree_.place_file(entry.at.path, checksum);
    }

    // A regular file; dpkg's status file is also read for the package list.
    void add_file(struct archive* a, const Entry& entry, std::uint64_t size, GVariant* xattrs) {
        std::string checksum;
        if (entry.tar_path == "var/lib/dpkg/status") {
            const std::string text = read_all(a, size);
            stats_.packages = parse_dpkg_status(text);
            checksum = tree_.write_bytes(text, entry.perm, entry.uid, entry.gid, xattrs);
        } else {
            auto info = file_info(G_FILE_TYPE_REGULAR, S_IFREG | entry.perm, entry.uid, entry.gid, size);
            GInputStreamPtr data(archive_input_stream_new(a));
            checksum = tree_.write_content(data.get(), info.get(), xattrs);
        }
        ++stats_.files;
        stats_.bytes += size;
        by_tar_path_[entry.tar_path] = checksum;
        if (entry.at.where == Where::var) {
            var_file(entry.at.path, checksum, size == 0, entry.perm, entry.user, entry.group);
            ++stats_.var_entries;
        } else {
            tree_.place_file(entry.at.path, checksum);
        }
    }

    // A /var entry becomes a tmpfiles.d line; file content is kept under the factory directory and
    // copied on boot, because OSTree ignores a commit's /var at deploy.
    void var_file(
        const std::string& var_path,
        const std::string& checksum,
        bool empty,
        unsigned mode,
        const std::string& user,
        const std::string& group) {
        if (empty) {
            tmpfiles_.push_back(
                "f " + tmpfiles_escape(var_path) + " " + octal_mode(mode) + " " + user + " " + group + " -");
        } else {
            const std::string factory = std::string(kFactoryVarPath) + var_path.substr(4);
            tree_.place_file(factory, checksum);
            tmpfiles_.push_back("C " + tmpfiles_escape(var_path) + " - - - - /" + tmpfiles_escape(factory));
        }
    }

    TreeWriter tree_;
    ImportStats& stats_;
    std::map<std::string, std::string>
        by_tar_path_;  // normalized tar path -> content checksum (for hardlinks)
    std::vector<std::string> tmpfiles_;
    std::set<std::string> var_dirs_;
    std::set<std::string> dropped_;
    std::string kernel_version_;
};

}  // namespace

std::map<std::string, std::string> parse_dpkg_status(std::string_view text) {
    std::map<std::string, std::string> packages;
    std::string name;
    std::string version;
    bool installed = false;
    auto flush = [&] {
        if (!name.empty() && installed) {
            packages[name] = version;
        }
        name.clear();
        version.clear();
        installed = false;
    };
    std::size_t pos = 0;
    while (pos <= text.size()) {
        const auto end = std::min(text.find('\n', pos), text.size());
        const std::string_view line = text.substr(pos, end - pos);
        if (line.empty()) {
            flush();
        } else if (line.starts_with("Package: ")) {
            name = line.substr(9);
        } else if (line.starts_with("Version: ")) {
            version = line.substr(9);
        } else if (line.starts_with("Status: ")) {
            installed = line.ends_with(" installed");
        }
        if (end == text.size()) {
            break;
        }
        pos = end + 1;
    }
    flush();
    return packages;
}

ImportStats import_tar(
    OstreeRepo* repo, OstreeMutableTree* root, int fd, const ImportOptions& options, ProgressSink& progress) {
    ImportStats stats;
    ArchiveIn a(archive_read_new());
    archive_read_support_filter_all(a.get());
    archive_read_support_format_tar(a.get());
    archive_read_support_format_gnutar(a.get());
    check_archive(archive_read_open_fd(a.get(), fd, kReadBlock), a.get(), "opening the tar stream");

    TarImport import(repo, root, stats);
    struct stat st {};
    const bool sized = ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode);  // a pipe has no known size
    progress.phase("import", sized ? static_cast<std::uint64_t>(st.st_size) : 0, "bytes");
    for (;;) {
        struct archive_entry* e = nullptr;
        const int rc = archive_read_next_header(a.get(), &e);
        if (rc == ARCHIVE_EOF) {
            break;
        }
        check_archive(rc, a.get(), "reading the tar stream");
        if (import.add(a.get(), e)) {
            progress.advance(static_cast<std::uint64_t>(archive_filter_bytes(a.get(), -1)));
        }
    }
    check_archive(archive_read_close(a.get()), a.get(), "closing the tar stream");

    import.finish(options);
    stats.kernel_version = import.kernel_version();
    progress.advance(static_cast<std::uint64_t>(archive_filter_bytes(a.get(), -1)));
    return stats;
}

}  // namespace stormnode::image
