// zstd compression of blobs, as restic repository version 2 stores them.
#pragma once

#include <stash/compress/zstd.hpp>
#include <stash/concepts/compressor.hpp>

// For ZSTD_createCCtx_advanced and ZSTD_customMem (exported by the shared library too). zstd.h
// guards its static part separately, so this works after an earlier plain include.
#define ZSTD_STATIC_LINKING_ONLY
#include <zstd.h>

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace stash::policies::compress {

namespace detail {

/** A `ZSTD_customMem` allocator for one context that keeps the largest block freed and hands it
    back for any request that fits it.

    zstd frees its workspace and allocates a smaller one once it has been more than three times too
    large for 128 calls, then allocates a larger one at the next large input. Backing up a source tree
    (many small files, now and then a large chunk) did that every few hundred blobs: ~1,000
    munmap calls and the page faults of fresh workspaces in one backup of `linux`, 7% of its CPU time.
    With the cache the workspace is allocated once. */
class block_cache {
public:
    block_cache() = default;
    block_cache(block_cache const&) = delete;
    block_cache& operator=(block_cache const&) = delete;
    ~block_cache() {
        for (auto& b : live_) std::free(b.first);
        std::free(spare_);
    }

    ZSTD_customMem mem() noexcept { return {&block_cache::allocate, &block_cache::release, this}; }

private:
    static void* allocate(void* self, std::size_t n) {
        auto& c = *static_cast<block_cache*>(self);
        void* p = nullptr;
        std::size_t size = n;
        if (c.spare_ && c.spare_size_ >= n) {
            p = std::exchange(c.spare_, nullptr), size = c.spare_size_;
        } else if (!(p = std::malloc(n))) {
            return nullptr;
        }
        try {
            c.live_.emplace_back(p, size);
        } catch (std::bad_alloc const&) {
            std::free(p);
            return nullptr;
        }
        return p;
    }

    static void release(void* self, void* p) {
        if (!p) return;
        auto& c = *static_cast<block_cache*>(self);
        auto it = std::find_if(c.live_.begin(), c.live_.end(), [p](auto const& b) { return b.first == p; });
        if (it == c.live_.end()) return std::free(p);  // (never: zstd frees only what it allocated here)
        std::size_t const size = it->second;
        c.live_.erase(it);
        if (c.spare_ && c.spare_size_ >= size) return std::free(p);
        std::free(c.spare_);
        c.spare_ = p, c.spare_size_ = size;
    }

    // zstd holds a few blocks at a time (the context and its workspace), so a vector is the map.
    std::vector<std::pair<void*, std::size_t>> live_;
    void* spare_ = nullptr;
    std::size_t spare_size_ = 0;
};

}  // namespace detail

/** zstd at a fixed level: one frame per blob, no checksum (the MAC and the blob ID already cover the
    data), window ≤ 8 MiB. Decompression never trusts the frame content size (restic omits it for
    tiny inputs, restic-format.md §5.1): see `stash::compress::zstd_decoder`.

    @tparam Level zstd level; restic's "auto" corresponds to about 3.
    @tparam SmallMinMatch when nonzero, the minimum match length (bytes) for blobs of at most
            `small` (16 KiB), where zstd's tables give 4 at levels 1-2; 0 keeps zstd's choice.
            Longer matches mean fewer, cheaper sequences on small text: 6 took the stock agent's
            initial backup of `linux` 1.5-5% faster for a repository 0.8% larger
            (docs/performance.md, sixteenth session). zstd accepts 3 to 7.

    @par Concepts
    `stash::compressor`. Contexts are reused per object; use one object per thread.

    @par Memory
    The context's workspace is allocated once at its largest (about 780 KiB at level 2 for a blob
    of 600 KiB or more) and kept: see `detail::block_cache`.
*/
template <int Level = 3, int SmallMinMatch = 0>
class zstd {
    static_assert(SmallMinMatch == 0 || (SmallMinMatch >= ZSTD_MINMATCH_MIN && SmallMinMatch <= ZSTD_MINMATCH_MAX),
                  "zstd's minimum match is 3 to 7 bytes");

public:
    static constexpr bool enabled = true;
    static constexpr int level = Level;
    static constexpr std::size_t small = 16 * 1024;  ///< bytes: the blobs SmallMinMatch applies to

    zstd() : cache_(std::make_unique<detail::block_cache>()), cctx_(ZSTD_createCCtx_advanced(cache_->mem())) {
        if (!cctx_) throw std::bad_alloc();
        ZSTD_CCtx_setParameter(cctx_.get(), ZSTD_c_compressionLevel, Level);
        ZSTD_CCtx_setParameter(cctx_.get(), ZSTD_c_checksumFlag, 0);
        ZSTD_CCtx_setParameter(cctx_.get(), ZSTD_c_windowLog, 23);
        ZSTD_CCtx_setParameter(cctx_.get(), ZSTD_c_stableInBuffer, 1);
    }
    zstd(zstd&&) noexcept = default;
    zstd& operator=(zstd&&) = delete;  // (member-wise, it would drop the old cache before its context)

    void compress(byte_span in, bytes& out) {
        std::size_t const base = out.size(), bound = ZSTD_compressBound(in.size());
        if (in.size() <= large) {
            if constexpr (SmallMinMatch != 0) use_min_match(in.size() <= small ? SmallMinMatch : 0);
            out.resize(base + bound);
            std::size_t n = ZSTD_compress2(cctx_.get(), out.data() + base, bound, in.data(), in.size());
            check(n);
            out.resize(base + n);
            return;
        }
        // A large blob: `out` grows (zero-filled, so resident) to half the input first and to the
        // bound only if the frame needs it, instead of the bound at once (three times what text
        // fills). The input stays in place (stableInBuffer): zstd copies none of it.
        use_min_match(0);
        check(ZSTD_CCtx_reset(cctx_.get(), ZSTD_reset_session_only));
        check(ZSTD_CCtx_setPledgedSrcSize(cctx_.get(), in.size()));
        ZSTD_inBuffer ib{in.data(), in.size(), 0};
        std::size_t done = 0;
        out.resize(base + in.size() / 2);
        for (;;) {
            ZSTD_outBuffer ob{out.data() + base, out.size() - base, done};
            std::size_t const left = ZSTD_compressStream2(cctx_.get(), &ob, &ib, ZSTD_e_end);
            check(left);
            done = ob.pos;
            if (left == 0) break;
            out.resize(base + bound);
        }
        out.resize(base + done);
    }

    result<void> decompress(byte_span in, std::size_t expected, bytes& out) {
        return decoder_.decompress(in, expected, out);
    }

    /// Whether a blob is worth compressing: false when it is large (over 256 KiB) and three
    /// samples of it (16 KiB at its start, middle and end) each shrink by less than 1/64 at this
    /// level, as media, archives and encrypted data do. Such a blob is then stored uncompressed:
    /// zstd would only have copied it into raw blocks (`random.bin`: ~6% of the backup's CPU time).
    /// A compressible part between the samples is stored uncompressed too; the samples cost about
    /// 1% of compressing a large blob, and only the first is taken when it compresses.
    bool worth_compressing(byte_span in) {
        if (in.size() <= large) return true;
        use_min_match(0);
        if (probe_.empty()) probe_.resize(ZSTD_compressBound(sample));
        for (std::size_t at : {std::size_t(0), (in.size() - sample) / 2, in.size() - sample}) {
            std::size_t const n = ZSTD_compress2(cctx_.get(), probe_.data(), probe_.size(), in.data() + at, sample);
            if (ZSTD_isError(n) || n < sample - sample / 64) return true;
        }
        return false;
    }
    static constexpr std::size_t sample = 16 * 1024;  ///< bytes: each of worth_compressing's samples

private:
    static constexpr std::size_t large = 256 * 1024;
    void use_min_match(int mm) {  // (0: zstd's choice for the size)
        if (mm != min_match_) ZSTD_CCtx_setParameter(cctx_.get(), ZSTD_c_minMatch, min_match_ = mm);
    }
    static void check(std::size_t r) {
        if (ZSTD_isError(r)) throw std::runtime_error(std::string("zstd: ") + ZSTD_getErrorName(r));
    }

    struct cfree { void operator()(ZSTD_CCtx* c) const noexcept { ZSTD_freeCCtx(c); } };
    std::unique_ptr<detail::block_cache> cache_;  // (declared first: outlives the context it serves)
    std::unique_ptr<ZSTD_CCtx, cfree> cctx_;
    stash::compress::zstd_decoder decoder_;
    int min_match_ = 0;  // the context's ZSTD_c_minMatch
    bytes probe_;        // worth_compressing's output, ZSTD_compressBound(sample) once used
};
static_assert(stash::compressor<zstd<>>);

}  // namespace stash::policies::compress
