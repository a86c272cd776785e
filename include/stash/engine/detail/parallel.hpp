// The small parallel-loop pieces the maintenance engines share: a first-error collector and a worker
// launcher (threads and atomics, like the rest of the engine: the work is CPU-bound or blocking I/O).
#pragma once

#include <stash/core/error.hpp>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

namespace stash::engine::detail {

/// Keeps the first error any worker reports; `failed()` lets the others stop early. Thread-safe.
class first_error {
public:
    void set(error e) {
        std::lock_guard lk(mu_);
        if (!e_) e_ = std::move(e);
        failed_ = true;
    }
    bool failed() const noexcept { return failed_; }
    /// The error, once the workers have finished.
    std::optional<error> const& get() const noexcept { return e_; }

private:
    std::mutex mu_;
    std::optional<error> e_;
    std::atomic<bool> failed_{false};
};

/// The number of workers for `threads` (0 = hardware concurrency, at least 2), never more than `items`.
inline unsigned worker_count(unsigned threads, std::size_t items) {
    unsigned const n = threads ? threads : std::max(2u, std::thread::hardware_concurrency());
    return unsigned(std::min<std::size_t>(n, std::max<std::size_t>(items, 1)));
}

/// Runs `work()` on `worker_count(threads, items)` threads, the caller's among them, and returns
/// when every one has returned. Workers share the items through their own atomic index.
template <class Work>
void run_workers(unsigned threads, std::size_t items, Work&& work) {
    std::vector<std::jthread> pool;
    for (unsigned t = 1; t < worker_count(threads, items); ++t) pool.emplace_back(work);
    work();
}

}  // namespace stash::engine::detail
