// systemd-networkd configuration for the node's network settings.
#pragma once

#include <stormnode/catalog/node_file.hpp>

#include <string>

namespace stormnode::firstboot {

struct NetworkdFile {
    std::string name;  // "10-stormnode-eno1.network", under /etc/systemd/network
    std::string text;
};

// One .network file: matched by Name= or MACAddress= (or every Ethernet link when the NIC is not
// named), DHCP=yes or Address=/Gateway=/DNS=. No network settings at all: DHCP on every Ethernet link.
NetworkdFile render_networkd(const std::optional<roles::Network>& network);

}  // namespace stormnode::firstboot
