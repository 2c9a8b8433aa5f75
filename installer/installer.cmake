# stormnode::installer — the answer file, the install plan and its execution (GPT, mkfs, libostree
# sysroot, GPG-verified pull, deploy, node.yaml, GRUB for BIOS and UEFI), and os status/upgrade/rollback.
add_library(stormnode_installer STATIC
    src/answers.cpp
    src/bootloader.cpp
    src/disk.cpp
    src/install.cpp
    src/kernel_cmdline.cpp
    src/os.cpp
    src/sysroot_ops.cpp)
add_library(stormnode::installer ALIAS stormnode_installer)
target_include_directories(stormnode_installer PUBLIC include)
# node.yaml's fields (roles, hostname, network) are firstboot's model: the installer writes that file.
target_link_libraries(stormnode_installer PUBLIC stormnode::common stormnode::roles stormnode::firstboot
    stormnode::image PRIVATE stormnode::warnings)

add_library(stormnode_installer_cli STATIC cli/install_commands.cpp)
add_library(stormnode::installer_cli ALIAS stormnode_installer_cli)
target_link_libraries(stormnode_installer_cli PUBLIC stormnode::installer CLI11::CLI11 PRIVATE stormnode::warnings)

# The live system's installer service (the ISO boots with stormnode.install=...).
install(FILES storm-install.service storm-install-console.service DESTINATION lib/systemd/system)
