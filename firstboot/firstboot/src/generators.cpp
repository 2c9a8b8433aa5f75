#include "stormnode/firstboot/generators.hpp"

#include "fs_util.hpp"

#include <stormnode/common/error.hpp>
#include <stormnode/common/subprocess.hpp>
#include <stormnode/common/temp_dir.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <sstream>

namespace stormnode::firstboot {
namespace {

namespace fs = std::filesystem;
using detail::under;

bool all_digits(const std::string& text) {
    return std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
}

struct Owner {
    std::string name;
    unsigned uid = 0;
    unsigned gid = 0;
};

Owner resolve_owner(const roles::NodeState& state, const GeneratorContext& ctx) {
    const auto user = ctx.accounts->user(state.owner);
    if (!user) {
        throw Error(
            Errc::not_found,
            "owner '" + state.owner + "' of " + state.path + " is not a user in " +
                under(ctx.root, "/etc/passwd").string() +
                " (is the package that creates it installed in the image?)");
    }
    return {state.owner, user->uid, user->gid};
}

// chmod, then chown when allowed; returns what could not be done, for the note.
std::string set_attributes(
    const fs::path& path, unsigned mode, const Owner& owner, const GeneratorContext& ctx) {
    check_errno(::chmod(path.c_str(), mode), "setting the mode of " + path.string());
    if (ctx.set_owner) {
        check_errno(::lchown(path.c_str(), owner.uid, owner.gid), "changing the owner of " + path.string());
        return {};
    }
    if (owner.uid == ::geteuid()) {
        return {};
    }
    return "owner " + owner.name + " (uid " + std::to_string(owner.uid) +
           ") not applied: not running as root";
}

GeneratorResult result(Outcome outcome, std::string note, const std::string& owner_note) {
    if (!owner_note.empty()) {
        note += note.empty() ? owner_note : "; " + owner_note;
    }
    return {outcome, std::move(note)};
}

// A secret in one file: kept when it is there, else written whole, atomically.
GeneratorResult secret_file(
    const fs::path& path,
    const std::string& content,
    unsigned mode,
    const Owner& owner,
    const GeneratorContext& ctx,
    std::string note) {
    if (detail::present(path)) {
        return result(Outcome::kept, {}, set_attributes(path, mode, owner, ctx));
    }
    detail::make_dirs(path.parent_path());
    write_file_atomic(path, content, mode);
    return result(Outcome::created, std::move(note), set_attributes(path, mode, owner, ctx));
}

std::string tool_failure(const Command& cmd, const ProcessResult& r) {
    std::string text = format_argv(cmd.argv) + " failed";
    text += r.timed_out ? " (timed out)" : " (exit status " + std::to_string(r.exit_status) + ")";
    if (!r.err.empty()) {
        std::string err = r.err;
        while (!err.empty() && err.back() == '\n') {
            err.pop_back();
        }
        text += ": " + err;
    }
    return text;
}

// run(), with a missing program reported as such rather than as a failed fork.
ProcessResult run_tool(Command cmd, const std::string& package) {
    cmd.timeout = std::chrono::minutes(5);
    ProcessResult r;
    try {
        r = run(cmd);
    } catch (const Error& e) {
        throw Error(
            Errc::not_found, cmd.argv[0] + " could not be run (package " + package + "): " + e.what());
    }
    if (r.exit_status == 127) {
        throw Error(Errc::not_found, cmd.argv[0] + " is not installed (package " + package + ")");
    }
    if (!r.ok()) {
        throw Error(Errc::io, tool_failure(cmd, r));
    }
    return r;
}

GeneratorResult machine_id(
    const fs::path& path, unsigned mode, const Owner& owner, const GeneratorContext& ctx) {
    // The image ships it empty (or "uninitialized"); a real id is 32 lower-case hex digits.
    if (auto text = detail::read_if_exists(path)) {
        while (!text->empty() && text->back() == '\n') {
            text->pop_back();
        }
        const bool valid = text->size() == 32 && std::all_of(text->begin(), text->end(), [](char c) {
                               return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
                           });
        if (valid) {
            return result(Outcome::kept, {}, set_attributes(path, mode, owner, ctx));
        }
    }
    auto id = detail::random_uuid();
    std::erase(id, '-');
    detail::make_dirs(path.parent_path());
    write_file_atomic(path, id + "\n", mode);
    return result(Outcome::created, {}, set_attributes(path, mode, owner, ctx));
}

GeneratorResult ssh_host_keys(
    const fs::path& dir, unsigned mode, const Owner& owner, const GeneratorContext& ctx) {
    std::vector<std::string> made;
    std::string owner_note;
    for (const char* type : {"rsa", "ecdsa", "ed25519"}) {
        const fs::path key = dir / ("ssh_host_" + std::string(type) + "_key");
        const fs::path pub = dir / ("ssh_host_" + std::string(type) + "_key.pub");
        if (detail::present(key)) {
            owner_note = set_attributes(key, mode, owner, ctx);
            continue;
        }
        // ssh-keygen writes in place; it works in a scratch directory and the pair is then moved in
        // atomically, the private key last (its presence means the pair is complete).
        const TempDir scratch("storm-firstboot-ssh");
        const fs::path tmp_key = scratch.path() / "key";
        run_tool(
            Command{
                .argv =
                    {"ssh-keygen",
                     "-q",
                     "-t",
                     type,
                     "-N",
                     "",
                     "-C",
                     "root@" + ctx.hostname,
                     "-f",
                     tmp_key.string()}},
            "openssh-client");
        detail::make_dirs(dir);
        write_file_atomic(pub, read_file(tmp_key.string() + ".pub"), 0644);
        owner_note = set_attributes(pub, 0644, owner, ctx);
        write_file_atomic(key, read_file(tmp_key), mode);
        owner_note = set_attributes(key, mode, owner, ctx);
        made.emplace_back(type);
    }
    if (made.empty()) {
        return result(Outcome::kept, {}, owner_note);
    }
    std::string note = "generated";
    for (const auto& type : made) {
        note += " " + type;
    }
    return result(Outcome::created, note, owner_note);
}

GeneratorResult snakeoil(
    const fs::path& key, unsigned mode, const Owner& owner, const GeneratorContext& ctx) {
    // Debian's pair: /etc/ssl/private/<name>.key (root:ssl-cert 0640) and /etc/ssl/certs/<name>.pem.
    const fs::path cert = key.parent_path().parent_path() / "certs" / (key.stem().string() + ".pem");
    Owner key_owner = owner;
    if (const auto gid = ctx.accounts->group("ssl-cert")) {
        key_owner.gid = *gid;
    }
    const bool have_key = detail::present(key);
    if (have_key && detail::present(cert)) {
        return result(Outcome::kept, {}, set_attributes(key, mode, key_owner, ctx));
    }
    const TempDir scratch("storm-firstboot-ssl");
    const fs::path tmp_key = scratch.path() / "key";
    const fs::path tmp_cert = scratch.path() / "cert";
    const std::string cn = ctx.hostname.substr(0, 64);
    std::vector<std::string> argv{
        "openssl",
        "req",
        "-x509",
        "-days",
        "3650",
        "-subj",
        "/CN=" + cn,
        "-addext",
        "subjectAltName=DNS:" + cn,
        "-out",
        tmp_cert.string()};
    if (have_key) {  // never replace the key: certify the one that is there
        argv.insert(argv.end(), {"-new", "-key", key.string()});
    } else {
        argv.insert(argv.end(), {"-newkey", "rsa:2048", "-noenc", "-keyout", tmp_key.string()});
    }
    run_tool(Command{.argv = argv}, "openssl");
    std::string owner_note;
    if (!have_key) {
        detail::make_dirs(key.parent_path());
        write_file_atomic(key, read_file(tmp_key), mode);
    }
    owner_note = set_attributes(key, mode, key_owner, ctx);
    detail::make_dirs(cert.parent_path());
    write_file_atomic(cert, read_file(tmp_cert), 0644);
    return result(
        Outcome::created, have_key ? "certificate for the existing key" : "key and certificate", owner_note);
}

GeneratorResult iscsi_iqn(
    const fs::path& path, unsigned mode, const Owner& owner, const GeneratorContext& ctx) {
    // open-iscsi's "GenerateName=yes" placeholder is replaced; a real InitiatorName is kept.
    if (const auto text = detail::read_if_exists(path)) {
        std::istringstream lines(*text);
        for (std::string line; std::getline(lines, line);) {
            if (line.rfind("InitiatorName=", 0) == 0) {
                return result(Outcome::kept, {}, set_attributes(path, mode, owner, ctx));
            }
        }
    }
    std::string host = ctx.hostname.substr(0, ctx.hostname.find('.'));
    std::transform(host.begin(), host.end(), host.begin(), [](unsigned char c) {
        return static_cast<char>(std::tolower(c));
    });
    const std::string iqn =
        "iqn.2004-10.com.stormclouds:" + host + "-" + detail::to_hex(detail::random_bytes(6));
    detail::make_dirs(path.parent_path());
    write_file_atomic(
        path, "## Unique to this node; written by storm-firstboot.\nInitiatorName=" + iqn + "\n", mode);
    return result(Outcome::created, iqn, set_attributes(path, mode, owner, ctx));
}

GeneratorResult fernet_keys(
    const fs::path& dir, unsigned mode, const Owner& owner, const GeneratorContext& ctx) {
    // keystone-manage fernet_setup's layout: 0 is the staged key, the highest number the primary.
    detail::make_dirs(dir);
    std::string owner_note = set_attributes(dir, mode, owner, ctx);
    bool have_primary = false;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(dir, ec)) {
        const auto name = entry.path().filename().string();
        if (name != "0" && !name.empty() && all_digits(name)) {
            have_primary = true;
        }
    }
    std::vector<std::string> made;
    for (const auto& [name, needed] : {std::pair{"0", true}, std::pair{"1", !have_primary}}) {
        const fs::path key = dir / name;
        if (!needed || detail::present(key)) {
            continue;
        }
        write_file_atomic(key, detail::to_base64(detail::random_bytes(32), true), 0600);
        if (const auto n = set_attributes(key, 0600, owner, ctx); !n.empty()) {
            owner_note = n;
        }
        made.emplace_back(name);
    }
    if (made.empty()) {
        return result(Outcome::kept, {}, owner_note);
    }
    return result(Outcome::created, made.size() == 2 ? "keys 0 and 1" : "key " + made[0], owner_note);
}

GeneratorResult qnetd_nssdb(
    const fs::path& dir, unsigned mode, const Owner& owner, const GeneratorContext& ctx) {
    if (detail::present(dir / "cert9.db") || detail::present(dir / "cert8.db")) {
        return result(Outcome::kept, {}, set_attributes(dir, mode, owner, ctx));
    }
    // The tool knows only /etc/corosync/qnetd/nssdb: for another root it runs inside that root, with
    // the root's own copy of it.
    Command cmd;
    if (fs::equivalent(ctx.root, "/")) {
        cmd.argv = {"corosync-qnetd-certutil", "-i", "-G"};
    } else {
        if (!detail::present(under(ctx.root, "/usr/bin/corosync-qnetd-certutil"))) {
            throw Error(
                Errc::not_found,
                "corosync-qnetd-certutil is not in " + under(ctx.root, "/usr/bin").string() +
                    " (package corosync-qnetd): cannot create the qnetd CA in " + dir.string());
        }
        cmd.argv = {"chroot", ctx.root.string(), "corosync-qnetd-certutil", "-i", "-G"};
    }
    run_tool(cmd, "corosync-qnetd");
    if (!detail::present(dir / "cert9.db") && !detail::present(dir / "cert8.db")) {
        throw Error(
            Errc::io,
            format_argv(cmd.argv) + " succeeded but left no certificate database in " + dir.string());
    }
    // corosync-qnetd runs as its own user: like the package's postinst, give its group the database
    // files (-G made them group-readable), or it fails with "security library: bad database".
    if (ctx.set_owner) {
        for (const char* name : {"cert9.db", "key4.db"}) {
            const auto file = dir / name;
            if (detail::present(file)) {
                check_errno(
                    ::lchown(file.c_str(), static_cast<uid_t>(-1), owner.gid),
                    "changing the group of " + file.string());
            }
        }
    }
    return result(Outcome::created, "qnetd CA and server certificate", set_attributes(dir, mode, owner, ctx));
}

// Steps that need the role's own tools or cluster.yaml: storm-roled's role init does them.
GeneratorResult defer(
    const roles::NodeState& state,
    const fs::path& path,
    bool make_dir,
    unsigned mode,
    const Owner& owner,
    const GeneratorContext& ctx,
    const std::string& step) {
    if (make_dir && !detail::dir_is_empty(path)) {
        return result(Outcome::kept, "already initialised", set_attributes(path, mode, owner, ctx));
    }
    std::string owner_note;
    if (make_dir) {
        detail::make_dirs(path);
        owner_note = set_attributes(path, mode, owner, ctx);
    }
    const fs::path marker = role_init_marker(ctx.root, state.generator);
    detail::make_dirs(marker.parent_path());
    write_file_atomic(
        marker,
        "# storm-roled's role init: " + step + "\npath: " + state.path + "\nowner: " + state.owner +
            "\nmode: \"" + state.mode + "\"\n",
        0644);
    return result(Outcome::deferred, step + " at role init", owner_note);
}

}  // namespace

