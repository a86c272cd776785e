// Pack files: sealed blobs followed by a sealed header and its length (restic-format.md §4).
#pragma once

#include <stash/concepts/sealer.hpp>
#include <stash/core/error.hpp>
#include <stash/core/id.hpp>

#include <algorithm>
#include <cstdint>
#include <vector>

namespace stash::repo {

enum class blob_type : std::uint8_t { data = 0, tree = 1 };

inline char const* to_string(blob_type t) noexcept { return t == blob_type::tree ? "tree" : "data"; }

/// One blob's place in a pack, as the header and the index describe it.
struct blob_entry {
    id blob;
    blob_type type = blob_type::data;
    std::uint32_t offset = 0;               ///< of the sealed blob within the pack
    std::uint32_t length = 0;               ///< of the sealed blob (stored size + 32)
    std::uint32_t uncompressed_length = 0;  ///< plaintext size for compressed blobs, 0 otherwise

    /// The plaintext size, for a sealer adding `overhead` bytes (restic: 32). Pre: `length >= overhead`.
    std::uint64_t plaintext_length(std::size_t overhead) const noexcept {
        return uncompressed_length ? uncompressed_length : length - overhead;
    }

    friend bool operator==(blob_entry const&, blob_entry const&) = default;
};

inline constexpr std::size_t entry_size_plain = 37, entry_size_compressed = 41;
inline constexpr std::size_t max_header_size = 16 * 1024 * 1024;

/// Encodes the plaintext header entries in on-disk order (type byte 0–3, restic-format.md §4.1).
inline bytes encode_header(std::vector<blob_entry> const& entries) {
    bytes h;
    h.reserve(entries.size() * entry_size_compressed);
    for (auto const& e : entries) {
        bool const compressed = e.uncompressed_length != 0;
        std::byte b[41];
        b[0] = std::byte(std::uint8_t(e.type) | (compressed ? 2 : 0));
        put_u32le(b + 1, e.length);
        std::size_t n = 5;
        if (compressed) put_u32le(b + 5, e.uncompressed_length), n = 9;
        std::copy(e.blob.bytes.begin(), e.blob.bytes.end(), b + n);
        h.insert(h.end(), b, b + n + 32);
    }
    return h;
}

/// Decodes plaintext header entries, assigning offsets in order. Errors: `errc::corrupt`.
inline result<std::vector<blob_entry>> decode_header(byte_span h, std::string const& what) {
    std::vector<blob_entry> out;
    std::uint64_t offset = 0;
    for (std::size_t p = 0; p < h.size();) {
        auto t = std::to_integer<unsigned>(h[p]);
        if (t > 3) return make_error(errc::corrupt, what + ": invalid blob type " + std::to_string(t) + " in header");
        std::size_t const need = t >= 2 ? entry_size_compressed : entry_size_plain;
        if (p + need > h.size()) return make_error(errc::corrupt, what + ": truncated header entry");
        blob_entry e;
        e.type = blob_type(t & 1);
        e.length = get_u32le(h.data() + p + 1);
        std::size_t idp = p + 5;
        if (t >= 2) e.uncompressed_length = get_u32le(h.data() + p + 5), idp = p + 9;
        std::copy_n(h.data() + idp, 32, e.blob.bytes.begin());
        if (offset + e.length > 0xFFFFFFFFull) return make_error(errc::corrupt, what + ": pack larger than 4 GiB");
        e.offset = std::uint32_t(offset);
        offset += e.length;
        out.push_back(e);
        p += need;
    }
    return out;
}

/** Accumulates sealed blobs of one type into a pack buffer that is reused from pack to pack (its
    capacity is reserved once, so a worker's memory stays flat). `finish` appends the sealed header
    and its length and returns the complete pack; `reset` empties it for the next one.

    A pack can also leave in pieces: `drain` hands the bytes gathered so far to a sink (a staged
    file, see `repository::begin_pack_stream`) and empties the buffer while offsets go on, so the
    buffer holds only what was added since; `finish` then returns the pack's remaining tail. Not
    thread-safe. */
class pack_builder {
public:
    explicit pack_builder(std::size_t reserve = 0) { data_.reserve(reserve); }

    /// Appends a blob by letting `write(bytes&)` append its sealed form to the pack buffer (so the
    /// sealer writes in place, without a copy).
    template <class Write>
    void add(id const& blob, blob_type t, std::uint32_t uncompressed_length, Write&& write) {
        std::size_t const before = data_.size();
        write(data_);
        entries_.push_back({blob, t, std::uint32_t(drained_ + before), std::uint32_t(data_.size() - before), uncompressed_length});
    }
    /// Appends an already sealed blob.
    void add(id const& blob, blob_type t, byte_span sealed, std::uint32_t uncompressed_length) {
        add(blob, t, uncompressed_length, [&](bytes& out) { out.insert(out.end(), sealed.begin(), sealed.end()); });
    }
    /// Bytes of the pack so far, drained or not.
    std::size_t size() const noexcept { return drained_ + data_.size(); }
    /// Bytes in the buffer, not drained yet.
    std::size_t buffered() const noexcept { return data_.size(); }
    bool empty() const noexcept { return entries_.empty(); }

    /// Hands the buffered bytes to `sink(byte_span) -> result<void>` and empties the buffer.
    template <class Sink>
    result<void> drain(Sink&& sink) {
        auto r = sink(byte_span(data_));
        drained_ += data_.size();
        data_.clear();
        return r;
    }

    /// Seals the header and returns the pack's bytes not drained yet, ending with the header and
    /// its length (the whole pack when nothing was drained; valid until `reset`).
    template <sealer Sealer>
    byte_span finish(Sealer const& s) {
        auto const before = data_.size();
        s.seal(encode_header(entries_), data_);
        std::uint32_t const hlen = std::uint32_t(data_.size() - before);
        data_.resize(data_.size() + 4);
        put_u32le(data_.data() + data_.size() - 4, hlen);
        return data_;
    }
    /// The blobs added, with their places in the pack.
    std::vector<blob_entry> const& entries() const noexcept { return entries_; }
    /// Empties the builder after its pack was saved (the span from `finish` ends here), keeping its buffer.
    void reset() {
        data_.clear();
        entries_.clear();
        drained_ = 0;
    }
    /// Hands the buffer's whole pages past `keep` bytes (and past what it holds) back to the system
    /// while keeping the capacity reserved, so a builder holds only what its next pack fills (several
    /// builders filling at once then do not each keep a full pack's pages resident).
    void release_pages(std::size_t keep = 0) {
        std::size_t const from = std::min(std::max(keep, data_.size()), data_.capacity());
        stash::release_pages(data_.data() + from, data_.data() + data_.capacity());
    }

private:
    bytes data_;
    std::vector<blob_entry> entries_;
    std::uint64_t drained_ = 0;
};

}  // namespace stash::repo
