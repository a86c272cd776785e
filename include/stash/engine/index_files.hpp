// Reading every index file with its full contents: which packs exist according to which file, and
// every copy of every blob (the in-memory repo::index keeps only one location per blob).
#pragma once

#include <stash/repo/repository.hpp>

#include <algorithm>
#include <map>
#include <vector>

namespace stash::engine {

/// Every index file's contents, merged by pack.
struct index_contents {
    std::vector<id> files;                                    ///< index file IDs, sorted
    std::map<id, std::vector<repo::blob_entry>> packs;        ///< pack → its blobs, by offset, no repeats
    std::size_t blob_count() const {
        std::size_t n = 0;
        for (auto const& [p, v] : packs) n += v.size();
        return n;
    }
};

/** Loads every index file into `repo.index()` and returns their contents merged by pack.
    Errors: the first index file that cannot be loaded, naming it (callers that must not touch a
    repository with a damaged index, such as prune, stop there). */
template <class Repo>
result<index_contents> read_index_files(Repo& repo) {
    index_contents out;
    auto ids = repo.list(file_type::index);
    if (!ids) return std::move(ids).error();
    out.files = std::move(*ids);
    for (auto const& iid : out.files) {
        auto text = repo.load_unpacked(file_type::index, iid);
        if (!text) return std::move(text).error();
        auto packs = repo::parse_index(*text, "index " + iid.str());
        if (!packs) return std::move(packs).error();
        for (auto& p : *packs) {
            repo.index().add(p);
            auto& v = out.packs[p.pack];
            v.insert(v.end(), p.blobs.begin(), p.blobs.end());
        }
    }
    for (auto& [pid, v] : out.packs) {
        std::sort(v.begin(), v.end(), [](auto const& a, auto const& b) { return a.offset < b.offset; });
        v.erase(std::unique(v.begin(), v.end()), v.end());
    }
    return out;
}

/// The size a pack file must have for its index entries: blobs, sealed header (32 bytes of
/// IV + MAC and one entry per blob), and the trailing u32 header length (restic-format.md §4.1).
inline std::uint64_t expected_pack_size(std::vector<repo::blob_entry> const& blobs) {
    std::uint64_t n = 32 + 4;
    for (auto const& b : blobs) n += std::uint64_t(b.length) + (b.uncompressed_length ? repo::entry_size_compressed : repo::entry_size_plain);
    return n;
}

}  // namespace stash::engine
