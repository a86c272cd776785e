// Lower-case hexadecimal and standard (padded) base64, the encodings restic uses in its JSON.
#pragma once

#include <stash/core/bytes.hpp>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace stash {

/// Writes the lower-case hex of `b` to `out` (2·b.size() chars, no terminator); returns the end.
inline char* to_hex(byte_span b, char* out) noexcept {
    static constexpr char digits[] = "0123456789abcdef";
    for (auto c : b) *out++ = digits[std::to_integer<unsigned>(c) >> 4], *out++ = digits[std::to_integer<unsigned>(c) & 15];
    return out;
}

/// Lower-case hex of `b`.
inline std::string to_hex(byte_span b) {
    std::string s(b.size() * 2, '\0');
    to_hex(b, s.data());
    return s;
}

/// Decodes hex (either case) into `out`; false on odd length, a bad digit, or a size mismatch.
inline bool from_hex(std::string_view s, mutable_byte_span out) noexcept {
    // Digit values, 0x10 for a non-digit: one table look-up per character and one test at the end
    // (index files and trees hold millions of IDs).
    static constexpr auto nibble = [] {
        std::array<std::uint8_t, 256> t{};
        for (auto& v : t) v = 0x10;
        for (int c = 0; c < 10; ++c) t['0' + c] = std::uint8_t(c);
        for (int c = 0; c < 6; ++c) t['a' + c] = t['A' + c] = std::uint8_t(10 + c);
        return t;
    }();
    if (s.size() != out.size() * 2) return false;
    unsigned bad = 0;
    for (std::size_t i = 0; i < out.size(); ++i) {
        unsigned const hi = nibble[std::uint8_t(s[2 * i])], lo = nibble[std::uint8_t(s[2 * i + 1])];
        bad |= hi | lo;
        out[i] = std::byte(hi << 4 | (lo & 15));
    }
    return bad < 0x10;
}

/// Standard base64 with padding (RFC 4648 §4), as Go's encoding/json writes []byte.
inline std::string to_base64(byte_span b) {
    static constexpr char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string s;
    s.reserve((b.size() + 2) / 3 * 4);
    std::size_t i = 0;
    for (; i + 3 <= b.size(); i += 3) {
        unsigned v = unsigned(b[i]) << 16 | unsigned(b[i + 1]) << 8 | unsigned(b[i + 2]);
        s += tbl[v >> 18]; s += tbl[(v >> 12) & 63]; s += tbl[(v >> 6) & 63]; s += tbl[v & 63];
    }
    if (i + 1 == b.size()) {
        unsigned v = unsigned(b[i]) << 16;
        s += tbl[v >> 18]; s += tbl[(v >> 12) & 63]; s += "==";
    } else if (i + 2 == b.size()) {
        unsigned v = unsigned(b[i]) << 16 | unsigned(b[i + 1]) << 8;
        s += tbl[v >> 18]; s += tbl[(v >> 12) & 63]; s += tbl[(v >> 6) & 63]; s += '=';
    }
    return s;
}

/// Decodes standard base64 (padding optional); nullopt on a character outside the alphabet.
inline std::optional<bytes> from_base64(std::string_view s) {
    auto val = [](char c) -> int {
        if (c >= 'A' && c <= 'Z') return c - 'A';
        if (c >= 'a' && c <= 'z') return c - 'a' + 26;
        if (c >= '0' && c <= '9') return c - '0' + 52;
        if (c == '+') return 62;
        if (c == '/') return 63;
        return -1;
    };
    while (!s.empty() && s.back() == '=') s.remove_suffix(1);
    bytes out;
    out.reserve(s.size() * 3 / 4);
    unsigned acc = 0;
    int bits = 0;
    for (char c : s) {
        int v = val(c);
        if (v < 0) return std::nullopt;
        acc = acc << 6 | unsigned(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out.push_back(std::byte((acc >> bits) & 0xff));
        }
    }
    return out;
}

}  // namespace stash
