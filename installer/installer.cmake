# stormnode::installer — the answer file now; InstallPlan, partitioning, sysroot deploy and the
# bootloader come with the rest of the installer.
add_library(stormnode_installer STATIC src/answers.cpp)
add_library(stormnode::installer ALIAS stormnode_installer)
target_include_directories(stormnode_installer PUBLIC include)
# node.yaml's fields (roles, hostname, network) are firstboot's model: the installer writes that file.
target_link_libraries(stormnode_installer PUBLIC stormnode::common stormnode::roles stormnode::firstboot
    PRIVATE stormnode::warnings)
