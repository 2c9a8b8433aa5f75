// The tar -> OSTree import on a real libostree repo: a tarball made here with libarchive's writer,
// imported, then the commit read back entry by entry (ostree's test-libarchive-import.c pattern).
#include <stormnode/common/error.hpp>
#include <stormnode/common/subprocess.hpp>
#include <stormnode/common/temp_dir.hpp>
#include <stormnode/image/build.hpp>
#include <stormnode/image/importer.hpp>
#include <stormnode/image/repo.hpp>

#include <catch2/catch.hpp>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <thread>

namespace image = stormnode::image;
using stormnode::TempDir;
using stormnode::image::GErrorPtr;
using stormnode::image::GFilePtr;

namespace {

struct Entry {
    std::string path;
    unsigned type = AE_IFREG;
    unsigned perm = 0644;
    std::string data;      // file content or symlink target
    std::string hardlink;  // non-empty: a hard link to this path
    la_int64_t uid = 0;
    la_int64_t gid = 0;
    std::string uname = "root";
    std::vector<std::pair<std::string, std::string>> xattrs;
};

void write_tar(const std::filesystem::path& file, const std::vector<Entry>& entries) {
    image::ArchiveOut a(archive_write_new());
    archive_write_set_format_pax(a.get());
    REQUIRE(archive_write_open_filename(a.get(), file.c_str()) == ARCHIVE_OK);
    for (const auto& e : entries) {
        image::ArchiveEntry ae(archive_entry_new());
        archive_entry_set_pathname(ae.get(), e.path.c_str());
        archive_entry_set_uid(ae.get(), e.uid);
        archive_entry_set_gid(ae.get(), e.gid);
        archive_entry_set_uname(ae.get(), e.uname.c_str());
        archive_entry_set_gname(ae.get(), e.uname.c_str());
        archive_entry_set_mtime(ae.get(), 1700000000, 0);
        for (const auto& [k, v] : e.xattrs) {
            archive_entry_xattr_add_entry(ae.get(), k.c_str(), v.data(), v.size());
        }
        if (!e.hardlink.empty()) {
            archive_entry_set_filetype(ae.get(), AE_IFREG);
            archive_entry_set_perm(ae.get(), e.perm);
            archive_entry_set_hardlink(ae.get(), e.hardlink.c_str());
            archive_entry_set_size(ae.get(), 0);
        } else {
            archive_entry_set_filetype(ae.get(), e.type);
            archive_entry_set_perm(ae.get(), e.perm);
            if (e.type == AE_IFLNK) {
                archive_entry_set_symlink(ae.get(), e.data.c_str());
            } else if (e.type == AE_IFCHR) {
                archive_entry_set_rdev(ae.get(), makedev(1, 3));
            }
            archive_entry_set_size(ae.get(), e.type == AE_IFREG ? static_cast<la_int64_t>(e.data.size()) : 0);
        }
        REQUIRE(archive_write_header(a.get(), ae.get()) == ARCHIVE_OK);
        if (e.type == AE_IFREG && e.hardlink.empty() && !e.data.empty()) {
            REQUIRE(
                archive_write_data(a.get(), e.data.data(), e.data.size()) ==
                static_cast<la_ssize_t>(e.data.size()));
        }
    }
    REQUIRE(archive_write_close(a.get()) == ARCHIVE_OK);
}

const char* kStatus =
    "Package: base-files\nStatus: install ok installed\nVersion: 12.4+deb12u5\n\n"
    "Package: systemd\nStatus: install ok installed\nVersion: 252.22-1~deb12u1\n";

std::vector<Entry> rootfs_entries() {
    return {
        {"./", AE_IFDIR, 0755},
        {"./bin", AE_IFLNK, 0777, "usr/bin"},
        {"./boot/", AE_IFDIR, 0755},
        {"./boot/vmlinuz-6.1.0-x", AE_IFREG, 0644, "KERNEL"},
        {"./boot/initrd.img-6.1.0-x", AE_IFREG, 0644, "INITRD"},
        {"./boot/config-6.1.0-x", AE_IFREG, 0644, "CONFIG_X=y\n"},
        {"./boot/grub/", AE_IFDIR, 0755},
        {"./dev/", AE_IFDIR, 0755},
        {"./dev/null", AE_IFCHR, 0666},
        {"./etc/", AE_IFDIR, 0755},
        {"./etc/hostname", AE_IFREG, 0644, "node\n"},
        {"./etc/machine-id", AE_IFREG, 0444, ""},
        {"./etc/shadow", AE_IFREG, 0640, "root:*:1::::::\n", {}, 0, 42, "shadow"},
        {"./etc/hostname.hard", AE_IFREG, 0644, {}, "./etc/hostname"},
        {"./home/", AE_IFDIR, 0755},
        {"./home/alice/", AE_IFDIR, 0700, {}, {}, 1000, 1000, "alice"},
        {"./root/", AE_IFDIR, 0700},
        {"./root/.profile", AE_IFREG, 0644, "PATH=/usr/bin\n"},
        {"./tmp/", AE_IFDIR, 01777},
        {"./tmp/junk", AE_IFREG, 0644, "junk"},
        {"./usr/", AE_IFDIR, 0755},
        {"./usr/bin/", AE_IFDIR, 0755},
        {"./usr/bin/tool",
         AE_IFREG,
         04750,
         "#!/bin/sh\n",
         {},
         1000,
         1001,
         "alice",
         {{"user.stormnode", "yes"}}},
        {"./usr/bin/tool-again", AE_IFREG, 04750, {}, "./usr/bin/tool", 1000, 1001, "alice"},
        {"./usr/local/", AE_IFDIR, 0755},
        {"./usr/local/bin/", AE_IFDIR, 0755},
        {"./var/", AE_IFDIR, 0755},
        {"./var/lib/", AE_IFDIR, 0755},
        {"./var/lib/dpkg/", AE_IFDIR, 0755},
        {"./var/lib/dpkg/status", AE_IFREG, 0644, kStatus},
        {"./var/lib/app/", AE_IFDIR, 0750, {}, {}, 105, 106, "app"},
        {"./var/lib/app/seed", AE_IFREG, 0640, "seed data", {}, 105, 106, "app"},
        {"./var/log/", AE_IFDIR, 0755},
        {"./var/log/app.log", AE_IFREG, 0640, "", {}, 105, 106, "app"},
        {"./var/run", AE_IFLNK, 0777, "/run"},
        {"./vmlinuz", AE_IFLNK, 0777, "boot/vmlinuz-6.1.0-x"},
    };
}

struct Committed {
    image::Repo repo;
    GFilePtr root;
    image::CommitResult result;
};

image::CommitOptions options() {
    image::CommitOptions o;
    o.ref = "stormnode/bookworm/x86_64/node";
    o.subject = "test";
    o.version = "1.0";
    o.roles = {"quorum"};
    o.manifest_sha256 = std::string(64, 'a');
    o.timestamp = 1700000000;
    return o;
}

GFilePtr read_commit(OstreeRepo* repo, const std::string& rev) {
    GFilePtr root;
    GErrorPtr error;
    if (!ostree_repo_read_commit(repo, rev.c_str(), out(root), nullptr, nullptr, out(error))) {
        image::throw_gerror(error, "read_commit");
    }
    return root;
}

GFilePtr child(GFile* root, const char* path) {
    return GFilePtr(g_file_resolve_relative_path(root, path));
}

bool exists(GFile* root, const char* path) {
    auto f = child(root, path);
    GErrorPtr error;
    image::GFileInfoPtr info(g_file_query_info(
        f.get(), "standard::type", G_FILE_QUERY_INFO_NOFOLLOW_SYMLINKS, nullptr, out(error)));
    return static_cast<bool>(info);
}

image::GFileInfoPtr query(GFile* root, const char* path) {
    auto f = child(root, path);
    GErrorPtr error;
    image::GFileInfoPtr info(g_file_query_info(
        f.get(), "standard::*,unix::*", G_FILE_QUERY_INFO_NOFOLLOW_SYMLINKS, nullptr, out(error)));
    if (!info) {
        image::throw_gerror(error, std::string("query ") + path);
    }
    return info;
}

std::string contents(GFile* root, const char* path) {
    auto f = child(root, path);
    char* data = nullptr;
    gsize len = 0;
    GErrorPtr error;
    if (!g_file_load_contents(f.get(), nullptr, &data, &len, nullptr, out(error))) {
        image::throw_gerror(error, std::string("load ") + path);
    }
    std::string s(data, len);
    g_free(data);
    return s;
}

std::string checksum_of(GFile* root, const char* path) {
    auto f = child(root, path);
    GErrorPtr error;
    if (!ostree_repo_file_ensure_resolved(OSTREE_REPO_FILE(f.get()), out(error))) {
        image::throw_gerror(error, std::string("resolve ") + path);
    }
    return ostree_repo_file_get_checksum(OSTREE_REPO_FILE(f.get()));
}

std::vector<std::string> children(GFile* root, const char* path) {
    auto f = child(root, path);
    GErrorPtr error;
    GFileEnumerator* raw = g_file_enumerate_children(
        f.get(), "standard::name", G_FILE_QUERY_INFO_NOFOLLOW_SYMLINKS, nullptr, out(error));
    if (raw == nullptr) {
        image::throw_gerror(error, std::string("enumerate ") + path);
    }
    std::vector<std::string> names;
    while (GFileInfo* info = g_file_enumerator_next_file(raw, nullptr, nullptr)) {
        names.emplace_back(g_file_info_get_name(info));
        g_object_unref(info);
    }
    g_object_unref(raw);
    std::sort(names.begin(), names.end());
    return names;
}

image::CommitResult commit_file(
    OstreeRepo* repo, const std::filesystem::path& tar, const image::CommitOptions& o) {
    stormnode::UniqueFd fd(::open(tar.c_str(), O_RDONLY | O_CLOEXEC));
    REQUIRE(fd);
    stormnode::NullProgress progress;
    return image::commit_tar(repo, fd.get(), o, progress);
}

std::string ref_of(OstreeRepo* repo, const std::string& ref) {
    gchar* raw = nullptr;
    GErrorPtr error;
    REQUIRE(ostree_repo_resolve_rev(repo, ref.c_str(), TRUE, &raw, out(error)));
    std::string s = raw != nullptr ? raw : "";
    g_free(raw);
    return s;
}

}  // namespace

