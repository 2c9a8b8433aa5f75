// integration.catalog_vs_debian: checks the role catalog against Debian bookworm itself. Every
// package a role, variant or mixin names must have a candidate in the configured archive, and every
// unit it names must be in the .deb of the package it says ships it (read with dpkg-deb -c). The
// .debs are kept in a cache (default /var/cache/stormnode/debs) so that later runs fetch nothing.
// Units of package `stormnode` must be among what the stormnode package installs: the build tree named by
// $STORMNODE_BINARY_DIR (set by ctest) is installed into a scratch directory, as CPack does for the .deb.
//
// Usage: STORMNODE_BINARY_DIR=BUILD test_catalog_vs_debian [CATALOG_DIR]
//   (CATALOG_DIR default: $STORMNODE_CATALOG_DIR, else the installed one)
// Exit: 0 all found, 1 mismatches (each one named), 77 the Debian mirror cannot be reached.
#include <stormnode/catalog/catalog.hpp>
#include <stormnode/common/error.hpp>
#include <stormnode/common/strings.hpp>
#include <stormnode/common/subprocess.hpp>
#include <stormnode/common/temp_dir.hpp>
#include <stormnode/common/yaml_diagnostics.hpp>

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace fs = std::filesystem;
using stormnode::Command;
using stormnode::run;

namespace {

constexpr int kExitMismatch = 1;
constexpr int kExitSkip = 77;

// Units of stormnode itself: they ship in the image, not in Debian.
constexpr std::string_view kOwnPackage = "stormnode";
constexpr std::uintmax_t kMiB = std::uintmax_t{1024} * 1024;

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> lines;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
        lines.push_back(line);
    }
    return lines;
}

std::string trim(const std::string& s) {
    const auto b = s.find_first_not_of(" \t");
    const auto e = s.find_last_not_of(" \t");
    return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
}

// Candidate versions from the local package lists (`apt-cache policy` needs no network).
std::map<std::string, std::string> candidates(const std::set<std::string>& packages) {
    Command cmd{.argv = {"apt-cache", "policy"}, .env = {{"LC_ALL", "C"}}};
    cmd.argv.insert(cmd.argv.end(), packages.begin(), packages.end());
    const auto result = stormnode::run_checked(cmd);
    std::map<std::string, std::string> found;
    std::string current;
    for (const auto& line : lines_of(result.out)) {
        if (!line.empty() && line[0] != ' ' && line.back() == ':') {
            current = line.substr(0, line.size() - 1);
        } else if (const auto t = trim(line); t.starts_with("Candidate:") && !current.empty()) {
            const auto version = trim(t.substr(std::string("Candidate:").size()));
            if (version != "(none)") {
                found[current] = version;
            }
        }
    }
    return found;
}

// The file name apt-get download gives a .deb, up to the architecture: "nova-api_2%3a26.2.2-1_".
std::string deb_prefix(const std::string& package, const std::string& version) {
    std::string escaped;
    for (const char c : version) {
        escaped += c == ':' ? std::string("%3a") : std::string(1, c);
    }
    return package + "_" + escaped + "_";
}

std::optional<fs::path> cached_deb(
    const fs::path& cache, const std::string& package, const std::string& version) {
    const auto prefix = deb_prefix(package, version);
    for (const auto& entry : fs::directory_iterator(cache)) {
        const auto name = entry.path().filename().string();
        if (entry.is_regular_file() && name.starts_with(prefix) && name.ends_with(".deb")) {
            return entry.path();
        }
    }
    return std::nullopt;
}

bool looks_unreachable(const std::string& apt_stderr) {
    static const std::vector<std::string> signs{
        "Could not resolve",
        "Temporary failure resolving",
        "Unable to connect",
        "Could not connect",
        "Connection timed out",
        "Network is unreachable",
        "No route to host"};
    return std::ranges::any_of(
        signs, [&](const std::string& sign) { return apt_stderr.find(sign) != std::string::npos; });
}

struct FetchResult {
    std::map<std::string, fs::path> debs;  // package -> .deb in the cache
    std::size_t fetched = 0;
    std::uintmax_t fetched_bytes = 0;
    bool unreachable = false;
    std::string error;
};

