// SHA-256 of many messages at once: sixteen in the lanes of AVX-512 registers, the last few on SHA-NI.
//
// Algorithm: FIPS 180-4 §6.2 (the compression function; padding §5.1.1). The multi-buffer idea (one
// message per vector lane, the rounds of all of them in step) is Intel's ("Fast Multi-buffer
// IPsec Implementations on Intel Architecture Processors", Gopal et al., 2010); the SHA-NI sequence
// follows Intel's "Intel SHA Extensions" (Gulley et al., 2013), which keeps the state as ABEF/CDGH.
//
// Why: one SHA-256 stream on SHA-NI is bound by the latency of `sha256rnds2` (two rounds each, in a
// chain), ~1.9 GB/s on this project's Xeon; sixteen independent streams in AVX-512 registers run
// at ~4.2 GB/s on the same core (16 KiB messages in cache), and a backup or restore has thousands
// of small blobs to hash, which are independent.
#pragma once

#include <stash/core/bytes.hpp>
#include <stash/core/cpu.hpp>
#include <stash/core/id.hpp>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <numeric>
#include <span>
#include <vector>

#ifdef STASH_X86
#include <immintrin.h>
#endif

namespace stash::policies::hash::detail {

inline constexpr std::uint32_t sha256_k[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};
inline constexpr std::uint32_t sha256_h0[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                               0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};

#ifdef STASH_X86

// GCC 12's AVX-512 intrinsics pass _mm512_undefined_epi32() (a self-initialized variable) as the
// unused merge source, which -Wuninitialized reports at every inlined call; -Wpsabi notes that
// vector types change the ABI, which these functions (internal, inline) do not expose.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wpsabi"

/** Runs `n` 64-byte blocks of each of `K` messages through the compression function on SHA-NI,
    side by side: `st[k]` is message k's running state a…h (FIPS 180-4 H0…H7), `p[k]` its blocks.
    One stream is bound by the latency of `sha256rnds2` (each two rounds wait on the two before);
    with two, one's rounds run while the other's wait: 1.35x two single calls on the project's Xeon
    (1 MiB messages). */
template <int K>
__attribute__((target("sha,sse4.1"))) inline void sha256_ni_blocks_k(std::uint32_t* const* st, std::uint8_t const* const* p, std::size_t n) {
    __m128i const bswap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
    __m128i s0[K], s1[K];
    for (int k = 0; k < K; ++k) {
        // a b c d / e f g h → ABEF / CDGH, the order sha256rnds2 works in.
        __m128i const t = _mm_shuffle_epi32(_mm_loadu_si128(reinterpret_cast<__m128i const*>(st[k])), 0xB1);
        s1[k] = _mm_shuffle_epi32(_mm_loadu_si128(reinterpret_cast<__m128i const*>(st[k] + 4)), 0x1B);
        s0[k] = _mm_alignr_epi8(t, s1[k], 8);
        s1[k] = _mm_blend_epi16(s1[k], t, 0xF0);
    }
    for (std::size_t b = 0; b < n; ++b) {
        __m128i abef[K], cdgh[K], m[K][4];
        for (int k = 0; k < K; ++k) {
            abef[k] = s0[k], cdgh[k] = s1[k];
            for (int i = 0; i < 4; ++i)
                m[k][i] = _mm_shuffle_epi8(_mm_loadu_si128(reinterpret_cast<__m128i const*>(p[k] + 64 * b + 16 * i)), bswap);
        }
#pragma GCC unroll 16
        for (int g = 0; g < 16; ++g) {
            __m128i const kg = _mm_loadu_si128(reinterpret_cast<__m128i const*>(sha256_k + 4 * g));
            for (int k = 0; k < K; ++k) {
                __m128i const w = _mm_add_epi32(m[k][g & 3], kg);
                s1[k] = _mm_sha256rnds2_epu32(s1[k], s0[k], w);
                s0[k] = _mm_sha256rnds2_epu32(s0[k], s1[k], _mm_shuffle_epi32(w, 0x0E));
                if (g < 12) {  // W[4g+16 …] = σ1(W[t−2]) + W[t−7] + σ0(W[t−15]) + W[t−16]
                    __m128i x = _mm_sha256msg1_epu32(m[k][g & 3], m[k][(g + 1) & 3]);
                    x = _mm_add_epi32(x, _mm_alignr_epi8(m[k][(g + 3) & 3], m[k][(g + 2) & 3], 4));
                    m[k][g & 3] = _mm_sha256msg2_epu32(x, m[k][(g + 3) & 3]);
                }
            }
        }
        for (int k = 0; k < K; ++k) s0[k] = _mm_add_epi32(s0[k], abef[k]), s1[k] = _mm_add_epi32(s1[k], cdgh[k]);
    }
    for (int k = 0; k < K; ++k) {
        __m128i const t = _mm_shuffle_epi32(s0[k], 0x1B), u = _mm_shuffle_epi32(s1[k], 0xB1);
        _mm_storeu_si128(reinterpret_cast<__m128i*>(st[k]), _mm_blend_epi16(t, u, 0xF0));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(st[k] + 4), _mm_alignr_epi8(u, t, 8));
    }
}

