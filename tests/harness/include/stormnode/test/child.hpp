// The harness's background children are common's ChildProcess (pidfd-watched, terminate with a deadline).
#pragma once

#include <stormnode/common/child_process.hpp>

#include <chrono>
#include <filesystem>
#include <string>

namespace stormnode::test {

using Child = stormnode::ChildProcess;
using ChildOptions = stormnode::ChildCommand;
using stormnode::describe_wait_status;

// Blocks until `file` exists (inotify on its directory, which must exist), throwing Error(io) when
// `owner` (named `owner_name`), the process that makes it, ends first and Error(timeout) at `deadline`.
void wait_for_file(
    const std::filesystem::path& file,
    ChildProcess& owner,
    const std::string& owner_name,
    std::chrono::steady_clock::time_point deadline);

}  // namespace stormnode::test
