#pragma once

namespace CLI {  // NOLINT(readability-identifier-naming): CLI11's namespace
class App;
}

namespace stormnode::roles {

// Registers `stormctl role ...`; the callbacks set exit_code (0 ok, 1 operational error,
// 2 usage or validation error) or throw stormnode::Error.
void add_role_commands(CLI::App& app, int& exit_code);

}  // namespace stormnode::roles
