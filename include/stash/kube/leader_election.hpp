// Leader election over a coordination.k8s.io/v1 Lease, with client-go's timing rules: a candidate
// takes the lease once its holder has not renewed it for leaseDuration (judged by the local clock
// since the record was last seen to change, so clock skew between hosts does not matter); the leader
// renews every retryPeriod and steps down when it could not renew within renewDeadline.
#pragma once

#include <stash/core/time.hpp>
#include <stash/kube/cluster.hpp>

#include <atomic>
#include <chrono>
#include <functional>
#include <thread>

namespace stash::kube {

struct leader_election_config {
    std::string namespace_ = "kube-system";
    std::string name = "stash-operator";
    std::string identity;  ///< unique per process: hostname + "_" + pid
    std::chrono::milliseconds lease_duration{15000}, renew_deadline{10000}, retry_period{2000};
};

inline resource_type const leases{"coordination.k8s.io", "v1", "leases", true};

/** Runs the election for `cfg.name`. `run` blocks: it acquires the lease, calls `on_started_leading`
    (which should start the work and return), renews, and returns after calling
    `on_stopped_leading` when leadership is lost or `stop` is requested — then the lease is released
    (holder cleared) so another candidate takes over at once. */
template <cluster C>
class leader_elector {
public:
    leader_elector(C& c, leader_election_config cfg, std::function<void()> on_started_leading, std::function<void()> on_stopped_leading)
        : c_(c), cfg_(std::move(cfg)), started_(std::move(on_started_leading)), stopped_(std::move(on_stopped_leading)) {}

    bool is_leader() const noexcept { return leader_; }

    void run(std::stop_token st) {
        // Candidate: try until the lease is ours.
        while (!st.stop_requested()) {
            if (try_acquire_or_renew()) break;
            wait(st, cfg_.retry_period);
        }
        if (st.stop_requested()) return;
        leader_ = true;
        if (started_) started_();
        auto last_renew = std::chrono::steady_clock::now();
        while (!st.stop_requested()) {
            wait(st, cfg_.retry_period);
            if (st.stop_requested()) break;
            if (try_acquire_or_renew()) {
                last_renew = std::chrono::steady_clock::now();
            } else if (std::chrono::steady_clock::now() - last_renew > cfg_.renew_deadline) {
                break;  // lost: someone else holds it, or we could not reach the server in time
            }
        }
        leader_ = false;
        if (stopped_) stopped_();
        if (st.stop_requested()) release();
    }

private:
    static void wait(std::stop_token const& st, std::chrono::milliseconds d) {
        auto const until = std::chrono::steady_clock::now() + d;
        while (!st.stop_requested() && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    static std::string micro_time() {
        auto t = timestamp::now();
        t.nsec = t.nsec / 1000 * 1000;
        return format_rfc3339(t);
    }

    // One attempt, as client-go's tryAcquireOrRenew: create, take over an expired lease, or renew ours.
    bool try_acquire_or_renew() {
        auto const now = micro_time();
        auto const secs = std::max<std::int64_t>(1, std::chrono::duration_cast<std::chrono::seconds>(cfg_.lease_duration).count());
        auto cur = c_.get(leases, cfg_.namespace_, cfg_.name);
        if (!cur) {
            if (!cur.error().is(errc::not_found)) return false;
            boost::json::object lease{
                {"apiVersion", "coordination.k8s.io/v1"},
                {"kind", "Lease"},
                {"metadata", boost::json::object{{"name", cfg_.name}, {"namespace", cfg_.namespace_}}},
                {"spec", boost::json::object{{"holderIdentity", cfg_.identity}, {"leaseDurationSeconds", secs}, {"acquireTime", now},
                                             {"renewTime", now}, {"leaseTransitions", 0}}}};
            auto made = c_.create(leases, cfg_.namespace_, std::move(lease));
            if (made) observe(*made);
            return bool(made);
        }
        auto& spec_v = cur->as_object()["spec"];
        if (!spec_v.is_object()) spec_v = boost::json::object{};
        auto& spec = spec_v.get_object();
        auto str = [&](char const* k) {
            auto const* v = spec.if_contains(k);
            return v && v->is_string() ? std::string(v->get_string()) : std::string();
        };
        std::string const holder = str("holderIdentity");
        observe(*cur);
        bool const ours = holder == cfg_.identity;
        auto const held_for = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::seconds(
            spec.contains("leaseDurationSeconds") && spec.at("leaseDurationSeconds").is_int64() ? spec.at("leaseDurationSeconds").get_int64() : secs));
        if (!ours && !holder.empty() && std::chrono::steady_clock::now() < observed_at_ + held_for) return false;  // still held
        if (!ours) {
            spec["acquireTime"] = now;
            std::int64_t const t = spec.contains("leaseTransitions") && spec.at("leaseTransitions").is_int64() ? spec.at("leaseTransitions").get_int64() : 0;
            spec["leaseTransitions"] = holder.empty() && t == 0 ? t : t + 1;
        }
        spec["holderIdentity"] = cfg_.identity;
        spec["leaseDurationSeconds"] = secs;
        spec["renewTime"] = now;
        auto upd = c_.update(leases, cfg_.namespace_, cfg_.name, *cur, "");  // carries resourceVersion: a race is a conflict
        if (upd) observe(*upd);
        return bool(upd);
    }

    // Remembers when the lease record last changed, by our clock.
    void observe(boost::json::value const& lease) {
        auto const rv = lease.at("metadata").at("resourceVersion");
        if (rv != observed_rv_) {
            observed_rv_ = rv;
            observed_at_ = std::chrono::steady_clock::now();
        }
    }

    // Clears the holder so a candidate need not wait for the lease to expire.
    void release() {
        auto cur = c_.get(leases, cfg_.namespace_, cfg_.name);
        if (!cur) return;
        auto& spec = cur->as_object()["spec"].as_object();
        if (!spec.contains("holderIdentity") || spec.at("holderIdentity") != boost::json::value(cfg_.identity)) return;
        spec["holderIdentity"] = "";
        spec["leaseDurationSeconds"] = 1;
        spec["renewTime"] = micro_time();
        (void)c_.update(leases, cfg_.namespace_, cfg_.name, *cur, "");
    }

    C& c_;
    leader_election_config cfg_;
    std::function<void()> started_, stopped_;
    std::atomic<bool> leader_{false};
    boost::json::value observed_rv_;
    std::chrono::steady_clock::time_point observed_at_ = std::chrono::steady_clock::now();
};

}  // namespace stash::kube
