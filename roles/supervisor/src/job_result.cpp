#include "stormnode/supervisor/systemd_manager.hpp"

#include <array>
#include <utility>

namespace stormnode::roles {
namespace {

constexpr std::array<std::pair<JobResult, std::string_view>, 7> kJobResults{{
    {JobResult::done, "done"},
    {JobResult::canceled, "canceled"},
    {JobResult::timeout, "timeout"},
    {JobResult::failed, "failed"},
    {JobResult::dependency, "dependency"},
    {JobResult::skipped, "skipped"},
    {JobResult::rejected, "rejected"},
}};

}  // namespace

std::string_view to_string(JobResult result) {
    for (const auto& [value, text] : kJobResults) {
        if (value == result) {
            return text;
        }
    }
    return "failed";
}

JobResult parse_job_result(std::string_view text) {
    for (const auto& [value, name] : kJobResults) {
        if (name == text) {
            return value;
        }
    }
    return JobResult::failed;  // "invalid", "collected", "once" and future results are failures to us
}

std::optional<Error> job_error(std::string_view verb, const std::string& unit, const JobOutcome& outcome) {
    if (outcome.ok()) {
        return std::nullopt;
    }
    std::string message = std::string(verb) + " '" + unit + "': ";
    message += outcome.result == JobResult::rejected ? outcome.error
                                                     : "job " + std::string(to_string(outcome.result));
    return Error(Errc::unit_failed, message);
}

}  // namespace stormnode::roles
