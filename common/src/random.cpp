#include "stormnode/common/random.hpp"

#include "stormnode/common/error.hpp"

#include <sys/random.h>

#include <cerrno>
#include <string_view>

namespace stormnode {

std::vector<unsigned char> random_bytes(std::size_t n) {
    std::vector<unsigned char> bytes(n);
    std::size_t done = 0;
    while (done < n) {
        const ssize_t r = ::getrandom(bytes.data() + done, n - done, 0);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        check_errno(static_cast<int>(r), "reading random bytes from the kernel");
        done += static_cast<std::size_t>(r);
    }
    return bytes;
}

std::string to_hex(const std::vector<unsigned char>& bytes) {
    static constexpr std::string_view kDigits = "0123456789abcdef";
    std::string text;
    text.reserve(bytes.size() * 2);
    for (const unsigned char b : bytes) {
        text += kDigits[b >> 4U];
        text += kDigits[b & 0xFU];
    }
    return text;
}

}  // namespace stormnode