// Fetches what the cache lacks into a private folder beside it, then moves each complete .deb in:
// an interrupted run never leaves a truncated .deb for the next one to trust.
FetchResult fetch(const fs::path& cache, const std::map<std::string, std::string>& wanted) {
    FetchResult result;
    std::vector<std::string> missing;
    for (const auto& [package, version] : wanted) {
        if (auto deb = cached_deb(cache, package, version)) {
            result.debs[package] = *deb;
        } else {
            missing.push_back(package);
            missing.back().append("=").append(version);
        }
    }
    if (missing.empty()) {
        return result;
    }
    const fs::path partial = cache / (".partial." + std::to_string(::getpid()));
    fs::remove_all(partial);
    fs::create_directories(partial);
    // apt's _apt sandbox user cannot write into a root-owned cache folder.
    Command cmd{
        .argv = {"apt-get", "download", "-q", "-o", "APT::Sandbox::User=root"},
        .env = {{"LC_ALL", "C"}},
        .timeout = std::chrono::minutes(20),
        .cwd = partial};
    cmd.argv.insert(cmd.argv.end(), missing.begin(), missing.end());
    const auto run_result = run(cmd);
    for (const auto& entry : fs::directory_iterator(partial)) {
        if (entry.is_regular_file() && entry.path().extension() == ".deb") {
            result.fetched_bytes += entry.file_size();
            fs::rename(entry.path(), cache / entry.path().filename());
            ++result.fetched;
        }
    }
    fs::remove_all(partial);
    for (const auto& [package, version] : wanted) {
        if (!result.debs.contains(package)) {
            if (auto deb = cached_deb(cache, package, version)) {
                result.debs[package] = *deb;
            }
        }
    }
    if (!run_result.ok()) {
        // The first error and how many followed: one line a package would bury the summary.
        const auto errors = lines_of(trim(run_result.err));
        result.error = run_result.timed_out ? "apt-get download timed out"
                       : errors.empty() ? "apt-get download exited " + std::to_string(run_result.exit_status)
                                        : errors.front();
        if (errors.size() > 1) {
            result.error += " (and " + std::to_string(errors.size() - 1) + " more lines)";
        }
        result.unreachable = result.fetched == 0 && looks_unreachable(run_result.err);
    }
    return result;
}

// The unit files a .deb ships under (usr/)lib/systemd/system/, symlinked aliases included
// (garbd.service -> garb.service).
std::set<std::string> shipped_units(const fs::path& deb, std::string& error) {
    const auto result =
        run(Command{.argv = {"dpkg-deb", "--contents", deb.string()}, .env = {{"LC_ALL", "C"}}});
    if (!result.ok()) {
        error = "dpkg-deb --contents " + deb.filename().string() + ": " + trim(result.err);
        return {};
    }
    std::set<std::string> units;
    for (const auto& line : lines_of(result.out)) {
        // "-rw-r--r-- root/root 1234 2024-01-01 00:00 ./lib/systemd/system/x.service[ -> target]"
        std::istringstream fields(line);
        std::string skip;
        std::string name;
        // perms, owner, size, date and time, then the path
        if (!(fields >> skip >> skip >> skip >> skip >> skip >> name)) {
            continue;
        }
        for (const char* dir : {"./lib/systemd/system/", "./usr/lib/systemd/system/"}) {
            if (name.starts_with(dir)) {
                const auto rest = name.substr(std::string(dir).size());
                if (!rest.empty() && rest.find('/') == std::string::npos) {
                    units.insert(rest);
                }
            }
        }
    }
    return units;
}

// "postgresql@15-main.service" is an instance of the template "postgresql@.service".
bool unit_shipped(const std::string& unit, const std::set<std::string>& shipped) {
    if (shipped.contains(unit)) {
        return true;
    }
    const auto at = unit.find('@');
    const auto dot = unit.rfind('.');
    if (at != std::string::npos && dot != std::string::npos && dot > at) {
        return shipped.contains(unit.substr(0, at + 1) + unit.substr(dot));
    }
    return false;
}

// What one catalog file asks of Debian.
struct RoleFacts {
    std::set<std::string> packages;  // its own and its variants'
    std::vector<const stormnode::roles::Unit*> unit_defs;
    std::set<std::string> keep_disabled;
    std::set<std::string> available_packages;  // packages the node has when this role runs
};

RoleFacts facts_of(const stormnode::roles::Catalog& catalog, const stormnode::roles::Role& role) {
    RoleFacts facts;
    auto add_body = [&](const stormnode::roles::RoleBody& body) {
        facts.packages.insert(body.packages.begin(), body.packages.end());
        for (const auto& unit : body.units) {
            facts.unit_defs.push_back(&unit);
        }
        facts.keep_disabled.insert(body.keep_disabled.begin(), body.keep_disabled.end());
    };
    add_body(role.body);
    for (const auto& [name, body] : role.variants) {
        add_body(body);
    }
    facts.available_packages = facts.packages;
    for (const auto& mixin : role.mixins) {
        if (const auto* m = catalog.find(mixin)) {
            facts.available_packages.insert(m->body.packages.begin(), m->body.packages.end());
        }
    }
    for (const auto& [name, other] : catalog.roles) {
        if (other.kind == stormnode::roles::RoleKind::common) {
            facts.available_packages.insert(other.body.packages.begin(), other.body.packages.end());
        }
    }
    return facts;
}