Accounts Accounts::load(const fs::path& root) {
    Accounts accounts;
    accounts.users_["root"] = {0, 0};
    accounts.groups_["root"] = 0;
    auto each_line = [](const fs::path& file, auto&& fn) {
        const auto text = detail::read_if_exists(file);
        if (!text) {
            return;
        }
        std::istringstream lines(*text);
        for (std::string line; std::getline(lines, line);) {
            std::vector<std::string> fields;
            std::istringstream parts(line);
            for (std::string field; std::getline(parts, field, ':');) {
                fields.push_back(field);
            }
            fn(fields);
        }
    };
    auto number = [](const std::string& text) -> std::optional<unsigned> {
        if (text.empty() || !all_digits(text)) {
            return std::nullopt;
        }
        return static_cast<unsigned>(std::stoul(text));
    };
    each_line(root / "etc/passwd", [&](const std::vector<std::string>& f) {
        if (f.size() >= 4 && number(f[2]) && number(f[3])) {
            accounts.users_[f[0]] = {*number(f[2]), *number(f[3])};
        }
    });
    each_line(root / "etc/group", [&](const std::vector<std::string>& f) {
        if (f.size() >= 3 && number(f[2])) {
            accounts.groups_[f[0]] = *number(f[2]);
        }
    });
    return accounts;
}

