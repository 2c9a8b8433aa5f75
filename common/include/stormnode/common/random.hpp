// Kernel randomness (getrandom) for secrets and identities, and its hex form.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace stormnode {

std::vector<unsigned char> random_bytes(std::size_t n);       // Error(io) if the kernel refuses
std::string to_hex(const std::vector<unsigned char>& bytes);  // lowercase
inline std::string random_hex(std::size_t n_bytes) {
    return to_hex(random_bytes(n_bytes));
}

}  // namespace stormnode
