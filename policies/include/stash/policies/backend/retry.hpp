// A decorator that retries the transient failures of any backend: exponential backoff with jitter,
// bounded in attempts.
#pragma once

#include <stash/concepts/backend.hpp>
#include <stash/crypto/random.hpp>
#include <stash/policies/net/http.hpp>

#include <chrono>
#include <functional>
#include <thread>
#include <unordered_set>

namespace stash::policies::backend {

struct retry_options {
    unsigned attempts = 8;                        ///< tries in all, the first included
    std::chrono::milliseconds initial{250};       ///< delay before the second try
    std::chrono::milliseconds max_delay{15000};   ///< delays double up to this
    /// Called before each wait (for logs): the failed operation's error, the try that failed (1-based), the delay.
    std::function<void(error const&, unsigned, std::chrono::milliseconds)> on_retry;
};

/** `retry<B>` models `stash::backend` by calling `B` and, on a transient error (`errc::io`,
    `errc::timeout`: network failures, HTTP 429 and 5xx), waiting and trying again: delays grow
    ×2 from `initial` to `max_delay`, each drawn uniformly from [d/2, d] so that many clients do
    not retry in step. Permanent errors (not found, authentication, corrupt data) return at once;
    after the last try the last error is returned, with the number of tries in its message.

    Retries are safe because every write is idempotent in a restic repository (a file's name is the
    hash of its content): a `put` whose first try did land but whose answer was lost may be refused
    on the retry by servers that forbid overwriting (403, rest-server); it counts as done when the
    file is there with the right size. Likewise a retried `remove` that finds nothing.
*/
template <stash::backend B>
class retry {
public:
    explicit retry(B inner, retry_options opt = {}) : inner_(std::move(inner)), opt_(std::move(opt)) {}

    B& inner() noexcept { return inner_; }
    std::string location() const { return inner_.location(); }
    result<void> create() { return run([&] { return inner_.create(); }); }
    result<void> put(handle const& h, byte_span data) {
        unsigned tries = 0;
        return run([&]() -> result<void> {
            auto r = inner_.put(h, data);
            if (!r && ++tries > 1 && (r.error().is(errc::forbidden) || r.error().is(errc::already_exists)))
                if (auto s = inner_.stat(h); s && *s == data.size()) return {};
            return r;
        });
    }
    result<void> get(handle const& h, std::uint64_t off, std::uint64_t len, bytes& out) {
        return run([&] { return inner_.get(h, off, len, out); });
    }
    result<std::uint64_t> stat(handle const& h) { return run([&] { return inner_.stat(h); }); }
    result<void> list(file_type t, list_fn const& fn) {
        // A listing that fails halfway is started again; names already reported are not repeated.
        std::unordered_set<std::string> seen;
        return run([&] {
            return inner_.list(t, [&](std::string_view name, std::uint64_t size) {
                if (seen.emplace(name).second) fn(name, size);
            });
        });
    }
    result<void> remove(handle const& h) {
        unsigned tries = 0;
        return run([&]() -> result<void> {
            auto r = inner_.remove(h);
            if (!r && ++tries > 1 && r.error().is(errc::not_found)) return {};
            return r;
        });
    }

private:
    template <class Op>
    auto run(Op&& op) -> decltype(op()) {
        auto delay = opt_.initial;
        for (unsigned attempt = 1;; ++attempt) {
            auto r = op();
            if (r || !net::transient(r.error())) return r;
            if (attempt >= opt_.attempts)
                return error{r.error().code, r.error().what() + " (gave up after " + std::to_string(attempt) + " tries)"};
            std::uint32_t rnd;
            crypto::random_bytes(std::as_writable_bytes(std::span(&rnd, 1)));
            auto const wait = delay / 2 + std::chrono::milliseconds(delay.count() > 1 ? rnd % (delay.count() / 2 + 1) : 0);
            if (opt_.on_retry) opt_.on_retry(r.error(), attempt, wait);
            std::this_thread::sleep_for(wait);
            delay = std::min(delay * 2, opt_.max_delay);
        }
    }

    B inner_;
    retry_options opt_;
};

}  // namespace stash::policies::backend
