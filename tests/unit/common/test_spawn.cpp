#include <stormnode/common/error.hpp>
#include <stormnode/common/spawn.hpp>
#include <stormnode/common/temp_dir.hpp>

#include <catch2/catch.hpp>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

using stormnode::ProcessGroup;
using stormnode::spawn;
using stormnode::SpawnOptions;
using stormnode::Stdio;
using stormnode::UniqueFd;

namespace {

// Reads until end of file (every writer gone) or 10 s pass; works on blocking and non-blocking fds.
std::string read_all(int fd) {
    std::string text;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < deadline) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 1000) <= 0) {
            continue;
        }
        std::array<char, 4096> buffer{};
        const ssize_t n = ::read(fd, buffer.data(), buffer.size());
        if (n == 0) {
            break;
        }
        if (n > 0) {
            text.append(buffer.data(), static_cast<std::size_t>(n));
        }
    }
    return text;
}

// Waits for the child the way an event loop does: the pidfd says it ended, then a waitpid that cannot
// block.
int wait_on_pidfd(const stormnode::SpawnedProcess& child) {
    pollfd p{child.pidfd.get(), POLLIN, 0};
    REQUIRE(::poll(&p, 1, 10000) == 1);
    int status = 0;
    REQUIRE(::waitpid(child.pid, &status, WNOHANG) == child.pid);
    return status;
}

void kill_and_reap(pid_t pid) {
    ::kill(-pid, SIGKILL);
    ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
}

// The value of "Name:\t<hex>" in /proc/<pid>/status text, as a mask.
unsigned long long status_mask(const std::string& text, const std::string& name) {
    const auto at = text.find(name + ":");
    REQUIRE(at != std::string::npos);
    return std::stoull(text.substr(at + name.size() + 1), nullptr, 16);
}

// Blocks a signal and ignores SIGPIPE in this process for the test, as a daemon would.
class DaemonSignals {
public:
    DaemonSignals() {
        sigset_t block;
        sigemptyset(&block);
        sigaddset(&block, SIGUSR1);
        ::pthread_sigmask(SIG_BLOCK, &block, &old_mask_);
        struct sigaction ignore {};
        ignore.sa_handler = SIG_IGN;
        ::sigaction(SIGPIPE, &ignore, &old_pipe_);
    }
    DaemonSignals(const DaemonSignals&) = delete;
    DaemonSignals& operator=(const DaemonSignals&) = delete;
    DaemonSignals(DaemonSignals&&) = delete;
    DaemonSignals& operator=(DaemonSignals&&) = delete;
    ~DaemonSignals() {
        ::pthread_sigmask(SIG_SETMASK, &old_mask_, nullptr);
        ::sigaction(SIGPIPE, &old_pipe_, nullptr);
    }

private:
    sigset_t old_mask_{};
    struct sigaction old_pipe_ {};
};

// Sets an environment variable for the test's duration.
class ScopedEnv {
public:
    ScopedEnv(const char* name, const std::string& value) : name_(name) {
        if (const char* old = std::getenv(name)) {  // NOLINT(concurrency-mt-unsafe)
            old_ = old;
        }
        ::setenv(name, value.c_str(), 1);  // NOLINT(concurrency-mt-unsafe)
    }
    ScopedEnv(const ScopedEnv&) = delete;
    ScopedEnv& operator=(const ScopedEnv&) = delete;
    ScopedEnv(ScopedEnv&&) = delete;
    ScopedEnv& operator=(ScopedEnv&&) = delete;
    ~ScopedEnv() {
        if (old_) {
            ::setenv(name_, old_->c_str(), 1);  // NOLINT(concurrency-mt-unsafe)
        } else {
            ::unsetenv(name_);  // NOLINT(concurrency-mt-unsafe)
        }
    }

private:
    const char* name_;
    std::optional<std::string> old_;
};

void write_file(const std::filesystem::path& path, const std::string& text, mode_t mode) {
    std::ofstream(path) << text;
    REQUIRE(::chmod(path.c_str(), mode) == 0);
}

std::string spawn_error(const SpawnOptions& options) {
    try {
        auto child = spawn(options);
        kill_and_reap(child.pid);
    } catch (const stormnode::Error& e) {
        CHECK(e.code() == stormnode::Errc::io);
        return e.what();
    }
    FAIL("expected an error");
    return {};
}

}  // namespace

