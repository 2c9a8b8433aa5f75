#include "stormnode/supervisor/transaction.hpp"

#include <stormnode/common/error.hpp>
#include <stormnode/common/temp_dir.hpp>
#include <stormnode/common/yaml_diagnostics.hpp>

#include <yaml-cpp/yaml.h>

#include <array>
#include <chrono>
#include <ctime>

namespace stormnode::roles {
namespace {

std::string utc_now() {
    const std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
    std::tm tm{};
    gmtime_r(&now, &tm);
    std::array<char, 32> text{};
    const std::size_t n = std::strftime(text.data(), text.size(), "%Y-%m-%dT%H:%M:%SZ", &tm);
    return {text.data(), n};
}

// A list of role specs, each checked where it was written.
std::vector<RoleSpec> role_list(const YAML::Node& doc, const char* key, Diagnostics& diags) {
    std::vector<RoleSpec> specs;
    const YAML::Node list = doc[key];
    if (!list) {
        return specs;
    }
    if (!list.IsSequence()) {
        diags.error(list, std::string("'") + key + "' must be a list");
        return specs;
    }
    for (const auto& item : list) {
        if (!item.IsScalar()) {
            diags.error(item, std::string("items of '") + key + "' must be strings");
            continue;
        }
        try {
            specs.push_back(parse_role_spec(item.Scalar()));
        } catch (const Error& e) {
            diags.error(item, e.what());
        }
    }
    return specs;
}

}  // namespace

TransactionLog::TransactionLog(std::filesystem::path state_dir) : dir_(std::move(state_dir)) {}

void TransactionLog::begin(const std::vector<RoleSpec>& old_roles, const std::vector<RoleSpec>& new_roles) {
    current_ = SwitchRecord{old_roles, new_roles, utc_now(), "recorded", {}, {}};
    write();
}

void TransactionLog::resume(const SwitchRecord& record) {
    current_ = record;
}

void TransactionLog::set_phase(std::string_view phase) {
    current_.phase = phase;
    write();
}

void TransactionLog::finish(std::string_view outcome) {
    current_.phase = "done";
    current_.outcome = outcome;
    current_.finished_at = utc_now();
    write();
}

void TransactionLog::write() const {
    YAML::Emitter out;
    out << YAML::BeginMap;
    out << YAML::Key << "old_roles" << YAML::Value << YAML::Flow << to_strings(current_.old_roles);
    out << YAML::Key << "new_roles" << YAML::Value << YAML::Flow << to_strings(current_.new_roles);
    out << YAML::Key << "started_at" << YAML::Value << current_.started_at;
    out << YAML::Key << "phase" << YAML::Value << current_.phase;
    if (!current_.outcome.empty()) {
        out << YAML::Key << "outcome" << YAML::Value << current_.outcome;
        out << YAML::Key << "finished_at" << YAML::Value << current_.finished_at;
    }
    out << YAML::EndMap;
    try {
        std::filesystem::create_directories(dir_);
        write_file_atomic(file(), std::string(out.c_str()) + "\n", 0644);
    } catch (...) {
        std::throw_with_nested(Error(Errc::io, "recording the role switch in " + file().string()));
    }
}

std::optional<SwitchRecord> TransactionLog::last() const {
    std::error_code ec;
    if (!std::filesystem::exists(file(), ec)) {
        return std::nullopt;
    }
    Diagnostics diags(file().string());
    const auto doc = load_yaml_file(file(), diags);
    SwitchRecord record;
    if (doc && yaml::expect_map(*doc, "transaction", diags)) {
        yaml::reject_unknown_keys(
            *doc, {"old_roles", "new_roles", "started_at", "phase", "outcome", "finished_at"}, diags);
        const YAML::Node& map = *doc;  // const access: never inserts
        record.old_roles = role_list(map, "old_roles", diags);
        record.new_roles = role_list(map, "new_roles", diags);
        record.started_at = yaml::optional_string(*doc, "started_at", diags).value_or("");
        record.phase = yaml::require_string(*doc, "phase", diags).value_or("");
        record.outcome = yaml::optional_string(*doc, "outcome", diags).value_or("");
        record.finished_at = yaml::optional_string(*doc, "finished_at", diags).value_or("");
        if (!(*doc)["old_roles"] || !(*doc)["new_roles"]) {
            diags.error(*doc, "a role switch record needs old_roles and new_roles");
        }
    }
    throw_if_errors(diags, file().string());
    return record;
}

std::optional<SwitchRecord> TransactionLog::unfinished() const {
    auto record = last();
    if (!record || record->finished()) {
        return std::nullopt;
    }
    return record;
}

}  // namespace stormnode::roles
