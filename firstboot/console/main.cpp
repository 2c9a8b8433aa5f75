// storm-console: the node's menu on tty1 (storm-console.service). Shows what the node is and whether it
// is well, and changes it (roles, network, OS rollback, power) after the root password.
#include <stormnode/common/error.hpp>
#include <stormnode/common/log.hpp>
#include <stormnode/console/console_flow.hpp>
#include <stormnode/console/console_ui.hpp>
#include <stormnode/console/console_worker.hpp>

#include <CLI/CLI.hpp>

#include <filesystem>
#include <string>

namespace {
namespace fb = stormnode::firstboot;
namespace log = stormnode::log;
}  // namespace

int main(int argc, char** argv) {
    log::set_identifier("storm-console");
    CLI::App app{"The node's console menu: status, role switching, network, OS rollback, power."};
    fb::BackendOptions options;
    std::string root = "/";
    std::string catalog_dir;
    std::string confdir;
    app.add_option("--root", root, "Where the node's files are (/etc/stormnode, /var/lib/stormnode)")
        ->capture_default_str();
    app.add_option("--catalog", catalog_dir, "Role catalog directory (default: the installed catalog)");
    app.add_option("--pam-service", options.pam_service, "PAM service that checks the password")
        ->capture_default_str();
    app.add_option("--pam-user", options.pam_user, "Whose password a change needs")->capture_default_str();
    app.add_option("--pam-confdir", confdir, "PAM configuration directory (default /etc/pam.d)");
    app.add_option("--stormctl", options.stormctl, "stormctl to call for 'os rollback'")
        ->capture_default_str();
    CLI11_PARSE(app, argc, argv);
    options.root = root;
    options.pam_confdir = confdir;

    stormnode::roles::Catalog catalog;
    try {
        options.catalog_dir = catalog_dir.empty() ? stormnode::roles::default_catalog_dir()
                                                  : std::filesystem::path(catalog_dir);
        catalog = stormnode::roles::load_valid_catalog(options.catalog_dir);
    } catch (const std::exception& e) {
        // The status screen is still worth having: only the role picker is empty.
        log::error("storm-console: no role catalog: " + stormnode::describe(e));
    }
    try {
        fb::ConsoleFlow flow(catalog);
        const fb::ConsoleTerminal terminal;  // before the worker thread; closed after it is joined
        fb::ConsoleWorker worker(fb::make_node_backend(options, catalog), {});
        fb::run_console_ui(flow, worker);
    } catch (const std::exception& e) {
        log::error("storm-console: " + stormnode::describe(e));
        return 1;
    }
    return 0;
}
