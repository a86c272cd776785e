// Reading restic's JSON documents with Boost.JSON: typed field access with messages naming the field.
#pragma once

#include <stash/core/error.hpp>
#include <stash/core/id.hpp>
#include <stash/core/time.hpp>

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include <cstdint>
#include <string>
#include <string_view>

namespace stash::repo {

/// Parses JSON text; `what` names the document in the error ("index 3f2a…").
inline result<boost::json::value> parse_json(std::string_view text, std::string const& what) {
    boost::system::error_code ec;
    auto v = boost::json::parse(text, ec);
    if (ec) return make_error(errc::corrupt, what + ": invalid JSON: " + ec.message());
    return v;
}

/// Field accessors over a JSON object; each error names the document and the field.
class json_reader {
public:
    json_reader(boost::json::object const& o, std::string what) : o_(o), what_(std::move(what)) {}

    boost::json::value const* find(std::string_view k) const {
        auto const* v = o_.if_contains(k);
        return v && !v->is_null() ? v : nullptr;
    }
    result<std::string> str(std::string_view k, bool required = false) const {
        auto const* v = find(k);
        if (!v) return required ? missing(k) : result<std::string>(std::string());
        if (!v->is_string()) return wrong(k, "a string");
        return std::string(v->get_string());
    }
    result<std::uint64_t> u64(std::string_view k, bool required = false) const {
        auto const* v = find(k);
        if (!v) return required ? missing(k) : result<std::uint64_t>(0);
        if (v->is_uint64()) return v->get_uint64();
        if (v->is_int64() && v->get_int64() >= 0) return std::uint64_t(v->get_int64());
        if (v->is_double() && v->get_double() >= 0) return std::uint64_t(v->get_double());
        return wrong(k, "a non-negative integer");
    }
    result<bool> boolean(std::string_view k) const {
        auto const* v = find(k);
        if (!v) return false;
        if (!v->is_bool()) return wrong(k, "a boolean");
        return v->get_bool();
    }
    result<stash::id> id(std::string_view k, bool required = false) const {
        auto s = str(k, required);
        if (!s) return std::move(s).error();
        if (s->empty()) return stash::id{};
        auto r = stash::id::parse(*s);
        if (!r) return wrong(k, "a 64-digit hex ID");
        return *r;
    }
    result<timestamp> time(std::string_view k, bool required = false) const {
        auto s = str(k, required);
        if (!s) return std::move(s).error();
        if (s->empty()) return timestamp::zero();
        auto r = parse_rfc3339(*s);
        if (!r) return wrong(k, "an RFC 3339 time");
        return *r;
    }
    result<std::vector<std::string>> strings(std::string_view k) const {
        std::vector<std::string> out;
        auto const* v = find(k);
        if (!v) return out;
        if (!v->is_array()) return wrong(k, "an array of strings");
        for (auto const& e : v->get_array()) {
            if (!e.is_string()) return wrong(k, "an array of strings");
            out.emplace_back(e.get_string());
        }
        return out;
    }

    error missing(std::string_view k) const { return make_error(errc::corrupt, what_ + ": field \"" + std::string(k) + "\" is missing"); }
    error wrong(std::string_view k, char const* want) const {
        return make_error(errc::corrupt, what_ + ": field \"" + std::string(k) + "\" must be " + want);
    }
    std::string const& what() const { return what_; }

private:
    boost::json::object const& o_;
    std::string what_;
};

/// Parses text that must be a JSON object.
inline result<boost::json::object> parse_object(std::string_view text, std::string const& what) {
    auto v = parse_json(text, what);
    if (!v) return std::move(v).error();
    if (!v->is_object()) return make_error(errc::corrupt, what + ": expected a JSON object");
    return std::move(v->get_object());
}

}  // namespace stash::repo
