// Cryptographically secure random bytes (OpenSSL's DRBG), and nonces drawn from it in batches.
#pragma once

#include <stash/core/bytes.hpp>

#include <openssl/rand.h>
#include <pthread.h>

#include <array>
#include <atomic>
#include <cstring>
#include <stdexcept>

namespace stash::crypto {

/// Fills `out` with random bytes from OpenSSL's CSPRNG. Throws only if the DRBG cannot be seeded.
inline void random_bytes(mutable_byte_span out) {
    if (RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), int(out.size())) != 1)
        throw std::runtime_error("OpenSSL RAND_bytes failed");
}

namespace detail {
// Bumped in a forked child, so that no nonce buffered before the fork is handed out in both
// processes.
inline std::atomic<unsigned> fork_generation{0};
inline bool const fork_hook = [] {
    ::pthread_atfork(nullptr, nullptr, [] { fork_generation.fetch_add(1, std::memory_order_relaxed); });
    return true;
}();
}  // namespace detail

/** Fills `out` (at most 64 bytes) with random bytes for a public value used once, such as an IV:
    from the same DRBG as `random_bytes`, but drawn 4 KiB at a time per thread and handed out in
    order, each byte once. One `RAND_bytes` call costs about a microsecond (locks, the fork check,
    the DRBG's own state), as much as sealing a small blob's worth of data; a backup of a source
    tree needs a nonce per blob. Not for keys or salts: buffered bytes stay in memory until used.
    Throws like `random_bytes`; `std::invalid_argument` for more than 64 bytes. */
inline void random_nonce(mutable_byte_span out) {
    struct pool {
        std::array<std::byte, 4096> buf;
        std::size_t used = sizeof buf;
        unsigned generation = 0;
    };
    thread_local pool p;
    static_cast<void>(detail::fork_hook);  // (a use: its registration may not be deferred past this)
    if (out.size() > 64) throw std::invalid_argument("random_nonce: at most 64 bytes");
    unsigned const g = detail::fork_generation.load(std::memory_order_relaxed);
    if (p.used + out.size() > p.buf.size() || p.generation != g) {
        random_bytes(p.buf);
        p.used = 0, p.generation = g;
    }
    std::memcpy(out.data(), p.buf.data() + p.used, out.size());
    p.used += out.size();
}

}  // namespace stash::crypto
