// Finding snapshots: listing, "latest", ID prefixes, and the parent of a new backup.
#pragma once

#include <stash/repo/repository.hpp>

#include <algorithm>
#include <string>
#include <vector>

namespace stash::engine {

/// A snapshot with the ID of its file.
struct snapshot_entry {
    id sid;
    repo::snapshot snap;
};

/// Which snapshots a command considers (restic's --host, --tag, --path filters).
struct snapshot_filter {
    std::vector<std::string> hosts, tags, paths;

    bool accepts(repo::snapshot const& s) const {
        if (!hosts.empty() && std::find(hosts.begin(), hosts.end(), s.hostname) == hosts.end()) return false;
        for (auto const& t : tags)
            if (std::find(s.tags.begin(), s.tags.end(), t) == s.tags.end()) return false;
        if (!paths.empty()) {
            auto a = paths, b = s.paths;
            std::sort(a.begin(), a.end()), std::sort(b.begin(), b.end());
            if (a != b) return false;
        }
        return true;
    }
};

/// Loads every snapshot, oldest first. A snapshot that fails to load is an error naming it.
template <class Repo>
result<std::vector<snapshot_entry>> load_snapshots(Repo& repo, snapshot_filter const& f = {}) {
    auto ids = repo.list(file_type::snapshot);
    if (!ids) return std::move(ids).error();
    std::vector<snapshot_entry> out;
    for (auto const& i : *ids) {
        auto s = repo.load_snapshot(i);
        if (!s) return std::move(s).error();
        if (f.accepts(*s)) out.push_back({i, std::move(*s)});
    }
    std::stable_sort(out.begin(), out.end(), [](auto const& a, auto const& b) { return a.snap.time < b.snap.time; });
    return out;
}

/// Resolves "latest" (newest matching the filter) or a unique ID prefix.
template <class Repo>
result<snapshot_entry> find_snapshot(Repo& repo, std::string_view what, snapshot_filter const& f = {}) {
    if (what == "latest") {
        auto all = load_snapshots(repo, f);
        if (!all) return std::move(all).error();
        if (all->empty()) return make_error(errc::not_found, "no snapshot found for \"latest\"");
        return std::move(all->back());
    }
    auto sid = repo.find(file_type::snapshot, what);
    if (!sid) return std::move(sid).error();
    auto s = repo.load_snapshot(*sid);
    if (!s) return std::move(s).error();
    return snapshot_entry{*sid, std::move(*s)};
}

}  // namespace stash::engine