/// `n` blocks of one message on SHA-NI (`sha256_ni_blocks_k` with one stream).
inline void sha256_ni_blocks(std::uint32_t st[8], std::uint8_t const* p, std::size_t n) {
    std::uint32_t* const s[1] = {st};
    std::uint8_t const* const q[1] = {p};
    sha256_ni_blocks_k<1>(s, q, n);
}

/** Runs `n` blocks of sixteen messages in step: lane l reads its i-th block at `p[l] + i * step[l]`
    (step 0 for an idle lane: it hashes one block over and over, and its state is ignored). `st[w]`
    holds word w of the state of all sixteen lanes, lane l at `st[w][l]`. */
STASH_TARGET_AVX512BW inline void sha256_x16_blocks(std::uint32_t (*st)[16], std::uint8_t const* const* p,
                                                    std::size_t const* step, std::size_t n) {
    using v = __m512i;
    v const bswap = _mm512_broadcast_i32x4(_mm_set_epi8(12, 13, 14, 15, 8, 9, 10, 11, 4, 5, 6, 7, 0, 1, 2, 3));
    v s[8];
    for (int i = 0; i < 8; ++i) s[i] = _mm512_loadu_si512(st[i]);
    for (std::size_t b = 0; b < n; ++b) {
        // Sixteen blocks, one a register, transposed so that w[j] holds word j of every lane:
        // 32-bit and 64-bit interleaves within 128-bit quarters, then two rounds of quarter shuffles.
        v r[16], t[16], w[16];
        for (int l = 0; l < 16; ++l) r[l] = _mm512_loadu_si512(p[l] + b * step[l]);
        for (int i = 0; i < 16; i += 2)
            t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]), t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
        for (int i = 0; i < 16; i += 4) {
            r[i] = _mm512_unpacklo_epi64(t[i], t[i + 2]), r[i + 1] = _mm512_unpackhi_epi64(t[i], t[i + 2]);
            r[i + 2] = _mm512_unpacklo_epi64(t[i + 1], t[i + 3]), r[i + 3] = _mm512_unpackhi_epi64(t[i + 1], t[i + 3]);
        }
        for (int i = 0; i < 4; ++i) {
            v const ab0 = _mm512_shuffle_i32x4(r[i], r[i + 4], 0x88), ab1 = _mm512_shuffle_i32x4(r[i], r[i + 4], 0xdd);
            v const cd0 = _mm512_shuffle_i32x4(r[i + 8], r[i + 12], 0x88), cd1 = _mm512_shuffle_i32x4(r[i + 8], r[i + 12], 0xdd);
            t[i] = _mm512_shuffle_i32x4(ab0, cd0, 0x88), t[i + 8] = _mm512_shuffle_i32x4(ab0, cd0, 0xdd);
            t[i + 4] = _mm512_shuffle_i32x4(ab1, cd1, 0x88), t[i + 12] = _mm512_shuffle_i32x4(ab1, cd1, 0xdd);
        }
        for (int j = 0; j < 16; ++j) w[j] = _mm512_shuffle_epi8(t[j], bswap);

        v a = s[0], bb = s[1], c = s[2], d = s[3], e = s[4], f = s[5], g = s[6], h = s[7];
