// Reads an input through any chunker and yields its chunks: the one place that buffers for chunkers.
#pragma once

#include <stash/concepts/chunker.hpp>
#include <stash/core/bytes.hpp>
#include <stash/core/error.hpp>

#include <algorithm>
#include <cstring>
#include <optional>

namespace stash::chunk {

/** Yields the chunks of one input, reading it through `read` into a buffer reserved at twice the
    chunker's maximum size.

    The chunker is shown a window of `window_` bytes ahead (or the rest of the input), much less
    than its maximum: content-defined chunkers cut long before it (restic's Rabin averages about
    1.4 MiB; ~3% of its chunks pass 4 MiB). When it finds no cut inside a shorter window, the
    window grows, up to the maximum, and the chunker looks again. A `resumable_chunker` goes on from
    where it stopped, so its window starts at 2 MiB for each chunk and grows 1 MiB a look, and the
    buffer's touched part stays near the chunk's size (4 MiB for most chunks). Any other chunker
    starts over from the chunk's start, so its window starts at 4 MiB and doubles. Data is moved
    back to the buffer's start when the window would pass that touched part (twice the window, or
    the window plus 1 MiB when it grows by steps), for a copy of at most the bytes read ahead of a
    cut. The chunks are those the chunker cuts from the whole input: a cut is taken only when it
    lies inside the window or the window has reached the maximum or the end of input.

    On `linux`'s 135 files past 512 KiB (389 MB, 237 chunks) Rabin rolls 271 MB this way; with
    4 MiB windows doubling and no resumption it rolled 353 MB.

    `Read` is callable as `read(mutable_byte_span) -> result<std::size_t>` (0 = end of input).
    `buffer` is reused across inputs by the caller to avoid reallocating per file; it is not
    zero-filled and comes in huge pages (`scratch_bytes`), so only what reads fill becomes resident,
    2 MiB at a time. Growing a `bytes` to 16 MiB instead wrote zeros over it: a third of an initial
    backup's page faults.

    @par Example
    `chunk::stream s(rabin, read_fd, buf); while (auto c = s.next()) { if (!*c) break; use(**c); }`
*/
template <chunker Chunker, class Read>
class stream {
public:
    /// A chunker that resumes its look costs nothing more when shown a short window first, so it
    /// gets 2 MiB, growing 1 MiB a look, and back to 2 MiB for each chunk; one that starts over
    /// gets 4 MiB, doubling (at most three looks at a maximum-sized chunk).
    static constexpr bool resumes = resumable_chunker<Chunker>;
    static constexpr std::size_t initial_window = resumes ? 2 << 20 : 4 << 20, read_step = 1 << 20;

    stream(Chunker const& c, Read read, scratch_bytes& buffer)
        : chunker_(c), read_(std::move(read)), buf_(buffer.get(2 * c.max_size())), window_(std::min(initial_window, c.max_size())) {}

    /// The next chunk (valid until the following call), an empty optional at the end, or a read error.
    result<std::optional<byte_span>> next() {
        for (;;) {
            if (auto r = fill(); !r) return std::move(r).error();
            if (pos_ == end_) return std::optional<byte_span>{};
            byte_span avail(buf_ + pos_, end_ - pos_);
            std::size_t const n = look(avail);
            if (n == avail.size() && !eof_ && window_ < chunker_.max_size()) {
                window_ = std::min(resumes ? window_ + read_step : 2 * window_, chunker_.max_size());  // a cut may lie further on
                continue;
            }
            take(n);
            return std::optional<byte_span>{avail.first(n)};
        }
    }

    /// The chunk after the last one, if the chunker cuts it from what is already read (no read,
    /// no move: the chunk the previous call returned stays valid too), else an empty optional and
    /// `next` returns it. The same chunks either way: only a cut inside the bytes at hand (or the
    /// input's end) is taken, and a chunker's first cut does not depend on what lies beyond it.
    /// Lets a caller hash two chunks at once. A look that finds no cut is not lost with a
    /// `resumable_chunker`: `next` goes on from where it ended.
    std::optional<byte_span> next_buffered() {
        if (pos_ == end_) return std::nullopt;
        byte_span avail(buf_ + pos_, end_ - pos_);
        std::size_t const n = look(avail);
        if (n == avail.size() && !eof_) return std::nullopt;
        take(n);
        return avail.first(n);
    }

private:
    // The chunker's cut in `avail` (the bytes from pos_ on); a look that ends without one is
    // remembered, so a resumable chunker starts the next look where this one ended.
    std::size_t look(byte_span avail) {
        std::size_t n;
        if constexpr (resumes) n = chunker_.cut(avail, scanned_);
        else n = chunker_.cut(avail);
        scanned_ = n;
        return n;
    }
    void take(std::size_t n) {
        pos_ += n, scanned_ = 0;
        if constexpr (resumes) window_ = std::min(initial_window, chunker_.max_size());
    }

    // Reads until `window_` bytes lie ahead of pos_ or the input ends, moving what is ahead to the
    // buffer's start first when the window would pass `limit` (the buffer holds 2·max).
    result<void> fill() {
        if (end_ - pos_ >= window_ || eof_) return {};
        std::size_t const limit = std::min(resumes ? std::max(2 * initial_window, window_ + read_step) : 2 * window_, 2 * chunker_.max_size());
        if (pos_ + window_ > limit) {
            std::memmove(buf_, buf_ + pos_, end_ - pos_);
            end_ -= pos_, pos_ = 0;
        }
        while (end_ - pos_ < window_ && !eof_) {
            auto n = read_(mutable_byte_span(buf_ + end_, std::max(pos_ + window_, std::min(end_ + read_step, limit)) - end_));
            if (!n) return std::move(n).error();
            if (*n == 0) eof_ = true;
            end_ += *n;
        }
        return {};
    }

    Chunker const& chunker_;
    Read read_;
    std::byte* buf_;  // the caller's scratch_bytes, 2 · max_size() bytes
    std::size_t pos_ = 0, end_ = 0;
    std::size_t scanned_ = 0;  // bytes from pos_ on that a look has passed without a cut
    std::size_t window_;
    bool eof_ = false;
};

}  // namespace stash::chunk
