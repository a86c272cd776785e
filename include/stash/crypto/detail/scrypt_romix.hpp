// scrypt's ROMix (RFC 7914 §3–5) in half the memory: the core of `crypto::scrypt`.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

namespace stash::crypto::detail {

/// Salsa20/8 core (RFC 7914 §3): 8 rounds over 16 words, then the input added word by word.
inline void salsa20_8(std::uint32_t b[16]) noexcept {
    std::uint32_t x[16];
    std::memcpy(x, b, sizeof x);
    auto quarter = [&x](int a, int c, int d, int e) {
        x[c] ^= std::rotl(x[a] + x[e], 7);
        x[d] ^= std::rotl(x[c] + x[a], 9);
        x[e] ^= std::rotl(x[d] + x[c], 13);
        x[a] ^= std::rotl(x[e] + x[d], 18);
    };
    for (int i = 0; i < 8; i += 2) {
        quarter(0, 4, 8, 12), quarter(5, 9, 13, 1), quarter(10, 14, 2, 6), quarter(15, 3, 7, 11);  // columns
        quarter(0, 1, 2, 3), quarter(5, 6, 7, 4), quarter(10, 11, 8, 9), quarter(15, 12, 13, 14);  // rows
    }
    for (int i = 0; i < 16; ++i) b[i] += x[i];
}

/// scryptBlockMix (RFC 7914 §4): `out` = BlockMix(`in`), each 2r blocks of 16 words (not overlapping).
inline void block_mix(std::uint32_t const* in, std::uint32_t* out, std::size_t r) noexcept {
    std::uint32_t x[16];
    std::memcpy(x, in + (2 * r - 1) * 16, sizeof x);
    for (std::size_t i = 0; i < 2 * r; ++i) {
        for (int k = 0; k < 16; ++k) x[k] ^= in[i * 16 + k];
        salsa20_8(x);
        // Y_0, Y_2, … first, then Y_1, Y_3, …
        std::memcpy(out + ((i & 1) ? r + i / 2 : i / 2) * 16, x, sizeof x);
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
    for (std::size_t k = 0; k < words; ++k) {
        auto const* p = b + 4 * k;
        x[k] = std::uint32_t(p[0]) | std::uint32_t(p[1]) << 8 | std::uint32_t(p[2]) << 16 | std::uint32_t(p[3]) << 24;
    }
    for (std::uint64_t i = 0; i < n; ++i) {
        if (i % stride == 0) std::memcpy(v + std::size_t(i / stride) * words, x.data(), words * 4);
        block_mix(x.data(), y.data(), r);
        x.swap(y);
    }
    std::size_t const last = (2 * r - 1) * 16;  // Integerify reads the last block's first 8 bytes
    for (std::uint64_t i = 0; i < n; ++i) {
        std::uint64_t const j = (std::uint64_t(x[last]) | std::uint64_t(x[last + 1]) << 32) & (n - 1);
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
        auto* p = b + 4 * k;
        p[0] = std::byte(x[k]), p[1] = std::byte(x[k] >> 8), p[2] = std::byte(x[k] >> 16), p[3] = std::byte(x[k] >> 24);
    }
}

}  // namespace stash::crypto::detail
