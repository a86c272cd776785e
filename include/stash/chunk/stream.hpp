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

    The chunker is shown a window of `window_` bytes ahead (or the rest of the input), 4 MiB at
    first: content-defined chunkers cut long before their maximum (restic's Rabin averages about
    1.4 MiB, and only ~3% of its chunks pass 4 MiB). When it finds no cut inside a shorter window,
    the window doubles, up to the maximum, and the chunker looks again. Data is moved back to the
    buffer's start once the window would pass twice its size, so a reader touches about 8 MiB of
    its buffer instead of 16 (restic's maximum chunk is 8 MiB), for a copy of about the bytes it
    consumes. The chunks are those the chunker cuts from the whole input: a cut is taken only when
    it lies inside the window or the window has reached the maximum or the end of input.

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
    static constexpr std::size_t initial_window = 4 << 20;

    stream(Chunker const& c, Read read, scratch_bytes& buffer)
        : chunker_(c), read_(std::move(read)), buf_(buffer.get(2 * c.max_size())), window_(std::min(initial_window, c.max_size())) {}

    /// The next chunk (valid until the following call), an empty optional at the end, or a read error.
    result<std::optional<byte_span>> next() {
        for (;;) {
            if (auto r = fill(); !r) return std::move(r).error();
            if (pos_ == end_) return std::optional<byte_span>{};
            byte_span avail(buf_ + pos_, end_ - pos_);
            std::size_t const n = chunker_.cut(avail);
            if (n == avail.size() && !eof_ && window_ < chunker_.max_size()) {
                window_ = std::min(2 * window_, chunker_.max_size());  // a cut may lie further on
                continue;
            }
            pos_ += n;
            return std::optional<byte_span>{avail.first(n)};
        }
    }

    /// The chunk after the last one, if the chunker cuts it from what is already read (no read,
    /// no move: the chunk the previous call returned stays valid too), else an empty optional and
    /// `next` returns it. The same chunks either way: only a cut inside the bytes at hand (or the
    /// input's end) is taken, and a chunker's first cut does not depend on what lies beyond it.
    /// Lets a caller hash two chunks at once. A look that finds no cut is done again by `next`
    /// (chunkers cannot resume): on `linux`'s large files 26 MB more rolled by Rabin, of 353.
    std::optional<byte_span> next_buffered() {
        if (pos_ == end_) return std::nullopt;
        byte_span avail(buf_ + pos_, end_ - pos_);
        std::size_t const n = chunker_.cut(avail);
        if (n == avail.size() && !eof_) return std::nullopt;
        pos_ += n;
        return avail.first(n);
    }

private:
    // Reads until `window_` bytes lie ahead of pos_ or the input ends, moving what is ahead to the
    // buffer's start first when the window would pass 2·window_ (the buffer holds 2·max).
    result<void> fill() {
        if (end_ - pos_ >= window_ || eof_) return {};
        std::size_t const limit = std::min(2 * window_, 2 * chunker_.max_size());
        if (pos_ + window_ > limit) {
            std::memmove(buf_, buf_ + pos_, end_ - pos_);
            end_ -= pos_, pos_ = 0;
        }
        while (end_ - pos_ < window_ && !eof_) {
            auto n = read_(mutable_byte_span(buf_ + end_, std::max(pos_ + window_, std::min(end_ + (1 << 20), limit)) - end_));
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
    std::size_t window_;
    bool eof_ = false;
};

}  // namespace stash::chunk
