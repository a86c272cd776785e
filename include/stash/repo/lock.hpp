// Lock files (restic-format.md §9).
#pragma once

#include <stash/core/json_writer.hpp>
#include <stash/repo/json.hpp>

#include <signal.h>

#include <string>

namespace stash::repo {

/// A lock: who holds the repository, since when, and whether exclusively.
struct lock {
    timestamp time;
    bool exclusive = false;
    std::string hostname, username;
    std::int64_t pid = 0;
    std::uint32_t uid = 0, gid = 0;

    /// Stale: older than 30 minutes, or held by a process on this host that no longer exists.
    bool stale(std::string const& this_host, timestamp now) const {
        if (now.sec - time.sec > 30 * 60) return true;
        return hostname == this_host && pid > 0 && ::kill(pid_t(pid), 0) != 0 && errno == ESRCH;
    }

    std::string to_json() const {
        std::string s;
        json_writer w(s);
        w.begin_object().field("time", format_rfc3339(time)).field("exclusive", exclusive).field("hostname", hostname);
        w.field("username", username).field("pid", pid);
        if (uid) w.field("uid", uid);
        if (gid) w.field("gid", gid);
        w.end_object();
        return s;
    }

    static result<lock> from_json(std::string_view text, std::string const& what) {
        auto o = parse_object(text, what);
        if (!o) return std::move(o).error();
        json_reader r(*o, what);
        lock l;
        auto t = r.time("time", true);
        auto ex = r.boolean("exclusive");
        auto h = r.str("hostname"), u = r.str("username");
        auto pid = r.u64("pid");
        if (!t) return std::move(t).error();
        if (!ex) return std::move(ex).error();
        if (!h) return std::move(h).error();
        if (!u) return std::move(u).error();
        if (!pid) return std::move(pid).error();
        l.time = *t, l.exclusive = *ex, l.hostname = *h, l.username = *u, l.pid = std::int64_t(*pid);
        return l;
    }
};

}  // namespace stash::repo
