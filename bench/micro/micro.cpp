// Micro-benchmarks of the hot path, one stage at a time and all together, in bytes per second.
// Run: build/release/bench/stash_bench_micro [--benchmark_format=json]
#include <stash/crypto/sealer.hpp>
#include <stash/policies/chunk/fastcdc.hpp>
#include <stash/policies/chunk/fixed.hpp>
#include <stash/policies/chunk/rabin.hpp>
#include <stash/policies/compress/zstd.hpp>
#include <stash/policies/hash/sha256.hpp>

#include <benchmark/benchmark.h>

#include <random>

using namespace stash;

namespace {

bytes random_bytes(std::size_t n) {
    std::mt19937_64 g(42);
    bytes b(n);
    for (std::size_t i = 0; i + 8 <= n; i += 8) {
        auto v = g();
        std::memcpy(b.data() + i, &v, 8);
    }
    return b;
}

// Compressible input shaped like source code: repeated words with varying numbers.
bytes text_bytes(std::size_t n) {
    std::string s;
    std::mt19937 g(7);
    char const* words[] = {"static ", "int ", "return ", "struct ", "const ", "void ", "if (", "x->", "\n", "  "};
    while (s.size() < n) s += words[g() % 10], s += std::to_string(g() % 1000);
    s.resize(n);
    return to_bytes(s);
}

bytes const& input_random() { static bytes b = random_bytes(64 << 20); return b; }
bytes const& input_text() { static bytes b = text_bytes(16 << 20); return b; }

policies::chunk::rabin make_rabin() { return policies::chunk::rabin(chunk::polynomial{0x3DA3358B4DC173}); }

template <class Chunker>
void chunk_all(benchmark::State& st, Chunker const& c) {
    auto const& in = input_random();
    std::size_t chunks = 0;
    for (auto _ : st) {
        byte_span rest = in;
        while (!rest.empty()) {
            std::size_t n = c.cut(rest);
            rest = rest.subspan(n);
            ++chunks;
        }
        benchmark::DoNotOptimize(chunks);
    }
    st.SetBytesProcessed(std::int64_t(st.iterations() * in.size()));
    st.counters["avg_chunk_KiB"] = double(in.size()) * double(st.iterations()) / double(chunks) / 1024;
}

void BM_chunk_rabin(benchmark::State& st) { chunk_all(st, make_rabin()); }
void BM_chunk_fastcdc(benchmark::State& st) { chunk_all(st, policies::chunk::fastcdc()); }
void BM_chunk_fixed(benchmark::State& st) { chunk_all(st, policies::chunk::fixed()); }

void BM_sha256(benchmark::State& st) {
    auto const& in = input_random();
    std::size_t const block = std::size_t(st.range(0));
    std::size_t off = 0;
    for (auto _ : st) {
        benchmark::DoNotOptimize(policies::hash::sha256::digest(byte_span(in).subspan(off, block)));
        off = (off + block) % (in.size() - block);
    }
    st.SetBytesProcessed(std::int64_t(st.iterations() * block));
}

template <int Level, bool Text>
void BM_zstd(benchmark::State& st) {
    auto const& in = Text ? input_text() : input_random();
    policies::compress::zstd<Level> z;
    bytes out;
    std::size_t const block = 1 << 20, blocks = in.size() / block;
    std::size_t i = 0, stored = 0;
    for (auto _ : st) {
        out.clear();
        z.compress(byte_span(in).subspan((i++ % blocks) * block, block), out);
        stored += out.size();
        benchmark::ClobberMemory();
    }
    st.SetBytesProcessed(std::int64_t(st.iterations() * block));
    st.counters["ratio"] = double(stored) / double(st.iterations() * block);
}

void BM_seal(benchmark::State& st) {
    auto const& in = input_random();
    crypto::restic_sealer s(crypto::key_material::random());
    bytes out;
    std::size_t const block = 1 << 20;
    for (auto _ : st) {
        out.clear();
        s.seal(byte_span(in).first(block), out);
        benchmark::ClobberMemory();
    }
    st.SetBytesProcessed(std::int64_t(st.iterations() * block));
}

// The whole per-chunk path of a backup: chunk → hash → compress → seal.
template <class Chunker, bool Text>
void whole_path(benchmark::State& st, Chunker const& c) {
    auto const& in = Text ? input_text() : input_random();
    crypto::restic_sealer s(crypto::key_material::random());
    policies::compress::zstd<2> z;  // the stock agent's level
    bytes packed, sealed;
    for (auto _ : st) {
        byte_span rest = in;
        while (!rest.empty()) {
            std::size_t n = c.cut(rest);
            auto chunk = rest.first(n);
            benchmark::DoNotOptimize(policies::hash::sha256::digest(chunk));
            packed.clear(), sealed.clear();
            z.compress(chunk, packed);
            s.seal(packed, sealed);
            rest = rest.subspan(n);
        }
        benchmark::ClobberMemory();
    }
    st.SetBytesProcessed(std::int64_t(st.iterations() * in.size()));
}
void BM_path_fastcdc_random(benchmark::State& st) { whole_path<policies::chunk::fastcdc, false>(st, policies::chunk::fastcdc()); }
void BM_path_rabin_random(benchmark::State& st) { whole_path<policies::chunk::rabin, false>(st, make_rabin()); }
void BM_path_fastcdc_text(benchmark::State& st) { whole_path<policies::chunk::fastcdc, true>(st, policies::chunk::fastcdc()); }
void BM_path_rabin_text(benchmark::State& st) { whole_path<policies::chunk::rabin, true>(st, make_rabin()); }

}  // namespace

BENCHMARK(BM_chunk_rabin)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_chunk_fastcdc)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_chunk_fixed)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_sha256)->Arg(16 << 10)->Arg(1 << 20);
BENCHMARK_TEMPLATE(BM_zstd, 2, false)->Name("BM_zstd2/random")->Unit(benchmark::kMicrosecond);
BENCHMARK_TEMPLATE(BM_zstd, 1, true)->Name("BM_zstd1/text")->Unit(benchmark::kMicrosecond);
BENCHMARK_TEMPLATE(BM_zstd, 2, true)->Name("BM_zstd2/text")->Unit(benchmark::kMicrosecond);
BENCHMARK_TEMPLATE(BM_zstd, 3, true)->Name("BM_zstd3/text")->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_seal)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_path_fastcdc_random)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_path_rabin_random)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_path_fastcdc_text)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_path_rabin_text)->Unit(benchmark::kMillisecond);
BENCHMARK_MAIN();
