// Streaming JSON for the repository's large documents (index files, trees): Boost.JSON's SAX parser
// with strings joined from their parts and each value's key at hand, so a reader fills its structures
// as the text goes by instead of building a DOM first (several times the text in allocations).
#pragma once

#include <stash/core/error.hpp>

#include <boost/json/basic_parser_impl.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace stash::repo::detail {

/// One scalar value: a string, number, boolean or null.
struct json_scalar {
    enum kind_t { string, number, boolean, null } kind = null;
    std::string_view str;
    std::optional<std::uint64_t> u64;  ///< numbers that are non-negative integers (doubles included)
    bool b = false;
};

/// What a visitor of document `what` fails with: `fail` records the message (naming the document)
/// and returns false, which stops the parse; `wrong` says a field is not what it must be.
struct json_visitor_base {
    std::string const& what;
    std::optional<error> failure;

    bool fail(std::string msg) {
        failure = make_error(errc::corrupt, what + ": " + std::move(msg));
        return false;
    }
    bool wrong(std::string_view k, char const* want) { return fail("field \"" + std::string(k) + "\" must be " + want); }
};

/** Parses `text` and reports it to `Visitor`, which has:
      bool begin(bool object, std::string_view key)  // a container opens; key is "" inside arrays
      bool end(bool object)
      bool scalar(std::string_view key, json_scalar const& v)
      std::optional<error> failure                 // set before a callback returns false
      static constexpr bool checks_its_strings     // optional: true skips the UTF-8 check
    (json_visitor_base provides `failure`, `fail` and `wrong`).
    A callback returning false stops the parse with `failure`. Other errors say the text is not JSON,
    naming the document `what`. Views passed to the visitor are valid during the call only. */
template <class Visitor>
result<void> read_json_events(std::string_view text, Visitor& v, std::string const& what);

template <class Visitor>
class json_event_handler {
public:
    static constexpr std::size_t max_array_size = std::size_t(-1), max_object_size = std::size_t(-1),
                                 max_string_size = std::size_t(-1), max_key_size = std::size_t(-1);

    explicit json_event_handler(Visitor& v) : v_(v) {}

    /// The text about to be parsed: keys inside it are not copied.
    void input(std::string_view text) noexcept { input_ = text; }
    /// After the text is parsed: a key still waiting for its value is copied out of it.
    void pin() {
        if (!key_view_.empty() && key_.empty()) key_.assign(key_view_), key_view_ = key_;
        input_ = {};
    }

