// Key files: a password-derived key wrapping the repository's master key (restic-format.md §2.3).
#pragma once

#include <stash/core/json_writer.hpp>
#include <stash/crypto/kdf.hpp>
#include <stash/crypto/sealer.hpp>
#include <stash/repo/json.hpp>

#include <algorithm>
#include <string>

namespace stash::repo {

/// A parsed key file.
struct key_file {
    timestamp created;
    std::string username, hostname;
    crypto::scrypt_params params;
    bytes salt;  ///< 64 bytes
    bytes data;  ///< box of the master-key JSON under the user key

    std::string to_json() const {
        std::string s;
        json_writer w(s);
        w.begin_object()
            .field("created", format_rfc3339(created))
            .field("username", username)
            .field("hostname", hostname)
            .field("kdf", "scrypt")
            .field("N", params.n)
            .field("r", params.r)
            .field("p", params.p)
            .field("salt", to_base64(salt))
            .field("data", to_base64(data))
            .end_object();
        return s;
    }

    static result<key_file> from_json(std::string_view text, std::string const& what) {
        auto o = parse_object(text, what);
        if (!o) return std::move(o).error();
        json_reader r(*o, what);
        key_file k;
        auto kdf = r.str("kdf", true);
        if (!kdf) return std::move(kdf).error();
        if (*kdf != "scrypt") return make_error(errc::unsupported, what + ": only supported KDF is scrypt()");
        auto n = r.u64("N", true), rr = r.u64("r", true), p = r.u64("p", true);
        if (!n) return std::move(n).error();
        if (!rr) return std::move(rr).error();
        if (!p) return std::move(p).error();
        k.params = {*n, std::uint32_t(*rr), std::uint32_t(*p)};
        auto salt = r.str("salt", true), data = r.str("data", true);
        if (!salt) return std::move(salt).error();
        if (!data) return std::move(data).error();
        auto sb = from_base64(*salt), db = from_base64(*data);
        if (!sb || sb->size() != 64) return r.wrong("salt", "64 bytes of base64");
        if (!db) return r.wrong("data", "base64");
        k.salt = std::move(*sb), k.data = std::move(*db);
        auto u = r.str("username"), h = r.str("hostname");
        k.username = u ? *u : "", k.hostname = h ? *h : "";
        auto c = r.time("created");
        k.created = c ? *c : timestamp::zero();
        return k;
    }
};

/// Serializes a master key as restic does: `{"mac":{"k":…,"r":…},"encrypt":…}`.
inline std::string master_key_json(crypto::key_material const& k) {
    std::string s;
    json_writer w(s);
    w.begin_object().key("mac").begin_object().field("k", to_base64(k.mac_k)).field("r", to_base64(k.mac_r)).end_object();
    w.field("encrypt", to_base64(k.encrypt)).end_object();
    return s;
}

inline result<crypto::key_material> parse_master_key(std::string_view text) {
    auto o = parse_object(text, "master key");
    if (!o) return std::move(o).error();
    crypto::key_material k;
    auto get = [&](boost::json::object const& obj, char const* name, std::span<std::byte> out) -> bool {
        auto const* v = obj.if_contains(name);
        if (!v || !v->is_string()) return false;
        auto b = from_base64(v->get_string());
        if (!b || b->size() != out.size()) return false;
        std::copy(b->begin(), b->end(), out.begin());
        return true;
    };
    auto const* mac = o->if_contains("mac");
    if (!mac || !mac->is_object() || !get(mac->get_object(), "k", k.mac_k) || !get(mac->get_object(), "r", k.mac_r) ||
        !get(*o, "encrypt", k.encrypt) || !k.valid())
        return make_error(errc::corrupt, "master key: invalid key material");
    return k;
}

/// Derives the user key from a password: scrypt to 64 bytes, split 32/16/16 (restic-format.md §2.3).
inline result<crypto::key_material> derive_user_key(std::string_view password, key_file const& k) {
    std::array<std::byte, 64> dk;
    STASH_TRYV(crypto::scrypt(password, k.salt, k.params, dk));
    crypto::key_material u;
    std::copy_n(dk.begin(), 32, u.encrypt.begin());
    std::copy_n(dk.begin() + 32, 16, u.mac_k.begin());
    std::copy_n(dk.begin() + 48, 16, u.mac_r.begin());
    return u;
}

/// Opens a key file with a password. Errors: `errc::wrong_password` when the MAC does not verify.
inline result<crypto::key_material> open_key(std::string_view password, key_file const& k) {
    auto user = derive_user_key(password, k);
    if (!user) return std::move(user).error();
    bytes plain;
    if (!crypto::restic_sealer(*user).open(k.data, plain)) return make_error(errc::wrong_password, "wrong password");
    return parse_master_key(as_chars(plain));
}

/// Creates a key file wrapping `master` under `password`.
inline result<key_file> make_key(std::string_view password, crypto::key_material const& master, crypto::scrypt_params prm,
                                 std::string username, std::string hostname) {
    key_file k;
    k.created = timestamp::now();
    k.username = std::move(username), k.hostname = std::move(hostname);
    k.params = prm;
    k.salt.resize(64);
    crypto::random_bytes(k.salt);
    auto user = derive_user_key(password, k);
    if (!user) return std::move(user).error();
    auto mk = master_key_json(master);
    crypto::restic_sealer(*user).seal(as_bytes(mk), k.data);
    return k;
}

}  // namespace stash::repo
