// An informer: a local cache of one resource kept current by list-then-watch, with event handlers,
// re-listing on 410 Gone and on broken watches (with backoff), bookmarks, and periodic resync.
#pragma once

#include <stash/kube/cluster.hpp>

#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>

namespace stash::kube {

/// "namespace/name", or "name" for cluster-scoped objects: the key of caches and work queues.
inline std::string key_of(boost::json::value const& o) {
    auto const& m = o.at("metadata").as_object();
    auto const* ns = m.if_contains("namespace");
    std::string const name(m.at("name").as_string());
    return ns && ns->is_string() && !ns->get_string().empty() ? std::string(ns->get_string()) + "/" + name : name;
}

struct informer_options {
    std::string namespace_;                    ///< "" = all namespaces
    std::string label_selector;
    std::chrono::milliseconds resync{0};       ///< 0 = never; else on_update(o, o) for every object
    std::chrono::milliseconds backoff{200};    ///< first retry after a failed list or watch (doubles, up to 30 s)
    unsigned page_size = 500;                  ///< list page size
};

/** Keeps `cache()` equal to the server's state of resource `r` and tells handlers what changed.
    Handlers run on the informer's thread, one at a time; they must not block for long (hand keys to
    a work queue). Thread-safe reads of the cache. */
template <cluster C>
class informer {
public:
    using object = boost::json::value;
    struct handlers {
        std::function<void(object const&)> on_add;
        std::function<void(object const& old_obj, object const& new_obj)> on_update;
        std::function<void(object const&)> on_delete;
    };

    informer(C& c, resource_type r, informer_options opt = {}) : c_(c), r_(std::move(r)), opt_(std::move(opt)) {}
    informer(informer const&) = delete;
    ~informer() { stop(); }

    void add_handlers(handlers h) {
        std::lock_guard lk(mu_);
        handlers_.push_back(std::move(h));
    }

    /// Starts the list/watch loop on a thread of its own.
    void start() {
        thread_ = std::jthread([this](std::stop_token st) { loop(st); });
    }
    void stop() {
        if (!thread_.joinable()) return;
        thread_.request_stop();
        {
            std::lock_guard lk(mu_);
            stopping_ = true;
            if (watch_) watch_->stop();
            cv_.notify_all();
        }
        thread_.join();
    }

    /// Whether the first list has been loaded.
    bool has_synced() const { return synced_; }
    /// Waits for the first list, up to `timeout`.
    bool wait_for_sync(std::chrono::milliseconds timeout) {
        std::unique_lock lk(mu_);
        return cv_.wait_for(lk, timeout, [&] { return synced_.load(); });
    }

    std::optional<object> get(std::string const& key) const {
        std::lock_guard lk(mu_);
        auto it = cache_.find(key);
        if (it == cache_.end()) return std::nullopt;
        return it->second;
    }
    std::map<std::string, object> cache() const {
        std::lock_guard lk(mu_);
        return cache_;
    }
    /// Objects with an owner reference to `uid` (the owner index).
    std::vector<object> owned_by(std::string const& uid) const {
        std::lock_guard lk(mu_);
        std::vector<object> out;
        for (auto const& [k, o] : cache_) {
            auto const* refs = o.at("metadata").as_object().if_contains("ownerReferences");
            if (!refs || !refs->is_array()) continue;
            for (auto const& r : refs->get_array())
                if (r.is_object() && r.get_object().contains("uid") && r.get_object().at("uid") == boost::json::value(uid)) {
                    out.push_back(o);
                    break;
                }
        }
        return out;
    }
    std::string last_resource_version() const {
        std::lock_guard lk(mu_);
        return rv_;
    }
    /// How many times the informer listed (the first list included): re-lists follow 410 and errors.
    std::uint64_t lists() const noexcept { return lists_; }

private:
    void emit(std::function<void(handlers const&)> const& fn) {
        std::vector<handlers> hs;
        {
            std::lock_guard lk(mu_);
            hs = handlers_;
        }
        for (auto const& h : hs) fn(h);
    }

    // Lists everything (paged) and replaces the cache, telling handlers the differences.
    result<void> relist() {
        std::map<std::string, object> fresh;
        list_request q;
        q.label_selector = opt_.label_selector;
        q.limit = opt_.page_size;
        std::string rv;
        for (;;) {
            auto page = c_.list(r_, opt_.namespace_, q);
            if (!page) return std::move(page).error();
            for (auto& o : page->items) fresh.emplace(key_of(o), std::move(o));
            rv = page->resource_version;
            if (page->continue_.empty()) break;
            q.continue_ = page->continue_;
        }
        ++lists_;
        std::map<std::string, object> old;
        {
            std::lock_guard lk(mu_);
            old.swap(cache_);
            cache_ = fresh;
            rv_ = rv;
        }
        for (auto const& [k, o] : fresh) {
            auto it = old.find(k);
            if (it == old.end()) emit([&](handlers const& h) { if (h.on_add) h.on_add(o); });
            else if (it->second != o) emit([&, &prev = it->second](handlers const& h) { if (h.on_update) h.on_update(prev, o); });
        }
        for (auto const& [k, o] : old)
            if (!fresh.count(k)) emit([&](handlers const& h) { if (h.on_delete) h.on_delete(o); });
        if (!synced_) {
            std::lock_guard lk(mu_);
            synced_ = true;
            cv_.notify_all();
        }
        return {};
    }

