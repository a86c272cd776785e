// restic's Rabin fingerprint over 64 windows at once: GFNI's affine transforms filter on the low
// 8 bits, a table checks the rest.
#pragma once

#include <stash/chunk/polynomial.hpp>
#include <stash/core/cpu.hpp>

#include <array>
#include <bit>
#include <cstdint>
#include <cstring>
#include <utility>

#ifdef STASH_X86
#include <immintrin.h>
#endif

namespace stash::policies::chunk::detail {

/** Finds the first window whose Rabin fingerprint has its low bits zero, without rolling the hash.

    The fingerprint of the 64 bytes before length L is Σₖ p[L−1−k]·x^(8k) mod P, k = 0…63
    (restic-format.md §10; from restic's minimum on it depends on the window alone): linear over
    GF(2) in the window's bits. Its low 8 bits are therefore the XOR over the taps k of Aₖ·p[L−1−k],
    Aₖ an 8×8 bit matrix, and GFNI's affine transform (`vgf2p8affineqb`) applies one matrix to each
    of 64 bytes at once: 64 transforms give the low bytes of 64 consecutive windows' fingerprints,
    with no dependency from one window to the next (the rolling hash is one chain of table lookups).
    A window whose low bits pass (1 in 256 on random data, for restic's 20-bit mask) is checked on
    bits 8–23 by XORing each tap's contribution from a table: 64 loads, once per ~256 windows.

    On restic's sizes this finds the same cuts as `rabin`'s rolling loop, 1.7–1.8× as fast
    (bench/micro, random input: 2.9–3.2 GiB/s against 1.7). Only for masks of up to 24 bits
    (`usable`); `rabin` rolls the hash otherwise.
*/
class rabin_windows {
public:
    static constexpr std::size_t window = 64;

    explicit rabin_windows(stash::chunk::polynomial pol) noexcept {
        using P = stash::chunk::polynomial;
        std::array<std::uint64_t, 8 * window> xn{};  // x^n mod P
        std::uint64_t v = 1;
        for (auto& w : xn) w = v, v = P::mod(v << 1, pol.value);
        for (std::size_t k = 0; k < window; ++k) {
            // Row r (the qword's byte 7 − r, as the instruction reads it) holds the input bits that
            // reach output bit r: bit j of it is bit r of x^(j+8k) mod P.
            std::uint64_t a = 0;
            for (unsigned r = 0; r < 8; ++r) {
                std::uint64_t row = 0;
                for (unsigned j = 0; j < 8; ++j) row |= ((xn[j + 8 * k] >> r) & 1) << j;
                a |= row << (8 * (7 - r));
            }
            taps_[k].fill(a);
            for (unsigned b = 0; b < 256; ++b) {
                std::uint64_t f = 0;
                for (unsigned j = 0; j < 8; ++j)
                    if ((b >> j) & 1) f ^= xn[j + 8 * k];
                high_[k][b] = std::uint16_t(f >> 8);
            }
        }
    }

