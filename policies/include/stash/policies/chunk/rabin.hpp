// restic's content-defined chunker: a Rabin fingerprint over a 64-byte window.
#pragma once

#include <stash/chunk/polynomial.hpp>
#include <stash/concepts/chunker.hpp>
#include <stash/core/cpu.hpp>
#include <stash/policies/chunk/detail/rabin_windows.hpp>

#include <array>
#include <cstdint>
#include <memory>
#include <optional>

namespace stash::policies::chunk {

/** The Rabin-fingerprint chunker of restic/chunker v0.4.0 (restic-format.md §10): window 64 bytes,
    min 512 KiB, max 8 MiB, cut where `fingerprint & (2^20 − 1) == 0`, with the repository's
    irreducible polynomial. Cuts identical to restic's, so blobs deduplicate across both tools.

    The window is read straight from the span (no ring buffer): hashing restarts at `min − 64` of each
    chunk, where restic's reset state has only the initial byte `1` left to slide out. Beyond that
    the fingerprint depends on the window alone, so the loop steps two bytes at a time and hashes
    three 16 KiB blocks at once (independent dependency chains); the first cut found in order wins.
    On CPUs with AVX-512BW and GFNI, 64 windows' fingerprints are filtered at once instead
    (`detail::rabin_windows`: the fingerprint is linear in the window's bits), 1.7–1.8× as fast.

    @par Concepts
    `stash::chunker`.
*/
class rabin {
public:
    static constexpr std::size_t window = 64;
    static constexpr std::size_t default_min = 512 * 1024, default_max = 8 * 1024 * 1024;

    /// Pre: `min > 64` (the window), `average_bits < 54` (the polynomial's degree).
    explicit rabin(stash::chunk::polynomial pol, unsigned average_bits = 20,
                   std::size_t min = default_min, std::size_t max = default_max)
        : tables_(std::make_shared<tables>(pol)), mask_((std::uint64_t(1) << average_bits) - 1), bits_(average_bits), min_(min), max_(max) {}

    std::size_t min_size() const noexcept { return min_; }
    std::size_t max_size() const noexcept { return max_; }
    stash::chunk::polynomial polynomial() const noexcept { return tables_->pol; }

    std::size_t cut(byte_span s) const noexcept {
        if (s.size() <= min_) return s.size();
        return first_cut(reinterpret_cast<std::uint8_t const*>(s.data()), min_, std::min(s.size(), max_));
    }

    /// The chunk length and the fingerprint at the cut (restic's `Chunk.Cut`), for golden vectors.
    std::pair<std::size_t, std::uint64_t> cut_with_fingerprint(byte_span s) const noexcept {
        if (s.size() <= min_) return {s.size(), s.size() < min_ - window ? 1 : fingerprint_of(s)};
        std::size_t const n = cut(s);
        return {n, warm_up(reinterpret_cast<std::uint8_t const*>(s.data()) + n)};
    }

    /// `cut(s)` for a span whose first `scanned` bytes held no cut before their end
    /// (`stash::resumable_chunker`): the fingerprint there is that of the 64 bytes before it.
    std::size_t cut(byte_span s, std::size_t scanned) const noexcept {
        if (scanned <= min_ || s.size() <= min_) return cut(s);
        std::size_t const end = std::min(s.size(), max_);
        if (scanned >= end) return end;
        return first_cut(reinterpret_cast<std::uint8_t const*>(s.data()), scanned, end);
    }

    /// `cut(s)` by the rolling hash alone, on every CPU (the reference the vector kernel is tested against).
    std::size_t cut_portable(byte_span s) const noexcept {
        if (s.size() <= min_) return s.size();
        auto const* p = reinterpret_cast<std::uint8_t const*>(s.data());
        return scan(p, min_, warm_up(p + min_), std::min(s.size(), max_)).first;
    }

private:
    // The first cut at a length in [i, end] (min <= i < end).
    std::size_t first_cut(std::uint8_t const* p, std::size_t i, std::size_t end) const noexcept {
#ifdef STASH_X86
        if (tables_->windows && detail::rabin_windows::usable(bits_)) return tables_->windows->first_zero(p, i, end, bits_);
#endif
        return scan(p, i, warm_up(p + i), end).first;
    }

