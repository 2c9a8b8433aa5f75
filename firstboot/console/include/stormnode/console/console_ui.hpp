// storm-console's newt front end: draws ConsoleFlow's views and feeds the operator's input back. Runs on
// the UI thread, the only one that calls newt; the worker's events arrive through its eventfd, which the
// form watches (newtFormWatchFd), so the status redraws on storm-roled's signals without polling.
#pragma once

#include "stormnode/console/console_flow.hpp"
#include "stormnode/console/console_worker.hpp"

namespace stormnode::firstboot {

// The terminal newt draws on, opened before the worker thread starts: newt (slang) calls exit() on a
// terminal it does not know, which must not happen under a running thread. Throws when stdin is not a
// terminal or TERM is unset (storm-console.service gives it tty1 and TERM=linux).
class ConsoleTerminal {
public:
    ConsoleTerminal();
    ConsoleTerminal(const ConsoleTerminal&) = delete;
    ConsoleTerminal& operator=(const ConsoleTerminal&) = delete;
    ConsoleTerminal(ConsoleTerminal&&) = delete;
    ConsoleTerminal& operator=(ConsoleTerminal&&) = delete;
    ~ConsoleTerminal();
};

// Draws on an open ConsoleTerminal. Runs until the process is stopped (the console never exits on its own:
// systemd restarts it anyway). Throws when the worker stopped (no system bus): the caller logs why and exits
// non-zero.
void run_console_ui(ConsoleFlow& flow, ConsoleWorker& worker);

}  // namespace stormnode::firstboot
