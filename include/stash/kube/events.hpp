// Events (core/v1 Event) for user-visible decisions, written the way client-go's recorder writes them
// so `kubectl describe` and `kubectl get events` show them: named "<object>.<hex nanoseconds>", in the
// object's namespace, with involvedObject, reason, message, type, source, first/lastTimestamp and
// count. A repeat of the same (object, type, reason, message) within `aggregate_window` bumps the
// count of the existing Event instead of creating another.
#pragma once

#include <stash/core/log.hpp>
#include <stash/kube/cluster.hpp>
#include <stash/kube/document.hpp>

#include <unistd.h>

#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <unordered_map>

namespace stash::kube {

inline resource_type const events{"", "v1", "events", true};

enum class event_type { normal, warning };

struct event_recorder_options {
    std::string component = "stash-operator";  ///< source.component and reportingComponent
    std::string host;                           ///< source.host; default: this host's name
    std::size_t queue_limit = 1000;             ///< events waiting to be written; beyond it, dropped (and counted)
    std::chrono::seconds aggregate_window{600}; ///< repeats within it bump count
};

/** Records Events through cluster `C` on a thread of its own: `record` never waits for the server,
    so a reconciler is not slowed by it. A write that fails is logged at warn and dropped (an Event
    is a hint to users, not state). `flush` waits until everything queued has been written. */
template <cluster C>
class event_recorder {
public:
    event_recorder(C& c, event_recorder_options opt = {}, logger log = logger())
        : c_(c), opt_(std::move(opt)), log_(log.with({{"component", "events"}})) {
        if (opt_.host.empty()) {
            char h[256] = {};
            ::gethostname(h, sizeof h - 1);
            opt_.host = h;
        }
        thread_ = std::jthread([this](std::stop_token st) { loop(st); });
    }
    event_recorder(event_recorder const&) = delete;
    ~event_recorder() {
        {
            std::lock_guard lk(mu_);
            stopping_ = true;
        }
        cv_.notify_all();
        thread_ = {};  // writes what is queued, then joins
    }

    /// Queues an Event about `obj` (a full object: apiVersion, kind and metadata are read from it).
    void record(document const& obj, event_type type, std::string reason, std::string message) {
        pending p{obj.api_version(), obj.kind(), obj.namespace_(), obj.name(), obj.uid(), obj.resource_version(), type,
                  std::move(reason), std::move(message), timestamp::now()};
        std::lock_guard lk(mu_);
        if (queue_.size() >= opt_.queue_limit) {
            ++dropped_;
            return;
        }
        queue_.push_back(std::move(p));
        cv_.notify_all();
    }
    void normal(document const& obj, std::string reason, std::string message) { record(obj, event_type::normal, std::move(reason), std::move(message)); }
    void warning(document const& obj, std::string reason, std::string message) { record(obj, event_type::warning, std::move(reason), std::move(message)); }

    /// Waits until the queue is empty and the last write has finished, up to `timeout`.
    bool flush(std::chrono::milliseconds timeout) {
        std::unique_lock lk(mu_);
        return idle_cv_.wait_for(lk, timeout, [&] { return queue_.empty() && !busy_; });
    }
    /// Events dropped because the queue was full.
    std::uint64_t dropped() const {
        std::lock_guard lk(mu_);
        return dropped_;
    }

private:
    struct pending {
        std::string api_version, kind, namespace_, name, uid, resource_version;
        event_type type;
        std::string reason, message;
        timestamp at;
    };
    struct seen {
        std::string event_name;
        std::int64_t count;
        timestamp first;
    };

    void loop(std::stop_token) {
        std::unique_lock lk(mu_);
        for (;;) {
            cv_.wait(lk, [&] { return stopping_ || !queue_.empty(); });
            if (queue_.empty()) return;  // stopping, nothing left
            auto p = std::move(queue_.front());
            queue_.pop_front();
            busy_ = true;
            lk.unlock();
            write(p);
            lk.lock();
            busy_ = false;
            if (queue_.empty()) idle_cv_.notify_all();
        }
    }

    void write(pending const& p) {
        // Cluster-scoped objects (Nodes, Namespaces) get their Events in "default", as client-go does.
        std::string const ns = p.namespace_.empty() ? "default" : p.namespace_;
        std::string const type = p.type == event_type::warning ? "Warning" : "Normal";
        std::string const key = p.uid + '\x1f' + p.kind + '\x1f' + ns + '\x1f' + p.name + '\x1f' + type + '\x1f' + p.reason + '\x1f' + p.message;
        std::string const at = format_rfc3339({p.at.sec, 0, 0});  // Event times are whole seconds
        if (auto it = seen_.find(key); it != seen_.end() && p.at.sec - it->second.first.sec < opt_.aggregate_window.count()) {
            auto patch = boost::json::object{{"count", it->second.count + 1}, {"lastTimestamp", at}};
            auto r = c_.patch(events, ns, it->second.event_name, patch_type::merge, patch, "");
            if (r) {
                ++it->second.count;
                return;
            }
            if (!r.error().is(errc::not_found)) {
                log_.warn("cannot update event", {{"event", ns + "/" + it->second.event_name}, {"error", r.error().what()}});
                return;
            }
            // Gone (expired by the server's TTL): create a fresh one below.
        }
        char hex[32];
        std::snprintf(hex, sizeof hex, "%llx", static_cast<unsigned long long>(p.at.sec * 1'000'000'000LL + p.at.nsec));
        std::string const name = p.name + "." + hex;
        boost::json::object involved{{"kind", p.kind}, {"name", p.name}, {"apiVersion", p.api_version}};
        if (!p.namespace_.empty()) involved["namespace"] = p.namespace_;
        if (!p.uid.empty()) involved["uid"] = p.uid;
        if (!p.resource_version.empty()) involved["resourceVersion"] = p.resource_version;
        boost::json::object ev{{"apiVersion", "v1"},
                               {"kind", "Event"},
                               {"metadata", boost::json::object{{"name", name}, {"namespace", ns}}},
                               {"involvedObject", std::move(involved)},
                               {"reason", p.reason},
                               {"message", p.message},
                               {"type", type},
                               {"source", boost::json::object{{"component", opt_.component}, {"host", opt_.host}}},
                               {"reportingComponent", opt_.component},
                               {"reportingInstance", opt_.host},
                               {"firstTimestamp", at},
                               {"lastTimestamp", at},
                               {"count", 1}};
        if (auto r = c_.create(events, ns, ev); !r) {
            log_.warn("cannot record event", {{"object", p.kind + " " + ns + "/" + p.name}, {"reason", p.reason}, {"error", r.error().what()}});
            return;
        }
        if (seen_.size() >= 4096) seen_.clear();  // bounded memory; a repeat after this starts a new Event
        seen_[key] = {name, 1, p.at};
    }

    C& c_;
    event_recorder_options opt_;
    logger log_;
    mutable std::mutex mu_;
    std::condition_variable cv_, idle_cv_;
    std::deque<pending> queue_;
    bool stopping_ = false, busy_ = false;
    std::uint64_t dropped_ = 0;
    std::unordered_map<std::string, seen> seen_;  // touched by the writer thread only
    std::jthread thread_;
};

}  // namespace stash::kube
