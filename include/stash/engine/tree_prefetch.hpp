// Trees fetched ahead of a depth-first walk, breadth first and many at a time.
#pragma once

#include <stash/core/error.hpp>
#include <stash/repo/tree.hpp>

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace stash::engine {

/** Loads a snapshot's trees on a thread of its own ahead of a walk, level by level, up to `batch`
    trees a request (`Repo::load_trees` reads neighbouring blobs in one ranged read), so a walk over
    a network backend waits on a few large reads instead of a round trip per directory (`linux`
    over REST with 0–20 ms a request: `ls` 54 → 1.2 s). On a local disk, or through the local
    cache (policies::backend::cache), the second loader costs more than it saves (trees the walk
    reached first are loaded twice): the agent's restore, backup and `ls` use it for network
    repositories without the cache only.

    `Repo` has `load_trees(std::span<id const>) -> std::vector<result<std::vector<repo::node>>>`,
    callable from several threads at once. `want(vpath, name)` says whether the walk will descend
    into the directory `name` at `vpath` (its own rules: names it would not create, its filter); the walk's own requests go through `take`, which hands over
    what was fetched ahead, waits for trees being fetched, and loads the rest itself (so a tree the
    walk reaches first costs it one request, as without this class, and errors are the loader's);
    several threads may call it at once (backup's listing workers do).
    Memory: at most `budget` nodes of trees fetched and not yet taken (each node a few hundred
    bytes), then fetching pauses until the walk catches up. Trees are immutable, so a tree fetched
    twice (the walk got there first) is only wasted work. Not copyable; the destructor stops and
    joins the thread.
*/
template <class Repo>
class tree_prefetch {
public:
    using nodes = std::vector<repo::node>;
    using want_fn = std::function<bool(std::string const& vpath, std::string const& name)>;

    tree_prefetch(Repo& repo, want_fn want, std::size_t budget, std::size_t batch = 256)
        : repo_(repo), want_(std::move(want)), budget_(budget), batch_(batch) {}
    tree_prefetch(tree_prefetch const&) = delete;
    tree_prefetch& operator=(tree_prefetch const&) = delete;
    ~tree_prefetch() {
        {
            std::lock_guard lk(mu_);
            stop_ = true;
        }
        cv_.notify_all();
        if (thread_.joinable()) thread_.join();
    }

    /// Starts fetching below `root`, the nodes of the directory at `vpath`.
    void start(nodes const& root, std::string const& vpath) {
        {
            std::lock_guard lk(mu_);
            enqueue_children(root, vpath);
        }
        thread_ = std::thread([this] { run(); });
    }

    /// The trees `ids` (with their errors), in order.
    std::vector<result<nodes>> take(std::span<id const> ids) {
        std::vector<result<nodes>> out(ids.size(), make_error(errc::not_found, "not loaded"));
        std::vector<id> missing;
        std::vector<std::size_t> where;
        {
            std::unique_lock lk(mu_);
            for (std::size_t i = 0; i < ids.size(); ++i) {
                cv_.wait(lk, [&] { return stop_ || !in_flight_.contains(ids[i]); });  // one round trip away
                if (auto it = ready_.find(ids[i]); it != ready_.end()) {
                    held_ -= it->second.n.size();
                    if (--it->second.wanted == 0) {
                        out[i] = std::move(it->second.n);
                        ready_.erase(it);
                    } else {
                        out[i] = it->second.n;  // the same subtree again elsewhere
                    }
                } else {
                    ++loaded_here_[ids[i]];  // the thread's copy, when it comes, is not needed
                    missing.push_back(ids[i]), where.push_back(i);
                }
            }
        }
        cv_.notify_all();  // room under the budget
        if (!missing.empty()) {
            auto got = repo_.load_trees(missing);
            for (std::size_t k = 0; k < got.size(); ++k) out[where[k]] = std::move(got[k]);
        }
        return out;
    }
    /// One tree (`take` of one ID).
    result<nodes> take(id const& tree) { return std::move(take(std::span(&tree, 1))[0]); }

private:
    struct entry {
        nodes n;
        std::size_t wanted = 1;  // times the walk will ask for it
    };

    // With mu_ held: the wanted subdirectories of a tree, for the next level.
    void enqueue_children(nodes const& n, std::string const& vpath) {
        for (auto const& c : n) {
            if (c.type != repo::node_type::dir || !c.subtree) continue;
            std::string sub = vpath + "/" + c.name;
            if (want_(sub, c.name)) queue_.push_back({*c.subtree, std::move(sub)});
        }
    }

    void run() {
        std::vector<std::pair<id, std::string>> batch;
        for (;;) {
            std::vector<id> ids;
            {
                std::unique_lock lk(mu_);
                cv_.wait(lk, [&] { return stop_ || held_ < budget_; });
                if (stop_ || queue_.empty()) break;
                batch.clear();
                while (!queue_.empty() && batch.size() < batch_) {
                    batch.push_back(std::move(queue_.front()));
                    queue_.pop_front();
                }
                for (auto const& b : batch) ids.push_back(b.first), in_flight_.insert(b.first);
            }
            auto got = repo_.load_trees(ids);
            {
                std::lock_guard lk(mu_);
                for (std::size_t k = 0; k < got.size(); ++k) {
                    in_flight_.erase(ids[k]);
                    if (!got[k]) continue;  // the walk loads it again and reports the error
                    enqueue_children(*got[k], batch[k].second);
                    if (auto h = loaded_here_.find(ids[k]); h != loaded_here_.end()) {
                        if (--h->second == 0) loaded_here_.erase(h);
                        continue;
                    }
                    auto [it, fresh] = ready_.try_emplace(ids[k]);
                    if (fresh) it->second.n = std::move(*got[k]);
                    else ++it->second.wanted;
                    held_ += it->second.n.size();
                }
            }
            cv_.notify_all();
        }
        std::lock_guard lk(mu_);
        in_flight_.clear();
        cv_.notify_all();
    }

    Repo& repo_;
    want_fn want_;
    std::size_t const budget_, batch_;
    std::mutex mu_;
    std::condition_variable cv_;
    std::deque<std::pair<id, std::string>> queue_;      // the next level: trees and their paths
    id_set in_flight_;                                  // being loaded by the thread
    std::unordered_map<id, entry, id_hash> ready_;      // loaded, not yet taken
    std::unordered_map<id, std::size_t, id_hash> loaded_here_;  // taken before the thread loaded them
    std::size_t held_ = 0;                              // nodes in ready_, counted per wanted copy
    bool stop_ = false;
    std::thread thread_;
};

}  // namespace stash::engine
