// Micro-benchmarks of the hot path, one stage at a time and all together, in bytes per second.
// Run: build/release/bench/stash_bench_micro [--benchmark_format=json]
#include <stash/chunk/stream.hpp>
#include <stash/crypto/kdf.hpp>
#include <stash/crypto/sealer.hpp>
#include <stash/policies/chunk/fastcdc.hpp>
#include <stash/policies/chunk/fixed.hpp>
#include <stash/policies/chunk/rabin.hpp>
#include <stash/policies/chunk/ram.hpp>
#include <stash/policies/chunk/seqcdc.hpp>
#include <stash/policies/compress/zstd.hpp>
#include <stash/policies/hash/sha256.hpp>

#include <benchmark/benchmark.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <unordered_set>

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

// Dedup ratio of a chunker on an edit: the random input, then a copy with 32 insertions of 1–64
// bytes; (bytes of both) / (bytes of their distinct chunks). Higher is better; 2.0 would be perfect.
template <class Chunker>
double dedup_ratio(Chunker const& c) {
    auto const& a = input_random();
    bytes b = a;
    std::mt19937_64 g(9);
    for (int k = 0; k < 32; ++k) {  // one draw a statement: the edit must not depend on evaluation order
        auto const at = std::ptrdiff_t(g() % b.size());
        auto const n = std::size_t(1 + g() % 64);
        b.insert(b.begin() + at, n, std::byte(g()));
    }
    std::unordered_set<std::string> seen;
    std::size_t unique = 0;
    for (bytes const* in : std::array<bytes const*, 2>{&a, &b}) {
        for (byte_span rest = *in; !rest.empty();) {
            auto chunk = rest.first(c.cut(rest));
            if (seen.insert(policies::hash::sha256::digest(chunk).str()).second) unique += chunk.size();
            rest = rest.subspan(chunk.size());
        }
    }
    return double(a.size() + b.size()) / double(unique);
}

template <class Chunker, bool Text = false>
void chunk_all(benchmark::State& st, Chunker const& c, std::string const& name) {
    auto const& in = Text ? input_text() : input_random();
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
    if (!Text) {
        static std::map<std::string, double> ratios;  // by benchmark: computed once, outside the timing
        auto [it, fresh] = ratios.try_emplace(name, 0.0);
        if (fresh) it->second = dedup_ratio(c);
        st.counters["dedup_ratio"] = it->second;
    }
}

void BM_chunk_rabin(benchmark::State& st) { chunk_all(st, make_rabin(), "rabin"); }
void BM_chunk_fastcdc(benchmark::State& st) { chunk_all(st, policies::chunk::fastcdc(), "fastcdc"); }
void BM_chunk_fixed(benchmark::State& st) { chunk_all(st, policies::chunk::fixed(), "fixed"); }
void BM_chunk_seqcdc(benchmark::State& st) { chunk_all(st, policies::chunk::seqcdc(), "seqcdc"); }
void BM_chunk_ram(benchmark::State& st) { chunk_all(st, policies::chunk::ram(), "ram"); }
// Small chunks (8 KiB scale, the papers' setting), where the scan itself dominates: the kernels'
// speed with and without vector instructions.
policies::chunk::seqcdc seqcdc_8k() { return policies::chunk::seqcdc({.min = 4096, .max = 65536, .sequence = 5, .skip_trigger = 50, .skip_size = 256}); }
template <class Chunker>
struct portable_kernel {
    Chunker c;
    std::size_t cut(byte_span s) const noexcept { return c.cut_portable(s); }
};
void BM_chunk_seqcdc_8k(benchmark::State& st) { chunk_all(st, seqcdc_8k(), "seqcdc_8k"); }
void BM_chunk_seqcdc_8k_portable(benchmark::State& st) { chunk_all(st, portable_kernel<policies::chunk::seqcdc>{seqcdc_8k()}, "seqcdc_8k_portable"); }
void BM_chunk_ram_8k(benchmark::State& st) { chunk_all(st, policies::chunk::ram(8192, 65536), "ram_8k"); }
void BM_chunk_ram_8k_portable(benchmark::State& st) { chunk_all(st, portable_kernel<policies::chunk::ram>{policies::chunk::ram(8192, 65536)}, "ram_8k_portable"); }
void BM_chunk_fastcdc_8k(benchmark::State& st) { chunk_all(st, policies::chunk::fastcdc(4096, 8192, 65536), "fastcdc_8k"); }
void BM_chunk_rabin_portable(benchmark::State& st) { chunk_all(st, portable_kernel<policies::chunk::rabin>{make_rabin()}, "rabin_portable"); }
void BM_chunk_rabin_text(benchmark::State& st) { chunk_all<policies::chunk::rabin, true>(st, make_rabin(), "rabin_text"); }
void BM_chunk_fastcdc_text(benchmark::State& st) { chunk_all<policies::chunk::fastcdc, true>(st, policies::chunk::fastcdc(), "fastcdc_text"); }
void BM_chunk_seqcdc_text(benchmark::State& st) { chunk_all<policies::chunk::seqcdc, true>(st, policies::chunk::seqcdc(), "seqcdc_text"); }
void BM_chunk_ram_text(benchmark::State& st) { chunk_all<policies::chunk::ram, true>(st, policies::chunk::ram(), "ram_text"); }

