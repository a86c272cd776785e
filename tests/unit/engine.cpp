// Retention policy helpers (restic's calendar rules: ISO weeks, AddDate normalization, durations),
// prune's planning rules, and the trees restore fetches ahead of its walk; restore's batches.
#include <stash/core/descriptors.hpp>
#include <stash/engine/restore.hpp>
#include <stash/engine/tree_prefetch.hpp>
#include <stash/engine/forget.hpp>
#include <stash/engine/prune.hpp>
#include <stash/policies/backend/memory.hpp>
#include <stash/policies/hash/sha256.hpp>

#include <fstream>
#include <sstream>

#include <atomic>
#include <unordered_map>

#include "result_printer.hpp"

using namespace stash;
using namespace stash::engine;

namespace {
timestamp at(char const* s) { return *parse_rfc3339(s); }
snapshot_entry snap(char const* time, std::vector<std::string> tags = {}) {
    snapshot_entry e;
    e.snap.time = at(time);
    e.snap.tags = std::move(tags);
    e.snap.hostname = "h";
    e.snap.paths = {"/p"};
    e.sid.bytes[0] = std::byte(e.snap.time.sec & 0xff), e.sid.bytes[1] = std::byte((e.snap.time.sec >> 8) & 0xff);
    return e;
}
}  // namespace

TEST_CASE("ISO weeks as Go's Time.ISOWeek", "[engine][forget]") {
    auto week = [](char const* s) { return engine::detail::iso_year_week(engine::detail::local_of(at(s))); };
    CHECK(week("2021-01-03T12:00:00Z") == 202053);  // a Sunday still in 2020's week 53
    CHECK(week("2021-01-04T00:00:00Z") == 202101);  // Monday: week 1
    CHECK(week("2024-12-30T00:00:00Z") == 202501);  // Monday of 2025's week 1
    CHECK(week("2026-11-25T00:00:00Z") == 202648);
    // The snapshot's own zone decides: 23:30 on Sunday in UTC−5 is Monday 04:30 UTC.
    CHECK(week("2021-01-03T23:30:00-05:00") == 202053);
}

TEST_CASE("calendar subtraction normalizes as Go's AddDate", "[engine][forget]") {
    auto sub = [](char const* s, calendar_duration d) { return format_rfc3339(engine::detail::subtract(at(s), d)); };
    CHECK(sub("2024-03-31T10:00:00Z", {0, 1, 0, 0}) == "2024-03-02T10:00:00Z");  // Feb 31 → Mar 2
    CHECK(sub("2024-02-29T10:00:00Z", {1, 0, 0, 0}) == "2023-03-01T10:00:00Z");
    CHECK(sub("2024-01-15T10:00:00Z", {0, 13, 0, 5}) == "2022-12-15T05:00:00Z");
    CHECK(sub("2024-01-01T01:00:00Z", {0, 0, 1, 2}) == "2023-12-30T23:00:00Z");
}

TEST_CASE("durations and group-by parse as restic's flags", "[engine][forget]") {
    auto d = calendar_duration::parse("1y5m7d2h");
    REQUIRE(d);
    CHECK((d->years == 1 && d->months == 5 && d->days == 7 && d->hours == 2));
    CHECK_FALSE(calendar_duration::parse("5"));
    CHECK_FALSE(calendar_duration::parse("2w"));
    CHECK_FALSE(calendar_duration::parse(""));
    auto g = group_by::parse("host,tags");
    REQUIRE(g);
    CHECK((g->host && !g->paths && g->tags));
    CHECK_FALSE(group_by::parse("hosts"));
}

