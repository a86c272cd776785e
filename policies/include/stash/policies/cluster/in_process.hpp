// Cluster policy `in_process`: the embedded API server's store called directly, without HTTP — for
// unit tests of reconcilers, and for the operator when it runs the embedded cluster itself.
#pragma once

#include <stash/embedded/patch.hpp>
#include <stash/embedded/store.hpp>
#include <stash/kube/cluster.hpp>

#include <condition_variable>
#include <deque>
#include <thread>

namespace stash::policies::cluster {

/** Models `stash::kube::cluster` over an `embedded::store`. Watch events are handed to a thread of
    the watch's own, so handlers may call back into the cluster. Thread-safe. */
class in_process {
public:
    in_process(embedded::store& st, embedded::registry& reg, std::string default_ns = "default")
        : st_(st), reg_(reg), ns_(std::move(default_ns)) {}

    std::string default_namespace() const { return ns_; }

    result<boost::json::value> get(kube::resource_type const& r, std::string const& ns, std::string const& name) {
        auto ri = info(r);
        if (!ri) return std::move(ri).error();
        return st_.get(*ri, ns, name);
    }
    result<kube::list_response> list(kube::resource_type const& r, std::string const& ns, kube::list_request const& q) {
        auto ri = info(r);
        if (!ri) return std::move(ri).error();
        embedded::list_options lo;
        lo.namespace_ = ns, lo.limit = q.limit, lo.continue_ = q.continue_;
        auto l = embedded::selector::parse(q.label_selector, "labelSelector");
        if (!l) return std::move(l).error();
        auto f = embedded::selector::parse(q.field_selector, "fieldSelector");
        if (!f) return std::move(f).error();
        lo.labels = std::move(*l), lo.fields = std::move(*f);
        auto res = st_.list(*ri, lo);
        if (!res) return std::move(res).error();
        return kube::list_response{std::move(res->items), std::to_string(res->rv), res->continue_};
    }
    result<boost::json::value> create(kube::resource_type const& r, std::string const& ns, boost::json::value o) {
        auto ri = info(r);
        if (!ri) return std::move(ri).error();
        return st_.create(*ri, ns, std::move(o));
    }
    result<boost::json::value> update(kube::resource_type const& r, std::string const& ns, std::string const& name, boost::json::value o,
                                      std::string const& sub = {}) {
        auto ri = info(r);
        if (!ri) return std::move(ri).error();
        return st_.update(*ri, ns, name, std::move(o), sub == "status");
    }
    result<boost::json::value> patch(kube::resource_type const& r, std::string const& ns, std::string const& name, kube::patch_type t,
                                     boost::json::value p, std::string const& sub = {}) {
        auto ri = info(r);
        if (!ri) return std::move(ri).error();
        return st_.modify(*ri, ns, name, sub == "status", [&](boost::json::value cur) -> result<boost::json::value> {
            switch (t) {
            case kube::patch_type::merge: return embedded::merge_patch(std::move(cur), p);
            case kube::patch_type::json: return embedded::json_patch(std::move(cur), p);
            case kube::patch_type::strategic: return embedded::strategic_merge_patch(std::move(cur), p);
            }
            return cur;
        });
    }
    result<void> remove(kube::resource_type const& r, std::string const& ns, std::string const& name, kube::deletion d) {
        auto ri = info(r);
        if (!ri) return std::move(ri).error();
        auto p = d == kube::deletion::foreground ? embedded::propagation::foreground
                 : d == kube::deletion::orphan   ? embedded::propagation::orphan
                                                 : embedded::propagation::background;
        auto res = st_.remove(*ri, ns, name, p);
        if (!res) return std::move(res).error();
        return {};
    }

    result<kube::watch_handle> watch(kube::resource_type const& r, std::string const& ns, kube::watch_request const& q,
                                     std::function<void(kube::watch_event const&)> fn) {
        auto ri = info(r);
        if (!ri) return std::move(ri).error();
        auto l = embedded::selector::parse(q.label_selector, "labelSelector");
        if (!l) return std::move(l).error();
        struct state {
            std::mutex mu;
            std::condition_variable cv;
            std::deque<kube::watch_event> q;
            bool done = false;
        };
        auto s = std::make_shared<state>();
        auto const from = std::strtoull(q.resource_version.c_str(), nullptr, 10);
        auto id = st_.watch(*ri, ns, from, [s, labels = *l](embedded::watch_event const& ev) {
            if (!labels.matches_labels(ev.object.get_object())) return;
            std::lock_guard lk(s->mu);
            s->q.push_back({ev.type, ev.object});
            s->cv.notify_one();
        });
        if (!id) {
            if (!id.error().is(errc::gone)) return std::move(id).error();
            // As over HTTP: the stream opens, carries one ERROR event with a 410 Status, and ends.
            boost::json::object status{{"kind", "Status"}, {"apiVersion", "v1"}, {"status", "Failure"}, {"reason", "Expired"},
                                        {"code", 410}, {"message", id.error().what()}};
            std::lock_guard lk(s->mu);
            s->q.push_back({"ERROR", std::move(status)});
            s->done = true;
        }
        auto thread = std::make_shared<std::jthread>([s, fn = std::move(fn)] {
            for (;;) {
                std::unique_lock lk(s->mu);
                s->cv.wait(lk, [&] { return s->done || !s->q.empty(); });
                if (s->q.empty()) break;
                auto ev = std::move(s->q.front());
                s->q.pop_front();
                lk.unlock();
                fn(ev);
            }
            fn({"", boost::json::value()});
        });
        auto& st = st_;
        std::optional<std::uint64_t> wid = id ? std::optional<std::uint64_t>(*id) : std::nullopt;
        return kube::watch_handle([&st, wid, s, thread] {
            if (wid) st.unwatch(*wid);
            {
                std::lock_guard lk(s->mu);
                s->done = true;
                s->cv.notify_one();
            }
            if (thread->joinable() && thread->get_id() != std::this_thread::get_id()) thread->join();
        });
    }

private:
    result<embedded::resource_info> info(kube::resource_type const& r) const {
        auto ri = reg_.find(r.group, r.version, r.plural);
        if (!ri) return make_error(errc::not_found, "the server could not find the requested resource (" + r.plural + "." + r.group + ")");
        return *ri;
    }

    embedded::store& st_;
    embedded::registry& reg_;
    std::string ns_;
};

static_assert(kube::cluster<in_process>);

}  // namespace stash::policies::cluster