// chunk::stream over the random input read 1 MiB at a time, as a backup reads a large file, each
// chunk followed by next_buffered as the backup asks for it: Rabin resuming its looks (windows of
// 2 MiB growing 1 MiB a look), and with the resumption hidden (`restarting`: windows of 4 MiB
// doubling, each look from the chunk's start).
template <class Chunker>
struct restarting {
    Chunker c;
    std::size_t min_size() const noexcept { return c.min_size(); }
    std::size_t max_size() const noexcept { return c.max_size(); }
    std::size_t cut(byte_span s) const noexcept { return c.cut(s); }
};
template <class Chunker>
void stream_all(benchmark::State& st, Chunker const& c) {
    auto const& in = input_random();
    scratch_bytes buffer;
    std::size_t chunks = 0;
    for (auto _ : st) {
        std::size_t pos = 0;
        auto read = [&](mutable_byte_span b) -> result<std::size_t> {
            std::size_t const n = std::min({b.size(), std::size_t(1) << 20, in.size() - pos});
            std::memcpy(b.data(), in.data() + pos, n);
            pos += n;
            return n;
        };
        chunk::stream<Chunker, decltype(read)> s(c, read, buffer);
        while (auto r = s.next()) {
            if (!*r) break;
            chunks += s.next_buffered() ? 2 : 1;
        }
        benchmark::DoNotOptimize(chunks);
    }
    st.SetBytesProcessed(std::int64_t(st.iterations() * in.size()));
    st.counters["avg_chunk_KiB"] = double(in.size()) * double(st.iterations()) / double(chunks) / 1024;
}
void BM_stream_rabin(benchmark::State& st) { stream_all(st, make_rabin()); }
void BM_stream_rabin_restarting(benchmark::State& st) { stream_all(st, restarting<policies::chunk::rabin>{make_rabin()}); }

// One block hashed again and again, in cache, as `openssl speed -evp sha256 -bytes N` does: the
// figure to hold against OpenSSL's own.
void BM_sha256(benchmark::State& st) {
    auto const block = byte_span(input_random()).first(std::size_t(st.range(0)));
    for (auto _ : st) benchmark::DoNotOptimize(policies::hash::sha256::digest(block));
    st.SetBytesProcessed(std::int64_t(st.iterations() * block.size()));
}
// Block after block through the 64 MiB input, as a backup hashes what it read: memory's share shows.
void BM_sha256_stream(benchmark::State& st) {
    auto const& in = input_random();
    std::size_t const block = std::size_t(st.range(0));
    std::size_t off = 0;
    for (auto _ : st) {
        benchmark::DoNotOptimize(policies::hash::sha256::digest(byte_span(in).subspan(off, block)));
        off = (off + block) % (in.size() - block);
    }
    st.SetBytesProcessed(std::int64_t(st.iterations() * block));
}

// Many messages at once (digest_many: sixteen AVX-512 lanes, the last few on SHA-NI), as a backup
// hashes a batch of small files. Arg: the message size; 0 = sizes drawn like a source tree's files
// (1 B – 64 KiB, log-uniform). 64 messages in cache, then the same walking the 64 MiB input.
void sha256_many(benchmark::State& st, bool stream) {
    auto const& in = input_random();
    std::uint32_t x = 7;
    std::vector<std::size_t> sizes(64);
    for (auto& n : sizes) n = st.range(0) ? std::size_t(st.range(0)) : std::size_t(1) << ((x = x * 1103515245u + 12345u) >> 8) % 17;
    std::size_t total = 0;
    for (auto n : sizes) total += n;
    std::vector<byte_span> msgs(sizes.size());
    std::vector<id> out(sizes.size());
    std::size_t off = 0;
    for (auto _ : st) {
        std::size_t o = off;
        for (std::size_t i = 0; i < sizes.size(); o += sizes[i], ++i) msgs[i] = byte_span(in).subspan(o, sizes[i]);
        digest_all<policies::hash::sha256>(msgs, out);
        benchmark::DoNotOptimize(out.data());
        if (stream) off = (off + total) % (in.size() - total);
    }
    st.SetBytesProcessed(std::int64_t(st.iterations() * total));
}
void BM_sha256_many(benchmark::State& st) { sha256_many(st, false); }
void BM_sha256_many_stream(benchmark::State& st) { sha256_many(st, true); }

