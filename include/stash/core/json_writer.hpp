// A minimal streaming JSON writer: deterministic output in the field order the caller gives, for the
// documents we store (trees are hashed, so their bytes must not depend on a map's iteration order).
#pragma once

#include <stash/core/bytes.hpp>
#include <stash/core/hex.hpp>

#include <array>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

namespace stash {

/// Appends compact JSON to a string. The caller is responsible for well-formed nesting.
class json_writer {
public:
    explicit json_writer(std::string& out) : out_(out) {}

    json_writer& begin_object() { sep(); out_ += '{'; first_ = true; return *this; }
    json_writer& end_object() { out_ += '}'; first_ = false; return *this; }
    json_writer& begin_array() { sep(); out_ += '['; first_ = true; return *this; }
    json_writer& end_array() { out_ += ']'; first_ = false; return *this; }

    /// Writes `"k":` and arranges for the next value to follow without a comma.
    json_writer& key(std::string_view k) {
        sep();
        string_literal(k);
        out_ += ':';
        first_ = true;
        return *this;
    }
    json_writer& value(std::string_view s) { sep(); string_literal(s); return *this; }
    json_writer& value(char const* s) { return value(std::string_view(s)); }
    json_writer& value(bool b) { sep(); out_ += b ? "true" : "false"; return *this; }
    json_writer& value(std::uint64_t v) { sep(); return integer(v); }
    json_writer& value(std::int64_t v) { sep(); return integer(v); }
    json_writer& value(std::uint32_t v) { return value(std::uint64_t(v)); }
    json_writer& value(int v) { return value(std::int64_t(v)); }
    json_writer& value(double v) {
        sep();
        char buf[32];
        std::snprintf(buf, sizeof buf, "%.17g", v);
        out_ += buf;
        return *this;
    }
    json_writer& null() { sep(); out_ += "null"; return *this; }
    /// Writes `b` as a string of lower-case hex digits (IDs), with no temporary string.
    json_writer& hex(byte_span b) {
        sep();
        std::size_t const at = out_.size();
        out_.resize(at + 2 * b.size() + 2);
        out_[at] = '"';
        *to_hex(b, out_.data() + at + 1) = '"';
        return *this;
    }
    /// Inserts pre-serialized JSON as a value.
    json_writer& raw(std::string_view json) { sep(); out_ += json; return *this; }

    template <class T>
    json_writer& field(std::string_view k, T const& v) { key(k); return value(v); }

    /// JSON string escaping as Go's encoding/json does it (also `<`, `>`, `&`), UTF-8 passed through.
    /// Runs of characters that need no escape are appended whole (trees hold a name and three
    /// timestamps per file, and are written for every changed directory).
    static void escape(std::string& out, std::string_view s) {
        static constexpr char hex[] = "0123456789abcdef";
        static constexpr auto special = [] {
            std::array<bool, 256> t{};
            for (int c = 0; c < 0x20; ++c) t[c] = true;
            for (unsigned char c : std::string_view("\"<>&\\")) t[c] = true;
            return t;
        }();
        for (std::size_t i = 0; i < s.size();) {
            std::size_t run = i;
            while (run < s.size() && !special[static_cast<unsigned char>(s[run])]) ++run;
            out.append(s.data() + i, run - i);
            if (run == s.size()) break;
            i = run + 1;
            unsigned char const c = static_cast<unsigned char>(s[run]);
            switch (c) {
                case '"': out += "\\\""; break;
                case '\\': out += "\\\\"; break;
                case '\n': out += "\\n"; break;
                case '\r': out += "\\r"; break;
                case '\t': out += "\\t"; break;
                default:  // other controls and <, >, &
                    out += "\\u00";
                    out += hex[c >> 4];
                    out += hex[c & 15];
            }
        }
    }

private:
    template <class Int>
    json_writer& integer(Int v) {
        char buf[24];
        auto const r = std::to_chars(buf, buf + sizeof buf, v);
        out_.append(buf, r.ptr);
        return *this;
    }
    void sep() {
        if (!first_) out_ += ',';
        first_ = false;
    }
    void string_literal(std::string_view s) {
        out_ += '"';
        escape(out_, s);
        out_ += '"';
    }

    std::string& out_;
    bool first_ = true;
};

}  // namespace stash
