// The in-memory index: where each blob lives, loaded from and written to index files (restic-format.md §6).
#pragma once

#include <stash/core/hex.hpp>
#include <stash/core/id.hpp>
#include <stash/core/json_writer.hpp>
#include <stash/repo/detail/json_events.hpp>
#include <stash/repo/pack.hpp>

#include <algorithm>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace stash::repo {

/// Where one blob is stored.
struct blob_location {
    id pack;
    blob_entry entry;
};

/// A pack and its blobs, as an index file lists them.
struct indexed_pack {
    id pack;
    std::vector<blob_entry> blobs;
};

/// Blobs per index file (one is written once a pack takes its count to this) in what backup, prune
/// and rebuild-index write. Below restic's limits (50,000; 150,000 in compressed repositories), so
/// that a mid-sized repository's index is several files, which load in parallel: the index of
/// `linux` in two files instead of one loads ~20 ms faster on two cores, and an unchanged backup
/// of it takes 380 ms instead of 398. Readers take any size.
inline constexpr std::size_t index_file_blobs = 40'000;

/// Writes the index file JSON of `packs` (`{"supersedes":[…],"packs":[…]}`, restic-format.md §6)
/// in pieces: `sink(std::string_view)` is called whenever about `piece` bytes have gathered
/// (between packs), and once at the end, so a large index never sits whole in memory.
template <class Sink>
void write_index_json(std::vector<indexed_pack> const& packs, std::vector<id> const& supersedes, Sink&& sink,
                      std::size_t piece = 1 << 20) {
    std::string s;
    s.reserve(std::min<std::size_t>(piece, packs.size() * 4096) + 4096);
    json_writer w(s);
    w.begin_object();
    if (!supersedes.empty()) {
        w.key("supersedes").begin_array();
        for (auto const& i : supersedes) w.hex(i.bytes);
        w.end_array();
    }
    w.key("packs").begin_array();
    for (auto const& p : packs) {
        w.begin_object().key("id").hex(p.pack.bytes).key("blobs").begin_array();
        for (auto const& b : p.blobs) {
            w.begin_object()
                .key("id").hex(b.blob.bytes)
                .field("type", to_string(b.type))
                .field("offset", b.offset)
                .field("length", b.length);
            if (b.uncompressed_length) w.field("uncompressed_length", b.uncompressed_length);
            w.end_object();
        }
        w.end_array().end_object();
        if (s.size() >= piece) sink(std::string_view(s)), s.clear();  // (the writer keeps its place)
    }
    w.end_array().end_object();
    sink(std::string_view(s));
}

/// The index file JSON of `packs` as one string.
inline std::string index_json(std::vector<indexed_pack> const& packs, std::vector<id> const& supersedes = {}) {
    std::string out;
    write_index_json(packs, supersedes, [&out](std::string_view piece) { out += piece; });
    return out;
}

namespace detail {

// Reads index JSON as it streams by (see read_json_events), handing out each pack when it ends.
template <class OnPack>
struct index_visitor : json_visitor_base {
    enum role { other, top, packs, supersedes, pack, blobs, blob };
    // Its strings are hex IDs and "data" or "tree"; others are skipped (see json_event_parser).
    static constexpr bool checks_its_strings = true;

    OnPack& on_pack;
    std::vector<id>* superseded;
    std::vector<role> stack;
    bool saw_packs = false, saw_id = false, saw_blobs = false;
    unsigned blob_fields = 0;  // bits: id, type, offset, length
    indexed_pack cur;
    blob_entry b;

    std::string in_pack() const { return saw_id ? " of pack " + cur.pack.str() : std::string(); }

    bool begin(bool object, std::string_view key) {
        role const parent = stack.empty() ? other : stack.back();
        role r = other;
        if (stack.empty()) {
            r = object ? top : packs;  // the old format is a bare array of packs
            saw_packs = !object;
        } else if (parent == top && key == "packs") {
            if (object) return wrong(key, "an array");
            r = packs, saw_packs = true;
        } else if (parent == top && key == "supersedes") {
            if (object) return wrong(key, "an array of strings");
            r = supersedes;
        } else if (parent == packs) {
            if (!object) return fail("pack entry is not an object");
            r = pack, cur.pack = id{}, cur.blobs.clear(), saw_id = saw_blobs = false;
        } else if (parent == pack && key == "blobs") {
            if (object) return fail("field \"blobs\"" + in_pack() + " must be an array");
            r = blobs, saw_blobs = true;
        } else if (parent == blobs) {
            if (!object) return fail("blob entry" + in_pack() + " is not an object");
            r = blob, b = blob_entry{}, blob_fields = 0;
        } else if (parent == pack && key == "id") {
            return wrong(key, "a 64-digit hex ID");
        } else if (parent == blob && (key == "id" || key == "type" || key == "offset" || key == "length" || key == "uncompressed_length")) {
            return wrong(key, "a scalar");
        }
        stack.push_back(r);
        return true;
    }

