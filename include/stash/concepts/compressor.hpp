// The compressor concept: per-blob compression of a v2 repository.
#pragma once

#include <stash/core/bytes.hpp>
#include <stash/core/error.hpp>

#include <concepts>
#include <cstddef>

namespace stash {

/** A compressor turns a blob's plaintext into the bytes stored (before encryption) and back.

    Notation: `C` a type modelling compressor, `c` an lvalue of `C`, `in` a `byte_span`, `out` a `bytes&`,
    `n` a `std::size_t`.

    | expression                    | type           | semantics |
    |-------------------------------|----------------|-----------|
    | `C::enabled`                  | `bool`         | false for the identity: blobs are then stored as uncompressed types 0/1. |
    | `c.compress(in, out)`         | `void`         | appends one self-contained frame to `out`. With `enabled`, the frame MUST be zstd (restic-format.md §5.1). |
    | `c.decompress(in, n, out)`    | `result<void>` | appends the plaintext of one frame; `n` is the expected size (0 = unknown, stream it). Errors: `errc::corrupt`. |

    Optional: `c.worth_compressing(in)` → `bool`, a quick guess (a probe of part of `in`) that
    compressing `in` would not pay; the blob is then stored uncompressed (types 0/1 in a v2 pack,
    as restic-format.md allows). See `probes_compressibility`.

    A compressor object is used by one thread at a time; make one per worker (it may cache contexts).

    Models: `policies::compress::zstd<Level>`, `policies::compress::none`.
*/
template <class C>
concept compressor = requires(C& c, byte_span in, bytes& out, std::size_t n) {
    { C::enabled } -> std::convertible_to<bool>;
    c.compress(in, out);
    { c.decompress(in, n, out) } -> std::same_as<result<void>>;
};

/// A compressor that can tell, cheaply, that a blob is not worth compressing (see above).
template <class C>
concept probes_compressibility = compressor<C> && requires(C& c, byte_span in) {
    { c.worth_compressing(in) } -> std::same_as<bool>;
};

}  // namespace stash
