#include "stormnode/firstboot/firstboot.hpp"

#include "fs_util.hpp"
#include "stormnode/firstboot/networkd.hpp"

#include <stormnode/common/error.hpp>
#include <stormnode/common/temp_dir.hpp>

#include <algorithm>

namespace stormnode::firstboot {
namespace {

namespace fs = std::filesystem;
using detail::under;
// node.yaml's model (stormnode/catalog/node_file.hpp).
using roles::kNodeFilePath;
using roles::NodeFile;
using roles::normalize_mac;
using roles::read_node_file;
using roles::render_node_file;
using roles::valid_hostname;
using roles::valid_mac;

std::string trimmed(std::string text) {
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ' || text.back() == '\t')) {
        text.pop_back();
    }
    return text;
}

// The hostname: the chosen settings', else the image's own unless it is a placeholder, else one
// made from the machine-id.
std::string choose_hostname(const fs::path& root, const NodeFile& node) {
    if (!node.hostname.empty()) {
        return node.hostname;
    }
    const auto current = detail::read_if_exists(under(root, "/etc/hostname"));
    if (current) {
        const auto name = trimmed(*current);
        if (!name.empty() && name != "localhost" && valid_hostname(name)) {
            return name;
        }
    }
    const auto id = detail::read_if_exists(under(root, "/etc/machine-id")).value_or("");
    return "stormnode-" + (id.size() >= 8 ? id.substr(0, 8) : detail::to_hex(detail::random_bytes(4)));
}

// Writes a configuration file when its content differs: "kept" when it is already so.
Outcome write_config(const fs::path& path, const std::string& content) {
    if (detail::read_if_exists(path) == content) {
        return Outcome::kept;
    }
    detail::make_dirs(path.parent_path());
    write_file_atomic(path, content, 0644);
    return Outcome::created;
}

class Steps {
public:
    explicit Steps(Report& report) : report_(report) {}

    // Runs one step; a failure is recorded and the other steps still run.
    template <typename Fn>
    void run(const std::string& what, const std::string& path, Fn&& fn) {
        try {
            auto [outcome, note] = fn();
            report_.actions.push_back({what, path, outcome, std::move(note)});
        } catch (const std::exception& e) {
            report_.failures.push_back(what + " (" + path + "): " + describe(e));
        }
    }

private:
    Report& report_;
};

std::string render_stamp(const Report& report) {
    YAML::Emitter out;
    out << YAML::BeginMap;
    out << YAML::Key << "source" << YAML::Value << std::string(to_string(report.assignment.source));
    out << YAML::Key << "origin" << YAML::Value << report.assignment.origin;
    out << YAML::Key << "roles" << YAML::Value << YAML::Flow
        << roles::to_strings(report.assignment.node.roles);
    out << YAML::Key << "hostname" << YAML::Value << report.hostname;
    out << YAML::Key << "done" << YAML::Value << YAML::BeginSeq;
    for (const auto& a : report.actions) {
        out << YAML::Flow << YAML::BeginMap;
        out << YAML::Key << "what" << YAML::Value << a.what;
        out << YAML::Key << "path" << YAML::Value << a.path;
        out << YAML::Key << "result" << YAML::Value << std::string(to_string(a.outcome));
        if (!a.note.empty()) {
            out << YAML::Key << "note" << YAML::Value << a.note;
        }
        out << YAML::EndMap;
    }
    out << YAML::EndSeq << YAML::EndMap;
    return "# storm-firstboot finished; remove this file to run it again at the next boot.\n" +
           std::string(out.c_str()) + "\n";
}

std::string render_state(const Report& report) {
    YAML::Emitter out;
    out << YAML::BeginMap;
    const char* state = !report.ok() ? "failed" : report.discovered() ? "discovered" : "assigned";
    out << YAML::Key << "state" << YAML::Value << state;
    out << YAML::Key << "source" << YAML::Value << std::string(to_string(report.assignment.source));
    if (!report.assignment.origin.empty()) {
        out << YAML::Key << "origin" << YAML::Value << report.assignment.origin;
    }
    out << YAML::Key << "roles" << YAML::Value << YAML::Flow
        << roles::to_strings(report.assignment.node.roles);
    if (!report.ok()) {
        out << YAML::Key << "failures" << YAML::Value << report.failures;
    } else if (report.discovered()) {
        out << YAML::Key << "message" << YAML::Value << std::string(kNoRoleMessage);
    }
    out << YAML::EndMap;
    return std::string(out.c_str()) + "\n";
}

}  // namespace

std::vector<std::string> read_macs(const fs::path& root) {
    std::vector<std::string> macs;
    std::error_code ec;
    const fs::path dir = under(root, "/sys/class/net");
    for (const auto& entry : fs::directory_iterator(dir, ec)) {
        if (entry.path().filename() == "lo") {
            continue;
        }
        const auto text = detail::read_if_exists(entry.path() / "address");
        if (!text) {
            continue;
        }
        const auto mac = normalize_mac(trimmed(*text));
        if (valid_mac(mac) && std::find(macs.begin(), macs.end(), mac) == macs.end()) {
            macs.push_back(mac);
        }
    }
    std::sort(macs.begin(), macs.end());
    return macs;
}