TEST_CASE("apply_policy: buckets keep the newest of each period", "[engine][forget]") {
    std::vector<snapshot_entry> list = {snap("2024-01-01T10:00:00Z"), snap("2024-01-01T12:00:00Z"),
                                        snap("2024-01-02T09:00:00Z"), snap("2024-01-03T09:00:00Z", {"keep"})};
    keep_policy p;
    p.daily = 2;
    auto g = apply_policy(list, p, at("2025-01-01T00:00:00Z"));
    REQUIRE(g.keep.size() == 2);
    CHECK(format_rfc3339(g.keep[0].snap.time) == "2024-01-03T09:00:00Z");
    CHECK(format_rfc3339(g.keep[1].snap.time) == "2024-01-02T09:00:00Z");
    CHECK(g.remove.size() == 2);

    keep_policy t;
    t.tags = {{"keep"}};
    g = apply_policy(list, t, at("2025-01-01T00:00:00Z"));
    REQUIRE(g.keep.size() == 1);
    CHECK(g.reasons[0] == std::vector<std::string>{"has tags"});

    keep_policy w;
    w.within = {0, 0, 1, 0};  // strictly after latest − 1 day: the snapshot exactly a day older is out
    g = apply_policy(list, w, at("2025-01-01T00:00:00Z"));
    REQUIRE(g.keep.size() == 1);
    CHECK(format_rfc3339(g.keep[0].snap.time) == "2024-01-03T09:00:00Z");
    w.within = {0, 0, 1, 1};
    CHECK(apply_policy(list, w, at("2025-01-01T00:00:00Z")).keep.size() == 2);

    g = apply_policy(list, keep_policy{}, at("2025-01-01T00:00:00Z"));
    CHECK(g.keep.size() == 4);  // an empty policy keeps everything
}

namespace {
id make_id(unsigned n) {
    id i;
    i.bytes[0] = std::byte(n >> 8), i.bytes[1] = std::byte(n & 0xff), i.bytes[31] = std::byte(1);
    return i;
}
// A pack of `n` compressed blobs of `len` bytes each, with IDs first, first+1, …
std::vector<repo::blob_entry> blobs(unsigned first, unsigned n, std::uint32_t len, repo::blob_type t = repo::blob_type::data) {
    std::vector<repo::blob_entry> v;
    for (unsigned k = 0; k < n; ++k) v.push_back({make_id(first + k), t, k * len, len, len * 2});
    return v;
}
}  // namespace

TEST_CASE("max-unused parses as restic's flag", "[engine][prune]") {
    CHECK(max_unused::parse("5%")->limit(950) == 50);  // 5% of the total after prune
    CHECK(max_unused::parse("0%")->limit(1000) == 0);
    CHECK(max_unused::parse("10M")->limit(1) == 10u << 20);
    CHECK(max_unused::parse("1.5K")->limit(0) == 1536);
    CHECK(max_unused::parse("unlimited")->limit(0) == std::numeric_limits<std::uint64_t>::max());
    CHECK_FALSE(max_unused::parse("100%"));
    CHECK_FALSE(max_unused::parse("5 percent"));
    CHECK_FALSE(max_unused::parse("-1"));
    CHECK(max_unused::parse("x").error().message.find("--max-unused \"x\"") != std::string::npos);
}

