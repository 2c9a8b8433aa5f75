#include <stormnode/common/error.hpp>
#include <stormnode/common/kernel_cmdline.hpp>
#include <stormnode/common/temp_dir.hpp>

#include <catch2/catch.hpp>

#include <fstream>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

using stormnode::KernelArg;
using stormnode::KernelCmdline;
using stormnode::parse_kernel_cmdline;

namespace {

KernelArg bare(std::string key) {
    return KernelArg{std::move(key), std::nullopt};
}
KernelArg kv(std::string key, std::string value) {
    return KernelArg{std::move(key), std::move(value)};
}

std::string show(const std::vector<KernelArg>& args) {
    std::string text;
    for (const auto& arg : args) {
        text += "[" + arg.key + (arg.value ? "=" + *arg.value : std::string("(bare)")) + "]";
    }
    return text;
}

}  // namespace

TEST_CASE("the command line splits into words and key=value pairs as systemd reads it", "[common][cmdline]") {
    const struct {
        std::string_view name;
        std::string_view text;
        std::vector<KernelArg> args;
    } cases[] = {
        {"plain words", "quiet splash ro", {bare("quiet"), bare("splash"), bare("ro")}},
        {"tabs, newlines, CR and runs of spaces",
         "a\tb\nc\r\nd    e",
         {bare("a"), bare("b"), bare("c"), bare("d"), bare("e")}},
        {"leading and trailing spaces", "   a=1  b   \n", {kv("a", "1"), bare("b")}},
        {"empty", "", {}},
        {"only whitespace", " \t\n ", {}},
        {"a quoted value", "a=\"x y\" b", {kv("a", "x y"), bare("b")}},
        {"a quoted word", "\"a=x y\" b", {kv("a", "x y"), bare("b")}},
        {"single quotes", "a='x y' 'b c'", {kv("a", "x y"), bare("b c")}},
        {"one kind of quote inside the other",
         "a=\"it's\" b='say \"hi\"'",
         {kv("a", "it's"), kv("b", "say \"hi\"")}},
        {"quotes inside a value", "a=b\"c d\"e", {kv("a", "bc de")}},
        {"a quoted key", "\"my key\"=v", {kv("my key", "v")}},
        {"the first '=' splits", "key=v=w", {kv("key", "v=w")}},
        {"an empty value", "key=", {kv("key", "")}},
        {"an empty quoted value", "key=\"\"", {kv("key", "")}},
        {"a bare key", "key", {bare("key")}},
        {"an empty word", "a \"\" b", {bare("a"), bare(""), bare("b")}},
        {"an unterminated quote takes the rest of the line", "a=\"x y b=2", {kv("a", "x y b=2")}},
        {"an unterminated single quote", "a b='x\ty  ", {bare("a"), kv("b", "x\ty  ")}},
        {"backslashes are plain characters",
         "a=x\\ y b=\"c\\\"d",
         {kv("a", "x\\"), bare("y"), kv("b", "c\\d")}},
        {"repeated keys are all kept, in order",
         "a=1 b a=2 a",
         {kv("a", "1"), bare("b"), kv("a", "2"), bare("a")}},
        {"a live ISO",
         "BOOT_IMAGE=/vmlinuz root=live:CDLABEL=STORMNODE rd.live.image stormnode.role=compute,storage "
         "stormnode.answers=http://x/a.yaml#sha256=abc quiet",
         {kv("BOOT_IMAGE", "/vmlinuz"),
          kv("root", "live:CDLABEL=STORMNODE"),
          bare("rd.live.image"),
          kv("stormnode.role", "compute,storage"),
          kv("stormnode.answers", "http://x/a.yaml#sha256=abc"),
          bare("quiet")}},
        {"a network boot",
         "initrd=initrd.img root=live:http://10.0.0.1:8080/squashfs.img ip=dhcp console=ttyS0,115200 "
         "stormnode.report=http://10.0.0.1:8080/report",
         {kv("initrd", "initrd.img"),
          kv("root", "live:http://10.0.0.1:8080/squashfs.img"),
          kv("ip", "dhcp"),
          kv("console", "ttyS0,115200"),
          kv("stormnode.report", "http://10.0.0.1:8080/report")}},
    };
    for (const auto& c : cases) {
        INFO(c.name << ": " << c.text);
        const auto args = parse_kernel_cmdline(c.text);
        CHECK(show(args) == show(c.args));
        CHECK(args == c.args);
    }
}

TEST_CASE("split_kernel_cmdline gives the unquoted words", "[common][cmdline]") {
    CHECK(
        stormnode::split_kernel_cmdline(" a=\"x y\"  'b'c \"\" ") ==
        std::vector<std::string>{"a=x y", "bc", ""});
}

