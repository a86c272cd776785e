// zstd frames as repository version 2 stores them: part of the format itself, so the framework owns
// decoding (every reader must decode what restic wrote) and the one-shot encoding of unpacked files.
#pragma once

#include <stash/core/bytes.hpp>
#include <stash/core/error.hpp>

#include <zstd.h>

#include <algorithm>
#include <memory>
#include <stdexcept>
#include <string>

namespace stash::compress {

/** Decodes one zstd frame into a buffer, never trusting the frame content size (restic omits it for
    tiny inputs, restic-format.md §5.1). Keeps its context; use one object per thread. */
class zstd_decoder {
public:
    zstd_decoder() : dctx_(ZSTD_createDCtx()) {
        if (!dctx_) throw std::bad_alloc();
    }

    /// Appends the frame's content to `out`. `expected` is the recorded length (0 = unknown, grow as
    /// needed). Errors: `errc::corrupt` for a bad frame or a length different from `expected`.
    result<void> decompress(byte_span in, std::size_t expected, bytes& out) {
        if (expected) {
            auto v = decompress(in, expected);
            if (!v) return std::move(v).error();
            out.insert(out.end(), v->begin(), v->end());
            return {};
        }
        ZSTD_DCtx_reset(dctx_.get(), ZSTD_reset_session_only);
        std::size_t base = out.size();
        out.resize(base + std::max<std::size_t>(in.size() * 4, 4096));
        ZSTD_inBuffer ib{in.data(), in.size(), 0};
        ZSTD_outBuffer ob{out.data() + base, out.size() - base, 0};
        for (;;) {
            std::size_t r = ZSTD_decompressStream(dctx_.get(), &ob, &ib);
            if (ZSTD_isError(r)) return make_error(errc::corrupt, std::string("zstd: ") + ZSTD_getErrorName(r));
            if (r == 0) break;
            if (ob.pos == ob.size) {
                out.resize(out.size() * 2);
                ob.dst = out.data() + base, ob.size = out.size() - base;
            } else if (ib.pos == ib.size) {
                return make_error(errc::corrupt, "zstd: truncated frame");
            }
        }
        out.resize(base + ob.pos);
        return {};
    }

    /// Decodes a frame of recorded length `expected` (> 0) into the decoder's own buffer, not
    /// zero-filled first and kept for the next call; the view is valid until then. Errors as above.
    result<byte_span> decompress(byte_span in, std::size_t expected) { return decompress(in, expected, out_.get(expected + 1)); }

    /// The same into `dst`, which has room for `expected + 1` bytes (one spare: a frame larger than
    /// its recorded length fills it and is rejected).
    result<byte_span> decompress(byte_span in, std::size_t expected, std::byte* dst) {
        ZSTD_DCtx_reset(dctx_.get(), ZSTD_reset_session_only);
        ZSTD_inBuffer ib{in.data(), in.size(), 0};
        ZSTD_outBuffer ob{dst, expected + 1, 0};
        for (;;) {
            std::size_t r = ZSTD_decompressStream(dctx_.get(), &ob, &ib);
            if (ZSTD_isError(r)) return make_error(errc::corrupt, std::string("zstd: ") + ZSTD_getErrorName(r));
            if (r == 0) break;
            if (ob.pos == ob.size) return make_error(errc::corrupt, "zstd: data larger than its recorded length");
            if (ib.pos == ib.size) return make_error(errc::corrupt, "zstd: truncated frame");
        }
        if (ob.pos != expected)
            return make_error(errc::corrupt, ob.pos > expected ? "zstd: data larger than its recorded length" : "zstd: data shorter than its recorded length");
        return byte_span(static_cast<std::byte const*>(ob.dst), ob.pos);
    }

