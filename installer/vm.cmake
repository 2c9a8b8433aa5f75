# stormnode_vm — `stormctl vm run|list|destroy|rack` through libvirt (installer/src/vm.cpp, cli/vm_commands.cpp).
add_library(stormnode_vm STATIC src/vm.cpp)
add_library(stormnode::vm ALIAS stormnode_vm)
target_include_directories(stormnode_vm PUBLIC include)
target_link_libraries(stormnode_vm
    PUBLIC stormnode::common PkgConfig::LIBVIRT PRIVATE stormnode::roles stormnode::warnings)

add_library(stormnode_vm_cli STATIC cli/vm_commands.cpp)
add_library(stormnode::vm_cli ALIAS stormnode_vm_cli)
# vm rack reads a pxe inventory.
target_link_libraries(stormnode_vm_cli
    PUBLIC stormnode::vm CLI11::CLI11 PRIVATE stormnode::pxe stormnode::roles stormnode::warnings)
target_link_libraries(stormctl PRIVATE stormnode::vm_cli)
