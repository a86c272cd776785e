// Timestamps as restic stores them: RFC 3339 with nanoseconds (Go's RFC3339Nano) and a zone offset.
#pragma once

#include <stash/core/error.hpp>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

namespace stash {

/// A point in time with nanosecond resolution and the UTC offset it was written in.
struct timestamp {
    std::int64_t sec = 0;        ///< seconds since 1970-01-01T00:00:00Z
    std::uint32_t nsec = 0;      ///< 0 … 999'999'999
    std::int32_t offset_min = 0; ///< zone offset in minutes east of UTC (0 = "Z")

    friend bool operator==(timestamp const& a, timestamp const& b) noexcept {
        return a.sec == b.sec && a.nsec == b.nsec;
    }
    friend auto operator<=>(timestamp const& a, timestamp const& b) noexcept {
        if (auto c = a.sec <=> b.sec; c != 0) return c;
        return a.nsec <=> b.nsec;
    }

    static timestamp now() {
        auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                      std::chrono::system_clock::now().time_since_epoch()).count();
        return {ns / 1'000'000'000, std::uint32_t(ns % 1'000'000'000), 0};
    }
    /// Go's zero time, 0001-01-01T00:00:00Z, which restic writes for unknown times.
    static constexpr timestamp zero() { return {-62135596800, 0, 0}; }
};

namespace detail {
// Days since 1970-01-01 for a proleptic Gregorian date, and back (H. Hinnant's civil algorithms).
constexpr std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) noexcept {
    y -= m <= 2;
    std::int64_t const era = (y >= 0 ? y : y - 399) / 400;
    unsigned const yoe = unsigned(y - era * 400);
    unsigned const doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned const doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + std::int64_t(doe) - 719468;
}
struct civil { std::int64_t y; unsigned m, d; };
constexpr civil civil_from_days(std::int64_t z) noexcept {
    z += 719468;
    std::int64_t const era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned const doe = unsigned(z - era * 146097);
    unsigned const yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    std::int64_t const y = std::int64_t(yoe) + era * 400;
    unsigned const doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned const mp = (5 * doy + 2) / 153;
    unsigned const d = doy - (153 * mp + 2) / 5 + 1;
    unsigned const m = mp < 10 ? mp + 3 : mp - 9;
    return {y + (m <= 2), m, d};
}

/// Days since 1970-01-01 and seconds into that day, both in the timestamp's own zone.
struct local_day {
    std::int64_t days, secs;
};
constexpr local_day split_local(std::int64_t sec, std::int32_t offset_min) noexcept {
    std::int64_t const s = sec + std::int64_t(offset_min) * 60;
    std::int64_t const days = s >= 0 ? s / 86400 : (s - 86399) / 86400;
    return {days, s - days * 86400};
}
}  // namespace detail

/// The longest `format_rfc3339` output: "9999-12-31T23:59:59.999999999+hh:mm".
inline constexpr std::size_t rfc3339_max = 35;

/// Formats as Go's RFC3339Nano into `out` (at least `rfc3339_max` chars) and returns the length:
/// fraction without trailing zeros (none when zero), "Z" or "±hh:mm". Years are clamped to
/// 0…9999 as restic does on write. Digits are written by hand: trees hold three times a file.
inline std::size_t format_rfc3339(timestamp t, char* out) noexcept {
    auto [days, secs] = detail::split_local(t.sec, t.offset_min);
    auto c = detail::civil_from_days(days);
    if (c.y < 0) c = {0, 1, 1}, secs = 0;
    if (c.y > 9999) c = {9999, 12, 31}, secs = 86399;
    char* p = out;
    auto digits = [&p](unsigned v, int n) {
        for (int i = n - 1; i >= 0; --i) p[i] = char('0' + v % 10), v /= 10;
        p += n;
    };
    digits(unsigned(c.y), 4), *p++ = '-', digits(c.m, 2), *p++ = '-', digits(c.d, 2), *p++ = 'T';
    digits(unsigned(secs / 3600), 2), *p++ = ':', digits(unsigned(secs / 60 % 60), 2), *p++ = ':';
    digits(unsigned(secs % 60), 2);
    if (t.nsec) {
        *p++ = '.';
        digits(t.nsec, 9);
        while (p[-1] == '0') --p;
    }
    if (t.offset_min == 0) {
        *p++ = 'Z';
    } else {
        unsigned const o = unsigned(t.offset_min < 0 ? -t.offset_min : t.offset_min);
        *p++ = t.offset_min < 0 ? '-' : '+';
        digits(o / 60, 2), *p++ = ':', digits(o % 60, 2);
    }
    return std::size_t(p - out);
}

/// The same as a string.
inline std::string format_rfc3339(timestamp t) {
    char buf[rfc3339_max];
    return std::string(buf, format_rfc3339(t, buf));
}

/// Parses RFC 3339 with an optional fraction of any length and "Z" or "±hh:mm".
inline result<timestamp> parse_rfc3339(std::string_view s) {
    auto bad = [&] { return make_error(errc::invalid_argument, "invalid RFC 3339 time \"" + std::string(s) + "\""); };
    auto num = [&](std::size_t pos, std::size_t len, int& out) {
        if (pos + len > s.size()) return false;
        out = 0;
        for (std::size_t i = pos; i < pos + len; ++i) {
            if (s[i] < '0' || s[i] > '9') return false;
            out = out * 10 + (s[i] - '0');
        }
        return true;
    };
    int y, mo, d, h, mi, se;
    if (!num(0, 4, y) || s.size() < 20 || s[4] != '-' || !num(5, 2, mo) || s[7] != '-' || !num(8, 2, d) ||
        (s[10] != 'T' && s[10] != 't' && s[10] != ' ') || !num(11, 2, h) || s[13] != ':' || !num(14, 2, mi) ||
        s[16] != ':' || !num(17, 2, se))
        return bad();
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60) return bad();
    std::size_t p = 19;
    std::uint32_t ns = 0;
    if (p < s.size() && s[p] == '.') {
        ++p;
        int digits = 0;
        while (p < s.size() && s[p] >= '0' && s[p] <= '9') {
            if (digits < 9) ns = ns * 10 + std::uint32_t(s[p] - '0');
            ++digits, ++p;
        }
        if (digits == 0) return bad();
        for (int i = digits; i < 9; ++i) ns *= 10;
    }
    int off = 0;
    if (p < s.size() && (s[p] == 'Z' || s[p] == 'z')) {
        ++p;
    } else if (p < s.size() && (s[p] == '+' || s[p] == '-')) {
        int oh, om;
        if (!num(p + 1, 2, oh) || p + 3 >= s.size() || s[p + 3] != ':' || !num(p + 4, 2, om)) return bad();
        off = (oh * 60 + om) * (s[p] == '-' ? -1 : 1);
        p += 6;
    } else {
        return bad();
    }
    if (p != s.size()) return bad();
    std::int64_t secs = detail::days_from_civil(y, unsigned(mo), unsigned(d)) * 86400 + h * 3600 + mi * 60 + se;
    return timestamp{secs - std::int64_t(off) * 60, ns, off};
}

}  // namespace stash
