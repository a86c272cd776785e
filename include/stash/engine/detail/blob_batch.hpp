// Blobs opened into one buffer and their IDs checked together, for readers of many blobs (restore,
// check --read-data).
#pragma once

#include <stash/concepts/hasher.hpp>
#include <stash/core/bytes.hpp>
#include <stash/core/error.hpp>
#include <stash/crypto/sealer.hpp>
#include <stash/repo/index.hpp>

#include <cstddef>
#include <utility>
#include <vector>

namespace stash::engine::detail {

/** Opens sealed blobs (MAC, decryption, decompression: `Repo::open_blob`) back to back into a
    buffer and, once it is full or on `flush`, hashes them in one `digest_all` call: a
    `batch_hasher` (SHA-256 on sixteen AVX-512 lanes) checks many IDs at about twice the speed of
    one at a time. Each blob then reaches `done(tag, result<byte_span>)`: its plaintext (valid
    during the call), or the error that names it (MAC mismatch, bad frame, content that does not
    match its ID). A blob larger than the buffer is decoded alone at once. Call `flush` once the
    last blob is added: what the batch still holds is dropped with it.

    One object per thread; the buffer's pages stay with its `scratch_bytes`. */
template <class Repo, class Tag, class Done>
class blob_batch {
public:
    static constexpr std::size_t default_capacity = 4 << 20;

    blob_batch(Repo& repo, scratch_bytes& buf, Done done, std::size_t capacity = default_capacity)
        : repo_(repo), buf_(buf.get(capacity)), cap_(buf.size()), done_(std::move(done)) {}
    blob_batch(blob_batch const&) = delete;
    blob_batch& operator=(blob_batch const&) = delete;

    void add(repo::blob_location const& loc, byte_span sealed, Tag tag) {
        std::size_t const room = loc.entry.plaintext_length(crypto::restic_sealer::overhead) + 1;
        if (used_ + room > cap_) flush();
        if (room > cap_) return done_(std::move(tag), repo_.decode_blob(loc, sealed));
        auto text = repo_.open_blob(loc, sealed, buf_ + used_);
        if (!text) return done_(std::move(tag), result<byte_span>(std::move(text).error()));
        used_ += text->size();
        texts_.push_back(*text), locs_.push_back(loc), tags_.push_back(std::move(tag));
    }

    void flush() {
        if (texts_.empty()) return;
        ids_.resize(texts_.size());
        digest_all<typename Repo::hasher_type>(texts_, ids_);
        for (std::size_t k = 0; k < texts_.size(); ++k) {
            if (ids_[k] == locs_[k].entry.blob) done_(std::move(tags_[k]), result<byte_span>(texts_[k]));
            else done_(std::move(tags_[k]), result<byte_span>(Repo::blob_mismatch(locs_[k])));
        }
        texts_.clear(), locs_.clear(), tags_.clear();
        used_ = 0;
    }

private:
    Repo& repo_;
    std::byte* buf_;
    std::size_t cap_, used_ = 0;
    Done done_;
    std::vector<byte_span> texts_;
    std::vector<repo::blob_location> locs_;
    std::vector<Tag> tags_;
    std::vector<id> ids_;
};

}  // namespace stash::engine::detail
