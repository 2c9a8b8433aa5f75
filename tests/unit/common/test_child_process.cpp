#include <stormnode/common/child_process.hpp>
#include <stormnode/common/error.hpp>
#include <stormnode/common/temp_dir.hpp>

#include <catch2/catch.hpp>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <fstream>
#include <sstream>

using namespace std::chrono_literals;
using stormnode::ChildCommand;
using stormnode::ChildProcess;

namespace {

std::string read_file(const std::filesystem::path& path) {
    std::ifstream in(path);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

// Reads the child's output pipe until it is closed (the child and its children are gone) or 10 s pass.
std::string read_pipe(int fd) {
    std::string text;
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (std::chrono::steady_clock::now() < deadline) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 1000) <= 0) {
            continue;
        }
        char buffer[4096];
        const ssize_t n = ::read(fd, buffer, sizeof buffer);
        if (n == 0) {
            break;
        }
        if (n > 0) {
            text.append(buffer, static_cast<std::size_t>(n));
        }
    }
    return text;
}

}  // namespace

TEST_CASE("a background child's output goes to a file and wait returns its status", "[common][child]") {
    stormnode::TempDir dir("child-test");
    const auto log = dir.path() / "out.log";
    ChildProcess child(ChildCommand{
        .argv = {"sh", "-c", "echo \"out $VALUE\"; echo err >&2; exit 5"},
        .env = {{"VALUE", "forty two"}},
        .output = log});
    CHECK(child.pid() > 0);
    CHECK(child.pidfd() >= 0);
    const auto status = child.wait(10s);
    REQUIRE(status);
    CHECK(WIFEXITED(*status));
    CHECK(WEXITSTATUS(*status) == 5);
    CHECK_FALSE(child.running());
    CHECK(stormnode::describe_wait_status(*status) == "exited with status 5");
    CHECK(read_file(log) == "out forty two\nerr\n");
}

TEST_CASE("a background child's output can be read from a pipe", "[common][child]") {
    ChildProcess child(ChildCommand{.argv = {"printf", "%s\\n", "a b", "$HOME"}, .pipe_output = true});
    REQUIRE(child.output_fd() >= 0);
    CHECK(read_pipe(child.output_fd()) == "a b\n$HOME\n");
    REQUIRE(child.wait(10s));
}

TEST_CASE("wait times out on a running child and the child keeps running", "[common][child]") {
    ChildProcess child(ChildCommand{.argv = {"sleep", "30"}});
    const auto started = std::chrono::steady_clock::now();
    CHECK_FALSE(child.wait(100ms));
    CHECK(std::chrono::steady_clock::now() - started >= 100ms);
    CHECK(child.running());
}

TEST_CASE("terminate ends a child that honours SIGTERM without waiting the grace period", "[common][child]") {
    ChildProcess child(ChildCommand{.argv = {"sleep", "30"}});
    const auto started = std::chrono::steady_clock::now();
    const int status = child.terminate(20s);
    CHECK(std::chrono::steady_clock::now() - started < 10s);
    CHECK(WIFSIGNALED(status));
    CHECK(WTERMSIG(status) == SIGTERM);
}

TEST_CASE("terminate kills a child that ignores SIGTERM once the grace period is over", "[common][child]") {
    // The shell says it is ready once the trap is set, so SIGTERM cannot arrive before it.
    ChildProcess child(ChildCommand{
        .argv = {"sh", "-c", "trap '' TERM; echo ready; while :; do read -t 1 x || :; done"},
        .pipe_output = true});
    std::string first;
    while (first.find('\n') == std::string::npos) {
        pollfd p{child.output_fd(), POLLIN, 0};
        REQUIRE(::poll(&p, 1, 10000) == 1);
        char buffer[64];
        const ssize_t n = ::read(child.output_fd(), buffer, sizeof buffer);
        REQUIRE(n > 0);
        first.append(buffer, static_cast<std::size_t>(n));
    }
    const auto started = std::chrono::steady_clock::now();
    const int status = child.terminate(300ms);
    CHECK(std::chrono::steady_clock::now() - started >= 300ms);
    CHECK(WIFSIGNALED(status));
    CHECK(WTERMSIG(status) == SIGKILL);
    CHECK(child.terminate(1s) == status);  // idempotent
}