    void apply(watch_event const& ev) {
        if (ev.type == "BOOKMARK") {
            std::lock_guard lk(mu_);
            if (auto const* m = ev.object.as_object().if_contains("metadata"); m && m->is_object())
                if (auto const* v = m->get_object().if_contains("resourceVersion"); v && v->is_string()) rv_ = std::string(v->get_string());
            return;
        }
        auto const key = key_of(ev.object);
        std::optional<object> prev;
        {
            std::lock_guard lk(mu_);
            auto it = cache_.find(key);
            if (it != cache_.end()) prev = it->second;
            if (ev.type == "DELETED") cache_.erase(key);
            else cache_[key] = ev.object;
            rv_ = std::string(ev.object.at("metadata").at("resourceVersion").as_string());
        }
        if (ev.type == "DELETED") emit([&](handlers const& h) { if (h.on_delete) h.on_delete(ev.object); });
        else if (prev) emit([&](handlers const& h) { if (h.on_update) h.on_update(*prev, ev.object); });
        else emit([&](handlers const& h) { if (h.on_add) h.on_add(ev.object); });
    }

    enum class watch_outcome { failed, empty, events, gone, stopped };

    // One watch from the last version seen, until the stream ends (server timeout, error, stop);
    // runs the resync on schedule meanwhile.
    watch_outcome watch_once(std::stop_token const& st, std::chrono::steady_clock::time_point& next_resync) {
        std::mutex done_mu;
        std::condition_variable done_cv;
        bool ended = false, gone = false;
        std::atomic<bool> got_event{false};
        watch_request wq;
        wq.resource_version = last_resource_version();
        wq.label_selector = opt_.label_selector;
        wq.bookmarks = true;
        wq.timeout_seconds = 300;
        auto w = c_.watch(r_, opt_.namespace_, wq, [&](watch_event const& ev) {
            if (ev.type.empty() || ev.type == "ERROR") {
                auto const* code = ev.type.empty() || !ev.object.is_object() ? nullptr : ev.object.get_object().if_contains("code");
                std::lock_guard lk(done_mu);
                if (code && *code == boost::json::value(410)) gone = true;
                if (ev.type.empty()) ended = true;
                done_cv.notify_all();
                return;
            }
            got_event = true;
            apply(ev);
        });
        if (!w) return w.error().is(errc::gone) ? watch_outcome::gone : watch_outcome::failed;
        {
            std::lock_guard lk(mu_);
            watch_ = &*w;
        }
        {
            std::unique_lock lk(done_mu);
            // Bounded waits: a missed wake-up costs a second, never a hang.
            for (;;) {
                auto const now = std::chrono::steady_clock::now();
                auto const until = std::min(now + std::chrono::seconds(1), opt_.resync.count() > 0 ? next_resync : now + std::chrono::seconds(1));
                if (done_cv.wait_until(lk, until, [&] { return ended || st.stop_requested(); })) break;
                if (opt_.resync.count() > 0 && std::chrono::steady_clock::now() >= next_resync) {
                    lk.unlock();
                    for (auto const& [k, o] : cache()) emit([&](handlers const& h) { if (h.on_update) h.on_update(o, o); });
                    lk.lock();
                    next_resync = std::chrono::steady_clock::now() + opt_.resync;
                }
            }
        }
        {
            std::lock_guard lk(mu_);
            watch_ = nullptr;
        }
        w->stop();  // joins the stream's thread: nothing refers to this frame afterwards
        if (st.stop_requested()) return watch_outcome::stopped;
        if (gone) return watch_outcome::gone;
        return got_event ? watch_outcome::events : watch_outcome::empty;
    }

    // client-go's reflector: list, then watch from the list's version; 410 re-lists at once; a failed
    // list or watch, or a stream that ends without events (a server restarting), waits with a backoff
    // that doubles up to 30 s and starts over after any success.
    void loop(std::stop_token st) {
        auto delay = opt_.backoff;
        auto back_off = [&] {
            std::unique_lock lk(mu_);
            cv_.wait_for(lk, delay, [&] { return stopping_; });
            delay = std::min(delay * 2, std::chrono::milliseconds(30000));
        };
        bool need_list = true;
        auto next_resync = std::chrono::steady_clock::now() + opt_.resync;
        while (!st.stop_requested()) {
            if (need_list) {
                if (!relist()) {
                    back_off();
                    continue;
                }
                need_list = false;
                delay = opt_.backoff;
            }
            switch (watch_once(st, next_resync)) {
                case watch_outcome::stopped: return;
                case watch_outcome::gone: need_list = true; break;
                case watch_outcome::events: delay = opt_.backoff; break;
                case watch_outcome::failed:
                case watch_outcome::empty: back_off(); break;
            }
        }
    }

    C& c_;
    resource_type r_;
    informer_options opt_;
    mutable std::mutex mu_;
    std::condition_variable cv_;
    std::map<std::string, object> cache_;
    std::string rv_;
    std::vector<handlers> handlers_;
    std::atomic<bool> synced_{false};
    std::atomic<std::uint64_t> lists_{0};
    bool stopping_ = false;
    watch_handle* watch_ = nullptr;
    std::jthread thread_;
};

}  // namespace stash::kube
