// The sealer concept: authenticated encryption of every stored box (encrypt-then-MAC).
#pragma once

#include <stash/core/bytes.hpp>
#include <stash/core/error.hpp>

#include <concepts>
#include <cstddef>

namespace stash {

/** A sealer encrypts and authenticates a plaintext into a box, and opens boxes. It holds the key.

    Notation: `S` a type modelling sealer, `s` a const lvalue of `S`, `in` a `byte_span`, `out` a `bytes&`,
    `fill` a callable `void(bytes&)` that appends bytes to its argument.

    | expression                | type           | semantics |
    |---------------------------|----------------|-----------|
    | `S::overhead`             | `std::size_t`  | box size minus plaintext size (restic: 32 = IV 16 + MAC 16). |
    | `s.seal(in, out)`         | `void`         | appends `box(in)` to `out` with a fresh random nonce. Thread-safe. |
    | `s.seal_append(out, fill)`| `void`         | appends `box(P)` to `out`, where P is what `fill(out)` appends: a compressor writes its frame straight into the box, which is then sealed in place (no plaintext buffer of its own). Thread-safe. |
    | `s.open(in, out)`         | `result<void>` | verifies the MAC **before** decrypting, then appends the plaintext. Errors: `errc::corrupt` (short box or MAC mismatch). Thread-safe. |

    Models: `crypto::restic_sealer` (AES-256-CTR + Poly1305-AES, restic-format.md §2.2).
*/
template <class S>
concept sealer = requires(S const& s, byte_span in, bytes& out, void (&fill)(bytes&)) {
    { S::overhead } -> std::convertible_to<std::size_t>;
    s.seal(in, out);
    s.seal_append(out, fill);
    { s.open(in, out) } -> std::same_as<result<void>>;
};

}  // namespace stash
