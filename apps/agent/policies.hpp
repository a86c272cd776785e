// The one place the agent picks its policies.
#pragma once

#include <stash/policies/backend/local.hpp>
#include <stash/policies/chunk/fastcdc.hpp>
#include <stash/policies/chunk/rabin.hpp>
#include <stash/policies/compress/zstd.hpp>
#include <stash/policies/hash/sha256.hpp>
#include <stash/repo/repository.hpp>

#include <variant>

namespace stash::agent {

using stock_backend = policies::backend::local;
using stock_repo = repo::repository<stock_backend, policies::hash::sha256>;
// Level 2: on the Linux source tree, 12% faster than level 3 for a repository 1.5% larger (still
// within 2% of restic's size); level 1 was no faster and 3% larger (docs/performance.md).
using stock_compressor = policies::compress::zstd<2>;
/// The chunker is chosen per repository (its config), so it is a closed variant of the stock ones.
using any_chunker = std::variant<policies::chunk::rabin, policies::chunk::fastcdc>;

/// The chunker a repository's config asks for. Errors: an unknown chunker name.
inline result<any_chunker> chunker_for(repo::config const& c) {
    if (c.chunker == "rabin") return any_chunker(policies::chunk::rabin(c.chunker_polynomial));
    if (c.chunker == "fastcdc") return any_chunker(policies::chunk::fastcdc());
    return make_error(errc::unsupported, "config: unknown chunker \"" + c.chunker + "\"");
}

/// Opens the backend named by a repository string: a path or `local:PATH`.
inline result<stock_backend> backend_for(std::string const& repo) {
    if (repo.empty()) return make_error(errc::invalid_argument, "no repository given: use -r/--repo or RESTIC_REPOSITORY");
    std::string path = repo;
    if (path.starts_with("local:")) path = path.substr(6);
    auto colon = path.find(':');
    if (colon != std::string::npos && path.find('/') > colon)
        return make_error(errc::unsupported, "repository \"" + repo + "\": backend \"" + path.substr(0, colon) +
                                                 "\" is not supported by this build (local paths only)");
    return stock_backend(path);
}

}  // namespace stash::agent
