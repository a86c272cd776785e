// JSON codec by reflection: structs declared with BOOST_HANA_DEFINE_STRUCT to and from Boost.JSON,
// with Kubernetes' conventions (camelCase keys as declared, omitted empty optionals and lists).
#pragma once

#include <stash/core/error.hpp>

#include <boost/hana/accessors.hpp>
#include <boost/hana/define_struct.hpp>
#include <boost/hana/for_each.hpp>
#include <boost/hana/keys.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include <array>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace stash::kube {

/** The codec's rules, for a member of type `M` named `m` in a struct `S`:

    | C++ type                          | JSON                                     | written when                 |
    |-----------------------------------|------------------------------------------|------------------------------|
    | `bool`, integers, `double`        | boolean, number                          | always                       |
    | `std::string`                     | string                                   | non-empty                    |
    | `std::optional<T>`                | as `T`                                   | engaged                      |
    | `std::vector<T>`                  | array                                    | non-empty                    |
    | `std::map<std::string, T>`        | object                                   | non-empty                    |
    | `boost::json::value`              | any JSON, kept as is (embedded core/v1 types, free-form objects) | not null |
    | a Hana struct                     | object                                   | always (optional<…> to omit) |

    The key of `m` is its name with one trailing underscore dropped (`namespace_` → `"namespace"`).
    A struct may declare `static constexpr std::array field_rules` of `field_rule`s for its keys: required
    (a missing key is "spec.retentionPolicy: Required value"), a default (decoded when the key is
    missing, as the API server defaults from a CRD schema), allowed string values, a minimum for
    integers, and a description. The decoder enforces them and the schema generator (schema.hpp)
    writes them into CRD schemas, so both read one declaration.
    Decoding ignores unknown keys (the API server prunes them from custom resources) and reports the
    first mismatch as `errc::invalid_argument` naming the JSON path (`spec.target.ref.kind: expected a
    string`). `null` decodes as "absent". */
template <class T>
struct codec;

/// The JSON key of a struct member.
constexpr std::string_view json_key(std::string_view member) noexcept {
    return !member.empty() && member.back() == '_' ? member.substr(0, member.size() - 1) : member;
}

/// Joins a JSON path: `path_join("spec", "target")` → "spec.target"; an index is appended as "[3]".
inline std::string path_join(std::string_view base, std::string_view key) {
    if (base.empty()) return std::string(key);
    std::string p(base);
    if (!key.empty() && key.front() != '[') p += '.';
    return p += key;
}

template <class T>
boost::json::value to_json(T const& v) {
    return codec<T>::encode(v);
}

/// Decodes `v` as `T`; errors name `path` and below.
template <class T>
result<T> from_json(boost::json::value const& v, std::string const& path = {}) {
    T out{};
    if (auto r = codec<T>::decode(v, out, path); !r) return std::move(r).error();
    return out;
}

/// A rule for one key of a struct (see `codec`). Designated initializers read best:
/// `{.key = "driver", .default_json = "\"Restic\"", .one_of = "Restic|VolumeSnapshotter"}`.
struct field_rule {
    std::string_view key;
    bool required = false;
    std::string_view default_json = {};  ///< JSON text of the default value
    std::string_view one_of = {};        ///< allowed string values, '|'-separated
    std::int64_t minimum = std::numeric_limits<std::int64_t>::min();
    std::string_view description = {};
};

/// Shorthand for a required key without further rules.
constexpr field_rule required(std::string_view key) { return {.key = key, .required = true}; }

/// The rules a struct declares (none unless it has `field_rules`).
template <class S>
constexpr auto rules_of() {
    if constexpr (requires { S::field_rules; }) return S::field_rules;
    else return std::array<field_rule, 0>{};
}

/// The rule for `key` in `S`, if any.
template <class S>
constexpr field_rule const* rule_for(std::string_view key) {
    constexpr auto const& rs = S::field_rules;
    for (auto const& r : rs)
        if (r.key == key) return &r;
    return nullptr;
}