#pragma GCC unroll 64
        for (int i = 0; i < 64; ++i) {
            if (i >= 16) {  // the schedule in place: w[i mod 16] becomes W[i]
                v const x = w[(i - 15) & 15], y = w[(i - 2) & 15];
                v const s0 = _mm512_ternarylogic_epi32(_mm512_ror_epi32(x, 7), _mm512_ror_epi32(x, 18), _mm512_srli_epi32(x, 3), 0x96);
                v const s1 = _mm512_ternarylogic_epi32(_mm512_ror_epi32(y, 17), _mm512_ror_epi32(y, 19), _mm512_srli_epi32(y, 10), 0x96);
                w[i & 15] = _mm512_add_epi32(_mm512_add_epi32(w[i & 15], s0), _mm512_add_epi32(w[(i - 7) & 15], s1));
            }
            // 0x96: x ^ y ^ z; 0xCA: e ? f : g (Ch); 0xE8: majority (Maj).
            v const big1 = _mm512_ternarylogic_epi32(_mm512_ror_epi32(e, 6), _mm512_ror_epi32(e, 11), _mm512_ror_epi32(e, 25), 0x96);
            v const ch = _mm512_ternarylogic_epi32(e, f, g, 0xCA);
            v const kw = _mm512_add_epi32(w[i & 15], _mm512_set1_epi32(int(sha256_k[i])));
            v const t1 = _mm512_add_epi32(_mm512_add_epi32(h, big1), _mm512_add_epi32(ch, kw));
            v const big0 = _mm512_ternarylogic_epi32(_mm512_ror_epi32(a, 2), _mm512_ror_epi32(a, 13), _mm512_ror_epi32(a, 22), 0x96);
            v const maj = _mm512_ternarylogic_epi32(a, bb, c, 0xE8);
            h = g, g = f, f = e, e = _mm512_add_epi32(d, t1);
            d = c, c = bb, bb = a, a = _mm512_add_epi32(t1, _mm512_add_epi32(big0, maj));
        }
        s[0] = _mm512_add_epi32(s[0], a), s[1] = _mm512_add_epi32(s[1], bb);
        s[2] = _mm512_add_epi32(s[2], c), s[3] = _mm512_add_epi32(s[3], d);
        s[4] = _mm512_add_epi32(s[4], e), s[5] = _mm512_add_epi32(s[5], f);
        s[6] = _mm512_add_epi32(s[6], g), s[7] = _mm512_add_epi32(s[7], h);
    }
    for (int i = 0; i < 8; ++i) _mm512_storeu_si512(st[i], s[i]);
}

#pragma GCC diagnostic pop
#endif  // STASH_X86

/// Whether `sha256_many` runs here (AVX-512BW); elsewhere the caller hashes one message at a time.
inline bool has_sha256_lanes() noexcept { return has_avx512bw(); }

/** Digests of `in[i]` into `out[i]` (same size), sixteen messages at a time. Pre: `has_sha256_lanes()`.

    Messages go to the lanes longest first (so lanes finish near one another) and a lane is refilled
    as its message ends. When nothing is left to start and `ni_below` or fewer lanes still run,
    those finish on SHA-NI (where the CPU has it) from their state so far, two side by side, the
    longest first: sixteen lanes with a few busy do less than one SHA-NI stream. Allocates the
    padding of each message (128 bytes) and nothing else per message. */
