// C handles owned by unique_ptr with stateless deleters (sizeof(handle) == sizeof(void*)).
#pragma once

#include <memory>

namespace stormnode {

template <auto FreeFn>
struct CFree {
    template <typename T>
    void operator()(T* p) const noexcept {
        if (p != nullptr) {
            FreeFn(p);
        }
    }
};

template <typename T, auto FreeFn>
using CHandle = std::unique_ptr<T, CFree<FreeFn>>;

// Adopts the raw pointer a C function writes through T** at the end of the full-expression.
template <typename Handle>
class OutParam {
public:
    explicit OutParam(Handle& owner) noexcept : owner_(owner) {}
    OutParam(const OutParam&) = delete;
    OutParam& operator=(const OutParam&) = delete;
    OutParam(OutParam&&) = delete;
    OutParam& operator=(OutParam&&) = delete;
    ~OutParam() { owner_.reset(raw_); }
    operator typename Handle::pointer *() noexcept { return &raw_; }  // NOLINT(google-explicit-constructor)

private:
    Handle& owner_;
    typename Handle::pointer raw_ = nullptr;
};

template <typename Handle>
OutParam<Handle> out(Handle& h) noexcept {
    return OutParam<Handle>(h);
}

// A file descriptor owned the same way.
class UniqueFd {
public:
    UniqueFd() noexcept = default;
    explicit UniqueFd(int fd) noexcept : fd_(fd) {}
    UniqueFd(const UniqueFd&) = delete;
    UniqueFd& operator=(const UniqueFd&) = delete;
    UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
    UniqueFd& operator=(UniqueFd&& other) noexcept {
        if (this != &other) {
            reset(other.release());
        }
        return *this;
    }
    ~UniqueFd() { reset(); }

    [[nodiscard]] int get() const noexcept { return fd_; }
    [[nodiscard]] explicit operator bool() const noexcept { return fd_ >= 0; }
    int release() noexcept {
        const int fd = fd_;
        fd_ = -1;
        return fd;
    }
    void reset(int fd = -1) noexcept;

private:
    int fd_ = -1;
};

}  // namespace stormnode
