// storm-firstboot: turns the image into this node, once (see firstboot.hpp). Runs as a oneshot service
// before storm-roled; a failure is shown on the console and in the journal, and the next boot retries.
#include <stormnode/common/c_handle.hpp>
#include <stormnode/common/error.hpp>
#include <stormnode/common/log.hpp>
#include <stormnode/common/subprocess.hpp>
#include <stormnode/firstboot/curl_fetcher.hpp>
#include <stormnode/firstboot/firstboot.hpp>

#include <CLI/CLI.hpp>
#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <string>

namespace {

namespace fb = stormnode::firstboot;
namespace log = stormnode::log;

// The console is where someone at the rack looks; without one (tests, containers) stdout.
void to_console(const std::string& console, const std::string& text) {
    const std::string line = "storm-firstboot: " + text + "\n";
    stormnode::UniqueFd fd(::open(console.c_str(), O_WRONLY | O_NOCTTY | O_APPEND | O_CLOEXEC));
    const int out = fd ? fd.get() : STDOUT_FILENO;
    (void)!::write(out, line.data(), line.size());
}

// On the running node (root "/"), the new hostname and network apply now, not at the next boot.
void apply_live(const fb::Report& report) {
    if (::sethostname(report.hostname.data(), report.hostname.size()) < 0) {
        log::warning("could not set the running hostname to " + report.hostname);
    }
    const auto r = stormnode::run({.argv = {"networkctl", "reload"}});
    if (!r.ok()) {
        log::warning("networkctl reload failed; the network settings apply at the next boot: " + r.err);
    }
}

// What someone at the rack must know, on the console and in the journal: the failures (exit code 1),
// or that the node waits for a role, or which roles it got.
int tell_operator(const fb::Report& report, const std::string& console) {
    if (!report.ok()) {
        for (const auto& failure : report.failures) {
            to_console(console, "FAILED: " + failure);
            log::error(failure, {{"MESSAGE_ID", std::string(fb::message_id::kFirstbootFailed)}});
        }
        to_console(
            console,
            "first boot is incomplete; it runs again at the next boot (or: systemctl restart "
            "storm-firstboot)");
        return 1;
    }
    if (report.discovered()) {
        const std::string why = report.assignment.origin.empty() ? "" : " (" + report.assignment.origin + ")";
        to_console(console, std::string(fb::kNoRoleMessage) + why);
        log::notice(
            std::string(fb::kNoRoleMessage) + why,
            {{"MESSAGE_ID", std::string(fb::message_id::kFirstbootDiscovered)},
             {"STORMNODE_HOSTNAME", report.hostname}});
        return 0;
    }
    const std::string roles = report.assignment.node.roles.empty()
                                  ? std::string("none")
                                  : stormnode::roles::to_string(report.assignment.node.roles);
    const std::string done = "roles " + roles + " from " +
                             std::string(fb::to_string(report.assignment.source)) + ", hostname " +
                             report.hostname;
    to_console(console, done);
    log::notice(
        "first boot done: " + done,
        {{"MESSAGE_ID", std::string(fb::message_id::kFirstbootDone)},
         {"STORMNODE_ROLE", roles},
         {"STORMNODE_HOSTNAME", report.hostname}});
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    log::set_identifier("storm-firstboot");
    CLI::App app{"Sets up this node once: roles, hostname, network, identity and secrets."};
    fb::Options options;
    std::string root = "/";
    std::string cmdline;
    std::string catalog;
    std::string console = "/dev/console";
    app.add_option("--root", root, "The node's root directory")->capture_default_str();
    app.add_option("--cmdline", cmdline, "Kernel command line to use instead of <root>/proc/cmdline");
    app.add_option("--catalog", catalog, "Role catalog directory (default: the installed catalog)");
    app.add_option("--console", console, "Where messages for the operator go")->capture_default_str();
    CLI11_PARSE(app, argc, argv);

    options.root = root;
    if (app.count("--cmdline") > 0) {
        options.cmdline = cmdline;
    }
    options.catalog_dir =
        catalog.empty() ? stormnode::roles::default_catalog_dir() : std::filesystem::path(catalog);
    options.set_owner = ::geteuid() == 0;

    try {
        fb::CurlFetcher fetcher;
        const fb::Report report = fb::run_firstboot(options, fetcher);
        if (report.already_done) {
            log::info("first boot already done (" + std::string(fb::kStampPath) + " exists)");
            return 0;
        }
        for (const auto& a : report.actions) {
            log::info(
                a.what + " " + a.path + ": " + std::string(fb::to_string(a.outcome)) +
                    (a.note.empty() ? "" : " (" + a.note + ")"),
                {{"STORMNODE_FIRSTBOOT_STEP", a.what}});
        }
        if (std::filesystem::equivalent(options.root, "/")) {
            apply_live(report);
        }
        return tell_operator(report, console);
    } catch (const std::exception& e) {
        const std::string text = stormnode::describe(e);
        to_console(console, "FAILED: " + text);
        log::error(text, {{"MESSAGE_ID", std::string(fb::message_id::kFirstbootFailed)}});
        return 1;
    }
}
