// RAM: Rapid Asymmetric Maximum chunking, with VectorCDC's vector kernel.
#pragma once

#include <stash/concepts/chunker.hpp>
#include <stash/core/cpu.hpp>

#include <algorithm>
#include <bit>
#include <cstdint>

#ifdef STASH_X86
#include <immintrin.h>
#endif

namespace stash::policies::chunk {

/** RAM (Widodo, Lim, Atiquzzaman, "A new content-defined chunking algorithm for data deduplication
    in cloud storage", Future Generation Computer Systems 71, 2017): the largest byte value `M` of a
    fixed window at the start of the chunk sets the bar; the chunk ends with the first byte after the
    window that is ≥ `M`, or at `max`. No hash; the window acts as the minimum size.

    The kernel is VectorCDC's (Udayashankar, Abdi, Al-Kiswany, "VectorCDC: Accelerating Data
    Deduplication with Vector Instructions", FAST 2025) on AVX-512BW: the window's maximum by
    `vpmaxub` 256 bytes a step, then the search as one `vpcmpub` ≥ `M` per 64 bytes and a count of
    trailing zeros of the mask. A portable loop gives identical cut points where AVX-512BW is missing.

    On random data `M` is nearly always 255 and chunks average `window` + 256 bytes; text has a lower
    `M` and longer tails. Defaults: window 1 MiB, max 8 MiB (restic's bounds).

    @par Concepts
    `stash::chunker`.
*/
class ram {
public:
    explicit ram(std::size_t window = 1024 * 1024, std::size_t max = 8 * 1024 * 1024) noexcept
        : window_(std::max<std::size_t>(window, 1)), max_(std::max(max, window_ + 1)) {}

    std::size_t min_size() const noexcept { return window_; }
    std::size_t max_size() const noexcept { return max_; }

    std::size_t cut(byte_span s) const noexcept {
        if (s.size() <= window_) return s.size();
        auto const* b = reinterpret_cast<std::uint8_t const*>(s.data());
        std::size_t const end = std::min(s.size(), max_);
#ifdef STASH_X86
        if (stash::has_avx512bw()) return cut_avx512(b, end);
#endif
        return cut_loop(b, end);
    }

    /// The portable kernel alone (the reference the vector kernel is tested against).
    std::size_t cut_portable(byte_span s) const noexcept {
        if (s.size() <= window_) return s.size();
        return cut_loop(reinterpret_cast<std::uint8_t const*>(s.data()), std::min(s.size(), max_));
    }

private:
    std::size_t cut_loop(std::uint8_t const* b, std::size_t end) const noexcept {
        std::uint8_t const bar = *std::max_element(b, b + window_);
        for (std::size_t i = window_; i < end; ++i)
            if (b[i] >= bar) return i + 1;
        return end;
    }

#ifdef STASH_X86
    STASH_TARGET_AVX512BW std::size_t cut_avx512(std::uint8_t const* b, std::size_t end) const noexcept {
        __m512i m0 = _mm512_setzero_si512(), m1 = m0, m2 = m0, m3 = m0;
        std::size_t i = 0;
        for (; i + 256 <= window_; i += 256) {
            m0 = _mm512_max_epu8(m0, _mm512_loadu_si512(b + i));
            m1 = _mm512_max_epu8(m1, _mm512_loadu_si512(b + i + 64));
            m2 = _mm512_max_epu8(m2, _mm512_loadu_si512(b + i + 128));
            m3 = _mm512_max_epu8(m3, _mm512_loadu_si512(b + i + 192));
        }
        for (; i < window_; i += 64)  // a partial last load reads zeros, which never raise a maximum
            m0 = _mm512_max_epu8(m0, _mm512_maskz_loadu_epi8(lanes(window_ - i), b + i));
        alignas(64) std::uint8_t lane[64];
        _mm512_store_si512(lane, _mm512_max_epu8(_mm512_max_epu8(m0, m1), _mm512_max_epu8(m2, m3)));
        std::uint8_t const bar = *std::max_element(lane, lane + 64);
        __m512i const v = _mm512_set1_epi8(char(bar));
        for (i = window_; i < end; i += 64) {
            __mmask64 const valid = lanes(end - i);
            if (std::uint64_t hit = _mm512_mask_cmpge_epu8_mask(valid, _mm512_maskz_loadu_epi8(valid, b + i), v))
                return i + unsigned(std::countr_zero(hit)) + 1;
        }
        return end;
    }

    // The first min(n, 64) lanes.
    static __mmask64 lanes(std::size_t n) noexcept { return n >= 64 ? ~__mmask64(0) : (__mmask64(1) << n) - 1; }
#endif

    std::size_t window_, max_;
};
static_assert(stash::chunker<ram>);

}  // namespace stash::policies::chunk