namespace detail {
inline error type_error(std::string const& path, char const* expected) {
    return make_error(errc::invalid_argument, (path.empty() ? std::string("object") : path) + ": expected " + expected);
}
template <class T>
struct is_optional : std::false_type {};
template <class T>
struct is_optional<std::optional<T>> : std::true_type {};
template <class T>
struct is_vector : std::false_type {};
template <class T>
struct is_vector<std::vector<T>> : std::true_type {};
template <class T>
struct is_string_map : std::false_type {};
template <class T>
struct is_string_map<std::map<std::string, T>> : std::true_type {};

/// Checks a decoded value against its rule's allowed values and minimum.
inline std::optional<error> check_rule(field_rule const& r, boost::json::value const& v, std::string const& at) {
    if (!r.one_of.empty() && v.is_string()) {
        std::string_view const s = v.get_string();
        for (std::string_view rest = r.one_of;;) {
            auto const bar = rest.find('|');
            if (rest.substr(0, bar) == s) return std::nullopt;
            if (bar == std::string_view::npos) break;
            rest.remove_prefix(bar + 1);
        }
        std::string allowed;
        for (char c : r.one_of) allowed += c == '|' ? std::string("\", \"") : std::string(1, c);
        return make_error(errc::invalid_argument,
                          at + ": Unsupported value: \"" + std::string(s) + "\": supported values: \"" + allowed + "\"");
    }
    if (r.minimum != std::numeric_limits<std::int64_t>::min() && v.is_int64() && v.get_int64() < r.minimum)
        return make_error(errc::invalid_argument, at + ": Invalid value: " + std::to_string(v.get_int64()) +
                                                      ": must be greater than or equal to " + std::to_string(r.minimum));
    return std::nullopt;
}

/// Whether a member's value is left out of the JSON (Go's omitempty for the types above).
template <class M>
bool omitted(M const& m) {
    // (strings too: Kubernetes' Go types tag them omitempty, and an empty name means "not set")
    if constexpr (is_optional<M>::value) return !m.has_value();
    else if constexpr (is_vector<M>::value || is_string_map<M>::value || std::is_same_v<M, std::string>) return m.empty();
    else if constexpr (std::is_same_v<M, boost::json::value>) return m.is_null();
    else return false;
}
}  // namespace detail

template <>
struct codec<bool> {
    static boost::json::value encode(bool b) { return b; }
    static result<void> decode(boost::json::value const& v, bool& out, std::string const& path) {
        if (!v.is_bool()) return detail::type_error(path, "true or false");
        out = v.get_bool();
        return {};
    }
};

template <class I>
    requires(std::is_integral_v<I> && !std::is_same_v<I, bool>)
struct codec<I> {
    static boost::json::value encode(I i) {
        if constexpr (std::is_signed_v<I>) return std::int64_t(i);
        else return std::uint64_t(i);
    }
    static result<void> decode(boost::json::value const& v, I& out, std::string const& path) {
        std::int64_t x;
        if (v.is_int64()) x = v.get_int64();
        else if (v.is_uint64() && v.get_uint64() <= std::uint64_t(INT64_MAX)) x = std::int64_t(v.get_uint64());
        else if (v.is_double() && v.get_double() == double(std::int64_t(v.get_double()))) x = std::int64_t(v.get_double());
        else return detail::type_error(path, "an integer");
        if (x < std::int64_t(std::numeric_limits<I>::min()) ||
            (x > 0 && std::uint64_t(x) > std::uint64_t(std::numeric_limits<I>::max())))
            return make_error(errc::invalid_argument, path + ": " + std::to_string(x) + " is out of range");
        out = I(x);
        return {};
    }
};

template <>
struct codec<double> {
    static boost::json::value encode(double d) { return d; }
    static result<void> decode(boost::json::value const& v, double& out, std::string const& path) {
        if (v.is_double()) out = v.get_double();
        else if (v.is_int64()) out = double(v.get_int64());
        else if (v.is_uint64()) out = double(v.get_uint64());
        else return detail::type_error(path, "a number");
        return {};
    }
};

template <>
struct codec<std::string> {
    static boost::json::value encode(std::string const& s) { return boost::json::string(s); }
    static result<void> decode(boost::json::value const& v, std::string& out, std::string const& path) {
        if (!v.is_string()) return detail::type_error(path, "a string");
        out = std::string(v.get_string());
        return {};
    }
};