TEST_CASE("a rootfs tar is imported into the OSTree layout, entry by entry", "[image][import]") {
    TempDir dir("import");
    const auto tar = dir.path() / "rootfs.tar";
    write_tar(tar, rootfs_entries());
    auto repo = image::open_or_create_repo(dir.path() / "repo", image::RepoMode::bare_user);
    const auto result = commit_file(repo.get(), tar, options());
    auto root = read_commit(repo.get(), result.commit);

    SECTION("/etc moves to /usr/etc, with ownership and hard links") {
        CHECK_FALSE(exists(root.get(), "etc"));
        CHECK(contents(root.get(), "usr/etc/hostname") == "node\n");
        CHECK(contents(root.get(), "usr/etc/machine-id").empty());
        const auto shadow = query(root.get(), "usr/etc/shadow");
        CHECK(g_file_info_get_attribute_uint32(shadow.get(), "unix::gid") == 42);
        CHECK((g_file_info_get_attribute_uint32(shadow.get(), "unix::mode") & 07777) == 0640);
        CHECK(
            checksum_of(root.get(), "usr/etc/hostname.hard") == checksum_of(root.get(), "usr/etc/hostname"));
    }
    SECTION("the kernel and initramfs land in /usr/lib/modules/<kver>, /boot stays empty") {
        CHECK(result.import.kernel_version == "6.1.0-x");
        CHECK(contents(root.get(), "usr/lib/modules/6.1.0-x/vmlinuz") == "KERNEL");
        CHECK(contents(root.get(), "usr/lib/modules/6.1.0-x/initramfs.img") == "INITRD");
        CHECK(contents(root.get(), "usr/lib/modules/6.1.0-x/config") == "CONFIG_X=y\n");
        CHECK(children(root.get(), "boot").empty());
        CHECK_FALSE(exists(root.get(), "vmlinuz"));
    }
    SECTION("/var is empty; its content becomes tmpfiles.d lines and factory copies") {
        CHECK(children(root.get(), "var").empty());
        const auto tmpfiles = contents(root.get(), image::kVarTmpfilesPath);
        CHECK(tmpfiles == result.import.tmpfiles);
        CHECK(tmpfiles.find("d /var/lib/app 0750 app app -\n") != std::string::npos);
        CHECK(
            tmpfiles.find("C /var/lib/app/seed - - - - /usr/share/factory/var/lib/app/seed\n") !=
            std::string::npos);
        CHECK(contents(root.get(), "usr/share/factory/var/lib/app/seed") == "seed data");
        const auto seed = query(root.get(), "usr/share/factory/var/lib/app/seed");
        CHECK(g_file_info_get_attribute_uint32(seed.get(), "unix::uid") == 105);
        CHECK(tmpfiles.find("f /var/log/app.log 0640 app app -\n") != std::string::npos);
        CHECK(tmpfiles.find("L /var/run - - - - /run\n") != std::string::npos);
        CHECK(tmpfiles.find("d /var/home/alice 0700 alice alice -\n") != std::string::npos);
        CHECK(tmpfiles.find("d /var/roothome 0700 root root -\n") != std::string::npos);
        CHECK(
            tmpfiles.find("C /var/roothome/.profile - - - - /usr/share/factory/var/roothome/.profile\n") !=
            std::string::npos);
        CHECK(tmpfiles.find("d /var/usrlocal 0755 root root -\n") != std::string::npos);
        CHECK(tmpfiles.find("d /var/srv 0755 root root -\n") != std::string::npos);
    }
    SECTION("the dpkg database moves under /usr and the commit lists the packages") {
        CHECK(contents(root.get(), "usr/share/dpkg-db/status") == kStatus);
        CHECK(
            result.import.tmpfiles.find("L /var/lib/dpkg - - - - ../../usr/share/dpkg-db\n") !=
            std::string::npos);
        const auto info = image::read_commit_info(repo.get(), result.commit);
        CHECK(
            info.packages == std::map<std::string, std::string>{
                                 {"base-files", "12.4+deb12u5"}, {"systemd", "252.22-1~deb12u1"}});
        CHECK(info.version == "1.0");
        CHECK(info.roles == std::vector<std::string>{"quorum"});
        CHECK(info.kernel == "6.1.0-x");
        CHECK(info.manifest_sha256 == std::string(64, 'a'));
        CHECK(info.timestamp == 1700000000);
    }
    SECTION("directories that live in /var are links, run-time directories are empty") {
        const std::map<std::string, std::string> links{
            {"home", "var/home"},
            {"root", "var/roothome"},
            {"srv", "var/srv"},
            {"opt", "var/opt"},
            {"mnt", "var/mnt"},
            {"media", "run/media"},
            {"tmp", "sysroot/tmp"},
            {"ostree", "sysroot/ostree"},
            {"usr/local", "../var/usrlocal"},
            {"bin", "usr/bin"}};
        for (const auto& [path, target] : links) {
            INFO(path);
            const auto info = query(root.get(), path.c_str());
            CHECK(g_file_info_get_file_type(info.get()) == G_FILE_TYPE_SYMBOLIC_LINK);
            CHECK(std::string(g_file_info_get_symlink_target(info.get())) == target);
        }
        for (const char* d : {"dev", "proc", "sys", "run", "sysroot"}) {
            INFO(d);
            CHECK(g_file_info_get_file_type(query(root.get(), d).get()) == G_FILE_TYPE_DIRECTORY);
            CHECK(children(root.get(), d).empty());
        }
        CHECK(result.import.skipped >= 4);  // dev/null, tmp, tmp/junk, vmlinuz, boot/grub
    }
    SECTION("mode bits, owners and xattrs are kept; a hard link shares the content object") {
        const auto tool = query(root.get(), "usr/bin/tool");
        CHECK(g_file_info_get_attribute_uint32(tool.get(), "unix::uid") == 1000);
        CHECK(g_file_info_get_attribute_uint32(tool.get(), "unix::gid") == 1001);
        CHECK((g_file_info_get_attribute_uint32(tool.get(), "unix::mode") & 07777) == 04750);
        auto f = child(root.get(), "usr/bin/tool");
        GVariant* raw = nullptr;
        GErrorPtr error;
        REQUIRE(ostree_repo_file_get_xattrs(OSTREE_REPO_FILE(f.get()), &raw, nullptr, out(error)));
        image::GVariantPtr xattrs(raw);
        REQUIRE(g_variant_n_children(xattrs.get()) == 1);
        const gchar* name = nullptr;
        GVariant* value_raw = nullptr;  // varargs: a raw out-pointer, not out()
        g_variant_get_child(xattrs.get(), 0, "(^&ay@ay)", &name, &value_raw);
        image::GVariantPtr value(value_raw);
        CHECK(std::string(name) == "user.stormnode");
        gsize n = 0;
        const auto* bytes = static_cast<const char*>(g_variant_get_fixed_array(value.get(), &n, 1));
        CHECK(std::string(bytes, n) == "yes");
        CHECK(checksum_of(root.get(), "usr/bin/tool-again") == checksum_of(root.get(), "usr/bin/tool"));
        CHECK(result.import.hardlinks == 2);
    }
    SECTION("ostree fsck accepts the repo") {
        const auto r =
            stormnode::run({.argv = {"ostree", "fsck", "--repo=" + (dir.path() / "repo").string()}});
        INFO(r.out << r.err);
        CHECK(r.ok());
    }
}

