// The backend concept: where a repository's files live (local disk, memory, object stores).
#pragma once

#include <stash/core/bytes.hpp>
#include <stash/core/error.hpp>

#include <concepts>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace stash {

/// The kinds of file in a restic repository (restic-format.md §1.1).
enum class file_type { config, key, lock, snapshot, index, pack };

/// Directory name of a file type in restic's default layout.
constexpr char const* dir_name(file_type t) noexcept {
    switch (t) {
        case file_type::config: return "";
        case file_type::key: return "keys";
        case file_type::lock: return "locks";
        case file_type::snapshot: return "snapshots";
        case file_type::index: return "index";
        case file_type::pack: return "data";
    }
    return "";
}

/// Names one file: its type and its name (64 hex digits; empty for the config).
struct handle {
    file_type type;
    std::string name;
    std::string str() const { return type == file_type::config ? "config" : std::string(dir_name(type)) + "/" + name; }
};

/// Receives one listed file: name and size in bytes.
using list_fn = std::function<void(std::string_view name, std::uint64_t size)>;

/** A backend stores a repository's files as opaque named byte strings.

    Notation: `B` a type modelling backend, `b` an lvalue of `B`, `h` a `handle`, `t` a `file_type`,
    `data` a `byte_span`, `out` a `bytes&`, `off`/`len` `std::uint64_t`, `fn` a `list_fn`.

    | expression              | type                     | semantics |
    |-------------------------|--------------------------|-----------|
    | `b.location()`          | `std::string`            | the repository string, for messages. |
    | `b.create()`            | `result<void>`           | prepares an empty repository; `errc::already_exists` if a config is there. |
    | `b.put(h, data)`        | `result<void>`           | stores `data` atomically: readers see all of it or nothing, also after a crash (restic-format.md §1.1). |
    | `b.get(h, off, len, out)` | `result<void>`         | replaces `out` with bytes `[off, off+len)`; `len == 0` reads to the end. `errc::not_found` if missing; `errc::corrupt` if the file is shorter than asked. |
    | `b.stat(h)`             | `result<std::uint64_t>`  | size in bytes; `errc::not_found` if missing. |
    | `b.list(t, fn)`         | `result<void>`           | calls `fn` once per file of type `t` whose name is 64 hex digits (temp files are invisible). |
    | `b.remove(h)`           | `result<void>`           | deletes; `errc::not_found` if missing. |

    All operations MUST be safe to call from several threads at once.

    Models: `policies::backend::local`, `memory`, `rest`, `s3`, `azure`; decorators `retry<B>` and
    `fault<B>`; `any` (type-erased).
*/
template <class B>
concept backend = requires(B& b, handle const& h, file_type t, byte_span data, bytes& out, std::uint64_t n, list_fn fn) {
    { b.location() } -> std::convertible_to<std::string>;
    { b.create() } -> std::same_as<result<void>>;
    { b.put(h, data) } -> std::same_as<result<void>>;
    { b.get(h, n, n, out) } -> std::same_as<result<void>>;
    { b.stat(h) } -> std::same_as<result<std::uint64_t>>;
    { b.list(t, fn) } -> std::same_as<result<void>>;
    { b.remove(h) } -> std::same_as<result<void>>;
};

}  // namespace stash