TEST_CASE(
    "the supervisor's exec check: /dev/null in and out, stderr to its own pipe, own group, clean signals",
    "[common][spawn]") {
    const DaemonSignals daemon;
    std::array<int, 2> fds{};
    REQUIRE(::pipe2(fds.data(), O_CLOEXEC | O_NONBLOCK) == 0);  // non-blocking both ends, as the prober's
    const UniqueFd err_read(fds[0]);
    UniqueFd err_write(fds[1]);
    const auto check = [&](std::vector<std::string> argv) {
        return spawn(SpawnOptions{
            .argv = std::move(argv),
            .in = Stdio::null(),
            .out = Stdio::null(),
            .err = Stdio::fd(err_write.get()),
            .group = ProcessGroup::own_group});
    };
    const auto shell = check(
        {"sh",
         "-c",
         "echo \"stdin=$(readlink /proc/$$/fd/0)\" >&2; echo \"stdout=$(readlink /proc/$$/fd/1)\" >&2; "
         "echo \"pgrp=$(cut -d' ' -f5 /proc/$$/stat)\" >&2; echo lost; exit 3"});
    REQUIRE(shell.pid > 0);
    REQUIRE(shell.pidfd);
    CHECK_FALSE(shell.in);  // no pipes asked for, none made
    CHECK_FALSE(shell.out);
    CHECK_FALSE(shell.err);
    const int status = wait_on_pidfd(shell);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 3);
    // The masks as exec left them, read by the program itself: a shell's own would show what it blocks
    // while it forks.
    const auto masks = spawn(SpawnOptions{
        .argv = {"grep", "-E", "^Sig(Blk|Ign):", "/proc/self/status"},
        .out = Stdio::fd(err_write.get()),
        .group = ProcessGroup::own_group});
    CHECK(WEXITSTATUS(wait_on_pidfd(masks)) == 0);
    err_write.reset();
    const auto text = read_all(err_read.get());
    INFO(text);
    CHECK(text.find("stdin=/dev/null\n") != std::string::npos);
    CHECK(text.find("stdout=/dev/null\n") != std::string::npos);
    CHECK(text.find("pgrp=" + std::to_string(shell.pid) + "\n") != std::string::npos);
    CHECK(text.find("lost") == std::string::npos);
    CHECK(status_mask(text, "SigBlk") == 0);                              // SIGUSR1 no longer blocked
    CHECK((status_mask(text, "SigIgn") & (1ULL << (SIGPIPE - 1))) == 0);  // SIGPIPE back to default
}

TEST_CASE(
    "spawn returns while the program runs; the caller kills its group and reaps it", "[common][spawn]") {
    const auto child = spawn(SpawnOptions{.argv = {"sleep", "30"}});
    pollfd p{child.pidfd.get(), POLLIN, 0};
    CHECK(::poll(&p, 1, 0) == 0);  // still running
    CHECK(::getpgid(child.pid) == child.pid);
    CHECK(::kill(-child.pid, SIGKILL) == 0);
    const int status = wait_on_pidfd(child);
    CHECK(WIFSIGNALED(status));
    CHECK(WTERMSIG(status) == SIGKILL);
}

TEST_CASE("process group choices: own session, or the caller's group", "[common][spawn]") {
    {
        const auto child = spawn(SpawnOptions{.argv = {"sleep", "30"}, .group = ProcessGroup::own_session});
        CHECK(::getsid(child.pid) == child.pid);
        CHECK(::getpgid(child.pid) == child.pid);
        kill_and_reap(child.pid);
    }
    {
        const auto child = spawn(SpawnOptions{.argv = {"sleep", "30"}, .group = ProcessGroup::inherit});
        CHECK(::getpgid(child.pid) == ::getpgrp());
        ::kill(child.pid, SIGKILL);
        int status = 0;
        ::waitpid(child.pid, &status, 0);
    }
}

