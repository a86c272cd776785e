// Fixed-size chunking: the baseline every content-defined chunker is compared against.
#pragma once

#include <stash/concepts/chunker.hpp>

#include <algorithm>

namespace stash::policies::chunk {

/** Cuts every `size` bytes. Fastest, but one inserted byte shifts every following chunk.

    @par Concepts
    `stash::chunker`.
*/
class fixed {
public:
    explicit fixed(std::size_t size = 1024 * 1024) : size_(size) {}
    std::size_t min_size() const noexcept { return size_; }
    std::size_t max_size() const noexcept { return size_; }
    std::size_t cut(byte_span s) const noexcept { return std::min(s.size(), size_); }

private:
    std::size_t size_;
};
static_assert(stash::chunker<fixed>);

}  // namespace stash::policies::chunk
