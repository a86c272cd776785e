// The hasher concept: content addressing of blobs and files.
#pragma once

#include <stash/core/bytes.hpp>
#include <stash/core/id.hpp>

#include <concepts>

namespace stash {

/** A hasher maps bytes to the 32-byte `id` that names them in a repository.

    Notation: `H` a type modelling hasher, `s` a `byte_span`.

    | expression       | type          | semantics |
    |------------------|---------------|-----------|
    | `H::digest(s)`   | `id`          | MUST be a pure function of the bytes of `s`; thread-safe. |
    | `H::name`        | `char const*` | a short name for benchmarks and logs. |

    restic repositories require SHA-256 (restic-format.md §1.1); another hasher makes a repository
    restic cannot read and is only for benchmarking.

    Models: `policies::hash::sha256`. @see tests/unit/crypto.cpp (golden vectors).
*/
template <class H>
concept hasher = requires(byte_span s) {
    { H::digest(s) } -> std::same_as<id>;
    { H::name } -> std::convertible_to<char const*>;
};

/** A hasher that can also digest bytes given in pieces (a pack streamed to its file as it is built).

    | expression          | type   | semantics |
    |---------------------|--------|-----------|
    | `typename H::state` |        | default-constructible, movable; one digest in progress |
    | `st.update(s)`      | `void` | appends `s` |
    | `st.finish()`       | `id`   | equals `H::digest` of all the pieces in order; `st` is then spent |
*/
template <class H>
concept incremental_hasher = hasher<H> && requires(typename H::state st, byte_span s) {
    st.update(s);
    { st.finish() } -> std::same_as<id>;
};

}  // namespace stash
