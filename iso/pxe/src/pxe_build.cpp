#include "stormnode/pxe/pxe_build.hpp"

#include <stormnode/common/error.hpp>
#include <stormnode/common/subprocess.hpp>
#include <stormnode/common/temp_dir.hpp>

#include <yaml-cpp/yaml.h>

namespace stormnode::iso {
namespace {

namespace fs = std::filesystem;

std::string with_port(const std::string& host, int http_port) {
    return http_port == 80 ? host : host + ":" + std::to_string(http_port);
}

std::string entry_title(BootAction action, const BootParams& params) {
    switch (action) {
        case BootAction::install:
            return "stormnode: install (" + params.mac + ")";
        case BootAction::live:
            return "stormnode: live system, discovered node (" + params.mac + ")";
        case BootAction::local:
            break;
    }
    return "stormnode: boot from the next device";
}

}  // namespace

std::string kernel_args(BootAction action, const BootParams& params) {
    const std::string url = "http://" + params.server;
    // The initrd fetches the squashfs once into RAM (livenet); the installer deploys from the repo
    // inside it, so nothing is downloaded twice.
    std::string args = "root=live:" + url +
                       "/squashfs.img rd.live.overlay.overlayfs=1 ip=dhcp rd.neednet=1 console=tty0 "
                       "console=ttyS0,115200 stormnode.report=" +
                       url + "/report";
    if (action == BootAction::install) {
        args += " stormnode.install=unattended stormnode.answers=" + url + "/answers/" + params.mac + ".yaml";
    }
    if (!params.extra_kargs.empty()) {
        args += " " + params.extra_kargs;
    }
    return args;
}

std::string render_grub_entry(BootAction action, const BootParams& params) {
    std::string cfg = "# stormnode network boot for " + params.mac + "\n";
    if (action == BootAction::local) {
        return cfg + "exit\n";
    }
    cfg += "set default=0\nset timeout=1\n";
    cfg += "menuentry \"" + entry_title(action, params) + "\" {\n";
    cfg += "    linux (http," + params.server + ")/vmlinuz " + kernel_args(action, params) + "\n";
    cfg += "    initrd (http," + params.server + ")/initrd.img\n}\n";
    return cfg;
}

std::string render_ipxe_entry(BootAction action, const BootParams& params) {
    std::string script = "#!ipxe\n# stormnode network boot for " + params.mac + "\n";
    if (action == BootAction::local) {
        return script + "exit\n";
    }
    const std::string url = "http://" + params.server;
    // initrd= is what the kernel's EFI stub needs under ipxe.efi; BIOS kernels ignore it.
    script += "kernel " + url + "/vmlinuz initrd=initrd.img " + kernel_args(action, params) + "\n";
    script += "initrd " + url + "/initrd.img\nboot\n";
    return script;
}

std::string render_grub_cfg(int http_port) {
    const std::string server = with_port("${net_default_server}", http_port);
    const BootParams live{server, "${net_default_mac}", {}};
    std::string cfg =
        "# stormnode network boot, BIOS (core.0) and UEFI (core.efi): pxe serve decides per MAC\n"
        "insmod http\n"
        "insmod serial\n"
        "serial --unit=0 --speed=115200\n"
        "terminal_input console serial\n"
        "terminal_output console serial\n"
        "configfile (http," +
        server +
        ")/boot/grub/${net_default_mac}.cfg\n"
        "# only when the server did not answer: the live system\n";
    const std::string entry = render_grub_entry(BootAction::live, live);
    return cfg + entry.substr(entry.find('\n') + 1);  // without the entry's own header line
}

std::string render_ipxe_script(int http_port) {
    const std::string server = with_port("${next-server}", http_port);
    const BootParams live{server, "${mac}", {}};
    std::string script =
        "#!ipxe\n# stormnode network boot: pxe serve decides per MAC\n"
        "chain http://" +
        server + "/boot/ipxe/${mac}.ipxe || goto live\n:live\n";
    const std::string entry = render_ipxe_entry(BootAction::live, live);
    // Drop the entry's own header lines: this script already has one.
    return script + entry.substr(entry.find("kernel "));
}

void write_boot_loaders(const fs::path& dir, int http_port, ProgressSink& progress) {
    progress.phase("boot loaders", 2, "platforms");
    std::uint64_t done = 0;
    for (const char* platform : {"i386-pc", "x86_64-efi"}) {
        run_checked(
            {.argv =
                 {"grub-mknetdir",
                  "--net-directory=" + dir.string(),
                  "--subdir=grub",
                  std::string("--directory=/usr/lib/grub/") + platform},
             .timeout = std::chrono::minutes(2)});
        progress.advance(++done);
    }
    for (const char* file : {kBiosBootFile, kUefiBootFile}) {
        if (!fs::is_regular_file(dir / file)) {
            throw Error(Errc::io, std::string("grub-mknetdir did not make ") + (dir / file).string());
        }
    }
    write_file_atomic(dir / "grub" / "grub.cfg", render_grub_cfg(http_port));
    write_file_atomic(dir / kIpxeScript, render_ipxe_script(http_port));
}

PxeArtifacts build_pxe(const PxeBuildOptions& options, ProgressSink& progress) {
    const fs::path& dir = options.live.output_dir;
    fs::create_directories(dir);
    PxeArtifacts result;
    if (!options.skip_live) {
        result.live = make_live_artifacts(options.live, progress);
        YAML::Emitter meta;
        meta << YAML::BeginMap << YAML::Key << "commit" << YAML::Value << result.live.commit << YAML::Key
             << "version" << YAML::Value << result.live.version << YAML::Key << "kernel_version"
             << YAML::Value << result.live.kernel_version << YAML::Key << "ref" << YAML::Value
             << options.live.ref << YAML::EndMap;
        write_file_atomic(dir / "artifacts.yaml", std::string(meta.c_str()) + "\n");
    }
    write_boot_loaders(dir, options.http_port, progress);
    result.bios_boot_file = kBiosBootFile;
    result.uefi_boot_file = kUefiBootFile;
    result.ipxe_script = kIpxeScript;
    return result;
}

}  // namespace stormnode::iso
