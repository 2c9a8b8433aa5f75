#pragma once

namespace CLI {
class App;
}

namespace stormnode::iso {

// Registers `stormctl iso build`; the callback sets exit_code (0 ok, 1 operational error, 2 invalid
// input) or throws stormnode::Error.
void add_iso_commands(CLI::App& app, int& exit_code);

}  // namespace stormnode::iso