// Looks units up in the cached .debs, reading each .deb's contents once.
class DebIndex {
public:
    DebIndex(const FetchResult& fetched, std::vector<std::string>& mismatches)
        : fetched_(&fetched),
          mismatches_(&mismatches) {}

    // nullptr when there is no .deb of the package.
    const std::set<std::string>* units_in(const std::string& package) {
        if (auto it = units_of_.find(package); it != units_of_.end()) {
            return &it->second;
        }
        const auto deb = fetched_->debs.find(package);
        if (deb == fetched_->debs.end()) {
            return nullptr;
        }
        std::string error;
        auto units = shipped_units(deb->second, error);
        if (!error.empty()) {
            mismatches_->push_back(error);
        }
        return &(units_of_[package] = std::move(units));
    }

    // Some package of the set ships the unit; packages already read are tried first, since most
    // disabled units sit beside a declared one.
    bool shipped_by_any(const std::string& unit, const std::set<std::string>& packages) {
        for (const bool read_before : {true, false}) {
            for (const auto& package : packages) {
                if (units_of_.contains(package) != read_before) {
                    continue;
                }
                if (const auto* shipped = units_in(package);
                    shipped != nullptr && unit_shipped(unit, *shipped)) {
                    return true;
                }
            }
        }
        return false;
    }

private:
    const FetchResult* fetched_;
    std::vector<std::string>* mismatches_;
    std::map<std::string, std::set<std::string>> units_of_;  // package -> shipped unit files
};

// The systemd units the stormnode package ships: the build installed into a scratch root (what CPack
// packs). Throws Error when the install fails.
std::set<std::string> own_units(const fs::path& build_dir) {
    const stormnode::TempDir root("stormnode-own-units");
    stormnode::run_checked(
        {.argv = {"cmake", "--install", build_dir.string(), "--prefix", "/usr"},
         .env = {{"DESTDIR", root.path().string()}}});
    std::set<std::string> units;
    for (const auto* dir : {"usr/lib/systemd/system", "lib/systemd/system"}) {
        std::error_code ec;
        for (const auto& entry : fs::directory_iterator(root.path() / dir, ec)) {
            if (entry.is_regular_file()) {
                units.insert(entry.path().filename().string());
            }
        }
    }
    return units;
}

// Checks one catalog file, adds its mismatches and prints its summary line.
void check_role(
    const std::string& name,
    const std::string& file,
    const RoleFacts& facts,
    const std::map<std::string, std::string>& versions,
    const FetchResult& fetched,
    DebIndex& index,
    const std::set<std::string>& stormnode_units,
    std::vector<std::string>& mismatches) {
    std::size_t packages_ok = 0;
    std::size_t units_found = 0;
    std::size_t units_own = 0;
    std::size_t units_own_found = 0;
    std::size_t disabled_found = 0;
    auto fail = [&](const std::string& what) {
        mismatches.push_back(file + ": " + what);
    };

    for (const auto& package : facts.packages) {
        if (package == kOwnPackage) {
            fail("package 'stormnode' is not a Debian package: leave it out of packages");
        } else if (!versions.contains(package)) {
            fail("package " + package + ": not in bookworm (no candidate)");
        } else if (!fetched.debs.contains(package)) {
            fail("package " + package + " " + versions.at(package) + ": could not be downloaded");
        } else {
            ++packages_ok;
        }
    }
    for (const auto* unit : facts.unit_defs) {
        if (unit->package == kOwnPackage) {
            ++units_own;
            if (stormnode_units.contains(unit->name)) {
                ++units_own_found;
            } else {
                fail(
                    "unit " + unit->name + ": not shipped by the stormnode package (it ships: " +
                    (stormnode_units.empty() ? std::string("(none)")
                                             : stormnode::join(stormnode_units, ", ")) +
                    ")");
            }
            continue;
        }
        if (!facts.available_packages.contains(unit->package)) {
            fail(
                "unit " + unit->name + ": its package " + unit->package +
                " is not in the packages of the role, its mixins or common");
        }
        const auto* shipped = index.units_in(unit->package);
        if (shipped == nullptr) {
            fail("unit " + unit->name + ": package " + unit->package + " is not available to look in");
        } else if (!unit_shipped(unit->name, *shipped)) {
            fail(
                "unit " + unit->name + ": not shipped by " + unit->package + " (it ships: " +
                (shipped->empty() ? std::string("(none)") : stormnode::join(*shipped, ", ")) + ")");
        } else {
            ++units_found;
        }
    }
    for (const auto& unit : facts.keep_disabled) {
        if (index.shipped_by_any(unit, facts.available_packages)) {
            ++disabled_found;
        } else {
            fail("keep_disabled " + unit + ": shipped by none of the role's packages");
        }
    }
    std::cout << name << ": packages " << packages_ok << "/" << facts.packages.size()
              << " in bookworm, units " << units_found << "/" << facts.unit_defs.size() - units_own
              << " found in their .debs";
    if (units_own > 0) {
        std::cout << ", stormnode's own " << units_own_found << "/" << units_own << " found in its package";
    }
    if (!facts.keep_disabled.empty()) {
        std::cout << ", keep_disabled " << disabled_found << "/" << facts.keep_disabled.size() << " found";
    }
    std::cout << "\n";
}

