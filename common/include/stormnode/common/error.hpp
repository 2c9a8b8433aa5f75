// One error type for all of stormnode; C errors are converted once, where the C call is made.
#pragma once

#include <exception>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>

namespace stormnode {

enum class Errc {
    io,             // files, processes, sockets
    invalid_input,  // YAML, answer files, inventories, command-line arguments
    ostree,
    dbus,
    unit_failed,  // a systemd job did not finish "done"
    libvirt,
    archive,
    timeout,
    aborted,
    not_found,
    refused,  // a policy said no (quorum guard, permission)
};

class Error : public std::runtime_error {
public:
    Error(Errc code, const std::string& message, std::error_code cause = {})
        : std::runtime_error(message),
          code_(code),
          cause_(cause) {}

    [[nodiscard]] Errc code() const noexcept { return code_; }
    [[nodiscard]] const std::error_code& cause() const noexcept { return cause_; }

private:
    Errc code_;
    std::error_code cause_;
};

// sd-bus / libsystemd convention: r < 0 is -errno.
inline int check_r(int r, std::string_view what, Errc code = Errc::io) {
    if (r < 0) {
        const std::error_code ec(-r, std::system_category());
        throw Error(code, std::string(what) + ": " + ec.message(), ec);
    }
    return r;
}

// POSIX convention: -1 and errno.
inline int check_errno(int r, std::string_view what, Errc code = Errc::io) {
    if (r < 0) {
        const std::error_code ec(errno, std::system_category());
        throw Error(code, std::string(what) + ": " + ec.message(), ec);
    }
    return r;
}

// "installing to '/dev/vda': writing deployment: No space left on device"
std::string describe(const std::exception& e);

}  // namespace stormnode