TEST_CASE("lookups: absent, bare, empty and set; the last occurrence wins", "[common][cmdline]") {
    const KernelCmdline cmdline("quiet a=1 empty= a=2 b=x b flag stormnode.install=unattended");
    const struct {
        std::string_view key;
        bool present;
        std::optional<std::string> value;
    } cases[] = {
        {"missing", false, std::nullopt},
        {"quiet", true, std::nullopt},   // present without a value
        {"empty", true, std::string()},  // present with an empty value
        {"a", true, std::string("2")},   // the last one wins
        {"b", true, std::nullopt},       // the last one is bare: it wins too
        {"stormnode.install", true, std::string("unattended")},
        {"stormnode.installx", false, std::nullopt},  // a key is compared whole
        {"stormnode", false, std::nullopt},
        {"qui", false, std::nullopt},
    };
    for (const auto& c : cases) {
        INFO("key: " << c.key);
        const auto* arg = cmdline.find(c.key);
        CHECK((arg != nullptr) == c.present);
        CHECK(cmdline.contains(c.key) == c.present);
        if (arg != nullptr) {
            CHECK(arg->value == c.value);
        }
        CHECK(cmdline.value(c.key) == c.value);
    }
}

TEST_CASE("all() gives every occurrence of a key in command-line order", "[common][cmdline]") {
    const KernelCmdline cmdline("console=tty0 quiet console=ttyS0,115200 console console=\"ttyS1\"");
    CHECK(
        cmdline.all("console") ==
        std::vector<KernelArg>{
            kv("console", "tty0"), kv("console", "ttyS0,115200"), bare("console"), kv("console", "ttyS1")});
    CHECK(cmdline.all("missing").empty());
    CHECK(cmdline.args().size() == 5);
}

TEST_CASE("keys compare with '-' and '_' as the same, as the kernel and systemd do", "[common][cmdline]") {
    const KernelCmdline cmdline("systemd.gpt_auto=0 rd.live-image");
    CHECK(cmdline.value("systemd.gpt-auto") == "0");
    CHECK(cmdline.contains("rd.live_image"));
    CHECK(cmdline.all("systemd.gpt_auto").size() == 1);
    CHECK_FALSE(stormnode::kernel_arg_key_equal("a.b", "a_b"));
    CHECK_FALSE(stormnode::kernel_arg_key_equal("a", "a-"));
}

TEST_CASE("rendering quotes what needs it, and parsing it gives the arguments back", "[common][cmdline]") {
    const struct {
        KernelArg arg;
        std::string_view word;
    } cases[] = {
        {kv("console", "ttyS0,115200"), "console=ttyS0,115200"},
        {bare("quiet"), "quiet"},
        {kv("key", ""), "key="},
        {kv("key", "v=w"), "key=v=w"},
        {kv("key", "v w"), "key=\"v w\""},
        {kv("key", "tab\there"), "key=\"tab\there\""},
        {kv("key", "it's"), "key=\"it's\""},
        {kv("key", "say \"hi\""), "key='say \"hi\"'"},
        {kv("key", "both ' and \""), "key=\"both ' and \"'\"'"},
        {kv("key", "\"x\""), "key='\"x\"'"},
        {kv("key", "back\\slash"), "key=back\\slash"},
        {bare("two words"), "\"two words\""},
        {bare(""), "\"\""},
        {kv("", "v"), "=v"},
        {kv("", ""), "="},
    };
    for (const auto& c : cases) {
        INFO("word: " << c.word);
        CHECK(stormnode::render_kernel_arg(c.arg) == c.word);
        CHECK(parse_kernel_cmdline(c.word) == std::vector<KernelArg>{c.arg});
    }

    std::vector<KernelArg> all;
    for (const auto& c : cases) {
        all.push_back(c.arg);
    }
    const auto line = stormnode::render_kernel_cmdline(all);
    CHECK(parse_kernel_cmdline(line) == all);
    // And a parsed command line renders to one that parses the same.
    const auto parsed = parse_kernel_cmdline("a=\"x y\" 'b c' d=e\"f g\"h BOOT_IMAGE=/vmlinuz k= quiet");
    CHECK(parse_kernel_cmdline(stormnode::render_kernel_cmdline(parsed)) == parsed);
    CHECK(stormnode::render_kernel_cmdline({}).empty());
}

TEST_CASE("a key holding '=' cannot be rendered", "[common][cmdline]") {
    try {
        (void)stormnode::render_kernel_arg(kv("a=b", "c"));
        FAIL("expected an error");
    } catch (const stormnode::Error& e) {
        CHECK(e.code() == stormnode::Errc::invalid_input);
        CHECK(std::string(e.what()).find("'a=b'") != std::string::npos);
    }
}

TEST_CASE("read_proc_cmdline reads the first line without its newline", "[common][cmdline]") {
    stormnode::TempDir dir("cmdline-test");
    const auto file = dir.path() / "cmdline";
    std::ofstream(file) << "root=LABEL=x a=\"open quote\n";
    const auto text = stormnode::read_proc_cmdline(file);
    CHECK(text == "root=LABEL=x a=\"open quote");
    CHECK(KernelCmdline(text).value("a") == "open quote");  // not "open quote\n"

    // The real one can be read by anybody.
    CHECK_NOTHROW(stormnode::read_proc_cmdline());
}

TEST_CASE("read_proc_cmdline names the file it cannot read", "[common][cmdline]") {
    try {
        (void)stormnode::read_proc_cmdline("/nonexistent/cmdline");
        FAIL("expected an error");
    } catch (const stormnode::Error& e) {
        CHECK(e.code() == stormnode::Errc::io);
        CHECK(std::string(e.what()).find("/nonexistent/cmdline") != std::string::npos);
        CHECK(e.cause() == std::errc::no_such_file_or_directory);
    }
}
