#include "stormnode/common/error.hpp"

namespace stormnode {

std::string describe(const std::exception& e) {
    std::string text = e.what();
    try {
        std::rethrow_if_nested(e);
    } catch (const std::exception& inner) {
        text += ": " + describe(inner);
    } catch (...) {
        text += ": unknown error";
    }
    return text;
}

}  // namespace stormnode
