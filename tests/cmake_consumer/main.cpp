// A custom stack picked at compile time from the installed headers: in-memory backend, SHA-256.
#include <stash/policies/backend/memory.hpp>
#include <stash/policies/hash/sha256.hpp>
#include <stash/repo/repository.hpp>

#include <boost/json/src.hpp>  // header-only consumers compile Boost.JSON once

#include <cstdio>

int main() {
    using repo_t = stash::repo::repository<stash::policies::backend::memory, stash::policies::hash::sha256>;
    stash::policies::backend::memory storage;
    stash::repo::init_options opt;
    opt.kdf = {1024, 8, 1};
    if (auto r = repo_t::init(storage, "pw", opt); !r) return std::fprintf(stderr, "init: %s\n", r.error().what().c_str()), 1;
    auto opened = repo_t::open(storage, "pw");
    if (!opened) return std::fprintf(stderr, "open: %s\n", opened.error().what().c_str()), 1;
    std::printf("repository %s opened\n", opened->cfg().id.c_str());
    return 0;
}
