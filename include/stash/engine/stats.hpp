// stats: how much a set of snapshots would restore, and how much unique data it holds.
#pragma once

#include <stash/engine/snapshots.hpp>
#include <stash/engine/walk.hpp>

#include <mutex>
#include <unordered_map>
#include <unordered_set>

namespace stash::engine {

enum class stats_mode {
    restore_size,  ///< every node of every snapshot, file sizes summed (a hard-linked inode once per snapshot)
    raw_data,      ///< the unique blobs the snapshots reference, at their stored (compressed, sealed) size
};

/// Counts as restic 0.14's `stats --json` reports them.
struct repo_stats {
    std::uint64_t total_size = 0;               ///< bytes
    std::uint64_t total_file_count = 0;         ///< restore_size: nodes of every type, the roots excluded
    std::uint64_t total_blob_count = 0;         ///< raw_data only
    std::uint64_t total_uncompressed_size = 0;  ///< raw_data only: plaintext bytes of those blobs
    std::uint64_t snapshots_count = 0;
};

/** Computes `mode`'s statistics over `snaps`, as restic 0.14 does. The repository's index must be
    loaded. Trees are loaded once each, in parallel; restore_size then expands every snapshot in memory
    (a subtree repeated in a snapshot counts each time, as restore would write it each time).
    Errors: a tree or blob that cannot be found or read, naming it. */
template <class Repo>
result<repo_stats> compute_stats(Repo& repo, std::vector<snapshot_entry> const& snaps, stats_mode mode, unsigned threads = 0) {
    repo_stats st;
    st.snapshots_count = snaps.size();
    std::vector<id> roots;
    for (auto const& s : snaps) roots.push_back(s.snap.tree);
    std::mutex mu;

    if (mode == stats_mode::raw_data) {
        repo::blob_set used;
        auto w = walk_trees(repo, roots, [&](id const& tree, std::vector<repo::node> const& nodes) {
            std::lock_guard lk(mu);
            used.insert(tree, repo::blob_type::tree);
            for (auto const& n : nodes)
                for (auto const& b : n.content) used.insert(b, repo::blob_type::data);
        }, threads);
        if (!w) return std::move(w).error();
        std::optional<error> missing;
        used.for_each([&](id const& b, repo::blob_type t) {
            auto loc = repo.index().find(b, t);
            if (!loc) {
                if (!missing) missing = make_error(errc::not_found, std::string(to_string(t)) + " blob " + b.str() + " not found in index");
                return;
            }
            st.total_size += loc->entry.length;
            st.total_uncompressed_size += loc->entry.plaintext_length(repo.sealer().overhead);
            ++st.total_blob_count;
        });
        if (missing) return *missing;
        return st;
    }

    std::unordered_map<id, std::vector<repo::node>, id_hash> trees;
    auto w = walk_trees(repo, roots, [&](id const& tree, std::vector<repo::node> const& nodes) {
        std::lock_guard lk(mu);
        trees.emplace(tree, nodes);
    }, threads);
    if (!w) return std::move(w).error();
    for (auto const& root : roots) {
        std::unordered_set<std::uint64_t> inodes;
        std::vector<id const*> stack{&root};
        while (!stack.empty()) {
            auto const& nodes = trees.at(*stack.back());
            stack.pop_back();
            for (auto const& n : nodes) {
                ++st.total_file_count;
                if (n.inode == 0 || inodes.insert(n.inode).second) st.total_size += n.size;
                if (n.type == repo::node_type::dir && n.subtree && !n.subtree->is_null()) stack.push_back(&*n.subtree);
            }
        }
    }
    return st;
}

}  // namespace stash::engine