    bool end(bool) {
        role const r = stack.back();
        stack.pop_back();
        switch (r) {
            case top:
                if (!saw_packs) return fail("field \"packs\" is missing");
                return true;
            case blob: {
                static constexpr char const* names[] = {"id", "type", "offset", "length"};
                for (unsigned i = 0; i < 4; ++i)
                    if (!(blob_fields & 1u << i)) return fail("field \"" + std::string(names[i]) + "\"" + in_pack() + " is missing");
                cur.blobs.push_back(b);
                return true;
            }
            case pack: {
                if (!saw_id) return fail("field \"id\" is missing");
                if (!saw_blobs) return fail("field \"blobs\"" + in_pack() + " is missing");
                if (auto e = on_pack(std::move(cur)); !e) {
                    failure = std::move(e).error();
                    return false;
                }
                return true;
            }
            default: return true;
        }
    }

    static std::optional<std::uint32_t> u32(json_scalar const& v) {
        if (v.kind != json_scalar::number || !v.u64 || *v.u64 > 0xFFFFFFFFull) return std::nullopt;
        return std::uint32_t(*v.u64);
    }

    bool scalar(std::string_view key, json_scalar const& v) {
        role const r = stack.empty() ? other : stack.back();
        bool const null = v.kind == json_scalar::null;
        switch (r) {
            case top:
                if (key == "packs" && !null) return wrong(key, "an array");
                if (key == "supersedes" && !null) return wrong(key, "an array of strings");
                return true;
            case supersedes: {
                id i;
                if (v.kind != json_scalar::string || !from_hex(v.str, i.bytes)) return wrong("supersedes", "a list of IDs");
                if (superseded) superseded->push_back(i);
                return true;
            }
            case packs: return fail("pack entry is not an object");
            case blobs: return fail("blob entry" + in_pack() + " is not an object");
            case pack:
                if (key == "id" && !null) {
                    if (v.kind != json_scalar::string || !from_hex(v.str, cur.pack.bytes)) return wrong(key, "a 64-digit hex ID");
                    saw_id = true;
                } else if (key == "blobs" && !null) {
                    return fail("field \"blobs\"" + in_pack() + " must be an array");
                }
                return true;
            case blob:
                if (null) return true;
                if (key == "id") {
                    if (v.kind != json_scalar::string || !from_hex(v.str, b.blob.bytes)) return wrong(key, "a 64-digit hex ID");
                    blob_fields |= 1;
                } else if (key == "type") {
                    if (v.kind == json_scalar::string && v.str == "data") b.type = blob_type::data;
                    else if (v.kind == json_scalar::string && v.str == "tree") b.type = blob_type::tree;
                    else return wrong(key, "\"data\" or \"tree\"");
                    blob_fields |= 2;
                } else if (key == "offset" || key == "length" || key == "uncompressed_length") {
                    auto n = u32(v);
                    if (!n) return wrong(key, "an integer from 0 to 2^32-1");
                    if (key == "offset") b.offset = *n, blob_fields |= 4;
                    else if (key == "length") b.length = *n, blob_fields |= 8;
                    else b.uncompressed_length = *n;
                }
                return true;
            default: return true;
        }
    }
};

}  // namespace detail

/** Reads an index file's JSON (also the old bare-array format) and calls `on_pack(indexed_pack&&)`,
    which returns result<void>, for each pack as it is read: no whole-file structure is built. IDs
    superseded by this index go to `supersedes` when given. Errors name the index (`what`) and the
    field, or are those of `on_pack`. `feed` the text in pieces of any size, then `finish`. */
template <class OnPack>
class index_reader {
public:
    index_reader(std::string what, OnPack on_pack, std::vector<id>* supersedes = nullptr)
        : what_(std::move(what)), on_pack_(std::move(on_pack)), r_{{what_, {}}, on_pack_, supersedes}, p_(r_, what_) {}
    index_reader(index_reader const&) = delete;

    result<void> feed(std::string_view part) { return p_.feed(part); }
    result<void> finish() { return p_.finish(); }

private:
    std::string what_;
    OnPack on_pack_;
    detail::index_visitor<OnPack> r_;
    detail::json_event_parser<detail::index_visitor<OnPack>> p_;
};

/// Reads a whole index file's JSON (see index_reader).
template <class OnPack>
result<void> read_index(std::string_view text, std::string const& what, OnPack&& on_pack, std::vector<id>* supersedes = nullptr) {
    index_reader<std::decay_t<OnPack>> r(what, std::forward<OnPack>(on_pack), supersedes);
    STASH_TRYV(r.feed(text));
    return r.finish();
}

