// Walking the tree graph of snapshots: each reachable tree loaded once, in parallel.
#pragma once

#include <stash/engine/detail/parallel.hpp>
#include <stash/repo/repository.hpp>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_set>
#include <vector>

namespace stash::engine {

/** Visits every tree reachable from `roots` exactly once, breadth first, loading each level's trees
    on `threads` threads (0 = hardware concurrency, at least 2).

    `visit(id const& tree, std::vector<repo::node> const& nodes)` is called concurrently from several
    threads: it must be thread-safe. Subtrees of directory nodes are followed; a directory without a
    subtree is skipped (check reports it).

    Errors: the first tree that fails to load (missing from the index, corrupt), naming the tree; the
    walk stops after the level in which it happened. */
template <class Repo, class Visit>
result<void> walk_trees(Repo& repo, std::vector<id> roots, Visit&& visit, unsigned threads = 0) {
    std::unordered_set<id, id_hash> seen;
    std::vector<id> level;
    for (auto const& r : roots)
        if (seen.insert(r).second) level.push_back(r);
    std::mutex mu;
    std::optional<error> failure;
    while (!level.empty()) {
        std::atomic<std::size_t> next{0};
        std::vector<id> children;
        auto work = [&] {
            std::vector<id> found;
            for (std::size_t i; (i = next++) < level.size();) {
                auto nodes = repo.load_tree(level[i]);
                if (!nodes) {
                    std::lock_guard lk(mu);
                    if (!failure) failure = std::move(nodes).error();
                    return;
                }
                visit(level[i], std::as_const(*nodes));
                for (auto const& nd : *nodes)
                    if (nd.type == repo::node_type::dir && nd.subtree && !nd.subtree->is_null()) found.push_back(*nd.subtree);
            }
            std::lock_guard lk(mu);
            children.insert(children.end(), found.begin(), found.end());
        };
        detail::run_workers(threads, level.size(), work);
        if (failure) return *failure;
        level.clear();
        for (auto const& c : children)
            if (seen.insert(c).second) level.push_back(c);
    }
    return {};
}

}  // namespace stash::engine
