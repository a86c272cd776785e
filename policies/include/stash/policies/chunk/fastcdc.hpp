// FastCDC: gear-hash content-defined chunking with normalized chunking.
#pragma once

#include <stash/concepts/chunker.hpp>

#include <array>
#include <bit>
#include <cstdint>

namespace stash::policies::chunk {

/** FastCDC (Xia et al., "FastCDC: a Fast and Efficient Content-Defined Chunking Approach for Data
    Deduplication", USENIX ATC 2016): gear hash `h = (h << 1) + G[b]`, cut-point skipping below the
    minimum size, and normalized chunking with a harder mask before the average size and an easier one
    after it (normalization level 2). Masks use the high bits of `h`, which depend on the most bytes.

    Defaults match restic's size bounds (min 512 KiB, average 1 MiB, max 8 MiB) so dedup ratios compare.
    The gear table is fixed (SplitMix64, seed 0x5354415348): changing it changes every cut point.

    @par Concepts
    `stash::chunker`.
*/
class fastcdc {
public:
    explicit fastcdc(std::size_t min = 512 * 1024, std::size_t avg = 1024 * 1024, std::size_t max = 8 * 1024 * 1024)
        : min_(min), avg_(avg), max_(max) {
        unsigned const bits = unsigned(std::bit_width(avg) - 1);
        mask_s_ = high_bits(bits + 2);
        mask_l_ = high_bits(bits - 2);
    }

    std::size_t min_size() const noexcept { return min_; }
    std::size_t max_size() const noexcept { return max_; }

    std::size_t cut(byte_span s) const noexcept {
        std::size_t const n = s.size();
        if (n <= min_) return n;
        auto const* p = reinterpret_cast<std::uint8_t const*>(s.data());
        auto const& g = gear();
        std::size_t const end = std::min(n, max_);
        std::size_t const normal = std::min(end, avg_);
        std::uint64_t h = 0;
        std::size_t i = min_;
        if (std::size_t c = scan(p, i, normal, h, mask_s_, g)) return c;
        if (std::size_t c = scan(p, i, end, h, mask_l_, g)) return c;
        return end;
    }

    /// `cut(s)` for a span whose first `scanned` bytes held no cut before their end
    /// (`stash::resumable_chunker`). Each byte's gear value is shifted out of the 64-bit hash 64
    /// bytes later, so the hash one byte before `scanned` is rebuilt from the 64 before that (or
    /// from `min` on), and the look goes on from there.
    std::size_t cut(byte_span s, std::size_t scanned) const noexcept {
        std::size_t const n = s.size();
        if (n <= min_ || scanned <= min_ + 1) return cut(s);
        std::size_t const end = std::min(n, max_);
        if (scanned >= end) return end;
        auto const* p = reinterpret_cast<std::uint8_t const*>(s.data());
        auto const& g = gear();
        std::size_t i = scanned - 1;  // the cut at `scanned` itself is looked at again
        std::uint64_t h = 0;
        for (std::size_t k = i - min_ > 64 ? i - 64 : min_; k < i; ++k) h = (h << 1) + g[p[k]];
        std::size_t const normal = std::min(end, avg_);
        if (std::size_t c = scan(p, i, normal, h, mask_s_, g)) return c;
        if (std::size_t c = scan(p, i, end, h, mask_l_, g)) return c;
        return end;
    }

private:
    // Rolls bytes [i, end) into h and returns the cut (one past the byte whose hash has none of
    // `mask`'s bits), or 0 with i = end. Two bytes a step, with the paper's cut points: after bytes
    // b0, b1 the hash is 4h + (2·G[b0] + G[b1]), and the second term does not wait for h, so the
    // chain carried from step to step is one shift-and-add per two bytes instead of two (the idea
    // of FastCDC 2020's "rolling two bytes", IEEE TPDS 33(9), kept here to the same hash).
    static std::size_t scan(std::uint8_t const* p, std::size_t& i, std::size_t end, std::uint64_t& h, std::uint64_t mask,
                            std::array<std::uint64_t, 256> const& g) noexcept {
        for (; i + 2 <= end; i += 2) {
            std::uint64_t const g0 = g[p[i]];
            std::uint64_t const first = (h << 1) + g0;
            std::uint64_t pair = (g0 << 1) + g[p[i + 1]];
#if defined(__GNUC__)
            asm("" : "+r"(pair));  // else GCC reassociates the sum and puts both adds back on the chain
#endif
            h = (h << 2) + pair;
            if (!(first & mask)) return i + 1;
            if (!(h & mask)) return i + 2;
        }
        if (i < end) {  // one byte left
            h = (h << 1) + g[p[i++]];
            if (!(h & mask)) return i;
        }
        return 0;
    }

    static constexpr std::uint64_t high_bits(unsigned k) noexcept { return k >= 64 ? ~0ull : ~0ull << (64 - k); }

    static std::array<std::uint64_t, 256> const& gear() noexcept {
        static constexpr auto table = [] {
            std::array<std::uint64_t, 256> t{};
            std::uint64_t s = 0x5354415348;
            for (auto& v : t) {
                std::uint64_t z = (s += 0x9E3779B97F4A7C15ull);
                z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
                z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
                v = z ^ (z >> 31);
            }
            return t;
        }();
        return table;
    }

    std::size_t min_, avg_, max_;
    std::uint64_t mask_s_, mask_l_;
};
static_assert(stash::chunker<fastcdc>);

}  // namespace stash::policies::chunk
