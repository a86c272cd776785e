// A credential (token, session) that the threads of one driver share and renew one at a time.
#pragma once

#include <stash/core/error.hpp>

#include <memory>
#include <mutex>
#include <type_traits>

namespace stash::policies::backend::detail {

/** The credential a driver's requests carry, renewed single-flight: when several requests in
    flight see the same credential rejected (a token expired), one of them obtains a new one while
    the others wait for it, and all go on with that one. The server sees one renewal, not one per
    request in flight.

    `T` is movable. `Fetch` is callable as `result<T>(T const* previous)`, `previous` being null the
    first time; it may keep parts of the previous credential (its connections). Errors are the ones
    `fetch` reports. Thread-safe. */
template <class T>
class shared_credential {
public:
    using ptr = std::shared_ptr<T const>;

    /// The current credential, fetching the first one.
    template <class Fetch>
    result<ptr> get(Fetch&& fetch) {
        if (auto cur = current()) return cur;
        return renew(nullptr, fetch);
    }

    /// A credential other than `stale`: the one another thread obtained while this one waited,
    /// or a newly fetched one.
    template <class Fetch>
    result<ptr> renew(ptr const& stale, Fetch&& fetch) {
        std::lock_guard one(fetch_mu_);
        auto cur = current();
        if (cur && cur != stale) return cur;
        auto next = fetch(cur.get());
        if (!next) return std::move(next).error();
        auto p = std::make_shared<T const>(std::move(*next));
        std::lock_guard lk(mu_);
        cur_ = p;
        return p;
    }

    /// How many times `with_renewal` renews a rejected credential for one request.
    static constexpr int max_renewals = 3;

    /** Runs `attempt(credential)` with `first` (the result of `get`, or of a driver's own check of
        it) and, while `rejected(outcome)` says the server refused the credential (an expired or
        revoked token: HTTP 401), renews it as `renew` does and tries again, `max_renewals` times at
        most: a server may keep handing out tokens that lack a right. `attempt` returns a `result`;
        its last outcome is returned, or the error of obtaining a credential. */
    template <class Fetch, class Attempt, class Rejected>
    auto with_renewal(result<ptr> first, Fetch&& fetch, Attempt&& attempt, Rejected&& rejected)
        -> std::invoke_result_t<Attempt&, ptr const&> {
        auto cred = std::move(first);
        for (int renewals = 0;; ++renewals) {
            if (!cred) return std::move(cred).error();
            auto out = attempt(*cred);
            if (renewals == max_renewals || !rejected(out)) return out;
            cred = renew(*cred, fetch);
        }
    }

private:
    ptr current() {
        std::lock_guard lk(mu_);
        return cur_;
    }

    std::mutex fetch_mu_;  // held across a fetch
    std::mutex mu_;        // guards cur_
    ptr cur_;
};

}  // namespace stash::policies::backend::detail