    /// Whether a cut mask of `bits` low bits can be checked here (the table holds bits 8–23).
    static constexpr bool usable(unsigned bits) noexcept { return bits <= 24; }

#ifdef STASH_X86
    /// The first length in [i, end] at which `fingerprint & (2^bits − 1) == 0`, else `end`.
    /// Pre: `usable(bits)`, `i > window` (the window's bytes and one before lie in the span),
    /// `p[0, end)` readable; CPU with AVX-512BW and GFNI (`stash::has_avx512gfni`).
    STASH_TARGET_AVX512GFNI std::size_t first_zero(std::uint8_t const* p, std::size_t i, std::size_t end, unsigned bits) const noexcept {
        __m512i const low = _mm512_set1_epi8(char((1u << (bits < 8 ? bits : 8)) - 1));
        std::uint16_t const high_mask = std::uint16_t(bits > 8 ? (1u << (bits - 8)) - 1 : 0);
        // Block by block: length L's window ends at p[L − 1], so the block at s holds lengths s+1 … s+64.
        std::size_t s = i - 1;
        for (; s + 64 <= end; s += 64) {
            std::uint64_t const m = _mm512_testn_epi8_mask(low_bytes(p + s), low);
            if (m)
                if (std::size_t const at = confirm(p, s + 1, m, high_mask)) return at;
        }
        if (s < end) {  // the last lengths, from a copy so that no load passes `end`
            alignas(64) std::uint8_t tail[3 * 64] = {};
            std::memcpy(tail, p + s - 64, end - s + 64);
            std::uint64_t const m = _mm512_testn_epi8_mask(low_bytes(tail + 64), low) & ((std::uint64_t(1) << (end - s)) - 1);
            if (m)
                if (std::size_t const at = confirm(p, s + 1, m, high_mask)) return at;
        }
        return end;
    }

private:
    // The low bytes of the fingerprints of the 64 windows ending at q[0] … q[63] (they reach back to
    // q[−63]; q[−64] is read too).
    STASH_TARGET_AVX512GFNI __m512i low_bytes(std::uint8_t const* q) const noexcept {
        __m512i const cur = _mm512_loadu_si512(q), prev = _mm512_loadu_si512(q - 64);
        // The bytes 0, 16, 32, 48 and 64 before `cur`'s: from them, tap k's input is one byte
        // shift within 128-bit lanes (`alignr`). (The masked form of valignq: GCC 12's plain one
        // trips -Wmaybe-uninitialized on its undefined pass-through operand.)
        __m512i const at16[5] = {cur, _mm512_maskz_alignr_epi64(0xff, cur, prev, 6), _mm512_maskz_alignr_epi64(0xff, cur, prev, 4),
                                 _mm512_maskz_alignr_epi64(0xff, cur, prev, 2), prev};
        return all_taps(at16, std::make_integer_sequence<int, window / 2>{});
    }
    template <int... T>
    STASH_TARGET_AVX512GFNI __m512i all_taps(__m512i const* at16, std::integer_sequence<int, T...>) const noexcept {
        __m512i acc[2] = {_mm512_setzero_si512(), _mm512_setzero_si512()};  // two chains, each XORing two taps a step
        ((acc[T & 1] = _mm512_ternarylogic_epi64(acc[T & 1], tap<2 * T>(at16), tap<2 * T + 1>(at16), 0x96)), ...);
        return _mm512_xor_si512(acc[0], acc[1]);
    }

    // Tap k's term for the 64 windows: A_k applied to the bytes k before each window's last.
    template <int K>
    STASH_TARGET_AVX512GFNI __m512i tap(__m512i const* at16) const noexcept {
        constexpr int m = K / 16, r = K % 16;
        // (Unaligned loads instead of a third of the shifts, to offload the shuffle port, measured
        // no faster in bench/micro: 2.89 vs 2.90–3.02 GiB/s.)
        __m512i x;
        if constexpr (r == 0) x = at16[m];
        else x = _mm512_alignr_epi8(at16[m], at16[m + 1], 16 - r);
        return _mm512_gf2p8affine_epi64_epi8(x, _mm512_loadu_si512(taps_[K].data()), 0);
    }
#endif

    // The first length in m's candidates (bit j = length base + j) whose bits 8–23 pass too, else 0.
    std::size_t confirm(std::uint8_t const* p, std::size_t base, std::uint64_t m, std::uint16_t high_mask) const noexcept {
        for (; m; m &= m - 1) {
            std::size_t const at = base + std::size_t(std::countr_zero(m));
            std::uint8_t const* last = p + at - 1;
            std::uint16_t h = 0;
            for (std::size_t k = 0; k < window; ++k) h ^= high_[k][last[-std::ptrdiff_t(k)]];
            if ((h & high_mask) == 0) return at;
        }
        return 0;
    }

    alignas(64) std::array<std::array<std::uint64_t, 8>, window> taps_;  // A_k, eight copies (one 512-bit load)
    std::array<std::array<std::uint16_t, 256>, window> high_;             // bits 8–23 of b·x^(8k) mod P
};

}  // namespace stash::policies::chunk::detail
