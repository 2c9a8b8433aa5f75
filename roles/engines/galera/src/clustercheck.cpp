#include "stormnode/galera/clustercheck.hpp"

#include <stormnode/common/error.hpp>
#include <stormnode/common/subprocess.hpp>

#include <algorithm>
#include <cctype>
#include <sstream>

namespace stormnode::roles {
namespace {

std::string lowered(std::string text) {
    std::transform(text.begin(), text.end(), text.begin(), [](unsigned char c) { return std::tolower(c); });
    return text;
}

}  // namespace

GaleraStatus parse_galera_status(std::string_view batch_output) {
    GaleraStatus status;
    bool has_cluster = false;
    bool has_local = false;
    std::istringstream lines{std::string(batch_output)};
    for (std::string line; std::getline(lines, line);) {
        const auto tab = line.find('\t');
        if (tab == std::string::npos) {
            continue;
        }
        const auto name = lowered(line.substr(0, tab));
        auto value = line.substr(tab + 1);
        if (!value.empty() && value.back() == '\r') {
            value.pop_back();
        }
        if (name == "wsrep_cluster_status") {
            status.cluster_status = value;
            has_cluster = true;
        } else if (name == "wsrep_local_state_comment") {
            status.local_state = value;
            has_local = true;
        }
    }
    if (!has_cluster || !has_local) {
        throw Error(
            Errc::invalid_input,
            "the server reports no wsrep_cluster_status or wsrep_local_state_comment: is wsrep on?");
    }
    return status;
}

GaleraStatus read_galera_status(std::chrono::milliseconds timeout) {
    Command command{
        .argv = {
            "mariadb",
            "--batch",
            "--skip-column-names",
            "--connect-timeout=" + std::to_string(std::max<long long>(
                                       1, std::chrono::ceil<std::chrono::seconds>(timeout).count())),
            "--execute",
            std::string(kGaleraStatusQuery)}};
    command.timeout = timeout;
    const auto result = run(command);
    if (!result.ok()) {
        auto err = result.err;
        while (!err.empty() && (err.back() == '\n' || err.back() == ' ')) {
            err.pop_back();
        }
        throw Error(
            Errc::io,
            "cannot ask the server: mariadb " +
                (result.timed_out ? std::string("timed out")
                                  : "exit status " + std::to_string(result.exit_status)) +
                (err.empty() ? "" : ": " + err));
    }
    return parse_galera_status(result.out);
}

ClustercheckAnswer clustercheck_answer(const GaleraStatus& status) {
    const std::string state = "wsrep_cluster_status=" + status.cluster_status +
                              " wsrep_local_state_comment=" + status.local_state + "\n";
    if (status.cluster_status == "Primary" && status.local_state == "Synced") {
        return {200, "Galera node is Synced in a Primary component: " + state};
    }
    return {503, "Galera node is not Synced in a Primary component: " + state};
}

std::string non_primary_reason(const GaleraStatus& status) {
    if (status.cluster_status == "Primary") {
        return {};
    }
    return "galera node outside a Primary component (wsrep_cluster_status=" + status.cluster_status +
           "): a restart cannot help, it waits for the component to come back or for an operator";
}

}  // namespace stormnode::roles
