// Cryptographically secure random bytes (OpenSSL's DRBG).
#pragma once

#include <stash/core/bytes.hpp>

#include <openssl/rand.h>

#include <stdexcept>

namespace stash::crypto {

/// Fills `out` with random bytes from OpenSSL's CSPRNG. Throws only if the DRBG cannot be seeded.
inline void random_bytes(mutable_byte_span out) {
    if (RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), int(out.size())) != 1)
        throw std::runtime_error("OpenSSL RAND_bytes failed");
}

}  // namespace stash::crypto
