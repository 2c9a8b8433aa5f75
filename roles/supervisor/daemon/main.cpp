// storm-roled: the role supervisor daemon. Everything but argument parsing is in the library.
#include <stormnode/common/log.hpp>
#include <stormnode/supervisor/daemon.hpp>

#include <getopt.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <string>

namespace {

void usage(std::FILE* to) {
    std::fputs(
        "Usage: storm-roled [OPTIONS]\n"
        "  --config FILE       node configuration (default /etc/stormnode/node.yaml)\n"
        "  --cluster FILE      cluster configuration (default: cluster.yaml beside --config)\n"
        "  --catalog DIR       role catalog (default $STORMNODE_CATALOG_DIR or the installed one)\n"
        "  --templates DIR     config templates (default: templates/ in the catalog directory)\n"
        "  --state-dir DIR     state (default /var/lib/stormnode)\n"
        "  --config-root DIR   where rendered config files go (default /)\n"
        "  --bus BUS           system, user or a D-Bus address (default system)\n"
        "  --backoff-initial SEC first restart delay, doubled per failure; fractions allowed (default 1)\n"
        "  --backoff-max SEC   cap of the restart backoff (default 60)\n"
        "  --max-failures N    failures of a unit within the window before its role fails (default 5)\n"
        "  --tier-deadline SEC time for a tier's checks to pass (default 180)\n",
        to);
}

}  // namespace

int main(int argc, char** argv) {
    stormnode::roles::DaemonOptions options;
    enum Opt {
        config = 1,
        cluster,
        catalog,
        templates,
        state_dir,
        config_root,
        bus,
        backoff_initial,
        backoff_max,
        max_failures,
        tier_deadline,
        help
    };
    const std::array<option, 13> longopts{{
        {"config", required_argument, nullptr, config},
        {"cluster", required_argument, nullptr, cluster},
        {"catalog", required_argument, nullptr, catalog},
        {"templates", required_argument, nullptr, templates},
        {"state-dir", required_argument, nullptr, state_dir},
        {"config-root", required_argument, nullptr, config_root},
        {"bus", required_argument, nullptr, bus},
        {"backoff-initial", required_argument, nullptr, backoff_initial},
        {"backoff-max", required_argument, nullptr, backoff_max},
        {"max-failures", required_argument, nullptr, max_failures},
        {"tier-deadline", required_argument, nullptr, tier_deadline},
        {"help", no_argument, nullptr, help},
        {nullptr, 0, nullptr, 0},
    }};
    try {
        for (int c = 0; (c = getopt_long(argc, argv, "", longopts.data(), nullptr)) != -1;) {
            switch (c) {
                case config:
                    options.config = optarg;
                    break;
                case cluster:
                    options.cluster = optarg;
                    break;
                case catalog:
                    options.catalog_dir = optarg;
                    break;
                case templates:
                    options.templates_dir = optarg;
                    break;
                case state_dir:
                    options.state_dir = optarg;
                    break;
                case config_root:
                    options.config_root = optarg;
                    break;
                case bus:
                    options.bus = optarg;
                    break;
                case backoff_initial: {
                    // Fractions allowed (tests use 0.25); at least 1 ms so the doubling has a base.
                    const double value = std::stod(optarg);
                    if (!(value >= 0.001 && value <= 3600)) {
                        std::fprintf(
                            stderr, "storm-roled: --backoff-initial must be within 0.001..3600 seconds\n");
                        return 2;
                    }
                    options.supervisor.backoff_initial =
                        std::chrono::milliseconds(static_cast<std::chrono::milliseconds::rep>(value * 1000));
                    break;
                }
                case backoff_max:
                    options.supervisor.backoff_max = std::chrono::seconds(std::stoi(optarg));
                    break;
                case max_failures:
                    options.supervisor.max_failures = std::stoi(optarg);
                    break;
                case tier_deadline:
                    options.supervisor.tier_deadline = std::chrono::seconds(std::stoi(optarg));
                    break;
                case help:
                    usage(stdout);
                    return 0;
                default:
                    usage(stderr);
                    return 2;
            }
        }
    } catch (const std::exception&) {
        std::fprintf(stderr, "storm-roled: a numeric option has a value that is not a number\n");
        return 2;
    }
    if (optind != argc) {
        usage(stderr);
        return 2;
    }
    return stormnode::roles::run_daemon(options);
}
