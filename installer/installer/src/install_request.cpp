#include "stormnode/installer/install_request.hpp"

#include <stormnode/common/error.hpp>
#include <stormnode/common/kernel_cmdline.hpp>

namespace stormnode::installer {

InstallRequest parse_install_request(std::string_view cmdline) {
    const KernelCmdline args(cmdline);
    InstallRequest r;
    if (const KernelArg* install = args.find("stormnode.install")) {
        const std::string value = install->value.value_or("");
        if (value == "unattended") {
            r.mode = InstallMode::unattended;
        } else if (value.empty() || value == "interactive") {
            r.mode = InstallMode::interactive;
        } else {
            throw Error(
                Errc::invalid_input,
                "stormnode.install=" + value +
                    " on the kernel command line: expected unattended or interactive");
        }
    }
    if (const auto answers = args.value("stormnode.answers"); answers && !answers->empty()) {
        r.answers = *answers;
    }
    return r;
}

}  // namespace stormnode::installer
