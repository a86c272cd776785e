// A fixed set of worker threads with two bounded queues: "blob" tasks (the back half of the pipeline)
// are always taken before "file" tasks, so work in flight drains before new work starts. A third,
// unbounded queue holds read-ahead tasks for idle workers.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <span>
#include <thread>
#include <vector>

namespace stash::engine::detail {

class pool {
public:
    /// A task receives the index (0 … threads−1) of the thread running it, for per-thread state.
    using task = std::function<void(unsigned)>;

    pool(unsigned threads, std::size_t file_capacity, std::size_t blob_capacity)
        : file_cap_(file_capacity), blob_cap_(blob_capacity) {
        for (unsigned i = 0; i < threads; ++i) threads_.emplace_back([this, i] { run(i); });
    }
    ~pool() { join(); }

    /// Queues a file task; blocks while the queue is full (back-pressure on the walker).
    void submit_file(task t) {
        std::unique_lock lk(mu_);
        space_.wait(lk, [&] { return files_.size() < file_cap_; });
        files_.push_back(std::move(t));
        work_.notify_one();
    }

    /// Queues a blob task, or runs it on the calling worker `self` when the queue is full: a worker
    /// never blocks on its own pool.
    void submit_blob(task t, unsigned self) {
        {
            std::lock_guard lk(mu_);
            if (blobs_.size() < blob_cap_) {
                blobs_.push_back(std::move(t));
                work_.notify_one();
                return;
            }
        }
        t(self);
    }

    /// Whether more tasks would help now: a worker waits, or no file task is queued for the next one
    /// to become free (a hint, true or false a moment later). A caller with a large input asks
    /// before copying it into a task of its own rather than doing the work itself.
    bool wants_work() {
        if (idle_.load(std::memory_order_relaxed) > 0) return true;
        std::lock_guard lk(mu_);
        return files_.empty();
    }

    /// Queues a read-ahead task, taken only when no blob or file task waits, newest first (a stack:
    /// what a depth-first walker queued last is what it needs next). Never blocks. A read-ahead task
    /// must be safe to skip in effect: the submitter does the work itself if no worker has started it.
    void submit_ahead(task t) {
        std::lock_guard lk(mu_);
        ahead_.push_front(std::move(t));
        work_.notify_one();
    }

    /// Waits until all queues are empty and no task runs, then stops the threads.
    void join() {
        {
            std::lock_guard lk(mu_);
            stop_ = true;
        }
        work_.notify_all();
        for (auto& t : threads_)
            if (t.joinable()) t.join();
    }

    unsigned size() const noexcept { return unsigned(threads_.size()); }

private:
    void run(unsigned self) {
        for (;;) {
            task t;
            {
                std::unique_lock lk(mu_);
                idle_.fetch_add(1, std::memory_order_relaxed);
                work_.wait(lk, [&] { return stop_ || !blobs_.empty() || !files_.empty() || !ahead_.empty(); });
                idle_.fetch_sub(1, std::memory_order_relaxed);
                if (!blobs_.empty()) {
                    t = std::move(blobs_.front());
                    blobs_.pop_front();
                } else if (!files_.empty()) {
                    t = std::move(files_.front());
                    files_.pop_front();
                    space_.notify_one();
                } else if (!ahead_.empty()) {
                    t = std::move(ahead_.front());
                    ahead_.pop_front();
                } else {
                    return;  // stop_ and nothing left
                }
            }
            t(self);
        }
    }

    std::mutex mu_;
    std::condition_variable work_, space_;
    std::deque<task> files_, blobs_, ahead_;
    std::size_t file_cap_, blob_cap_;
    bool stop_ = false;
    std::atomic<unsigned> idle_{0};
    std::vector<std::thread> threads_;
};

/** Hands files to a pool's file queue, small ones in batches: a task and a wake-up per file cost more
    than reading or writing a source file of a few KiB. Files of `alone_bytes` or more are tasks of
    their own, so they spread over the workers. `Item` names one file; `run(items, worker)` processes
    a batch (one item for a file alone), in the order added. Used by one thread (the walker); `flush`
    before waiting for the pool. */
template <class Item>
class file_batches {
public:
    static constexpr std::size_t max_items = 64;
    static constexpr std::uint64_t max_bytes = 4 << 20, alone_bytes = 1 << 20;
    using run_fn = std::function<void(std::span<Item const>, unsigned)>;

    explicit file_batches(run_fn run) : run_(std::move(run)) {}

    void add(pool& p, Item item, std::uint64_t size) {
        if (size >= alone_bytes) {
            p.submit_file([run = run_, item = std::move(item)](unsigned self) { run(std::span(&item, 1), self); });
            return;
        }
        items_.push_back(std::move(item));
        bytes_ += size;
        if (items_.size() >= max_items || bytes_ >= max_bytes) flush(p);
    }

    void flush(pool& p) {
        if (items_.empty()) return;
        p.submit_file([run = run_, items = std::move(items_)](unsigned self) { run(items, self); });
        items_.clear();
        bytes_ = 0;
    }

private:
    run_fn run_;
    std::vector<Item> items_;
    std::uint64_t bytes_ = 0;
};

}  // namespace stash::engine::detail
