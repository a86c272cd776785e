// restic's authenticated encryption: AES-256-CTR, then Poly1305-AES over the ciphertext.
#pragma once

#include <stash/concepts/sealer.hpp>
#include <stash/core/hex.hpp>
#include <stash/crypto/random.hpp>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <array>
#include <cstring>
#include <memory>
#include <stdexcept>

namespace stash::crypto {

/// A restic key: the AES-256 key and the two Poly1305-AES key halves (restic-format.md §2.1).
struct key_material {
    std::array<std::byte, 32> encrypt{};
    std::array<std::byte, 16> mac_k{};  ///< AES-128 key that derives the per-box `s`
    std::array<std::byte, 16> mac_r{};  ///< Poly1305 `r`, stored unclamped

    /// A fresh random key (a new repository's master key).
    static key_material random() {
        key_material k;
        random_bytes(k.encrypt), random_bytes(k.mac_k), random_bytes(k.mac_r);
        return k;
    }
    /// restic rejects keys whose parts are all zero.
    bool valid() const noexcept {
        auto zero = [](auto const& a) { for (auto b : a) if (b != std::byte{}) return false; return true; };
        return !zero(encrypt) && !zero(mac_k) && !zero(mac_r);
    }
};

namespace detail {
struct cipher_ctx_free { void operator()(EVP_CIPHER_CTX* c) const noexcept { EVP_CIPHER_CTX_free(c); } };
struct mac_ctx_free { void operator()(EVP_MAC_CTX* c) const noexcept { EVP_MAC_CTX_free(c); } };

inline EVP_CIPHER const* aes256ctr() { static EVP_CIPHER* c = EVP_CIPHER_fetch(nullptr, "AES-256-CTR", nullptr); return c; }
inline EVP_CIPHER const* aes128ecb() { static EVP_CIPHER* c = EVP_CIPHER_fetch(nullptr, "AES-128-ECB", nullptr); return c; }

// Per-thread contexts, keyed for the key they last served. Allocating a context per box is
// costly, and so is keying one: OpenSSL 3 expands the key and walks its parameter lists on every
// keyed init, about as long as sealing 2 KiB. A box under the same key only sets its IV.
struct thread_ctx {
    std::unique_ptr<EVP_CIPHER_CTX, cipher_ctx_free> ctr{EVP_CIPHER_CTX_new()};
    std::unique_ptr<EVP_CIPHER_CTX, cipher_ctx_free> ecb{EVP_CIPHER_CTX_new()};
    std::unique_ptr<EVP_MAC_CTX, mac_ctx_free> mac;
    std::array<std::byte, 32> ctr_key{};  // what ctr and ecb are keyed with (valid when keyed)
    std::array<std::byte, 16> ecb_key{};
    bool keyed = false;
    thread_ctx() {
        static EVP_MAC* const poly = EVP_MAC_fetch(nullptr, "POLY1305", nullptr);
        if (!poly || !ctr || !ecb) throw std::runtime_error("OpenSSL: cannot create cipher contexts");
        mac.reset(EVP_MAC_CTX_new(poly));
        if (!mac) throw std::runtime_error("OpenSSL: cannot create a Poly1305 context");
    }
    ~thread_ctx() { OPENSSL_cleanse(ctr_key.data(), ctr_key.size()), OPENSSL_cleanse(ecb_key.data(), ecb_key.size()); }
    // This thread's contexts, keyed with `enc` and `mac_k` (again only when those differ from the last).
    static thread_ctx& get(std::array<std::byte, 32> const& enc, std::array<std::byte, 16> const& mac_k) {
        thread_local thread_ctx c;
        if (!c.keyed || c.ctr_key != enc || c.ecb_key != mac_k) c.rekey(enc, mac_k);
        return c;
    }

private:
    void rekey(std::array<std::byte, 32> const& enc, std::array<std::byte, 16> const& mac_k) {
        keyed = false;
        auto u = [](std::byte const* p) { return reinterpret_cast<unsigned char const*>(p); };
        if (!EVP_EncryptInit_ex2(ctr.get(), aes256ctr(), u(enc.data()), nullptr, nullptr) ||
            !EVP_EncryptInit_ex2(ecb.get(), aes128ecb(), u(mac_k.data()), nullptr, nullptr) ||
            !EVP_CIPHER_CTX_set_padding(ecb.get(), 0))
            throw std::runtime_error("OpenSSL: cannot key AES");
        ctr_key = enc, ecb_key = mac_k, keyed = true;
    }
};
}  // namespace detail

/** Seals and opens restic boxes: `IV(16) ‖ AES-256-CTR(P) ‖ Poly1305-AES(C)` (restic-format.md §2.2).

    The nonce is 16 random bytes used as the whole CTR counter block and as the Poly1305-AES nonce;
    the MAC key is `r ‖ AES-128(mac.k, IV)`; the MAC covers the ciphertext only.

    @par Concepts
    `stash::sealer`.
*/
class restic_sealer {
public:
    static constexpr std::size_t overhead = 32;
    static constexpr std::size_t iv_size = 16, mac_size = 16;

