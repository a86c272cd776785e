// check: is the repository consistent, and (with read_data) does every stored byte verify?
#pragma once

#include <stash/engine/detail/blob_batch.hpp>
#include <stash/engine/snapshots.hpp>
#include <stash/engine/walk.hpp>

#include <atomic>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <unordered_map>

namespace stash::engine {

struct check_options {
    /// Read and verify packs: none, all, or the subset chosen by `subset_n`/`subset_m` (packs whose
    /// first ID byte mod M equals N−1, as restic's --read-data-subset N/M) or `subset_percent`
    /// (packs whose first two ID bytes fall below P% of their range: deterministic, so repeated runs
    /// with 1/N-sized steps are easy to reason about; restic picks P% at random).
    bool read_data = false;
    unsigned subset_n = 0, subset_m = 0;
    double subset_percent = 0;
    unsigned threads = 0;
    /// Called for each problem found, naming the object ("pack 3f2a…: …"). Thread-safe calls.
    std::function<void(std::string const&)> on_error;
    /// Called for hints that are not errors (unreferenced packs, as restic reports them).
    std::function<void(std::string const&)> on_hint;
};

struct check_summary {
    std::uint64_t errors = 0, hints = 0, packs = 0, packs_read = 0, snapshots = 0, trees = 0, blobs_read = 0;
};

/** Checks the repository as restic 0.14 does (restic-format.md §4.4, §7.5):
    index files load; every indexed pack exists with the size its index entries imply, entries are
    contiguous from offset 0; snapshots load; every tree reachable from a snapshot loads, its files'
    blobs are indexed data blobs and its directories have subtrees. With `read_data`, each selected
    pack is read whole: its SHA-256 equals its name, its header matches the index exactly, and every
    blob decrypts, decompresses and hashes to its ID. Problems are reported, not returned: the result
    is an error only when the repository cannot be read at all. */
template <class Repo>
result<check_summary> check(Repo& repo, check_options const& opt) {
    using hasher = typename Repo::hasher_type;
    check_summary sum;
    std::mutex mu;
    auto error = [&](std::string const& m) {
        std::lock_guard lk(mu);
        ++sum.errors;
        if (opt.on_error) opt.on_error(m);
    };
    auto hint = [&](std::string const& m) {
        std::lock_guard lk(mu);
        ++sum.hints;
        if (opt.on_hint) opt.on_hint(m);
    };

    // Index files, one by one so each failure names its file.
    auto index_ids = repo.list(file_type::index);
    if (!index_ids) return std::move(index_ids).error();
    std::map<id, std::vector<repo::blob_entry>> by_pack;
    for (auto const& iid : *index_ids) {
        auto text = repo.load_unpacked(file_type::index, iid);
        auto packs = text ? repo::parse_index(*text, "index " + iid.str()) : result<std::vector<repo::indexed_pack>>(text.error());
        if (!packs) {
            error(packs.error().what());
            continue;
        }
        for (auto& p : *packs) {
            repo.index().add(p);
            auto& v = by_pack[p.pack];
            v.insert(v.end(), p.blobs.begin(), p.blobs.end());
        }
    }

    // Packs: existence, size, and contiguity of their index entries.
    std::map<id, std::uint64_t> on_disk;
    STASH_TRYV(repo.backend().list(file_type::pack, [&](std::string_view n, std::uint64_t size) {
        if (auto i = id::parse(n)) on_disk[*i] = size;
    }));
    for (auto& [pid, blobs] : by_pack) {
        std::sort(blobs.begin(), blobs.end(), [](auto const& a, auto const& b) { return a.offset < b.offset; });
        blobs.erase(std::unique(blobs.begin(), blobs.end()), blobs.end());
        ++sum.packs;
        std::uint64_t expect = 0, header = 32 + 4;
        bool contiguous = true;
        for (auto const& b : blobs) {
            if (b.offset != expect) contiguous = false;
            expect = std::uint64_t(b.offset) + b.length;
            header += b.uncompressed_length ? repo::entry_size_compressed : repo::entry_size_plain;
        }
        auto it = on_disk.find(pid);
        if (it == on_disk.end()) {
            error("pack " + pid.str() + ": does not exist (it is listed in the index)");
            continue;
        }
        if (!contiguous) error("pack " + pid.str() + ": index entries have gaps or overlap");
        if (it->second != expect + header)
            error("pack " + pid.str() + ": unexpected file size " + std::to_string(it->second) + ", the index implies " +
                  std::to_string(expect + header) + " (an index entry points past the end of the pack or the pack is truncated)");
    }
    for (auto const& [pid, size] : on_disk)
        if (!by_pack.count(pid)) hint("pack " + pid.str() + ": not referenced in any index (non-critical)");

    // Snapshots and the trees reachable from them, a level at a time (walk_trees). A tree's
    // problems are named by where it was first reached from.
    auto snap_ids = repo.list(file_type::snapshot);
    if (!snap_ids) return std::move(snap_ids).error();
    std::vector<id> roots;
    std::unordered_map<id, std::string, id_hash> reached_from;
    for (auto const& sid : *snap_ids) {
        auto s = repo.load_snapshot(sid);
        if (!s) {
            error(s.error().what());
            continue;
        }
        ++sum.snapshots;
        roots.push_back(s->tree);
        reached_from.try_emplace(s->tree, "snapshot " + sid.str());
    }
    std::atomic<std::uint64_t> trees{0};
    auto visit = [&](id const& tid, std::vector<repo::node> const& nodes) {
        ++trees;
        std::vector<std::pair<id, std::string>> below;
        for (auto const& n : nodes) {
            std::string const at = "tree " + tid.str() + ", node \"" + n.name + "\"";
            if (n.name.empty()) error("tree " + tid.str() + ": node with an empty name");
            if (n.type == repo::node_type::file) {
                for (auto const& b : n.content)
                    if (!repo.index().has(b, repo::blob_type::data)) error(at + ": data blob " + b.str() + " not found in index");
            } else if (n.type == repo::node_type::dir) {
                if (!n.subtree || n.subtree->is_null()) error(at + ": directory has no subtree");
                else below.emplace_back(*n.subtree, at);
            }
        }
        std::lock_guard lk(mu);
        reached_from.erase(tid);  // needed only until the tree loads: the map holds a level, not the repository
        for (auto& [sub, at] : below) reached_from.try_emplace(sub, std::move(at));
    };
    auto failed = [&](id const& tid, stash::error const& e) {
        std::string where;
        {
            std::lock_guard lk(mu);
            where = reached_from[tid];
        }
        ++trees;
        error(where + ": " + e.what());
    };
    STASH_TRYV(walk_trees(repo, std::move(roots), visit, opt.threads, failed));
    sum.trees = trees;

    // Read data: whole packs, in parallel.
    if (opt.read_data) {
        std::vector<id> selected;
        for (auto const& [pid, size] : on_disk) {
            if (!by_pack.count(pid)) continue;
            unsigned const first = std::to_integer<unsigned>(pid.bytes[0]);
            if (opt.subset_m && first % opt.subset_m != opt.subset_n - 1) continue;
            if (opt.subset_percent > 0 && double(first * 256 + std::to_integer<unsigned>(pid.bytes[1])) >= opt.subset_percent / 100 * 65536)
                continue;
            selected.push_back(pid);
        }
        std::atomic<std::size_t> next{0};
        std::atomic<std::uint64_t> blobs_read{0};
        auto work = [&] {
            bytes pack;
            scratch_bytes plain;
            // Blob IDs are checked many at a time (blob_batch: digest_all); the batch holds copies of
            // plaintext, so it runs on across packs and is flushed once the worker's packs are read.
            auto opened = [&](int, result<byte_span> text) {
                if (!text) error(text.error().what());
                ++blobs_read;
            };
            detail::blob_batch<Repo, int, decltype(opened)> batch(repo, plain, opened);
            for (std::size_t i; (i = next++) < selected.size();) {
                id const& pid = selected[i];
                std::string const name = "pack " + pid.str();
                if (auto r = repo.backend().get({file_type::pack, pid.str()}, 0, 0, pack); !r) {
                    error(name + ": " + r.error().what());
                    continue;
                }
                if (hasher::digest(pack) != pid) error(name + ": content does not match its ID");
                // The header, against the index.
                if (pack.size() < 4 + 32) {
                    error(name + ": too short to hold a header");
                    continue;
                }
                std::uint32_t const hlen = get_u32le(pack.data() + pack.size() - 4);
                bytes header;
                if (hlen < 32 || hlen > pack.size() - 4 ||
                    !repo.sealer().open(byte_span(pack).subspan(pack.size() - 4 - hlen, hlen), header)) {
                    error(name + ": header cannot be decrypted");
                } else if (auto entries = repo::decode_header(header, name); !entries) {
                    error(entries.error().what());
                } else if (*entries != by_pack.at(pid)) {
                    error(name + ": header does not match the index (blobs not contained in index or at another position)");
                }
                for (auto const& b : by_pack.at(pid)) {
                    if (std::uint64_t(b.offset) + b.length > pack.size()) continue;  // reported as a size mismatch
                    batch.add({pid, b}, byte_span(pack).subspan(b.offset, b.length), 0);
                }
            }
            batch.flush();
        };
        unsigned const n = opt.threads ? opt.threads : std::max(2u, std::thread::hardware_concurrency());
        std::vector<std::jthread> pool;
        for (unsigned t = 1; t < n; ++t) pool.emplace_back(work);
        work();
        pool.clear();
        sum.packs_read = selected.size();
        sum.blobs_read = blobs_read;
    }
    return sum;
}

}  // namespace stash::engine
