// The data plane's error model: one error enum, a category, and an error type that carries the name of
// the object at fault (file, pack, blob, snapshot) next to the code.
#pragma once

#include <boost/system/error_code.hpp>
#include <boost/system/result.hpp>
#include <boost/system/system_error.hpp>

#include <cerrno>
#include <ostream>
#include <string>
#include <type_traits>
#include <utility>

namespace stash {

/// Error conditions of the data plane (core, crypto, repo, backend, engine).
enum class errc {
    ok = 0,
    wrong_password = 1,     ///< no key file opened with the given password
    not_found,              ///< a file, snapshot, blob or path does not exist
    already_exists,         ///< create refused: the object is already there (repository, lock)
    corrupt,                ///< stored bytes failed a MAC, hash, length or structure check
    unsupported,            ///< a format version or feature this build does not implement
    invalid_argument,       ///< bad input from the caller (flag value, pattern, ID)
    io,                     ///< an operating-system I/O failure; the message has the errno text
    locked,                 ///< a conflicting lock is held on the repository
    partial,                ///< the operation finished but some inputs could not be read
    conflict,               ///< a precondition failed (stale resourceVersion, JSON patch test)
    gone,                   ///< the requested history was compacted (watch from an old resourceVersion)
    bad_request,            ///< a malformed request (name or namespace mismatch, bad body)
    forbidden,              ///< refused by policy (creating in a terminating namespace, RBAC)
    unauthorized,           ///< no or wrong credentials
    timeout,                ///< the server or the network did not answer in time
};

/// The category for `errc`.
inline boost::system::error_category const& data_category() noexcept {
    struct category final : boost::system::error_category {
        char const* name() const noexcept override { return "stash"; }
        std::string message(int ev) const override {
            switch (static_cast<errc>(ev)) {
                case errc::ok: return "success";
                case errc::wrong_password: return "wrong password or no key found";
                case errc::not_found: return "not found";
                case errc::already_exists: return "already exists";
                case errc::corrupt: return "data is corrupt";
                case errc::unsupported: return "unsupported";
                case errc::invalid_argument: return "invalid argument";
                case errc::io: return "I/O error";
                case errc::locked: return "repository is locked";
                case errc::partial: return "some inputs could not be read";
                case errc::conflict: return "conflict";
                case errc::gone: return "gone";
                case errc::bad_request: return "bad request";
                case errc::forbidden: return "forbidden";
                case errc::unauthorized: return "unauthorized";
                case errc::timeout: return "timeout";
            }
            return "unknown stash error";
        }
    };
    static category const instance;
    return instance;
}

inline boost::system::error_code make_error_code(errc e) noexcept {
    return {static_cast<int>(e), data_category()};
}

/// An error code plus a message naming what failed ("pack 3f2a…: MAC mismatch").
struct error {
    boost::system::error_code code;
    std::string message;

    /// The text a user sees: the message, or the code's description when there is no message.
    std::string what() const { return message.empty() ? code.message() : message; }
    bool is(errc e) const noexcept { return code == make_error_code(e); }
};

inline std::ostream& operator<<(std::ostream& os, error const& e) { return os << e.what(); }

/// Builds an `error` with code `e` and message `msg`.
inline error make_error(errc e, std::string msg) { return {make_error_code(e), std::move(msg)}; }

/// Builds an `error` from `errno`, naming the operation and path ("open /x: Permission denied").
inline error errno_error(std::string const& what, int err = errno) {
    auto code = boost::system::error_code(err, boost::system::system_category());
    errc cls = err == ENOENT ? errc::not_found : err == EEXIST ? errc::already_exists : errc::io;
    return {make_error_code(cls), what + ": " + code.message()};
}

/// Thrown by `result<T>::value()` on an error; apps catch it at the edge.
class error_exception : public boost::system::system_error {
public:
    explicit error_exception(error e) : system_error(e.code, e.what()), err_(std::move(e)) {}
    error const& err() const noexcept { return err_; }
    char const* what() const noexcept override { return err_.message.empty() ? system_error::what() : err_.message.c_str(); }

private:
    error err_;
};

[[noreturn]] inline void throw_exception_from_error(error const& e, boost::source_location const& = {}) {
    throw error_exception(e);
}

/// Every fallible library call returns `result<T>`: a value or an `error`.
template <class T>
using result = boost::system::result<T, error>;

}  // namespace stash

template <>
struct boost::system::is_error_code_enum<stash::errc> : std::true_type {};

/// Propagates an error out of the enclosing function returning `result<…>`.
#define STASH_TRY(var, expr)                                                   \
    auto&& var##_result_ = (expr);                                            \
    if (!var##_result_) return std::move(var##_result_).error();               \
    auto&& var = *std::move(var##_result_)

/// As STASH_TRY for `result<void>`.
#define STASH_TRYV(expr)                                                       \
    do {                                                                       \
        auto&& stash_r_ = (expr);                                              \
        if (!stash_r_) return std::move(stash_r_).error();                     \
    } while (0)
