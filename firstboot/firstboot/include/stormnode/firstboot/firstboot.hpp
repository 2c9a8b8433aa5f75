// storm-firstboot: once, before storm-roled, turn an image into this node. Everything is under a
// root directory ("/" on the node, a temporary directory in tests).
//
//   1. the roles: kernel command line > node.yaml > inventory > none ("discovered": the console asks)
//   2. machine-id, then the hostname (/etc/hostname) and systemd-networkd's .network file
//   3. node.yaml, when the roles came from the kernel command line or the inventory
//   4. each node_state entry of the common layer and the chosen roles (generators.hpp)
//   5. the stamp /var/lib/stormnode/firstboot.done listing what was done, only when all of it worked
//
// A failed step does not stop the others; it is reported, the stamp is not written, and the next run
// redoes only what is missing (generators never overwrite what exists). A discovered node gets its
// identity (common layer) but no stamp, so the next boot asks again.
#pragma once

#include "stormnode/firstboot/generators.hpp"
#include "stormnode/firstboot/role_source.hpp"

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace stormnode::firstboot {

inline constexpr std::string_view kStampPath = "/var/lib/stormnode/firstboot.done";
// "state: assigned|discovered|failed", for storm-console and operators.
inline constexpr std::string_view kStatePath = "/var/lib/stormnode/firstboot.state";
inline constexpr std::string_view kNoRoleMessage = "no role assigned: waiting for the console";

namespace message_id {
inline constexpr std::string_view kFirstbootDone = "bb8f8c5180174a2d935b3d4a51c937b5";
inline constexpr std::string_view kFirstbootDiscovered = "1d02e8cd2eac43fa815f6bdc83364540";
inline constexpr std::string_view kFirstbootFailed = "ea45b5bad6884b1da7a94447e1cd8f91";
}  // namespace message_id

struct Options {
    std::filesystem::path root = "/";
    std::optional<std::string> cmdline;  // else <root>/proc/cmdline
    std::filesystem::path catalog_dir;   // the role catalog (roles::default_catalog_dir() on the node)
    bool set_owner = true;               // chown needs root; false: owners are recorded in notes
};

struct Action {
    std::string what;  // "hostname", "network", "node.yaml", or the generator name
    std::string path;  // on the node ("/etc/hostname")
    Outcome outcome = Outcome::kept;
    std::string note;
};

struct Report {
    bool already_done = false;  // the stamp was there: nothing was done
    Assignment assignment;
    std::string hostname;
    std::vector<Action> actions;
    std::vector<std::string> failures;  // each a whole sentence: "erlang-cookie (/var/lib/...): ..."

    [[nodiscard]] bool ok() const noexcept { return failures.empty(); }
    [[nodiscard]] bool discovered() const noexcept { return assignment.source == RoleSource::none; }
};

// This node's MAC addresses from <root>/sys/class/net/*/address (not lo, not all-zero), lower case.
std::vector<std::string> read_macs(const std::filesystem::path& root);

// Never throws for what happens on the node: failures are in the report. Throws Error only when the
// catalog cannot be loaded (nothing can be decided without it).
Report run_firstboot(const Options& options, Fetcher& fetcher);

}  // namespace stormnode::firstboot