TEST_CASE("pipes for stdin, stdout and stderr; environment additions and cwd", "[common][spawn]") {
    stormnode::TempDir dir("spawn-test");
    auto child = spawn(SpawnOptions{
        .argv = {"sh", "-c", "cat; echo \"$STORMNODE_SPAWN_TEST $(pwd -P)\" >&2"},
        .env = {{"STORMNODE_SPAWN_TEST", "forty two"}},
        .cwd = dir.path(),
        .in = Stdio::pipe(),
        .out = Stdio::pipe(),
        .err = Stdio::pipe()});
    REQUIRE(child.in);
    REQUIRE(child.out);
    REQUIRE(child.err);
    CHECK(::write(child.in.get(), "hello\n", 6) == 6);
    child.in.reset();  // end of file for cat
    CHECK(read_all(child.out.get()) == "hello\n");
    CHECK(read_all(child.err.get()) == "forty two " + std::filesystem::canonical(dir.path()).string() + "\n");
    CHECK(WEXITSTATUS(wait_on_pidfd(child)) == 0);
}

TEST_CASE("the caller's own stdout and stderr can be swapped for the child", "[common][spawn]") {
    // In a helper process whose fds 1 and 2 are pipes: out = fd 2, err = fd 1 needs both moved out of the
    // way before either dup2.
    std::array<int, 2> out_pipe{};
    std::array<int, 2> err_pipe{};
    REQUIRE(::pipe2(out_pipe.data(), O_CLOEXEC) == 0);
    REQUIRE(::pipe2(err_pipe.data(), O_CLOEXEC) == 0);
    const pid_t helper = ::fork();
    REQUIRE(helper >= 0);
    if (helper == 0) {
        ::dup2(out_pipe[1], 1);
        ::dup2(err_pipe[1], 2);
        int code = 1;
        try {
            const auto child = spawn(SpawnOptions{
                .argv = {"sh", "-c", "echo to-stdout; echo to-stderr >&2"},
                .out = Stdio::fd(2),
                .err = Stdio::fd(1)});
            int status = 0;
            ::waitpid(child.pid, &status, 0);
            code = WIFEXITED(status) ? WEXITSTATUS(status) : 1;
        } catch (...) {
            code = 2;
        }
        ::_exit(code);
    }
    ::close(out_pipe[1]);
    ::close(err_pipe[1]);
    const UniqueFd out(out_pipe[0]);
    const UniqueFd err(err_pipe[0]);
    CHECK(read_all(out.get()) == "to-stderr\n");
    CHECK(read_all(err.get()) == "to-stdout\n");
    int status = 0;
    REQUIRE(::waitpid(helper, &status, 0) == helper);
    CHECK(WEXITSTATUS(status) == 0);
}

TEST_CASE("argv[0] is found like execvp finds it", "[common][spawn]") {
    stormnode::TempDir dir("spawn-path");
    const auto denied = dir.path() / "denied";
    const auto allowed = dir.path() / "allowed";
    std::filesystem::create_directories(denied);
    std::filesystem::create_directories(allowed);
    write_file(denied / "stormnode-spawn-prog", "#!/bin/sh\necho denied\n", 0644);

    SECTION("a file that may not be executed is passed over for a later one") {
        write_file(allowed / "stormnode-spawn-prog", "#!/bin/sh\necho allowed \"$1\"\n", 0755);
        const ScopedEnv path("PATH", denied.string() + ":" + allowed.string() + ":/usr/bin:/bin");
        const auto child = spawn(SpawnOptions{.argv = {"stormnode-spawn-prog", "x"}, .out = Stdio::pipe()});
        CHECK(read_all(child.out.get()) == "allowed x\n");
        CHECK(WEXITSTATUS(wait_on_pidfd(child)) == 0);
    }
    SECTION("when it is the only one, the error is EACCES, not ENOENT") {
        const ScopedEnv path("PATH", denied.string() + ":/usr/bin:/bin");
        const auto message = spawn_error(SpawnOptions{.argv = {"stormnode-spawn-prog"}});
        CHECK(message == "cannot run 'stormnode-spawn-prog': Permission denied");
    }
    SECTION("a script without #! runs under /bin/sh, by path or through PATH") {
        write_file(allowed / "stormnode-spawn-script", "echo script \"$0\" \"$1\"\n", 0755);
        const auto by_path = spawn(SpawnOptions{
            .argv = {(allowed / "stormnode-spawn-script").string(), "arg"}, .out = Stdio::pipe()});
        CHECK(
            read_all(by_path.out.get()) ==
            "script " + (allowed / "stormnode-spawn-script").string() + " arg\n");
        CHECK(WEXITSTATUS(wait_on_pidfd(by_path)) == 0);

        const ScopedEnv path("PATH", allowed.string() + ":/usr/bin:/bin");
        const auto found = spawn(SpawnOptions{.argv = {"stormnode-spawn-script"}, .out = Stdio::pipe()});
        CHECK(read_all(found.out.get()) == "script " + (allowed / "stormnode-spawn-script").string() + " \n");
        CHECK(WEXITSTATUS(wait_on_pidfd(found)) == 0);
    }
}

