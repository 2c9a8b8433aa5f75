#pragma once

namespace CLI {
class App;
}

namespace stormnode::image {

// Registers `stormctl image build|list|diff`; the callbacks set exit_code (0 ok, 1 operational error,
// 2 usage or validation error) or throw stormnode::Error.
void add_image_commands(CLI::App& app, int& exit_code);

}  // namespace stormnode::image
