// AWS Signature Version 4 for request headers (AWS's "Signature Version 4 signing process":
// canonical request → string to sign → HMAC-SHA256 key derivation date/region/service → signature).
#pragma once

#include <stash/core/bytes.hpp>
#include <stash/core/hex.hpp>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace stash::net::sigv4 {

struct credentials {
    std::string access_key_id, secret_access_key, session_token;
};

using digest = std::array<std::byte, 32>;

inline digest sha256(byte_span data) {
    digest d;
    unsigned n = 0;
    EVP_Digest(data.data(), data.size(), reinterpret_cast<unsigned char*>(d.data()), &n, EVP_sha256(), nullptr);
    return d;
}
inline std::string sha256_hex(std::string_view s) { return to_hex(sha256(as_bytes(s))); }

inline digest hmac(byte_span key, std::string_view msg) {
    digest d;
    unsigned n = 0;
    HMAC(EVP_sha256(), key.data(), int(key.size()), reinterpret_cast<unsigned char const*>(msg.data()), msg.size(),
         reinterpret_cast<unsigned char*>(d.data()), &n);
    return d;
}

/// The SHA-256 of an empty payload, hex.
inline constexpr char const* empty_payload_hash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// URI-encodes as SigV4 requires: everything but A–Z a–z 0–9 - _ . ~ (and '/' in paths).
inline std::string uri_encode(std::string_view s, bool keep_slash) {
    std::string o;
    for (unsigned char ch : s) {
        if (std::isalnum(ch) || ch == '-' || ch == '_' || ch == '.' || ch == '~' || (keep_slash && ch == '/')) {
            o += char(ch);
        } else {
            static constexpr char hex[] = "0123456789ABCDEF";
            o += '%', o += hex[ch >> 4], o += hex[ch & 15];
        }
    }
    return o;
}

/** One request to sign. `path` is the URI path as sent, already URI-encoded (S3 encodes each key
    segment once; other services encode twice, which is the caller's business); `query` holds the
    decoded parameters; `headers` the headers to sign (any case; values trimmed here). */
struct request {
    std::string method;
    std::string path;
    std::vector<std::pair<std::string, std::string>> query;
    std::vector<std::pair<std::string, std::string>> headers;
    std::string payload_hash;  ///< hex SHA-256 of the body, or "UNSIGNED-PAYLOAD"
};

struct signed_parts {
    std::string canonical_request, string_to_sign, signature, authorization;
};

/// The canonical query string: parameters encoded, sorted by name then value, joined with '&'.
inline std::string canonical_query(std::vector<std::pair<std::string, std::string>> q) {
    for (auto& [k, v] : q) k = uri_encode(k, false), v = uri_encode(v, false);
    std::sort(q.begin(), q.end());
    std::string s;
    for (auto const& [k, v] : q) s += (s.empty() ? "" : "&") + k + "=" + v;
    return s;
}

/** Signs `r` for `region` and `service` at `amz_date` ("YYYYMMDDTHHMMSSZ", which must also be in the
    signed x-amz-date header). Returns every intermediate (for tests against AWS's examples) and the
    Authorization header value. */
inline signed_parts sign(request const& r, credentials const& c, std::string_view region, std::string_view service, std::string_view amz_date) {
    std::vector<std::pair<std::string, std::string>> hs;
    for (auto const& [k, v] : r.headers) {
        std::string name(k), value;
        std::transform(name.begin(), name.end(), name.begin(), [](unsigned char ch) { return char(std::tolower(ch)); });
        // Trim, and fold inner runs of spaces into one.
        for (char ch : v)
            if (ch != ' ' || (!value.empty() && value.back() != ' ')) value += ch;
        while (!value.empty() && value.back() == ' ') value.pop_back();
        hs.emplace_back(std::move(name), std::move(value));
    }
    std::sort(hs.begin(), hs.end());
    std::string canonical_headers, signed_headers;
    for (auto const& [k, v] : hs) {
        canonical_headers += k + ":" + v + "\n";
        signed_headers += (signed_headers.empty() ? "" : ";") + k;
    }
    signed_parts out;
    out.canonical_request = r.method + "\n" + (r.path.empty() ? "/" : r.path) + "\n" + canonical_query(r.query) + "\n" + canonical_headers + "\n" +
                            signed_headers + "\n" + r.payload_hash;
    std::string const date(amz_date.substr(0, 8));
    std::string const scope = date + "/" + std::string(region) + "/" + std::string(service) + "/aws4_request";
    out.string_to_sign = "AWS4-HMAC-SHA256\n" + std::string(amz_date) + "\n" + scope + "\n" + sha256_hex(out.canonical_request);
    std::string const k0 = "AWS4" + c.secret_access_key;
    auto k = hmac(as_bytes(k0), date);
    k = hmac(k, region);
    k = hmac(k, service);
    k = hmac(k, "aws4_request");
    out.signature = to_hex(hmac(k, out.string_to_sign));
    out.authorization = "AWS4-HMAC-SHA256 Credential=" + c.access_key_id + "/" + scope + ",SignedHeaders=" + signed_headers + ",Signature=" + out.signature;
    return out;
}

}  // namespace stash::net::sigv4
