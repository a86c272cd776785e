// Run-time CPU feature checks for the chunkers' vector kernels.
#pragma once

namespace stash::policies::chunk::detail {

#if defined(__x86_64__) && defined(__GNUC__)
#define STASH_CHUNK_X86 1
/// Attribute for a function compiled for AVX-512BW with BMI2 (pext/pdep), whatever `-march` says.
#define STASH_TARGET_AVX512BW __attribute__((target("avx512f,avx512bw,bmi,bmi2,popcnt")))
#endif

/// True when this CPU runs AVX-512BW and BMI2 (checked once per process).
inline bool has_avx512bw() noexcept {
#ifdef STASH_CHUNK_X86
    static bool const yes = [] {
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("bmi2");
    }();
    return yes;
#else
    return false;
#endif
}

}  // namespace stash::policies::chunk::detail