TEST_CASE("the same tar gives the same tree and commit, read from a file or a pipe", "[image][import]") {
    TempDir dir("import");
    const auto tar = dir.path() / "rootfs.tar";
    write_tar(tar, rootfs_entries());
    auto a = image::open_or_create_repo(dir.path() / "a", image::RepoMode::archive);
    auto b = image::open_or_create_repo(dir.path() / "b", image::RepoMode::bare_user);
    const auto from_file = commit_file(a.get(), tar, options());

    int fds[2];
    REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
    stormnode::UniqueFd read_end(fds[0]);
    stormnode::UniqueFd write_end(fds[1]);
    const std::string bytes = stormnode::read_file(tar);
    std::thread writer([&] {
        std::size_t off = 0;
        while (off < bytes.size()) {
            const auto n =
                ::write(write_end.get(), bytes.data() + off, std::min<std::size_t>(4096, bytes.size() - off));
            if (n <= 0) {
                break;
            }
            off += static_cast<std::size_t>(n);
        }
        write_end.reset();
    });
    stormnode::NullProgress progress;
    const auto from_pipe = image::commit_tar(b.get(), read_end.get(), options(), progress);
    writer.join();

    CHECK(from_pipe.tree == from_file.tree);
    CHECK(from_pipe.commit == from_file.commit);
    auto other = options();
    other.timestamp += 1;
    auto c = image::open_or_create_repo(dir.path() / "c", image::RepoMode::archive);
    const auto later = commit_file(c.get(), tar, other);
    CHECK(later.tree == from_file.tree);
    CHECK(later.commit != from_file.commit);
}

