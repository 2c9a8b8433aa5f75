// What the live system's kernel command line asks of storm-install.service:
//   stormnode.install=unattended|interactive   stormnode.answers=PATH
#pragma once

#include <filesystem>
#include <string_view>

namespace stormnode::installer {

inline constexpr const char* kDefaultAnswersPath = "/run/initramfs/live/stormnode/answers.yaml";

enum class InstallMode { none, unattended, interactive };

struct InstallRequest {
    InstallMode mode = InstallMode::none;
    std::filesystem::path answers = kDefaultAnswersPath;
};

// Reads the command line with common's parser (systemd's rules; the last of a repeated key wins).
// Throws Error(invalid_input) for an unknown stormnode.install mode; a bare "stormnode.install" means
// interactive.
InstallRequest parse_install_request(std::string_view cmdline);

}  // namespace stormnode::installer
