#include "stormnode/supervisor/prober.hpp"

namespace stormnode::roles {

std::string describe_check(const Check& check) {
    switch (check.kind) {
        case CheckKind::unit:
            return "unit";
        case CheckKind::tcp:
            return "tcp " + check.host + ":" + std::to_string(check.port);
        case CheckKind::http:
            return "http http://" + check.host + ":" + std::to_string(check.port) + check.path;
        case CheckKind::exec: {
            std::string text = "exec";
            for (const auto& arg : check.argv) {
                text += " " + arg;
            }
            return text;
        }
        case CheckKind::amqp_peer:
            return "amqp_peer :" + std::to_string(check.port != 0 ? check.port : 5672);
    }
    return "check";
}

}  // namespace stormnode::roles