TEST_CASE("the destructor kills the child's whole process group", "[common][child]") {
    int grandchild_output = -1;
    {
        // The grandchild holds the pipe: the pipe only closes when the group is gone.
        ChildProcess child(
            ChildCommand{.argv = {"sh", "-c", "sleep 30 & sleep 30; wait"}, .pipe_output = true});
        grandchild_output = ::dup(child.output_fd());
    }
    const auto started = std::chrono::steady_clock::now();
    pollfd p{grandchild_output, POLLIN, 0};
    CHECK(::poll(&p, 1, 10000) == 1);
    char byte = 0;
    CHECK(::read(grandchild_output, &byte, 1) == 0);  // end of file: every writer is gone
    CHECK(std::chrono::steady_clock::now() - started < 10s);
    ::close(grandchild_output);
}

TEST_CASE("a background program that does not exist is an error naming it", "[common][child]") {
    try {
        ChildProcess child(ChildCommand{.argv = {"stormnode-no-such-program"}});
        FAIL("expected an error");
    } catch (const stormnode::Error& e) {
        CHECK(std::string(e.what()).find("stormnode-no-such-program") != std::string::npos);
        CHECK(e.code() == stormnode::Errc::io);
    }
}

namespace {

// A process that starts `sleep 30` as a ChildProcess and then dies, without its destructors (as under
// SIGKILL). Returns a pidfd for the sleep, taken while its parent still lived.
stormnode::UniqueFd orphan_of_a_killed_parent(bool die_with_parent) {
    std::array<int, 2> pid_pipe{};
    std::array<int, 2> go_pipe{};
    REQUIRE(::pipe2(pid_pipe.data(), O_CLOEXEC) == 0);
    REQUIRE(::pipe2(go_pipe.data(), O_CLOEXEC) == 0);
    const pid_t parent = ::fork();
    REQUIRE(parent >= 0);
    if (parent == 0) {
        ::close(pid_pipe[0]);
        ::close(go_pipe[1]);  // or its read below would never see end of file
        ChildProcess child(ChildCommand{.argv = {"sleep", "30"}, .die_with_parent = die_with_parent});
        const pid_t pid = child.pid();
        char go = 0;
        if (::write(pid_pipe[1], &pid, sizeof pid) == sizeof pid) {
            (void)!::read(go_pipe[0], &go, 1);
        }
        ::_exit(0);
    }
    ::close(pid_pipe[1]);
    ::close(go_pipe[0]);
    pid_t orphan = 0;
    const auto n = ::read(pid_pipe[0], &orphan, sizeof orphan);
    ::close(pid_pipe[0]);
    stormnode::UniqueFd pidfd(
        n == sizeof orphan ? static_cast<int>(::syscall(SYS_pidfd_open, orphan, 0)) : -1);
    ::close(go_pipe[1]);  // the parent reads end of file and exits
    int status = 0;
    REQUIRE(::waitpid(parent, &status, 0) == parent);
    REQUIRE(pidfd);
    return pidfd;
}

}  // namespace

TEST_CASE("a child started with die_with_parent ends when its parent is killed", "[common][child]") {
    const auto pidfd = orphan_of_a_killed_parent(true);
    pollfd p{pidfd.get(), POLLIN, 0};
    CHECK(::poll(&p, 1, 10000) == 1);  // readable: the process has ended
}

TEST_CASE("without die_with_parent the child outlives a killed parent", "[common][child]") {
    const auto pidfd = orphan_of_a_killed_parent(false);
    pollfd p{pidfd.get(), POLLIN, 0};
    CHECK(::poll(&p, 1, 0) == 0);  // still running
    CHECK(::syscall(SYS_pidfd_send_signal, pidfd.get(), SIGKILL, nullptr, 0) == 0);
}
