// sd-event and sd-bus handles owned by unique_ptr (shared by the daemon, its client and the tests).
#pragma once

#include <stormnode/common/c_handle.hpp>

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

namespace stormnode::roles {

using EventLoop = CHandle<sd_event, sd_event_unref>;
using EventSource = CHandle<sd_event_source, sd_event_source_disable_unref>;
using BusConnection = CHandle<sd_bus, sd_bus_flush_close_unref>;
using BusSlot = CHandle<sd_bus_slot, sd_bus_slot_unref>;
using BusMessage = CHandle<sd_bus_message, sd_bus_message_unref>;

}  // namespace stormnode::roles
