// Progress counters shared between an engine's threads and whoever reports them.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>

namespace stash::engine {

/// A consistent reading of the counters.
struct progress_snapshot {
    double seconds = 0;                     ///< since the operation started
    std::uint64_t files_done = 0, files_total = 0;
    std::uint64_t bytes_done = 0, bytes_total = 0;
    std::uint64_t errors = 0;
    bool final = false;                     ///< the last report of the operation
};

/// Atomic counters; `files_total`/`bytes_total` grow while the walker discovers input.
struct progress_counters {
    std::atomic<std::uint64_t> files_done{0}, files_total{0}, bytes_done{0}, bytes_total{0}, errors{0};
    std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();

    /// A total never reads below what is done (a scanner may trail, a file may have grown).
    progress_snapshot read(bool final = false) const {
        progress_snapshot p{std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(),
                            files_done.load(), files_total.load(), bytes_done.load(), bytes_total.load(), errors.load(), final};
        p.files_total = std::max(p.files_total, p.files_done);
        p.bytes_total = std::max(p.bytes_total, p.bytes_done);
        return p;
    }
};

using progress_fn = std::function<void(progress_snapshot const&)>;

/// Calls `fn` every `interval` from a thread of its own until destroyed, then once more with `final`.
class progress_reporter {
public:
    progress_reporter(progress_counters const& c, progress_fn fn, std::chrono::milliseconds interval)
        : c_(c), fn_(std::move(fn)) {
        if (!fn_) return;
        thread_ = std::jthread([this, interval](std::stop_token st) {
            std::mutex m;
            std::condition_variable_any cv;
            std::unique_lock lk(m);
            for (;;) {
                cv.wait_for(lk, st, interval, [] { return false; });
                if (st.stop_requested()) return;
                fn_(c_.read());
            }
        });
    }
    ~progress_reporter() { finish(); }
    void finish() {
        if (!fn_) return;
        thread_ = {};
        fn_(c_.read(true));
        fn_ = nullptr;
    }

private:
    progress_counters const& c_;
    progress_fn fn_;
    std::jthread thread_;
};

}  // namespace stash::engine
