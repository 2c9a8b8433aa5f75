#include "stormnode/image/repo.hpp"

#include <stormnode/common/subprocess.hpp>
#include <stormnode/common/temp_dir.hpp>

#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>
#include <ctime>

namespace stormnode::image {
namespace {

std::string resolve_rev(OstreeRepo* repo, const std::string& rev, bool allow_noent) {
    gchar* raw = nullptr;
    GErrorPtr error;
    if (!ostree_repo_resolve_rev(repo, rev.c_str(), allow_noent, &raw, out(error))) {
        throw_gerror(error, "resolving '" + rev + "'", Errc::not_found);
    }
    GCharPtr checksum(raw);
    return checksum ? std::string(checksum.get()) : std::string();
}

GVariantPtr commit_metadata(const CommitOptions& o, const ImportStats& stats) {
    GVariantBuilder b;
    g_variant_builder_init(&b, G_VARIANT_TYPE("a{sv}"));
    g_variant_builder_add(&b, "{sv}", "version", g_variant_new_string(o.version.c_str()));
    if (!stats.kernel_version.empty()) {
        g_variant_builder_add(&b, "{sv}", "ostree.bootable", g_variant_new_boolean(TRUE));
        g_variant_builder_add(&b, "{sv}", "ostree.linux", g_variant_new_string(stats.kernel_version.c_str()));
    }
    GVariantBuilder roles;
    g_variant_builder_init(&roles, G_VARIANT_TYPE("as"));
    for (const auto& r : o.roles) {
        g_variant_builder_add(&roles, "s", r.c_str());
    }
    g_variant_builder_add(&b, "{sv}", kRolesKey, g_variant_builder_end(&roles));
    GVariantBuilder packages;
    g_variant_builder_init(&packages, G_VARIANT_TYPE("a{ss}"));
    for (const auto& [name, version] : stats.packages) {
        g_variant_builder_add(&packages, "{ss}", name.c_str(), version.c_str());
    }
    g_variant_builder_add(&b, "{sv}", kPackagesKey, g_variant_builder_end(&packages));
    g_variant_builder_add(&b, "{sv}", kManifestKey, g_variant_new_string(o.manifest_sha256.c_str()));
    g_variant_builder_add(
        &b, "{sv}", kTreeBytesKey, g_variant_new_uint64(stats.bytes + 4096 * stats.directories));
    return take_variant(g_variant_builder_end(&b));
}

std::string b64(const std::string& hex) {
    guchar* raw = ostree_checksum_to_bytes(hex.c_str());
    GCharPtr text(ostree_checksum_b64_from_bytes(raw));
    g_free(raw);
    return text.get();
}

std::filesystem::path repo_path(OstreeRepo* repo) {
    GFile* dir = ostree_repo_get_path(repo);  // owned by the repo
    GCharPtr path(g_file_get_path(dir));
    return path.get();
}

std::filesystem::path delta_dir(OstreeRepo* repo, const std::string& from, const std::string& to) {
    const auto deltas = repo_path(repo) / "deltas";
    if (from.empty()) {
        const auto t = b64(to);
        return deltas / t.substr(0, 2) / t.substr(2);
    }
    const auto f = b64(from);
    return deltas / f.substr(0, 2) / (f.substr(2) + "-" + b64(to));
}

std::string lookup_string(GVariant* dict, const char* key) {
    const gchar* value = nullptr;
    if (g_variant_lookup(dict, key, "&s", &value)) {
        return value;
    }
    return {};
}

}  // namespace

Repo open_or_create_repo(const std::filesystem::path& path, RepoMode mode) {
    std::filesystem::create_directories(path);
    GFilePtr dir(g_file_new_for_path(path.c_str()));
    Repo repo(ostree_repo_new(dir.get()));
    GErrorPtr error;
    if (std::filesystem::exists(path / "config")) {
        if (!ostree_repo_open(repo.get(), nullptr, out(error))) {
            throw_gerror(error, "opening OSTree repo '" + path.string() + "'");
        }
        return repo;
    }
    const auto m = mode == RepoMode::archive ? OSTREE_REPO_MODE_ARCHIVE : OSTREE_REPO_MODE_BARE_USER;
    if (!ostree_repo_create(repo.get(), m, nullptr, out(error))) {
        throw_gerror(error, "creating OSTree repo '" + path.string() + "'");
    }
    return repo;
}

Repo open_repo(const std::filesystem::path& path) {
    if (!std::filesystem::exists(path / "config")) {
        throw Error(Errc::not_found, "'" + path.string() + "' is not an OSTree repo (no config file)");
    }
    GFilePtr dir(g_file_new_for_path(path.c_str()));
    Repo repo(ostree_repo_new(dir.get()));
    GErrorPtr error;
    if (!ostree_repo_open(repo.get(), nullptr, out(error))) {
        throw_gerror(error, "opening OSTree repo '" + path.string() + "'");
    }
    return repo;
}

std::uint64_t source_date_epoch() {
    const char* value =
        std::getenv("SOURCE_DATE_EPOCH");  // NOLINT(concurrency-mt-unsafe): read once at start
    if (value == nullptr || *value == '\0') {
        return static_cast<std::uint64_t>(std::time(nullptr));
    }
    char* end = nullptr;
    const unsigned long long t = std::strtoull(value, &end, 10);
    if (*end != '\0' || *value == '-') {
        throw Error(
            Errc::invalid_input, std::string("SOURCE_DATE_EPOCH='") + value + "' is not a number of seconds");
    }
    return t;
}

CommitResult commit_tar(OstreeRepo* repo, int fd, const CommitOptions& options, ProgressSink& progress) {
    CommitResult result;
    result.ref = options.ref;
    result.parent = resolve_rev(repo, options.ref, true);

    RepoTransaction txn(repo);
    MutableTree mtree(ostree_mutable_tree_new());
    result.import = import_tar(repo, mtree.get(), fd, options.import, progress);
    progress.message(
        "imported " + std::to_string(result.import.entries) +
        " tar entries: " + std::to_string(result.import.files) + " files (" +
        std::to_string(result.import.bytes) + " bytes), " + std::to_string(result.import.symlinks) +
        " symlinks, " + std::to_string(result.import.directories) + " directories");
    if (options.require_kernel && result.import.kernel_version.empty()) {
        throw Error(
            Errc::invalid_input,
            "the root filesystem has no kernel (boot/vmlinuz-<version>): is the manifest's kernel package "
            "installed?");
    }

    progress.phase("commit", 0, "objects");
    GErrorPtr error;
    GFilePtr root;
    if (!ostree_repo_write_mtree(repo, mtree.get(), out(root), nullptr, out(error))) {
        throw_gerror(error, "writing the tree");
    }
    result.tree = ostree_repo_file_tree_get_contents_checksum(OSTREE_REPO_FILE(root.get()));
    auto metadata = commit_metadata(options, result.import);
    gchar* raw = nullptr;
    if (!ostree_repo_write_commit_with_time(
            repo,
            result.parent.empty() ? nullptr : result.parent.c_str(),
            options.subject.c_str(),
            nullptr,
            metadata.get(),
            OSTREE_REPO_FILE(root.get()),
            options.timestamp,
            &raw,
            nullptr,
            out(error))) {
        throw_gerror(error, "writing the commit");
    }
    GCharPtr commit(raw);
    result.commit = commit.get();
    const auto stats = txn.commit();
    result.objects_written = stats.metadata_objects_written + stats.content_objects_written;
    result.bytes_written = stats.content_bytes_written;
    progress.advance(result.objects_written);
    progress.message(
        "wrote " + std::to_string(result.objects_written) + " new objects (" +
        std::to_string(result.bytes_written) + " bytes of content); the rest were already in the repository");

    if (options.gpg) {
        progress.phase("sign", 1, "commits");
        if (!ostree_repo_sign_commit(
                repo,
                result.commit.c_str(),
                options.gpg->key_id.c_str(),
                options.gpg->homedir.c_str(),
                nullptr,
                out(error))) {
            throw_gerror(error, "signing commit " + result.commit + " with key " + options.gpg->key_id);
        }
        result.signed_commit = true;
        progress.advance(1);
    }
    // Only now: the ref never points at an unsigned or partial commit.
    if (!ostree_repo_set_ref_immediate(
            repo, nullptr, options.ref.c_str(), result.commit.c_str(), nullptr, out(error))) {
        throw_gerror(error, "setting ref " + options.ref);
    }
    if (options.static_delta && !result.parent.empty() && result.parent != result.commit) {
        progress.phase("delta", 0, "bytes");
        result.delta_bytes = generate_static_delta(repo, result.parent, result.commit);
        progress.advance(*result.delta_bytes);
    }
    // After every ref move, not only with a delta: a client resolves refs from the summary when there
    // is one, so a stale summary would hand out the previous commit.
    update_summary(repo, options.gpg);
    return result;
}

void update_summary(OstreeRepo* repo, const std::optional<GpgKey>& gpg) {
    GErrorPtr error;
    if (!ostree_repo_regenerate_summary(repo, nullptr, nullptr, out(error))) {
        throw_gerror(error, "regenerating the repo's summary");
    }
    if (gpg) {
        const char* keys[] = {gpg->key_id.c_str(), nullptr};
        if (!ostree_repo_add_gpg_signature_summary(repo, keys, gpg->homedir.c_str(), nullptr, out(error))) {
            throw_gerror(error, "signing the repo's summary with key " + gpg->key_id);
        }
    }
}

std::uint64_t generate_static_delta(OstreeRepo* repo, const std::string& from, const std::string& to) {
    GVariantBuilder params;
    g_variant_builder_init(&params, G_VARIANT_TYPE("a{sv}"));
    auto p = take_variant(g_variant_builder_end(&params));
    GErrorPtr error;
    if (!ostree_repo_static_delta_generate(
            repo,
            OSTREE_STATIC_DELTA_GENERATE_OPT_MAJOR,
            from.empty() ? nullptr : from.c_str(),
            to.c_str(),
            nullptr,
            p.get(),
            nullptr,
            out(error))) {
        throw_gerror(error, "generating the static delta " + from + " -> " + to);
    }
    const auto size = static_delta_size(repo, from, to);
    if (!size) {
        throw Error(
            Errc::ostree, "the static delta " + from + " -> " + to + " was generated but is not in the repo");
    }
    return *size;
}

std::optional<std::uint64_t> static_delta_size(
    OstreeRepo* repo, const std::string& from, const std::string& to) {
    const auto dir = delta_dir(repo, from, to);
    std::error_code ec;
    if (!std::filesystem::is_directory(dir, ec)) {
        return std::nullopt;
    }
    std::uint64_t total = 0;
    for (const auto& f : std::filesystem::recursive_directory_iterator(dir)) {
        if (f.is_regular_file()) {
            total += f.file_size();
        }
    }
    return total;
}

GpgKey ensure_build_key(const std::filesystem::path& homedir) {
    std::filesystem::create_directories(homedir);
    std::filesystem::permissions(homedir, std::filesystem::perms::owner_all);
    const std::vector<std::string> base{"gpg", "--homedir", homedir.string(), "--batch", "--with-colons"};
    auto list = [&] {
        auto argv = base;
        argv.push_back("--list-secret-keys");
        const auto r = run(Command{.argv = argv});
        // "sec:..." then "fpr:::::::::<fingerprint>:"
        bool in_sec = false;
        std::size_t pos = 0;
        while (pos < r.out.size()) {
            const auto end = std::min(r.out.find('\n', pos), r.out.size());
            const std::string line = r.out.substr(pos, end - pos);
            if (line.starts_with("sec:")) {
                in_sec = true;
            } else if (in_sec && line.starts_with("fpr:")) {
                const auto fields_end = line.find(':', 12);
                return line.substr(12, fields_end - 12);
            }
            pos = end + 1;
        }
        return std::string();
    };
    auto fingerprint = list();
    if (fingerprint.empty()) {
        auto argv = base;
        argv.insert(
            argv.end(),
            {"--pinentry-mode",
             "loopback",
             "--passphrase",
             "",
             "--quick-gen-key",
             "stormnode build key <build@stormnode.invalid>",
             "rsa3072",
             "sign",
             "never"});
        run_checked(Command{.argv = argv});
        fingerprint = list();
        if (fingerprint.empty()) {
            throw Error(Errc::io, "gpg made a build key in '" + homedir.string() + "' but does not list it");
        }
    }
    return {homedir, fingerprint};
}

std::string export_public_key(const GpgKey& key) {
    const auto r = run_checked(Command{
        .argv = {"gpg", "--homedir", key.homedir.string(), "--batch", "--armor", "--export", key.key_id}});
    if (r.out.find("BEGIN PGP PUBLIC KEY BLOCK") == std::string::npos) {
        throw Error(
            Errc::not_found, "gpg has no public key '" + key.key_id + "' in '" + key.homedir.string() + "'");
    }
    return r.out;
}

void add_verifying_remote(
    OstreeRepo* repo, const std::string& name, const std::string& url, const std::string& public_key) {
    GVariantBuilder b;
    g_variant_builder_init(&b, G_VARIANT_TYPE("a{sv}"));
    g_variant_builder_add(&b, "{sv}", "gpg-verify", g_variant_new_boolean(TRUE));
    auto opts = take_variant(g_variant_builder_end(&b));
    GErrorPtr error;
    if (!ostree_repo_remote_change(
            repo,
            nullptr,
            OSTREE_REPO_REMOTE_CHANGE_ADD_IF_NOT_EXISTS,
            name.c_str(),
            url.c_str(),
            opts.get(),
            nullptr,
            out(error))) {
        throw_gerror(error, "adding remote '" + name + "'");
    }
    GInputStreamPtr in(g_memory_input_stream_new_from_data(
        public_key.data(), static_cast<gssize>(public_key.size()), nullptr));
    guint imported = 0;
    if (!ostree_repo_remote_gpg_import(
            repo, name.c_str(), in.get(), nullptr, &imported, nullptr, out(error))) {
        throw_gerror(error, "importing the public key for remote '" + name + "'");
    }
}

SignatureStatus verify_commit(OstreeRepo* repo, const std::string& commit, const std::string& remote) {
    GErrorPtr error;
    GpgVerifyResult result(
        ostree_repo_verify_commit_for_remote(repo, commit.c_str(), remote.c_str(), nullptr, out(error)));
    if (!result) {
        if (error && error->domain == OSTREE_GPG_ERROR && error->code == OSTREE_GPG_ERROR_NO_SIGNATURE) {
            return {SignatureState::unsigned_commit, error->message};
        }
        return {SignatureState::error, error ? error->message : "verification failed"};
    }
    if (ostree_gpg_verify_result_require_valid_signature(result.get(), out(error))) {
        const guint n = ostree_gpg_verify_result_count_valid(result.get());
        GVariantPtr sig(ostree_gpg_verify_result_get_all(result.get(), 0));
        const gchar* fpr = nullptr;
        g_variant_get_child(sig.get(), OSTREE_GPG_SIGNATURE_ATTR_FINGERPRINT, "&s", &fpr);
        return {SignatureState::good, std::to_string(n) + " good signature(s), key " + (fpr ? fpr : "?")};
    }
    if (error && error->domain == OSTREE_GPG_ERROR && error->code == OSTREE_GPG_ERROR_MISSING_KEY) {
        return {SignatureState::unknown_key, error->message};
    }
    return {SignatureState::bad, error ? error->message : "no valid signature"};
}

std::string_view to_string(SignatureState state) {
    switch (state) {
        case SignatureState::good:
            return "good";
        case SignatureState::unsigned_commit:
            return "unsigned";
        case SignatureState::bad:
            return "BAD";
        case SignatureState::unknown_key:
            return "unknown key";
        case SignatureState::error:
            return "error";
    }
    return "error";
}

CommitInfo read_commit_info(OstreeRepo* repo, const std::string& rev) {
    CommitInfo info;
    info.checksum = resolve_rev(repo, rev, false);
    GVariant* raw = nullptr;
    GErrorPtr error;
    if (!ostree_repo_load_variant(repo, OSTREE_OBJECT_TYPE_COMMIT, info.checksum.c_str(), &raw, out(error))) {
        throw_gerror(error, "loading commit " + info.checksum, Errc::not_found);
    }
    GVariantPtr commit(raw);
    GCharPtr parent(ostree_commit_get_parent(commit.get()));
    info.parent = parent ? parent.get() : "";
    info.timestamp = ostree_commit_get_timestamp(commit.get());
    const gchar* subject = nullptr;
    g_variant_get_child(commit.get(), 3, "&s", &subject);
    info.subject = subject != nullptr ? subject : "";
    GVariantPtr meta(g_variant_get_child_value(commit.get(), 0));
    info.version = lookup_string(meta.get(), "version");
    info.kernel = lookup_string(meta.get(), "ostree.linux");
    info.manifest_sha256 = lookup_string(meta.get(), kManifestKey);
    if (GVariantPtr roles{g_variant_lookup_value(meta.get(), kRolesKey, G_VARIANT_TYPE("as"))}) {
        GVariantIter it;
        g_variant_iter_init(&it, roles.get());
        const gchar* r = nullptr;
        while (g_variant_iter_next(&it, "&s", &r)) {
            info.roles.emplace_back(r);
        }
    }
    if (GVariantPtr pkgs{g_variant_lookup_value(meta.get(), kPackagesKey, G_VARIANT_TYPE("a{ss}"))}) {
        GVariantIter it;
        g_variant_iter_init(&it, pkgs.get());
        const gchar* name = nullptr;
        const gchar* version = nullptr;
        while (g_variant_iter_next(&it, "{&s&s}", &name, &version)) {
            info.packages.emplace(name, version);
        }
    }
    return info;
}

std::vector<CommitInfo> list_commits(OstreeRepo* repo, const std::string& ref, std::size_t max) {
    std::vector<CommitInfo> commits;
    std::string next = resolve_rev(repo, ref, false);
    while (!next.empty() && commits.size() < max) {
        OstreeRepoCommitState state{};
        GVariant* raw = nullptr;
        GErrorPtr error;
        // Older commits may have been pruned or never pulled: stop there.
        if (!ostree_repo_load_commit(repo, next.c_str(), &raw, &state, out(error))) {
            break;
        }
        g_variant_unref(raw);
        commits.push_back(read_commit_info(repo, next));
        next = commits.back().parent;
    }
    return commits;
}

std::vector<PackageChange> diff_packages(const CommitInfo& from, const CommitInfo& to) {
    std::vector<PackageChange> changes;
    for (const auto& [name, version] : from.packages) {
        const auto it = to.packages.find(name);
        if (it == to.packages.end()) {
            changes.push_back({name, version, {}});
        } else if (it->second != version) {
            changes.push_back({name, version, it->second});
        }
    }
    for (const auto& [name, version] : to.packages) {
        if (!from.packages.contains(name)) {
            changes.push_back({name, {}, version});
        }
    }
    std::sort(changes.begin(), changes.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
    return changes;
}

}  // namespace stormnode::image
