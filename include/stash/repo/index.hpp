// The in-memory index: where each blob lives, loaded from and written to index files (restic-format.md §6).
#pragma once

#include <stash/core/json_writer.hpp>
#include <stash/repo/json.hpp>
#include <stash/repo/pack.hpp>

#include <mutex>
#include <shared_mutex>
#include <unordered_map>
#include <unordered_set>
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

/// Serializes index files' JSON (`{"supersedes":[…],"packs":[…]}`).
inline std::string index_json(std::vector<indexed_pack> const& packs, std::vector<id> const& supersedes = {}) {
    std::string s;
    s.reserve(packs.size() * 64 + 256);
    json_writer w(s);
    w.begin_object();
    if (!supersedes.empty()) {
        w.key("supersedes").begin_array();
        for (auto const& i : supersedes) w.value(i.str());
        w.end_array();
    }
    w.key("packs").begin_array();
    for (auto const& p : packs) {
        w.begin_object().field("id", p.pack.str()).key("blobs").begin_array();
        for (auto const& b : p.blobs) {
            w.begin_object()
                .field("id", b.blob.str())
                .field("type", to_string(b.type))
                .field("offset", b.offset)
                .field("length", b.length);
            if (b.uncompressed_length) w.field("uncompressed_length", b.uncompressed_length);
            w.end_object();
        }
        w.end_array().end_object();
    }
    w.end_array().end_object();
    return s;
}

/// Parses an index file's JSON (also the old bare-array format). Errors name the index and field.
inline result<std::vector<indexed_pack>> parse_index(std::string_view text, std::string const& what,
                                                     std::vector<id>* supersedes = nullptr) {
    auto v = parse_json(text, what);
    if (!v) return std::move(v).error();
    boost::json::array const* packs = nullptr;
    if (v->is_array()) {
        packs = &v->get_array();
    } else if (v->is_object()) {
        json_reader r(v->get_object(), what);
        if (supersedes) {
            auto sup = r.strings("supersedes");
            if (!sup) return std::move(sup).error();
            for (auto const& s : *sup) {
                auto i = id::parse(s);
                if (!i) return r.wrong("supersedes", "a list of IDs");
                supersedes->push_back(*i);
            }
        }
        auto const* p = r.find("packs");
        if (!p || !p->is_array()) return r.missing("packs");
        packs = &p->get_array();
    } else {
        return make_error(errc::corrupt, what + ": expected a JSON object");
    }
    std::vector<indexed_pack> out;
    out.reserve(packs->size());
    for (auto const& pv : *packs) {
        if (!pv.is_object()) return make_error(errc::corrupt, what + ": pack entry is not an object");
        json_reader pr(pv.get_object(), what);
        indexed_pack ip;
        auto pid = pr.id("id", true);
        if (!pid) return std::move(pid).error();
        ip.pack = *pid;
        auto const* blobs = pr.find("blobs");
        if (!blobs || !blobs->is_array()) return pr.missing("blobs");
        ip.blobs.reserve(blobs->get_array().size());
        for (auto const& bv : blobs->get_array()) {
            if (!bv.is_object()) return make_error(errc::corrupt, what + ": blob entry is not an object");
            json_reader br(bv.get_object(), what + " pack " + ip.pack.str());
            blob_entry e;
            auto bid = br.id("id", true);
            auto type = br.str("type", true);
            auto off = br.u64("offset", true), len = br.u64("length", true), ul = br.u64("uncompressed_length");
            if (!bid) return std::move(bid).error();
            if (!type) return std::move(type).error();
            if (!off) return std::move(off).error();
            if (!len) return std::move(len).error();
            if (!ul) return std::move(ul).error();
            if (*type != "data" && *type != "tree") return br.wrong("type", "\"data\" or \"tree\"");
            if (*off > 0xFFFFFFFFull || *len > 0xFFFFFFFFull || *ul > 0xFFFFFFFFull) return br.wrong("offset", "below 4 GiB");
            e.blob = *bid, e.type = *type == "tree" ? blob_type::tree : blob_type::data;
            e.offset = std::uint32_t(*off), e.length = std::uint32_t(*len), e.uncompressed_length = std::uint32_t(*ul);
            ip.blobs.push_back(e);
        }
        out.push_back(std::move(ip));
    }
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
    std::unordered_set<id, id_hash> sets_[2];
};

/** All blobs the repository knows: loaded index files plus packs written in this session.
    Thread-safe. A blob may live in several packs; the first one added wins lookups. */
class index {
public:
    void add(indexed_pack const& p) {
        std::unique_lock lk(mu_);
        for (auto const& b : p.blobs) map(b.type).try_emplace(b.blob, blob_location{p.pack, b});
        packs_.insert(p.pack);
    }

    std::optional<blob_location> find(id const& blob, blob_type t) const {
        std::shared_lock lk(mu_);
        auto it = map(t).find(blob);
        if (it == map(t).end()) return std::nullopt;
        return it->second;
    }
    bool has(id const& blob, blob_type t) const {
        std::shared_lock lk(mu_);
        return map(t).count(blob) != 0;
    }
    std::size_t size() const {
        std::shared_lock lk(mu_);
        return maps_[0].size() + maps_[1].size();
    }
    bool has_pack(id const& p) const {
        std::shared_lock lk(mu_);
        return packs_.count(p) != 0;
    }

    /// Calls fn(location) for every blob.
    template <class Fn>
    void for_each(Fn&& fn) const {
        std::shared_lock lk(mu_);
        for (auto const& m : maps_)
            for (auto const& [k, v] : m) fn(v);
    }

private:
    using blob_map = std::unordered_map<id, blob_location, id_hash>;
    // Data and tree blobs with equal content are distinct entries (restic keys on ID + type).
    blob_map& map(blob_type t) { return maps_[std::size_t(t)]; }
    blob_map const& map(blob_type t) const { return maps_[std::size_t(t)]; }

    mutable std::shared_mutex mu_;
    blob_map maps_[2];
    std::unordered_set<id, id_hash> packs_;
};

}  // namespace stash::repo
