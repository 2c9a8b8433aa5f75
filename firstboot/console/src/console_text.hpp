// Small helpers the console's sources share.
#pragma once

#include <string>
#include <vector>

namespace stormnode::firstboot {

// std::visit over lambdas.
template <class... Ts>
struct Overloaded : Ts... {
    using Ts::operator()...;
};
template <class... Ts>
Overloaded(Ts...) -> Overloaded<Ts...>;

// "a, b" (separator ", "), or `empty` for no items.
inline std::string joined(
    const std::vector<std::string>& items,
    const std::string& separator = ", ",
    const std::string& empty = "") {
    std::string text;
    for (const auto& item : items) {
        text += (text.empty() ? "" : separator) + item;
    }
    return text.empty() ? empty : text;
}

}  // namespace stormnode::firstboot
