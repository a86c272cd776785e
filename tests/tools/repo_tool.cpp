// Test tool for what the agent must never do on its own (password in RESTIC_PASSWORD):
//   repo_tool snapshots REPO SEED   replaces every snapshot with a random set sharing one tree, so
//                                   retention decisions can be compared with restic's on many sets
//   repo_tool put REPO TYPE FILE    stores FILE encrypted (and compressed in v2) as an index or
//                                   snapshot file and prints its ID, to plant crafted documents
#include <stash/policies/backend/local.hpp>
#include <stash/policies/hash/sha256.hpp>
#include <stash/repo/repository.hpp>

#include <cstdio>
#include <cstdlib>
#include <random>

#include <fstream>
#include <iterator>
#include <string>

int main(int argc, char** argv) {
    using namespace stash;
    std::string const cmd = argc > 1 ? argv[1] : "";
    if (!((cmd == "snapshots" && argc == 4) || (cmd == "put" && argc == 5)))
        return std::fprintf(stderr, "usage: repo_tool snapshots REPO SEED | repo_tool put REPO index|snapshot FILE\n"), 2;
    using repo_t = repo::repository<policies::backend::local, policies::hash::sha256>;
    auto r = repo_t::open(policies::backend::local(argv[2]), std::getenv("RESTIC_PASSWORD") ? std::getenv("RESTIC_PASSWORD") : "");
    if (!r) return std::fprintf(stderr, "%s\n", r.error().what().c_str()), 1;
    if (cmd == "put") {
        std::ifstream in(argv[4], std::ios::binary);
        std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        auto t = std::string(argv[3]) == "index" ? file_type::index : file_type::snapshot;
        auto fid = r->save_unpacked(t, text);
        if (!fid) return std::fprintf(stderr, "%s\n", fid.error().what().c_str()), 1;
        std::printf("%s\n", fid->str().c_str());
        return 0;
    }
    auto ids = r->list(file_type::snapshot);
    if (!ids || ids->empty()) return std::fprintf(stderr, "need one snapshot to borrow its tree\n"), 1;
    auto first = r->load_snapshot(ids->front());
    if (!first) return std::fprintf(stderr, "%s\n", first.error().what().c_str()), 1;
    for (auto const& i : *ids) (void)r->backend().remove({file_type::snapshot, i.str()});

    std::mt19937_64 g(std::strtoull(argv[3], nullptr, 10));
    auto pick = [&](int n) { return int(g() % unsigned(n)); };
    char const* hosts[] = {"alpha", "beta", "gamma"};
    char const* tags[] = {"daily", "db", "web"};
    int const nhosts = 1 + pick(3), count = 5 + pick(60);
    std::int64_t const now = timestamp::now().sec, span = 3 * 365 * 86400;
    for (int k = 0; k < count; ++k) {
        repo::snapshot s;
        // Times cluster sometimes (same hour/day) so buckets see ties; zones vary so local dates differ.
        std::int64_t t = now - std::int64_t(g() % std::uint64_t(span));
        if (pick(4) == 0) t = now - std::int64_t(g() % 86400);
        static constexpr std::int32_t zones[] = {0, 0, 120, -300, 330};
        s.time = {t, std::uint32_t(g() % 1000000000), zones[pick(5)]};
        s.tree = first->tree;
        s.paths = {pick(4) == 0 ? "/srv/other" : "/srv/data"};
        s.hostname = hosts[pick(nhosts)];
        s.username = "root";
        for (auto const* tag : tags)
            if (pick(3) == 0) s.tags.emplace_back(tag);
        if (auto w = r->save_unpacked(file_type::snapshot, s.to_json()); !w)
            return std::fprintf(stderr, "%s\n", w.error().what().c_str()), 1;
    }
    std::printf("%d snapshots\n", count);
    return 0;
}