// Opening a repository's key: scrypt at restic's default cost (n = 2^15, r = 8, p = 1).
void BM_scrypt(benchmark::State& st) {
    std::array<std::byte, 64> out;
    bytes const salt = random_bytes(64);
    for (auto _ : st) benchmark::DoNotOptimize(crypto::scrypt("password", salt, {32768, 8, 1}, out));
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
    // 1 MiB: the cipher's speed; 4 KiB: a small file's blob, where the per-box work shows.
    auto const block = std::size_t(st.range(0));
    for (auto _ : st) {
        out.clear();
        s.seal(byte_span(in).first(block), out);
        benchmark::ClobberMemory();
    }
    st.SetBytesProcessed(std::int64_t(st.iterations() * block));
}

// The whole per-chunk path of a backup: chunk → hash → compress → seal, with the stock agent's
// compressor. With `Timed`, each stage's time is added up (a clock read between stages).
struct path_stages {
    crypto::restic_sealer sealer{crypto::key_material::random()};
    policies::compress::zstd<2, 6> zstd;
    bytes packed, sealed;
    std::chrono::steady_clock::duration t_chunk{}, t_hash{}, t_compress{}, t_seal{};
    std::size_t frames = 0, stored = 0;  // bytes: zstd's frames, sealed blobs

    // Cuts `in` into chunks and takes each through the path (an empty file has none, as in a backup).
    template <bool Timed, class Chunker>
    void run(Chunker const& c, byte_span in) {
        using clock = std::chrono::steady_clock;
        auto now = [] { return Timed ? clock::now() : clock::time_point(); };
        while (!in.empty()) {
            auto const t0 = now();
            auto const chunk = in.first(c.cut(in));
            auto const t1 = now();
            benchmark::DoNotOptimize(policies::hash::sha256::digest(chunk));
            auto const t2 = now();
            packed.clear(), sealed.clear();
            zstd.compress(chunk, packed);
            auto const t3 = now();
            sealer.seal(packed, sealed);
            auto const t4 = now();
            t_chunk += t1 - t0, t_hash += t2 - t1, t_compress += t3 - t2, t_seal += t4 - t3;
            frames += packed.size(), stored += sealed.size();
            in = in.subspan(chunk.size());
        }
    }
};

template <class Chunker, bool Text>
void whole_path(benchmark::State& st, Chunker const& c) {
    auto const& in = Text ? input_text() : input_random();
    path_stages p;
    for (auto _ : st) {
        p.run<false>(c, in);
        benchmark::ClobberMemory();
    }
    st.SetBytesProcessed(std::int64_t(st.iterations() * in.size()));
}
void BM_path_fastcdc_random(benchmark::State& st) { whole_path<policies::chunk::fastcdc, false>(st, policies::chunk::fastcdc()); }
void BM_path_rabin_random(benchmark::State& st) { whole_path<policies::chunk::rabin, false>(st, make_rabin()); }
void BM_path_fastcdc_text(benchmark::State& st) { whole_path<policies::chunk::fastcdc, true>(st, policies::chunk::fastcdc()); }
void BM_path_rabin_text(benchmark::State& st) { whole_path<policies::chunk::rabin, true>(st, make_rabin()); }
// The `linux` data set (../shared/bench/datasets.sh) read into memory once, its files back to back:
// the "linux tree". Empty when the data set is not there ($STASH_BENCH_DATASETS, default
// /tmp/stash-datasets, as bench/compare-restic.sh).
struct file_set {
    bytes data;
    std::vector<std::size_t> ends;  // ends[i]: where file i ends in `data`
};
file_set const& input_linux() {
    static file_set const set = [] {
        file_set f;
        char const* env = std::getenv("STASH_BENCH_DATASETS");
        std::filesystem::path const root = std::filesystem::path(env && *env ? env : "/tmp/stash-datasets") / "linux";
        std::error_code ec;
        if (!std::filesystem::is_directory(root, ec)) return f;
        std::vector<std::filesystem::path> paths;
        for (auto it = std::filesystem::recursive_directory_iterator(root, ec); !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec))
            if (it->is_regular_file(ec) && !it->is_symlink(ec)) paths.push_back(it->path());
        std::sort(paths.begin(), paths.end());
        for (auto const& p : paths) {
            std::ifstream in(p, std::ios::binary);
            std::string const text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
            auto const* b = reinterpret_cast<std::byte const*>(text.data());
            f.data.insert(f.data.end(), b, b + text.size());
            f.ends.push_back(f.data.size());
        }
        return f;
    }();
    return set;
}