TEST_CASE("a broken stream or a rootfs without kernel leaves the ref where it was", "[image][import]") {
    TempDir dir("import");
    const auto tar = dir.path() / "rootfs.tar";
    write_tar(tar, rootfs_entries());
    auto repo = image::open_or_create_repo(dir.path() / "repo", image::RepoMode::archive);
    const auto first = commit_file(repo.get(), tar, options());
    REQUIRE(ref_of(repo.get(), first.ref) == first.commit);

    const std::string bytes = stormnode::read_file(tar);
    const auto cut = dir.path() / "cut.tar";
    stormnode::write_file_atomic(cut, bytes.substr(0, bytes.size() / 2 + 100));
    CHECK_THROWS_AS(commit_file(repo.get(), cut, options()), stormnode::Error);
    CHECK(ref_of(repo.get(), first.ref) == first.commit);

    auto entries = rootfs_entries();
    std::erase_if(entries, [](const Entry& e) { return e.path.find("vmlinuz") != std::string::npos; });
    const auto nokernel = dir.path() / "nokernel.tar";
    write_tar(nokernel, entries);
    try {
        (void)commit_file(repo.get(), nokernel, options());
        FAIL("no exception");
    } catch (const stormnode::Error& e) {
        CHECK(e.code() == stormnode::Errc::invalid_input);
        CHECK(std::string(e.what()).find("no kernel") != std::string::npos);
    }
    CHECK(ref_of(repo.get(), first.ref) == first.commit);
}

