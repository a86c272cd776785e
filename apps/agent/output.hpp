// How the agent talks to people and scripts: sizes, durations, progress lines, pretty JSON.
#pragma once

#include <stash/engine/progress.hpp>

#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <cstdio>
#include <string>
#include <unistd.h>

namespace stash::agent {

inline std::string format_bytes(double b) {
    char const* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int u = 0;
    while (b >= 1024 && u < 4) b /= 1024, ++u;
    char buf[32];
    std::snprintf(buf, sizeof buf, u ? "%.3f %s" : "%.0f %s", b, units[u]);
    return buf;
}

inline std::string format_duration(double s) {
    long t = long(s + 0.5);
    char buf[32];
    if (t >= 3600) std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else std::snprintf(buf, sizeof buf, "%ld:%02ld", t / 60, t % 60);
    return buf;
}

/// Indented JSON, as restic prints `cat` output.
inline void pretty(std::string& out, boost::json::value const& v, int indent = 0) {
    auto pad = [&](int n) { out.append(std::size_t(n) * 2, ' '); };
    if (v.is_object()) {
        auto const& o = v.get_object();
        if (o.empty()) return void(out += "{}");
        out += "{\n";
        std::size_t i = 0;
        for (auto const& [k, e] : o) {
            pad(indent + 1);
            out += boost::json::serialize(boost::json::value(k)) + ": ";
            pretty(out, e, indent + 1);
            out += ++i < o.size() ? ",\n" : "\n";
        }
        pad(indent), out += '}';
    } else if (v.is_array()) {
        auto const& a = v.get_array();
        if (a.empty()) return void(out += "[]");
        out += "[\n";
        for (std::size_t i = 0; i < a.size(); ++i) {
            pad(indent + 1);
            pretty(out, a[i], indent + 1);
            out += i + 1 < a.size() ? ",\n" : "\n";
        }
        pad(indent), out += ']';
    } else {
        out += boost::json::serialize(v);
    }
}

/// A progress printer: a bar redrawn in place on a terminal, status lines with --json, else nothing.
inline engine::progress_fn progress_printer(bool json, bool quiet, char const* verb) {
    if (quiet) return {};
    if (json) {
        return [](engine::progress_snapshot const& p) {
            if (p.final) return;
            double pct = p.bytes_total ? double(p.bytes_done) / double(p.bytes_total) : 0;
            std::printf("{\"message_type\":\"status\",\"seconds_elapsed\":%.0f,\"percent_done\":%.4f,\"total_files\":%llu,"
                        "\"files_done\":%llu,\"total_bytes\":%llu,\"bytes_done\":%llu,\"error_count\":%llu}\n",
                        p.seconds, pct > 1 ? 1.0 : pct, (unsigned long long)p.files_total, (unsigned long long)p.files_done,
                        (unsigned long long)p.bytes_total, (unsigned long long)p.bytes_done, (unsigned long long)p.errors);
            std::fflush(stdout);
        };
    }
    if (!::isatty(STDERR_FILENO)) return {};
    return [verb](engine::progress_snapshot const& p) {
        double pct = p.bytes_total ? 100.0 * double(p.bytes_done) / double(p.bytes_total) : 0;
        double rate = p.seconds > 0 ? double(p.bytes_done) / p.seconds : 0;
        double eta = rate > 0 && p.bytes_total > p.bytes_done ? double(p.bytes_total - p.bytes_done) / rate : 0;
        int const width = 24;
        int filled = int(pct / 100 * width + 0.5);
        std::string bar(std::size_t(std::min(filled, width)), '#');
        bar.resize(width, '-');
        std::fprintf(stderr, "\r\033[K%s [%s] %5.1f%%  %llu/%llu files  %s/%s  %s/s  ETA %s%s", verb, bar.c_str(),
                     pct > 100 ? 100.0 : pct, (unsigned long long)p.files_done, (unsigned long long)p.files_total,
                     format_bytes(double(p.bytes_done)).c_str(), format_bytes(double(p.bytes_total)).c_str(),
                     format_bytes(rate).c_str(), format_duration(eta).c_str(), p.final ? "\n" : "");
    };
}

}  // namespace stash::agent
