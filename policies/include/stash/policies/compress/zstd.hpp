// zstd compression of blobs, as restic repository version 2 stores them.
#pragma once

#include <stash/compress/zstd.hpp>
#include <stash/concepts/compressor.hpp>

#include <zstd.h>

#include <memory>
#include <stdexcept>
#include <string>

namespace stash::policies::compress {

/** zstd at a fixed level: one frame per blob, no checksum (the MAC and the blob ID already cover the
    data), window ≤ 8 MiB. Decompression never trusts the frame content size (restic omits it for
    tiny inputs, restic-format.md §5.1): see `stash::compress::zstd_decoder`.

    @tparam Level zstd level; restic's "auto" corresponds to about 3.

    @par Concepts
    `stash::compressor`. Contexts are reused per object; use one object per thread.
*/
template <int Level = 3>
class zstd {
public:
    static constexpr bool enabled = true;
    static constexpr int level = Level;

    zstd() : cctx_(ZSTD_createCCtx()) {
        if (!cctx_) throw std::bad_alloc();
        ZSTD_CCtx_setParameter(cctx_.get(), ZSTD_c_compressionLevel, Level);
        ZSTD_CCtx_setParameter(cctx_.get(), ZSTD_c_checksumFlag, 0);
        ZSTD_CCtx_setParameter(cctx_.get(), ZSTD_c_windowLog, 23);
    }

    void compress(byte_span in, bytes& out) {
        std::size_t base = out.size();
        out.resize(base + ZSTD_compressBound(in.size()));
        std::size_t n = ZSTD_compress2(cctx_.get(), out.data() + base, out.size() - base, in.data(), in.size());
        if (ZSTD_isError(n)) throw std::runtime_error(std::string("zstd: ") + ZSTD_getErrorName(n));
        out.resize(base + n);
    }

    result<void> decompress(byte_span in, std::size_t expected, bytes& out) {
        return decoder_.decompress(in, expected, out);
    }

private:
    struct cfree { void operator()(ZSTD_CCtx* c) const noexcept { ZSTD_freeCCtx(c); } };
    std::unique_ptr<ZSTD_CCtx, cfree> cctx_;
    stash::compress::zstd_decoder decoder_;
};
static_assert(stash::compressor<zstd<>>);

}  // namespace stash::policies::compress
