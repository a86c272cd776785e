// What the object-store drivers (S3, Azure, GCS) share: restic's layout as object keys, the
// repository strings of the `<scheme>:<container>:/<prefix>` form, the checks on a ranged read,
// and the filtering of listed keys.
#pragma once

#include <stash/concepts/backend.hpp>
#include <stash/policies/net/http.hpp>

#include <algorithm>
#include <cctype>
#include <cstdlib>

namespace stash::policies::backend::detail {

inline std::string env(char const* k) {
    char const* v = std::getenv(k);
    return v ? v : "";
}

/// Strips leading and trailing slashes from a key prefix.
inline std::string clean_prefix(std::string p) {
    while (p.starts_with('/')) p.erase(0, 1);
    while (p.ends_with('/')) p.pop_back();
    return p;
}

/// The object key of `h` under `prefix` in restic's default layout (restic-format.md §1.1):
/// `config`, `data/<2 hex>/<id>`, `<dir>/<id>`.
inline std::string object_key(std::string const& prefix, handle const& h) {
    std::string k = prefix.empty() ? "" : prefix + "/";
    if (h.type == file_type::config) return k + "config";
    if (h.type == file_type::pack) return k + "data/" + h.name.substr(0, 2) + "/" + h.name;
    return k + dir_name(h.type) + "/" + h.name;
}
/// The key prefix under which files of type `t` are listed.
inline std::string list_prefix(std::string const& prefix, file_type t) { return (prefix.empty() ? "" : prefix + "/") + dir_name(t) + "/"; }

/// Splits `<scheme>:<container>:/<prefix>` (restic's azure: and gs: strings) into container and prefix.
inline result<std::pair<std::string, std::string>> split_container(std::string_view repo, std::string_view scheme, char const* container_word) {
    auto const bad = [&] {
        return make_error(errc::invalid_argument,
                          "repository \"" + std::string(repo) + "\": expected " + std::string(scheme) + ":<" + container_word + ">:/<prefix>");
    };
    if (!repo.starts_with(scheme) || repo.size() <= scheme.size() || repo[scheme.size()] != ':') return bad();
    auto const rest = repo.substr(scheme.size() + 1);
    auto const colon = rest.find(':');
    if (colon == std::string_view::npos || colon == 0) return bad();
    return std::pair{std::string(rest.substr(0, colon)), clean_prefix(std::string(rest.substr(colon + 1)))};
}

/// Calls `fn` for a listed key whose last segment is a restic file name (64 hex digits).
inline void report_listed(std::string_view key, std::uint64_t size, list_fn const& fn) {
    auto const name = key.substr(key.rfind('/') + 1);
    if (name.size() == 64 && std::all_of(name.begin(), name.end(), [](char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; }))
        fn(name, size);
}

/// The `bytes=a-b` value for reading `len` bytes at `off` (`len` 0: to the end); empty for the whole file.
inline std::string byte_range(std::uint64_t off, std::uint64_t len) {
    if (!off && !len) return {};
    return "bytes=" + std::to_string(off) + "-" + (len ? std::to_string(off + len - 1) : "");
}

/** Takes the body of a ranged read's answer into `out`: 416 or a short body is `errc::corrupt`
    (the file is shorter than asked), another status than 200/206 is what `fail` makes of it. */
template <class Fail>
result<void> take_range(net::http_response& r, std::string const& where, handle const& h, std::string const& range, std::uint64_t len,
                        bytes& out, Fail&& fail) {
    if (r.status == 416) return make_error(errc::corrupt, where + ": " + h.str() + ": shorter than asked (" + range + ")");
    if (r.status != 200 && r.status != 206) return fail(r, "load " + h.str());
    out = std::move(r.body);
    if (len && out.size() != len)
        return make_error(errc::corrupt, where + ": " + h.str() + ": shorter than asked (" + range + ", got " + std::to_string(out.size()) + " bytes)");
    return {};
}

/// The size from a HEAD's answer: `fail` maps a status other than 200; no Content-Length is `errc::io`.
template <class Fail>
result<std::uint64_t> head_size(net::http_response const& r, std::string const& where, handle const& h, Fail&& fail) {
    if (r.status != 200) return fail(r, "stat " + h.str());
    auto const len = r.header("Content-Length");
    if (len.empty()) return make_error(errc::io, where + ": stat " + h.str() + ": no Content-Length");
    return std::stoull(len);
}

/// The last step of `create`: a repository must not be there yet.
template <class B>
result<void> must_be_new(B& b, std::string const& where) {
    auto s = b.stat({file_type::config, ""});
    if (s) return make_error(errc::already_exists, "repository " + where + " already exists (config file found)");
    if (!s.error().is(errc::not_found)) return std::move(s).error();
    return {};
}

}  // namespace stash::policies::backend::detail
