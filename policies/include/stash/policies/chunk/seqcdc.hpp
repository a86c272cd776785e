// SeqCDC: hashless content-defined chunking on monotonic byte sequences, with a vector kernel.
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

/// Parameters of `seqcdc` (sizes in bytes).
struct seqcdc_params {
    std::size_t min = 512 * 1024, max = 8 * 1024 * 1024;
    unsigned sequence = 5;       ///< rises in a row that make a cut point, 1 … 16
    unsigned skip_trigger = 200;  ///< falls that start a skip, ≥ 1
    std::size_t skip_size = 512;
};

/** SeqCDC (Udayashankar, Abdi, Al-Kiswany, "SeqCDC: Hashless Content-Defined Chunking for Data
    Deduplication", Middleware 2024): no rolling hash; a cut point is where the bytes rise `sequence`
    times in a row.

    From `min` on, each byte is compared with the one before it: a rise adds one to the run, a fall
    ends the run and counts as an "opposing" pair, an equal byte changes nothing. The chunk ends with
    the byte that completes a run of `sequence` rises. Content-based skipping: after `skip_trigger`
    opposing pairs (since the last skip) the next `skip_size` bytes are passed over, since a region
    that keeps falling is unlikely to hold a cut point soon. The chunk never exceeds `max`.

    The paper's parameters for 4–16 KiB chunks are sequence 5, trigger 50, skip 256–512 bytes. At
    restic's size bounds (the defaults: min 512 KiB, max 8 MiB) a trigger of 50 scans ~100 bytes in
    every ~600, so two copies of a stream shifted by an edit scan disjoint windows and rarely cut at
    the same place again (dedup ratio 1.00–1.02 on `bench/`'s edit test, whatever the skip size); a
    trigger of 200 with 512-byte skips scans about half the bytes and resynchronizes (1.6, with chunks
    averaging just over the minimum). `bench/micro` prints speed, average chunk size and dedup ratio.

    Two kernels give identical cut points (tests/unit/chunk.cpp checks it): a portable byte loop, and
    on CPUs with AVX-512BW and BMI2 a vector kernel that compares 64 byte pairs per step, squeezes the
    equal pairs out with `pext` and finds a run of rises or the trigger-th fall with bit arithmetic.

    @par Concepts
    `stash::chunker`.
*/
class seqcdc {
public:
    using params = seqcdc_params;

    explicit seqcdc(params p = {}) noexcept : p_(p) {
        p_.min = std::max<std::size_t>(p_.min, 1);  // the first comparison looks one byte back
        p_.max = std::max(p_.max, p_.min);
        p_.sequence = std::clamp(p_.sequence, 1u, 16u);
        p_.skip_trigger = std::max(p_.skip_trigger, 1u);
    }

    std::size_t min_size() const noexcept { return p_.min; }
    std::size_t max_size() const noexcept { return p_.max; }

    std::size_t cut(byte_span s) const noexcept {
        if (s.size() <= p_.min) return s.size();
        auto const* b = reinterpret_cast<std::uint8_t const*>(s.data());
        std::size_t const end = std::min(s.size(), p_.max);
#ifdef STASH_X86
        if (stash::has_avx512bw()) return cut_avx512(b, end);
#endif
        return scan(b, p_.min, end, 0, 0);
    }

    /// The portable kernel alone (the reference the vector kernel is tested against).
    std::size_t cut_portable(byte_span s) const noexcept {
        if (s.size() <= p_.min) return s.size();
        return scan(reinterpret_cast<std::uint8_t const*>(s.data()), p_.min, std::min(s.size(), p_.max), 0, 0);
    }

private:
    // Compares byte pairs (b[j−1], b[j]) for j in [j, end) with `run` rises and `falls` already counted.
    std::size_t scan(std::uint8_t const* b, std::size_t j, std::size_t end, unsigned run, unsigned falls) const noexcept {
        while (j < end) {
            if (b[j] > b[j - 1]) {
                if (++run == p_.sequence) return j + 1;
            } else if (b[j] < b[j - 1]) {
                run = 0;
                if (++falls == p_.skip_trigger) {
                    falls = 0;
                    j += p_.skip_size;
                }
            }
            ++j;
        }
        return end;
    }

#ifdef STASH_X86
    // 64 pairs a step. Bit i of `rise`/`fall` is pair j+i. `pext(rise, rise|fall)` lists the k unequal
    // pairs in order (1 = rise); `hist` holds the last sequence−1 of them from earlier steps (bit
    // sequence−2 the latest, 0 before the first), so a run may span steps.
    STASH_TARGET_AVX512BW std::size_t cut_avx512(std::uint8_t const* b, std::size_t end) const noexcept {
        unsigned const need = p_.sequence - 1;  // earlier rises a rise needs to complete a run
        std::uint64_t const hist_mask = (std::uint64_t(1) << need) - 1;
        std::uint64_t hist = 0;
        unsigned falls = 0;
        std::size_t j = p_.min;
        while (j + 64 <= end) {
            // The skips make the steps jump ~300 bytes at the 8 KiB scale, which the hardware's
            // prefetchers do not follow: with the input out of cache, 6.5 GiB/s without this hint
            // and 15.6-17.8 with it, ~3 steps ahead (bench/micro, 64 MiB input). Harmless past `end`.
            _mm_prefetch(reinterpret_cast<char const*>(b + j + 1024), _MM_HINT_T0);
            __m512i const prev = _mm512_loadu_si512(b + j - 1), cur = _mm512_loadu_si512(b + j);
            std::uint64_t const rise = _mm512_cmpgt_epu8_mask(cur, prev), fall = _mm512_cmplt_epu8_mask(cur, prev);
            std::uint64_t const moved = rise | fall;
            unsigned const k = unsigned(std::popcount(moved));
            std::uint64_t const seq = _pext_u64(rise, moved);
            std::uint64_t runs = seq;
            for (unsigned s = 1; s <= need; ++s) runs &= (seq << s) | (hist >> (need - s));
            if (k < 64) runs &= (std::uint64_t(1) << k) - 1;
            unsigned const at_cut = runs ? unsigned(std::countr_zero(_pdep_u64(std::uint64_t(1) << std::countr_zero(runs), moved))) : 64;
            unsigned const left = p_.skip_trigger - falls;
            unsigned const at_skip = unsigned(std::popcount(fall)) >= left
                                         ? unsigned(std::countr_zero(_pdep_u64(std::uint64_t(1) << (left - 1), fall)))
                                         : 64;
            if (at_cut < at_skip) return j + at_cut + 1;
            if (at_skip < 64) {
                // The trigger is a fall, so the run is 0 and nothing before it counts afterwards.
                j += at_skip + 1 + p_.skip_size;
                falls = 0, hist = 0;
                continue;
            }
            falls += unsigned(std::popcount(fall));
            if (need) hist = k >= need ? (seq >> (k - need)) & hist_mask : ((hist >> k) | (seq << (need - k))) & hist_mask;
            j += 64;
        }
        if (j >= end) return end;
        // The rest with the byte loop: the current run is the latest rises in `hist`.
        unsigned const run = need ? unsigned(std::countl_one(hist << (64 - need))) : 0;
        return scan(b, j, end, run, falls);
    }
#endif

    params p_;
};
static_assert(stash::chunker<seqcdc>);

}  // namespace stash::policies::chunk