    // The first cut at a length in [i, end], where d is the fingerprint at length i (i >= min).
    std::pair<std::size_t, std::uint64_t> scan(std::uint8_t const* p, std::size_t i, std::uint64_t d, std::size_t end) const noexcept {
        if ((d & mask_) == 0 || i >= end) return {i, d};
        // Lanes: the fingerprint is a function of the 64-byte window alone, so the blocks after this
        // one can be hashed at the same time, each from a fresh start 64 bytes before it. The
        // dependency chains interleave; the first cut in order wins, and at most a few blocks' worth
        // of the later lanes is wasted per chunk.
        while (end - i >= lanes * block) {
            std::uint64_t f[lanes], h[lanes];  // each lane's fingerprint after two bytes, after one
            std::size_t at[lanes];              // each lane's position (bytes consumed)
            f[0] = d, at[0] = i;
#pragma GCC unroll 4
            for (std::size_t k = 1; k < lanes; ++k) at[k] = i + k * block, f[k] = warm_up(p + at[k]);
            bool cut = false;
            while (at[0] < i + block) {
                bool any = false;
#pragma GCC unroll 4
                for (std::size_t k = 0; k < lanes; ++k) {
                    h[k] = half_step(f[k], p, at[k]), f[k] = step(f[k], p, at[k]);
                    any |= ((h[k] & mask_) == 0) | ((f[k] & mask_) == 0);
                }
                if (any) {
                    cut = true;
                    break;
                }
#pragma GCC unroll 4
                for (std::size_t k = 0; k < lanes; ++k) at[k] += 2;
            }
            if (!cut) {
                i = at[lanes - 1], d = f[lanes - 1];
                continue;
            }
            // In lane order: a lane that cut at this step wins; one that did not may still cut in
            // the rest of its block, alone.
            for (std::size_t k = 0;; ++k) {
                if ((h[k] & mask_) == 0) return {at[k] + 1, h[k]};
                if ((f[k] & mask_) == 0) return {at[k] + 2, f[k]};
                std::uint64_t e = f[k];
                for (std::size_t a = at[k] + 2; a < i + (k + 1) * block; a += 2) {
                    std::uint64_t const e1 = half_step(e, p, a);
                    e = step(e, p, a);
                    if ((e1 & mask_) == 0) return {a + 1, e1};
                    if ((e & mask_) == 0) return {a + 2, e};
                }
            }
        }
        if (i == end) return {i, d};  // the lanes ended exactly at the maximum or the input's end
        for (; i + 2 <= end; i += 2) {
            std::uint64_t const d1 = half_step(d, p, i);
            if ((d1 & mask_) == 0 || i + 1 == end) return {i + 1, d1};
            d = step(d, p, i);
            if ((d & mask_) == 0 || i + 2 == end) return {i + 2, d};
        }
        // One byte left before the end.
        auto const& t = *tables_;
        d ^= t.out[p[i - window]];
        d = ((d << 8) | p[i]) ^ t.mod[d >> t.shift];
        return {i + 1, d};
    }

