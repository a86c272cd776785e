// copy: snapshots from one repository into another, with different keys and chunker parameters.
#pragma once

#include <stash/compress/zstd.hpp>
#include <stash/concepts/compressor.hpp>
#include <stash/engine/detail/blob_batch.hpp>
#include <stash/engine/detail/parallel.hpp>
#include <stash/engine/snapshots.hpp>
#include <stash/engine/walk.hpp>

#include <atomic>
#include <functional>
#include <map>
#include <mutex>
#include <thread>

namespace stash::engine {

struct copy_options {
    std::size_t pack_size = 16 * 1024 * 1024;  ///< target size of the destination's new packs, in bytes
    unsigned threads = 0;                       ///< 0 = hardware concurrency, at least 2
    /// Called per source snapshot: its ID, and the destination snapshot it was copied to or already
    /// has (`skipped`).
    std::function<void(id const& source, id const& dest, bool skipped)> on_snapshot;
};

struct copy_stats {
    std::uint64_t snapshots_copied = 0, snapshots_skipped = 0;
    std::uint64_t blobs_copied = 0, bytes_copied = 0;  ///< bytes: plaintext of the copied blobs
    std::uint64_t packs_written = 0;
};

/// Whether `a` is a copy of `b` as restic judges it: everything but `parent` and `original` equal,
/// paths and tags in any order.
inline bool similar_snapshots(repo::snapshot const& a, repo::snapshot const& b) {
    auto same_set = [](std::vector<std::string> x, std::vector<std::string> y) {
        std::sort(x.begin(), x.end()), std::sort(y.begin(), y.end());
        return x == y;
    };
    return a.time == b.time && a.tree == b.tree && a.hostname == b.hostname && a.username == b.username &&
           a.uid == b.uid && a.gid == b.gid && a.excludes == b.excludes && same_set(a.paths, b.paths) &&
           same_set(a.tags, b.tags);
}

/** Copies `snaps` (snapshots of `src`) into `dst`, as restic's `copy`: blobs are read from `src`
    (verified), re-encrypted with `dst`'s key and, when `dst` is v2, compressed (data blobs with
    `Compressor` when it is enabled, tree blobs always); blobs `dst` already has are not copied. Blob
    IDs do not depend on keys, so trees are copied byte for byte; files keep the chunk boundaries
    of `src` (no rechunking). Each copy records its source's ID in `original` and drops `parent`; a
    snapshot already copied (a destination snapshot with that `original`, or that ID, and similar
    fields) is skipped. Order: packs, then their index, then the snapshots, so an interrupted copy
    leaves `dst` valid.

    Loads both indexes. Callers hold a lock on each (shared is enough). Errors: a source tree or blob
    that cannot be read (named, with its pack), a destination write. */
template <compressor Compressor, class Src, class Dst>
result<copy_stats> copy_snapshots(Src& src, Dst& dst, std::vector<snapshot_entry> const& snaps, copy_options const& opt = {}) {
    copy_stats st;
    STASH_TRYV(src.load_index());
    STASH_TRYV(dst.load_index());

    // Snapshots the destination already has, by their persistent ID (`original`, else their own).
    auto existing = load_snapshots(dst);
    if (!existing) return std::move(existing).error();
    std::multimap<id, snapshot_entry const*> by_original;
    for (auto const& e : *existing) {
        by_original.emplace(e.sid, &e);
        if (e.snap.original) by_original.emplace(*e.snap.original, &e);
    }
    std::vector<snapshot_entry const*> todo;
    std::vector<id> roots;
    for (auto const& s : snaps) {
        id const persistent = s.snap.original ? *s.snap.original : s.sid;
        auto [lo, hi] = by_original.equal_range(persistent);
        auto const hit = std::find_if(lo, hi, [&](auto const& kv) { return similar_snapshots(kv.second->snap, s.snap); });
        if (hit != hi) {
            ++st.snapshots_skipped;
            if (opt.on_snapshot) opt.on_snapshot(s.sid, hit->second->sid, true);
            continue;
        }
        todo.push_back(&s);
        roots.push_back(s.snap.tree);
    }
    if (todo.empty()) return st;

    // The blobs the destination lacks.
    std::vector<std::pair<id, repo::blob_type>> need;
    repo::blob_set queued;
    std::mutex mu;
    auto want = [&](id const& b, repo::blob_type t) {
        if (!dst.index().has(b, t) && queued.insert(b, t)) need.emplace_back(b, t);
    };
    auto walked = walk_trees(src, roots, [&](id const& tree, std::vector<repo::node> const& nodes) {
        std::lock_guard lk(mu);
        want(tree, repo::blob_type::tree);
        for (auto const& n : nodes)
            for (auto const& b : n.content) want(b, repo::blob_type::data);
    }, opt.threads);
    if (!walked) return std::move(walked).error();

    // Copy them: read, verify, (re)compress, seal with the destination's key, pack. Workers take
    // groups of blobs, read each group sorted by pack and offset with few requests (read_sealed)
    // and check their IDs many at a time (blob_batch).
    std::vector<repo::blob_location> locs;
    locs.reserve(need.size());
    for (auto const& [bid, type] : need) {
        auto loc = src.index().find(bid, type);
        if (!loc) return make_error(errc::not_found, std::string(to_string(type)) + " blob " + bid.str() + " not found in index");
        locs.push_back(*loc);
    }
    constexpr std::size_t group = 256;
    detail::first_error failure;
    std::atomic<std::size_t> next{0};
    std::atomic<std::uint64_t> blobs{0}, bytes_in{0}, packs{0};
    auto fail = [&](error e) { failure.set(std::move(e)); };
    auto work = [&] {
        repo::pack_builder builders[2] = {repo::pack_builder(opt.pack_size + (1u << 20)), repo::pack_builder()};
        Compressor compressor;
        bytes packed, sealed;
        scratch_bytes plain_buf;
        auto flush = [&](repo::pack_builder& b) {
            if (b.empty() || failure.failed()) return;
            byte_span p = b.finish(dst.sealer());
            auto r = dst.save_pack(p, b.entries());
            b.reset();
            if (!r) return fail(r.error());
            ++packs;
        };
        auto store = [&](std::size_t i, result<byte_span> plain) {
            if (failure.failed()) return;
            if (!plain) return fail(plain.error());
            auto const type = locs[i].entry.type;
            std::uint32_t ulen = 0;
            byte_span payload = *plain;
            if (dst.compression() && !plain->empty() && (Compressor::enabled || type == repo::blob_type::tree)) {
                packed.clear();
                if constexpr (Compressor::enabled) {
                    if (type == repo::blob_type::data) compressor.compress(*plain, packed);
                    else compress::zstd_compress_frame(*plain, packed);
                } else {
                    compress::zstd_compress_frame(*plain, packed);
                }
                payload = packed;
                ulen = std::uint32_t(plain->size());
            }
            auto& b = builders[std::size_t(type)];
            b.add(locs[i].entry.blob, type, ulen, [&](bytes& out) { dst.sealer().seal(payload, out); });
            ++blobs, bytes_in += plain->size();
            if (b.size() >= opt.pack_size) flush(b);
        };
        detail::blob_batch<Src, std::size_t, decltype(store)> batch(src, plain_buf, store);
        for (std::size_t g; !failure.failed() && (g = next.fetch_add(group)) < locs.size();) {
            std::size_t const n = std::min(group, locs.size() - g);
            src.read_sealed(std::span(locs).subspan(g, n), [&](std::size_t k, byte_span box, error const* failed) {
                if (failure.failed()) return;
                if (failed) return fail(*failed);
                batch.add(locs[g + k], box, g + k);
            }, 1u << 20, 4u << 20, &sealed);
        }
        batch.flush();
        flush(builders[0]);
        flush(builders[1]);
    };
    detail::run_workers(opt.threads, need.size(), work);
    if (failure.get()) return *failure.get();
    STASH_TRYV(dst.flush_index());
    st.blobs_copied = blobs, st.bytes_copied = bytes_in, st.packs_written = packs;

    for (auto const* s : todo) {
        repo::snapshot copy = s->snap;
        copy.parent.reset();  // meaningless in the destination
        if (!copy.original) copy.original = s->sid;
        auto nid = dst.save_unpacked(file_type::snapshot, copy.to_json());
        if (!nid) return std::move(nid).error();
        ++st.snapshots_copied;
        if (opt.on_snapshot) opt.on_snapshot(s->sid, *nid, false);
    }
    return st;
}

}  // namespace stash::engine
