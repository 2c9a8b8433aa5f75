// The node's side of pxe serve's table: `stormctl pxe report STATE` POSTs mac=&state=&detail= to the
// URL of the kernel argument stormnode.report= (set by the PXE boot configs). Units in the image call it
// (iso/pxe/units/): booting when the live system is up, installing/installed around storm-install.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace stormnode::iso {

// The value of stormnode.report= on the command line, if any.
std::optional<std::string> report_url_from_cmdline(std::string_view cmdline);

// The MAC of the interface that carries the default route (else the first Ethernet link that is up),
// read from /proc/net/route and /sys/class/net.
std::string primary_mac();

// POSTs the report; throws Error(io) naming the URL when the server cannot be reached or says no.
void send_report(
    const std::string& url, const std::string& mac, const std::string& state, const std::string& detail);

}  // namespace stormnode::iso
