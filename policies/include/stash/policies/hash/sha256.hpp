// SHA-256 through OpenSSL's EVP interface (uses SHA-NI / AVX2 code paths where the CPU has them).
#pragma once

#include <stash/concepts/hasher.hpp>

#include <openssl/evp.h>

#include <memory>
#include <stdexcept>

namespace stash::policies::hash {

/** SHA-256 (FIPS 180-4), the hash that names every object in a restic repository.

    @par Concepts
    `stash::hasher`. One EVP context per thread is reused, so `digest` allocates nothing.
*/
struct sha256 {
    static constexpr char const* name = "sha256";

    static id digest(byte_span s) {
        static EVP_MD* const md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
        thread_local std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx{EVP_MD_CTX_new(), EVP_MD_CTX_free};
        id out;
        unsigned len = 0;
        if (!md || !ctx || !EVP_DigestInit_ex2(ctx.get(), md, nullptr) ||
            !EVP_DigestUpdate(ctx.get(), s.data(), s.size()) ||
            !EVP_DigestFinal_ex(ctx.get(), reinterpret_cast<unsigned char*>(out.bytes.data()), &len))
            throw std::runtime_error("OpenSSL SHA-256 failed");  // only on a broken OpenSSL install
        return out;
    }
};
static_assert(stash::hasher<sha256>);

}  // namespace stash::policies::hash
