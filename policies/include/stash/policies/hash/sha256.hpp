// SHA-256 through OpenSSL's EVP interface (uses SHA-NI / AVX2 code paths where the CPU has them).
#pragma once

#include <stash/concepts/hasher.hpp>
#include <stash/policies/hash/detail/sha256_lanes.hpp>

#include <openssl/evp.h>

#include <memory>
#include <span>
#include <stdexcept>

namespace stash::policies::hash {

/** SHA-256 (FIPS 180-4), the hash that names every object in a restic repository.

    @par Concepts
    `stash::incremental_hasher`, `stash::batch_hasher`. One EVP context per thread is reused, so
    `digest` allocates nothing. `digest_many` hashes sixteen messages at a time in AVX-512 lanes
    where the CPU has them (`detail::sha256_many`; ~2.2x one SHA-NI stream on a Sapphire Rapids core
    for blobs of 16 KiB), else one after another.
*/
struct sha256 {
    static constexpr char const* name = "sha256";

    static id digest(byte_span s) {
        thread_local std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx{EVP_MD_CTX_new(), EVP_MD_CTX_free};
        init(ctx.get());
        update(ctx.get(), s);
        return final(ctx.get());
    }

    /// `out[i] = digest(in[i])` for every i (`stash::batch_hasher`).
    static void digest_many(std::span<byte_span const> in, std::span<id> out) {
        // Without SHA-NI to finish the last lanes, a few messages are faster one by one.
        if (detail::has_sha256_lanes() && (has_sha_ni() || in.size() >= 8)) return detail::sha256_many(in, out);
        for (std::size_t i = 0; i < in.size(); ++i) out[i] = digest(in[i]);
    }

    /// A digest over pieces, with its own EVP context (`stash::incremental_hasher`).
    class state {
    public:
        state() : ctx_(EVP_MD_CTX_new(), EVP_MD_CTX_free) { init(ctx_.get()); }
        void update(byte_span s) { sha256::update(ctx_.get(), s); }
        id finish() { return final(ctx_.get()); }

    private:
        std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx_;
    };

private:
    // OpenSSL fails only when its install is broken.
    [[noreturn]] static void broken() { throw std::runtime_error("OpenSSL SHA-256 failed"); }
    static void init(EVP_MD_CTX* c) {
        static EVP_MD* const md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
        if (!md || !c || !EVP_DigestInit_ex2(c, md, nullptr)) broken();
    }
    static void update(EVP_MD_CTX* c, byte_span s) {
        if (!EVP_DigestUpdate(c, s.data(), s.size())) broken();
    }
    static id final(EVP_MD_CTX* c) {
        id out;
        unsigned len = 0;
        if (!EVP_DigestFinal_ex(c, reinterpret_cast<unsigned char*>(out.bytes.data()), &len)) broken();
        return out;
    }
};
static_assert(stash::incremental_hasher<sha256> && stash::batch_hasher<sha256>);

}  // namespace stash::policies::hash
