// Retention: which snapshots a keep policy keeps, decided exactly as restic 0.14's ApplyPolicy
// (restic-format.md §12.1–12.2). A pure function over snapshot lists, so it is easy to test.
#pragma once

#include <stash/engine/snapshots.hpp>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

namespace stash::engine {

namespace detail {
inline std::vector<std::string_view> components_of(std::string_view s, char sep) {
    std::vector<std::string_view> out;
    for (std::size_t i = 0; i <= s.size();) {
        auto j = s.find(sep, i);
        if (j == std::string_view::npos) j = s.size();
        if (j > i) out.push_back(s.substr(i, j - i));
        i = j + 1;
    }
    return out;
}
}  // namespace detail

/// A calendar duration as restic writes it: `1y5m7d2h`.
struct calendar_duration {
    int years = 0, months = 0, days = 0, hours = 0;
    bool zero() const noexcept { return !years && !months && !days && !hours; }

    /// Parses `NyNmNdNh` (any subset, in any order). Errors: `errc::invalid_argument`.
    static result<calendar_duration> parse(std::string_view s) {
        calendar_duration d;
        int num = -1;
        for (char c : s) {
            if (c >= '0' && c <= '9') {
                num = (num < 0 ? 0 : num * 10) + (c - '0');
                continue;
            }
            int* field = c == 'y' ? &d.years : c == 'm' ? &d.months : c == 'd' ? &d.days : c == 'h' ? &d.hours : nullptr;
            if (!field || num < 0) return make_error(errc::invalid_argument, "invalid duration \"" + std::string(s) + "\" (use e.g. 1y5m7d2h)");
            *field = num, num = -1;
        }
        if (num >= 0 || s.empty()) return make_error(errc::invalid_argument, "invalid duration \"" + std::string(s) + "\" (use e.g. 1y5m7d2h)");
        return d;
    }
};

/// What to keep. Counts of 0 are inactive; a policy with nothing active keeps everything.
struct keep_policy {
    int last = 0, hourly = 0, daily = 0, weekly = 0, monthly = 0, yearly = 0;
    calendar_duration within;
    std::vector<std::vector<std::string>> tags;  ///< keep snapshots having all tags of any one list

    bool empty() const noexcept {
        return !last && !hourly && !daily && !weekly && !monthly && !yearly && within.zero() && tags.empty();
    }
};

/// How snapshots are grouped before the policy is applied to each group (restic's --group-by).
struct group_by {
    bool host = true, paths = true, tags = false;

