// scrypt (RFC 7914), the key derivation of restic key files.
#pragma once

#include <stash/core/bytes.hpp>
#include <stash/core/error.hpp>

#include <openssl/core_names.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include <cstdint>
#include <string_view>

namespace stash::crypto {

/// scrypt cost parameters (restic-format.md §2.3).
struct scrypt_params {
    std::uint64_t n = 32768;  ///< CPU/memory cost, a power of two > 1
    std::uint32_t r = 8;      ///< block size
    std::uint32_t p = 1;      ///< parallelism

    /// The checks restic applies (simple-scrypt and Go's scrypt), so we accept exactly what it accepts.
    bool valid() const noexcept {
        return n > 1 && (n & (n - 1)) == 0 && r >= 1 && p >= 1 && std::uint64_t(r) * p < (1u << 30) &&
               n <= (std::uint64_t(1) << 31) / 128 / r && r <= (std::uint64_t(1) << 31) / 256;
    }
};

/// Derives `out.size()` bytes with scrypt. Errors: `errc::invalid_argument` for parameters restic rejects.
inline result<void> scrypt(std::string_view password, byte_span salt, scrypt_params prm, mutable_byte_span out) {
    if (!prm.valid()) return make_error(errc::invalid_argument, "invalid scrypt parameters");
    EVP_KDF* kdf = EVP_KDF_fetch(nullptr, "SCRYPT", nullptr);
    EVP_KDF_CTX* ctx = kdf ? EVP_KDF_CTX_new(kdf) : nullptr;
    EVP_KDF_free(kdf);
    if (!ctx) return make_error(errc::unsupported, "OpenSSL has no scrypt KDF");
    std::uint64_t maxmem = 128 * prm.r * (prm.n + prm.p + 2) + (std::uint64_t(1) << 20);
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PASSWORD, const_cast<char*>(password.data()), password.size()),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, const_cast<std::byte*>(salt.data()), salt.size()),
        OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_N, &prm.n),
        OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_R, &prm.r),
        OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_P, &prm.p),
        OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_MAXMEM, &maxmem),
        OSSL_PARAM_construct_end()};
    int ok = EVP_KDF_derive(ctx, reinterpret_cast<unsigned char*>(out.data()), out.size(), params);
    EVP_KDF_CTX_free(ctx);
    if (ok != 1) return make_error(errc::invalid_argument, "scrypt derivation failed");
    return {};
}

}  // namespace stash::crypto