TEST_CASE("plan_prune: remove, repack, keep and copy by restic's rules", "[engine][prune]") {
    index_contents idx;
    std::map<id, std::uint64_t> disk;
    auto pack = [&](unsigned pid, std::vector<repo::blob_entry> b, bool present = true) {
        idx.packs[make_id(pid)] = b;
        if (present) disk[make_id(pid)] = expected_pack_size(b);
    };
    unsigned const mib = 1u << 20;
    pack(1000, blobs(0, 16, mib));       // fully used, large: kept
    pack(1001, blobs(100, 16, mib));     // half used: repacked
    pack(1002, blobs(200, 4, mib));      // unused: removed
    pack(1003, blobs(300, 2, 1000, repo::blob_type::tree));  // tree pack, partly used: repacked
    pack(1004, blobs(400, 2, 1000), false);                  // missing and unneeded: dropped
    disk[make_id(1005)] = 12345;                             // in no index: deleted first
    repo::blob_set used;
    for (unsigned k = 0; k < 16; ++k) used.insert(make_id(k), repo::blob_type::data);
    for (unsigned k = 0; k < 8; ++k) used.insert(make_id(100 + k), repo::blob_type::data);
    used.insert(make_id(300), repo::blob_type::tree);

    prune_options opt;
    auto plan = plan_prune(idx, disk, used, 2, opt);
    REQUIRE(plan);
    CHECK(plan->remove_first == std::vector<id>{make_id(1005)});
    CHECK(plan->remove == std::vector<id>{make_id(1002)});
    CHECK(plan->repack == std::vector<id>{make_id(1001), make_id(1003)});
    CHECK(plan->forget == std::vector<id>{make_id(1004)});
    CHECK(plan->copy.size() == 9);  // the used blobs of the repacked packs
    CHECK(plan->copy.contains(make_id(300), repo::blob_type::tree));
    CHECK(plan->stats.blobs.used == 25);
    CHECK(plan->stats.packs_keep == 1);
    CHECK(plan->stats.unreferenced_size == 12345);

    SECTION("unlimited unused space leaves partly used data packs alone, never tree packs") {
        opt.unused = *max_unused::parse("unlimited");
        auto p = plan_prune(idx, disk, used, 2, opt);
        REQUIRE(p);
        CHECK(p->repack == std::vector<id>{make_id(1003)});
        CHECK(p->copy.size() == 1);
    }
    SECTION("a duplicate counts as used once, in the first pack with other used blobs, and is not copied") {
        idx.packs[make_id(1001)].push_back({make_id(5), repo::blob_type::data, 16 * mib, 1000, 0});
        disk[make_id(1001)] = expected_pack_size(idx.packs[make_id(1001)]);
        auto p = plan_prune(idx, disk, used, 2, opt);
        REQUIRE(p);
        CHECK(p->stats.blobs.duplicate == 1);  // the copy in 1001 counts as unused there
        CHECK(p->stats.blobs.used == 25);
        CHECK_FALSE(p->copy.contains(make_id(5), repo::blob_type::data));  // pack 1000 survives with it
    }
    SECTION("a used blob in no index stops prune") {
        used.insert(make_id(999), repo::blob_type::data);
        auto p = plan_prune(idx, disk, used, 2, opt);
        REQUIRE_FALSE(p);
        CHECK(p.error().message.find("index incomplete") != std::string::npos);
        CHECK(p.error().message.find(make_id(999).str()) != std::string::npos);
    }
    SECTION("a needed pack of the wrong size or missing stops prune, naming it") {
        disk[make_id(1001)] += 1;
        auto p = plan_prune(idx, disk, used, 2, opt);
        REQUIRE_FALSE(p);
        CHECK(p.error().message.find("pack " + make_id(1001).str() + ": size") == 0);
        disk.erase(make_id(1001));
        p = plan_prune(idx, disk, used, 2, opt);
        REQUIRE_FALSE(p);
        CHECK(p.error().message.find("pack " + make_id(1001).str() + " is listed in the index") == 0);
    }
    SECTION("ten or more small fully used packs are repacked, fewer are kept") {
        for (unsigned k = 0; k < 9; ++k) {
            pack(2000 + k, blobs(500 + k, 1, 1000));
            used.insert(make_id(500 + k), repo::blob_type::data);
        }
        CHECK(plan_prune(idx, disk, used, 2, opt)->repack.size() == 2);
        pack(2009, blobs(509, 1, 1000));
        used.insert(make_id(509), repo::blob_type::data);
        CHECK(plan_prune(idx, disk, used, 2, opt)->repack.size() == 12);
    }
}

namespace {
// Trees by ID, as a repository's load_trees gives them; one of them fails to load.
struct fake_trees {
    std::unordered_map<id, std::vector<repo::node>, id_hash> trees;
    id broken;
    std::atomic<std::size_t> calls{0}, loads{0};
    std::vector<result<std::vector<repo::node>>> load_trees(std::span<id const> ids) {
        ++calls;
        std::vector<result<std::vector<repo::node>>> out;
        for (auto const& i : ids) {
            ++loads;
            if (i == broken) out.push_back(make_error(errc::corrupt, "tree " + i.str() + ": broken"));
            else if (auto it = trees.find(i); it != trees.end()) out.push_back(it->second);
            else out.push_back(make_error(errc::not_found, "tree " + i.str() + " not found"));
        }
        return out;
    }
};
repo::node dir_node(std::string name, id const& sub) {
    repo::node n;
    n.name = std::move(name), n.type = repo::node_type::dir, n.subtree = sub;
    return n;
}
}  // namespace