TEST_CASE("a second commit gets a static delta, a package diff and a history", "[image][import]") {
    TempDir dir("import");
    const auto tar = dir.path() / "rootfs.tar";
    write_tar(tar, rootfs_entries());
    auto repo = image::open_or_create_repo(dir.path() / "repo", image::RepoMode::archive);
    const auto first = commit_file(repo.get(), tar, options());
    CHECK_FALSE(first.delta_bytes);

    auto entries = rootfs_entries();
    for (auto& e : entries) {
        if (e.path == "./var/lib/dpkg/status") {
            e.data =
                std::string("Package: base-files\nStatus: install ok installed\nVersion: 12.4+deb12u6\n\n") +
                "Package: corosync-qnetd\nStatus: install ok installed\nVersion: 3.0.2-1\n";
        }
    }
    entries.push_back({"./usr/bin/qnetd", AE_IFREG, 0755, std::string(10000, 'q')});
    const auto tar2 = dir.path() / "rootfs2.tar";
    write_tar(tar2, entries);
    auto o = options();
    o.version = "1.1";
    o.timestamp += 60;
    const auto second = commit_file(repo.get(), tar2, o);
    CHECK(second.parent == first.commit);
    REQUIRE(second.delta_bytes);
    CHECK(*second.delta_bytes > 0);
    CHECK(image::static_delta_size(repo.get(), first.commit, second.commit) == second.delta_bytes);
    CHECK(second.objects_written < first.objects_written);

    const auto history = image::list_commits(repo.get(), o.ref);
    REQUIRE(history.size() == 2);
    CHECK(history[0].version == "1.1");
    CHECK(history[1].version == "1.0");
    const auto changes = image::diff_packages(history[1], history[0]);
    REQUIRE(changes.size() == 3);
    CHECK(changes[0].name == "base-files");
    CHECK(changes[0].old_version == "12.4+deb12u5");
    CHECK(changes[0].new_version == "12.4+deb12u6");
    CHECK(changes[1].name == "corosync-qnetd");
    CHECK(changes[1].old_version.empty());
    CHECK(changes[2].name == "systemd");
    CHECK(changes[2].new_version.empty());
}