    /// Parses "host,paths", "tags", "" … Errors: `errc::invalid_argument` for an unknown word.
    static result<group_by> parse(std::string_view s) {
        group_by g{false, false, false};
        for (auto part : detail::components_of(s, ',')) {
            if (part == "host") g.host = true;
            else if (part == "paths") g.paths = true;
            else if (part == "tags") g.tags = true;
            else return make_error(errc::invalid_argument, "--group-by: unknown field \"" + std::string(part) + "\" (host, paths, tags)");
        }
        return g;
    }
};

/// One group's decision; `reasons[i]` lists why `keep[i]` is kept.
struct forget_group {
    std::string host;
    std::vector<std::string> paths, tags;  ///< the group key (empty when not grouped by it)
    std::vector<snapshot_entry> keep, remove;
    std::vector<std::vector<std::string>> reasons;
};

namespace detail {

struct local_time {
    std::int64_t year;
    unsigned month, day, hour;
    std::int64_t days;  // days since the epoch, in the snapshot's own zone
};
inline local_time local_of(timestamp t) {
    auto const [days, secs] = stash::detail::split_local(t.sec, t.offset_min);
    auto c = stash::detail::civil_from_days(days);
    return {c.y, c.m, c.d, unsigned(secs / 3600), days};
}
// ISO 8601 week-numbering year·100 + week, as Go's Time.ISOWeek.
inline std::int64_t iso_year_week(local_time const& l) {
    int const wd = int(((l.days % 7) + 7 + 3) % 7);  // Monday = 0 (1970-01-01 was a Thursday)
    std::int64_t const thursday = l.days - wd + 3;    // the week belongs to its Thursday's year
    auto c = stash::detail::civil_from_days(thursday);
    std::int64_t const jan1 = stash::detail::days_from_civil(c.y, 1, 1);
    return c.y * 100 + (thursday - jan1) / 7 + 1;
}
// calendar subtraction as Go's AddDate(-y, -m, -d) then Add(-h): months overflow into years and a day
// past a month's end normalizes forward.
inline timestamp subtract(timestamp t, calendar_duration d) {
    auto const [days, secs] = stash::detail::split_local(t.sec, t.offset_min);
    auto c = stash::detail::civil_from_days(days);
    std::int64_t m = std::int64_t(c.m) - 1 - d.months;
    std::int64_t y = c.y - d.years + (m >= 0 ? m / 12 : (m - 11) / 12);
    m = ((m % 12) + 12) % 12;
    std::int64_t nd = stash::detail::days_from_civil(y, unsigned(m + 1), 1) + (std::int64_t(c.d) - 1) - d.days;
    t.sec = nd * 86400 + secs - std::int64_t(t.offset_min) * 60 - std::int64_t(d.hours) * 3600;
    return t;
}
// restic's Snapshot.HasTags: all tags of `want`; an empty tag matches an untagged snapshot at once.
inline bool has_tags(repo::snapshot const& s, std::vector<std::string> const& want) {
    for (auto const& w : want) {
        if (w.empty() && s.tags.empty()) return true;
        if (std::find(s.tags.begin(), s.tags.end(), w) == s.tags.end()) return false;
    }
    return true;
}
}  // namespace detail

/** Applies `p` to one group of snapshots as restic 0.14 does: newest first, a snapshot is kept if a
    tag list matches, if it is newer than `latest − within`, or if it opens a new period in a bucket
    (last, hourly, daily, weekly (ISO), monthly, yearly — in the snapshot's own zone) that still has
    count left. `now` bounds "latest" (snapshots in the future do not move it). */
inline forget_group apply_policy(std::vector<snapshot_entry> list, keep_policy const& p, timestamp now) {
    forget_group g;
    std::stable_sort(list.begin(), list.end(), [](auto const& a, auto const& b) { return a.snap.time > b.snap.time; });
    if (p.empty()) {
        for (auto& e : list) g.keep.push_back(std::move(e)), g.reasons.push_back({"policy is empty"});
        return g;
    }
    timestamp latest = timestamp::zero();
    for (auto const& e : list)
        if (e.snap.time > latest && !(e.snap.time > now)) latest = e.snap.time;

    struct bucket {
        int count;
        std::int64_t last = -1;
        char const* reason;
    };
    bucket buckets[] = {{p.last, -1, "last snapshot"},       {p.hourly, -1, "hourly snapshot"},
                        {p.daily, -1, "daily snapshot"},     {p.weekly, -1, "weekly snapshot"},
                        {p.monthly, -1, "monthly snapshot"}, {p.yearly, -1, "yearly snapshot"}};
    timestamp const within_limit = detail::subtract(latest, p.within);
    for (std::size_t nr = 0; nr < list.size(); ++nr) {
        auto& cur = list[nr];
        std::vector<std::string> why;
        for (auto const& l : p.tags)
            if (detail::has_tags(cur.snap, l)) why.push_back("has tags");
        if (!p.within.zero() && cur.snap.time > within_limit) why.push_back("within");
        auto const lt = detail::local_of(cur.snap.time);
        std::int64_t const keys[] = {std::int64_t(nr),
                                     lt.year * 1000000 + lt.month * 10000 + lt.day * 100 + lt.hour,
                                     lt.year * 10000 + lt.month * 100 + lt.day,
                                     detail::iso_year_week(lt),
                                     lt.year * 100 + lt.month,
                                     lt.year};
        for (std::size_t i = 0; i < std::size(buckets); ++i) {
            auto& b = buckets[i];
            if (b.count > 0 && keys[i] != b.last) {
                b.last = keys[i], --b.count;
                why.push_back(b.reason);
            }
        }
        if (!why.empty()) g.keep.push_back(std::move(cur)), g.reasons.push_back(std::move(why));
        else g.remove.push_back(std::move(cur));
    }
    return g;
}

/// Groups snapshots (restic's default: host and paths) and applies `p` to each group.
inline std::vector<forget_group> forget(std::vector<snapshot_entry> all, keep_policy const& p, group_by by, timestamp now) {
    std::map<std::tuple<std::string, std::vector<std::string>, std::vector<std::string>>, std::vector<snapshot_entry>> groups;
    for (auto& e : all) {
        auto paths = e.snap.paths, tags = e.snap.tags;
        std::sort(paths.begin(), paths.end()), std::sort(tags.begin(), tags.end());
        groups[{by.host ? e.snap.hostname : "", by.paths ? paths : std::vector<std::string>{}, by.tags ? tags : std::vector<std::string>{}}]
            .push_back(std::move(e));
    }
    std::vector<forget_group> out;
    for (auto& [key, list] : groups) {
        auto g = apply_policy(std::move(list), p, now);
        std::tie(g.host, g.paths, g.tags) = key;
        out.push_back(std::move(g));
    }
    return out;
}

}  // namespace stash::engine