    explicit restic_sealer(key_material const& k) : key_(k) {}
    key_material const& key() const noexcept { return key_; }

    void seal(byte_span in, bytes& out) const {
        std::array<std::byte, iv_size> iv;
        do random_nonce(iv); while (iv == std::array<std::byte, iv_size>{});
        seal_with_iv(in, iv, out);
    }

    /// Deterministic sealing for test vectors; never reuse an IV under one key.
    void seal_with_iv(byte_span in, std::array<std::byte, iv_size> const& iv, bytes& out) const {
        std::size_t base = out.size();
        out.resize(base + in.size() + overhead);
        encrypt(in.data(), iv, out, base, in.size());
    }

    /// Appends the box of what `fill(out)` appends, sealing it in place (CTR encrypts in place).
    template <class Fill>
    void seal_append(bytes& out, Fill&& fill) const {
        std::size_t const base = out.size();
        out.resize(base + iv_size);
        fill(out);
        std::size_t const n = out.size() - base - iv_size;
        out.resize(out.size() + mac_size);
        std::array<std::byte, iv_size> iv;
        do random_nonce(iv); while (iv == std::array<std::byte, iv_size>{});
        encrypt(out.data() + base + iv_size, iv, out, base, n);
    }

    result<void> open(byte_span in, bytes& out) const {
        if (in.size() < overhead) return make_error(errc::corrupt, "ciphertext too short");
        std::size_t const base = out.size();
        out.resize(base + in.size() - overhead);
        auto r = open(in, out.data() + base);
        if (!r) out.resize(base);  // a box that fails leaves `out` as it was
        return r;
    }

    /// Checks the MAC of box `in` and decrypts it into `dst` (room for `in.size() - overhead` bytes).
    result<void> open(byte_span in, std::byte* dst) const {
        if (in.size() < overhead) return make_error(errc::corrupt, "ciphertext too short");
        auto& ctx = detail::thread_ctx::get(key_.encrypt, key_.mac_k);
        auto const* iv = in.data();
        byte_span ct = in.subspan(iv_size, in.size() - overhead);
        unsigned char tag[mac_size];
        mac(ctx, iv, ct, tag);
        if (CRYPTO_memcmp(tag, in.data() + in.size() - mac_size, mac_size) != 0)
            return make_error(errc::corrupt, "ciphertext verification failed (MAC mismatch)");
        int n = 0;
        // CTR decryption is the same keystream XOR as encryption.
        if (!EVP_EncryptInit_ex2(ctx.ctr.get(), nullptr, nullptr, u(iv), nullptr) ||
            !EVP_EncryptUpdate(ctx.ctr.get(), u(dst), &n, u(ct.data()), int(ct.size())))
            throw std::runtime_error("OpenSSL AES-256-CTR failed");
        return {};
    }

private:
    // Writes the box of the n bytes at `plain` into out[base, base + n + overhead): `plain` may be
    // where the ciphertext goes (out.data() + base + iv_size).
    void encrypt(std::byte const* plain, std::array<std::byte, iv_size> const& iv, bytes& out, std::size_t base, std::size_t n) const {
        auto& ctx = detail::thread_ctx::get(key_.encrypt, key_.mac_k);
        auto* p = u(out.data() + base);
        std::memcpy(p, iv.data(), iv_size);
        int len = 0;
        if (!EVP_EncryptInit_ex2(ctx.ctr.get(), nullptr, nullptr, u(iv.data()), nullptr) ||
            !EVP_EncryptUpdate(ctx.ctr.get(), p + iv_size, &len, u(plain), int(n)))
            throw std::runtime_error("OpenSSL AES-256-CTR failed");
        mac(ctx, iv.data(), {out.data() + base + iv_size, n}, p + iv_size + n);
    }

    static unsigned char const* u(std::byte const* p) noexcept { return reinterpret_cast<unsigned char const*>(p); }
    static unsigned char* u(std::byte* p) noexcept { return reinterpret_cast<unsigned char*>(p); }

    void mac(detail::thread_ctx& ctx, std::byte const* iv, byte_span ct, unsigned char* tag_out) const {
        unsigned char polykey[32];
        std::memcpy(polykey, key_.mac_r.data(), 16);
        int n = 0;
        if (!EVP_EncryptUpdate(ctx.ecb.get(), polykey + 16, &n, u(iv), 16))
            throw std::runtime_error("OpenSSL AES-128-ECB failed");
        std::size_t tl = 0;
        if (!EVP_MAC_init(ctx.mac.get(), polykey, sizeof polykey, nullptr) ||
            !EVP_MAC_update(ctx.mac.get(), u(ct.data()), ct.size()) ||
            !EVP_MAC_final(ctx.mac.get(), tag_out, &tl, mac_size))
            throw std::runtime_error("OpenSSL Poly1305 failed");
    }

    key_material key_;
};
static_assert(stash::sealer<restic_sealer>);

}  // namespace stash::crypto