TEST_CASE("tree_prefetch hands a depth-first walk every tree, under any budget", "[engine][restore]") {
    using H = policies::hash::sha256;
    // 8 directories of 8 of 8 (584 trees); every "d5" leaf is the same tree (one ID, four places
    // wanted twice at least), "/d3" is filtered out, and one tree fails to load.
    fake_trees f;
    auto leaf = [&](std::string const& path) {
        std::string label = path.ends_with("/d5") ? "shared leaf" : "leaf " + path;
        id const i = H::digest(as_bytes(label));
        repo::node file;
        file.name = label;
        f.trees[i] = {file};
        return i;
    };
    std::vector<repo::node> root;
    for (int a = 0; a < 8; ++a) {
        std::vector<repo::node> l1;
        for (int b = 0; b < 8; ++b) {
            std::vector<repo::node> l2;
            std::string const p2 = "/d" + std::to_string(a) + "/d" + std::to_string(b);
            for (int c = 0; c < 8; ++c) l2.push_back(dir_node("d" + std::to_string(c), leaf(p2 + "/d" + std::to_string(c))));
            id const i2 = H::digest(as_bytes("l2 " + p2));
            f.trees[i2] = l2;
            l1.push_back(dir_node("d" + std::to_string(b), i2));
        }
        id const i1 = H::digest(as_bytes("l1 " + std::to_string(a)));
        f.trees[i1] = l1;
        root.push_back(dir_node("d" + std::to_string(a), i1));
    }
    f.broken = H::digest(as_bytes("l2 /d6/d2"));
    auto const want = [](std::string const& v, std::string const&) { return !v.starts_with("/d3"); };

    for (std::size_t budget : {std::size_t(1), std::size_t(5), std::size_t(1) << 20}) {
        for (std::size_t batch : {std::size_t(1), std::size_t(256)}) {
            f.calls = 0, f.loads = 0;
            std::size_t visited = 0, failed = 0;
            {
                engine::tree_prefetch<fake_trees> pf(f, want, budget, batch);
                pf.start(root, "");
                std::function<void(std::vector<repo::node> const&, std::string const&)> walk = [&](auto const& ns, std::string const& vpath) {
                    std::vector<id> subs;
                    std::vector<std::string> paths;
                    for (auto const& n : ns)
                        if (n.type == repo::node_type::dir && want(vpath + "/" + n.name, n.name)) subs.push_back(*n.subtree), paths.push_back(vpath + "/" + n.name);
                    auto got = pf.take(subs);
                    REQUIRE(got.size() == subs.size());
                    for (std::size_t k = 0; k < subs.size(); ++k) {
                        if (subs[k] == f.broken) {
                            REQUIRE_FALSE(got[k]);
                            CHECK_THAT(got[k].error().message, Catch::Matchers::Contains("broken"));
                            ++failed;
                            continue;
                        }
                        REQUIRE(got[k]);
                        REQUIRE(*got[k] == f.trees.at(subs[k]));
                        ++visited;
                        walk(*got[k], paths[k]);
                    }
                };
                walk(root, "");
            }
            INFO("budget " << budget << ", batch " << batch);
            CHECK(failed == 1);
            CHECK(visited == 7 + 7 * 8 - 1 + (7 * 8 - 1) * 8);  // /d3 left out, /d6/d2 and its leaves lost
            // Fetched at most twice each (ahead and by the walk when it got there first); nothing below /d3.
            CHECK(f.loads <= 2 * (visited + failed));
        }
    }
}

