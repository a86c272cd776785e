// Include/exclude patterns with restic's semantics: glob per path component, `**` for any depth,
// and a pattern without a leading `/` matching at any depth.
#pragma once

#include <fnmatch.h>

#include <string>
#include <string_view>
#include <vector>

namespace stash::engine {

namespace detail {
inline std::vector<std::string_view> components(std::string_view p) {
    std::vector<std::string_view> out;
    for (std::size_t i = 0; i < p.size();) {
        auto j = p.find('/', i);
        if (j == std::string_view::npos) j = p.size();
        if (j > i) out.push_back(p.substr(i, j - i));
        i = j + 1;
    }
    return out;
}

// True if pattern components pat[pi..] match path components path[xi..]; with `prefix`, also when
// the path runs out first (a directory that may contain matches).
inline bool match_from(std::vector<std::string> const& pat, std::size_t pi, std::vector<std::string_view> const& path,
                       std::size_t xi, bool prefix) {
    if (pi == pat.size()) return !prefix || xi <= path.size();
    if (xi == path.size()) return prefix;
    if (pat[pi] == "**") {
        for (std::size_t k = xi; k <= path.size(); ++k)
            if (match_from(pat, pi + 1, path, k, prefix)) return true;
        return false;
    }
    std::string comp(path[xi]);
    if (::fnmatch(pat[pi].c_str(), comp.c_str(), 0) != 0) return false;
    return match_from(pat, pi + 1, path, xi + 1, prefix);
}
}  // namespace detail

/// A compiled list of patterns.
class path_filter {
public:
    path_filter() = default;
    explicit path_filter(std::vector<std::string> const& patterns) {
        for (auto const& p : patterns) {
            std::vector<std::string> comps;
            if (p.empty() || p[0] != '/') comps.push_back("**");
            for (auto c : detail::components(p)) comps.emplace_back(c);
            if (!comps.empty()) pats_.push_back(std::move(comps));
        }
    }
    bool empty() const noexcept { return pats_.empty(); }

    /// Whether `path` (absolute, '/'-separated) matches a pattern, or lies below a path that does.
    bool matches(std::string_view path) const {
        auto comps = detail::components(path);
        for (auto const& p : pats_)
            for (std::size_t n = 1; n <= comps.size(); ++n) {
                std::vector<std::string_view> head(comps.begin(), comps.begin() + std::ptrdiff_t(n));
                if (detail::match_from(p, 0, head, 0, false)) return true;
            }
        return false;
    }

    /// Whether something below directory `path` could match (for includes: keep descending).
    bool may_match_below(std::string_view path) const {
        auto comps = detail::components(path);
        for (auto const& p : pats_)
            if (detail::match_from(p, 0, comps, 0, true)) return true;
        return false;
    }

private:
    std::vector<std::vector<std::string>> pats_;
};

}  // namespace stash::engine