    /// Decodes a frame in pieces of at most `piece` bytes, calling `fn(byte_span)` for each (the
    /// span is valid during the call), so a large document never sits whole in memory. `fn` returns
    /// result<void>; its error stops the decoding and is returned. Errors: `errc::corrupt` for a bad
    /// or truncated frame.
    template <class Fn>
    result<void> decompress_pieces(byte_span in, Fn&& fn, std::size_t piece = 1 << 20) {
        ZSTD_DCtx_reset(dctx_.get(), ZSTD_reset_session_only);
        // A small frame (a lock, a snapshot) gets a small buffer; one that decodes larger takes more pieces.
        bytes buf(std::min(piece, std::max<std::size_t>(in.size() * 8, 4096)));
        ZSTD_inBuffer ib{in.data(), in.size(), 0};
        for (;;) {
            ZSTD_outBuffer ob{buf.data(), buf.size(), 0};
            std::size_t const r = ZSTD_decompressStream(dctx_.get(), &ob, &ib);
            if (ZSTD_isError(r)) return make_error(errc::corrupt, std::string("zstd: ") + ZSTD_getErrorName(r));
            if (ob.pos) STASH_TRYV(fn(byte_span(buf.data(), ob.pos)));
            if (r == 0) return {};
            if (ob.pos < ob.size && ib.pos == ib.size) return make_error(errc::corrupt, "zstd: truncated frame");
        }
    }

private:
    struct dfree { void operator()(ZSTD_DCtx* c) const noexcept { ZSTD_freeDCtx(c); } };
    std::unique_ptr<ZSTD_DCtx, dfree> dctx_;
    scratch_bytes out_;
};

/** Appends one zstd frame to a buffer from input given in pieces (a large index file's JSON as it
    is written), so neither the whole input nor the compressor's worst-case bound need be in memory.
    `out` grows as output arrives (by at least `ZSTD_CStreamOutSize()`, ~128 KiB, at a time). One
    frame per object: construct, `write` any number of times, `finish` once. Throws
    `std::runtime_error` on a zstd error (none occur for valid use). */
class zstd_frame_writer {
public:
    /// `workers` > 0 compresses on that many threads of zstd's own (a frame of jobs of a few MiB,
    /// output as one thread would frame it; the caller's thread only hands over the input). Where
    /// the library lacks threads it compresses on the caller's.
    zstd_frame_writer(bytes& out, int level, int workers = 0) : out_(out), cctx_(ZSTD_createCCtx()) {
        if (!cctx_) throw std::bad_alloc();
        check(ZSTD_CCtx_setParameter(cctx_.get(), ZSTD_c_compressionLevel, level));
        if (workers > 0) (void)ZSTD_CCtx_setParameter(cctx_.get(), ZSTD_c_nbWorkers, workers);
    }
    void write(byte_span in) { run(in, ZSTD_e_continue); }
    void finish() {
        run({}, ZSTD_e_end);
        out_.resize(used_);
    }

private:
    void run(byte_span in, ZSTD_EndDirective mode) {
        ZSTD_inBuffer ib{in.data(), in.size(), 0};
        for (;;) {
            if (out_.size() - used_ < ZSTD_CStreamOutSize()) out_.resize(used_ + std::max(ZSTD_CStreamOutSize(), used_ / 4));
            ZSTD_outBuffer ob{out_.data(), out_.size(), used_};
            std::size_t const left = ZSTD_compressStream2(cctx_.get(), &ob, &ib, mode);
            check(left);
            used_ = ob.pos;
            // e_continue is done once the input is taken; e_end once nothing is left to flush.
            if (mode == ZSTD_e_end ? left == 0 : ib.pos == ib.size) return;
        }
    }
    static void check(std::size_t r) {
        if (ZSTD_isError(r)) throw std::runtime_error(std::string("zstd: ") + ZSTD_getErrorName(r));
    }

    struct cfree { void operator()(ZSTD_CCtx* c) const noexcept { ZSTD_freeCCtx(c); } };
    bytes& out_;
    std::size_t used_ = out_.size();
    std::unique_ptr<ZSTD_CCtx, cfree> cctx_;
};

/** The level for the repository's JSON documents: index, snapshot and lock files, and tree blobs
    where no compressor policy compresses them (copy, prune, a backup without one; the stock agent's
    backup compresses trees with its policy). They are mostly hex IDs and repeated keys, where
    level 1 is both faster and no larger than higher levels: the last index of a `linux` backup
    (12.2 MB of JSON) is 3.74 MB at level 1 (450 MB/s) and 4.05 MB at level 3 (210 MB/s), and it is
    compressed at the end of the backup, on one core. */
inline constexpr int metadata_level = 1;

/// The level for data blobs compressed without a compressor policy (prune's repacking of
/// uncompressed blobs): about restic's "auto".
inline constexpr int data_level = 3;

/// Appends one zstd frame of `in` at `level` to `out`.
inline void zstd_compress_frame(byte_span in, bytes& out, int level = metadata_level) {
    std::size_t base = out.size();
    out.resize(base + ZSTD_compressBound(in.size()));
    std::size_t n = ZSTD_compress(out.data() + base, out.size() - base, in.data(), in.size(), level);
    if (ZSTD_isError(n)) throw std::runtime_error(std::string("zstd: ") + ZSTD_getErrorName(n));
    out.resize(base + n);
}

}  // namespace stash::compress
