#include <stormnode/common/error.hpp>
#include <stormnode/common/subprocess.hpp>

#include <catch2/catch.hpp>

using stormnode::Command;
using stormnode::run;

TEST_CASE("run captures stdout, stderr and the exit status", "[common][subprocess]") {
    const auto result = run(Command{.argv = {"sh", "-c", "echo out; echo err >&2; exit 3"}});
    CHECK(result.out == "out\n");
    CHECK(result.err == "err\n");
    CHECK(result.exit_status == 3);
    CHECK_FALSE(result.ok());
}

TEST_CASE("arguments reach the program unchanged, never through a shell", "[common][subprocess]") {
    const auto result = run(Command{.argv = {"printf", "%s|", "a b", "$HOME", "'quoted'", ";ls"}});
    CHECK(result.ok());
    CHECK(result.out == "a b|$HOME|'quoted'|;ls|");
}

TEST_CASE("stdin data is fed to the program", "[common][subprocess]") {
    std::string big(300000, 'x');  // larger than a pipe buffer: needs the poll loop to interleave
    const auto result = run(Command{.argv = {"cat"}, .stdin_data = big});
    CHECK(result.ok());
    CHECK(result.out.size() == big.size());
}

TEST_CASE("environment entries are added for the child only", "[common][subprocess]") {
    const auto result = run(Command{
        .argv = {"sh", "-c", "echo \"$STORMNODE_TEST_VALUE\""},
        .env = {{"STORMNODE_TEST_VALUE", "forty two"}}});
    CHECK(result.out == "forty two\n");
}

TEST_CASE("a timeout kills the whole process group", "[common][subprocess]") {
    // The child's own child would keep the pipe open if only the direct child were killed.
    const auto result = run(Command{
        .argv = {"sh", "-c", "sleep 30 & sleep 30; wait"}, .timeout = std::chrono::milliseconds(200)});
    CHECK(result.timed_out);
    CHECK_FALSE(result.ok());
}

TEST_CASE("a program that does not exist is an error naming it", "[common][subprocess]") {
    try {
        (void)run(Command{.argv = {"stormnode-no-such-program"}});
        FAIL("expected an error");
    } catch (const stormnode::Error& e) {
        CHECK(std::string(e.what()).find("stormnode-no-such-program") != std::string::npos);
        CHECK(e.code() == stormnode::Errc::io);
    }
}

TEST_CASE("run_checked names the program, status and stderr", "[common][subprocess]") {
    try {
        (void)stormnode::run_checked(Command{.argv = {"sh", "-c", "echo disk full >&2; exit 4"}});
        FAIL("expected an error");
    } catch (const stormnode::Error& e) {
        const std::string text = e.what();
        CHECK(text.find("exited with status 4") != std::string::npos);
        CHECK(text.find("disk full") != std::string::npos);
    }
}

TEST_CASE("describe prints the nested chain", "[common][error]") {
    try {
        try {
            throw stormnode::Error(stormnode::Errc::io, "No space left on device");
        } catch (...) {
            std::throw_with_nested(stormnode::Error(stormnode::Errc::aborted, "installing to '/dev/vda'"));
        }
    } catch (const std::exception& e) {
        CHECK(stormnode::describe(e) == "installing to '/dev/vda': No space left on device");
    }
}

TEST_CASE("line callbacks see each line as it comes, split across reads", "[common][subprocess]") {
    std::vector<std::string> out_lines;
    std::vector<std::string> err_lines;
    // The first line is written in two pieces; the last one has no newline.
    const auto result = run(Command{
        .argv = {"sh", "-c", "printf 'one '; printf 'two\\n'; echo e1 >&2; printf 'three\\n\\nlast'"},
        .on_stdout_line = [&](std::string_view line) { out_lines.emplace_back(line); },
        .on_stderr_line =
            [&](std::string_view line) {
                err_lines.emplace_back(line);
            }});
    CHECK(result.ok());
    CHECK(out_lines == std::vector<std::string>{"one two", "three", "", "last"});
    CHECK(err_lines == std::vector<std::string>{"e1"});
    CHECK(result.out == "one two\nthree\n\nlast");  // still captured
}

TEST_CASE("a line callback arrives before the program ends", "[common][subprocess]") {
    // The program blocks for a second after its first line (a timer in the child, not a sleep here): a
    // streamed line arrives long before the program ends.
    std::chrono::steady_clock::time_point first_line;
    const auto started = std::chrono::steady_clock::now();
    const auto result = run(Command{
        .argv = {"sh", "-c", "echo early; timeout 1 tail -f /dev/null; echo late"},
        .capture_stdout = false,
        .on_stdout_line = [&](std::string_view line) {
            if (line == "early")
                first_line = std::chrono::steady_clock::now();
        }});
    const auto ended = std::chrono::steady_clock::now();
    CHECK(result.out.empty());  // not captured, only streamed
    REQUIRE(first_line != std::chrono::steady_clock::time_point{});
    CHECK(first_line - started < ended - started - std::chrono::milliseconds(500));
}

TEST_CASE(
    "a throwing line callback kills the program and the error reaches the caller", "[common][subprocess]") {
    const auto started = std::chrono::steady_clock::now();
    CHECK_THROWS_AS(
        run(Command{
            .argv = {"sh", "-c", "echo boom; exec sleep 30"},
            .on_stdout_line =
                [](std::string_view) {
                    throw stormnode::Error(stormnode::Errc::aborted, "stop");
                }}),
        stormnode::Error);
    CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(10));
}
