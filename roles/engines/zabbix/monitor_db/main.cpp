// storm-monitor-db: the monitor role's oneshot on the member holding the Zabbix database (feature
// local_db), between mariadb.service and zabbix-server.service. Everything but arguments is in the library.
#include <stormnode/common/error.hpp>
#include <stormnode/common/log.hpp>
#include <stormnode/zabbix/start.hpp>

#include <cstdio>
#include <string_view>

int main(int argc, char** argv) {
    namespace roles = stormnode::roles;
    stormnode::log::set_identifier("storm-monitor-db");
    std::filesystem::path config = "/etc/stormnode/node.yaml";
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];  // NOLINT(cppcoreguidelines-pro-bounds-pointer-arithmetic)
        if (arg.rfind("--config=", 0) == 0) {
            config = arg.substr(9);
        } else {
            std::fputs("Usage: storm-monitor-db [--config=FILE]  (cluster.yaml beside it)\n", stderr);
            return 2;
        }
    }
    try {
        const auto node = roles::load_node_config(config, config.parent_path() / "cluster.yaml");
        stormnode::log::info(roles::prepare_zabbix_database(node));
        return 0;
    } catch (const stormnode::Error& e) {
        stormnode::log::error(stormnode::describe(e));
        return e.code() == stormnode::Errc::invalid_input ? 2 : 1;
    } catch (const std::exception& e) {
        stormnode::log::error(stormnode::describe(e));
        return 1;
    }
}
