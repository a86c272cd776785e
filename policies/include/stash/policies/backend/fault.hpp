// A decorator that injects failures and latency into any backend, for testing how the layers above
// (retry, the engine) cope with a bad network.
#pragma once

#include <stash/concepts/backend.hpp>

#include <chrono>
#include <memory>
#include <mutex>
#include <random>
#include <thread>

namespace stash::policies::backend {

struct fault_options {
    double error_rate = 0;                   ///< probability (0…1) that an operation fails transiently
    std::chrono::milliseconds max_latency{0};///< each operation first waits a uniform 0…max_latency
    std::uint64_t seed = 1;                  ///< for reproducible runs
    /// Operations that fail permanently (`errc::forbidden`): "put", "get", "stat", "list", "remove",
    /// "create", optionally with ":" and a file type ("put:pack"). Empty: none.
    std::string fail;
};

/** `fault<B>` models `stash::backend`: each operation waits a random latency, then with
    probability `error_rate` fails with `errc::io` ("injected fault") — half of those before
    calling `B`, half after it (the operation happened but its answer was "lost", the case that
    makes retries need idempotence). Operations matching `fail` always fail with `errc::forbidden`
    without calling `B`. Thread-safe. */
template <stash::backend B>
class fault {
public:
    explicit fault(B inner, fault_options opt = {}) : inner_(std::move(inner)), opt_(std::move(opt)), s_(std::make_shared<state>(opt_.seed)) {}

    std::string location() const { return inner_.location(); }
    result<void> create() { return wrap("create", nullptr, [&] { return inner_.create(); }); }
    result<void> put(handle const& h, byte_span d) { return wrap("put", &h, [&] { return inner_.put(h, d); }); }
    result<void> get(handle const& h, std::uint64_t off, std::uint64_t len, bytes& out) {
        return wrap("get", &h, [&] { return inner_.get(h, off, len, out); });
    }
    result<std::uint64_t> stat(handle const& h) { return wrap("stat", &h, [&] { return inner_.stat(h); }); }
    result<void> list(file_type t, list_fn const& fn) {
        handle const h{t, ""};
        return wrap("list", &h, [&] { return inner_.list(t, fn); });
    }
    result<void> remove(handle const& h) { return wrap("remove", &h, [&] { return inner_.remove(h); }); }

    /// How many faults were injected so far.
    std::uint64_t injected() const {
        std::lock_guard lk(s_->mu);
        return s_->injected;
    }

private:
    static char const* type_name(file_type t) {
        switch (t) {
            case file_type::config: return "config";
            case file_type::key: return "key";
            case file_type::lock: return "lock";
            case file_type::snapshot: return "snapshot";
            case file_type::index: return "index";
            case file_type::pack: return "pack";
        }
        return "";
    }
    bool permanent(std::string_view op, handle const* h) const {
        if (opt_.fail.empty()) return false;
        for (std::size_t pos = 0; pos <= opt_.fail.size();) {
            auto end = std::min(opt_.fail.find(',', pos), opt_.fail.size());
            std::string_view item(opt_.fail.data() + pos, end - pos);
            auto colon = item.find(':');
            if (item.substr(0, colon) == op && (colon == std::string_view::npos || (h && item.substr(colon + 1) == type_name(h->type)))) return true;
            pos = end + 1;
        }
        return false;
    }

    template <class Op>
    auto wrap(std::string_view op, handle const* h, Op&& call) -> decltype(call()) {
        std::string const what = std::string(op) + (h ? " " + (h->name.empty() && h->type != file_type::config ? std::string(type_name(h->type)) : h->str()) : "");
        if (permanent(op, h)) return make_error(errc::forbidden, location() + ": " + what + ": injected permanent fault");
        double p1, p2;
        std::chrono::milliseconds lat{0};
        {
            std::lock_guard lk(s_->mu);
            std::uniform_real_distribution<double> u(0, 1);
            p1 = u(s_->rng), p2 = u(s_->rng);
            if (opt_.max_latency.count() > 0) lat = std::chrono::milliseconds(std::uniform_int_distribution<std::int64_t>(0, opt_.max_latency.count())(s_->rng));
        }
        if (lat.count()) std::this_thread::sleep_for(lat);
        bool const fail = p1 < opt_.error_rate, after = p2 < 0.5;
        if (fail && !after) return injected(what, "before");
        auto r = call();
        if (fail && r) return injected(what, "after");
        return r;
    }
    error injected(std::string const& what, char const* when) {
        std::lock_guard lk(s_->mu);
        ++s_->injected;
        return make_error(errc::io, location() + ": " + what + ": injected fault (" + when + " the operation)");
    }

    struct state {
        explicit state(std::uint64_t seed) : rng(seed) {}
        std::mutex mu;
        std::mt19937_64 rng;
        std::uint64_t injected = 0;
    };
    B inner_;
    fault_options opt_;
    std::shared_ptr<state> s_;  // movable; copies share the random stream
};

}  // namespace stash::policies::backend