    struct tables {
        stash::chunk::polynomial pol;
        unsigned shift;
        std::array<std::uint64_t, 256> out{}, mod{};
        // For two bytes a step (degree k): red8[u] = u·x^k mod P, red16[u] = u·x^(k+8) mod P,
        // out8[b] = out[b]·x⁸ mod P, out16[b] = out[b]·x¹⁶ mod P.
        std::array<std::uint64_t, 256> red8{}, red16{}, out8{}, out16{};
        std::optional<detail::rabin_windows> windows;  // on CPUs with AVX-512BW and GFNI only (36 KiB)
        explicit tables(stash::chunk::polynomial p) : pol(p), shift(unsigned(p.degree() - 8)) {
            if (stash::has_avx512gfni()) windows.emplace(p);
            using P = stash::chunk::polynomial;
            int const k = p.degree();
            for (std::uint64_t b = 0; b < 256; ++b) {
                std::uint64_t h = P::mod(b, p.value);
                for (std::size_t i = 0; i < window - 1; ++i) h = P::mod(h << 8, p.value);
                out[b] = h;
                mod[b] = P::mod(b << k, p.value) ^ (b << k);
                red8[b] = P::mod(b << k, p.value);
                red16[b] = P::mod(red8[b] << 8, p.value);
                out8[b] = P::mod(h << 8, p.value);
                out16[b] = P::mod(out8[b] << 8, p.value);
            }
        }
    };

    // The fingerprint of the window that ends `i` bytes in, from the one ending `i − 2` in (`d`),
    // two bytes a step: it is a linear function of `d` (d·x¹⁶ mod P from two table lookups on its
    // top 16 bits) plus terms of the bytes alone, so the loop-carried chain is one lookup deep per
    // two bytes. `half_step` gives the fingerprint in between, off the chain.
    std::uint64_t step(std::uint64_t d, std::uint8_t const* p, std::size_t i) const noexcept {
        auto const& t = *tables_;
        return times_x16(d) ^ t.out16[p[i - window]] ^ t.out8[p[i + 1 - window]] ^ (std::uint64_t(p[i]) << 8 | p[i + 1]);
    }
    // d·x¹⁶ mod P: the part of `step` that depends on the fingerprint before it.
    std::uint64_t times_x16(std::uint64_t d) const noexcept {
        auto const& t = *tables_;
        unsigned const shift = t.shift, mid = shift - 8;  // d's bits below its top 8, below its top 16
        std::uint64_t const mid_mask = (std::uint64_t(1) << mid) - 1;
        return ((d & mid_mask) << 16) ^ t.red16[d >> shift] ^ t.red8[(d >> mid) & 0xff];
    }
    std::uint64_t half_step(std::uint64_t d, std::uint8_t const* p, std::size_t i) const noexcept {
        auto const& t = *tables_;
        std::uint64_t const lo_mask = (std::uint64_t(1) << t.shift) - 1;
        return ((d & lo_mask) << 8) ^ t.red8[d >> t.shift] ^ t.out8[p[i - window]] ^ p[i];
    }
    // The fingerprint of the 64 bytes before `p` from a zero start (a window of zeros slides out
    // nothing), also two bytes a step.
    std::uint64_t warm_up(std::uint8_t const* p) const noexcept {
        std::uint64_t d = 0;
        for (std::ptrdiff_t k = window; k > 0; k -= 2) d = times_x16(d) ^ (std::uint64_t(p[-k]) << 8 | p[1 - k]);
        return d;
    }

    // Three lanes of 16 KiB: on `linux`'s large files 18% faster than two of 32 KiB (four were
    // slower than three: the loop is bound by its table loads, not the chains' latency). The warm-up,
    // 64 bytes a block, is 0.4%.
    static constexpr std::size_t lanes = 3, block = 16 * 1024;

    // Fingerprint of a short final chunk that restic hashed partly (len in [min−64, min]).
    std::uint64_t fingerprint_of(byte_span s) const noexcept {
        auto const* p = reinterpret_cast<std::uint8_t const*>(s.data());
        auto const& t = *tables_;
        std::uint64_t d = 1;
        for (std::size_t i = min_ - window, k = 0; i < s.size(); ++i, ++k) {
            if (k == window - 1) d ^= t.out[1];
            d = ((d << 8) | p[i]) ^ t.mod[d >> t.shift];
        }
        return d;
    }

    std::shared_ptr<tables const> tables_;
    std::uint64_t mask_;
    unsigned bits_;
    std::size_t min_, max_;
};
static_assert(stash::chunker<rabin>);

}  // namespace stash::policies::chunk
