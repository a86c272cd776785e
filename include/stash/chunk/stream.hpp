// Reads an input through any chunker and yields its chunks: the one place that buffers for chunkers.
#pragma once

#include <stash/concepts/chunker.hpp>
#include <stash/core/error.hpp>

#include <algorithm>
#include <cstring>
#include <optional>

namespace stash::chunk {

/** Yields the chunks of one input, reading it through `read` into a buffer of about twice the
    chunker's maximum size, so the chunker always sees a full candidate chunk.

    `Read` is callable as `read(mutable_byte_span) -> result<std::size_t>` (0 = end of input).
    `buffer` is reused across inputs by the caller to avoid reallocating per file.

    @par Example
    `chunk::stream s(rabin, read_fd, buf); while (auto c = s.next()) { if (!*c) break; use(**c); }`
*/
template <chunker Chunker, class Read>
class stream {
public:
    stream(Chunker const& c, Read read, bytes& buffer) : chunker_(c), read_(std::move(read)), buf_(buffer) {
        buf_.resize(std::max<std::size_t>(buf_.size(), 2 * c.max_size()));
    }

    /// The next chunk (valid until the following call), an empty optional at the end, or a read error.
    result<std::optional<byte_span>> next() {
        if (end_ - pos_ < chunker_.max_size() && !eof_) {
            std::memmove(buf_.data(), buf_.data() + pos_, end_ - pos_);
            end_ -= pos_, pos_ = 0;
            while (end_ < buf_.size() && !eof_) {
                auto n = read_(mutable_byte_span(buf_).subspan(end_));
                if (!n) return std::move(n).error();
                if (*n == 0) eof_ = true;
                end_ += *n;
            }
        }
        if (pos_ == end_) return std::optional<byte_span>{};
        byte_span avail(buf_.data() + pos_, end_ - pos_);
        std::size_t n = chunker_.cut(avail);
        pos_ += n;
        return std::optional<byte_span>{avail.first(n)};
    }

private:
    Chunker const& chunker_;
    Read read_;
    bytes& buf_;
    std::size_t pos_ = 0, end_ = 0;
    bool eof_ = false;
};

}  // namespace stash::chunk
