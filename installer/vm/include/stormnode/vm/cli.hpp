#pragma once

namespace CLI {
class App;
}

namespace stormnode::installer {

// Registers `stormctl vm run|list|destroy`; the callback sets exit_code (0 ok, 1 operational error,
// 2 invalid input) or throws stormnode::Error.
void add_vm_commands(CLI::App& app, int& exit_code);

}  // namespace stormnode::installer
