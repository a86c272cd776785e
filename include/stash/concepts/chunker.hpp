// The chunker concept: where content-defined chunking cuts a byte stream.
#pragma once

#include <stash/core/bytes.hpp>

#include <concepts>
#include <cstddef>

namespace stash {

namespace detail {
template <class C>
concept finds_cut_points = requires(C const& c, byte_span s) {
    { c.cut(s) } -> std::same_as<std::size_t>;
};
template <class C>
concept exposes_sizes = requires(C const& c) {
    { c.min_size() } -> std::same_as<std::size_t>;
    { c.max_size() } -> std::same_as<std::size_t>;
};
template <class C>
concept resumes_cut = requires(C const& c, byte_span s, std::size_t scanned) {
    { c.cut(s, scanned) } -> std::same_as<std::size_t>;
};
}  // namespace detail

/** A chunker finds the cut points of content-defined chunking in a span it is given. It does no I/O:
    `chunk::stream` (stash/chunk/stream.hpp) reads and buffers for every chunker.

    Notation: `C` a type modelling chunker, `c` a const lvalue of `C`, `s` a `byte_span` that starts at
    the first byte of a chunk.

    | expression       | type          | semantics |
    |------------------|---------------|-----------|
    | `c.cut(s)`       | `std::size_t` | length of the chunk that starts at `s[0]`: the first cut point in `s`, or `min(s.size(), max_size())` when there is none. Post: `0 < n <= min(s.size(), max_size())` for non-empty `s`. MUST depend only on the bytes of `s` (not on how the input was buffered), so the same file gives the same chunks everywhere, and a cut point found before `s.size()` MUST stay the answer for any longer span starting with `s` (cut points are found scanning forward): `chunk::stream` relies on this to show a window shorter than the maximum first. Thread-safe (const). |
    | `c.min_size()`   | `std::size_t` | smallest chunk (bytes) except for the final remainder of an input. |
    | `c.max_size()`   | `std::size_t` | largest chunk (bytes). |

    Models: `policies::chunk::rabin` (restic-compatible), `policies::chunk::fastcdc`,
    `policies::chunk::seqcdc`, `policies::chunk::ram`, `policies::chunk::fixed`.
    @see tests/unit/chunk.cpp (conformance over all models, golden vectors, vector = portable kernels).
*/
template <class C>
concept chunker = detail::finds_cut_points<C> && detail::exposes_sizes<C> && std::is_nothrow_move_constructible_v<C>;

/** A chunker that can pick up a look where an earlier one ended, instead of rolling those bytes again.

    | expression         | type          | semantics |
    |--------------------|---------------|-----------|
    | `c.cut(s, scanned)` | `std::size_t` | `c.cut(s)`. Pre: `scanned <= s.size()` and `c.cut(s.first(scanned)) == scanned` (a look at the first `scanned` bytes found no cut before their end; one exactly at it may be). The chunker resumes near `scanned` rather than at `min_size()`. |

    `chunk::stream` uses it when the window it shows a chunker ends before a cut: it reads on and
    asks again from there. A rolling hash whose state is a function of the last bytes alone (Rabin's
    and FastCDC's: 64 of them) rebuilds it from those bytes.

    Models: `policies::chunk::rabin`, `policies::chunk::fastcdc`.
*/
template <class C>
concept resumable_chunker = chunker<C> && detail::resumes_cut<C>;

}  // namespace stash
