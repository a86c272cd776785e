// Byte buffers and little-endian helpers shared by every layer.
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace stash {

using byte_span = std::span<std::byte const>;
using mutable_byte_span = std::span<std::byte>;
/// An owned, growable byte buffer.
using bytes = std::vector<std::byte>;

inline byte_span as_bytes(std::string_view s) noexcept {
    return {reinterpret_cast<std::byte const*>(s.data()), s.size()};
}
inline std::string_view as_chars(byte_span b) noexcept {
    return {reinterpret_cast<char const*>(b.data()), b.size()};
}
inline bytes to_bytes(std::string_view s) { auto b = as_bytes(s); return {b.begin(), b.end()}; }

inline void put_u32le(std::byte* p, std::uint32_t v) noexcept {
    for (int i = 0; i < 4; ++i) p[i] = std::byte(v >> (8 * i));
}
inline std::uint32_t get_u32le(std::byte const* p) noexcept {
    std::uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v |= std::uint32_t(p[i]) << (8 * i);
    return v;
}

/// Hands the whole pages inside [begin, end) back to the system (MADV_DONTNEED): the range stays
/// mapped, reads as zeros and becomes resident again only when touched. For a buffer kept reserved
/// between uses whose contents there no longer matter. Linux.
inline void release_pages(std::byte* begin, std::byte* end) noexcept {
    auto const page = std::uintptr_t(::sysconf(_SC_PAGESIZE));
    auto const first = (reinterpret_cast<std::uintptr_t>(begin) + page - 1) & ~(page - 1);
    auto const last = reinterpret_cast<std::uintptr_t>(end) & ~(page - 1);
    if (last > first) ::madvise(reinterpret_cast<void*>(first), last - first, MADV_DONTNEED);
}

/// Maps the pages of [begin, end) writable ahead of use (MADV_POPULATE_WRITE, Linux 5.14), 2 MiB at
/// a time from the end back to `begin`, without changing what they hold: for a thread with a spare
/// core to take a buffer's page faults off the thread that will fill it from the front. Stops at
/// the first refusal (an older kernel: the filler then faults the pages in itself).
inline void prefault_pages(std::byte* begin, std::byte* end) noexcept {
    constexpr std::uintptr_t step = 2u << 20;
    auto const page = std::uintptr_t(::sysconf(_SC_PAGESIZE));
    auto const first = (reinterpret_cast<std::uintptr_t>(begin) + page - 1) & ~(page - 1);
    auto to = reinterpret_cast<std::uintptr_t>(end) & ~(page - 1);
    while (to > first) {
        std::uintptr_t const from = to - first > step ? std::max(first, (to - step) & ~(step - 1)) : first;
        if (::madvise(reinterpret_cast<void*>(from), to - from, MADV_POPULATE_WRITE) != 0) return;
        to = from;
    }
}

/// Asks for transparent huge pages (MADV_HUGEPAGE) for the 2 MiB-aligned part of [begin, end):
/// one page fault then maps 2 MiB instead of 4 KiB. For a large buffer that is handed back
/// (release_pages) and filled again: on virtual machines whose page faults exit to the hypervisor,
/// those faults cost more than the data's copy. Linux; a no-op where THP is off ("never").
inline void advise_huge_pages(std::byte* begin, std::byte* end) noexcept {
    constexpr std::uintptr_t huge = 2u << 20;
    auto const first = (reinterpret_cast<std::uintptr_t>(begin) + huge - 1) & ~(huge - 1);
    auto const last = reinterpret_cast<std::uintptr_t>(end) & ~(huge - 1);
    if (last > first) ::madvise(reinterpret_cast<void*>(first), last - first, MADV_HUGEPAGE);
}

/// Deleter for memory from `std::malloc`/`std::aligned_alloc`.
struct free_delete {
    void operator()(void* p) const noexcept { std::free(p); }
};

/** `size` bytes of uninitialized memory, to be freed with `std::free`, for large scratch memory.
    From 2 MiB up it is 2 MiB-aligned and asks for transparent huge pages: on a guest that shadows
    page tables, each 4 KiB page's first touch exits to the hypervisor (16 MiB of them took 64–69 ms
    on the project's machine, 2 MiB pages 1.4 ms). Below, plain `malloc`. Returns nullptr when out
    of memory. (Tried for the index's tables too: 2,300 faults fewer in a backup, 2 MiB more peak.) */
inline void* allocate_huge(std::size_t size) noexcept {
    constexpr std::size_t huge = 2u << 20;
    if (size < huge) return std::malloc(size ? size : 1);
    std::size_t const rounded = (size + huge - 1) / huge * huge;  // (aligned_alloc wants a multiple)
    if (rounded < size) return nullptr;
    void* p = std::aligned_alloc(huge, rounded);
    if (p) advise_huge_pages(static_cast<std::byte*>(p), static_cast<std::byte*>(p) + rounded);
    return p;
}

/// Uninitialized room for `n` objects of trivial type `T` from `allocate_huge`. Throws `std::bad_alloc`.
template <class T>
    requires std::is_trivial_v<T>
std::unique_ptr<T[], free_delete> make_huge_array(std::size_t n) {
    if (n > SIZE_MAX / sizeof(T)) throw std::bad_alloc();
    void* p = allocate_huge(n * sizeof(T));
    if (!p) throw std::bad_alloc();
    return std::unique_ptr<T[], free_delete>(static_cast<T*>(p));
}

/** Reusable scratch memory that is not zero-filled: for output written whole before it is read (a
    decoder's, a read buffer), where growing a `bytes` would first write zeros over it, a pass over
    the data as long as the copy itself (`memset` was 5% of a restore's samples), and on a guest
    whose page faults exit to the hypervisor, a fault for each page of it. `get(n)` returns at
    least n bytes: the block kept from before when it is large enough, else a new one (the old
    contents are gone), from `make_huge_array`. It never shrinks: it holds the largest size asked
    for until destroyed. */
class scratch_bytes {
public:
    std::byte* get(std::size_t n) {
        if (n > size_) {
            p_.reset(), size_ = 0;  // (the old block goes first: the two do not add up)
            p_ = make_huge_array<std::byte>(n);
            size_ = n;
        }
        return p_.get();
    }
    std::byte* data() const noexcept { return p_.get(); }
    /// The size of the block held (the largest asked for), 0 before the first `get`.
    std::size_t size() const noexcept { return size_; }

private:
    std::unique_ptr<std::byte[], free_delete> p_;
    std::size_t size_ = 0;
};

}  // namespace stash
