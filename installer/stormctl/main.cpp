// stormctl: parses the command line and hands over to the areas' subcommands.
#include <stormnode/catalog/cli.hpp>
#include <stormnode/cluster/cli.hpp>
#include <stormnode/common/error.hpp>
#include <stormnode/common/log.hpp>
#include <stormnode/image/cli.hpp>
#include <stormnode/installer/cli.hpp>
#include <stormnode/iso/cli.hpp>
#include <stormnode/pxe/cli.hpp>
#include <stormnode/vm/cli.hpp>

#include <CLI/CLI.hpp>

int main(int argc, char** argv) {
    stormnode::log::set_identifier("stormctl");
    CLI::App app{"stormctl: build, install and operate stormnode nodes"};
    app.set_version_flag("--version", STORMNODE_VERSION);
    app.require_subcommand(1);
    int exit_code = 0;
    stormnode::roles::add_role_commands(app, exit_code);
    stormnode::roles::add_cluster_commands(app, exit_code);
    stormnode::image::add_image_commands(app, exit_code);
    stormnode::installer::add_install_commands(app, exit_code);
    stormnode::iso::add_iso_commands(app, exit_code);
    stormnode::iso::add_pxe_commands(app, exit_code);
    stormnode::installer::add_vm_commands(app, exit_code);
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        const int code = app.exit(e);
        return code == 0 ? 0 : 2;  // usage errors exit 2
    } catch (const stormnode::Error& e) {
        stormnode::log::error(stormnode::describe(e));
        return e.code() == stormnode::Errc::invalid_input ? 2 : 1;
    } catch (const std::exception& e) {
        stormnode::log::error(stormnode::describe(e));
        return 1;
    }
    return exit_code;
}
