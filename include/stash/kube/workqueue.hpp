// A rate-limited work queue of object keys ("namespace/name"), with client-go's semantics: a key is
// queued at most once, never handed to two workers at once (re-added while processing, it comes back
// after `done`), failures back off per key (exponential) under an overall token bucket.
#pragma once

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>

namespace stash::kube {

class workqueue {
public:
    using clock = std::chrono::steady_clock;

    struct options {
        std::chrono::milliseconds base_delay{5};      ///< first retry after a failure
        std::chrono::milliseconds max_delay{1000000};  ///< cap of the per-key exponential backoff
        double qps = 10;                                ///< overall retry rate (token bucket)
        unsigned burst = 100;
    };

    workqueue() : workqueue(options{}) {}
    explicit workqueue(options opt) : opt_(opt), tokens_(opt.burst), refill_(clock::now()) {}

    /// Queues `key` now (no-op if already queued; deferred if being processed).
    void add(std::string const& key) {
        std::lock_guard lk(mu_);
        add_locked(key);
    }

    /// Queues `key` after `delay` (an earlier pending time wins).
    void add_after(std::string const& key, std::chrono::milliseconds delay) {
        std::lock_guard lk(mu_);
        if (shutdown_) return;
        if (delay <= std::chrono::milliseconds::zero()) return add_locked(key);
        auto const at = clock::now() + delay;
        auto it = delayed_.find(key);
        if (it != delayed_.end() && it->second <= at) return;
        delayed_[key] = at;
        cv_.notify_all();
    }

    /// Queues `key` after its backoff: base·2^failures (capped), and no sooner than the overall
    /// bucket allows. Returns the delay chosen.
    std::chrono::milliseconds add_rate_limited(std::string const& key) {
        std::chrono::milliseconds d;
        {
            std::lock_guard lk(mu_);
            unsigned const n = failures_[key]++;
            double const exp = double(opt_.base_delay.count()) * double(1ull << std::min(n, 40u));
            d = std::chrono::milliseconds(std::int64_t(std::min(exp, double(opt_.max_delay.count()))));
            // Overall bucket: each retry takes a token; without one it waits for the next.
            auto const now = clock::now();
            tokens_ = std::min<double>(opt_.burst, tokens_ + std::chrono::duration<double>(now - refill_).count() * opt_.qps);
            refill_ = now;
            tokens_ -= 1;
            if (tokens_ < 0) d = std::max(d, std::chrono::milliseconds(std::int64_t(-tokens_ / opt_.qps * 1000)));
        }
        add_after(key, d);
        return d;
    }

    /// Clears `key`'s failure count (after a success).
    void forget(std::string const& key) {
        std::lock_guard lk(mu_);
        failures_.erase(key);
    }
    unsigned failures(std::string const& key) const {
        std::lock_guard lk(mu_);
        auto it = failures_.find(key);
        return it == failures_.end() ? 0 : it->second;
    }

    /// Blocks for the next key; nullopt once shut down. The caller must call `done(key)`.
    std::optional<std::string> get() {
        std::unique_lock lk(mu_);
        for (;;) {
            promote_locked();
            if (!queue_.empty()) {
                std::string k = std::move(queue_.front());
                queue_.pop_front();
                queued_.erase(k);
                processing_.insert(k);
                return k;
            }
            if (shutdown_) return std::nullopt;
            if (delayed_.empty()) cv_.wait(lk);
            else {
                // A copy: the element may be erased by another thread while this one waits.
                auto const next = std::min_element(delayed_.begin(), delayed_.end(), [](auto const& a, auto const& b) { return a.second < b.second; })->second;
                cv_.wait_until(lk, next);
            }
        }
    }

    /// Ends processing of `key`; if it was added meanwhile, it is queued again now.
    void done(std::string const& key) {
        std::lock_guard lk(mu_);
        processing_.erase(key);
        if (dirty_.erase(key)) add_locked(key);
    }

    /// Wakes every `get` with nullopt once the queue is drained of ready keys; later adds are ignored.
    void shut_down() {
        std::lock_guard lk(mu_);
        shutdown_ = true;
        cv_.notify_all();
    }

    std::size_t size() const {
        std::lock_guard lk(mu_);
        return queue_.size();
    }

private:
    void add_locked(std::string const& key) {
        if (shutdown_) return;
        if (processing_.count(key)) {
            dirty_.insert(key);
            return;
        }
        if (!queued_.insert(key).second) return;
        delayed_.erase(key);
        queue_.push_back(key);
        cv_.notify_one();
    }
    void promote_locked() {
        auto const now = clock::now();
        for (auto it = delayed_.begin(); it != delayed_.end();) {
            if (it->second <= now) {
                std::string k = it->first;
                it = delayed_.erase(it);
                add_locked(k);
            } else {
                ++it;
            }
        }
    }

    options opt_;
    mutable std::mutex mu_;
    std::condition_variable cv_;
    std::deque<std::string> queue_;
    std::set<std::string> queued_, processing_, dirty_;
    std::map<std::string, clock::time_point> delayed_;
    std::map<std::string, unsigned> failures_;
    double tokens_;
    clock::time_point refill_;
    bool shutdown_ = false;
};

}  // namespace stash::kube
