// `stormctl install` and `stormctl os ...`: arguments, prompts and progress display; the work is in
// stormnode::installer. Phase lines ("stormnode-install: phase pull") go to stdout, which the
// installer's unit sends to the console, where the system tests read them.
#include <stormnode/catalog/catalog.hpp>
#include <stormnode/common/error.hpp>
#include <stormnode/common/log.hpp>
#include <stormnode/common/temp_dir.hpp>
#include <stormnode/common/yaml_diagnostics.hpp>
#include <stormnode/firstboot/curl_fetcher.hpp>
#include <stormnode/installer/cli.hpp>
#include <stormnode/installer/disk.hpp>
#include <stormnode/installer/install.hpp>
#include <stormnode/installer/install_request.hpp>
#include <stormnode/installer/os.hpp>

#include <CLI/CLI.hpp>
#include <sys/mount.h>
#include <sys/resource.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>

namespace stormnode::installer {
namespace fs = std::filesystem;
namespace {

// `stormctl vm run --answers F` attaches F as answers.yaml on a small second disc labelled STORMANS:
// with no answer file on the ISO itself, an unattended install reads that one (copied to /run, 0600).
std::string answers_from_side_disc() {
    const fs::path device = "/dev/disk/by-label/STORMANS";
    if (!fs::exists(device)) {
        return {};
    }
    TempDir mount_point("stormnode-answers");
    check_errno(
        ::mount(device.c_str(), mount_point.path().c_str(), "iso9660", MS_RDONLY, nullptr),
        "mounting the answer disc " + device.string());
    std::optional<std::string> text;
    {
        Diagnostics diags((mount_point.path() / "answers.yaml").string());
        text = read_text_file(mount_point.path() / "answers.yaml", diags);
    }
    ::umount2(mount_point.path().c_str(), 0);
    if (!text) {
        throw Error(Errc::invalid_input, "the answer disc " + device.string() + " has no answers.yaml");
    }
    const fs::path copy = "/run/stormnode/answers.yaml";
    fs::create_directories(copy.parent_path());
    write_file_atomic(copy, *text, 0600);
    return copy.string();
}

// A network install's answer file (stormnode.answers=http://SERVER/answers/MAC.yaml from pxe serve),
// kept in /run with mode 0600 like the side disc's: it may carry keys.
std::string answers_from_url(const std::string& url) {
    firstboot::CurlFetcher fetcher(std::chrono::seconds(60));
    const auto text = fetcher.fetch(url);
    const fs::path copy = "/run/stormnode/answers.yaml";
    fs::create_directories(copy.parent_path());
    write_file_atomic(copy, text, 0600);
    return copy.string();
}

// One line per phase on stdout and in the journal (fields: phase, disk, commit); a bar on stderr
// when it is a terminal. STORMNODE_INSTALL_TEST_KILL_AFTER=<phase> kills the process with SIGKILL as
// the next phase starts: the power-cut test's hook.
class ConsoleProgress final : public ProgressSink {
public:
    explicit ConsoleProgress(std::string disk) : disk_(std::move(disk)), tty_(::isatty(2) == 1) {
        if (const char* k = std::getenv("STORMNODE_INSTALL_TEST_KILL_AFTER")) {
            kill_after_ = k;
        }
    }
    void phase(std::string_view name, std::uint64_t total, std::string_view unit) override {
        end_bar();
        if (!kill_after_.empty() && current_ == kill_after_) {
            std::cout.flush();
            ::raise(SIGKILL);
        }
        current_ = name;
        total_ = total;
        unit_ = unit;
        std::cout << "stormnode-install: phase " << name << std::endl;
        log::info(
            "install phase " + current_,
            {{"STORMNODE_PHASE", current_}, {"STORMNODE_DISK", disk_}, {"STORMNODE_COMMIT", commit}});
    }
    void advance(std::uint64_t done) override {
        if (!tty_) {
            return;
        }
        constexpr int kWidth = 30;
        std::string bar;
        if (total_ > 0) {
            const auto filled = static_cast<int>(std::min<std::uint64_t>(done, total_) * kWidth / total_);
            bar = "[" + std::string(filled, '#') + std::string(kWidth - filled, '.') + "] ";
        }
        std::cerr << "\r  " << current_ << " " << bar << done;
        if (total_ > 0) {
            std::cerr << "/" << total_;
        }
        std::cerr << " " << unit_ << "   " << std::flush;
        bar_shown_ = true;
    }
    void message(std::string_view text) override { std::cout << "stormnode-install: " << text << std::endl; }
    void end_bar() {
        if (bar_shown_) {
            std::cerr << "\n";
            bar_shown_ = false;
        }
    }
    void done() {
        phase("done", 0, "");
        end_bar();
    }
    std::string commit;

private:
    std::string disk_;
    bool tty_;
    std::string kill_after_;
    std::string current_;
    std::uint64_t total_ = 0;
    std::string unit_;
    bool bar_shown_ = false;
};

// CPU time of this process and its waited-for children (mkfs, grub-install, ...), in seconds.
std::string install_cpu_seconds() {
    const auto seconds = [](int who) {
        rusage usage{};
        ::getrusage(who, &usage);
        return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
               static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
    };
    char text[32];
    std::snprintf(text, sizeof text, "%.1f", seconds(RUSAGE_SELF) + seconds(RUSAGE_CHILDREN));
    return text;
}

struct InstallArgs {
    std::string disk;
    std::string answers;
    std::vector<std::string> roles;
    std::string hostname;
    std::string source_repo = kDefaultSourceRepo;
    std::string ref;
    std::string gpg_key = kDefaultPublicKey;
    std::string media_dir = kDefaultMediaDir;
    std::string catalog;
    std::vector<std::string> kargs;
    std::string cmdline_file = "/proc/cmdline";
    bool wipe = false;
    bool yes = false;
    bool from_kernel_cmdline = false;
};

std::optional<roles::Catalog> load_catalog_if_present(const std::string& dir) {
    const fs::path path = dir.empty() ? roles::default_catalog_dir() : fs::path(dir);
    if (!fs::is_directory(path)) {
        return std::nullopt;
    }
    return roles::load_valid_catalog(path);
}

// Roles given here (--role, the prompt): parsed, and checked against the catalog as an answer file's
// are. Throws Error(invalid_input) with every problem.
std::vector<roles::RoleSpec> role_specs(
    const std::vector<std::string>& texts, const roles::Catalog& catalog) {
    auto specs = roles::parse_role_specs(texts);
    Diagnostics diags("--role " + roles::to_string(specs));
    roles::validate_role_specs(catalog, specs, diags);
    throw_if_errors(diags, "the roles to install");
    return specs;
}

std::string ask(const std::string& question) {
    std::cout << question << std::flush;
    std::string line;
    if (!std::getline(std::cin, line)) {
        throw Error(Errc::aborted, "no answer on standard input");
    }
    return line;
}

// The console installer: disk, roles, hostname, then the disk's name typed again as the confirmation.
void prompt(InstallOptions& o, const roles::Catalog* catalog) {
    const auto disks = list_disks();
    std::cout << "Disks:\n";
    for (const auto& d : disks) {
        std::cout << "  " << d.device.string() << "  " << format_size(d.size) << "  "
                  << (d.model.empty() ? "" : d.model) << "\n";
    }
    if (o.disk.empty()) {
        o.disk = ask("Install to which disk? ");
    }
    if (o.roles.empty() && catalog != nullptr) {
        std::cout << "Roles:";
        for (const auto& r : catalog->role_names()) {
            std::cout << " " << r;
        }
        std::cout << "\n";
        std::istringstream words(ask("Roles (space-separated, empty for none): "));
        std::vector<std::string> answered;
        for (std::string r; words >> r;) {
            answered.push_back(r);
        }
        o.roles = role_specs(answered, *catalog);
    }
    if (o.hostname.empty()) {
        o.hostname = ask("Host name (empty: decided at first boot): ");
    }
}

int run_install_command(const InstallArgs& a) {
    InstallOptions o;
    o.disk = a.disk;
    o.hostname = a.hostname;
    o.source_repo = a.source_repo;
    o.ref = a.ref;
    o.public_key = a.gpg_key;
    o.media_dir = a.media_dir;
    o.extra_kargs = a.kargs;
    o.wipe = a.wipe;
    {
        Diagnostics ignored;
        o.proc_cmdline = read_text_file(a.cmdline_file, ignored).value_or("");
    }
    auto catalog = load_catalog_if_present(a.catalog);
    if (!a.roles.empty()) {
        o.roles = catalog ? role_specs(a.roles, *catalog) : roles::parse_role_specs(a.roles);
    }
    std::string answers_file = a.answers;
    bool interactive = answers_file.empty() && ::isatty(0) == 1 && !a.yes;
    if (a.from_kernel_cmdline) {
        const auto request = parse_install_request(o.proc_cmdline);
        if (request.mode == InstallMode::none) {
            throw Error(Errc::invalid_input, "no stormnode.install= on the kernel command line");
        }
        interactive = request.mode == InstallMode::interactive;
        if (!interactive && answers_file.empty()) {
            answers_file = request.answers.string();
            if (answers_file.starts_with("http://") || answers_file.starts_with("https://")) {
                answers_file = answers_from_url(answers_file);
            } else if (request.answers == kDefaultAnswersPath && !fs::exists(request.answers)) {
                if (auto side = answers_from_side_disc(); !side.empty()) {
                    answers_file = side;
                }
            }
        }
    }
    if (!answers_file.empty()) {
        Diagnostics diags(answers_file);
        auto answers = load_answers(answers_file, catalog ? &*catalog : nullptr, diags);
        throw_if_errors(diags, "answer file " + answers_file);
        o.answers = std::move(answers);
    }
    if (interactive) {
        prompt(o, catalog ? &*catalog : nullptr);
    }
    ConsoleProgress progress(o.disk);
    progress.phase("check", 0, "");
    const bool confirm_by_typing = interactive && !o.wipe;
    o.wipe = o.wipe || confirm_by_typing;  // the plan goes on; typing the disk's name below confirms
    auto plan = plan_install(o);
    progress.commit = plan.commit;
    std::cout << "stormnode-install: " << plan.disk.path.string() << " (" << format_size(plan.disk.size)
              << ") <- " << plan.ref << " " << plan.commit << " (" << format_size(plan.tree_bytes) << ")\n";
    if (confirm_by_typing) {
        const auto typed =
            ask("Everything on " + plan.disk.path.string() + " will be erased. Type its name to go on: ");
        if (typed != plan.disk.path.string() && typed != plan.disk.path.filename().string()) {
            throw Error(Errc::aborted, "not confirmed: nothing was written");
        }
    }
    const auto result = run_install(plan, progress);
    progress.commit = result.commit;
    // What the install cost this machine: pxe serve's figures are compared with it (server load per node).
    std::cout << "stormnode-install: cpu " << install_cpu_seconds() << " s" << std::endl;
    progress.done();
    log::notice(
        "installed " + result.commit + " on " + plan.disk.path.string(),
        {{"STORMNODE_DISK", plan.disk.path.string()},
         {"STORMNODE_COMMIT", result.commit},
         {"STORMNODE_DEPLOYMENT", result.deployment}});
    return 0;
}

struct OsArgs {
    std::string sysroot = "/";
    std::string source_repo;
    std::string ref;
    std::string gpg_key;
};

// stormctl os status|upgrade|rollback: the installed node's deployments (below add_install_commands).
void add_os_commands(CLI::App& app, int& exit_code);

}  // namespace

void add_install_commands(CLI::App& app, int& exit_code) {
    auto a = std::make_shared<InstallArgs>();
    auto* install = app.add_subcommand("install", "Install stormnode to a disk (wipes it)");
    install->add_option("--disk", a->disk, "Target disk (block device, or a regular file for tests)");
    install->add_option("--answers", a->answers, "Answer file (unattended install)");
    install->add_option("--role", a->roles, "Role of the node (repeatable); replaces the answer file's");
    install->add_option("--hostname", a->hostname, "Host name; replaces the answer file's");
    install->add_option("--source-repo", a->source_repo, "OSTree repo to install from (directory or URL)")
        ->capture_default_str();
    install->add_option("--ref", a->ref, "Ref to install (default: the source repo's only ref)");
    install->add_option("--gpg-key", a->gpg_key, "Armored public key the commit must be signed with")
        ->capture_default_str();
    install
        ->add_option(
            "--media-dir", a->media_dir, "The mounted boot media (ISO) a live repo keeps the kernel on")
        ->capture_default_str();
    install->add_option("--catalog", a->catalog, "Role catalog directory");
    install->add_option("--karg", a->kargs, "Extra kernel argument for the node (repeatable)");
    install->add_option("--cmdline-file", a->cmdline_file, "Kernel command line to read")
        ->capture_default_str();
    install->add_flag("--wipe", a->wipe, "Confirm that the disk's content is destroyed");
    install->add_flag("--yes", a->yes, "Never prompt");
    install->add_flag(
        "--from-kernel-cmdline",
        a->from_kernel_cmdline,
        "Mode and answer file from stormnode.install= and stormnode.answers= (storm-install.service)");
    install->callback([a, &exit_code] {
        if (!a->from_kernel_cmdline) {
            exit_code = run_install_command(*a);
            return;
        }
        // The unit's console is the only place an operator at the rack sees what went wrong.
        try {
            exit_code = run_install_command(*a);
        } catch (const std::exception& e) {
            std::cout << "stormnode-install: failed: " << describe(e) << std::endl;
            throw;
        }
    });

    add_os_commands(app, exit_code);
}

namespace {

void add_os_commands(CLI::App& app, int& exit_code) {
    auto* os = app.add_subcommand("os", "The node's OSTree deployments: status, upgrade, rollback");
    os->require_subcommand(1);
    auto o = std::make_shared<OsArgs>();
    auto* status = os->add_subcommand("status", "List the deployments");
    auto* upgrade = os->add_subcommand("upgrade", "Pull and deploy the newest signed commit");
    auto* rollback = os->add_subcommand("rollback", "Make the previous deployment the default");
    for (auto* sub : {status, upgrade, rollback}) {
        sub->add_option("--sysroot", o->sysroot, "Root of the installed system (with /boot mounted)")
            ->capture_default_str();
    }
    upgrade->add_option("--source-repo", o->source_repo, "Repo to upgrade from (default: the remote)");
    upgrade->add_option("--ref", o->ref, "Ref (default: the default deployment's)");
    upgrade->add_option("--gpg-key", o->gpg_key, "Public key (default: the deployment's own)");
    status->callback([o, &exit_code] {
        for (const auto& d : os_status(o->sysroot)) {
            std::cout << (d.index == 0 ? "* " : "  ") << d.osname << " " << d.commit << "." << d.serial
                      << "  version " << (d.version.empty() ? "-" : d.version) << "  " << d.refspec
                      << (d.booted ? "  (booted)" : "") << (d.pending ? "  (pending)" : "")
                      << (d.rollback ? "  (rollback)" : "") << "\n";
        }
        exit_code = 0;
    });
    upgrade->callback([o, &exit_code] {
        UpgradeOptions u;
        u.sysroot = o->sysroot;
        u.source_repo = o->source_repo;
        u.ref = o->ref;
        u.public_key = o->gpg_key;
        NullProgress progress;
        const auto r = os_upgrade(u, progress);
        if (r.pull.bytes > 0) {
            std::cout << "fetched " << r.pull.bytes << " bytes: "
                      << (r.pull.delta_parts > 0
                              ? "static delta, " + std::to_string(r.pull.delta_parts) + " parts"
                              : std::string("no static delta"))
                      << ", " << r.pull.objects << " objects one by one\n";
        }
        if (r.changed) {
            std::cout << "upgraded " << r.previous << " -> " << r.commit
                      << " (boots next; rollback: " << r.previous << ")\n";
            log::notice("upgraded to " + r.commit, {{"STORMNODE_COMMIT", r.commit}});
        } else {
            std::cout << "already at " << r.commit << "\n";
        }
        exit_code = 0;
    });
    rollback->callback([o, &exit_code] {
        const auto commit = os_rollback(o->sysroot);
        std::cout << "default is now " << commit << "\n";
        log::notice("rolled back to " + commit, {{"STORMNODE_COMMIT", commit}});
        exit_code = 0;
    });
}

}  // namespace

}  // namespace stormnode::installer
