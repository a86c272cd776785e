// Reconcilers and the workers that drive them from a work queue.
#pragma once

#include <stash/core/error.hpp>
#include <stash/core/log.hpp>
#include <stash/kube/workqueue.hpp>

#include <atomic>
#include <concepts>
#include <functional>
#include <thread>
#include <vector>

namespace stash::kube {

/// What a reconcile asks for next: nothing, to run again soon (`requeue`), or after a delay.
struct reconcile_result {
    bool requeue = false;
    std::chrono::milliseconds requeue_after{0};
};

/** A reconciler brings the world in line with one object, named by its key ("namespace/name", or
    "name" for cluster-scoped kinds). It must be idempotent: it is called again for the same key
    whenever anything about it may have changed, and after failures.

    | expression         | type                       | semantics |
    |--------------------|----------------------------|-----------|
    | `r.reconcile(key)` | `result<reconcile_result>` | an error is retried with per-key exponential backoff; an exception is logged and retried the same way |
*/
template <class R>
concept reconciler = requires(R& r, std::string const& key) {
    { r.reconcile(key) } -> std::same_as<result<reconcile_result>>;
};

/** Runs `workers` threads that take keys from `queue` and reconcile them: never two workers on one
    key (the queue guarantees it), failures retried with growing delays, successes forget the
    failure count. Failed reconciles and exceptions are logged at error with the key and the delay
    before the retry (milliseconds). */
template <reconciler R>
class controller {
public:
    controller(R& r, workqueue& q, unsigned workers, logger log = logger()) : r_(r), q_(q), log_(std::move(log)) {
        for (unsigned i = 0; i < workers; ++i) threads_.emplace_back([this] { run(); });
    }
    controller(controller const&) = delete;
    /// Shuts the queue down and joins the workers.
    ~controller() { stop(); }
    void stop() {
        q_.shut_down();
        threads_.clear();
    }

    std::uint64_t reconciles() const noexcept { return reconciles_; }

private:
    void run() {
        while (auto key = q_.get()) {
            ++reconciles_;
            result<reconcile_result> res = reconcile_result{};
            try {
                res = r_.reconcile(*key);
            } catch (std::exception const& e) {
                res = make_error(errc::io, std::string("reconcile panicked: ") + e.what());
            } catch (...) {
                res = make_error(errc::io, "reconcile panicked");
            }
            if (!res) {
                auto const d = q_.add_rate_limited(*key);
                log_.error("reconcile failed", {{"key", *key}, {"error", res.error().what()}, {"retry_ms", d.count()}});
            } else {
                q_.forget(*key);
                if (res->requeue_after.count() > 0) q_.add_after(*key, res->requeue_after);
                else if (res->requeue) q_.add_rate_limited(*key);
            }
            q_.done(*key);
        }
    }

    R& r_;
    workqueue& q_;
    logger log_;
    std::atomic<std::uint64_t> reconciles_{0};
    std::vector<std::jthread> threads_;
};

}  // namespace stash::kube
