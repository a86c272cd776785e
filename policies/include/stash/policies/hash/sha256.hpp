// SHA-256 through OpenSSL's EVP interface (uses SHA-NI / AVX2 code paths where the CPU has them).
#pragma once

#include <stash/concepts/hasher.hpp>

#include <openssl/evp.h>

#include <memory>
#include <stdexcept>

namespace stash::policies::hash {

/** SHA-256 (FIPS 180-4), the hash that names every object in a restic repository.

    @par Concepts
    `stash::incremental_hasher`. One EVP context per thread is reused, so `digest` allocates nothing.
*/
struct sha256 {
    static constexpr char const* name = "sha256";

    static id digest(byte_span s) {
        thread_local std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx{EVP_MD_CTX_new(), EVP_MD_CTX_free};
        init(ctx.get());
        update(ctx.get(), s);
        return final(ctx.get());
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
static_assert(stash::incremental_hasher<sha256>);

}  // namespace stash::policies::hash
