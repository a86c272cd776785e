// Chunkers: restic golden vectors, polynomial arithmetic, concept checks and a conformance suite.
#include <stash/chunk/stream.hpp>
#include <stash/policies/chunk/fastcdc.hpp>
#include <stash/policies/chunk/fixed.hpp>
#include <stash/policies/chunk/rabin.hpp>
#include <stash/policies/chunk/ram.hpp>
#include <stash/policies/chunk/seqcdc.hpp>
#include <stash/policies/hash/sha256.hpp>

#include "result_printer.hpp"

#include <random>
#include <set>
#include <tuple>

using namespace stash;
using policies::chunk::rabin;

namespace {

// SplitMix64, as restic-format.md §10.7(b) defines the input of its vector.
struct splitmix64 {
    std::uint64_t s = 0;
    std::uint64_t operator()() {
        std::uint64_t z = (s += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        return z ^ (z >> 31);
    }
};

bytes splitmix_bytes(std::size_t n, std::uint64_t seed) {
    splitmix64 g{seed};
    bytes b(n);
    for (std::size_t i = 0; i < n; i += 8) {
        std::uint64_t v = g();
        for (int k = 0; k < 8 && i + std::size_t(k) < n; ++k) b[i + std::size_t(k)] = std::byte(v >> (8 * k));
    }
    return b;
}

struct cut_info {
    std::size_t length;
    std::uint64_t fingerprint;
    std::string sha256;
};

// Chunks `data` through chunk::stream, reading `read_size` bytes at a time; with `buffered`, takes
// each chunk after one from `next` through `next_buffered` when it can (counted there), checking
// that the first is still intact.
template <class C>
std::vector<byte_span> chunk_all(C const& c, byte_span data, std::size_t read_size, std::size_t* buffered = nullptr) {
    std::size_t pos = 0;
    auto reader = [&](mutable_byte_span buf) -> result<std::size_t> {
        std::size_t n = std::min({buf.size(), read_size, data.size() - pos});
        std::copy_n(data.begin() + std::ptrdiff_t(pos), n, buf.begin());
        pos += n;
        return n;
    };
    scratch_bytes buffer;
    chunk::stream<C, decltype(reader)> s(c, reader, buffer);
    std::vector<byte_span> out;
    std::size_t off = 0;
    while (auto r = s.next()) {
        if (!*r) break;
        byte_span got[2] = {**r, {}};
        std::size_t k = 1;
        if (buffered)
            if (auto d = s.next_buffered()) got[k++] = *d, ++*buffered;
        for (std::size_t j = 0; j < k; ++j) {
            out.push_back(data.subspan(off, got[j].size()));
            CHECK(std::equal(got[j].begin(), got[j].end(), data.begin() + std::ptrdiff_t(off)));
            off += got[j].size();
        }
    }
    CHECK(off == data.size());
    return out;
}

}  // namespace

TEST_CASE("Rabin chunker reproduces restic's cut points (restic-format.md 10.7b)", "[chunk][rabin]") {
    bytes const data = splitmix_bytes(16 * 1024 * 1024, 0);
    REQUIRE(policies::hash::sha256::digest(data).str() == "487de41bd45439d5263e5cd3281e858489992d88acb1638477d118e4abf3ad1a");
    std::vector<cut_info> const expected = {
        {1285841, 0x001b22f289c00000, "0c9722f1466328d522e24f6602dff1054317d580ebd2bad4cbac3410f5f8384e"},
        {609147, 0x0013255408800000, "cfd4d851001017cf4ce45fcef3935b17258c6d38a7cff31b88781fb713e21443"},
        {536277, 0x00067c55bfe00000, "bdac4a60a7253046742e9e3fee0487afb86269b9dc367883da01d16347526c1c"},
        {939814, 0x0019f08788600000, "ff55a781405bb08c7038e371bce470a199ef2706b9980f73f17eac616124bb37"},
        {759094, 0x0012f7d072400000, "a713feee7ab742228fab2e5aafed09f06c0c063c004de1c43ea11ce9ac28584a"},
        {1146182, 0x00078b3e06200000, "42d1f80774010719cdbd4052e5611e10dd0fb90203611ce3e3bcfe75a69f4463"},
        {2257240, 0x001362cb78100000, "fdc243c093fa9fb18f1c6ec648304722e3f2d2485c8e742c6488f7deef95ceee"},
        {1210894, 0x0011f69779400000, "d9d1df4238181fb2af5953766dc67d13a2f7cef432c01e0a0a494fb6490035dc"},
        {631848, 0x001cdf4fb4300000, "639a98bea14b0b7e70e2e09f6020fb991fe82035b02c612d40b1824bc1659452"},
        {864506, 0x00049d2871000000, "fda7c6682b268a1630d0b96e8712afd593a4bdc735061062fa078363416f63c1"},
        {3818237, 0x00113e9328000000, "8bc1ef424081f76294f7a3e0271220e1ca96082011eea6edda32b1ac154f1731"},
        {2152464, 0x00050889daf00000, "e73c97e2ac0f67741010c7f137fd45962fb6378d2686dc266d9782d85a7936e0"},
        {565672, 0x000bd096123bcc77, "455e213687b7b052ce1402be97a1449c5ea1e0e8c2147ffd4ac5bd0842959316"},
    };
    rabin const r(chunk::polynomial{0x3DA3358B4DC173});

    SECTION("cut lengths, fingerprints and chunk hashes") {
        byte_span rest = data;
        for (auto const& e : expected) {
            auto [n, fp] = r.cut_with_fingerprint(rest);
            CHECK(n == e.length);
            CHECK(fp == e.fingerprint);
            CHECK(policies::hash::sha256::digest(rest.first(n)).str() == e.sha256);
            rest = rest.subspan(n);
        }
        CHECK(rest.empty());
    }
    SECTION("independent of read sizes") {
        for (std::size_t rs : {std::size_t(4096), std::size_t(1000003), std::size_t(16 << 20)}) {
            auto chunks = chunk_all(r, data, rs);
            REQUIRE(chunks.size() == expected.size());
            for (std::size_t i = 0; i < chunks.size(); ++i) CHECK(chunks[i].size() == expected[i].length);
        }
    }
}

namespace {

// restic's chunker as restic-format.md §10 states it: a 64-byte ring window, one byte a step, reset
// to a window holding a single 1 and the digest 1, hashing from min − 64. The fast paths (two
// bytes a step, two lanes) must cut where this does, with the same fingerprint.
struct reference_rabin {
    std::array<std::uint64_t, 256> out{}, mod{};
    unsigned shift;
    std::uint64_t mask;
    std::size_t min, max;
    reference_rabin(chunk::polynomial pol, unsigned bits, std::size_t mn, std::size_t mx)
        : shift(unsigned(pol.degree() - 8)), mask((std::uint64_t(1) << bits) - 1), min(mn), max(mx) {
        using P = chunk::polynomial;
        for (std::uint64_t b = 0; b < 256; ++b) {
            std::uint64_t h = P::mod(b, pol.value);
            for (int i = 0; i < 63; ++i) h = P::mod(h << 8, pol.value);
            out[b] = h;
            mod[b] = P::mod(b << pol.degree(), pol.value) ^ (b << pol.degree());
        }
    }
    std::pair<std::size_t, std::uint64_t> cut(byte_span s) const {
        std::array<std::uint8_t, 64> w{};
        w[0] = 1;
        std::size_t wpos = 1;
        std::uint64_t d = 1;
        std::size_t n = std::min(s.size(), min - 64);
        while (n < s.size()) {
            auto const b = std::to_integer<std::uint8_t>(s[n++]);
            d ^= out[w[wpos]];
            w[wpos] = b, wpos = (wpos + 1) % 64;
            d = ((d << 8) | b) ^ mod[d >> shift];
            if ((n >= min && (d & mask) == 0) || n >= max) break;
        }
        return {n, d};
    }
};

}  // namespace

TEST_CASE("Rabin chunker: the vector kernel and the rolling loop cut where restic's byte-by-byte loop does", "[chunk][rabin]") {
    if (!stash::has_avx512gfni()) WARN("this CPU lacks AVX-512BW/GFNI: cut and cut_portable both roll the hash");
    chunk::polynomial const pol{0x3DA3358B4DC173};
    // Small masks put cuts in each lane, in several at once, and near block edges; masks of up to
    // 8 bits are decided by the vector filter alone, up to 24 with the table, beyond by the loop.
    struct { unsigned bits; std::size_t min, max, size; } const shapes[] = {
        {4, 65, 4096, 1 << 20}, {8, 100, 1 << 14, 1 << 20}, {9, 1000, 1 << 16, 2 << 20},
        {12, 4096, 1 << 20, 4 << 20}, {16, 8192, 1 << 20, 8 << 20}, {17, 65536, 2 << 20, 8 << 20}, {20, 512 * 1024, 8 << 20, 24 << 20},
        {24, 4096, 1 << 26, 1 << 26},
        // Long chunks: past chunk::stream's first 4 MiB window, and (bits 30) always the maximum, where
        // the lanes end exactly at the limit.
        {22, 512 * 1024, 8 << 20, 40 << 20}, {30, 512 * 1024, 8 << 20, 20 << 20}};
    for (auto const& sh : shapes) {
        rabin const fast(pol, sh.bits, sh.min, sh.max);
        reference_rabin const ref(pol, sh.bits, sh.min, sh.max);
        bytes const data = splitmix_bytes(sh.size, sh.bits);
        byte_span rest = data;
        std::size_t cuts = 0;
        while (!rest.empty()) {
            auto const want = ref.cut(rest);
            auto const got = fast.cut_with_fingerprint(rest);
            REQUIRE(got.first == want.first);
            REQUIRE(fast.cut_portable(rest) == want.first);
            if (got.first >= sh.min) REQUIRE(got.second == want.second);  // (shorter tails: see fingerprint_of)
            REQUIRE(got.first <= std::min(rest.size(), sh.max));
            rest = rest.subspan(got.first), ++cuts;
        }
        CHECK(cuts > 2);
        // Spans ending at every offset past the minimum: the vector kernel's last, partial block
        // must not cut past the end, nor miss a cut just before it.
        if (sh.bits <= 12)
            for (std::size_t n = sh.min + 1; n <= sh.min + 300; ++n) REQUIRE(fast.cut(byte_span(data).first(n)) == ref.cut(byte_span(data).first(n)).first);
        // And through chunk::stream, whose window starts short of the maximum and grows.
        auto const streamed = chunk_all(fast, data, 1000003);
        byte_span again = data;
        for (auto const& c : streamed) {
            REQUIRE(c.size() == ref.cut(again).first);
            again = again.subspan(c.size());
        }
    }
}

TEST_CASE("Rabin chunker on zeros (restic-format.md 10.7)", "[chunk][rabin]") {
    rabin const r(chunk::polynomial{0x3DA3358B4DC173});
    bytes zeros(4 * rabin::default_min + 100);
    byte_span rest = zeros;
    for (int i = 0; i < 4; ++i) {
        auto [n, fp] = r.cut_with_fingerprint(rest);
        CHECK(n == rabin::default_min);
        CHECK(fp == 0);
        CHECK(policies::hash::sha256::digest(rest.first(n)).str() == "07854d2fef297a06ba81685e660c332de36d5d18d546927d30daad6d7fda1541");
        rest = rest.subspan(n);
    }
    auto [n, fp] = r.cut_with_fingerprint(rest);
    CHECK(n == 100);
    CHECK(fp == 1);
}

TEST_CASE("polynomials: irreducibility and restic's derivation (restic-format.md 10.6)", "[chunk][polynomial]") {
    CHECK(chunk::polynomial{0x3DA3358B4DC173}.irreducible());
    CHECK(chunk::polynomial{0x3cc191fc24e2fd}.irreducible());
    CHECK(chunk::polynomial{0x38a61d6c92fa2f}.irreducible());
    CHECK_FALSE(chunk::polynomial{0x3DA3358B4DC172}.irreducible());  // divisible by x
    CHECK_FALSE(chunk::polynomial{0b101}.irreducible());             // x^2+1 = (x+1)^2
    CHECK(chunk::polynomial{0b111}.irreducible());                   // x^2+x+1
    splitmix64 g{1};
    auto p = chunk::polynomial::derive(g);
    REQUIRE(p);
    CHECK(p->value == 0x3e2e2256feff0dull);
}

// --- concept checks, positive and near misses -----------------------------------------------------

namespace {
struct no_max {
    std::size_t cut(byte_span) const;
    std::size_t min_size() const;
};
struct wrong_cut {
    int cut(byte_span) const;
    std::size_t min_size() const;
    std::size_t max_size() const;
};
struct throwing_move {
    throwing_move(throwing_move&&) noexcept(false);
    std::size_t cut(byte_span) const;
    std::size_t min_size() const;
    std::size_t max_size() const;
};
struct mutable_cut {
    std::size_t cut(byte_span);  // not const: chunkers must be usable from several threads
    std::size_t min_size() const;
    std::size_t max_size() const;
};
}  // namespace

TEST_CASE("chunker concept accepts the stock policies and rejects near misses", "[chunk][concepts]") {
    STATIC_REQUIRE(chunker<rabin>);
    STATIC_REQUIRE(chunker<policies::chunk::fastcdc>);
    STATIC_REQUIRE(chunker<policies::chunk::fixed>);
    STATIC_REQUIRE(chunker<policies::chunk::seqcdc>);
    STATIC_REQUIRE(chunker<policies::chunk::ram>);
    STATIC_REQUIRE(resumable_chunker<rabin>);
    STATIC_REQUIRE(resumable_chunker<policies::chunk::fastcdc>);
    STATIC_REQUIRE_FALSE(resumable_chunker<policies::chunk::seqcdc>);
    STATIC_REQUIRE_FALSE(chunker<no_max>);
    STATIC_REQUIRE_FALSE(chunker<wrong_cut>);
    STATIC_REQUIRE_FALSE(chunker<throwing_move>);
    STATIC_REQUIRE_FALSE(chunker<mutable_cut>);
}

// --- conformance: the semantic rules of stash::chunker, for every stock policy ------------------

namespace {
template <class C>
C make_chunker();
template <>
rabin make_chunker<rabin>() { return rabin(chunk::polynomial{0x3DA3358B4DC173}); }
template <>
policies::chunk::fastcdc make_chunker<policies::chunk::fastcdc>() { return policies::chunk::fastcdc(); }
template <>
policies::chunk::fixed make_chunker<policies::chunk::fixed>() { return policies::chunk::fixed(1 << 20); }
template <>
policies::chunk::seqcdc make_chunker<policies::chunk::seqcdc>() { return policies::chunk::seqcdc(); }
template <>
policies::chunk::ram make_chunker<policies::chunk::ram>() { return policies::chunk::ram(); }
// The same kinds at 1/8 of the sizes: chunk::stream's window then holds several chunks.
template <class C>
C make_small_chunker();
template <>
rabin make_small_chunker<rabin>() { return rabin(chunk::polynomial{0x3DA3358B4DC173}, 17, 64 * 1024, 1 << 20); }
template <>
policies::chunk::fastcdc make_small_chunker<policies::chunk::fastcdc>() { return policies::chunk::fastcdc(64 * 1024, 128 * 1024, 1 << 20); }
template <>
policies::chunk::fixed make_small_chunker<policies::chunk::fixed>() { return policies::chunk::fixed(128 * 1024); }
template <>
policies::chunk::seqcdc make_small_chunker<policies::chunk::seqcdc>() { return policies::chunk::seqcdc({.min = 64 * 1024, .max = 1 << 20}); }
template <>
policies::chunk::ram make_small_chunker<policies::chunk::ram>() { return policies::chunk::ram(128 * 1024, 1 << 20); }
using stock_chunkers = std::tuple<rabin, policies::chunk::fastcdc, policies::chunk::fixed, policies::chunk::seqcdc, policies::chunk::ram>;
}  // namespace

TEMPLATE_LIST_TEST_CASE("chunker conformance", "[chunk][conformance]", stock_chunkers) {
    TestType const c = make_chunker<TestType>();
    bytes const data = splitmix_bytes(24 * 1024 * 1024 + 12345, 7);

    SECTION("chunks cover the input, respect min/max, and do not depend on buffering") {
        auto a = chunk_all(c, data, 65536);
        auto b = chunk_all(c, data, 3 * 1024 * 1024 + 7);
        REQUIRE(a.size() == b.size());
        for (std::size_t i = 0; i < a.size(); ++i) {
            CHECK(a[i].size() == b[i].size());
            CHECK(a[i].size() <= c.max_size());
            if (i + 1 < a.size()) CHECK(a[i].size() >= c.min_size());
        }
    }
    SECTION("chunk::stream's next_buffered yields the chunks next would, and leaves the one before intact") {
        auto const small = make_small_chunker<TestType>();
        for (bool at_scale : {true, false}) {
            auto const& k = at_scale ? c : small;
            auto const plain = chunk_all(k, data, 65536);
            for (std::size_t read : {std::size_t(65536), std::size_t(3 * 1024 * 1024 + 7)}) {
                std::size_t buffered = 0;
                auto const paired = chunk_all(k, data, read, &buffered);
                REQUIRE(paired.size() == plain.size());
                for (std::size_t i = 0; i < plain.size(); ++i) CHECK(paired[i].size() == plain[i].size());
                // The small chunker's window holds several chunks (fixed's is its one chunk size).
                if (!at_scale && !std::is_same_v<TestType, policies::chunk::fixed>) CHECK(buffered > 0);
            }
        }
    }
    SECTION("chunk::stream, whose window may be shorter than the maximum, cuts where the chunker does on the whole rest") {
        auto const streamed = chunk_all(c, data, 1 << 20);
        byte_span rest = data;
        for (auto const& s : streamed) {
            REQUIRE(s.size() == c.cut(rest));
            rest = rest.subspan(s.size());
        }
        CHECK(rest.empty());
    }
    SECTION("a resumable chunker picks up a look where the last one ended and cuts where a whole look does") {
        if constexpr (resumable_chunker<TestType>) {
            std::size_t const lo = c.min_size(), hi = c.max_size();
            std::size_t resumed = 0;
            for (std::size_t start = 0; start + hi <= data.size(); start += 997 * 1024 + 13) {
                byte_span const s = byte_span(data).subspan(start);
                std::size_t const whole = c.cut(s);
                std::vector<std::size_t> at = {0, 1, lo - 1, lo, lo + 1, lo + 2, lo + 63, lo + 64, lo + 65, lo + 66, lo + 67,
                                               1 << 20, (1 << 20) + 1, whole - 2, whole - 1, whole, hi - 1, hi};
                for (std::size_t k = lo; k < whole; k += 65536 + 7) at.push_back(k);
                for (std::size_t k : at) {
                    if (k > s.size() || c.cut(s.first(k)) != k) continue;  // the precondition
                    INFO("start " << start << ", scanned " << k);
                    CHECK(c.cut(s, k) == whole);
                    // and on a span that ends before the cut, as chunk::stream shows one
                    if (k + 4096 < whole) CHECK(c.cut(s.first(k + 4096), k) == k + 4096);
                    ++resumed;
                }
            }
            CHECK(resumed > 100);
        }
    }
    SECTION("an input shorter than the minimum is one chunk; empty input none") {
        CHECK(c.cut(byte_span(data).first(1000)) == 1000);
        CHECK(chunk_all(c, {}, 4096).empty());
    }
    SECTION("content-defined chunkers resynchronize after an insertion") {
        if constexpr (!std::is_same_v<TestType, policies::chunk::fixed>) {
            bytes shifted = data;
            shifted.insert(shifted.begin() + 100, std::byte{42});
            auto a = chunk_all(c, data, 1 << 20);
            auto b = chunk_all(c, shifted, 1 << 20);
            std::set<std::string> ids;
            for (auto s : a) ids.insert(policies::hash::sha256::digest(s).str());
            std::size_t shared = 0;
            for (auto s : b) shared += ids.count(policies::hash::sha256::digest(s).str());
            CHECK(shared + 2 >= a.size());
        }
    }
}

// --- FastCDC's two-bytes-a-step loop against the paper's one byte at a time -------------------------

TEST_CASE("fastcdc cuts where the paper's byte loop with the documented gear table does", "[chunk][fastcdc]") {
    // The table as the header documents it: SplitMix64 from seed 0x5354415348.
    std::array<std::uint64_t, 256> gear{};
    std::uint64_t seed = 0x5354415348;
    for (auto& v : gear) {
        std::uint64_t z = (seed += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        v = z ^ (z >> 31);
    }
    auto reference = [&](byte_span s, std::size_t min, std::size_t avg, std::size_t max) -> std::size_t {
        if (s.size() <= min) return s.size();
        unsigned const bits = unsigned(std::bit_width(avg) - 1);
        std::uint64_t const small = ~0ull << (64 - (bits + 2)), large = ~0ull << (64 - (bits - 2));
        std::size_t const end = std::min(s.size(), max), normal = std::min(end, avg);
        std::uint64_t h = 0;
        for (std::size_t i = min; i < end; ++i) {
            h = (h << 1) + gear[std::uint8_t(s[i])];
            if (!(h & (i < normal ? small : large))) return i + 1;
        }
        return end;
    };
    std::string text;
    std::mt19937 g(9);
    while (text.size() < 3 * 1024 * 1024) text += "static int f" + std::to_string(g() % 4093) + "(void);\n";
    // Odd and even minimums, so both phases start on either parity and end with a single byte.
    for (auto const& [min, avg, max] : {std::tuple{2048u, 8192u, 65536u}, std::tuple{2047u, 8192u, 65536u}, std::tuple{4097u, 8192u, 16385u}}) {
        policies::chunk::fastcdc const c(min, avg, max);
        for (bytes const& data : {splitmix_bytes(3 * 1024 * 1024 + 5, 21), to_bytes(text)}) {
            std::size_t cuts = 0;
            for (byte_span rest = data; !rest.empty(); ++cuts) {
                std::size_t const n = c.cut(rest);
                REQUIRE(n == reference(rest, min, avg, max));
                rest = rest.subspan(n);
            }
            CHECK(cuts > 100);
        }
    }
}

// --- the vector kernels of the hashless chunkers against their portable loops ----------------------

namespace {
// Inputs that exercise every branch: random bytes, text, long flat runs (equal pairs), slow ramps
// (long rises), and a falling saw (skips).
std::vector<bytes> kernel_inputs() {
    std::vector<bytes> v;
    v.push_back(splitmix_bytes(3 * 1024 * 1024 + 77, 11));
    std::string text;
    std::mt19937 g(3);
    while (text.size() < 2 * 1024 * 1024) text += "int x" + std::to_string(g() % 997) + " = f(y);\n";
    v.push_back(to_bytes(text));
    bytes flat = splitmix_bytes(1024 * 1024, 5);
    for (std::size_t i = 0; i < flat.size(); ++i)
        if ((i / 97) % 3 != 0) flat[i] = std::byte{7};
    v.push_back(std::move(flat));
    bytes ramp(1024 * 1024);
    for (std::size_t i = 0; i < ramp.size(); ++i) ramp[i] = std::byte((i / 3) % 251);
    v.push_back(std::move(ramp));
    bytes saw(1024 * 1024);
    for (std::size_t i = 0; i < saw.size(); ++i) saw[i] = std::byte(255 - i % 200);
    v.push_back(std::move(saw));
    return v;
}

template <class C>
void same_cuts(C const& c, bytes const& data) {
    byte_span rest = data;
    while (!rest.empty()) {
        std::size_t const n = c.cut(rest);
        REQUIRE(n == c.cut_portable(rest));
        REQUIRE(n > 0);
        rest = rest.subspan(n);
    }
}
}  // namespace

TEST_CASE("SeqCDC and RAM: the vector kernels cut where the portable loops do", "[chunk][simd]") {
    if (!stash::has_avx512bw()) WARN("this CPU lacks AVX-512BW/BMI2: both calls run the portable loop");
    auto const inputs = kernel_inputs();
    for (unsigned seq : {1u, 2u, 3u, 5u, 8u, 16u})
        for (unsigned trigger : {1u, 7u, 50u, 1000u})
            for (std::size_t skip : {std::size_t(0), std::size_t(1), std::size_t(63), std::size_t(256), std::size_t(4096)}) {
                policies::chunk::seqcdc c({.min = 1 + seq * 37, .max = 65536 + seq, .sequence = seq, .skip_trigger = trigger, .skip_size = skip});
                for (auto const& in : inputs) same_cuts(c, in);
            }
    for (std::size_t window : {std::size_t(1), std::size_t(63), std::size_t(64), std::size_t(300), std::size_t(4096), std::size_t(100000)})
        for (std::size_t max : {window + 1, window + 65, 8 * window + 1000}) {
            policies::chunk::ram c(window, max);
            for (auto const& in : inputs) same_cuts(c, in);
        }
}

TEST_CASE("SeqCDC cuts after a run of rises, RAM at the first byte reaching the window's maximum", "[chunk][simd]") {
    bytes b(64, std::byte{100});
    // Falls up to byte 21, then bytes 22..26 each rise: with sequence 5 the chunk ends with byte 26.
    for (std::size_t i = 0; i <= 20; ++i) b[i] = std::byte(200 - i);
    for (std::size_t i = 21; i <= 26; ++i) b[i] = std::byte(120 + i);
    policies::chunk::seqcdc s({.min = 8, .max = 64, .sequence = 5, .skip_trigger = 1000, .skip_size = 0});
    CHECK(s.cut(b) == 27);
    CHECK(s.cut_portable(b) == 27);
    bytes r(200, std::byte{1});
    r[5] = std::byte{90};    // the window's maximum
    r[150] = std::byte{90};  // the first byte after the window to reach it
    policies::chunk::ram m(100, 200);
    CHECK(m.cut(r) == 151);
    CHECK(m.cut_portable(r) == 151);
}
