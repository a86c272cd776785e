// The one place the agent picks its policies.
#pragma once

#include <stash/policies/backend/any.hpp>
#include <stash/policies/backend/azure.hpp>
#include <stash/policies/backend/b2.hpp>
#include <stash/policies/backend/cache.hpp>
#include <stash/policies/backend/fault.hpp>
#include <stash/policies/backend/gcs.hpp>
#include <stash/policies/backend/local.hpp>
#include <stash/policies/backend/rest.hpp>
#include <stash/policies/backend/retry.hpp>
#include <stash/policies/backend/s3.hpp>
#include <stash/policies/backend/swift.hpp>
#include <stash/policies/chunk/fastcdc.hpp>
#include <stash/policies/chunk/rabin.hpp>
#include <stash/policies/compress/zstd.hpp>
#include <stash/policies/hash/sha256.hpp>
#include <stash/repo/repository.hpp>

#include <cstdlib>
#include <map>
#include <set>
#include <iostream>
#include <variant>

namespace stash::agent {

/// The driver is picked at run time from the repository string, so the repository holds any of them.
using stock_backend = policies::backend::any;
using stock_repo = repo::repository<stock_backend, policies::hash::sha256>;
// Level 2: on the Linux source tree, 12% faster than level 3 for a repository 1.5% larger; level 1
// was no faster and 3% larger. Minimum match 6 for blobs up to 16 KiB: 1.5-5% faster again for a
// repository 0.8% larger (1.022x restic's) (docs/performance.md).
using stock_compressor = policies::compress::zstd<2, 6>;
/// The chunker is chosen per repository (its config), so it is a closed variant of the stock ones.
using any_chunker = std::variant<policies::chunk::rabin, policies::chunk::fastcdc>;

/// The chunker a repository's config asks for. Errors: an unknown chunker name.
inline result<any_chunker> chunker_for(repo::config const& c) {
    if (c.chunker == "rabin") return any_chunker(policies::chunk::rabin(c.chunker_polynomial));
    if (c.chunker == "fastcdc") return any_chunker(policies::chunk::fastcdc());
    return make_error(errc::unsupported, "config: unknown chunker \"" + c.chunker + "\"");
}

namespace detail {
// STASH_TEST_FAULTS="rate=0.2,latency=20,seed=7,fail=put:pack,retry=10,tries=20" puts the fault
// decorator under the retry decorator: for tests of how backups survive a bad network (latency: the
// most an operation is delayed, retry: the first delay before a retry, both in milliseconds; tries:
// attempts in all: at rate 0.2, 8 tries leave a 2.6e-6 chance per operation that every try fails,
// so about one 20,000-request restore in 20 would fail; 20 tries make that 1e-14).
struct test_fault_spec {
    policies::backend::fault_options faults;
    std::chrono::milliseconds retry_initial{250};
    unsigned tries = 20;
};
inline result<std::optional<test_fault_spec>> test_faults() {
    char const* spec = std::getenv("STASH_TEST_FAULTS");
    if (!spec || !*spec) return std::optional<test_fault_spec>();
    test_fault_spec t;
    auto& f = t.faults;
    std::string_view rest(spec);
    while (!rest.empty()) {
        auto item = rest.substr(0, rest.find(','));
        rest.remove_prefix(std::min(rest.size(), item.size() + 1));
        auto eq = item.find('=');
        auto key = item.substr(0, eq);
        std::string val(eq == std::string_view::npos ? "" : item.substr(eq + 1));
        if (key == "rate") f.error_rate = std::strtod(val.c_str(), nullptr);
        else if (key == "latency") f.max_latency = std::chrono::milliseconds(std::strtoll(val.c_str(), nullptr, 10));
        else if (key == "seed") f.seed = std::strtoull(val.c_str(), nullptr, 10);
        else if (key == "fail") f.fail = val;
        else if (key == "retry") t.retry_initial = std::chrono::milliseconds(std::strtoll(val.c_str(), nullptr, 10));
        else if (key == "tries") t.tries = unsigned(std::max(1L, std::strtol(val.c_str(), nullptr, 10)));
        else return make_error(errc::invalid_argument, "STASH_TEST_FAULTS: unknown key \"" + std::string(key) + "\" (rate, latency, seed, fail, retry, tries)");
    }
    return std::optional(t);
}

// Network drivers get the retry decorator (with the fault decorator beneath it when testing).
template <class B>
result<stock_backend> decorate(B b) {
    policies::backend::retry_options ro;
    ro.on_retry = [](error const& e, unsigned attempt, std::chrono::milliseconds wait) {
        std::cerr << e.what() << "; retrying in " << wait.count() << " ms (try " << attempt + 1 << ")\n";
    };
    auto faults = test_faults();
    if (!faults) return std::move(faults).error();
    if (*faults) {
        ro.on_retry = {};  // injected faults are expected: keep the output clean
        ro.initial = (*faults)->retry_initial;
        ro.attempts = (*faults)->tries;
        return stock_backend(policies::backend::retry(policies::backend::fault(std::move(b), (*faults)->faults), ro));
    }
    return stock_backend(policies::backend::retry(std::move(b), ro));
}
}  // namespace detail

/// Settings for network backends from the command line: restic's `--option`, `--cacert`, `--insecure-tls`.
struct backend_settings {
    std::vector<std::string> options;  ///< "s3.region=eu-west-1", "azure.connections=5", …
    std::string ca_pem;                ///< contents of --cacert
    bool insecure_tls = false;
};

namespace detail {
struct parsed_options {
    net::http_options http;
    std::map<std::string, std::string> kv;
};
// Checks every -o key against the backend in use, so a typo is an error, not a silent default.
inline result<parsed_options> parse_options(backend_settings const& s, std::string const& scheme, std::set<std::string> const& known) {
    parsed_options p;
    p.http.ca_pem = s.ca_pem;
    p.http.insecure_tls = s.insecure_tls;
    for (auto const& o : s.options) {
        auto const eq = o.find('=');
        if (eq == std::string::npos) return make_error(errc::invalid_argument, "--option \"" + o + "\": expected KEY=VALUE");
        auto const key = o.substr(0, eq), val = o.substr(eq + 1);
        auto const dot = key.find('.');
        if (dot == std::string::npos) return make_error(errc::invalid_argument, "--option \"" + o + "\": expected BACKEND.KEY=VALUE");
        if (key.substr(0, dot) != scheme) continue;  // options for other backends are ignored, as restic does
        auto const name = key.substr(dot + 1);
        if (name == "connections") {
            p.http.max_idle = std::max<std::size_t>(1, std::strtoul(val.c_str(), nullptr, 10));
            continue;
        }
        if (!known.count(name)) {
            std::string list;
            for (auto const& k : known) list += (list.empty() ? "" : ", ") + scheme + "." + k;
            return make_error(errc::invalid_argument, "--option \"" + key + "\": unknown (known: " + scheme + ".connections" + (list.empty() ? "" : ", " + list) + ")");
        }
        p.kv[name] = val;
    }
    return p;
}
inline unsigned positive(std::map<std::string, std::string> const& kv, std::string const& k, unsigned dflt) {
    auto it = kv.find(k);
    if (it == kv.end()) return dflt;
    auto const n = std::strtoul(it->second.c_str(), nullptr, 10);
    return n ? unsigned(n) : dflt;
}
// An object-store driver from its repository string, with -o options applied by `tune(options, kv)`.
template <class Driver, class Tune>
result<stock_backend> open_network(std::string const& repo, backend_settings const& settings, char const* scheme, std::set<std::string> const& known, Tune&& tune) {
    auto o = Driver::parse(repo);
    if (!o) return std::move(o).error();
    auto p = parse_options(settings, scheme, known);
    if (!p) return std::move(p).error();
    o->http = p->http;
    if (auto t = tune(*o, p->kv); !t) return std::move(t).error();
    auto b = Driver::open(std::move(*o));
    if (!b) return std::move(b).error();
    return decorate(std::move(*b));
}
}  // namespace detail

/// `b` with the local cache under `base` (see policies::backend::cache); `warn` hears once if it
/// cannot be used.
inline stock_backend with_cache(stock_backend b, std::string base, std::function<void(error const&)> warn) {
    policies::backend::cache_options o;
    o.on_warning = std::move(warn);
    return stock_backend(policies::backend::cache(std::move(b), std::move(base), std::move(o)));
}

/// Whether a repository string names a network backend (its latency calls for more requests in flight).
inline bool is_remote(std::string_view repo) {
    for (std::string_view scheme : {"rest:", "s3:", "azure:", "gs:", "swift:", "b2:"})
        if (repo.starts_with(scheme)) return true;
    return false;
}

/** Opens the backend named by a repository string, as restic writes them: a path or `local:PATH`,
    `rest:http[s]://[user:pass@]host:port/path`, `s3:[http[s]://]host[:port]/bucket[/prefix]`, `azure:container:/prefix`, `gs:bucket:/prefix`, `swift:container:/prefix`, `b2:bucket:/prefix`. */
inline result<stock_backend> backend_for(std::string const& repo, backend_settings const& settings = {}) {
    if (repo.empty()) return make_error(errc::invalid_argument, "no repository given: use -r/--repo or RESTIC_REPOSITORY");
    if (repo.starts_with("rest:")) {
        auto p = detail::parse_options(settings, "rest", {});
        if (!p) return std::move(p).error();
        auto b = policies::backend::rest::open(repo, p->http);
        if (!b) return std::move(b).error();
        return detail::decorate(std::move(*b));
    }
    namespace pb = policies::backend;
    if (repo.starts_with("s3:"))
        return detail::open_network<pb::s3>(repo, settings, "s3", {"region", "bucket-lookup", "list-max-keys"}, [](pb::s3_options& o, auto& kv) -> result<void> {
            if (kv.count("region")) o.region = kv["region"];
            if (auto l = kv.find("bucket-lookup"); l != kv.end()) {
                if (l->second == "dns") o.bucket_lookup = pb::s3_options::lookup::dns;
                else if (l->second == "path") o.bucket_lookup = pb::s3_options::lookup::path;
                else if (l->second != "auto") return make_error(errc::invalid_argument, "--option s3.bucket-lookup: \"" + l->second + "\": expected auto, dns or path");
            }
            o.list_page = detail::positive(kv, "list-max-keys", o.list_page);
            return {};
        });
    // The others take only a page size.
    auto paged = [](char const* key) {
        return [key](auto& o, auto& kv) -> result<void> {
            o.list_page = detail::positive(kv, key, o.list_page);
            return {};
        };
    };
    if (repo.starts_with("azure:")) return detail::open_network<pb::azure>(repo, settings, "azure", {"list-max-results"}, paged("list-max-results"));
    if (repo.starts_with("gs:")) return detail::open_network<pb::gcs>(repo, settings, "gs", {"list-max-results"}, paged("list-max-results"));
    if (repo.starts_with("swift:")) return detail::open_network<pb::swift>(repo, settings, "swift", {"list-limit"}, paged("list-limit"));
    if (repo.starts_with("b2:")) return detail::open_network<pb::b2>(repo, settings, "b2", {"list-max-file-count"}, paged("list-max-file-count"));
    std::string path = repo;
    if (path.starts_with("local:")) path = path.substr(6);
    auto colon = path.find(':');
    if (colon != std::string::npos && path.find('/') > colon)
        return make_error(errc::unsupported, "repository \"" + repo + "\": backend \"" + path.substr(0, colon) +
                                                 "\" is not supported by this build (local paths, rest:, s3:, azure:, gs:, swift:, b2:)");
    auto faults = detail::test_faults();
    if (!faults) return std::move(faults).error();
    if (*faults) return detail::decorate(policies::backend::local(path));
    return stock_backend(policies::backend::local(path));
}

}  // namespace stash::agent