TEST_CASE("a signed commit verifies through a remote with the key, not with another key", "[image][sign]") {
    TempDir dir("sign");
    const auto tar = dir.path() / "rootfs.tar";
    write_tar(tar, rootfs_entries());
    const auto key = image::ensure_build_key(dir.path() / "gpg");
    CHECK(image::ensure_build_key(dir.path() / "gpg").key_id == key.key_id);  // made once, then reused
    auto repo = image::open_or_create_repo(dir.path() / "repo", image::RepoMode::archive);
    auto o = options();
    o.gpg = key;
    o.import.extra_files.push_back(
        {"usr/share/stormnode/keys/build.asc", image::export_public_key(key), 0644});
    const auto result = commit_file(repo.get(), tar, o);
    CHECK(result.signed_commit);

    image::add_verifying_remote(
        repo.get(), "stormnode", "file:///nonexistent", image::export_public_key(key));
    const auto good = image::verify_commit(repo.get(), result.commit, "stormnode");
    INFO(good.detail);
    CHECK(good.state == image::SignatureState::good);
    CHECK(good.detail.find(key.key_id) != std::string::npos);

    const auto other = image::ensure_build_key(dir.path() / "gpg-other");
    image::add_verifying_remote(repo.get(), "other", "file:///nonexistent", image::export_public_key(other));
    const auto unknown = image::verify_commit(repo.get(), result.commit, "other");
    INFO(unknown.detail);
    CHECK(unknown.state == image::SignatureState::unknown_key);

    auto plain = options();
    plain.timestamp += 5;
    const auto unsigned_commit = commit_file(repo.get(), tar, plain);
    CHECK(
        image::verify_commit(repo.get(), unsigned_commit.commit, "stormnode").state ==
        image::SignatureState::unsigned_commit);
    for (const auto* home : {"gpg", "gpg-other"}) {
        (void)stormnode::run(
            {.argv = {"gpgconf", "--homedir", (dir.path() / home).string(), "--kill", "gpg-agent"}});
    }
}

