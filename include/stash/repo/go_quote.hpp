// Go's strconv.Quote / Unquote, which restic applies to node names before JSON encoding (restic-format.md §7.3).
#pragma once

#include <stash/core/error.hpp>

#include <cstdint>
#include <string>
#include <string_view>

namespace stash::repo {

namespace detail {
// Decodes one UTF-8 sequence at s[i]; returns the code point and its length, or -1 for invalid bytes.
inline std::pair<std::int32_t, std::size_t> decode_utf8(std::string_view s, std::size_t i) noexcept {
    auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
    unsigned c = b(i);
    if (c < 0x80) return {std::int32_t(c), 1};
    auto cont = [&](std::size_t k) { return k < s.size() && (b(k) & 0xC0) == 0x80; };
    if (c >= 0xC2 && c <= 0xDF && cont(i + 1)) return {std::int32_t((c & 0x1F) << 6 | (b(i + 1) & 0x3F)), 2};
    if (c >= 0xE0 && c <= 0xEF && cont(i + 1) && cont(i + 2)) {
        std::int32_t r = std::int32_t((c & 0x0F) << 12 | (b(i + 1) & 0x3F) << 6 | (b(i + 2) & 0x3F));
        if (r < 0x800 || (r >= 0xD800 && r <= 0xDFFF)) return {-1, 1};
        return {r, 3};
    }
    if (c >= 0xF0 && c <= 0xF4 && cont(i + 1) && cont(i + 2) && cont(i + 3)) {
        std::int32_t r = std::int32_t((c & 0x07) << 18 | (b(i + 1) & 0x3F) << 12 | (b(i + 2) & 0x3F) << 6 | (b(i + 3) & 0x3F));
        if (r < 0x10000 || r > 0x10FFFF) return {-1, 1};
        return {r, 4};
    }
    return {-1, 1};
}

inline void encode_utf8(std::string& out, std::uint32_t r) {
    if (r < 0x80) out += char(r);
    else if (r < 0x800) out += char(0xC0 | r >> 6), out += char(0x80 | (r & 0x3F));
    else if (r < 0x10000) out += char(0xE0 | r >> 12), out += char(0x80 | (r >> 6 & 0x3F)), out += char(0x80 | (r & 0x3F));
    else out += char(0xF0 | r >> 18), out += char(0x80 | (r >> 12 & 0x3F)), out += char(0x80 | (r >> 6 & 0x3F)), out += char(0x80 | (r & 0x3F));
}

// Go's unicode.IsPrint for runes ≥ 0x80, approximated by the categories Go excludes: C1 controls,
// spaces other than U+0020, format characters, surrogates, private use and noncharacters.
// Unassigned code points are not tabulated (they are treated as printable).
inline bool is_print_nonascii(std::int32_t r) noexcept {
    if (r < 0xA1) return false;                     // C1 controls and U+00A0 (no-break space)
    if (r == 0xAD) return false;                    // soft hyphen (Cf)
    if (r >= 0x600 && r <= 0x605) return false;
    if (r == 0x61C || r == 0x6DD || r == 0x70F || r == 0x180E) return false;
    if (r == 0x1680) return false;                  // ogham space mark (Zs)
    if (r >= 0x2000 && r <= 0x200F) return false;   // spaces, zero-width and direction marks
    if (r >= 0x2028 && r <= 0x202F) return false;   // line/paragraph separators, embeddings, nnbsp
    if (r >= 0x205F && r <= 0x206F) return false;
    if (r == 0x3000) return false;                  // ideographic space
    if (r >= 0xD800 && r <= 0xF8FF) return false;   // surrogates, private use
    if (r == 0xFEFF || (r >= 0xFFF9 && r <= 0xFFFB)) return false;
    if ((r & 0xFFFE) == 0xFFFE) return false;       // noncharacters U+xxFFFE/F
    if (r >= 0xFDD0 && r <= 0xFDEF) return false;
    if (r >= 0xF0000) return false;                 // planes 15–16: private use
    if (r >= 0xE0000 && r <= 0xE0FFF) return false; // tags, variation selectors supplement
    return true;
}
}  // namespace detail

/// True when `go_quote(s) == s`: printable ASCII other than `\` and `"` (most file names).
inline bool go_quote_is_identity(std::string_view s) noexcept {
    for (unsigned char c : s)
        if (c < 0x20 || c >= 0x7F || c == '\\' || c == '"') return false;
    return true;
}

/// Go's strconv.Quote without the surrounding quotes.
inline std::string go_quote(std::string_view s) {
    static constexpr char hex[] = "0123456789abcdef";
    std::string out;
    out.reserve(s.size() + 2);
    for (std::size_t i = 0; i < s.size();) {
        auto [r, n] = detail::decode_utf8(s, i);
        unsigned char c = static_cast<unsigned char>(s[i]);
        if (r < 0) {
            out += "\\x", out += hex[c >> 4], out += hex[c & 15];
        } else if (r < 0x80) {
            switch (c) {
                case '\a': out += "\\a"; break;
                case '\b': out += "\\b"; break;
                case '\f': out += "\\f"; break;
                case '\n': out += "\\n"; break;
                case '\r': out += "\\r"; break;
                case '\t': out += "\\t"; break;
                case '\v': out += "\\v"; break;
                case '\\': out += "\\\\"; break;
                case '"': out += "\\\""; break;
                default:
                    if (c < 0x20 || c == 0x7F) out += "\\x", out += hex[c >> 4], out += hex[c & 15];
                    else out += char(c);
            }
        } else if (detail::is_print_nonascii(r)) {
            out.append(s.substr(i, n));
        } else {
            char buf[12];
            std::snprintf(buf, sizeof buf, r < 0x10000 ? "\\u%04x" : "\\U%08x", unsigned(r));
            out += buf;
        }
        i += n;
    }
    return out;
}

/// Go's strconv.Unquote of `"` + s + `"`. Errors: `errc::corrupt` on an invalid escape.
inline result<std::string> go_unquote(std::string_view s) {
    if (s.find('\\') == std::string_view::npos && s.find('"') == std::string_view::npos) return std::string(s);
    auto bad = [&] { return make_error(errc::corrupt, "invalid quoted name \"" + std::string(s) + "\""); };
    auto hexval = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
    };
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        char c = s[i];
        if (c == '"') return bad();
        if (c != '\\') { out += c; continue; }
        if (++i >= s.size()) return bad();
        switch (s[i]) {
            case 'a': out += '\a'; break;
            case 'b': out += '\b'; break;
            case 'f': out += '\f'; break;
            case 'n': out += '\n'; break;
            case 'r': out += '\r'; break;
            case 't': out += '\t'; break;
            case 'v': out += '\v'; break;
            case '\\': out += '\\'; break;
            case '"': out += '"'; break;
            case 'x': case 'u': case 'U': {
                std::size_t len = s[i] == 'x' ? 2 : s[i] == 'u' ? 4 : 8;
                if (i + len >= s.size()) return bad();
                std::uint32_t v = 0;
                for (std::size_t k = 1; k <= len; ++k) {
                    int h = hexval(s[i + k]);
                    if (h < 0) return bad();
                    v = v << 4 | unsigned(h);
                }
                i += len;
                if (len == 2) out += char(v);
                else if (v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return bad();
                else detail::encode_utf8(out, v);
                break;
            }
            case '0': case '1': case '2': case '3': case '4': case '5': case '6': case '7': {
                if (i + 2 >= s.size()) return bad();
                unsigned v = 0;
                for (int k = 0; k < 3; ++k) {
                    char d = s[i + k];
                    if (d < '0' || d > '7') return bad();
                    v = v * 8 + unsigned(d - '0');
                }
                if (v > 255) return bad();
                out += char(v);
                i += 2;
                break;
            }
            default: return bad();
        }
    }
    return out;
}

}  // namespace stash::repo
