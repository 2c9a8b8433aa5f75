#pragma once

namespace CLI {  // NOLINT(readability-identifier-naming): CLI11's namespace
class App;
}

namespace stormnode::iso {

// Registers `stormctl pxe validate|answers|build|serve|report`; the callbacks set exit_code (0 ok,
// 1 operational error, 2 usage or validation error) or throw stormnode::Error.
void add_pxe_commands(CLI::App& app, int& exit_code);

}  // namespace stormnode::iso
