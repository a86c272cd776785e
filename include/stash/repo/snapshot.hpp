// Snapshot files (restic-format.md §8).
#pragma once

#include <stash/core/json_writer.hpp>
#include <stash/repo/json.hpp>

#include <optional>
#include <string>
#include <vector>

namespace stash::repo {

/// A snapshot: when, what (paths, root tree), where from (host, user), and tags.
struct snapshot {
    timestamp time;
    std::optional<id> parent;
    id tree;
    std::vector<std::string> paths;
    std::string hostname, username;
    std::uint32_t uid = 0, gid = 0;
    std::vector<std::string> excludes, tags;
    std::optional<id> original;

    std::string to_json() const {
        std::string s;
        json_writer w(s);
        w.begin_object().field("time", format_rfc3339(time));
        if (parent) w.field("parent", parent->str());
        w.field("tree", tree.str()).key("paths").begin_array();
        for (auto const& p : paths) w.value(p);
        w.end_array();
        if (!hostname.empty()) w.field("hostname", hostname);
        if (!username.empty()) w.field("username", username);
        if (uid) w.field("uid", uid);
        if (gid) w.field("gid", gid);
        auto list = [&](char const* k, std::vector<std::string> const& v) {
            if (v.empty()) return;
            w.key(k).begin_array();
            for (auto const& e : v) w.value(e);
            w.end_array();
        };
        list("excludes", excludes);
        list("tags", tags);
        if (original) w.field("original", original->str());
        w.end_object();
        return s;
    }

    static result<snapshot> from_json(std::string_view text, std::string const& what) {
        auto o = parse_object(text, what);
        if (!o) return std::move(o).error();
        json_reader r(*o, what);
        snapshot s;
        auto t = r.time("time", true);
        if (!t) return std::move(t).error();
        s.time = *t;
        auto tree = r.id("tree");
        if (!tree) return std::move(tree).error();
        if (tree->is_null()) return make_error(errc::corrupt, what + ": snapshot has nil tree");
        s.tree = *tree;
        auto parent = r.id("parent"), original = r.id("original");
        if (!parent) return std::move(parent).error();
        if (!original) return std::move(original).error();
        if (!parent->is_null()) s.parent = *parent;
        if (!original->is_null()) s.original = *original;
        auto paths = r.strings("paths"), ex = r.strings("excludes"), tags = r.strings("tags");
        if (!paths) return std::move(paths).error();
        if (!ex) return std::move(ex).error();
        if (!tags) return std::move(tags).error();
        s.paths = std::move(*paths), s.excludes = std::move(*ex), s.tags = std::move(*tags);
        auto h = r.str("hostname"), u = r.str("username");
        auto uid = r.u64("uid"), gid = r.u64("gid");
        if (!h) return std::move(h).error();
        if (!u) return std::move(u).error();
        if (!uid) return std::move(uid).error();
        if (!gid) return std::move(gid).error();
        s.hostname = *h, s.username = *u, s.uid = std::uint32_t(*uid), s.gid = std::uint32_t(*gid);
        return s;
    }
};

}  // namespace stash::repo
