// Objects a live repo keeps on the boot media (image/media_objects.hpp), on real repos: described from a
// commit, missing from a source repo, written back into a target from the media with their checksum
// checked, after which a pull from the incomplete source completes.
#include <stormnode/common/error.hpp>
#include <stormnode/common/subprocess.hpp>
#include <stormnode/common/temp_dir.hpp>
#include <stormnode/image/media_objects.hpp>
#include <stormnode/image/repo.hpp>

#include <catch2/catch.hpp>
#include <sys/stat.h>

#include <filesystem>
#include <string>

namespace image = stormnode::image;
namespace fs = std::filesystem;
using stormnode::Errc;
using stormnode::Error;
using stormnode::run;
using stormnode::run_checked;
using stormnode::TempDir;

namespace {

constexpr const char* kKernelInTree = "usr/lib/modules/6.1.0-test/vmlinuz";

struct Repos {
    TempDir dir{"stormnode-media-objects"};
    fs::path source = dir.path() / "source";  // complete
    fs::path live = dir.path() / "live";      // the kernel's object left out, listed instead
    fs::path media = dir.path() / "media";    // the ISO's root
    fs::path target = dir.path() / "target";
    std::string commit;
    image::MediaObject kernel;

    Repos() {
        const fs::path tree = dir.path() / "tree";
        fs::create_directories(tree / fs::path(kKernelInTree).parent_path());
        stormnode::write_file_atomic(tree / kKernelInTree, "a kernel image\n");
        stormnode::write_file_atomic(tree / "usr/lib/os-release", "ID=stormnode\n");
        for (const auto& repo : {source, live, target}) {
            run_checked({.argv = {"ostree", "init", "--repo=" + repo.string(), "--mode=archive"}});
        }
        run_checked(
            {.argv = {
                 "ostree",
                 "commit",
                 "--repo=" + source.string(),
                 "--branch=node",
                 "--owner-uid=0",
                 "--owner-gid=0",
                 "--tree=dir=" + tree.string()}});
        commit = run_checked({.argv = {"ostree", "rev-parse", "--repo=" + source.string(), "node"}})
                     .out.substr(0, 64);
        run_checked({.argv = {"ostree", "pull-local", "--repo=" + live.string(), source.string(), "node"}});

        auto repo = image::open_repo(source);
        kernel = image::describe_media_object(repo.get(), commit, kKernelInTree, "boot/vmlinuz");
        fs::remove(live / "objects" / kernel.checksum.substr(0, 2) / (kernel.checksum.substr(2) + ".filez"));
        stormnode::write_file_atomic(live / image::kMediaObjectsFile, image::format_media_objects({kernel}));
        fs::create_directories(media / "boot");
        stormnode::write_file_atomic(media / "boot/vmlinuz", "a kernel image\n");
    }

    [[nodiscard]] stormnode::ProcessResult pull_from_live() const {
        return run({.argv = {"ostree", "pull-local", "--repo=" + target.string(), live.string(), "node"}});
    }
};

}  // namespace

TEST_CASE("a commit's file is described for the media list as ostree lists it", "[image][media]") {
    Repos r;
    const auto listed = run_checked({.argv =
                                         {"ostree",
                                          "ls",
                                          "--repo=" + r.source.string(),
                                          "-C",
                                          r.commit,
                                          std::string("/") + kKernelInTree}})
                            .out;
    CHECK_THAT(listed, Catch::Matchers::Contains(r.kernel.checksum));
    CHECK(r.kernel.uid == 0);
    CHECK(r.kernel.gid == 0);
    CHECK(S_ISREG(r.kernel.mode));
    CHECK((r.kernel.mode & 07777) == 0644);
    CHECK(image::read_media_objects(r.live / image::kMediaObjectsFile).at(0).checksum == r.kernel.checksum);

    auto repo = image::open_repo(r.source);
    CHECK_THROWS_AS(image::describe_media_object(repo.get(), r.commit, "usr/lib/modules", "boot/x"), Error);
    CHECK_THROWS_AS(image::describe_media_object(repo.get(), r.commit, "usr/lib/nothing", "boot/x"), Error);
}

TEST_CASE("the live repo alone cannot be pulled, seeded from the media it can", "[image][media]") {
    Repos r;
    REQUIRE_FALSE(r.pull_from_live().ok());

    auto target = image::open_repo(r.target);
    CHECK(image::seed_media_objects(target.get(), r.live, r.media) == 1);
    CHECK(image::seed_media_objects(target.get(), r.live, r.media) == 0);  // already there
    const auto pulled = r.pull_from_live();
    INFO(pulled.err);
    REQUIRE(pulled.ok());
    CHECK(run({.argv = {"ostree", "fsck", "--repo=" + r.target.string()}}).ok());
    const fs::path checkout = r.dir.path() / "checkout";
    run_checked(
        {.argv = {"ostree", "checkout", "--repo=" + r.target.string(), "-U", "node", checkout.string()}});
    CHECK(stormnode::read_file(checkout / kKernelInTree) == "a kernel image\n");
}

TEST_CASE("a media file that is not the object, or is missing, writes nothing", "[image][media]") {
    Repos r;
    auto target = image::open_repo(r.target);
    const auto has_kernel = [&] {
        gboolean has = FALSE;
        ostree_repo_has_object(
            target.get(), OSTREE_OBJECT_TYPE_FILE, r.kernel.checksum.c_str(), &has, nullptr, nullptr);
        return has != FALSE;
    };

    stormnode::write_file_atomic(r.media / "boot/vmlinuz", "a kernel image, tampered\n");
    try {
        image::seed_media_objects(target.get(), r.live, r.media);
        FAIL("a tampered media file was accepted");
    } catch (const Error& e) {
        CHECK(e.code() == Errc::refused);
        CHECK_THAT(e.what(), Catch::Matchers::Contains(r.kernel.checksum));
    }
    CHECK_FALSE(has_kernel());

    fs::remove(r.media / "boot/vmlinuz");
    try {
        image::seed_media_objects(target.get(), r.live, r.media);
        FAIL("a missing media file was accepted");
    } catch (const Error& e) {
        CHECK(e.code() == Errc::not_found);
        CHECK_THAT(e.what(), Catch::Matchers::Contains((r.media / "boot/vmlinuz").string()));
    }
    CHECK_FALSE(has_kernel());
}

TEST_CASE("a malformed media list names its file and line", "[image][media]") {
    Repos r;
    const fs::path list = r.live / image::kMediaObjectsFile;
    stormnode::write_file_atomic(
        list, image::format_media_objects({r.kernel}) + r.kernel.checksum + " 0 0 40755 boot\n");
    try {
        image::read_media_objects(list);
        FAIL("a directory mode was accepted");
    } catch (const Error& e) {
        CHECK(e.code() == Errc::invalid_input);
        CHECK_THAT(e.what(), Catch::Matchers::Contains(list.string() + ":2:"));
    }
    stormnode::write_file_atomic(list, r.kernel.checksum + " 0 0 100644 ../etc/shadow\n");
    CHECK_THROWS_AS(image::read_media_objects(list), Error);
}