namespace {

// Step 1: the roles, into report.assignment. A bad source is a failure (retried at the next boot), but
// the node still gets its identity so that it can be reached: it keeps node.yaml's settings without
// roles, and false says that node.yaml must not be rewritten from them.
bool choose_roles(
    const Options& options,
    const fs::path& node_path,
    const roles::Catalog& catalog,
    Fetcher& fetcher,
    Report& report) {
    SourceInputs inputs;
    inputs.macs = read_macs(options.root);
    try {
        inputs.cmdline = options.cmdline
                             ? *options.cmdline
                             : detail::read_if_exists(under(options.root, "/proc/cmdline")).value_or("");
        if (detail::present(node_path)) {
            Diagnostics diags(node_path.string());
            inputs.node_file = read_node_file(node_path, &catalog, diags);
            throw_if_errors(diags, "node settings");
        }
        report.assignment = choose_role_source(inputs, catalog, fetcher);
    } catch (const std::exception& e) {
        report.failures.push_back("choosing the roles: " + describe(e));
        report.assignment = Assignment{};
        report.assignment.node = inputs.node_file.value_or(NodeFile{});
        report.assignment.node.roles.clear();
        return false;
    }
    return true;
}

// What to generate: the common layer always, the roles' entries when there are roles.
std::vector<roles::NodeState> states_to_generate(const roles::Catalog& catalog, const NodeFile& node) {
    std::vector<roles::NodeState> states;
    if (!node.roles.empty()) {
        states = roles::resolve_combination(catalog, node.roles).body.node_state;
    } else if (const roles::Role* common = catalog.find("common")) {
        states = common->body.node_state;
    }
    return states;
}

// The node's one networkd file of ours: a file left from other settings would match the same links.
Outcome write_network_file(const fs::path& root, const NetworkdFile& networkd) {
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(under(root, "/etc/systemd/network"), ec)) {
        const auto name = entry.path().filename().string();
        if (name.rfind("10-stormnode-", 0) == 0 && name != networkd.name) {
            fs::remove(entry.path(), ec);
        }
    }
    return write_config(under(root, "/etc/systemd/network/" + networkd.name), networkd.text);
}

// Step 5, the record: the state always, the stamp only when a role was assigned and all went well.
void record_result(const fs::path& root, Report& report) {
    try {
        detail::make_dirs(under(root, std::string(kStatePath)).parent_path());
        write_file_atomic(under(root, std::string(kStatePath)), render_state(report), 0644);
        if (report.ok() && !report.discovered()) {
            write_file_atomic(under(root, std::string(kStampPath)), render_stamp(report), 0644);
        }
    } catch (const std::exception& e) {
        report.failures.push_back("recording the result in /var/lib/stormnode: " + describe(e));
    }
}

}  // namespace

Report run_firstboot(const Options& options, Fetcher& fetcher) {
    const fs::path& root = options.root;
    Report report;
    if (detail::present(under(root, std::string(kStampPath)))) {
        report.already_done = true;
        return report;
    }
    const roles::Catalog catalog = roles::load_valid_catalog(options.catalog_dir);
    Steps steps(report);

    // 1. The roles.
    const fs::path node_path = under(root, "/" + std::string(kNodeFilePath));
    const bool source_ok = choose_roles(options, node_path, catalog, fetcher, report);
    const NodeFile& node = report.assignment.node;

    const std::vector<roles::NodeState> states = states_to_generate(catalog, node);
    const Accounts accounts = Accounts::load(root);
    GeneratorContext ctx{root, {}, &accounts, options.set_owner};

    // 2. machine-id first: the hostname may be made from it.
    const auto machine = std::find_if(
        states.begin(), states.end(), [](const roles::NodeState& s) { return s.generator == "machine-id"; });
    if (machine != states.end()) {
        steps.run(machine->generator, machine->path, [&] {
            const auto r = generate(*machine, ctx);
            return std::pair{r.outcome, r.note};
        });
    }
    report.hostname = choose_hostname(root, node);
    ctx.hostname = report.hostname;
    steps.run("hostname", "/etc/hostname", [&] {
        return std::pair{write_config(under(root, "/etc/hostname"), report.hostname + "\n"), report.hostname};
    });
    const NetworkdFile networkd = render_networkd(node.network);
    steps.run("network", "/etc/systemd/network/" + networkd.name, [&] {
        return std::pair{write_network_file(root, networkd), std::string()};
    });

    // 3. node.yaml, so that storm-roled and the next boots see the same roles.
    if (source_ok && report.assignment.write_node_file) {
        steps.run("node.yaml", "/" + std::string(kNodeFilePath), [&] {
            NodeFile written = node;
            written.hostname = report.hostname;
            detail::make_dirs(node_path.parent_path());
            return std::pair{write_config(node_path, render_node_file(written)), std::string()};
        });
    }

    // 4. Everything else the catalog asks for.
    for (const auto& state : states) {
        if (state.generator == "machine-id") {
            continue;
        }
        steps.run(state.generator, state.path, [&] {
            const auto r = generate(state, ctx);
            return std::pair{r.outcome, r.note};
        });
    }

    // 5. The record.
    record_result(root, report);
    return report;
}

}  // namespace stormnode::firstboot