TEST_CASE("the rootfs cache key follows a .deb's content, not its build time", "[image][build]") {
    TempDir dir("deb");
    auto make_deb = [&](const std::string& name, const std::string& content, const char* mtime) {
        const auto root = dir.path() / ("pkg-" + name);
        std::filesystem::create_directories(root / "DEBIAN");
        std::filesystem::create_directories(root / "usr/bin");
        stormnode::write_file_atomic(
            root / "DEBIAN/control",
            "Package: stormnode\nVersion: 0.1.0\nArchitecture: amd64\nMaintainer: t "
            "<t@t.invalid>\nDescription: t\n");
        stormnode::write_file_atomic(root / "usr/bin/stormctl", content, 0755);
        stormnode::run_checked({.argv = {"touch", "-d", mtime, (root / "usr/bin/stormctl").string()}});
        const auto deb = dir.path() / (name + ".deb");
        stormnode::run_checked({.argv = {"dpkg-deb", "--build", root.string(), deb.string()}});
        return deb;
    };
    const auto a = make_deb("a", "binary v1", "2020-01-01");
    const auto b = make_deb("b", "binary v1", "2024-06-30");
    const auto c = make_deb("c", "binary v2", "2020-01-01");
    REQUIRE(stormnode::read_file(a) != stormnode::read_file(b));

    image::Manifest m;
    m.sha256 = image::sha256_hex("manifest");
    image::BootstrapPlan plan;
    plan.packages = {"systemd"};
    plan.hooks_dir = STORMNODE_SOURCE_DIR "/image/hooks";
    plan.debs = {a};
    const auto key_a = image::rootfs_cache_key(m, plan);
    plan.debs = {b};
    CHECK(image::rootfs_cache_key(m, plan) == key_a);
    plan.debs = {c};
    CHECK(image::rootfs_cache_key(m, plan) != key_a);
}
