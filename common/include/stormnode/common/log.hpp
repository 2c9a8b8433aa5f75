// Structured logging: to the journal (with fields) when stderr is the journal, else plain stderr.
// Libraries do not log; binaries do.
#pragma once

#include <syslog.h>

#include <initializer_list>
#include <source_location>
#include <string>
#include <string_view>

namespace stormnode::log {

struct Field {
    std::string_view key;  // STORMNODE_ROLE, STORMNODE_UNIT, MESSAGE_ID, ...
    std::string value;
};

void write(
    int priority,
    std::string_view message,
    std::initializer_list<Field> fields,
    const std::source_location& where);

// The program name for plain-stderr output ("stormctl: ...").
void set_identifier(std::string_view name);

inline void debug(
    std::string_view msg,
    std::initializer_list<Field> fields = {},
    std::source_location where = std::source_location::current()) {
    write(LOG_DEBUG, msg, fields, where);
}
inline void info(
    std::string_view msg,
    std::initializer_list<Field> fields = {},
    std::source_location where = std::source_location::current()) {
    write(LOG_INFO, msg, fields, where);
}
inline void notice(
    std::string_view msg,
    std::initializer_list<Field> fields = {},
    std::source_location where = std::source_location::current()) {
    write(LOG_NOTICE, msg, fields, where);
}
inline void warning(
    std::string_view msg,
    std::initializer_list<Field> fields = {},
    std::source_location where = std::source_location::current()) {
    write(LOG_WARNING, msg, fields, where);
}
inline void error(
    std::string_view msg,
    std::initializer_list<Field> fields = {},
    std::source_location where = std::source_location::current()) {
    write(LOG_ERR, msg, fields, where);
}

// True when fd 2 is connected to the journal (JOURNAL_STREAM matches it).
bool stderr_is_journal();

}  // namespace stormnode::log