TEST_CASE("restore hashes a batch's blobs together: each file written, a blob that is not its ID named", "[engine][restore]") {
    using H = policies::hash::sha256;
    using repo_t = repo::repository<policies::backend::memory, H>;
    repo::init_options opt;
    opt.kdf = {1024, 8, 1};
    auto r = repo_t::init(policies::backend::memory(), "pw", opt);
    REQUIRE(r);
    // 40 files of ~120 KB (more than one batch buffer of plaintext, so batches are hashed in
    // parts), one empty; file 7's blob is sealed correctly but holds other bytes than its ID names.
    std::vector<std::string> texts;
    std::vector<repo::node> nodes;
    repo::pack_builder data;
    for (int i = 0; i < 40; ++i) {
        std::string t = i == 39 ? "" : std::string(120000 + std::size_t(i), char('a' + i % 26)) + std::to_string(i);
        repo::node n;
        n.name = "f" + std::to_string(100 + i);
        n.mode = 0644;
        n.size = t.size();
        if (!t.empty()) {
            id const bid = H::digest(as_bytes(i == 7 ? std::string("not what it holds") : t));
            n.content = {bid};
            data.add(bid, repo::blob_type::data, std::uint32_t(t.size()), [&](bytes& out) {
                r->sealer().seal_append(out, [&](bytes& o) { compress::zstd_compress_frame(as_bytes(t), o); });
            });
        }
        texts.push_back(std::move(t));
        nodes.push_back(std::move(n));
    }
    REQUIRE(r->save_pack(data.finish(r->sealer()), data.entries()));
    repo::pack_builder trees;
    auto const json = repo::tree_json(nodes);
    id const tid = H::digest(as_bytes(json));
    trees.add(tid, repo::blob_type::tree, 0, [&](bytes& out) { r->sealer().seal(as_bytes(json), out); });
    REQUIRE(r->save_pack(trees.finish(r->sealer()), trees.entries()));

    char tmpl[] = "/tmp/stash-unit-restore-XXXXXX";
    REQUIRE(::mkdtemp(tmpl));
    repo::snapshot snap;
    snap.tree = tid;
    engine::restore_options ro;
    ro.target = tmpl;
    ro.threads = 2;
    std::vector<std::pair<std::string, std::string>> errors;
    std::mutex mu;
    ro.on_error = [&](std::string const& path, std::string const& msg) {
        std::lock_guard lk(mu);
        errors.emplace_back(path, msg);
    };
    auto const sum = engine::restore(*r, snap, ro);
    REQUIRE(errors.size() == 1);
    CHECK(errors[0].first == std::string(tmpl) + "/f107");
    CHECK(errors[0].second.find("data blob " + nodes[7].content[0].str()) != std::string::npos);
    CHECK(errors[0].second.find("does not match its ID") != std::string::npos);
    for (std::size_t i = 0; i < texts.size(); ++i) {
        if (i == 7) continue;
        std::ifstream in(std::string(tmpl) + "/" + nodes[i].name, std::ios::binary);
        std::stringstream got;
        got << in.rdbuf();
        REQUIRE(got.str() == texts[i]);
    }
    std::filesystem::remove_all(tmpl);
}

namespace {
// The process's descriptor table size, as /proc/self/status reports it (FDSize).
int fd_table_size() {
    std::ifstream in("/proc/self/status");
    for (std::string line; std::getline(in, line);)
        if (line.rfind("FDSize:", 0) == 0) return std::stoi(line.substr(7));
    return -1;
}
}  // namespace

TEST_CASE("reserve_descriptors grows the descriptor table and leaves every descriptor as it was", "[core]") {
    int const before = fd_table_size();
    REQUIRE(before > 0);
    int const want = before * 4;
    struct rlimit rl {};
    REQUIRE(::getrlimit(RLIMIT_NOFILE, &rl) == 0);
    if (rl.rlim_cur < rlim_t(want) * 2) return;  // (nothing to observe under so low a limit)
    reserve_descriptors(want);
    CHECK(fd_table_size() >= want);
    CHECK(::fcntl(want - 1, F_GETFD) == -1);  // the duplicate is closed again
    // A descriptor in use at the top is left as it is (not replaced by a duplicate of 0, 1 or 2).
    int const top = fd_table_size() * 2 - 1;
    int const probe = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    REQUIRE(probe >= 0);
    REQUIRE(::dup2(probe, top) == top);
    ::close(probe);
    reserve_descriptors(top + 1);
    struct stat a {}, b {};
    REQUIRE(::fstat(top, &a) == 0);
    REQUIRE(::stat("/dev/null", &b) == 0);
    CHECK((a.st_rdev == b.st_rdev && a.st_ino == b.st_ino));
    ::close(top);
}
