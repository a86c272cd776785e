// The identity compressor: blobs are stored as uncompressed types (repository v1, or v2 without compression).
#pragma once

#include <stash/concepts/compressor.hpp>

namespace stash::policies::compress {

/** Stores blobs as they are.

    @par Concepts
    `stash::compressor`.
*/
struct none {
    static constexpr bool enabled = false;
    void compress(byte_span in, bytes& out) { out.insert(out.end(), in.begin(), in.end()); }
    result<void> decompress(byte_span in, std::size_t, bytes& out) {
        out.insert(out.end(), in.begin(), in.end());
        return {};
    }
};
static_assert(stash::compressor<none>);

}  // namespace stash::policies::compress
