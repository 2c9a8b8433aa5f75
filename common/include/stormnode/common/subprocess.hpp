// The one way stormnode runs other programs: an argv vector, never a shell string.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace stormnode {

struct Command {
    std::vector<std::string> argv;           // argv[0] is looked up in PATH
    std::map<std::string, std::string> env;  // added to (or overriding) the inherited environment
    std::optional<std::string> stdin_data;   // nothing: stdin is /dev/null
    std::optional<std::chrono::milliseconds> timeout;
    std::optional<std::filesystem::path> cwd;
    bool capture_stdout = true;  // false: inherit the caller's stdout
    bool capture_stderr = true;  // false: inherit the caller's stderr
    // Called with each line (without its '\n') as it arrives, and with an unterminated last line at the
    // end; a stream with a callback is read through a pipe even when it is not captured.
    std::function<void(std::string_view line)> on_stdout_line;
    std::function<void(std::string_view line)> on_stderr_line;
};

struct ProcessResult {
    int exit_status = -1;  // exit code, or -1 when killed by a signal
    int term_signal = 0;   // the signal that ended it, 0 if it exited
    bool timed_out = false;
    std::string out;
    std::string err;

    [[nodiscard]] bool ok() const noexcept { return exit_status == 0 && !timed_out; }
};

// Runs the command to completion (or until its timeout, when its process group is killed).
// Throws Error(Errc::io) only when it cannot be started at all.
ProcessResult run(const Command& command);

// Runs it and throws Error naming the program, its exit status and its stderr unless it exits 0.
ProcessResult run_checked(const Command& command);

// "mmdebstrap --variant=minbase ..." for messages; quoting is for people, not for a shell.
std::string format_argv(const std::vector<std::string>& argv);

}  // namespace stormnode
