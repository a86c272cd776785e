// rebuild-index: a new index from the pack files themselves, replacing every index file.
#pragma once

#include <stash/engine/detail/parallel.hpp>
#include <stash/engine/index_files.hpp>

#include <atomic>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <thread>

namespace stash::engine {

/** Reads a pack's header from the end of the file (restic-format.md §4.1): the trailing u32 length,
    then the sealed header. `size` is the pack file's size. Errors (`errc::corrupt`) name the pack. */
template <class Repo>
result<std::vector<repo::blob_entry>> read_pack_header(Repo& repo, id const& pid, std::uint64_t size) {
    std::string const name = "pack " + pid.str();
    if (size < 4 + 32) return make_error(errc::corrupt, name + ": too short to hold a header (" + std::to_string(size) + " bytes)");
    bytes tail, sealed, header;
    STASH_TRYV(repo.backend().get({file_type::pack, pid.str()}, size - 4, 4, tail));
    std::uint32_t const hlen = get_u32le(tail.data());
    if (hlen < 32 || hlen > size - 4 || hlen > repo::max_header_size)
        return make_error(errc::corrupt, name + ": invalid header length " + std::to_string(hlen));
    STASH_TRYV(repo.backend().get({file_type::pack, pid.str()}, size - 4 - hlen, hlen, sealed));
    if (auto r = repo.sealer().open(sealed, header); !r) return make_error(errc::corrupt, name + ": header: " + r.error().message);
    auto entries = repo::decode_header(header, name);
    if (!entries) return std::move(entries).error();
    std::uint64_t end = 0;
    for (auto const& e : *entries) end = std::max<std::uint64_t>(end, std::uint64_t(e.offset) + e.length);
    if (end > size - 4 - hlen) return make_error(errc::corrupt, name + ": header describes blobs past the header's start");
    return entries;
}

struct rebuild_index_options {
    bool read_all_packs = false;  ///< read every pack's header, not only those the index lacks or mis-sizes
    unsigned threads = 0;         ///< 0 = hardware concurrency, at least 2
    std::function<void(std::string const&)> on_problem;  ///< an index file or pack that could not be used
};

struct rebuild_index_stats {
    std::uint64_t packs = 0, packs_read = 0, packs_skipped = 0, packs_dropped = 0;  ///< dropped: indexed but missing
    std::uint64_t index_files_written = 0, index_files_removed = 0, index_files_unreadable = 0;
};

/** Replaces all index files with new ones describing exactly the pack files present: index entries
    are reused for packs whose size matches them; other packs (and all with `read_all_packs`) are
    described from their own headers. Unreadable index files and packs are reported through
    `on_problem` and left out (a pack left out is later deleted by prune as unreferenced, as with
    restic). New index files list every old one in `supersedes`; the old ones are deleted after.
    The caller holds an exclusive lock. */
template <class Repo>
result<rebuild_index_stats> rebuild_index(Repo& repo, rebuild_index_options const& opt) {
    rebuild_index_stats st;
    auto problem = [&](std::string const& m) {
        if (opt.on_problem) opt.on_problem(m);
    };
    auto files = repo.list(file_type::index);
    if (!files) return std::move(files).error();
    std::map<id, std::vector<repo::blob_entry>> known;
    for (auto const& iid : *files) {
        auto text = repo.load_unpacked(file_type::index, iid);
        auto packs = text ? repo::parse_index(*text, "index " + iid.str()) : result<std::vector<repo::indexed_pack>>(text.error());
        if (!packs) {
            ++st.index_files_unreadable;
            problem(packs.error().what() + " (ignored)");
            continue;
        }
        for (auto& p : *packs) {
            auto& v = known[p.pack];
            v.insert(v.end(), p.blobs.begin(), p.blobs.end());
        }
    }
    for (auto& [pid, v] : known) {
        std::sort(v.begin(), v.end(), [](auto const& a, auto const& b) { return a.offset < b.offset; });
        v.erase(std::unique(v.begin(), v.end()), v.end());
    }

    std::map<id, std::uint64_t> on_disk;
    STASH_TRYV(repo.backend().list(file_type::pack, [&](std::string_view n, std::uint64_t size) {
        if (auto i = id::parse(n)) on_disk[*i] = size;
    }));
    for (auto const& [pid, v] : known) st.packs_dropped += on_disk.count(pid) ? 0 : 1;

    // Packs to describe from their headers.
    std::vector<std::pair<id, std::uint64_t>> to_read;
    std::map<id, std::vector<repo::blob_entry>> result_packs;
    for (auto const& [pid, size] : on_disk) {
        auto it = known.find(pid);
        if (!opt.read_all_packs && it != known.end() && expected_pack_size(it->second) == size) result_packs.emplace(pid, it->second);
        else to_read.emplace_back(pid, size);
    }
    std::mutex mu;
    std::atomic<std::size_t> next{0};
    auto work = [&] {
        for (std::size_t i; (i = next++) < to_read.size();) {
            auto [pid, size] = to_read[i];
            auto h = read_pack_header(repo, pid, size);
            std::lock_guard lk(mu);
            if (!h) {
                ++st.packs_skipped;
                problem(h.error().what() + " (left out of the index)");
            } else {
                ++st.packs_read;
                result_packs.emplace(pid, std::move(*h));
            }
        }
    };
    detail::run_workers(opt.threads, to_read.size(), work);
    st.packs = result_packs.size();

    std::size_t const per_file = repo::index_file_blobs;
    std::vector<repo::indexed_pack> batch;
    std::size_t batch_blobs = 0;
    auto write_batch = [&]() -> result<void> {
        if (batch.empty()) return {};
        std::vector<id> const none;
        auto const& supersedes = st.index_files_written == 0 ? *files : none;
        // Written in pieces, as a backup's index is: a full batch (40,000 blobs) is ~7 MiB of JSON.
        auto r = repo.save_unpacked_from(file_type::index, [&](auto&& sink) { repo::write_index_json(batch, supersedes, sink); });
        if (!r) return std::move(r).error();
        ++st.index_files_written;
        batch.clear(), batch_blobs = 0;
        return {};
    };
    for (auto& [pid, blobs] : result_packs) {
        batch_blobs += blobs.size();
        batch.push_back({pid, std::move(blobs)});
        if (batch_blobs >= per_file) STASH_TRYV(write_batch());
    }
    STASH_TRYV(write_batch());
    for (auto const& iid : *files) {
        if (auto r = repo.backend().remove({file_type::index, iid.str()}); !r && !r.error().is(errc::not_found)) return r.error();
        ++st.index_files_removed;
    }
    return st;
}

}  // namespace stash::engine
