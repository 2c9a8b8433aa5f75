// Per-node identity and secrets (roles-notes.md §5): the catalog's node_state entries, generated once
// on the node, never copied from the image. An existing file is never overwritten: its owner and mode
// are set as the catalog says, its content is kept.
#pragma once

#include <stormnode/catalog/catalog.hpp>

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace stormnode::firstboot {

// Users and groups of the node being set up, read from its own /etc/passwd and /etc/group (the
// build machine's are irrelevant).
class Accounts {
public:
    struct User {
        unsigned uid = 0;
        unsigned gid = 0;
    };
    static Accounts load(const std::filesystem::path& root);  // missing files: only root is known

    [[nodiscard]] std::optional<User> user(const std::string& name) const;
    [[nodiscard]] std::optional<unsigned> group(const std::string& name) const;

private:
    std::map<std::string, User> users_;
    std::map<std::string, unsigned> groups_;
};

enum class Outcome {
    created,   // written now
    kept,      // already there (content untouched)
    deferred,  // left to storm-roled's role init: a marker is in /var/lib/stormnode/role-init/
};
std::string_view to_string(Outcome outcome);

struct GeneratorContext {
    std::filesystem::path root = "/";
    std::string hostname;  // the node's, for the IQN, certificate and key comments
    const Accounts* accounts = nullptr;
    bool set_owner = true;  // chown needs root; false records the owner in the note instead
};

struct GeneratorResult {
    Outcome outcome = Outcome::kept;
    std::string note;  // for the stamp and the log: what was done or why not
};

// Runs node_state.generator for node_state.path under ctx.root. Throws Error naming the path and the
// tool on failure; what it has not finished is redone by the next run.
GeneratorResult generate(const roles::NodeState& state, const GeneratorContext& ctx);

// Where deferred generators leave their marker: <root>/var/lib/stormnode/role-init/<generator>, a YAML
// map {path, owner, mode}. storm-roled's role init runs the step (mysql_install_db into an empty
// datadir, pg_createcluster 15 main, galera/nats/drbd names and swift rings from cluster.yaml) and
// removes the marker.
std::filesystem::path role_init_marker(const std::filesystem::path& root, const std::string& generator);

}  // namespace stormnode::firstboot
