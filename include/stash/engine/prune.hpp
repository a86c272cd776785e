// prune: remove what no snapshot references, repacking partly used packs (restic-format.md §12.3).
#pragma once

#include <stash/compress/zstd.hpp>
#include <stash/engine/detail/parallel.hpp>
#include <stash/engine/index_files.hpp>
#include <stash/engine/walk.hpp>

#include <atomic>
#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <mutex>
#include <set>
#include <thread>

namespace stash::engine {

/// How much unused space prune may leave behind (restic's `--max-unused`).
struct max_unused {
    enum class kind { percent, bytes, unlimited };
    kind k = kind::percent;
    double percent = 5;       ///< of the repository's size after prune, 0 ≤ p < 100
    std::uint64_t bytes = 0;  ///< absolute limit

    /// Parses "5%", a size ("200M", "1.5G", "4096"; K/M/G/T are powers of 1024) or "unlimited".
    /// Errors: `errc::invalid_argument` naming the value.
    static result<max_unused> parse(std::string_view s) {
        max_unused m;
        auto bad = [&](char const* why) {
            return make_error(errc::invalid_argument, "--max-unused \"" + std::string(s) + "\": " + why);
        };
        if (s == "unlimited") {
            m.k = kind::unlimited;
            return m;
        }
        std::string v(s);
        char* end = nullptr;
        double const x = std::strtod(v.c_str(), &end);
        if (end == v.c_str() || !(x >= 0) || !std::isfinite(x)) return bad("expected a percentage, a size or \"unlimited\"");
        std::string_view const unit(end);
        if (unit == "%") {
            if (x >= 100) return bad("the percentage must be below 100%");
            m.percent = x;
            return m;
        }
        double mult = 1;
        if (unit.size() == 1) {
            switch (unit[0]) {
            case 'k': case 'K': mult = 1024.0; break;
            case 'm': case 'M': mult = 1024.0 * 1024; break;
            case 'g': case 'G': mult = 1024.0 * 1024 * 1024; break;
            case 't': case 'T': mult = 1024.0 * 1024 * 1024 * 1024; break;
            default: return bad("unknown unit (use K, M, G, T or %)");
            }
        } else if (!unit.empty()) {
            return bad("unknown unit (use K, M, G, T or %)");
        }
        m.k = kind::bytes;
        m.bytes = std::uint64_t(x * mult);
        return m;
    }

