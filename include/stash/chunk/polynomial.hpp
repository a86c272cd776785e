// Polynomials over GF(2) of degree < 64, as restic/chunker uses them for Rabin fingerprints.
#pragma once

#include <bit>
#include <cstdint>
#include <optional>

namespace stash::chunk {

/// A polynomial over GF(2): bit i is the coefficient of x^i (restic-format.md §10.2).
struct polynomial {
    std::uint64_t value = 0;

    /// Degree, or -1 for the zero polynomial.
    constexpr int degree() const noexcept { return value ? 63 - std::countl_zero(value) : -1; }

    /// `a mod p` by long division.
    static constexpr std::uint64_t mod(std::uint64_t a, std::uint64_t p) noexcept {
        int const dp = 63 - std::countl_zero(p);
        for (int da = a ? 63 - std::countl_zero(a) : -1; da >= dp; da = a ? 63 - std::countl_zero(a) : -1)
            a ^= p << (da - dp);
        return a;
    }

    /// `a·b mod p`; a and b must already be reduced mod p (deg < deg p ≤ 62).
    static constexpr std::uint64_t mulmod(std::uint64_t a, std::uint64_t b, std::uint64_t p) noexcept {
        std::uint64_t r = 0;
        for (int i = 63; i >= 0; --i) {
            r = mod(r << 1, p);
            if (b >> i & 1) r ^= a;
        }
        return mod(r, p);
    }

    static constexpr std::uint64_t gcd(std::uint64_t a, std::uint64_t b) noexcept {
        while (b) {
            std::uint64_t t = mod(a, b);
            a = b, b = t;
        }
        return a;
    }

    /// Ben-Or's irreducibility test: for i = 1 … deg/2, gcd(P, x^(2^i) − x mod P) must be 1.
    constexpr bool irreducible() const noexcept {
        int const d = degree();
        if (d < 1) return false;
        std::uint64_t q = 2;  // x
        for (int i = 1; i <= d / 2; ++i) {
            q = mulmod(q, q, value);                      // x^(2^i)
            if (gcd(value, mod(q ^ 2, value)) != 1) return false;
        }
        return true;
    }

    /// restic's way to pick a random degree-53 polynomial (§10.6): `next()` yields candidate words.
    template <class NextU64>
    static std::optional<polynomial> derive(NextU64&& next) {
        for (int i = 0; i < 1'000'000; ++i) {
            std::uint64_t f = next() & ((std::uint64_t(1) << 54) - 1);
            f |= std::uint64_t(1) << 53 | 1;
            if (polynomial{f}.irreducible()) return polynomial{f};
        }
        return std::nullopt;
    }
};

}  // namespace stash::chunk
