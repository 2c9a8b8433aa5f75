#include "stormnode/firstboot/networkd.hpp"

#include <algorithm>

namespace stormnode::firstboot {

NetworkdFile render_networkd(const std::optional<roles::Network>& network) {
    const roles::Network net = network.value_or(roles::Network{});
    NetworkdFile file;
    std::string match;
    if (!net.interface.empty()) {
        file.name = "10-stormnode-" + net.interface + ".network";
        match = "Name=" + net.interface + "\n";
    } else if (!net.mac.empty()) {
        std::string bare = net.mac;
        std::erase(bare, ':');
        file.name = "10-stormnode-" + bare + ".network";
        match = "MACAddress=" + net.mac + "\n";
    } else {
        // Physical Ethernet only: not lo, bridges, bonds or the veths the roles create.
        file.name = "10-stormnode-ethernet.network";
        match = "Type=ether\nKind=!*\n";
    }
    file.text =
        "# Written by storm-firstboot from /etc/stormnode/node.yaml.\n[Match]\n" + match + "\n[Network]\n";
    if (net.mode == roles::AddressMode::dhcp) {
        file.text += "DHCP=yes\n";
        return file;
    }
    file.text += "Address=" + net.address + "\n";
    if (!net.gateway.empty()) {
        file.text += "Gateway=" + net.gateway + "\n";
    }
    for (const auto& server : net.dns) {
        file.text += "DNS=" + server + "\n";
    }
    return file;
}

}  // namespace stormnode::firstboot
