// Retention policy helpers: restic's calendar rules (ISO weeks, AddDate normalization, durations).
#include <stash/engine/forget.hpp>

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