// The path file by file over the `linux` tree, as a backup cuts it (a file under the minimum chunk
// is one chunk), on one core: what zstd makes of real source in many small files. With `Timed`
// (BM_parts_linux), each stage's speed on its own, in MiB/s of the files' bytes (the seal's also
// of the frames it seals): the whole is bounded by their harmonic sum.
template <bool Timed, class Chunker>
void whole_path_linux(benchmark::State& st, Chunker const& c) {
    auto const& set = input_linux();
    if (set.ends.empty()) return st.SkipWithError("no linux data set: run ../shared/bench/datasets.sh /tmp/stash-datasets linux");
    path_stages p;
    for (auto _ : st) {
        std::size_t begin = 0;
        for (std::size_t end : set.ends) p.run<Timed>(c, byte_span(set.data).subspan(begin, end - begin)), begin = end;
        benchmark::ClobberMemory();
    }
    double const mib = double(st.iterations() * set.data.size()) / (1 << 20);
    st.SetBytesProcessed(std::int64_t(st.iterations() * set.data.size()));
    st.counters["files"] = double(set.ends.size());
    st.counters["ratio"] = double(p.stored) / double(st.iterations() * set.data.size());
    if constexpr (Timed) {
        auto rate = [](double m, auto d) { return m / std::chrono::duration<double>(d).count(); };
        st.counters["chunk_MiBps"] = rate(mib, p.t_chunk);
        st.counters["sha256_MiBps"] = rate(mib, p.t_hash);
        st.counters["zstd_MiBps"] = rate(mib, p.t_compress);
        st.counters["seal_MiBps"] = rate(double(p.frames) / (1 << 20), p.t_seal);
        st.counters["seal_per_file_MiBps"] = rate(mib, p.t_seal);
    }
}
void BM_parts_linux(benchmark::State& st) { whole_path_linux<true>(st, policies::chunk::fastcdc()); }
void BM_path_fastcdc_linux(benchmark::State& st) { whole_path_linux<false>(st, policies::chunk::fastcdc()); }
void BM_path_rabin_linux(benchmark::State& st) { whole_path_linux<false>(st, make_rabin()); }

}  // namespace

BENCHMARK(BM_chunk_rabin)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_chunk_rabin_portable)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_chunk_fastcdc)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_chunk_fixed)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_chunk_seqcdc)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_chunk_ram)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_chunk_seqcdc_8k)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_chunk_seqcdc_8k_portable)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_chunk_ram_8k)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_chunk_ram_8k_portable)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_chunk_fastcdc_8k)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_chunk_rabin_text)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_chunk_fastcdc_text)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_chunk_seqcdc_text)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_chunk_ram_text)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_stream_rabin)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_stream_rabin_restarting)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_sha256)->Arg(4 << 10)->Arg(16 << 10)->Arg(1 << 20);
BENCHMARK(BM_sha256_stream)->Arg(16 << 10)->Arg(1 << 20);
BENCHMARK(BM_sha256_many)->Arg(4 << 10)->Arg(16 << 10)->Arg(0);
BENCHMARK(BM_sha256_many_stream)->Arg(16 << 10)->Arg(0);
BENCHMARK(BM_scrypt)->Unit(benchmark::kMillisecond);
BENCHMARK_TEMPLATE(BM_zstd, 2, false)->Name("BM_zstd2/random")->Unit(benchmark::kMicrosecond);
BENCHMARK_TEMPLATE(BM_zstd, 1, true)->Name("BM_zstd1/text")->Unit(benchmark::kMicrosecond);
BENCHMARK_TEMPLATE(BM_zstd, 2, true)->Name("BM_zstd2/text")->Unit(benchmark::kMicrosecond);
BENCHMARK_TEMPLATE(BM_zstd, 3, true)->Name("BM_zstd3/text")->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_seal)->Arg(4096)->Arg(1 << 20)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_path_fastcdc_random)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_path_rabin_random)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_path_fastcdc_text)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_path_rabin_text)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_parts_linux)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_path_fastcdc_linux)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_path_rabin_linux)->Unit(benchmark::kMillisecond);
BENCHMARK_MAIN();
