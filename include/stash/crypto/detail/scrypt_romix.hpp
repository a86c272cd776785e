// scrypt's ROMix (RFC 7914 §3–5) in half the memory: the core of `crypto::scrypt`.
#pragma once

#include <stash/core/cpu.hpp>

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace stash::crypto::detail {

/* Every 16-word Salsa20 block is kept in diagonal order: words (0, 5, 10, 15), (4, 9, 14, 3),
   (8, 13, 2, 7), (12, 1, 6, 11). Then the column round is one quarter-round on four lanes at once,
   and the row round the same after rotating the lanes of three of the four vectors (the layout of
   the SSE2 Salsa20 implementations in the eSTREAM submissions). BlockMix's XORs and copies do not
   care about the order, so ROMix converts once on the way in and once on the way out. */
inline constexpr std::uint8_t diagonal_order[16] = {0, 5, 10, 15, 4, 9, 14, 3, 8, 13, 2, 7, 12, 1, 6, 11};

#if defined(__SSE2__)
struct salsa_block {
    __m128i a, b, c, d;  // the four diagonals

    static salsa_block load(std::uint32_t const* p) noexcept {
        auto const* v = reinterpret_cast<__m128i const*>(p);
        return {_mm_loadu_si128(v), _mm_loadu_si128(v + 1), _mm_loadu_si128(v + 2), _mm_loadu_si128(v + 3)};
    }
    void store(std::uint32_t* p) const noexcept {
        auto* v = reinterpret_cast<__m128i*>(p);
        _mm_storeu_si128(v, a), _mm_storeu_si128(v + 1, b), _mm_storeu_si128(v + 2, c), _mm_storeu_si128(v + 3, d);
    }
    void xor_with(std::uint32_t const* p) noexcept {
        auto const o = load(p);
        a = _mm_xor_si128(a, o.a), b = _mm_xor_si128(b, o.b), c = _mm_xor_si128(c, o.c), d = _mm_xor_si128(d, o.d);
    }

    /// Salsa20/8 core (RFC 7914 §3): 8 rounds, then the input added word by word.
    void salsa20_8() noexcept {
        // x ^= rotl(y + z, n) on four lanes. The rotate in the compiler's vector notation: two
        // shifts and an OR with SSE2, one vprold where AVX-512VL is enabled (romix_avx512).
        auto mix = []<int n>(__m128i& x, __m128i y, __m128i z, std::integral_constant<int, n>) {
            using u32x4 = std::uint32_t __attribute__((vector_size(16)));
            auto const s = u32x4(_mm_add_epi32(y, z));
            x = _mm_xor_si128(x, __m128i((s << n) | (s >> (32 - n))));
        };
        using r7 = std::integral_constant<int, 7>;
        using r9 = std::integral_constant<int, 9>;
        using r13 = std::integral_constant<int, 13>;
        using r18 = std::integral_constant<int, 18>;
        __m128i const a0 = a, b0 = b, c0 = c, d0 = d;
        for (int i = 0; i < 8; i += 2) {
            mix(b, a, d, r7{}), mix(c, b, a, r9{}), mix(d, c, b, r13{}), mix(a, d, c, r18{});  // columns
            // Rows: d, c, b now hold words (1, 6, 11, 12), (2, 7, 8, 13), (3, 4, 9, 14).
            d = _mm_shuffle_epi32(d, 0x39), c = _mm_shuffle_epi32(c, 0x4E), b = _mm_shuffle_epi32(b, 0x93);
            mix(d, a, b, r7{}), mix(c, d, a, r9{}), mix(b, c, d, r13{}), mix(a, b, c, r18{});
            d = _mm_shuffle_epi32(d, 0x93), c = _mm_shuffle_epi32(c, 0x4E), b = _mm_shuffle_epi32(b, 0x39);
        }
        a = _mm_add_epi32(a, a0), b = _mm_add_epi32(b, b0), c = _mm_add_epi32(c, c0), d = _mm_add_epi32(d, d0);
    }
};
#else
struct salsa_block {
    std::uint32_t x[16];

    static salsa_block load(std::uint32_t const* p) noexcept {
        salsa_block s;
        std::memcpy(s.x, p, sizeof s.x);
        return s;
    }
    void store(std::uint32_t* p) const noexcept { std::memcpy(p, x, sizeof x); }
    void xor_with(std::uint32_t const* p) noexcept {
        for (int k = 0; k < 16; ++k) x[k] ^= p[k];
    }

    /// Salsa20/8 core (RFC 7914 §3): 8 rounds, then the input added word by word.
    void salsa20_8() noexcept {
        // Where word k of the block sits in diagonal order.
        static constexpr std::uint8_t at[16] = {0, 13, 10, 7, 4, 1, 14, 11, 8, 5, 2, 15, 12, 9, 6, 3};
        std::uint32_t y[16];
        std::memcpy(y, x, sizeof y);
        auto quarter = [&y](int a, int c, int d, int e) {
            y[at[c]] ^= std::rotl(y[at[a]] + y[at[e]], 7);
            y[at[d]] ^= std::rotl(y[at[c]] + y[at[a]], 9);
            y[at[e]] ^= std::rotl(y[at[d]] + y[at[c]], 13);
            y[at[a]] ^= std::rotl(y[at[e]] + y[at[d]], 18);
        };
        for (int i = 0; i < 8; i += 2) {
            quarter(0, 4, 8, 12), quarter(5, 9, 13, 1), quarter(10, 14, 2, 6), quarter(15, 3, 7, 11);  // columns
            quarter(0, 1, 2, 3), quarter(5, 6, 7, 4), quarter(10, 11, 8, 9), quarter(15, 12, 13, 14);  // rows
        }
        for (int k = 0; k < 16; ++k) x[k] += y[k];
    }
};
#endif

/// scryptBlockMix (RFC 7914 §4): `out` = BlockMix(`in`), each 2r blocks of 16 words in diagonal
/// order (not overlapping).
inline void block_mix(std::uint32_t const* in, std::uint32_t* out, std::size_t r) noexcept {
    auto x = salsa_block::load(in + (2 * r - 1) * 16);
    for (std::size_t i = 0; i < 2 * r; ++i) {
        x.xor_with(in + i * 16);
        x.salsa20_8();
        // Y_0, Y_2, … first, then Y_1, Y_3, …
        x.store(out + ((i & 1) ? r + i / 2 : i / 2) * 16);
    }
}

/** scryptROMix (RFC 7914 §5) of the 128·r bytes at `b`, in place, for a cost `n` (a power of two).

    The first loop keeps every `stride`-th of its n states instead of all (`stride` a power of two ≤
    n); the second loop rebuilds a state it did not keep from the one kept before it, with at most
    stride − 1 more BlockMix calls (stride 2: ½ on average, so ~25% more work for half the memory).
    This is the time–memory trade-off Percival describes for ROMix (scrypt paper, §5); the result is
    the same as the plain algorithm's. `v` is the caller's scratch of n/stride · 32r words.
*/
inline void romix(std::byte* b, std::uint64_t n, std::size_t r, std::uint64_t stride, std::uint32_t* v) {
    std::size_t const words = 32 * r;
    std::vector<std::uint32_t> x(words), y(words), t(words), u(words);
    // Little-endian words, each block in diagonal order.
    auto word = [](std::size_t k) { return k / 16 * 16 + diagonal_order[k % 16]; };
    for (std::size_t k = 0; k < words; ++k) {
        auto const* p = b + 4 * word(k);
        x[k] = std::uint32_t(p[0]) | std::uint32_t(p[1]) << 8 | std::uint32_t(p[2]) << 16 | std::uint32_t(p[3]) << 24;
    }
    for (std::uint64_t i = 0; i < n; ++i) {
        if (i % stride == 0) std::memcpy(v + std::size_t(i / stride) * words, x.data(), words * 4);
        block_mix(x.data(), y.data(), r);
        x.swap(y);
    }
    // Integerify reads the last block's words 0 and 1, at 0 and 13 in diagonal order.
    std::size_t const last = (2 * r - 1) * 16;
    for (std::uint64_t i = 0; i < n; ++i) {
        std::uint64_t const j = (std::uint64_t(x[last]) | std::uint64_t(x[last + 13]) << 32) & (n - 1);
        std::uint32_t const* vj = v + std::size_t(j / stride) * words;
        if (std::uint64_t steps = j % stride) {
            block_mix(vj, t.data(), r);
            while (--steps) block_mix(t.data(), u.data(), r), t.swap(u);
            vj = t.data();
        }
        for (std::size_t k = 0; k < words; ++k) x[k] ^= vj[k];
        block_mix(x.data(), y.data(), r);
        x.swap(y);
    }
    for (std::size_t k = 0; k < words; ++k) {
        auto* p = b + 4 * word(k);
        p[0] = std::byte(x[k]), p[1] = std::byte(x[k] >> 8), p[2] = std::byte(x[k] >> 16), p[3] = std::byte(x[k] >> 24);
    }
}

#ifdef STASH_X86
/// `romix` compiled for AVX-512VL (all of it inlined here): Salsa20/8's rotates become one
/// instruction each: 55 → 39 ms for restic's default cost on the project's Xeon (BM_scrypt). Only
/// for CPUs that have it (`romix_best`).
[[gnu::flatten]] STASH_TARGET_AVX512VL inline void romix_avx512(std::byte* b, std::uint64_t n, std::size_t r,
                                                                 std::uint64_t stride, std::uint32_t* v) {
    romix(b, n, r, stride, v);
}
#endif

/// `romix` for this CPU: the AVX-512VL build where the CPU has it, else the portable one.
inline void romix_best(std::byte* b, std::uint64_t n, std::size_t r, std::uint64_t stride, std::uint32_t* v) {
#ifdef STASH_X86
    if (has_avx512vl()) return romix_avx512(b, n, r, stride, v);
#endif
    romix(b, n, r, stride, v);
}

}  // namespace stash::crypto::detail
