// The hasher concept: content addressing of blobs and files.
#pragma once

#include <stash/core/bytes.hpp>
#include <stash/core/id.hpp>

#include <concepts>
#include <cstddef>
#include <span>

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

/** A hasher that digests many independent messages in one call, faster than one at a time (the
    messages share the rounds of SIMD lanes).

    | expression              | type   | semantics |
    |-------------------------|--------|-----------|
    | `H::digest_many(in, o)` | `void` | `in` a `std::span<byte_span const>`, `o` a `std::span<id>` of the same size: `o[i] = H::digest(in[i])` for every i; thread-safe |
*/
template <class H>
concept batch_hasher = hasher<H> && requires(std::span<byte_span const> in, std::span<id> out) { H::digest_many(in, out); };

/// `out[i] = H::digest(in[i])` for every i (same sizes), through `H::digest_many` where H has it.
template <hasher H>
void digest_all(std::span<byte_span const> in, std::span<id> out) {
    if constexpr (batch_hasher<H>) {
        H::digest_many(in, out);
    } else {
        for (std::size_t i = 0; i < in.size(); ++i) out[i] = H::digest(in[i]);
    }
}

}  // namespace stash