int report(const std::vector<std::string>& mismatches) {
    for (const auto& m : mismatches) {
        std::cout << "MISMATCH " << m << "\n";
    }
    std::cout << (mismatches.empty() ? "catalog matches Debian"
                                     : std::to_string(mismatches.size()) + " mismatches")
              << "\n";
    return mismatches.empty() ? 0 : kExitMismatch;
}

int check(const fs::path& catalog_dir, const fs::path& cache, const fs::path& build_dir) {
    stormnode::Diagnostics diags(catalog_dir.string());
    const auto catalog = stormnode::roles::load_catalog({catalog_dir}, diags);
    std::vector<std::string> mismatches;
    // An invalid catalog fails the run, but what loaded is still checked against Debian.
    for (const auto& d : diags.items()) {
        mismatches.push_back("catalog: " + d.to_string());
    }
    if (catalog.roles.empty()) {
        std::cout << "no catalog files loaded from " << catalog_dir << "\n";
        return report(mismatches);
    }

    std::map<std::string, RoleFacts> facts;
    std::set<std::string> all_packages;
    for (const auto& [name, role] : catalog.roles) {
        auto& role_facts = facts[name] = facts_of(catalog, role);
        all_packages.insert(role_facts.packages.begin(), role_facts.packages.end());
        for (const auto* unit : role_facts.unit_defs) {
            all_packages.insert(unit->package);
        }
    }
    all_packages.erase(std::string(kOwnPackage));

    const auto versions = candidates(all_packages);
    if (versions.empty()) {
        std::cout
            << "no package of the catalog has a candidate: the apt lists are missing (apt-get update)\n";
        return kExitMismatch;
    }

    fs::create_directories(cache);
    const auto started = std::chrono::steady_clock::now();
    const auto fetched = fetch(cache, versions);
    const auto took =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
    if (fetched.unreachable) {
        std::cout << "the Debian mirror cannot be reached: " << fetched.error << "\n";
        return kExitSkip;
    }
    std::uintmax_t cache_bytes = 0;
    for (const auto& [package, deb] : fetched.debs) {
        cache_bytes += fs::file_size(deb);
    }
    std::cout << "debs: " << fetched.debs.size() << " in " << cache.string() << " (" << cache_bytes / kMiB
              << " MiB), fetched now: " << fetched.fetched << " (" << fetched.fetched_bytes / kMiB
              << " MiB in " << static_cast<double>(took.count()) / 1000.0 << " s)\n";
    if (!fetched.error.empty()) {
        std::cout << "apt-get download: " << fetched.error << "\n";
    }

    const auto stormnode_units = own_units(build_dir);
    std::cout << "stormnode package: " << stormnode_units.size() << " units (" << build_dir.string() << ")\n";
    DebIndex index(fetched, mismatches);
    for (const auto& [name, role_facts] : facts) {
        check_role(
            name,
            catalog.roles.at(name).file,
            role_facts,
            versions,
            fetched,
            index,
            stormnode_units,
            mismatches);
    }
    return report(mismatches);
}

}  // namespace

int main(int argc, char** argv) {
    try {
        const fs::path catalog_dir = argc > 1 ? fs::path(argv[1]) : stormnode::roles::default_catalog_dir();
        const char* cache_env = std::getenv("STORMNODE_DEB_CACHE");  // NOLINT(concurrency-mt-unsafe)
        const fs::path cache = cache_env != nullptr && *cache_env != '\0'
                                   ? fs::path(cache_env)
                                   : fs::path("/var/cache/stormnode/debs");
        const char* build_env = std::getenv("STORMNODE_BINARY_DIR");  // NOLINT(concurrency-mt-unsafe)
        if (build_env == nullptr || *build_env == '\0') {
            std::cout
                << "catalog_vs_debian: STORMNODE_BINARY_DIR must name the build tree whose install is the "
                   "stormnode package (ctest sets it)\n";
            return kExitMismatch;
        }
        return check(catalog_dir, cache, build_env);
    } catch (const std::exception& e) {
        std::cout << "catalog_vs_debian: " << stormnode::describe(e) << "\n";
        return kExitMismatch;
    }
}
