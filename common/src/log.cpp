#include "stormnode/common/log.hpp"

#define SD_JOURNAL_SUPPRESS_LOCATION  // CODE_* fields come from the caller's source_location
#include <sys/stat.h>
#include <sys/uio.h>
#include <systemd/sd-journal.h>

#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <vector>

namespace stormnode::log {
namespace {

std::string& identifier() {
    static std::string name;
    return name;
}

std::string field(std::string_view key, std::string_view value) {
    std::string text;
    text.reserve(key.size() + value.size() + 1);
    text.append(key).append("=").append(value);
    return text;
}

}  // namespace

void set_identifier(std::string_view name) {
    identifier() = name;
}

bool stderr_is_journal() {
    const char* stream = std::getenv("JOURNAL_STREAM");  // NOLINT(concurrency-mt-unsafe): read once at start
    if (stream == nullptr) {
        return false;
    }
    struct stat st {};
    if (::fstat(2, &st) < 0) {
        return false;
    }
    const std::string expected = std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
    return expected == stream;
}

void write(
    int priority,
    std::string_view message,
    std::initializer_list<Field> fields,
    const std::source_location& where) {
    static const bool to_journal = stderr_is_journal();
    if (!to_journal) {
        static std::mutex stderr_lock;
        const std::lock_guard lock(stderr_lock);
        std::string line;
        if (!identifier().empty()) {
            line += identifier() + ": ";
        }
        if (priority <= LOG_WARNING) {
            line += priority <= LOG_ERR ? "error: " : "warning: ";
        }
        line.append(message);
        line += '\n';
        (void)std::fwrite(line.data(), 1, line.size(), stderr);
        return;
    }
    std::vector<std::string> entries{
        field("MESSAGE", message),
        field("PRIORITY", std::to_string(priority)),
        field("CODE_FILE", where.file_name()),
        field("CODE_LINE", std::to_string(where.line())),
        field("CODE_FUNC", where.function_name())};
    if (!identifier().empty()) {
        entries.push_back(field("SYSLOG_IDENTIFIER", identifier()));
    }
    for (const auto& f : fields) {
        entries.push_back(field(f.key, f.value));
    }
    std::vector<iovec> iov;
    iov.reserve(entries.size());
    for (auto& e : entries) {
        iov.push_back({e.data(), e.size()});
    }
    (void)sd_journal_sendv(iov.data(), static_cast<int>(iov.size()));
}

}  // namespace stormnode::log