    /// The unused bytes tolerated when `used` bytes remain: p/(100−p)·used for a percentage, so that
    /// unused space is p% of the total afterwards (as restic computes it).
    std::uint64_t limit(std::uint64_t used) const {
        switch (k) {
        case kind::unlimited: return std::numeric_limits<std::uint64_t>::max();
        case kind::bytes: return bytes;
        case kind::percent: break;
        }
        return std::uint64_t(percent / (100 - percent) * double(used));
    }
};

struct prune_options {
    max_unused unused;
    std::uint64_t max_repack_bytes = std::numeric_limits<std::uint64_t>::max();
    bool repack_small = false;         ///< also repack fully used packs below 80% of pack_size
    bool repack_uncompressed = false;  ///< v2: recompress data packs holding uncompressed blobs
    bool dry_run = false;              ///< decide and report only
    std::size_t pack_size = 16 * 1024 * 1024;  ///< target size of repacked packs, in bytes
    unsigned threads = 0;                       ///< 0 = hardware concurrency, at least 2
    std::function<void(std::string const&)> on_progress;  ///< one line per phase
};

/// Blob counts or byte sizes by category, as restic's prune prints them.
struct prune_counts {
    std::uint64_t used = 0, duplicate = 0, unused = 0;  ///< before prune
    std::uint64_t remove = 0;    ///< in packs deleted whole
    std::uint64_t repack = 0;    ///< in packs repacked
    std::uint64_t repackrm = 0;  ///< of those, dropped by the repack
};

struct prune_stats {
    prune_counts blobs, size;
    std::uint64_t unreferenced_size = 0;  ///< bytes in pack files no index lists
    std::uint64_t packs_used = 0, packs_partly_used = 0, packs_unused = 0;
    std::uint64_t packs_keep = 0, packs_repack = 0, packs_remove = 0, packs_unreferenced = 0, packs_missing = 0;
    std::uint64_t packs_written = 0, index_files_written = 0, index_files_removed = 0;
    /// Bytes freed (deleted packs, dropped blobs, unreferenced packs).
    std::uint64_t total_prune_size() const { return size.remove + size.repackrm + unreferenced_size; }
};

/// What prune will do. Pack lists are sorted; `copy` holds the used blobs that live only in packs
/// being repacked (each is copied once).
struct prune_plan {
    std::vector<id> remove_first;  ///< pack files no index lists: deleted before anything else
    std::vector<id> remove;        ///< packs without a used blob
    std::vector<id> repack;        ///< packs whose used blobs are copied into new packs
    std::vector<id> forget;        ///< listed in the index but missing, and not needed: dropped from the index
    repo::blob_set copy;
    prune_stats stats;
};

/** Decides prune's actions from the index contents, the pack files present (`on_disk`: ID → size)
    and the blobs the snapshots use, by restic 0.14's rules (restic-format.md §12.3):
    - one copy of each used blob counts as used, preferring packs that hold other used blobs;
    - a pack no index lists is removed first; a pack with no used blob is removed;
    - a fully used, single-type pack that needs no compression is kept, unless it is small
      (< pack_size/25, or < 80% with `repack_small`) and there are ≥ 10 such small packs;
    - everything else is a repack candidate: tree and mixed packs and packs needing compression
      always (up to `max_repack_bytes`), data packs by falling unused/used ratio until the unused
      space left is below `unused.limit(used)`.
    Errors (nothing is changed): a used blob no index lists (`errc::corrupt`, "index incomplete"); a needed
    pack whose size differs from its index entries or that is missing (`errc::corrupt`, naming the pack). */
inline result<prune_plan> plan_prune(index_contents const& idx, std::map<id, std::uint64_t> const& on_disk,
                                     repo::blob_set const& used, unsigned repo_version, prune_options const& opt) {
    prune_plan plan;
    auto& st = plan.stats;

    // How many copies of each used blob the index holds.
    std::unordered_map<id, unsigned, id_hash> copies[2];
    used.for_each([&](id const& b, repo::blob_type t) { copies[std::size_t(t)][b] = 0; });
    for (auto const& [pid, blobs] : idx.packs)
        for (auto const& b : blobs)
            if (auto it = copies[std::size_t(b.type)].find(b.blob); it != copies[std::size_t(b.type)].end() && it->second < 255)
                ++it->second;
    std::size_t missing = 0;
    std::string example;
    for (std::size_t t = 0; t < 2; ++t)
        for (auto const& [b, n] : copies[t])
            if (n == 0 && missing++ == 0) example = std::string(to_string(repo::blob_type(t))) + " blob " + b.str();
    if (missing)
        return make_error(errc::corrupt, "index incomplete: " + std::to_string(missing) + " blob(s) used by snapshots are in no index (e.g. " +
                                             example + "); prune will not run, to prevent further data loss");

    struct pack_info {
        std::uint64_t used_size = 0, unused_size = 0, used_blobs = 0, unused_blobs = 0;
        int type = -1;  // -1 unset, 0 data, 1 tree, 2 mixed
        bool uncompressed = false;
        std::uint64_t size() const { return used_size + unused_size; }
    };
    std::map<id, pack_info> info;
    bool duplicates = false;
    for (auto const& [pid, blobs] : idx.packs) {
        auto& p = info[pid];
        p.used_size = 32 + 4;  // sealed header and its length: counted as used, as restic does
        for (auto const& b : blobs) p.used_size += b.uncompressed_length ? repo::entry_size_compressed : repo::entry_size_plain;
        for (auto const& b : blobs) {
            int const bt = int(b.type);
            p.type = p.type == -1 ? bt : p.type == bt ? bt : 2;
            if (!b.uncompressed_length) p.uncompressed = true;
            auto const& cm = copies[std::size_t(b.type)];
            auto it = cm.find(b.blob);
            unsigned const n = it == cm.end() ? 0 : it->second;
            if (n >= 2) {  // decided below
                duplicates = true;
                p.unused_size += b.length, ++p.unused_blobs;
                st.size.duplicate += b.length, ++st.blobs.duplicate;
            } else if (n == 1) {
                p.used_size += b.length, ++p.used_blobs;
                st.size.used += b.length, ++st.blobs.used;
            } else {
                p.unused_size += b.length, ++p.unused_blobs;
                st.size.unused += b.length, ++st.blobs.unused;
            }
        }
    }
    // Of a duplicated blob, keep the copy in a pack that holds other used blobs, else the last one.
    if (duplicates) {
        for (auto const& [pid, blobs] : idx.packs) {
            auto& p = info[pid];
            for (auto const& b : blobs) {
                auto& cm = copies[std::size_t(b.type)];
                auto it = cm.find(b.blob);
                if (it == cm.end() || it->second == 1) continue;
                if (p.used_blobs > 0 || it->second == 0) {
                    p.used_size += b.length, ++p.used_blobs;
                    p.unused_size -= b.length, --p.unused_blobs;
                    st.size.used += b.length, ++st.blobs.used;
                    st.size.duplicate -= b.length, --st.blobs.duplicate;
                    it->second = 1;
                } else {
                    it->second = it->second == 2 ? 0 : it->second - 1;  // 0 marks "take the last copy"
                }
            }
        }
    }

    struct candidate {
        id pack;
        pack_info p;
        bool must_compress;
    };
    std::vector<candidate> candidates, small;
    std::uint64_t const target = opt.repack_small ? opt.pack_size / 5 * 4 : opt.pack_size / 25;
    for (auto const& [pid, size] : on_disk) {
        auto it = info.find(pid);
        if (it == info.end()) {
            plan.remove_first.push_back(pid);
            st.unreferenced_size += size;
            continue;
        }
        auto const& p = it->second;
        if (p.size() != size && p.used_blobs != 0)
            return make_error(errc::corrupt, "pack " + pid.str() + ": size " + std::to_string(size) + " does not match " +
                                                 std::to_string(p.size()) + " implied by the index; run `stash rebuild-index` first");
        if (p.used_blobs == 0) ++st.packs_unused;
        else if (p.unused_blobs == 0) ++st.packs_used;
        else ++st.packs_partly_used;
        bool const must_compress = repo_version >= 2 && p.uncompressed && (p.type == int(repo::blob_type::tree) || opt.repack_uncompressed);
        if (p.used_blobs == 0) {
            plan.remove.push_back(pid);
            st.blobs.remove += p.unused_blobs, st.size.remove += p.unused_size;
        } else if (p.unused_blobs == 0 && p.type != 2 && !must_compress) {
            if (size >= target) ++st.packs_keep;
            else small.push_back({pid, p, must_compress});
        } else {
            candidates.push_back({pid, p, must_compress});
        }
    }
    // Listed but missing: harmless when nothing in it is needed.
    for (auto const& [pid, p] : info) {
        if (on_disk.count(pid)) continue;
        if (p.used_blobs != 0)
            return make_error(errc::corrupt, "pack " + pid.str() + " is listed in the index and holds used blobs, but is missing; prune will not run");
        plan.forget.push_back(pid);
        ++st.packs_missing;
        st.blobs.remove += p.unused_blobs, st.size.remove += p.unused_size;
    }
    if (small.size() < 10) st.packs_keep += small.size();  // too few to be worth it (and no endless repacking)
    else candidates.insert(candidates.end(), small.begin(), small.end());

    // Tree and mixed packs first, then small packs, then by falling unused/used ratio.
    std::stable_sort(candidates.begin(), candidates.end(), [&](candidate const& a, candidate const& b) {
        bool const ad = a.p.type == int(repo::blob_type::data), bd = b.p.type == int(repo::blob_type::data);
        if (ad != bd) return !ad;
        bool const as = a.p.size() < target, bs = b.p.size() < target;
        if (as != bs) return as;
        return double(a.p.unused_size) * double(b.p.used_size) > double(b.p.unused_size) * double(a.p.used_size);
    });
    std::uint64_t const limit = opt.unused.limit(st.size.used);
    std::uint64_t const unused_before = st.size.unused + st.size.duplicate;
    for (auto const& c : candidates) {
        std::uint64_t const freed = st.size.remove + st.size.repackrm;
        bool const reached_unused = unused_before <= freed || unused_before - freed < limit;
        bool const reached_repack = st.size.repack + c.p.size() >= opt.max_repack_bytes;
        bool const large_enough = c.p.size() >= target;
        if (reached_repack || (c.p.type == int(repo::blob_type::data) && !c.must_compress && reached_unused && large_enough)) {
            ++st.packs_keep;
            continue;
        }
        plan.repack.push_back(c.pack);
        st.blobs.repack += c.p.used_blobs + c.p.unused_blobs, st.size.repack += c.p.size();
        st.blobs.repackrm += c.p.unused_blobs, st.size.repackrm += c.p.unused_size;
    }
    std::sort(plan.repack.begin(), plan.repack.end());
    st.packs_unreferenced = plan.remove_first.size();
    st.packs_repack = plan.repack.size();
    st.packs_remove = plan.remove.size();

    // Copy the used blobs that no surviving pack holds.
    if (!plan.repack.empty()) {
        plan.copy = used;
        std::set<id> gone(plan.repack.begin(), plan.repack.end());
        gone.insert(plan.remove.begin(), plan.remove.end());
        gone.insert(plan.forget.begin(), plan.forget.end());
        for (auto const& [pid, blobs] : idx.packs)
            if (!gone.count(pid))
                for (auto const& b : blobs) plan.copy.erase(b.blob, b.type);
    }
    return plan;
}

/** Prunes the repository: finds the blobs used by any snapshot, plans with `plan_prune`, and (unless
    `dry_run`) executes in the order that keeps the repository valid if interrupted at any point:
    delete unreferenced packs → repack (verify each copied blob, write new packs) → write index
    files for the new and surviving packs listing every old index file in `supersedes` → delete
    the old index files → delete removed and repacked packs.

    The caller holds an exclusive lock. Errors stop prune before anything is deleted that a
    snapshot needs: an unreadable index file, snapshot or tree; an incomplete index; a corrupt blob
    met while repacking (named with its pack). */
template <class Repo>
result<prune_stats> prune(Repo& repo, prune_options const& opt) {
    auto progress = [&](std::string const& m) {
        if (opt.on_progress) opt.on_progress(m);
    };
    progress("loading index files");
    auto idx = read_index_files(repo);
    if (!idx) return std::move(idx).error();

    progress("finding data that is still in use");
    std::vector<id> roots;
    auto snaps = repo.list(file_type::snapshot);
    if (!snaps) return std::move(snaps).error();
    for (auto const& sid : *snaps) {
        auto s = repo.load_snapshot(sid);
        if (!s) return std::move(s).error();
        roots.push_back(s->tree);
    }
    repo::blob_set used;
    std::mutex used_mu;
    auto walked = walk_trees(repo, roots, [&](id const& tree, std::vector<repo::node> const& nodes) {
        std::lock_guard lk(used_mu);
        used.insert(tree, repo::blob_type::tree);
        for (auto const& n : nodes)
            for (auto const& b : n.content) used.insert(b, repo::blob_type::data);
    }, opt.threads);
    if (!walked) return error{walked.error().code, walked.error().message + "; prune will not run, to prevent data loss"};

    std::map<id, std::uint64_t> on_disk;
    STASH_TRYV(repo.backend().list(file_type::pack, [&](std::string_view n, std::uint64_t size) {
        if (auto i = id::parse(n)) on_disk[*i] = size;
    }));
    auto plan = plan_prune(*idx, on_disk, used, repo.cfg().version, opt);
    if (!plan) return std::move(plan).error();
    auto& st = plan->stats;
    if (opt.dry_run) return st;
    if (plan->remove_first.empty() && plan->remove.empty() && plan->repack.empty() && plan->forget.empty()) return st;

    auto remove_all = [&](std::vector<id> const& ids, file_type t) -> result<void> {
        for (auto const& i : ids)
            if (auto r = repo.backend().remove({t, i.str()}); !r && !r.error().is(errc::not_found)) return r;
        return {};
    };
    if (!plan->remove_first.empty()) {
        progress("deleting " + std::to_string(plan->remove_first.size()) + " unreferenced packs");
        STASH_TRYV(remove_all(plan->remove_first, file_type::pack));
    }

    if (!plan->repack.empty()) {
        progress("repacking " + std::to_string(plan->repack.size()) + " packs");
        std::mutex mu;
        detail::first_error failure;
        std::atomic<std::size_t> next{0}, written{0};
        auto fail = [&](error e) { failure.set(std::move(e)); };
        auto work = [&] {
            repo::pack_builder builders[2] = {repo::pack_builder(opt.pack_size + (1u << 20)), repo::pack_builder()};
            bytes pack, plain, packed;
            auto flush = [&](repo::pack_builder& b) {
                if (b.empty() || failure.failed()) return;
                byte_span p = b.finish(repo.sealer());
                auto r = repo.save_pack(p, b.entries());
                b.reset();
                if (!r) return fail(r.error());
                ++written;
            };
            for (std::size_t i; !failure.failed() && (i = next++) < plan->repack.size();) {
                id const& pid = plan->repack[i];
                if (auto r = repo.backend().get({file_type::pack, pid.str()}, 0, 0, pack); !r) return fail(r.error());
                for (auto const& e : idx->packs.at(pid)) {
                    {
                        std::lock_guard lk(mu);
                        if (!plan->copy.erase(e.blob, e.type)) continue;
                    }
                    if (std::uint64_t(e.offset) + e.length > pack.size())
                        return fail(error{errc::corrupt, "pack " + pid.str() + ": blob " + e.blob.str() + " lies past the end of the pack"});
                    byte_span const sealed = byte_span(pack).subspan(e.offset, e.length);
                    if (auto r = repo.decode_blob({pid, e}, sealed, plain); !r) return fail(r.error());
                    auto& b = builders[std::size_t(e.type)];
                    bool const compress = repo.compression() && !e.uncompressed_length && !plain.empty() &&
                                          (e.type == repo::blob_type::tree || opt.repack_uncompressed);
                    if (compress) {
                        packed.clear();
                        int const level = e.type == repo::blob_type::tree ? compress::metadata_level : compress::data_level;
                        compress::zstd_compress_frame(plain, packed, level);
                        b.add(e.blob, e.type, std::uint32_t(plain.size()), [&](bytes& out) { repo.sealer().seal(packed, out); });
                    } else {
                        b.add(e.blob, e.type, sealed, e.uncompressed_length);
                    }
                    if (b.size() >= opt.pack_size) flush(b);
                }
            }
            flush(builders[0]);
            flush(builders[1]);
        };
        detail::run_workers(opt.threads, plan->repack.size(), work);
        if (failure.get()) return *failure.get();
        if (!plan->copy.empty())
            return make_error(errc::corrupt, std::to_string(plan->copy.size()) + " used blob(s) were not found in the packs being repacked");
        st.packs_written = written;
    }

    progress("rebuilding the index");
    std::set<id> gone(plan->repack.begin(), plan->repack.end());
    gone.insert(plan->remove.begin(), plan->remove.end());
    gone.insert(plan->forget.begin(), plan->forget.end());
    std::size_t const per_file = repo::index_file_blobs;
    std::vector<repo::indexed_pack> batch;
    std::size_t batch_blobs = 0;
    bool first = true;
    auto write_batch = [&]() -> result<void> {
        if (batch.empty()) return {};
        std::vector<id> const none;
        auto const& supersedes = first ? idx->files : none;
        // Written in pieces, as a backup's index is: a full batch (40,000 blobs) is ~7 MiB of JSON.
        auto r = repo.save_unpacked_from(file_type::index, [&](auto&& sink) { repo::write_index_json(batch, supersedes, sink); });
        if (!r) return std::move(r).error();
        ++st.index_files_written;
        first = false;
        batch.clear(), batch_blobs = 0;
        return {};
    };
    auto add = [&](id const& pid, std::vector<repo::blob_entry> const& blobs) -> result<void> {
        batch.push_back({pid, blobs});
        batch_blobs += blobs.size();
        if (batch_blobs >= per_file) return write_batch();
        return {};
    };
    for (auto const& p : repo.take_pending_packs()) STASH_TRYV(add(p.pack, p.blobs));  // the new packs
    for (auto const& [pid, blobs] : idx->packs)
        if (!gone.count(pid)) STASH_TRYV(add(pid, blobs));
    STASH_TRYV(write_batch());

    progress("deleting " + std::to_string(idx->files.size()) + " old index files");
    STASH_TRYV(remove_all(idx->files, file_type::index));
    st.index_files_removed = idx->files.size();
    std::vector<id> doomed = plan->remove;
    doomed.insert(doomed.end(), plan->repack.begin(), plan->repack.end());
    progress("deleting " + std::to_string(doomed.size()) + " packs");
    STASH_TRYV(remove_all(doomed, file_type::pack));
    return st;
}

}  // namespace stash::engine
