#include <stormnode/roles/cli.hpp>

#include <CLI/CLI.hpp>

namespace stormnode::roles {

void add_role_commands(CLI::App& app, int& exit_code) {
    (void)exit_code;
    app.add_subcommand("role", "Role catalog and this node's roles");
}

}  // namespace stormnode::roles
