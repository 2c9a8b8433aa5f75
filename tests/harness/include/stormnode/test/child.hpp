// The harness's background children are common's ChildProcess (pidfd-watched, terminate with a deadline).
#pragma once

#include <stormnode/common/child_process.hpp>

namespace stormnode::test {

using Child = stormnode::ChildProcess;
using ChildOptions = stormnode::ChildCommand;
using stormnode::describe_wait_status;

}  // namespace stormnode::test