inline void sha256_many(std::span<byte_span const> in, std::span<id> out, unsigned ni_below = 8) {
#ifdef STASH_X86
    struct job {
        std::uint8_t const* p;
        std::size_t full;                 // whole 64-byte blocks of the message itself
        std::size_t tail_blocks;          // 1 or 2: the last partial block, 0x80, zeros, bit length
        alignas(64) std::uint8_t tail[128];
    };
    std::size_t const n = in.size();
    std::vector<job> jobs(n);
    std::vector<std::uint32_t> order(n);
    for (std::size_t i = 0; i < n; ++i) {
        auto& j = jobs[i];
        std::size_t const len = in[i].size(), rem = len % 64;
        j.p = reinterpret_cast<std::uint8_t const*>(in[i].data());
        j.full = len / 64;
        std::memset(j.tail, 0, sizeof j.tail);
        if (rem) std::memcpy(j.tail, j.p + len - rem, rem);
        j.tail[rem] = 0x80;
        j.tail_blocks = rem + 9 <= 64 ? 1 : 2;
        std::uint64_t const bits = std::uint64_t(len) * 8;
        for (int b = 0; b < 8; ++b) j.tail[j.tail_blocks * 64 - 1 - b] = std::uint8_t(bits >> (8 * b));
    }
    std::iota(order.begin(), order.end(), 0u);
    std::sort(order.begin(), order.end(), [&](auto x, auto y) { return in[x].size() > in[y].size(); });

    auto emit = [&](std::size_t i, auto word) {
        for (int w = 0; w < 8; ++w) {
            std::uint32_t const x = word(w);
            auto* o = reinterpret_cast<std::uint8_t*>(out[i].bytes.data()) + 4 * w;
            o[0] = std::uint8_t(x >> 24), o[1] = std::uint8_t(x >> 16), o[2] = std::uint8_t(x >> 8), o[3] = std::uint8_t(x);
        }
    };

    alignas(64) std::uint32_t st[8][16];
    alignas(64) static constexpr std::uint8_t idle_block[64] = {};
    std::uint8_t const* p[16];
    std::size_t step[16], left[16];
    std::int64_t lane_job[16];
    bool in_tail[16];
    std::size_t next = 0;
    unsigned active = 0;

    auto start = [&](int l) {
        if (next == n) {
            lane_job[l] = -1, p[l] = idle_block, step[l] = 0, left[l] = 0;
            return;
        }
        auto const i = order[next++];
        auto const& j = jobs[i];
        lane_job[l] = i, step[l] = 64, ++active;
        for (int w = 0; w < 8; ++w) st[w][l] = sha256_h0[w];
        in_tail[l] = j.full == 0;
        p[l] = in_tail[l] ? j.tail : j.p;
        left[l] = in_tail[l] ? j.tail_blocks : j.full;
    };
    for (int l = 0; l < 16; ++l) start(l);

    while (active) {
        if (next == n && active <= ni_below && has_sha_ni()) {
            // The rest of each message (or of its padding) on SHA-NI, two side by side while two
            // are left, the longest first.
            struct rest {
                std::uint32_t s[8];
                std::uint8_t const* p;
                std::size_t left, job, total;  // blocks in this part, and in all that is left
                bool in_tail;
            };
            std::array<rest, 16> r;
            unsigned nr = 0;
            for (int l = 0; l < 16; ++l) {
                if (lane_job[l] < 0) continue;
                auto& x = r[nr++];
                for (int w = 0; w < 8; ++w) x.s[w] = st[w][l];
                x.p = p[l], x.left = left[l], x.job = std::size_t(lane_job[l]), x.in_tail = in_tail[l];
                x.total = x.left + (x.in_tail ? 0 : jobs[x.job].tail_blocks);
            }
            std::sort(r.begin(), r.begin() + nr, [](rest const& x, rest const& y) { return x.total > y.total; });
            // Moves x on by k blocks, into its padding after the message; true once it is done (emitted).
            auto advance = [&](rest& x, std::size_t k) {
                x.p += 64 * k, x.left -= k;
                if (x.left) return false;
                if (!x.in_tail) {
                    auto const& j = jobs[x.job];
                    x.in_tail = true, x.p = j.tail, x.left = j.tail_blocks;
                    return false;
                }
                emit(x.job, [&](int w) { return x.s[w]; });
                return true;
            };
            unsigned taken = 0;
            rest* slot[2] = {nullptr, nullptr};
            for (;;) {
                for (auto& sl : slot)
                    if (!sl && taken < nr) sl = &r[taken++];
                if (slot[0] && slot[1]) {
                    std::size_t const k = std::min(slot[0]->left, slot[1]->left);
                    std::uint32_t* const ss[2] = {slot[0]->s, slot[1]->s};
                    std::uint8_t const* const pp[2] = {slot[0]->p, slot[1]->p};
                    sha256_ni_blocks_k<2>(ss, pp, k);
                    for (auto& sl : slot)
                        if (advance(*sl, k)) sl = nullptr;
                } else if (rest* x = slot[0] ? slot[0] : slot[1]) {
                    sha256_ni_blocks(x->s, x->p, x->left);
                    if (advance(*x, x->left)) slot[0] = slot[1] = nullptr;
                } else {
                    return;
                }
            }
        }
        std::size_t k = SIZE_MAX;
        for (int l = 0; l < 16; ++l)
            if (lane_job[l] >= 0) k = std::min(k, left[l]);
        sha256_x16_blocks(st, p, step, k);
        for (int l = 0; l < 16; ++l) {
            if (lane_job[l] < 0) continue;
            p[l] += k * 64, left[l] -= k;
            if (left[l]) continue;
            auto const i = std::size_t(lane_job[l]);
            if (!in_tail[l]) {
                in_tail[l] = true, p[l] = jobs[i].tail, left[l] = jobs[i].tail_blocks;
                continue;
            }
            emit(i, [&](int w) { return st[w][l]; });
            --active;
            start(l);
        }
    }
#else
    (void)in, (void)out, (void)ni_below;
#endif
}

}  // namespace stash::policies::hash::detail