    bool on_document_begin(boost::json::error_code&) { return true; }
    bool on_document_end(boost::json::error_code&) { return true; }
    bool on_object_begin(boost::json::error_code& ec) { return open(true, ec); }
    bool on_object_end(std::size_t, boost::json::error_code& ec) { return close(true, ec); }
    bool on_array_begin(boost::json::error_code& ec) { return open(false, ec); }
    bool on_array_end(std::size_t, boost::json::error_code& ec) { return close(false, ec); }
    bool on_key_part(boost::json::string_view s, std::size_t, boost::json::error_code&) {
        key_.append(s.data(), s.size());
        return true;
    }
    bool on_key(boost::json::string_view s, std::size_t, boost::json::error_code&) {
        // A key whole in the text being parsed is used where it lies, not copied (five keys a blob
        // in an index: their copies were 5% of loading one); `pin` keeps it past the text.
        auto const at = reinterpret_cast<std::uintptr_t>(s.data()), in = reinterpret_cast<std::uintptr_t>(input_.data());
        if (key_.empty() && at >= in && at + s.size() <= in + input_.size()) {
            key_view_ = std::string_view(s.data(), s.size());
        } else {
            key_.append(s.data(), s.size());
            key_view_ = key_;
        }
        return true;
    }
    bool on_string_part(boost::json::string_view s, std::size_t, boost::json::error_code&) {
        str_.append(s.data(), s.size());
        return true;
    }
    bool on_string(boost::json::string_view s, std::size_t, boost::json::error_code& ec) {
        json_scalar v{json_scalar::string};
        if (str_.empty()) {
            v.str = std::string_view(s.data(), s.size());
        } else {
            str_.append(s.data(), s.size());
            v.str = str_;
        }
        bool const ok = value(v, ec);
        str_.clear();
        return ok;
    }
    bool on_number_part(boost::json::string_view, boost::json::error_code&) { return true; }
    bool on_int64(std::int64_t i, boost::json::string_view, boost::json::error_code& ec) {
        json_scalar v{json_scalar::number};
        if (i >= 0) v.u64 = std::uint64_t(i);
        return value(v, ec);
    }
    bool on_uint64(std::uint64_t u, boost::json::string_view, boost::json::error_code& ec) {
        json_scalar v{json_scalar::number};
        v.u64 = u;
        return value(v, ec);
    }
    bool on_double(double d, boost::json::string_view, boost::json::error_code& ec) {
        json_scalar v{json_scalar::number};
        if (d >= 0 && d < 18446744073709551616.0) v.u64 = std::uint64_t(d);
        return value(v, ec);
    }
    bool on_bool(bool b, boost::json::error_code& ec) {
        json_scalar v{json_scalar::boolean};
        v.b = b;
        return value(v, ec);
    }
    bool on_null(boost::json::error_code& ec) { return value(json_scalar{json_scalar::null}, ec); }
    bool on_comment_part(boost::json::string_view, boost::json::error_code&) { return true; }
    bool on_comment(boost::json::string_view, boost::json::error_code&) { return true; }

private:
    // The key of the value now starting ("" in an array); consumed by it.
    std::string_view take_key() {
        if (in_object_.empty() || !in_object_.back()) return {};
        std::string_view k = key_view_;
        if (!key_.empty()) {
            taken_.swap(key_);  // (both keep their capacity: no allocation per long key)
            key_.clear();
            k = taken_;
        }
        key_view_ = {};
        return k;
    }
    bool open(bool object, boost::json::error_code& ec) {
        bool const ok = v_.begin(object, take_key());
        in_object_.push_back(object);
        if (!ok) ec = boost::json::error::exception;
        return ok;
    }
    bool close(bool object, boost::json::error_code& ec) {
        in_object_.pop_back();
        bool const ok = v_.end(object);
        if (!ok) ec = boost::json::error::exception;
        return ok;
    }
    bool value(json_scalar const& v, boost::json::error_code& ec) {
        bool const ok = v_.scalar(take_key(), v);
        if (!ok) ec = boost::json::error::exception;
        return ok;
    }

    Visitor& v_;
    std::vector<bool> in_object_;
    std::string key_, taken_, str_;
    std::string_view key_view_;  // the key waiting for its value: in key_, or in input_
    std::string_view input_;     // the text being parsed
};

/// The same for a document that arrives in pieces (as it is decompressed): `feed` each, then `finish`.
template <class Visitor>
class json_event_parser {
public:
    json_event_parser(Visitor& v, std::string what) : v_(v), what_(std::move(what)), p_(options(), v) {}

    result<void> feed(std::string_view part) { return write(true, part); }
    result<void> finish() { return write(false, {}); }

private:
    // A visitor whose every string field must match a pattern of ASCII (hex IDs, names from a
    // fixed set) rejects bad bytes there anyway, so its text needs no UTF-8 check (2.6% of loading
    // an index): it says so with `static constexpr bool checks_its_strings = true`.
    static boost::json::parse_options options() {
        boost::json::parse_options o;
        if constexpr (requires { requires Visitor::checks_its_strings; }) o.allow_invalid_utf8 = true;
        return o;
    }

    result<void> write(bool more, std::string_view part) {
        boost::json::error_code ec;
        p_.handler().input(part);
        std::size_t const n = p_.write_some(more, part.data(), part.size(), ec);
        p_.handler().pin();
        if (v_.failure) return *v_.failure;
        if (ec) return make_error(errc::corrupt, what_ + ": invalid JSON: " + ec.message());
        if (n != part.size()) return make_error(errc::corrupt, what_ + ": invalid JSON: data after the document");
        return {};
    }

    Visitor& v_;
    std::string what_;
    boost::json::basic_parser<json_event_handler<Visitor>> p_;
};

template <class Visitor>
result<void> read_json_events(std::string_view text, Visitor& v, std::string const& what) {
    json_event_parser<Visitor> p(v, what);
    STASH_TRYV(p.feed(text));
    return p.finish();
}

}  // namespace stash::repo::detail
