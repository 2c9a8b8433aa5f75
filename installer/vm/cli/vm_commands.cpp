// `stormctl vm run|list|destroy|rack`: argument parsing and output only; the work is in vm.hpp.
#include <stormnode/catalog/catalog.hpp>
#include <stormnode/common/error.hpp>
#include <stormnode/common/log.hpp>
#include <stormnode/pxe/pxe_inventory.hpp>
#include <stormnode/vm/cli.hpp>
#include <stormnode/vm/vm.hpp>

#include <CLI/CLI.hpp>

#include <algorithm>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

namespace stormnode::installer {
namespace {

constexpr const char* kDefaultUri = "qemu:///system";
constexpr const char* kStateRoot = "/var/lib/stormnode/vm";

struct RunArgs {
    std::string iso;
    std::string name = "stormnode";
    std::uint64_t disk_gib = 20;
    std::uint32_t memory_mib = 2048;
    std::string answers;
    bool uefi = false;
    bool console = false;
};

int run_vm(const RunArgs& args, const std::string& uri, const std::string& state_root) {
    VmSpec spec;
    spec.name = args.name;
    spec.iso = std::filesystem::absolute(args.iso);
    spec.state_dir = std::filesystem::path(state_root) / args.name;
    spec.disk_bytes = args.disk_gib << 30;
    spec.memory_mib = args.memory_mib;
    spec.uefi = args.uefi;
    (void)domain_xml(spec);  // a bad name or size fails before any file is made
    Hypervisor hypervisor(uri);
    if (hypervisor.find(spec.name)) {
        throw Error(
            Errc::invalid_input,
            "a VM named '" + spec.name + "' exists already (stormctl vm destroy " + spec.name + ")");
    }
    prepare_vm_files(
        spec, args.answers.empty() ? std::nullopt : std::optional<std::filesystem::path>(args.answers));
    try {
        hypervisor.run(spec);
    } catch (...) {
        std::error_code ignored;
        std::filesystem::remove_all(spec.state_dir, ignored);
        throw;
    }
    log::info(
        "vm: started " + spec.name + (spec.uefi ? " (UEFI)" : " (BIOS)") + " from " + spec.iso.string());
    const auto vm = hypervisor.find(spec.name);
    std::cout << "name " << spec.name << "\n"
              << "disk " << spec.disk().string() << "\n"
              << "serial-log " << spec.serial_log().string() << "\n";
    if (vm && !vm->console_pty.empty()) {
        std::cout << "console " << vm->console_pty << "\n";
    }
    if (args.console) {
        // Attaching needs a terminal that forwards keys; virsh does that well, so say how.
        std::cout << "attach with: virsh -c " << uri << " console " << spec.name << "\n";
    }
    return 0;
}

struct RackArgs {
    std::string inventory;
    std::string name = "rack";
    std::string catalog;
    std::uint64_t disk_gib = 20;
    std::uint32_t memory_mib = 2048;
    std::string firmware = "bios";
    std::vector<std::string> unknown;  // one firmware per extra VM on a MAC the inventory does not list
    bool no_start = false;
    bool start = false;
    bool destroy = false;
};

int rack_vms(const RackArgs& args, const std::string& uri, const std::string& state_root) {
    const auto catalog = roles::load_valid_catalog(
        args.catalog.empty() ? roles::default_catalog_dir() : std::filesystem::path(args.catalog));
    Diagnostics diags;
    const auto inventory = iso::load_inventory(args.inventory, catalog, diags);
    if (!inventory) {
        for (const auto& d : diags.items()) {
            std::cerr << (d.line > 0 ? d.to_string() : d.file + ": " + d.message) << "\n";
        }
        return 2;
    }
    std::vector<RackNodeEntry> nodes;
    std::vector<std::string> known_macs;
    for (const auto& node : inventory->nodes) {
        nodes.push_back({node.mac, node.answers.node.hostname, args.firmware == "uefi"});
        known_macs.push_back(node.mac);
    }
    const auto unknown_macs = unknown_node_macs(args.unknown.size(), known_macs);
    for (std::size_t i = 0; i < args.unknown.size(); ++i) {
        nodes.push_back({unknown_macs[i], "unknown-" + std::to_string(i + 1), args.unknown[i] == "uefi"});
    }
    auto rack = rack_spec(
        args.name,
        inventory->network.interface,
        inventory->network.subnet,
        inventory->network.server,
        nodes,
        state_root);
    for (auto& vm : rack.nodes) {
        vm.disk_bytes = args.disk_gib << 30;
        vm.memory_mib = args.memory_mib;
        (void)domain_xml(vm);
    }
    Hypervisor hypervisor(uri);
    if (args.start || args.destroy) {
        // The unknown-MAC VMs it made, whatever --unknown says now.
        const std::string prefix = args.name + "-unknown-";
        for (const auto& vm : hypervisor.list()) {
            const bool listed = std::any_of(rack.nodes.begin(), rack.nodes.end(), [&](const VmSpec& node) {
                return node.name == vm.name;
            });
            if (!listed && vm.name.starts_with(prefix) && !vm.state_dir.empty()) {
                rack.nodes.push_back(VmSpec{.name = vm.name, .state_dir = vm.state_dir});
            }
        }
    }
    if (args.destroy) {
        const int removed = destroy_rack(hypervisor, rack);
        log::info("vm rack: removed " + std::to_string(removed) + " VMs and network " + rack.network.name);
        return 0;
    }
    if (args.start) {
        const int started = start_rack(hypervisor, rack);
        log::info("vm rack: started " + std::to_string(started) + " VMs on network " + rack.network.name);
        return 0;
    }
    create_rack(hypervisor, rack, !args.no_start);
    std::cout << "network " << rack.network.name << " bridge " << rack.network.bridge << " address "
              << rack.network.address << "/" << rack.network.prefix << "\n";
    for (const auto& vm : rack.nodes) {
        std::cout << "vm " << vm.name << " mac " << vm.mac << " firmware " << (vm.uefi ? "uefi" : "bios")
                  << " serial-log " << vm.serial_log().string() << "\n";
    }
    std::cout << "serve it with: stormctl pxe serve --inventory " << args.inventory << " --interface "
              << rack.network.bridge << " --artifacts DIR\n";
    if (args.no_start) {
        std::cout << "then start the VMs with: stormctl vm rack --inventory " << args.inventory << " --name "
                  << args.name << " --start\n";
    }
    return 0;
}

}  // namespace

void add_vm_commands(CLI::App& app, int& exit_code) {
    auto* vm = app.add_subcommand("vm", "Try a node in a local libvirt VM (qemu, TCG when there is no KVM)");
    vm->require_subcommand(1);
    auto uri = std::make_shared<std::string>(kDefaultUri);
    auto state_root = std::make_shared<std::string>(kStateRoot);
    vm->add_option("--connect", *uri, "libvirt URI")->capture_default_str();
    vm->add_option("--state-dir", *state_root, "Where each VM's disk, UEFI variables and serial log go")
        ->capture_default_str();

    auto args = std::make_shared<RunArgs>();
    auto* r = vm->add_subcommand("run", "Boot the ISO in a new VM with an empty virtio disk");
    r->add_option("iso", args->iso, "The stormnode ISO")->required();
    r->add_option("--name", args->name, "VM name")->capture_default_str();
    r->add_option("--disk-size", args->disk_gib, "Disk size in GiB")
        ->capture_default_str()
        ->check(CLI::Range(1, 16384));
    r->add_option("--memory", args->memory_mib, "Memory in MiB")
        ->capture_default_str()
        ->check(CLI::Range(256, 1048576));
    r->add_option(
        "--answers",
        args->answers,
        "Answer file, attached as answers.yaml on a second cdrom labelled STORMANS");
    r->add_flag("--uefi", args->uefi, "Boot with UEFI (OVMF, Secure Boot off) instead of BIOS");
    r->add_flag("--console", args->console, "Print the serial console's pty and how to attach to it");
    r->callback([args, uri, state_root, &exit_code] { exit_code = run_vm(*args, *uri, *state_root); });

    auto* l = vm->add_subcommand("list", "List the VMs: name, state, console pty, files");
    l->callback([uri, &exit_code] {
        Hypervisor hypervisor(*uri);
        for (const auto& v : hypervisor.list()) {
            std::cout << v.name << "\t" << (v.running ? "running" : "shut-off") << "\t"
                      << (v.console_pty.empty() ? "-" : v.console_pty) << "\t"
                      << (v.state_dir.empty() ? "-" : v.state_dir.string()) << "\n";
        }
        exit_code = 0;
    });

    auto rack = std::make_shared<RackArgs>();
    auto* k = vm->add_subcommand(
        "rack",
        "A virtual rack for pxe serve: an isolated libvirt network (the inventory's interface and server "
        "address) and one network-booting VM per inventory node");
    k->add_option("--inventory", rack->inventory, "Inventory YAML (as for stormctl pxe serve)")->required();
    k->add_option("--name", rack->name, "Rack name: network stormnode-NAME, VMs NAME-<hostname>")
        ->capture_default_str();
    k->add_option("--catalog", rack->catalog, "Role catalog directory");
    k->add_option("--disk-size", rack->disk_gib, "Disk size of each VM in GiB")
        ->capture_default_str()
        ->check(CLI::Range(1, 16384));
    k->add_option("--memory", rack->memory_mib, "Memory of each VM in MiB (the live root is loaded into it)")
        ->capture_default_str()
        ->check(CLI::Range(256, 1048576));
    k->add_option("--firmware", rack->firmware, "Firmware of the inventory's VMs")
        ->capture_default_str()
        ->check(CLI::IsMember({"bios", "uefi"}));
    k->add_option(
         "--unknown",
         rack->unknown,
         "Add a VM on a MAC the inventory does not list, with this firmware (bios or uefi; repeatable): "
         "it gets the inventory's discovered boot")
        ->check(CLI::IsMember({"bios", "uefi"}));
    auto* no_start = k->add_flag(
        "--no-start",
        rack->no_start,
        "Define the VMs without starting them (start pxe serve on the bridge, then --start)");
    auto* start = k->add_flag("--start", rack->start, "Start the rack's VMs made with --no-start");
    auto* destroy =
        k->add_flag("--destroy", rack->destroy, "Remove the rack's VMs, their files and the network");
    no_start->excludes(start)->excludes(destroy);
    start->excludes(destroy);
    k->callback([rack, uri, state_root, &exit_code] { exit_code = rack_vms(*rack, *uri, *state_root); });

    auto name = std::make_shared<std::string>();
    auto* d = vm->add_subcommand("destroy", "Power off and remove a VM with its disk and UEFI variables");
    d->add_option("name", *name, "VM name")->required();
    d->callback([uri, name, &exit_code] {
        Hypervisor hypervisor(*uri);
        hypervisor.destroy(*name);
        log::info("vm: destroyed " + *name);
        exit_code = 0;
    });
}

}  // namespace stormnode::installer
