// The role switch transaction's record: <state-dir>/transaction.yaml. The intent is written (atomically)
// before anything is stopped, each phase as it begins, and the outcome at the end; a record a crash left
// unfinished tells the next storm-roled which roles to go back to.
#pragma once

#include <stormnode/catalog/role_spec.hpp>

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace stormnode::roles {

struct SwitchRecord {
    std::vector<RoleSpec> old_roles;  // written as "name" or "name:variant"
    std::vector<RoleSpec> new_roles;
    std::string started_at;  // UTC, ISO 8601 (for people: recovery does not depend on it)
    std::string phase;       // recorded, stopping, starting, rolling-back, done
    std::string outcome;     // when done: switched, rolled-back or failed
    std::string finished_at;

    [[nodiscard]] bool finished() const noexcept { return phase == "done"; }
};

class TransactionLog {
public:
    explicit TransactionLog(std::filesystem::path state_dir);

    [[nodiscard]] std::filesystem::path file() const { return dir_ / "transaction.yaml"; }

    // Records the intent (phase "recorded"). Throws Error(io) when it cannot: then nothing may change.
    void begin(const std::vector<RoleSpec>& old_roles, const std::vector<RoleSpec>& new_roles);
    // Takes over a record a previous run left unfinished (to roll it back).
    void resume(const SwitchRecord& record);
    // Each throws Error(io) when the file cannot be written.
    void set_phase(std::string_view phase);
    void finish(std::string_view outcome);

    // The record a previous run left unfinished; nullopt when there is none or it is done. Throws
    // Error(invalid_input) naming file:line:col for a damaged file.
    [[nodiscard]] std::optional<SwitchRecord> unfinished() const;
    // The last record, finished or not.
    [[nodiscard]] std::optional<SwitchRecord> last() const;

private:
    void write() const;

    std::filesystem::path dir_;
    SwitchRecord current_;
};

}  // namespace stormnode::roles