template <>
struct codec<boost::json::value> {
    static boost::json::value encode(boost::json::value const& v) { return v; }
    static result<void> decode(boost::json::value const& v, boost::json::value& out, std::string const&) {
        out = v;
        return {};
    }
};

template <class T>
struct codec<std::optional<T>> {
    static boost::json::value encode(std::optional<T> const& o) { return o ? codec<T>::encode(*o) : boost::json::value(); }
    static result<void> decode(boost::json::value const& v, std::optional<T>& out, std::string const& path) {
        if (v.is_null()) {
            out.reset();
            return {};
        }
        out.emplace();
        return codec<T>::decode(v, *out, path);
    }
};

template <class T>
struct codec<std::vector<T>> {
    static boost::json::value encode(std::vector<T> const& v) {
        boost::json::array a;
        a.reserve(v.size());
        for (auto const& e : v) a.push_back(codec<T>::encode(e));
        return a;
    }
    static result<void> decode(boost::json::value const& v, std::vector<T>& out, std::string const& path) {
        out.clear();
        if (v.is_null()) return {};
        if (!v.is_array()) return detail::type_error(path, "a list");
        out.resize(v.get_array().size());
        for (std::size_t i = 0; i < out.size(); ++i)
            if (auto r = codec<T>::decode(v.get_array()[i], out[i], path + "[" + std::to_string(i) + "]"); !r) return r;
        return {};
    }
};

template <class T>
struct codec<std::map<std::string, T>> {
    static boost::json::value encode(std::map<std::string, T> const& m) {
        boost::json::object o;
        for (auto const& [k, e] : m) o[k] = codec<T>::encode(e);
        return o;
    }
    static result<void> decode(boost::json::value const& v, std::map<std::string, T>& out, std::string const& path) {
        out.clear();
        if (v.is_null()) return {};
        if (!v.is_object()) return detail::type_error(path, "an object");
        for (auto const& [k, e] : v.get_object())
            if (auto r = codec<T>::decode(e, out[std::string(k)], path_join(path, k)); !r) return r;
        return {};
    }
};

/// Hana structs: one JSON member per struct member.
template <class S>
    requires boost::hana::Struct<S>::value
struct codec<S> {
    static boost::json::value encode(S const& s) {
        boost::json::object o;
        boost::hana::for_each(boost::hana::accessors<S>(), [&](auto pair) {
            auto const& m = boost::hana::second(pair)(s);
            if (detail::omitted(m)) return;
            o[json_key(boost::hana::to<char const*>(boost::hana::first(pair)))] = codec<std::decay_t<decltype(m)>>::encode(m);
        });
        return o;
    }
    static result<void> decode(boost::json::value const& v, S& out, std::string const& path) {
        if (!v.is_object()) return detail::type_error(path, "an object");
        auto const& o = v.get_object();
        std::optional<error> failure;
        boost::hana::for_each(boost::hana::accessors<S>(), [&](auto pair) {
            if (failure) return;
            auto& m = boost::hana::second(pair)(out);
            using M = std::decay_t<decltype(m)>;
            auto const key = json_key(boost::hana::to<char const*>(boost::hana::first(pair)));
            std::string const at = path_join(path, key);
            field_rule const* rule = nullptr;
            if constexpr (requires { S::field_rules; }) rule = rule_for<S>(key);
            auto it = o.find(key);
            boost::json::value const* val = it == o.end() || it->value().is_null() ? nullptr : &it->value();
            boost::json::value dflt;
            if (!val && rule && !rule->default_json.empty()) {
                dflt = boost::json::parse(rule->default_json);
                val = &dflt;
            }
            if (!val) {
                if (rule && rule->required) failure = make_error(errc::invalid_argument, at + ": Required value");
                return;
            }
            if (auto r = codec<M>::decode(*val, m, at); !r) return void(failure = r.error());
            if (rule) failure = detail::check_rule(*rule, *val, at);
        });
        if (failure) return *failure;
        return {};
    }
};

}  // namespace stash::kube
