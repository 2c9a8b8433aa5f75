// `stormctl iso build`: argument parsing and output only; the work is in stormnode::iso.
#include <stormnode/catalog/catalog.hpp>
#include <stormnode/common/log.hpp>
#include <stormnode/installer/answers.hpp>
#include <stormnode/iso/cli.hpp>
#include <stormnode/iso/iso_build.hpp>

#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>

namespace stormnode::iso {
namespace {

// Progress as log lines: one per phase with its duration.
class LogProgress final : public ProgressSink {
public:
    LogProgress() = default;
    LogProgress(const LogProgress&) = delete;
    LogProgress& operator=(const LogProgress&) = delete;
    LogProgress(LogProgress&&) = delete;
    LogProgress& operator=(LogProgress&&) = delete;
    ~LogProgress() override { finish(); }
    void phase(std::string_view name, std::uint64_t total, std::string_view unit) override {
        finish();
        name_ = name;
        started_ = std::chrono::steady_clock::now();
        std::string text = "iso: " + name_ + " ...";
        if (total > 0) {
            text += " (" + std::to_string(total) + " " + std::string(unit) + ")";
        }
        log::info(text);
    }
    void advance(std::uint64_t) override {}
    void message(std::string_view text) override { log::info("iso: " + std::string(text)); }
    void finish() {
        if (name_.empty()) {
            return;
        }
        const auto secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
        char line[160];
        std::snprintf(line, sizeof line, "iso: %s done in %.1f s", name_.c_str(), secs);
        log::info(line);
        name_.clear();
    }

private:
    std::string name_;
    std::chrono::steady_clock::time_point started_;
};

struct BuildArgs {
    std::string repo;
    std::string ref = "stormnode/bookworm/x86_64/node";
    std::string output = "stormnode.iso";
    std::string answers;
    std::string label = "STORMNODE";
    std::string catalog;
    bool serial = false;
};

int build(const BuildArgs& args) {
    // The answer file is checked before anything is made: a bad one never ends up on a medium.
    if (!args.answers.empty()) {
        const auto catalog = roles::load_valid_catalog(
            args.catalog.empty() ? roles::default_catalog_dir() : std::filesystem::path(args.catalog));
        Diagnostics diags(args.answers);
        if (!installer::load_answers(args.answers, &catalog, diags)) {
            for (const auto& item : diags.items()) {
                std::cerr << (item.file.empty() ? item.message : item.to_string()) << "\n";
            }
            std::cerr << "stormctl iso build: invalid answer file; no ISO written\n";
            return 2;
        }
    }
    const auto started = std::chrono::steady_clock::now();
    IsoResult result;
    {
        LogProgress progress;
        result = build_iso(
            {.repo = args.repo,
             .ref = args.ref,
             .output = args.output,
             .answers = args.answers,
             .label = args.label,
             .serial_default = args.serial},
            progress);
    }
    const auto secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    std::cout << "iso " << args.output << "\n"
              << "commit " << result.live.commit << "\n"
              << "version " << result.live.version << "\n"
              << "kernel " << result.live.kernel_version << "\n"
              << "size " << result.size << "\n";
    char line[64];
    std::snprintf(line, sizeof line, "seconds %.1f\n", secs);
    std::cout << line;
    return 0;
}

}  // namespace

void add_iso_commands(CLI::App& app, int& exit_code) {
    auto* iso = app.add_subcommand("iso", "Bootable media");
    iso->require_subcommand(1);
    auto args = std::make_shared<BuildArgs>();
    auto* b = iso->add_subcommand("build", "Make the hybrid BIOS+UEFI installer and live ISO of a commit");
    b->add_option("--repo", args->repo, "OSTree repo holding the image (archive)")->required();
    b->add_option("--ref", args->ref, "Image ref")->capture_default_str();
    b->add_option("-o,--output", args->output, "The ISO to write")->capture_default_str();
    b->add_option("--answers", args->answers, "Answer file for the unattended install (embedded)");
    b->add_option("--label", args->label, "Volume label (root=live:CDLABEL=)")->capture_default_str();
    b->add_option("--catalog", args->catalog, "Role catalog to check the answer file against");
    b->add_flag("--serial", args->serial, "Boot the serial-console entry by default (headless racks)");
    b->callback([args, &exit_code] { exit_code = build(*args); });
}

}  // namespace stormnode::iso