/// Parses an index file's JSON into its packs (see read_index).
inline result<std::vector<indexed_pack>> parse_index(std::string_view text, std::string const& what,
                                                     std::vector<id>* supersedes = nullptr) {
    std::vector<indexed_pack> out;
    auto r = read_index(
        text, what,
        [&](indexed_pack&& p) -> result<void> {
            out.push_back(std::move(p));
            return {};
        },
        supersedes);
    if (!r) return std::move(r).error();
    return out;
}

/// A set of blobs keyed by ID and type (data and tree blobs with equal IDs are distinct). Not thread-safe.
class blob_set {
public:
    bool insert(id const& b, blob_type t) { return sets_[std::size_t(t)].insert(b).second; }
    bool erase(id const& b, blob_type t) { return sets_[std::size_t(t)].erase(b) != 0; }
    bool contains(id const& b, blob_type t) const { return sets_[std::size_t(t)].count(b) != 0; }
    std::size_t size() const noexcept { return sets_[0].size() + sets_[1].size(); }
    bool empty() const noexcept { return size() == 0; }
    /// Calls fn(id, blob_type) for each member.
    template <class Fn>
    void for_each(Fn&& fn) const {
        for (std::size_t t = 0; t < 2; ++t)
            for (auto const& b : sets_[t]) fn(b, blob_type(t));
    }

private:
    id_set sets_[2];
};

/** All blobs the repository knows: loaded index files plus packs written in this session.
    Thread-safe. A blob may live in several packs; the first one added wins lookups.

    Laid out flat, as a backup looks up every unchanged file's blobs and a repository holds millions:
    entries (52 bytes: ID, type, pack number, offset, lengths) in one array, found through an
    open-addressing table of 4-byte entry numbers (linear probing, at most half full) keyed by the
    ID's first 8 bytes, which SHA-256 makes uniform. No allocation per blob, and a lookup touches the
    small table and one entry. */
class index {
public:
    void add(indexed_pack const& p) {
        std::unique_lock lk(mu_);
        auto [it, fresh] = pack_numbers_.try_emplace(p.pack, std::uint32_t(packs_.size()));
        if (fresh) packs_.push_back(p.pack);
        std::uint32_t const pack = it->second;
        if (entries_.size() + p.blobs.size() > entries_.capacity())
            entries_.reserve(std::max(entries_.size() + p.blobs.size(), entries_.capacity() * 2));
        for (auto const& b : p.blobs) {
            if (2 * (entries_.size() + 1) > slots_.size()) grow();
            std::size_t s = probe(b.blob, b.type);
            if (slots_[s]) continue;  // known: the first pack wins
            entries_.push_back({b, pack});
            slots_[s] = std::uint32_t(entries_.size());
        }
    }

    std::optional<blob_location> find(id const& blob, blob_type t) const {
        std::shared_lock lk(mu_);
        if (slots_.empty()) return std::nullopt;
        std::uint32_t const e = slots_[probe(blob, t)];
        if (!e) return std::nullopt;
        return location(entries_[e - 1]);
    }
    bool has(id const& blob, blob_type t) const {
        std::shared_lock lk(mu_);
        return !slots_.empty() && slots_[probe(blob, t)] != 0;
    }
    std::size_t size() const {
        std::shared_lock lk(mu_);
        return entries_.size();
    }
    bool has_pack(id const& p) const {
        std::shared_lock lk(mu_);
        return pack_numbers_.count(p) != 0;
    }

    /// Calls fn(location) for every blob, in the order added.
    template <class Fn>
    void for_each(Fn&& fn) const {
        std::shared_lock lk(mu_);
        for (auto const& e : entries_) fn(location(e));
    }

private:
    struct entry {
        blob_entry blob;
        std::uint32_t pack;
    };

    blob_location location(entry const& e) const { return {packs_[e.pack], e.blob}; }

    // The slot holding (blob, t), or the empty slot where it would go.
    std::size_t probe(id const& blob, blob_type t) const {
        std::size_t const mask = slots_.size() - 1;
        for (std::size_t s = id_hash{}(blob) & mask;; s = (s + 1) & mask) {
            std::uint32_t const e = slots_[s];
            if (!e || (entries_[e - 1].blob.blob == blob && entries_[e - 1].blob.type == t)) return s;
        }
    }

    void grow() {
        std::vector<std::uint32_t> old = std::exchange(slots_, std::vector<std::uint32_t>(std::max<std::size_t>(1024, slots_.size() * 2)));
        std::size_t const mask = slots_.size() - 1;
        for (std::uint32_t e : old) {
            if (!e) continue;
            std::size_t s = id_hash{}(entries_[e - 1].blob.blob) & mask;
            while (slots_[s]) s = (s + 1) & mask;
            slots_[s] = e;
        }
    }

    mutable std::shared_mutex mu_;
    std::vector<entry> entries_;
    std::vector<std::uint32_t> slots_;  // entry number + 1; 0 = empty; size a power of two
    std::vector<id> packs_;
    std::unordered_map<id, std::uint32_t, id_hash> pack_numbers_;
};

}  // namespace stash::repo
