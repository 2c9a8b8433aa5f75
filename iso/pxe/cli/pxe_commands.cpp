// `stormctl pxe validate|answers|build|serve|report`: argument parsing and output only; the work is in
// stormnode::pxe (iso/pxe/src/pxe_*.cpp).
#include <stormnode/catalog/catalog.hpp>
#include <stormnode/common/error.hpp>
#include <stormnode/common/kernel_cmdline.hpp>
#include <stormnode/common/log.hpp>
#include <stormnode/common/temp_dir.hpp>
#include <stormnode/node_client/node_client.hpp>
#include <stormnode/pxe/cli.hpp>
#include <stormnode/pxe/pxe_build.hpp>
#include <stormnode/pxe/pxe_inventory.hpp>
#include <stormnode/pxe/pxe_report.hpp>
#include <stormnode/pxe/pxe_serve.hpp>

#include <CLI/CLI.hpp>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>

namespace stormnode::iso {
namespace {

namespace fs = std::filesystem;

struct PxeArgs {
    std::string catalog;
    std::string inventory;
    std::string output;
    std::string repo;
    std::string ref = "stormnode/bookworm/x86_64/node";
    int http_port = 80;
    bool boot_only = false;
    std::string interface;
    bool proxy_dhcp = false;
    std::string artifacts;
    std::string run_dir = "/run/stormnode/pxe";
    int probe_ms = 5000;  // dnsmasq pings an address ~3 s before it offers it
    std::string state;
    std::string detail;
    std::string url;
    std::string mac;
    bool only_on_failure = false;
    bool when_healthy = false;
};

roles::Catalog catalog_of(const PxeArgs& args) {
    return roles::load_valid_catalog(
        args.catalog.empty() ? roles::default_catalog_dir() : fs::path(args.catalog));
}

// The inventory, or the diagnostics on stderr and nullopt.
std::optional<Inventory> inventory_of(const PxeArgs& args, const roles::Catalog& catalog) {
    Diagnostics diags;
    auto inventory = load_inventory(args.inventory, catalog, diags);
    if (!diags.ok()) {
        for (const auto& d : diags.items()) {
            std::cerr << (d.line > 0 ? d.to_string() : d.file + ": " + d.message) << "\n";
        }
        std::cerr << diags.items().size() << (diags.items().size() == 1 ? " problem" : " problems")
                  << " found in " << args.inventory << "\n";
        return std::nullopt;
    }
    return inventory;
}

int validate(const PxeArgs& args) {
    const auto catalog = catalog_of(args);
    const auto inventory = inventory_of(args, catalog);
    if (!inventory) {
        return 2;
    }
    std::map<std::string, int> roles;
    for (const auto& node : inventory->nodes) {
        for (const auto& role : node.answers.node.roles) {
            ++roles[role.name];
        }
    }
    std::cout << "valid: " << inventory->nodes.size() << " nodes";
    for (const auto& [role, count] : roles) {
        std::cout << ", " << count << " " << role;
    }
    std::cout << "; unknown MACs: "
              << (inventory->discovered == DiscoveredPolicy::live ? "boot live (discovered)" : "ignored")
              << "\n";
    return 0;
}

int answers(const PxeArgs& args) {
    const auto catalog = catalog_of(args);
    const auto inventory = inventory_of(args, catalog);
    if (!inventory) {
        return 2;
    }
    for (const auto& node : inventory->nodes) {
        if (!args.mac.empty() && node.mac != roles::normalize_mac(args.mac)) {
            continue;
        }
        if (args.output.empty()) {
            std::cout << render_answers(node);
            continue;
        }
        fs::create_directories(args.output);
        write_file_atomic(fs::path(args.output) / (node.mac + ".yaml"), render_answers(node), 0600);
    }
    return 0;
}

class LogProgress final : public ProgressSink {
public:
    void phase(std::string_view name, std::uint64_t, std::string_view) override {
        log::info("pxe build: " + std::string(name) + " ...");
    }
    void advance(std::uint64_t) override {}
    void message(std::string_view text) override { log::info("pxe build: " + std::string(text)); }
};

int build(const PxeArgs& args) {
    PxeBuildOptions o;
    o.live.repo = args.repo;
    o.live.ref = args.ref;
    o.live.output_dir = args.output;
    o.http_port = args.http_port;
    o.skip_live = args.boot_only;
    if (!o.skip_live && args.repo.empty()) {
        throw Error(Errc::invalid_input, "--repo is required (or --boot-only)");
    }
    LogProgress progress;
    const auto r = build_pxe(o, progress);
    if (!o.skip_live) {
        std::cout << "commit " << r.live.commit << "\nversion " << r.live.version << "\nkernel "
                  << r.live.kernel_version << "\n";
    }
    std::cout << "bios " << (fs::path(args.output) / r.bios_boot_file).string() << "\nuefi "
              << (fs::path(args.output) / r.uefi_boot_file).string() << "\nipxe "
              << (fs::path(args.output) / r.ipxe_script).string() << "\n";
    return 0;
}

// The node table on the terminal: redrawn in place on a terminal, printed on change otherwise.
class TerminalListener final : public ServeListener {
public:
    explicit TerminalListener(const fs::path& log_file)
        : log_(log_file, std::ios::app),
          tty_(::isatty(1) == 1) {}
    void ready(const std::string& summary) override {
        summary_ = summary;
        log::info("pxe serve: ready: " + summary);
    }
    void nodes_changed(const std::vector<NodeStatus>& nodes) override {
        if (tty_) {
            std::cout << "\033[H\033[2J"
                      << "stormctl pxe serve: " << summary_ << " (Ctrl-C stops)\n\n";
        }
        std::cout << render_node_table(nodes) << std::flush;
    }
    void dnsmasq_line(std::string_view line) override { log_ << line << "\n" << std::flush; }

private:
    std::ofstream log_;
    bool tty_;
    std::string summary_;
};

int serve_command(const PxeArgs& args) {
    const auto catalog = catalog_of(args);
    auto inventory = inventory_of(args, catalog);
    if (!inventory) {
        return 2;
    }
    ServeOptions o;
    o.inventory = std::move(*inventory);
    o.interface = args.interface;
    o.proxy_dhcp = args.proxy_dhcp;
    o.artifacts = args.artifacts;
    if (!args.repo.empty()) {
        o.repo = args.repo;
    }
    o.run_dir = args.run_dir;
    o.http_port = args.http_port;
    o.dhcp_probe_timeout = std::chrono::milliseconds(args.probe_ms);
    fs::create_directories(o.run_dir);
    TerminalListener listener(o.run_dir / "dnsmasq.log");
    serve(o, listener);
    log::info("pxe serve: stopped");
    return 0;
}

int report(const PxeArgs& args) {
    if (args.only_on_failure) {
        // systemd sets SERVICE_RESULT for ExecStopPost=
        const char* result =
            std::getenv("SERVICE_RESULT");  // NOLINT(concurrency-mt-unsafe): single-threaded here
        if (result == nullptr || std::string_view(result) == "success") {
            return 0;
        }
    }
    std::string url = args.url;
    if (url.empty()) {
        const auto cmdline = read_proc_cmdline();
        const auto found = report_url_from_cmdline(cmdline);
        if (!found) {
            log::info("pxe report: no stormnode.report= on the kernel command line: nothing to do");
            return 0;  // not a PXE boot: the units call this unconditionally
        }
        url = *found;
    }
    std::string detail = args.detail;
    if (args.when_healthy) {
        // The installed node's first boot: storm-roled says when its roles are up.
        auto client = roles::NodeClient::system();
        const auto status = client.wait_for_state("healthy", std::chrono::milliseconds(0));
        std::string roles;
        for (const auto& role : status.roles) {
            roles += (roles.empty() ? "" : ",") + role;
        }
        if (detail.empty()) {
            detail = "roles " + (roles.empty() ? std::string("(none)") : roles) + " healthy";
        }
    }
    const std::string mac = args.mac.empty() ? primary_mac() : args.mac;
    send_report(url, mac, args.state, detail);
    return 0;
}

}  // namespace

void add_pxe_commands(CLI::App& app, int& exit_code) {
    auto args = std::make_shared<PxeArgs>();
    auto* pxe = app.add_subcommand("pxe", "Network installs of a rack: inventory, boot artifacts, server");
    pxe->require_subcommand(1);
    const auto catalog_help = "Catalog directory (default: $STORMNODE_CATALOG_DIR, else " +
                              roles::default_catalog_dir().string() + ")";

    auto* v =
        pxe->add_subcommand("validate", "Check an inventory (exit 2 with file:line:col for every problem)");
    v->add_option("inventory", args->inventory, "Inventory YAML")->required();
    v->add_option("--catalog", args->catalog, catalog_help);
    v->callback([args, &exit_code] { exit_code = validate(*args); });

    auto* a =
        pxe->add_subcommand("answers", "Print (or write to -o DIR as <mac>.yaml) the per-MAC answer files");
    a->add_option("inventory", args->inventory, "Inventory YAML")->required();
    a->add_option("--catalog", args->catalog, catalog_help);
    a->add_option("--mac", args->mac, "Only this node");
    a->add_option("-o,--output", args->output, "Directory to write them to");
    a->callback([args, &exit_code] { exit_code = answers(*args); });

    auto* b = pxe->add_subcommand("build", "Kernel, initrd, squashfs, iPXE script and GRUB netboot images");
    b->add_option("--repo", args->repo, "OSTree repo with the image");
    b->add_option("--ref", args->ref, "Ref of the image")->capture_default_str();
    b->add_option("-o,--output", args->output, "Artifacts directory (TFTP and HTTP root)")->required();
    b->add_option("--http-port", args->http_port, "Port pxe serve will listen on")->capture_default_str();
    b->add_flag(
        "--boot-only", args->boot_only, "Only the boot loaders and configs (the live artifacts exist)");
    b->callback([args, &exit_code] { exit_code = build(*args); });

    auto* s =
        pxe->add_subcommand("serve", "DHCP/TFTP (dnsmasq) and HTTP for the rack, with a live node table");
    s->add_option("--inventory", args->inventory, "Inventory YAML")->required();
    s->add_option("--interface", args->interface, "Provisioning interface (default: the inventory's)");
    s->add_flag(
        "--proxy-dhcp", args->proxy_dhcp, "Another DHCP server gives addresses: add only boot information");
    s->add_option("--artifacts", args->artifacts, "Output of pxe build")->required();
    s->add_option("--repo", args->repo, "OSTree repo to serve at /repo/");
    s->add_option("--run-dir", args->run_dir, "dnsmasq config, leases and log")->capture_default_str();
    s->add_option("--http-port", args->http_port, "HTTP port")->capture_default_str();
    s->add_option("--dhcp-probe-ms", args->probe_ms, "How long to listen for another DHCP server")
        ->capture_default_str();
    s->add_option("--catalog", args->catalog, catalog_help);
    s->callback([args, &exit_code] { exit_code = serve_command(*args); });

    auto* r =
        pxe->add_subcommand("report", "On a node: tell pxe serve how far it is (stormnode.report= URL)");
    r->add_option("state", args->state, "booting|installing|installed|healthy|failed")
        ->required()
        ->check(CLI::IsMember({"booting", "installing", "installed", "healthy", "failed"}));
    r->add_option("--detail", args->detail, "A few words for the table");
    r->add_option("--url", args->url, "Report URL (default: stormnode.report= from /proc/cmdline)");
    r->add_option("--mac", args->mac, "This node's MAC (default: the default route's link)");
    r->add_flag(
        "--only-on-failure",
        args->only_on_failure,
        "In ExecStopPost=: only when $SERVICE_RESULT is not success");
    r->add_flag(
        "--when-healthy",
        args->when_healthy,
        "First wait until storm-roled says the node's roles are healthy (D-Bus)");
    r->callback([args, &exit_code] { exit_code = report(*args); });
}

}  // namespace stormnode::iso