TEST_CASE("a program that cannot be started is an error naming it and the step", "[common][spawn]") {
    SECTION("not found") {
        try {
            (void)spawn(SpawnOptions{.argv = {"stormnode-no-such-program"}});
            FAIL("expected an error");
        } catch (const stormnode::Error& e) {
            CHECK(e.code() == stormnode::Errc::io);
            CHECK(
                std::string(e.what()) == "cannot run 'stormnode-no-such-program': No such file or directory");
            CHECK(e.cause() == std::errc::no_such_file_or_directory);
        }
    }
    SECTION("a working directory that does not exist") {
        const auto message = spawn_error(SpawnOptions{.argv = {"true"}, .cwd = "/nonexistent/dir"});
        CHECK(
            message ==
            "cannot run 'true': changing to directory '/nonexistent/dir': No such file or directory");
    }
    SECTION("a cgroup that cannot be joined") {
        stormnode::TempDir dir("spawn-cgroup");
        std::filesystem::create_directory_symlink("/nonexistent", dir.path() / "missing");
        CHECK(
            spawn_error(SpawnOptions{.argv = {"true"}, .cgroups = {dir.path() / "missing"}})
                .find("opening " + (dir.path() / "missing" / "cgroup.procs").string()) != std::string::npos);
        // cgroup.procs opens but refuses the write: the child reports which cgroup.
        std::filesystem::create_directory(dir.path() / "full");
        std::filesystem::create_symlink("/dev/full", dir.path() / "full" / "cgroup.procs");
        CHECK(
            spawn_error(SpawnOptions{.argv = {"true"}, .cgroups = {dir.path() / "full"}}) ==
            "cannot run 'true': joining cgroup '" + (dir.path() / "full").string() +
                "': No space left on device");
    }
    SECTION("an empty argv") {
        CHECK_THROWS_AS(spawn(SpawnOptions{}), stormnode::Error);
    }
}

TEST_CASE("the child writes its pid to each cgroup's cgroup.procs before exec", "[common][spawn]") {
    stormnode::TempDir dir("spawn-cgroup");
    const auto a = dir.path() / "a";
    const auto b = dir.path() / "b";
    std::filesystem::create_directories(a);
    std::filesystem::create_directories(b);
    write_file(a / "cgroup.procs", "", 0644);
    write_file(b / "cgroup.procs", "", 0644);
    const auto child = spawn(SpawnOptions{.argv = {"true"}, .cgroups = {a, b}});
    CHECK(WEXITSTATUS(wait_on_pidfd(child)) == 0);
    std::ostringstream a_text;
    a_text << std::ifstream(a / "cgroup.procs").rdbuf();
    std::ostringstream b_text;
    b_text << std::ifstream(b / "cgroup.procs").rdbuf();
    CHECK(a_text.str() == std::to_string(child.pid));
    CHECK(b_text.str() == std::to_string(child.pid));
}

TEST_CASE("threads may spawn at the same time", "[common][spawn]") {
    // Each spawn waits for its own child's exec; another thread's fork in between holds a copy of that
    // report pipe only until its own exec (close-on-exec), so nobody waits on somebody else's child.
    std::atomic<int> started{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&started] {
            for (int i = 0; i < 10; ++i) {
                const auto child = spawn(SpawnOptions{.argv = {"true"}});
                int status = 0;
                if (::waitpid(child.pid, &status, 0) == child.pid && WIFEXITED(status) &&
                    WEXITSTATUS(status) == 0) {
                    ++started;
                }
            }
        });
    }
    for (auto& thread : threads) {
        thread.join();
    }
    CHECK(started == 40);
}
