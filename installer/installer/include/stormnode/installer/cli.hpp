#pragma once

namespace CLI {
class App;
}

namespace stormnode::installer {

// Registers `stormctl install` and `stormctl os status|upgrade|rollback`; callbacks set exit_code
// (0 ok, 1 operational error, 2 invalid input) or throw stormnode::Error.
void add_install_commands(CLI::App& app, int& exit_code);

}  // namespace stormnode::installer
