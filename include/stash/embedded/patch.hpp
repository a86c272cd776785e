// The three patch formats of the Kubernetes API: JSON merge patch (RFC 7386), JSON patch (RFC 6902)
// and strategic merge patch (lists merged by a key for the list fields the operator patches).
#pragma once

#include <stash/core/error.hpp>

#include <boost/json.hpp>

#include <charconv>
#include <string>

namespace stash::embedded {

namespace json = boost::json;

/// RFC 7386: objects merge recursively, `null` deletes, anything else replaces.
inline json::value merge_patch(json::value target, json::value const& patch) {
    if (!patch.is_object()) return patch;
    if (!target.is_object()) target = json::object();
    auto& t = target.get_object();
    for (auto const& [k, v] : patch.get_object()) {
        if (v.is_null()) t.erase(k);
        else t[k] = merge_patch(t.contains(k) ? t[k] : json::value(), v);
    }
    return target;
}

namespace detail {
// RFC 6901 reference tokens of a JSON pointer ("/a/b~1c" → {"a", "b/c"}).
inline result<std::vector<std::string>> pointer_tokens(std::string_view p) {
    std::vector<std::string> out;
    if (p.empty()) return out;
    if (p[0] != '/') return make_error(errc::invalid_argument, "JSON pointer \"" + std::string(p) + "\" must start with '/'");
    std::string cur;
    for (std::size_t i = 1; i <= p.size(); ++i) {
        if (i == p.size() || p[i] == '/') {
            out.push_back(std::move(cur));
            cur.clear();
        } else if (p[i] == '~' && i + 1 < p.size() && (p[i + 1] == '0' || p[i + 1] == '1')) {
            cur += p[++i] == '0' ? '~' : '/';
        } else {
            cur += p[i];
        }
    }
    return out;
}

// The container a pointer's last token applies to.
inline result<json::value*> parent_of(json::value& doc, std::vector<std::string> const& toks, std::string const& path) {
    json::value* cur = &doc;
    for (std::size_t i = 0; i + 1 < toks.size(); ++i) {
        if (cur->is_object()) {
            auto* n = cur->get_object().if_contains(toks[i]);
            if (!n) return make_error(errc::invalid_argument, "path " + path + ": \"" + toks[i] + "\" does not exist");
            cur = n;
        } else if (cur->is_array()) {
            std::size_t idx = 0;
            auto [p, ec] = std::from_chars(toks[i].data(), toks[i].data() + toks[i].size(), idx);
            if (ec != std::errc() || idx >= cur->get_array().size())
                return make_error(errc::invalid_argument, "path " + path + ": index \"" + toks[i] + "\" out of range");
            cur = &cur->get_array()[idx];
        } else {
            return make_error(errc::invalid_argument, "path " + path + ": not a container");
        }
    }
    return cur;
}

inline result<json::value> pointer_get(json::value& doc, std::string const& path) {
    auto toks = pointer_tokens(path);
    if (!toks) return std::move(toks).error();
    if (toks->empty()) return doc;
    auto parent = parent_of(doc, *toks, path);
    if (!parent) return std::move(parent).error();
    auto& last = toks->back();
    if ((*parent)->is_object()) {
        auto* v = (*parent)->get_object().if_contains(last);
        if (!v) return make_error(errc::invalid_argument, "path " + path + " does not exist");
        return *v;
    }
    if ((*parent)->is_array()) {
        std::size_t idx = 0;
        auto [p, ec] = std::from_chars(last.data(), last.data() + last.size(), idx);
        if (ec != std::errc() || idx >= (*parent)->get_array().size()) return make_error(errc::invalid_argument, "path " + path + ": index out of range");
        return (*parent)->get_array()[idx];
    }
    return make_error(errc::invalid_argument, "path " + path + ": not a container");
}

inline result<void> pointer_add(json::value& doc, std::string const& path, json::value v, bool replace) {
    auto toks = pointer_tokens(path);
    if (!toks) return std::move(toks).error();
    if (toks->empty()) {
        doc = std::move(v);
        return {};
    }
    auto parent = parent_of(doc, *toks, path);
    if (!parent) return std::move(parent).error();
    auto& last = toks->back();
    if ((*parent)->is_object()) {
        auto& o = (*parent)->get_object();
        if (replace && !o.contains(last)) return make_error(errc::invalid_argument, "path " + path + " does not exist");
        o[last] = std::move(v);
        return {};
    }
    if ((*parent)->is_array()) {
        auto& a = (*parent)->get_array();
        if (last == "-" && !replace) {
            a.push_back(std::move(v));
            return {};
        }
        std::size_t idx = 0;
        auto [p, ec] = std::from_chars(last.data(), last.data() + last.size(), idx);
        if (ec != std::errc() || idx > a.size() || (replace && idx == a.size()))
            return make_error(errc::invalid_argument, "path " + path + ": index out of range");
        if (replace) a[idx] = std::move(v);
        else a.insert(a.begin() + std::ptrdiff_t(idx), std::move(v));
        return {};
    }
    return make_error(errc::invalid_argument, "path " + path + ": not a container");
}

inline result<void> pointer_remove(json::value& doc, std::string const& path) {
    auto toks = pointer_tokens(path);
    if (!toks) return std::move(toks).error();
    if (toks->empty()) return make_error(errc::invalid_argument, "cannot remove the whole document");
    auto parent = parent_of(doc, *toks, path);
    if (!parent) return std::move(parent).error();
    auto& last = toks->back();
    if ((*parent)->is_object()) {
        if (!(*parent)->get_object().erase(last)) return make_error(errc::invalid_argument, "path " + path + " does not exist");
        return {};
    }
    if ((*parent)->is_array()) {
        auto& a = (*parent)->get_array();
        std::size_t idx = 0;
        auto [p, ec] = std::from_chars(last.data(), last.data() + last.size(), idx);
        if (ec != std::errc() || idx >= a.size()) return make_error(errc::invalid_argument, "path " + path + ": index out of range");
        a.erase(a.begin() + std::ptrdiff_t(idx));
        return {};
    }
    return make_error(errc::invalid_argument, "path " + path + ": not a container");
}
}  // namespace detail

/// RFC 6902: applies the operations in order; an error names the operation's index and path.
inline result<json::value> json_patch(json::value doc, json::value const& patch) {
    if (!patch.is_array()) return make_error(errc::invalid_argument, "a JSON patch must be a list of operations");
    std::size_t i = 0;
    for (auto const& opv : patch.get_array()) {
        auto fail = [&](error const& e) { return error{e.code, "operation " + std::to_string(i) + ": " + e.message}; };
        if (!opv.is_object()) return fail(make_error(errc::invalid_argument, "not an object"));
        auto const& op = opv.get_object();
        auto str = [&](char const* k) {
            auto const* v = op.if_contains(k);
            return v && v->is_string() ? std::string(v->get_string()) : std::string();
        };
        std::string const kind = str("op"), path = str("path");
        json::value const* value = op.if_contains("value");
        result<void> r;
        if (kind == "add" || kind == "replace") {
            if (!value) return fail(make_error(errc::invalid_argument, "\"value\" is required"));
            r = detail::pointer_add(doc, path, *value, kind == "replace");
        } else if (kind == "remove") {
            r = detail::pointer_remove(doc, path);
        } else if (kind == "move" || kind == "copy") {
            auto v = detail::pointer_get(doc, str("from"));
            if (!v) return fail(v.error());
            if (kind == "move")
                if (auto rm = detail::pointer_remove(doc, str("from")); !rm) return fail(rm.error());
            r = detail::pointer_add(doc, path, std::move(*v), false);
        } else if (kind == "test") {
            auto v = detail::pointer_get(doc, path);
            if (!v) return fail(v.error());
            if (!value || *v != *value) return fail(make_error(errc::conflict, "test failed at " + path));
        } else {
            return fail(make_error(errc::invalid_argument, "unknown op \"" + kind + "\""));
        }
        if (!r) return fail(r.error());
        ++i;
    }
    return doc;
}

/// The merge key of a list field in strategic merge patches of the built-in kinds, or "" when
/// the list is replaced as a whole.
inline std::string_view strategic_merge_key(std::string_view field) {
    if (field == "containers" || field == "initContainers" || field == "ephemeralContainers" || field == "volumes" ||
        field == "env" || field == "imagePullSecrets" || field == "ownerReferences")
        return field == "ownerReferences" ? "uid" : "name";
    if (field == "volumeMounts") return "mountPath";
    if (field == "ports") return "containerPort";
    return {};
}

/** Strategic merge patch: as a merge patch, except that lists with a merge key (containers,
    initContainers, volumes, env, imagePullSecrets by name; volumeMounts by mountPath; ports by
    containerPort) merge element by element, and an element `{"$patch": "delete", <key>: …}` removes
    its match. `$setElementOrder` directives are accepted and ignored. */
inline json::value strategic_merge_patch(json::value target, json::value const& patch, std::string_view field = {}) {
    if (patch.is_array()) {
        auto const key = strategic_merge_key(field);
        if (key.empty() || !target.is_array()) return patch;
        auto& t = target.get_array();
        for (auto const& e : patch.get_array()) {
            if (!e.is_object() || !e.get_object().contains(key)) {
                t.push_back(e);
                continue;
            }
            auto const& k = e.get_object().at(key);
            auto it = std::find_if(t.begin(), t.end(), [&](json::value const& x) {
                return x.is_object() && x.get_object().contains(key) && x.get_object().at(key) == k;
            });
            auto const* directive = e.get_object().if_contains("$patch");
            if (directive && directive->is_string() && directive->get_string() == "delete") {
                if (it != t.end()) t.erase(it);
            } else if (it != t.end()) {
                *it = strategic_merge_patch(*it, e);
            } else {
                t.push_back(e);
            }
        }
        return target;
    }
    if (!patch.is_object()) return patch;
    if (!target.is_object()) target = json::object();
    auto& t = target.get_object();
    for (auto const& [k, v] : patch.get_object()) {
        if (k.starts_with("$setElementOrder/") || k == "$retainKeys") continue;
        if (v.is_null()) t.erase(k);
        else t[k] = strategic_merge_patch(t.contains(k) ? t[k] : json::value(), v, k);
    }
    return target;
}

}  // namespace stash::embedded
