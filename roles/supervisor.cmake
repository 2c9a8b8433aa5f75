# The role supervisor: library (engine, systemd seam over sd-bus, probes, D-Bus API) and storm-roled.
# Included from roles/CMakeLists.txt.

# The client side of org.stormclouds.Node1 (names, error table, NodeClient): all stormctl needs.
add_library(stormnode_node_client STATIC
    src/supervisor/node_api.cpp
    src/supervisor/node_client.cpp)
add_library(stormnode::node_client ALIAS stormnode_node_client)
target_include_directories(stormnode_node_client PUBLIC include)
target_link_libraries(stormnode_node_client
    PUBLIC stormnode::common
    PUBLIC PkgConfig::SYSTEMD
    PRIVATE stormnode::warnings)

add_library(stormnode_supervisor STATIC
    src/supervisor/supervisor.cpp
    src/supervisor/job_result.cpp
    src/supervisor/node_config.cpp
    src/supervisor/describe_check.cpp
    src/supervisor/quorum_guard.cpp
    src/supervisor/galera_start.cpp
    src/supervisor/pacemaker_start.cpp
    src/supervisor/postgres_rejoin.cpp
    src/supervisor/qnetd_nssdb.cpp
    src/supervisor/monitor_start.cpp
    src/supervisor/secret_file.cpp
    src/supervisor/transaction.cpp
    src/supervisor/sd_event_loop.cpp
    src/supervisor/sd_event_prober.cpp)
add_library(stormnode::supervisor ALIAS stormnode_supervisor)
target_include_directories(stormnode_supervisor PUBLIC include)
# stormnode::roles for node_file (node.yaml's one parser) behind load_node_config.
target_link_libraries(stormnode_supervisor
    PUBLIC stormnode::common stormnode::roles
    PUBLIC PkgConfig::SYSTEMD
    PRIVATE stormnode::warnings)

# The daemon's library (needs the catalog loader) and the thin binary.
add_library(stormnode_roled STATIC
    src/supervisor/node_service.cpp
    src/supervisor/daemon.cpp)
add_library(stormnode::roled ALIAS stormnode_roled)
target_link_libraries(stormnode_roled
    PUBLIC stormnode::supervisor stormnode::roles stormnode::node_client
    PRIVATE stormnode::warnings)

add_executable(storm-roled daemon/main.cpp)
target_link_libraries(storm-roled PRIVATE stormnode::roled stormnode::warnings)

install(TARGETS storm-roled DESTINATION ${CMAKE_INSTALL_BINDIR})
# The monitor role's oneshot on the member holding the Zabbix database (storm-monitor-db.service).
add_executable(storm-monitor-db bin/storm-monitor-db.cpp)
target_link_libraries(storm-monitor-db PRIVATE stormnode::supervisor stormnode::warnings)
install(TARGETS storm-monitor-db DESTINATION ${CMAKE_INSTALL_LIBEXECDIR}/stormnode)
install(FILES daemon/storm-monitor-db.service DESTINATION lib/systemd/system)
install(FILES daemon/storm-roled.service DESTINATION lib/systemd/system)
install(FILES daemon/org.stormclouds.Node1.conf DESTINATION ${CMAKE_INSTALL_DATADIR}/dbus-1/system.d)
install(FILES daemon/org.stormclouds.Node1.xml DESTINATION ${CMAKE_INSTALL_DATADIR}/dbus-1/interfaces)
