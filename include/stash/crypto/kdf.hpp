// scrypt (RFC 7914), the key derivation of restic key files.
#pragma once

#include <stash/core/bytes.hpp>
#include <stash/core/error.hpp>

#include <stash/crypto/detail/scrypt_romix.hpp>

#include <openssl/evp.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <string_view>
#include <system_error>
#include <thread>
#include <vector>

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

/** Derives `out.size()` bytes with scrypt (RFC 7914 §6): PBKDF2-HMAC-SHA256 (OpenSSL) around our
    ROMix, which keeps every second state (`detail::romix`): restic's default cost (n = 2^15, r = 8)
    then needs 16 MiB instead of 32, for ~25% more work (on the project's Xeon 55 ms in all with
    the SSE2 Salsa20/8, 39 ms with AVX-512VL's rotates: `bench/micro` BM_scrypt). OpenSSL's scrypt
    has no such trade-off, and its 32 MiB made every command's peak memory. With p > 1, up to 4
    ROMix runs at once (one thread and one scratch each). Errors: `errc::invalid_argument` for
    parameters restic rejects, `errc::io` when the scratch memory cannot be had. */
inline result<void> scrypt(std::string_view password, byte_span salt, scrypt_params prm, mutable_byte_span out) {
    if (!prm.valid()) return make_error(errc::invalid_argument, "invalid scrypt parameters");
    std::size_t const block = 128 * std::size_t(prm.r);
    if (block * prm.p > std::size_t(INT32_MAX))
        return make_error(errc::invalid_argument, "scrypt parameters need too much memory (128·r·p over 2 GiB)");
    bytes b(block * prm.p);
    auto pbkdf2 = [&](byte_span s, mutable_byte_span to) {
        return PKCS5_PBKDF2_HMAC(password.data(), int(password.size()), reinterpret_cast<unsigned char const*>(s.data()), int(s.size()), 1,
                                 EVP_sha256(), int(to.size()), reinterpret_cast<unsigned char*>(to.data())) == 1;
    };
    if (!pbkdf2(salt, b)) return make_error(errc::invalid_argument, "scrypt: PBKDF2 failed");
    // 16 MiB at restic's default cost, in huge pages (with the scalar core: 80 ms instead of 150).
    constexpr std::uint64_t stride = 2;  // (detail::romix keeps every second state)
    std::size_t const scratch_words = std::size_t(prm.n / stride) * 32 * prm.r;
    // The p ROMix runs are independent: restic calibrates its keys to ~0.5 s and wrote p = 8 on
    // the project's machine, so they run on up to 4 threads, each with its own scratch.
    unsigned const cores = std::max(1u, std::thread::hardware_concurrency());
    std::atomic<std::uint32_t> next{0}, done{0};
    auto work = [&]() noexcept {
        try {
            auto v = make_huge_array<std::uint32_t>(scratch_words);
            // One run and a spare core (restic's default p = 1): that core maps the scratch's pages
            // from the far end while ROMix's first loop fills it from the front. Fresh pages can
            // cost: their zeroing took 27-40 ms of a 110 ms command on the project's machine, right
            // after another process had freed much memory (2 ms in a warm loop).
            std::jthread prefault;
            if (prm.p == 1 && cores > 1) {
                auto* s = reinterpret_cast<std::byte*>(v.get());
                try {
                    prefault = std::jthread([s, e = s + scratch_words * 4] { prefault_pages(s, e); });
                } catch (std::system_error const&) {  // no thread: ROMix faults them in itself
                }
            }
            for (std::uint32_t i; (i = next++) < prm.p; ++done) detail::romix_best(b.data() + i * block, prm.n, prm.r, stride, v.get());
        } catch (std::bad_alloc const&) {  // the run it held stays undone: reported below
        }
    };
    {
        std::vector<std::jthread> helpers;
        unsigned const threads = std::min({prm.p, cores, 4u});
        try {
            for (unsigned t = 1; t < threads; ++t) helpers.emplace_back(work);
        } catch (std::system_error const&) {  // fewer threads: the runs are shared by those started
        }
        work();
    }
    if (done != prm.p) return make_error(errc::io, "scrypt: not enough memory for the key's cost parameters");
    if (!pbkdf2(b, out)) return make_error(errc::invalid_argument, "scrypt: PBKDF2 failed");
    return {};
}

}  // namespace stash::crypto
