// Run-time CPU feature checks, for code that has a vector kernel beside its portable one.
#pragma once

namespace stash {

#if defined(__x86_64__) && defined(__GNUC__)
#define STASH_X86 1
/// Attribute for a function compiled for AVX-512BW with BMI2 (pext/pdep), whatever `-march` says.
#define STASH_TARGET_AVX512BW __attribute__((target("avx512f,avx512bw,bmi,bmi2,popcnt")))
/// Attribute for a function compiled for AVX-512VL (512-bit instructions on 128-bit vectors).
#define STASH_TARGET_AVX512VL __attribute__((target("avx512f,avx512vl")))
/// Attribute for a function compiled for AVX-512BW with GFNI (affine transforms over GF(2) on bytes).
#define STASH_TARGET_AVX512GFNI __attribute__((target("avx512f,avx512bw,gfni,bmi")))
#endif

// Each check runs once per process (a function-local static).
#ifdef STASH_X86
/// True when this CPU runs AVX-512BW and BMI2: the chunkers' kernels, SHA-256's lanes.
inline bool has_avx512bw() noexcept {
    static bool const yes = (__builtin_cpu_init(), __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                                                       __builtin_cpu_supports("bmi2"));
    return yes;
}
/// True when this CPU runs AVX-512VL: scrypt's ROMix.
inline bool has_avx512vl() noexcept {
    static bool const yes = (__builtin_cpu_init(), __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl"));
    return yes;
}
/// True when this CPU runs AVX-512BW with GFNI: restic's Rabin chunker.
inline bool has_avx512gfni() noexcept {
    static bool const yes = (__builtin_cpu_init(), __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                                                       __builtin_cpu_supports("gfni"));
    return yes;
}
/// True when this CPU has the SHA extensions and SSE4.1: the finish of SHA-256's last lanes.
inline bool has_sha_ni() noexcept {
    static bool const yes = (__builtin_cpu_init(), __builtin_cpu_supports("sha") && __builtin_cpu_supports("sse4.1"));
    return yes;
}
#else
inline bool has_avx512bw() noexcept { return false; }
inline bool has_avx512vl() noexcept { return false; }
inline bool has_avx512gfni() noexcept { return false; }
inline bool has_sha_ni() noexcept { return false; }
#endif

}  // namespace stash