std::optional<Accounts::User> Accounts::user(const std::string& name) const {
    const auto it = users_.find(name);
    return it == users_.end() ? std::nullopt : std::optional<User>(it->second);
}

std::optional<unsigned> Accounts::group(const std::string& name) const {
    const auto it = groups_.find(name);
    return it == groups_.end() ? std::nullopt : std::optional<unsigned>(it->second);
}

std::string_view to_string(Outcome outcome) {
    switch (outcome) {
        case Outcome::created:
            return "created";
        case Outcome::kept:
            return "kept";
        case Outcome::deferred:
            break;
    }
    return "deferred";
}

fs::path role_init_marker(const fs::path& root, const std::string& generator) {
    return under(root, "/var/lib/stormnode/role-init") / generator;
}

GeneratorResult generate(const roles::NodeState& state, const GeneratorContext& ctx) {
    if (ctx.accounts == nullptr) {
        throw Error(Errc::invalid_input, "generate(): no accounts given");
    }
    const Owner owner = resolve_owner(state, ctx);
    const unsigned mode = detail::parse_mode(state.mode, state.path);
    const fs::path path = under(ctx.root, state.path);
    const auto& g = state.generator;
    auto random_secret = [&](std::string content, std::string note = {}) {
        return secret_file(path, content, mode, owner, ctx, std::move(note));
    };
    if (g == "machine-id") {
        return machine_id(path, mode, owner, ctx);
    }
    if (g == "ssh-host-keys") {
        return ssh_host_keys(path, mode, owner, ctx);
    }
    if (g == "snakeoil-cert") {
        return snakeoil(path, mode, owner, ctx);
    }
    if (g == "iscsi-iqn") {
        return iscsi_iqn(path, mode, owner, ctx);
    }
    if (g == "erlang-cookie") {
        return random_secret(detail::random_chars(20, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"));
    }
    if (g == "horizon-secret-key") {
        return random_secret(
            detail::random_chars(64, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"));
    }
    if (g == "keystone-fernet-keys") {
        return fernet_keys(path, mode, owner, ctx);
    }
    if (g == "corosync-authkey") {
        const auto bytes = detail::random_bytes(256);  // corosync-keygen's default length
        return random_secret(std::string(bytes.begin(), bytes.end()));
    }
    if (g == "ovs-system-id" || g == "uuid") {
        return random_secret(detail::random_uuid() + "\n");
    }
    if (g == "random-hex" || g == "zabbix-psk") {
        return random_secret(detail::to_hex(detail::random_bytes(32)) + "\n");
    }
    if (g == "random-base64") {
        return random_secret(detail::to_base64(detail::random_bytes(32)) + "\n");
    }
    if (g == "qnetd-nssdb") {
        return qnetd_nssdb(path, mode, owner, ctx);
    }
    if (g == "mariadb-datadir") {
        return defer(state, path, true, mode, owner, ctx, "mysql_install_db into the empty datadir");
    }
    if (g == "postgresql-cluster") {
        return defer(state, path, true, mode, owner, ctx, "pg_createcluster 15 main");
    }
    if (g == "galera-node" || g == "nats-server-name" || g == "drbd-node-id" || g == "swift-rings") {
        return defer(state, path, false, mode, owner, ctx, g + " from cluster.yaml");
    }
    throw Error(Errc::invalid_input, "storm-firstboot has no generator '" + g + "' (for " + state.path + ")");
}

}  // namespace stormnode::firstboot
