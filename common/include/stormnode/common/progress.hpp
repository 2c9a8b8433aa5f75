// Long work (compose, ISO, install, PXE) reports progress through this; binaries decide how to show it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace stormnode {

class ProgressSink {
public:
    virtual ~ProgressSink() = default;
    // A new phase starts ("bootstrap", "import", "commit", ...); total 0 means unknown.
    virtual void phase(std::string_view name, std::uint64_t total, std::string_view unit) = 0;
    virtual void advance(std::uint64_t done) = 0;  // absolute amount done in the current phase
    virtual void message(std::string_view text) = 0;
};

class NullProgress final : public ProgressSink {
public:
    void phase(std::string_view, std::uint64_t, std::string_view) override {}
    void advance(std::uint64_t) override {}
    void message(std::string_view) override {}
};

}  // namespace stormnode
