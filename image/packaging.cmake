# The stormnode .deb (CPack): everything install() rules put under the prefix — stormctl, the role
# catalog in /usr/share/stormnode/roles, and whatever the other areas install (storm-roled, units, D-Bus
# policy). mmdebstrap installs it into the node image.
#   cmake -S . -B build/pkg -DCMAKE_INSTALL_PREFIX=/usr && cmake --build build/pkg && (cd build/pkg && cpack)
# The prefix must be /usr: compiled-in paths (the catalog) follow it, and /usr/local is a link into
# /var on an OSTree node, so anything shipped there would be lost.
if(NOT CMAKE_INSTALL_PREFIX STREQUAL "/usr")
    message(STATUS "stormnode .deb: CMAKE_INSTALL_PREFIX is ${CMAKE_INSTALL_PREFIX}; configure with "
                   "-DCMAKE_INSTALL_PREFIX=/usr to build a package for the node image")
endif()

set(CPACK_GENERATOR "DEB")
set(CPACK_PACKAGE_NAME "stormnode")
set(CPACK_PACKAGE_VERSION "${PROJECT_VERSION}")
set(CPACK_PACKAGE_VENDOR "stormclouds")
set(CPACK_PACKAGE_CONTACT "stormnode maintainers <stormnode@stormclouds.invalid>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "stormnode node tools: stormctl, role catalog, role supervisor")
set(CPACK_PACKAGING_INSTALL_PREFIX "${CMAKE_INSTALL_PREFIX}")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION "admin")
set(CPACK_DEBIAN_PACKAGE_PRIORITY "optional")
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)          # library dependencies from dpkg-shlibdeps
set(CPACK_DEBIAN_PACKAGE_DEPENDS "systemd, dbus")
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS OFF)
set(CPACK_STRIP_FILES ON)
set(CPACK_SOURCE_GENERATOR "")
# cpack installs the build tree as it is: the build (or CI) builds first. Without this, cpack would
# rebuild every target of the tree, tests included.
set(CMAKE_SKIP_INSTALL_ALL_DEPENDENCY TRUE)
include(CPack)
