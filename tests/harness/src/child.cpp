#include "stormnode/test/child.hpp"

#include <stormnode/common/c_handle.hpp>
#include <stormnode/common/error.hpp>

#include <poll.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <array>
#include <cerrno>

namespace stormnode::test {

void wait_for_file(
    const std::filesystem::path& file,
    ChildProcess& owner,
    const std::string& owner_name,
    std::chrono::steady_clock::time_point deadline) {
    UniqueFd inotify(::inotify_init1(IN_CLOEXEC | IN_NONBLOCK));
    check_errno(inotify.get(), "inotify_init1");
    check_errno(
        ::inotify_add_watch(inotify.get(), file.parent_path().c_str(), IN_CREATE | IN_MOVED_TO),
        "watching " + file.parent_path().string());
    while (!std::filesystem::exists(file)) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) {
            throw Error(Errc::timeout, file.string() + " did not appear in time");
        }
        std::array<pollfd, 2> fds{{{inotify.get(), POLLIN, 0}, {owner.pidfd(), POLLIN, 0}}};
        const int ready = ::poll(fds.data(), fds.size(), static_cast<int>(left.count()));
        if (ready < 0 && errno == EINTR) {
            continue;
        }
        check_errno(ready, "waiting for " + file.string());
        if ((fds[1].revents & POLLIN) != 0 && !std::filesystem::exists(file)) {
            const auto status = owner.wait(std::chrono::milliseconds(0));
            throw Error(
                Errc::io,
                owner_name + " " + (status ? describe_wait_status(*status) : "ended") + " before it made " +
                    file.string());
        }
        std::array<char, 4096> events{};
        while (::read(inotify.get(), events.data(), events.size()) > 0) {
        }
    }
}

}  // namespace stormnode::test
