// Golden vectors and round trips for the restic repository format: crypto, keys, JSON documents, packs.
#include <stash/repo/repository.hpp>
#include <stash/repo/tree.hpp>
#include <stash/policies/backend/any.hpp>
#include <stash/policies/backend/cache.hpp>
#include <stash/policies/backend/local.hpp>
#include <stash/policies/backend/memory.hpp>
#include <stash/policies/compress/none.hpp>
#include <stash/policies/compress/zstd.hpp>
#include <stash/policies/hash/sha256.hpp>

#include "result_printer.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace stash;

namespace {
bytes seq(int from, int n) {
    bytes b(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) b[std::size_t(i)] = std::byte(from + i);
    return b;
}
std::string hex(byte_span b) { return to_hex(b); }
// The message of a parse that must fail as corrupt, naming the document `what`.
template <class T>
std::string corrupt_message(result<T> const& r, std::string const& what) {
    REQUIRE_FALSE(r);
    CHECK(r.error().is(errc::corrupt));
    CHECK(r.error().message.find(what) != std::string::npos);
    return r.error().message;
}
}  // namespace

TEST_CASE("sha256 matches FIPS 180-4 examples", "[crypto][hash]") {
    using H = policies::hash::sha256;
    CHECK(H::digest(as_bytes("abc")).str() == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    CHECK(H::digest({}).str() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST_CASE("sha256 digest_many equals digest for every length and batch, on lanes and on SHA-NI", "[crypto][hash]") {
    using H = policies::hash::sha256;
    // Lengths around the padding's edges (55/56 bytes of a last block take one or two padding
    // blocks), and some long enough that one message outlives many short ones in its lane.
    std::vector<std::size_t> lengths = {0, 1, 3, 55, 56, 57, 63, 64, 65, 119, 120, 127, 128, 129, 1000, 4096, 300000};
    std::uint32_t x = 12345;
    auto rnd = [&] { return x = x * 1103515245u + 12345u, x >> 8; };
    for (int i = 0; i < 200; ++i) lengths.push_back(rnd() % (i % 10 == 0 ? 200000 : 9000));
    bytes data(400000);
    for (auto& b : data) b = std::byte(rnd());
    std::vector<byte_span> all;
    for (std::size_t i = 0; i < lengths.size(); ++i) all.push_back(byte_span(data).subspan(i * 7 % 1000, lengths[i]));
    std::vector<id> want(all.size());
    for (std::size_t i = 0; i < all.size(); ++i) want[i] = H::digest(all[i]);

    for (std::size_t batch : {std::size_t(1), std::size_t(2), std::size_t(6), std::size_t(7), std::size_t(16), std::size_t(17), std::size_t(64), all.size()}) {
        for (std::size_t from = 0; from < all.size(); from += batch) {
            std::size_t const n = std::min(batch, all.size() - from);
            std::span<byte_span const> in(all.data() + from, n);
            std::vector<id> got(n);
            digest_all<H>(in, got);
            for (std::size_t i = 0; i < n; ++i) REQUIRE(got[i] == want[from + i]);
            if (!policies::hash::detail::has_sha256_lanes()) continue;
            // The lanes alone to the end, and SHA-NI for all but the first sixteen's start.
            for (unsigned ni_below : {0u, 16u}) {
                std::fill(got.begin(), got.end(), id{});
                policies::hash::detail::sha256_many(in, got, ni_below);
                for (std::size_t i = 0; i < n; ++i) REQUIRE(got[i] == want[from + i]);
            }
        }
    }
    std::array<byte_span, 1> abc{as_bytes("abc")};
    std::array<id, 1> d;
    digest_all<H>(abc, d);
    CHECK(d[0].str() == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST_CASE("restic box: AES-256-CTR + Poly1305-AES vector (restic-format.md 2.5)", "[crypto][seal]") {
    crypto::key_material k;
    auto e = seq(0x00, 32), mk = seq(0x20, 16), mr = seq(0x30, 16), iv = seq(0x40, 16);
    std::copy(e.begin(), e.end(), k.encrypt.begin());
    std::copy(mk.begin(), mk.end(), k.mac_k.begin());
    std::copy(mr.begin(), mr.end(), k.mac_r.begin());
    std::array<std::byte, 16> ivs;
    std::copy(iv.begin(), iv.end(), ivs.begin());
    crypto::restic_sealer s(k);
    bytes box;
    s.seal_with_iv(as_bytes("hello\n"), ivs, box);
    CHECK(hex(box) == "404142434445464748494a4b4c4d4e4f" "cb1bb353f850" "bc1c0621ac31f65d48e69c6fead27724");

    bytes plain;
    REQUIRE(s.open(box, plain));
    CHECK(as_chars(plain) == "hello\n");

    SECTION("a flipped bit anywhere fails the MAC") {
        for (std::size_t i = 0; i < box.size(); ++i) {
            bytes bad = box;
            bad[i] ^= std::byte{1};
            bytes out;
            auto r = s.open(bad, out);
            REQUIRE_FALSE(r);
            CHECK(r.error().is(errc::corrupt));
        }
    }
    SECTION("too short") {
        bytes out;
        CHECK_FALSE(s.open(byte_span(box).first(31), out));
    }
    SECTION("random IVs differ and round-trip") {
        bytes a, b, pa, pb;
        s.seal(as_bytes("same"), a);
        s.seal(as_bytes("same"), b);
        CHECK(a != b);
        REQUIRE(s.open(a, pa));
        REQUIRE(s.open(b, pb));
        CHECK(pa == pb);
    }
    SECTION("seal_append seals what its fill appends, in place, after what the buffer held") {
        bytes out = seq(0x70, 5), plain2;
        s.seal_append(out, [](bytes& o) { for (char c : std::string_view("hello\n")) o.push_back(std::byte(c)); });
        REQUIRE(out.size() == 5 + 6 + crypto::restic_sealer::overhead);
        CHECK(hex(byte_span(out).first(5)) == "7071727374");
        byte_span sealed = byte_span(out).subspan(5);
        CHECK(hex(sealed.subspan(16, 6)) != hex(as_bytes("hello\n")));  // encrypted, not left in clear
        REQUIRE(s.open(sealed, plain2));
        CHECK(as_chars(plain2) == "hello\n");
        bytes empty;
        s.seal_append(empty, [](bytes&) {});
        CHECK(empty.size() == crypto::restic_sealer::overhead);
    }
    SECTION("a thread's contexts follow the key, and each box starts its counter afresh") {
        crypto::restic_sealer t(crypto::key_material::random());
        bytes other, again, out;
        t.seal_with_iv(as_bytes("hello\n"), ivs, other);  // same IV, other key: other bytes
        CHECK(hex(other) != hex(box));
        CHECK_FALSE(s.open(other, out));
        CHECK_FALSE(t.open(box, out));
        bytes odd;
        s.seal(as_bytes("12345"), odd);  // leaves the CTR context 5 bytes into a block
        s.seal_with_iv(as_bytes("hello\n"), ivs, again);
        CHECK(hex(again) == hex(box));
        REQUIRE(t.open(other, out));
        CHECK(as_chars(out) == "hello\n");
    }
}

TEST_CASE("nonces are drawn once each, and a forked child draws other ones", "[crypto][random]") {
    std::set<std::string> seen;
    for (int i = 0; i < 1000; ++i) {  // four refills of the 4 KiB pool
        std::array<std::byte, 16> n;
        crypto::random_nonce(n);
        CHECK(seen.insert(hex(n)).second);
    }
    bytes big(65);
    CHECK_THROWS_AS(crypto::random_nonce(big), std::invalid_argument);
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    pid_t const pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        std::array<std::byte, 16> n;
        crypto::random_nonce(n);
        [[maybe_unused]] auto w = ::write(fds[1], n.data(), n.size());
        ::_exit(0);
    }
    ::close(fds[1]);
    std::array<std::byte, 16> child{}, mine;
    CHECK(::read(fds[0], child.data(), child.size()) == 16);
    ::close(fds[0]);
    ::waitpid(pid, nullptr, 0);
    crypto::random_nonce(mine);
    CHECK(hex(child) != hex(mine));
    CHECK(seen.count(hex(child)) == 0);
}

TEST_CASE("scrypt matches RFC 7914 and the spec's vector", "[crypto][kdf]") {
    std::array<std::byte, 64> out;
    REQUIRE(crypto::scrypt("", {}, {16, 1, 1}, out));
    CHECK(hex(out) == "77d6576238657b203b19ca42c18a0497f16b4844e3074ae8dfdffa3fede21442"
                      "fcd0069ded0948f8326a753a0fc81f17e8d3e0fb2e0d3628cf35e20c38d18906");
    REQUIRE(crypto::scrypt("password", as_bytes("NaCl"), {1024, 8, 16}, out));
    CHECK(hex(out) == "fdbabe1c9d3472007856e7190d01e9fe7c6ad7cbc8237830e77376634b373162"
                      "2eaf30d92e22a3886ff109279d9830dac727afb94a83ee6d8360cbdfa2cc0640");
    auto salt = seq(0, 64);
    REQUIRE(crypto::scrypt("testpw", salt, {16384, 8, 1}, out));
    CHECK(hex(out) == "d474d63f5a753b92ba869241b6f697fb2cf79a7c2dc9fdd8d81cbc9f58d1b303"
                      "06907cb87a85309b190d76fc0ae506682e890fe0a1b0d67cf413f532b1cb95ff");
    CHECK_FALSE(crypto::scrypt("x", salt, {1000, 8, 1}, out));  // N not a power of two

    SECTION("ROMix keeping every 2nd or 4th state gives what keeping all does") {
        for (std::size_t r : {1u, 3u}) {
            bytes all = seq(7, int(128 * r)), half = all, quarter = all;
            // Each stride uses exactly n/stride · 32r words of scratch: the guard words after stay.
            auto romix = [r](bytes& b, std::size_t stride) {
                std::size_t const used = 64 / stride * 32 * r;
                std::vector<std::uint32_t> v(used + 16, 0xA5A5A5A5u);
                crypto::detail::romix(b.data(), 64, r, stride, v.data());
                CHECK(std::all_of(v.begin() + std::ptrdiff_t(used), v.end(), [](std::uint32_t w) { return w == 0xA5A5A5A5u; }));
            };
            romix(all, 1);
            romix(half, 2);
            romix(quarter, 4);
            CHECK(all != seq(7, int(128 * r)));
            CHECK(half == all);
            CHECK(quarter == all);
            // The build for this CPU (AVX-512VL where it has it) gives the same.
            bytes best = seq(7, int(128 * r));
            std::vector<std::uint32_t> v(64 / 2 * 32 * r);
            crypto::detail::romix_best(best.data(), 64, r, 2, v.data());
            CHECK(best == all);
        }
    }
}

TEST_CASE("prefault_pages maps a buffer's pages and leaves what they hold", "[core]") {
    // 5 MiB plus a page, from an offset inside a page: partial pages at both ends, three 2 MiB steps.
    std::size_t const size = (5u << 20) + 4096;
    std::unique_ptr<std::byte[], free_delete> buf(static_cast<std::byte*>(allocate_huge(size + 100)));
    REQUIRE(buf);
    std::byte* const begin = buf.get() + 100;
    for (std::size_t i = 0; i < size; i += 512) begin[i] = std::byte(i / 512 * 7 + 1);
    prefault_pages(begin, begin + size);
    prefault_pages(begin + size / 2, begin + size);  // again, over pages already mapped
    prefault_pages(begin + 10, begin + 20);          // inside one page: nothing to do
    bool same = true;
    for (std::size_t i = 0; i < size; i += 512) same = same && begin[i] == std::byte(i / 512 * 7 + 1);
    CHECK(same);
}

TEST_CASE("key files wrap the master key; a wrong password is reported as such", "[repo][key]") {
    auto master = crypto::key_material::random();
    auto k = repo::make_key("secret", master, {1024, 8, 1}, "u", "h");
    REQUIRE(k);
    auto parsed = repo::key_file::from_json(k->to_json(), "key");
    REQUIRE(parsed);
    CHECK(parsed->salt.size() == 64);
    CHECK(parsed->data.size() == 160);  // 128-byte master key JSON + 32
    auto opened = repo::open_key("secret", *parsed);
    REQUIRE(opened);
    CHECK(opened->encrypt == master.encrypt);
    CHECK(opened->mac_r == master.mac_r);
    auto wrong = repo::open_key("Secret", *parsed);
    REQUIRE_FALSE(wrong);
    CHECK(wrong.error().is(errc::wrong_password));
}

TEST_CASE("Go strconv.Quote of names (restic-format.md 7.3)", "[repo][tree]") {
    struct {
        std::string name, quoted;
    } const cases[] = {
        {"q\"uote", "q\\\"uote"},
        {"back\\slash", "back\\\\slash"},
        {"tab\tnl\nx", "tab\\tnl\\nx"},
        {"bad\xffutf8", "bad\\xffutf8"},
        {"del\x7f", "del\\x7f"},
        {"caf\xc3\xa9 <&>", "caf\xc3\xa9 <&>"},
        {"bell\a", "bell\\a"},
        {"soft\xc2\xadhyphen", "soft\\u00adhyphen"},
        {"plain name", "plain name"},
    };
    for (auto const& c : cases) {
        CHECK(repo::go_quote(c.name) == c.quoted);
        if (repo::go_quote_is_identity(c.name)) CHECK(c.quoted == c.name);  // the writer's fast path
        auto back = repo::go_unquote(c.quoted);
        REQUIRE(back);
        CHECK(*back == c.name);
    }
    CHECK(*repo::go_unquote("\\u00e9\\U0001F600\\101") == "\xc3\xa9\xf0\x9f\x98\x80" "A");
    CHECK_FALSE(repo::go_unquote("bad\\q"));
    CHECK_FALSE(repo::go_unquote("trail\\"));
    CHECK_FALSE(repo::go_unquote("\\x4"));

    // And in the JSON text of a tree, as restic writes it.
    repo::node n;
    n.name = "caf\xc3\xa9 <&>";
    n.type = repo::node_type::file;
    std::string j = repo::tree_json({n});
    CHECK(j.find("\"name\":\"caf\xc3\xa9 \\u003c\\u0026\\u003e\"") != std::string::npos);
    n.name = "q\"uote";
    j = repo::tree_json({n});
    CHECK(j.find(R"("name":"q\\\"uote")") != std::string::npos);
    CHECK(repo::go_quote_is_identity("plain name.c"));
    CHECK_FALSE(repo::go_quote_is_identity("caf\xc3\xa9"));
}

TEST_CASE("JSON strings are escaped as Go's encoding/json does, around unescaped runs", "[core][json]") {
    std::string out;
    json_writer w(out);
    static constexpr char text[] = "a\x01" "b\"c\\d\n\r\t<e>&\x1f";
    w.begin_array().value(std::string_view(text, sizeof text - 1)).value("").value("plain").end_array();
    CHECK(out == R"(["a\u0001b\"c\\d\n\r\t\u003ce\u003e\u0026\u001f","","plain"])");
    out.clear();
    json_writer h(out);
    id x;
    x.bytes[0] = std::byte{0xab}, x.bytes[31] = std::byte{0x01};
    h.begin_object().key("id").hex(x.bytes).field("n", std::uint64_t(18446744073709551615ull)).field("m", -42).end_object();
    CHECK(out == "{\"id\":\"" + x.str() + "\",\"n\":18446744073709551615,\"m\":-42}");
}

TEST_CASE("empty tree has restic's ID", "[repo][tree]") {
    auto j = repo::tree_json({});
    CHECK(j == "{\"nodes\":[]}\n");
    CHECK(policies::hash::sha256::digest(as_bytes(j)).str() ==
          "ac08ce34ba4f8123618661bef2425f7028ffb9ac740578a3ee88684d2523fee8");
}

TEST_CASE("tree nodes round-trip through JSON", "[repo][tree]") {
    repo::node f;
    f.name = "a\tb";
    f.type = repo::node_type::file;
    f.mode = 0644;
    f.mtime = {1700000000, 123456789, 0};
    f.uid = 1000, f.gid = 1000, f.user = "u", f.group = "g", f.inode = 42, f.device_id = 65024, f.size = 7, f.links = 2;
    f.xattrs = {{"user.k", to_bytes(std::string("v\0\xff", 3))}};
    f.content = {policies::hash::sha256::digest(as_bytes("x"))};
    repo::node d;
    d.name = "dir";
    d.type = repo::node_type::dir;
    d.mode = repo::go_mode::from_posix(040755);
    d.subtree = policies::hash::sha256::digest(as_bytes("y"));
    repo::node l;
    l.name = "link";
    l.type = repo::node_type::symlink;
    l.linktarget = "dir/x";
    auto parsed = repo::parse_tree(repo::tree_json({f, d, l}), "t");
    REQUIRE(parsed);
    REQUIRE(parsed->size() == 3);
    auto const& p = (*parsed)[0];
    CHECK(p.name == f.name);
    CHECK(p.mtime == f.mtime);
    CHECK(p.atime == timestamp::zero());
    CHECK(p.xattrs == f.xattrs);
    CHECK(p.content == f.content);
    CHECK((*parsed)[1].mode == 2147484141u);  // restic-format.md 7.4: dir 0755
    CHECK((*parsed)[1].subtree == d.subtree);
    CHECK((*parsed)[2].linktarget == "dir/x");
    CHECK((*parsed)[2].content.empty());
    CHECK(repo::tree_json({l}).find("\"content\":null") != std::string::npos);
    // The whole tree round-trips, as every node compares equal.
    CHECK(*parsed == std::vector<repo::node>{f, d, l});
}

TEST_CASE("tree JSON: fields of later formats are skipped, bad fields named", "[repo][tree]") {
    auto const x = policies::hash::sha256::digest(as_bytes("x")).str();
    auto t = repo::parse_tree(R"({"nodes":[{"name":"a","type":"file","generic":{"k":[1,{"content":3}]},"size":5,"content":[")" + x +
                                  R"("],"mode":null,"extended_attributes":null}],"other":[{"nodes":1}]})",
                              "tree 9");
    REQUIRE(t);
    REQUIRE(t->size() == 1);
    CHECK((*t)[0].size == 5);
    CHECK((*t)[0].content.size() == 1);
    CHECK(repo::parse_tree(R"({"nodes":null})", "t")->empty());
    auto error_of = [](std::string const& json) { return corrupt_message(repo::parse_tree(json, "tree 9"), "tree 9"); };
    CHECK(error_of(R"({"nodes":[{"type":"file"}]})").find("\"name\" is missing") != std::string::npos);
    CHECK(error_of(R"({"nodes":[{"name":"a","type":"pipe"}]})").find("\"type\"") != std::string::npos);
    CHECK(error_of(R"({"nodes":[{"name":"a","type":"file","size":-1}]})").find("\"size\"") != std::string::npos);
    CHECK(error_of(R"({"nodes":[{"name":"a","type":"file","mtime":"yesterday"}]})").find("\"mtime\"") != std::string::npos);
    CHECK(error_of(R"({"nodes":[{"name":"a","type":"file","content":["zz"]}]})").find("\"content\"") != std::string::npos);
    CHECK(error_of(R"({"nodes":[{"name":"a","type":"file","extended_attributes":[{"name":"k","value":"!"}]}]})")
              .find("\"extended_attributes\"") != std::string::npos);
    CHECK(error_of(R"({"nodes":[{"name":"a","type":"dir","subtree":{}}]})").find("\"subtree\"") != std::string::npos);
    CHECK(error_of(R"({"nodes":[1]})").find("not an object") != std::string::npos);
    CHECK(error_of(R"([])").find("expected a JSON object") != std::string::npos);
    CHECK(error_of(R"({"nodes":[]}{})").find("invalid JSON") != std::string::npos);
}

TEST_CASE("RFC 3339 times as Go writes them", "[core][time]") {
    CHECK(format_rfc3339(timestamp::zero()) == "0001-01-01T00:00:00Z");
    CHECK(format_rfc3339({1763945853, 677021648, 0}) == "2025-11-24T00:57:33.677021648Z");
    CHECK(format_rfc3339({1763945853, 500000000, 60}) == "2025-11-24T01:57:33.5+01:00");
    CHECK(format_rfc3339({1763945853, 100, -330}) == "2025-11-23T19:27:33.0000001-05:30");
    CHECK(format_rfc3339({-62135596800 - 400 * 86400, 0, 0}) == "0000-01-01T00:00:00Z");   // year -1: clamped
    CHECK(format_rfc3339({253402300800 + 86400, 5, 0}) == "9999-12-31T23:59:59.000000005Z");
    CHECK(format_rfc3339({253402300799, 999999999, 840}).size() == rfc3339_max);
    auto t = parse_rfc3339("2025-11-24T01:57:33.5+01:00");
    REQUIRE(t);
    CHECK(t->sec == 1763945853);
    CHECK(t->nsec == 500000000);
    CHECK(t->offset_min == 60);
    CHECK_FALSE(parse_rfc3339("2025-11-24 01:57"));
    CHECK_FALSE(parse_rfc3339("2025-13-24T01:57:33Z"));
}

TEST_CASE("zstd blobs round-trip through a context whose workspace block is kept", "[compress]") {
    SECTION("the cache hands back the largest block freed for any request that fits") {
        policies::compress::detail::block_cache c;
        ZSTD_customMem m = c.mem();
        void* big = m.customAlloc(m.opaque, 4096);
        void* small = m.customAlloc(m.opaque, 100);
        REQUIRE(big);
        REQUIRE(small);
        m.customFree(m.opaque, big);
        m.customFree(m.opaque, small);  // smaller than the spare: really freed
        CHECK(m.customAlloc(m.opaque, 1000) == big);
        void* larger = m.customAlloc(m.opaque, 8192);  // the spare is taken: a new block
        CHECK(larger != big);
        m.customFree(m.opaque, big);
        m.customFree(m.opaque, larger);  // the larger one becomes the spare
        CHECK(m.customAlloc(m.opaque, 5000) == larger);
        m.customFree(m.opaque, larger);
        m.customFree(m.opaque, nullptr);
    }
    SECTION("small and large blobs alternate past zstd's shrink rule, each frame decoding to its input") {
        policies::compress::zstd<2> z;
        bytes text;
        for (int i = 0; text.size() < (1u << 20); ++i) {
            std::string line = "line " + std::to_string(i * 7919 % 1000) + " of a source file;\n";
            for (char ch : line) text.push_back(std::byte(ch));
        }
        // 300 small blobs between large ones: zstd would shrink its workspace after 128.
        for (std::size_t n : {std::size_t(1) << 20, std::size_t(200), std::size_t(1) << 20, std::size_t(70000)}) {
            for (int k = 0; k < (n < 100000 ? 300 : 1); ++k) {
                byte_span in(text.data() + k, n);
                bytes frame, back;
                z.compress(in, frame);
                CHECK(frame.size() < n);
                REQUIRE(z.decompress(frame, n, back));
                REQUIRE(back.size() == n);
                CHECK(std::equal(back.begin(), back.end(), in.begin()));
            }
        }
    }
    SECTION("a small-blob minimum match applies to blobs up to 16 KiB only, whatever came before") {
        bytes text;
        for (int i = 0; text.size() < (1u << 20); ++i) {
            std::string line = "int v" + std::to_string(i * 7919 % 1000) + " = f(" + std::to_string(i % 37) + ");\n";
            for (char ch : line) text.push_back(std::byte(ch));
        }
        auto frame = [&](auto& z, std::size_t n) {
            bytes f;
            z.compress(byte_span(text).first(n), f);
            bytes back;
            REQUIRE(z.decompress(f, n, back));
            CHECK(std::equal(back.begin(), back.end(), text.begin()));
            return f;
        };
        std::size_t const small = policies::compress::zstd<2, 6>::small;
        policies::compress::zstd<2> plain, fresh_plain;
        policies::compress::zstd<2, 6> tuned, fresh_tuned;
        // Small: the tuned frame differs from zstd's own choice, and stays the same after a large
        // blob and a mid-sized one (the parameter is set again); mid-sized and large: zstd's own.
        bytes const small_tuned = frame(fresh_tuned, small);
        CHECK(small_tuned != frame(fresh_plain, small));
        for (std::size_t n : {small + 1, std::size_t(1) << 20, std::size_t(70000), small, std::size_t(5000), std::size_t(200)})
            CHECK(frame(tuned, n) == (n <= small ? frame(fresh_tuned, n) : frame(plain, n)));
        CHECK(frame(tuned, small) == small_tuned);
    }
    SECTION("a large incompressible blob outgrows the first guess of half its size") {
        policies::compress::zstd<2> z;
        bytes noise(3 << 20), frame = seq(1, 3), back;
        std::uint64_t x = 88172645463325252ull;
        for (auto& b : noise) x ^= x << 13, x ^= x >> 7, x ^= x << 17, b = std::byte(x);
        z.compress(noise, frame);
        CHECK(frame.size() > 3 + noise.size());  // stored raw, plus framing
        CHECK(hex(byte_span(frame).first(3)) == "010203");  // appended after what was there
        REQUIRE(z.decompress(byte_span(frame).subspan(3), noise.size(), back));
        CHECK(back == noise);
    }
    SECTION("worth_compressing: no for large blobs whose start, middle and end all resist, and frames stay the same") {
        using Z = policies::compress::zstd<2, 6>;
        STATIC_REQUIRE(probes_compressibility<Z>);
        STATIC_REQUIRE(!probes_compressibility<policies::compress::none>);
        bytes noise(1 << 20), text;
        std::uint64_t x = 88172645463325252ull;
        for (auto& b : noise) x ^= x << 13, x ^= x >> 7, x ^= x << 17, b = std::byte(x);
        for (int i = 0; text.size() < noise.size(); ++i) {
            std::string line = "int v" + std::to_string(i * 7919 % 1000) + " = f(" + std::to_string(i % 37) + ");\n";
            for (char ch : line) text.push_back(std::byte(ch));
        }
        text.resize(noise.size());
        Z z, fresh;
        CHECK_FALSE(z.worth_compressing(noise));
        CHECK(z.worth_compressing(text));
        CHECK(z.worth_compressing(byte_span(noise).first(256 * 1024)));  // not large: always compressed
        CHECK_FALSE(z.worth_compressing(byte_span(noise).first(256 * 1024 + 1)));
        // Text at any one of the three samples is enough; text only between them is not seen.
        std::size_t const n = noise.size(), s = Z::sample;
        for (std::size_t at : {std::size_t(0), (n - s) / 2, n - s}) {
            bytes mixed = noise;
            std::copy_n(text.begin(), s, mixed.begin() + std::ptrdiff_t(at));
            CHECK(z.worth_compressing(mixed));
        }
        bytes hidden = noise;
        std::copy_n(text.begin(), 64 * 1024, hidden.begin() + std::ptrdiff_t(n / 4));
        CHECK_FALSE(z.worth_compressing(hidden));
        // A probe leaves the context as it was: the frames that follow match a fresh context's.
        for (std::size_t len : {std::size_t(5000), std::size_t(70000), std::size_t(1) << 20}) {
            bytes a, b;
            z.compress(byte_span(text).first(len), a);
            fresh.compress(byte_span(text).first(len), b);
            CHECK(a == b);
            CHECK(z.worth_compressing(noise) == false);
        }
    }
}

TEST_CASE("pack headers encode and decode (restic-format.md 4.1)", "[repo][pack]") {
    using H = policies::hash::sha256;
    std::vector<repo::blob_entry> e = {
        {H::digest(as_bytes("a")), repo::blob_type::data, 0, 38, 0},
        {H::digest(as_bytes("b")), repo::blob_type::tree, 38, 47, 6},
    };
    auto h = repo::encode_header(e);
    CHECK(h.size() == 37 + 41);
    CHECK(h[0] == std::byte{0});
    CHECK(h[37] == std::byte{3});
    auto d = repo::decode_header(h, "p");
    REQUIRE(d);
    CHECK(*d == e);
    h[37] = std::byte{4};
    CHECK_FALSE(repo::decode_header(h, "p"));
    CHECK_FALSE(repo::decode_header(byte_span(h).first(50), "p"));
}

TEST_CASE("a large index file is written and compressed in pieces, the same as whole", "[repo][index][compress]") {
    using H = policies::hash::sha256;
    std::vector<repo::indexed_pack> packs;
    for (int k = 0; k < 300; ++k) {
        repo::indexed_pack p{H::digest(as_bytes("pack" + std::to_string(k))), {}};
        for (std::uint32_t b = 0; b < 20; ++b)
            p.blobs.push_back({H::digest(as_bytes(std::to_string(k * 100 + int(b)))), repo::blob_type(b % 2), b * 100, 100, b % 3 ? 250u : 0u});
        packs.push_back(std::move(p));
    }
    std::vector<id> sup{H::digest(as_bytes("old"))};
    std::string whole = repo::index_json(packs, sup), joined;
    int pieces = 0;
    repo::write_index_json(packs, sup, [&](std::string_view piece) { joined += piece, ++pieces; }, 64 * 1024);
    CHECK(joined == whole);
    CHECK(pieces == int(whole.size() / (64 * 1024)) + 1);  // a piece each time 64 KiB gathered, and the rest

    // The frame writer: the pieces compressed as they come decode to the whole (output grows past
    // its first 128 KiB: the JSON's IDs are incompressible).
    bytes frame = seq(9, 2), back;
    compress::zstd_frame_writer z(frame, 3);
    repo::write_index_json(packs, sup, [&](std::string_view piece) { z.write(as_bytes(piece)); }, 64 * 1024);
    z.finish();
    CHECK(frame.size() > 128 * 1024);
    CHECK(hex(byte_span(frame).first(2)) == "090a");
    REQUIRE(compress::zstd_decoder().decompress(byte_span(frame).subspan(2), whole.size(), back));
    CHECK(as_chars(back) == whole);
}

TEST_CASE("zstd_decoder decodes into its own buffer and holds a frame to its recorded length", "[compress]") {
    compress::zstd_decoder d;
    auto frame_of = [](std::string_view text) {
        bytes f;
        compress::zstd_compress_frame(as_bytes(text), f, compress::data_level);
        return f;
    };
    std::string const large(300000, 'x'), small = "a blob of text, a blob of text, a blob of text";
    bytes const fl = frame_of(large), fs = frame_of(small);
    // A small frame after a large one reuses the buffer; a large one after a small one grows it.
    for (auto const* text : {&large, &small, &large}) {
        auto v = d.decompress(*text == large ? fl : fs, text->size());
        REQUIRE(v);
        CHECK(as_chars(*v) == *text);
    }
    auto message = [&](bytes const& f, std::size_t expected) {
        auto v = d.decompress(f, expected);
        REQUIRE_FALSE(v);
        CHECK(v.error().is(errc::corrupt));
        return std::string(v.error().what());
    };
    CHECK_THAT(message(fs, small.size() - 1), Catch::Matchers::Contains("larger than its recorded length"));
    CHECK_THAT(message(fs, small.size() + 1), Catch::Matchers::Contains("shorter than its recorded length"));
    CHECK_THAT(message(bytes(fl.begin(), fl.end() - 8), large.size()), Catch::Matchers::Contains("zstd"));
}

TEST_CASE("index JSON round-trips with and without uncompressed_length", "[repo][index]") {
    using H = policies::hash::sha256;
    repo::indexed_pack p{H::digest(as_bytes("pack")),
                         {{H::digest(as_bytes("a")), repo::blob_type::data, 0, 38, 0},
                          {H::digest(as_bytes("b")), repo::blob_type::tree, 38, 47, 6}}};
    auto j = repo::index_json({p});
    CHECK(j.find("uncompressed_length\":6") != std::string::npos);
    CHECK(j.find("supersedes") == std::string::npos);
    std::vector<id> sup;
    auto back = repo::parse_index(j, "i", &sup);
    REQUIRE(back);
    REQUIRE(back->size() == 1);
    CHECK((*back)[0].blobs == p.blobs);
    // Fed a byte at a time (IDs, keys and numbers split across pieces, as decompression hands them out).
    std::vector<repo::indexed_pack> pieces;
    repo::index_reader reader("i", [&](repo::indexed_pack&& ip) -> result<void> {
        pieces.push_back(std::move(ip));
        return {};
    });
    for (char c : j) REQUIRE(reader.feed(std::string_view(&c, 1)));
    REQUIRE(reader.finish());
    REQUIRE(pieces.size() == 1);
    CHECK(pieces[0].pack == p.pack);
    CHECK(pieces[0].blobs == p.blobs);
    // Fed in two pieces split anywhere, each piece's buffer overwritten once it is fed: a key whole in
    // the first piece whose value starts in the second must not be read from the reused buffer.
    for (std::size_t k = 1; k < j.size(); ++k) {
        std::vector<repo::indexed_pack> got;
        repo::index_reader r2("i", [&](repo::indexed_pack&& ip) -> result<void> {
            got.push_back(std::move(ip));
            return {};
        });
        std::string buf = j.substr(0, k);
        REQUIRE(r2.feed(buf));
        buf.assign(buf.size(), '#');
        buf = j.substr(k);
        REQUIRE(r2.feed(buf));
        buf.assign(buf.size(), '#');
        REQUIRE(r2.finish());
        REQUIRE(got.size() == 1);
        REQUIRE(got[0].blobs == p.blobs);
    }
    auto bad = repo::parse_index(R"({"packs":[{"id":"zz","blobs":[]}]})", "index 1234");
    REQUIRE_FALSE(bad);
    CHECK(bad.error().message.find("index 1234") != std::string::npos);
    CHECK(bad.error().message.find("\"id\"") != std::string::npos);
}

TEST_CASE("index JSON streams: old bare-array format, escapes, unknown fields, errors naming the field", "[repo][index]") {
    using H = policies::hash::sha256;
    auto const p1 = H::digest(as_bytes("p1")).str(), b1 = H::digest(as_bytes("b1")).str();
    // The old format is a bare array; an escaped digit is still a digit; unknown fields are skipped.
    auto old = repo::parse_index("[{\"id\":\"" + p1 + "\",\"x\":{\"blobs\":[1]},\"blobs\":[{\"id\":\"\\u0030" + b1.substr(1) +
                                     "\",\"type\":\"tree\",\"offset\":7,\"length\":40,\"note\":[{}]}]}]",
                                 "index old");
    REQUIRE(old);
    REQUIRE(old->size() == 1);
    REQUIRE((*old)[0].blobs.size() == 1);
    CHECK((*old)[0].blobs[0].blob.str() == "0" + b1.substr(1));
    CHECK((*old)[0].blobs[0].type == repo::blob_type::tree);
    CHECK((*old)[0].blobs[0].offset == 7);
    CHECK((*old)[0].blobs[0].length == 40);
    std::vector<id> sup;
    REQUIRE(repo::parse_index("{\"supersedes\":[\"" + p1 + "\"],\"packs\":[]}", "i", &sup));
    CHECK(sup == std::vector<id>{*id::parse(p1)});
    auto error_of = [](std::string const& json) { return corrupt_message(repo::parse_index(json, "index 77"), "index 77"); };
    auto const pack_head = "{\"packs\":[{\"id\":\"" + p1 + "\",\"blobs\":[{\"id\":\"" + b1 + "\",";
    CHECK(error_of(pack_head + "\"type\":\"data\",\"offset\":0}]}]}").find("\"length\"") != std::string::npos);
    CHECK(error_of(pack_head + "\"type\":\"blob\",\"offset\":0,\"length\":40}]}]}").find("\"type\"") != std::string::npos);
    CHECK(error_of(pack_head + "\"type\":\"data\",\"offset\":-1,\"length\":40}]}]}").find("\"offset\"") != std::string::npos);
    CHECK(error_of(pack_head + "\"type\":\"data\",\"offset\":0,\"length\":4294967296}]}]}").find("\"length\"") != std::string::npos);
    CHECK(error_of("{\"packs\":[{\"blobs\":[]}]}").find("\"id\" is missing") != std::string::npos);
    CHECK(error_of("{\"packs\":[{\"id\":\"" + p1 + "\"}]}").find("\"blobs\"") != std::string::npos);
    CHECK(error_of("{\"supersedes\":[]}").find("\"packs\" is missing") != std::string::npos);
    CHECK(error_of("{\"packs\":[3]}").find("not an object") != std::string::npos);
    CHECK(error_of("{\"packs\":[]} x").find("invalid JSON") != std::string::npos);
    CHECK(error_of("{\"packs\":[").find("invalid JSON") != std::string::npos);
}

TEST_CASE("the index finds every blob among many, keeps data and tree apart, and the first pack wins", "[repo][index]") {
    using H = policies::hash::sha256;
    repo::index idx;
    CHECK_FALSE(idx.has(H::digest(as_bytes("x")), repo::blob_type::data));
    constexpr int packs = 40, per_pack = 500;  // the table grows several times
    for (int p = 0; p < packs; ++p) {
        repo::indexed_pack ip{H::digest(as_bytes("pack " + std::to_string(p))), {}};
        for (int b = 0; b < per_pack; ++b)
            ip.blobs.push_back({H::digest(as_bytes(std::to_string(p * per_pack + b))), b % 2 ? repo::blob_type::tree : repo::blob_type::data,
                                std::uint32_t(b * 100), 100, 0});
        idx.add(ip);
    }
    CHECK(idx.size() == std::size_t(packs * per_pack));
    for (int i = 0; i < packs * per_pack; i += 7) {
        auto const b = H::digest(as_bytes(std::to_string(i)));
        auto const t = i % per_pack % 2 ? repo::blob_type::tree : repo::blob_type::data;
        auto loc = idx.find(b, t);
        REQUIRE(loc);
        CHECK(loc->pack == H::digest(as_bytes("pack " + std::to_string(i / per_pack))));
        CHECK(loc->entry.offset == std::uint32_t(i % per_pack * 100));
        CHECK_FALSE(idx.has(b, t == repo::blob_type::tree ? repo::blob_type::data : repo::blob_type::tree));
    }
    // The same blob in a later pack: still found in the first; the same ID as the other type is new.
    auto const b0 = H::digest(as_bytes("0"));
    auto const later = H::digest(as_bytes("later"));
    idx.add({later, {{b0, repo::blob_type::data, 9, 50, 0}, {b0, repo::blob_type::tree, 59, 50, 0}}});
    CHECK(idx.size() == std::size_t(packs * per_pack + 1));
    CHECK(idx.find(b0, repo::blob_type::data)->pack == H::digest(as_bytes("pack 0")));
    CHECK(idx.find(b0, repo::blob_type::tree)->pack == later);
    CHECK(idx.has_pack(later));
    std::size_t n = 0;
    idx.for_each([&](repo::blob_location const&) { ++n; });
    CHECK(n == idx.size());
}

TEST_CASE("config JSON and polynomial checks (restic-format.md 3)", "[repo][config]") {
    auto c = repo::config::from_json(R"({"version":2,"id":"9d3c","chunker_polynomial":"3cc191fc24e2fd"})");
    REQUIRE(c);
    CHECK(c->chunker_polynomial.value == 0x3cc191fc24e2fdull);
    CHECK(c->to_json() == R"({"version":2,"id":"9d3c","chunker_polynomial":"3cc191fc24e2fd"})");
    auto v3 = repo::config::from_json(R"({"version":3,"id":"x","chunker_polynomial":"3cc191fc24e2fd"})");
    REQUIRE_FALSE(v3);
    CHECK(v3.error().is(errc::unsupported));
    CHECK_FALSE(repo::config::from_json(R"({"version":2,"id":"x","chunker_polynomial":"3cc191fc24e2fc"})"));
}

TEST_CASE("repository over memory: init, open, unpacked files, wrong password", "[repo]") {
    using repo_t = repo::repository<policies::backend::memory, policies::hash::sha256>;
    policies::backend::memory mem;
    repo::init_options opt;
    opt.kdf = {1024, 8, 1};
    for (unsigned v : {1u, 2u}) {
        policies::backend::memory m;
        opt.version = v;
        auto r = repo_t::init(m, "pw", opt);
        REQUIRE(r);
        CHECK(r->cfg().chunker_polynomial.irreducible());
        CHECK(r->cfg().chunker_polynomial.degree() == 53);
        auto fid = r->save_unpacked(file_type::snapshot, R"({"time":"2025-01-01T00:00:00Z","tree":"00"})");
        REQUIRE(fid);
        auto raw = m.file({file_type::snapshot, fid->str()});
        REQUIRE(raw);
        CHECK(policies::hash::sha256::digest(*raw) == *fid);
        auto opened = repo_t::open(m, "pw");
        REQUIRE(opened);
        auto text = opened->load_unpacked(file_type::snapshot, *fid);
        REQUIRE(text);
        CHECK(*text == R"({"time":"2025-01-01T00:00:00Z","tree":"00"})");
        (*raw)[40] ^= std::byte{1};
        auto bad = opened->load_unpacked(file_type::snapshot, *fid);
        REQUIRE_FALSE(bad);
        CHECK(bad.error().message.find(fid->str()) != std::string::npos);
        auto wrong = repo_t::open(m, "nope");
        REQUIRE_FALSE(wrong);
        CHECK(wrong.error().is(errc::wrong_password));
    }
    opt.version = 3;
    auto v3 = repo_t::init(mem, "pw", opt);
    REQUIRE_FALSE(v3);
    CHECK(v3.error().is(errc::unsupported));
    auto missing = repo_t::open(policies::backend::memory{}, "pw");
    REQUIRE_FALSE(missing);
    CHECK(missing.error().is(errc::not_found));
}

TEST_CASE("a deferred lock re-check: index and snapshot files wait for it, and fail after a conflicting lock", "[repo][lock]") {
    using repo_t = repo::repository<policies::backend::memory, policies::hash::sha256>;
    policies::backend::memory m;
    repo::init_options opt;
    opt.kdf = {1024, 8, 1};
    auto r = repo_t::init(m, "pw", opt);
    REQUIRE(r);
    auto const start = std::chrono::steady_clock::now();
    auto held = r->acquire_lock(false, {}, true);
    REQUIRE(held);
    CHECK(std::chrono::steady_clock::now() - start < std::chrono::milliseconds(150));  // the wait is not here
    // An exclusive lock written in the window (a prune that started at the same time).
    repo::lock ex;
    ex.time = timestamp::now(), ex.exclusive = true, ex.hostname = "other", ex.username = "u", ex.pid = 42;
    REQUIRE(r->save_unpacked(file_type::lock, ex.to_json()));
    CHECK(r->save_unpacked(file_type::key, "{}"));  // not a publishing file: no wait
    CHECK(std::chrono::steady_clock::now() - start < std::chrono::milliseconds(150));
    auto snap = r->save_unpacked(file_type::snapshot, "{}");
    CHECK(std::chrono::steady_clock::now() - start >= std::chrono::milliseconds(200));
    REQUIRE_FALSE(snap);
    CHECK(snap.error().is(errc::locked));
    CHECK(snap.error().message.find("PID 42 on other") != std::string::npos);
    CHECK(r->save_unpacked(file_type::index, "{}").error().is(errc::locked));
    // Without a conflict the same files are written once the re-check passed.
    policies::backend::memory m2;
    auto r2 = repo_t::init(m2, "pw", opt);
    REQUIRE(r2);
    auto held2 = r2->acquire_lock(false, {}, true);
    REQUIRE(held2);
    CHECK(r2->save_unpacked(file_type::snapshot, "{}"));
}

namespace {
// The memory backend, counting reads.
struct counting_memory {
    policies::backend::memory mem;
    std::shared_ptr<int> gets = std::make_shared<int>(0);
    std::string location() const { return mem.location(); }
    result<void> create() { return mem.create(); }
    result<void> put(handle const& h, byte_span d) { return mem.put(h, d); }
    result<void> get(handle const& h, std::uint64_t off, std::uint64_t len, bytes& out) {
        ++*gets;
        return mem.get(h, off, len, out);
    }
    result<std::uint64_t> stat(handle const& h) { return mem.stat(h); }
    result<void> list(file_type t, list_fn const& fn) { return mem.list(t, fn); }
    result<void> remove(handle const& h) { return mem.remove(h); }
};
}  // namespace

TEST_CASE("load_trees reads the trees of one pack with one request, in the order asked", "[repo][restore]") {
    using repo_t = repo::repository<counting_memory, policies::hash::sha256>;
    counting_memory backend;
    repo::init_options opt;
    opt.kdf = {1024, 8, 1};
    auto r = repo_t::init(backend, "pw", opt);
    REQUIRE(r);
    // Two packs: trees 0–4 in the first, 5–6 in the second.
    std::vector<id> ids;
    std::vector<std::string> names;
    for (int p = 0, t = 0; p < 2; ++p) {
        repo::pack_builder pack;
        for (int k = 0; k < (p == 0 ? 5 : 2); ++k, ++t) {
            repo::node n;
            n.name = "file-" + std::to_string(t);
            n.type = repo::node_type::file;
            auto const json = repo::tree_json({n});
            ids.push_back(policies::hash::sha256::digest(as_bytes(json)));
            names.push_back(n.name);
            pack.add(ids.back(), repo::blob_type::tree, 0, [&](bytes& out) { r->sealer().seal(as_bytes(json), out); });
        }
        auto const bytes_of_pack = pack.finish(r->sealer());
        REQUIRE(r->save_pack(bytes_of_pack, pack.entries()));
    }
    id missing = policies::hash::sha256::digest(as_bytes(std::string("no such tree")));
    std::vector<id> want{ids[3], ids[6], ids[0], missing, ids[4], ids[5]};
    *backend.gets = 0;
    auto trees = r->load_trees(want);
    CHECK(*backend.gets == 2);  // one ranged read a pack
    REQUIRE(trees.size() == want.size());
    for (std::size_t i : {0u, 1u, 2u, 4u, 5u}) {
        REQUIRE(trees[i]);
        REQUIRE(trees[i]->size() == 1);
        auto const k = std::size_t(std::find(ids.begin(), ids.end(), want[i]) - ids.begin());
        CHECK((*trees[i])[0].name == names[k]);
    }
    REQUIRE_FALSE(trees[3]);
    CHECK(trees[3].error().is(errc::not_found));
    // Blobs farther apart than the allowed gap are read separately.
    std::vector<repo::blob_location> locs;
    for (int i : {0, 4}) locs.push_back(*r->index().find(ids[std::size_t(i)], repo::blob_type::tree));
    *backend.gets = 0;
    std::size_t seen = 0;
    r->read_sealed(locs, [&](std::size_t, byte_span sealed, error const* failed) { seen += !failed && !sealed.empty(); }, 0);
    CHECK(seen == 2);
    CHECK(*backend.gets == 2);
}

TEST_CASE("a pack streamed to a staged file while it is built: same ID and bytes, invisible until committed", "[repo][pack][local]") {
    char tmpl[] = "/tmp/stash-unit-stage-XXXXXX";
    REQUIRE(::mkdtemp(tmpl));
    std::string const dir = tmpl;
    using repo_t = repo::repository<policies::backend::any, policies::hash::sha256>;
    repo::init_options opt;
    opt.kdf = {1024, 8, 1};
    auto r = repo_t::init(policies::backend::local(dir + "/repo"), "pw", opt);
    REQUIRE(r);
    auto packs = [&] {
        std::size_t n = 0;
        REQUIRE(r->backend().list(file_type::pack, [&](std::string_view, std::uint64_t) { ++n; }));
        return n;
    };

    // Three blobs, the buffer drained after the first two: offsets run on across the drain.
    std::vector<std::string> const plain = {std::string(300000, 'a'), "second", std::string(70000, 'c')};
    repo::pack_builder whole, piecewise;
    auto s = r->begin_pack_stream();
    REQUIRE(s);
    REQUIRE(*s);
    for (std::size_t k = 0; k < plain.size(); ++k) {
        auto const bid = policies::hash::sha256::digest(as_bytes(plain[k]));
        for (auto* b : {&whole, &piecewise})
            b->add(bid, repo::blob_type::data, 0, [&](bytes& out) { r->sealer().seal(as_bytes(plain[k]), out); });
        if (k == 1) REQUIRE(piecewise.drain([&](byte_span d) { return (*s)->append(d); }));
    }
    CHECK(piecewise.buffered() < piecewise.size());
    CHECK(piecewise.size() == whole.size());
    for (std::size_t k = 0; k < plain.size(); ++k) {
        CHECK(piecewise.entries()[k].offset == whole.entries()[k].offset);
        CHECK(piecewise.entries()[k].length == whole.entries()[k].length);
    }
    byte_span const expect = whole.finish(r->sealer());

    CHECK(packs() == 0);  // staged, not listed
    auto pid = r->save_pack(std::move(**s), piecewise.finish(r->sealer()), piecewise.entries());
    REQUIRE(pid);
    CHECK(packs() == 1);
    bytes stored;
    REQUIRE(r->backend().get({file_type::pack, pid->str()}, 0, 0, stored));
    // Sealing draws a fresh nonce per blob, so compare the layout and the name, not the bytes.
    CHECK(stored.size() == expect.size());
    CHECK(policies::hash::sha256::digest(stored) == *pid);
    for (std::size_t k = 0; k < plain.size(); ++k) {
        auto b = r->load_blob(repo::blob_type::data, policies::hash::sha256::digest(as_bytes(plain[k])));
        REQUIRE(b);
        CHECK(std::string(reinterpret_cast<char const*>(b->data()), b->size()) == plain[k]);
    }

    // A stream dropped without a commit leaves no file; a commit under an existing name is no error.
    {
        auto dropped = r->begin_pack_stream();
        REQUIRE(dropped);
        REQUIRE((*dropped)->append(as_bytes(std::string("partial"))));
    }
    auto again = r->backend().stage();
    REQUIRE(again);
    REQUIRE(again->append(stored));
    CHECK(r->backend().commit({file_type::pack, pid->str()}, std::move(*again)));
    CHECK(packs() == 1);
    std::size_t in_data = 0;
    for (auto const& e : std::filesystem::directory_iterator(dir + "/repo/data")) in_data += e.is_regular_file();
    CHECK(in_data == 0);

    // Another driver cannot stage: the repository then builds packs in memory.
    auto m = repo_t::init(policies::backend::memory(), "pw", opt);
    REQUIRE(m);
    auto none = m->begin_pack_stream();
    REQUIRE(none);
    CHECK_FALSE(*none);
    std::filesystem::remove_all(dir);
}

TEST_CASE("staged files written with O_DIRECT: any piece sizes, files at once, a write error reported", "[repo][pack][local]") {
    char tmpl[] = "/tmp/stash-unit-direct-XXXXXX";
    REQUIRE(::mkdtemp(tmpl));
    std::string const dir = tmpl;
    policies::backend::local b(dir);
    REQUIRE(b.create());
    constexpr std::size_t block = policies::backend::detail::direct_io::block_size;
    // Whether this file system takes O_DIRECT at all (tmpfs before Linux 6.6 does not).
    bool const direct_here = [&] {
        int fd = ::open((dir + "/probe").c_str(), O_WRONLY | O_CREAT | O_DIRECT, 0600);
        if (fd >= 0) ::close(fd), ::unlink((dir + "/probe").c_str());
        return fd >= 0;
    }();
    auto content = [](std::size_t n, unsigned seed) {
        bytes out(n);
        std::uint32_t x = seed * 2654435761u + 1;
        for (auto& c : out) x = x * 1664525u + 1013904223u, c = std::byte(x >> 24);
        return out;
    };
    // Pieces that end inside, on and across block and page boundaries; a total that is no
    // multiple of a page (its last part goes through the cache). No CHECK inside: threads call it.
    auto stage_and_commit = [&](unsigned seed, std::vector<std::size_t> const& pieces) -> result<void> {
        std::size_t total = 0;
        for (auto n : pieces) total += n;
        bytes const all = content(total, seed);
        auto f = b.stage();
        if (!f) return std::move(f).error();
        if (direct_here && !(::fcntl(f->fd(), F_GETFL) & O_DIRECT)) return make_error(errc::io, "not direct");
        std::size_t at = 0;
        for (auto n : pieces) {
            STASH_TRYV(f->append(byte_span(all).subspan(at, n)));
            at += n;
        }
        std::string const name = policies::hash::sha256::digest(all).str();
        STASH_TRYV(b.commit({file_type::pack, name}, std::move(*f)));
        bytes back;
        STASH_TRYV(b.get({file_type::pack, name}, 0, 0, back));
        if (back != all) return make_error(errc::corrupt, "pack " + name + " differs from what was appended");
        return {};
    };
    CHECK(stage_and_commit(1, {1, 4095, 4097, block - 3, block + 5, 3 * block + 123, 0}));
    CHECK(stage_and_commit(2, {block, block, 8192}));  // whole blocks and pages only
    CHECK(stage_and_commit(3, {100}));                 // less than a page: nothing direct

    // More files at once than there are blocks: each still gets its bytes, in order.
    std::vector<std::jthread> threads;
    std::atomic<int> ok{0};
    unsigned const files = unsigned(policies::backend::detail::direct_io::max_blocks) + 4;
    for (unsigned t = 0; t < files; ++t)
        threads.emplace_back([&, t] { ok += bool(stage_and_commit(10 + t, {block / 2, 2 * block + 7, block / 3})); });
    threads.clear();
    CHECK(ok == int(files));

    // A write the system refuses (a file size limit: EFBIG) fails the file's finish or a later
    // append, never silently.
    if (direct_here) {
        struct rlimit old {};
        REQUIRE(::getrlimit(RLIMIT_FSIZE, &old) == 0);
        auto const old_handler = std::signal(SIGXFSZ, SIG_IGN);
        struct rlimit small = old;
        small.rlim_cur = 2 * block;
        REQUIRE(::setrlimit(RLIMIT_FSIZE, &small) == 0);
        auto r = stage_and_commit(99, {block, block, block, 4096});  // (all of it direct)
        ::setrlimit(RLIMIT_FSIZE, &old);
        std::signal(SIGXFSZ, old_handler);
        REQUIRE_FALSE(r);
        CHECK(r.error().message.find("write a staged file in " + dir + "/data") != std::string::npos);
    }
    std::size_t in_data = 0;
    for (auto const& e : std::filesystem::directory_iterator(dir + "/data")) in_data += e.is_regular_file();
    CHECK(in_data == 0);  // a failed file left nothing behind
    std::filesystem::remove_all(dir);
}

namespace {
// The memory backend, counting reads per file type (thread-safe).
struct typed_counting_memory {
    policies::backend::memory mem;
    std::shared_ptr<std::array<std::atomic<int>, 6>> gets = std::make_shared<std::array<std::atomic<int>, 6>>();
    std::shared_ptr<std::atomic<int>> delay_ms = std::make_shared<std::atomic<int>>(0);  // a slow network
    int of(file_type t) const { return (*gets)[std::size_t(t)]; }
    void reset() {
        for (auto& g : *gets) g = 0;
    }
    std::string location() const { return mem.location(); }
    result<void> create() { return mem.create(); }
    result<void> put(handle const& h, byte_span d) { return mem.put(h, d); }
    result<void> get(handle const& h, std::uint64_t off, std::uint64_t len, bytes& out) {
        ++(*gets)[std::size_t(h.type)];
        std::this_thread::sleep_for(std::chrono::milliseconds(int(*delay_ms)));
        return mem.get(h, off, len, out);
    }
    result<std::uint64_t> stat(handle const& h) { return mem.stat(h); }
    result<void> list(file_type t, list_fn const& fn) { return mem.list(t, fn); }
    result<void> remove(handle const& h) { return mem.remove(h); }
};
std::size_t files_in(std::string const& dir) {
    std::size_t n = 0;
    if (std::filesystem::exists(dir))
        for (auto const& e : std::filesystem::recursive_directory_iterator(dir)) n += e.is_regular_file();
    return n;
}
void damage(std::string const& path) {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(10);
    char const c = char(f.get() ^ 0x5a);
    f.seekp(10);
    f.put(c);
}
}  // namespace

TEST_CASE("cache: snapshots, index files and tree packs are fetched once, checked, and follow the repository", "[repo][cache]") {
    namespace be = policies::backend;
    using repo_t = repo::repository<be::any, policies::hash::sha256>;
    char tmpl[] = "/tmp/stash-unit-cache-XXXXXX";
    REQUIRE(::mkdtemp(tmpl));
    std::string const base = std::string(tmpl) + "/cache";
    typed_counting_memory backend;
    repo::init_options opt;
    opt.kdf = {1024, 8, 1};
    std::vector<id> trees;
    id data_blob, data_pack, tree_pack, snap;
    {
        auto r = repo_t::init(be::any(backend), "pw", opt);  // no cache
        REQUIRE(r);
        repo::pack_builder tp, dp;
        for (int t = 0; t < 5; ++t) {
            repo::node n;
            n.name = "file-" + std::to_string(t);
            n.type = repo::node_type::file;
            auto const json = repo::tree_json({n});
            trees.push_back(policies::hash::sha256::digest(as_bytes(json)));
            tp.add(trees.back(), repo::blob_type::tree, 0, [&](bytes& out) { r->sealer().seal(as_bytes(json), out); });
        }
        std::string const content(5000, 'd');
        data_blob = policies::hash::sha256::digest(as_bytes(content));
        dp.add(data_blob, repo::blob_type::data, 0, [&](bytes& out) { r->sealer().seal(as_bytes(content), out); });
        auto const t_bytes = tp.finish(r->sealer());
        tree_pack = *r->save_pack(t_bytes, tp.entries());
        auto const d_bytes = dp.finish(r->sealer());
        data_pack = *r->save_pack(d_bytes, dp.entries());
        REQUIRE(r->flush_index());
        snap = *r->save_unpacked(file_type::snapshot, R"({"time":"2026-12-03T00:00:00Z","tree":")" + trees[0].str() + R"(","paths":["/x"]})");
    }
    std::string repo_id;
    // One command: what it reads comes from the backend and stays.
    auto open = [&] {
        auto r = repo_t::open(be::any(be::cache(backend, base)), "pw");
        REQUIRE(r);
        repo_id = r->cfg().id;
        return std::move(*r);
    };
    auto run = [&](repo_t& r) {
        REQUIRE(r.load_index());
        REQUIRE(r.load_snapshot(snap));
        auto got = r.load_trees(trees);
        for (std::size_t i = 0; i < trees.size(); ++i) {
            REQUIRE(got[i]);
            CHECK((*got[i])[0].name == "file-" + std::to_string(i));
        }
        auto d = r.load_blob(repo::blob_type::data, data_blob);
        REQUIRE(d);
        CHECK(d->size() == 5000);
    };
    backend.reset();
    {
        auto r = open();
        run(r);
        run(r);
    }
    CHECK(backend.of(file_type::index) == 1);
    CHECK(backend.of(file_type::snapshot) == 1);
    CHECK(backend.of(file_type::pack) == 1 + 2);  // the tree pack whole, once; the data pack each time
    std::string const dir = base + "/" + repo_id;
    CHECK(std::filesystem::exists(base + "/CACHEDIR.TAG"));
    CHECK(std::filesystem::exists(dir + "/version"));
    std::string const pack_copy = dir + "/data/" + tree_pack.str().substr(0, 2) + "/" + tree_pack.str();
    CHECK(std::filesystem::exists(pack_copy));
    CHECK_FALSE(std::filesystem::exists(dir + "/data/" + data_pack.str().substr(0, 2) + "/" + data_pack.str()));
    CHECK(files_in(dir + "/index") == 1);
    CHECK(files_in(dir + "/snapshots") == 1);

    SECTION("the next command reads them locally") {
        backend.reset();
        auto r = open();
        run(r);
        CHECK(backend.of(file_type::index) == 0);
        CHECK(backend.of(file_type::snapshot) == 0);
        CHECK(backend.of(file_type::pack) == 1);  // the data blob
    }
    SECTION("packs of trees are kept as they are written") {
        std::filesystem::remove_all(dir + "/data");
        id new_tree, new_pack;
        {
            auto r = open();
            REQUIRE(r.load_index());
            repo::node n;
            n.name = "written-here";
            n.type = repo::node_type::file;
            auto const json = repo::tree_json({n});
            new_tree = policies::hash::sha256::digest(as_bytes(json));
            repo::pack_builder tp;
            tp.add(new_tree, repo::blob_type::tree, 0, [&](bytes& out) { r.sealer().seal(as_bytes(json), out); });
            auto const t_bytes = tp.finish(r.sealer());
            new_pack = *r.save_pack(t_bytes, tp.entries());
            REQUIRE(r.flush_index());
            backend.reset();
            CHECK((*r.load_tree(new_tree))[0].name == "written-here");  // read back from the copy
            CHECK(backend.of(file_type::pack) == 0);
        }
        CHECK(files_in(dir + "/data") == 1);
        backend.reset();
        auto r = open();
        REQUIRE(r.load_index());
        CHECK((*r.load_tree(new_tree))[0].name == "written-here");
        CHECK(backend.of(file_type::pack) == 0);
        CHECK(files_in(dir + "/data") == 1);  // the index says it holds trees: kept
    }
    SECTION("damaged copies are fetched again and repaired") {
        std::string index_copy;
        for (auto const& e : std::filesystem::directory_iterator(dir + "/index")) index_copy = e.path();
        damage(index_copy);
        damage(pack_copy);
        backend.reset();
        auto r = open();
        run(r);
        CHECK(backend.of(file_type::index) == 1);
        CHECK(backend.of(file_type::pack) == 1 + 1);
        std::ifstream in(pack_copy, std::ios::binary);
        std::string const b(std::istreambuf_iterator<char>(in), {});
        CHECK(policies::hash::sha256::digest(as_bytes(b)) == tree_pack);
    }
    SECTION("threads asking for one pack wait for one fetch") {
        std::filesystem::remove(pack_copy);
        backend.reset();
        auto r = open();
        REQUIRE(r.load_index());
        *backend.delay_ms = 50;
        std::vector<std::jthread> ts;
        std::atomic<int> ok{0};
        for (int t = 0; t < 8; ++t)
            ts.emplace_back([&] {
                for (auto& tr : r.load_trees(trees)) ok += bool(tr);
            });
        ts.clear();
        *backend.delay_ms = 0;
        CHECK(ok == 8 * 5);
        CHECK(backend.of(file_type::pack) == 1);
    }
    SECTION("files gone from the repository go from the cache") {
        REQUIRE(backend.mem.remove({file_type::snapshot, snap.str()}));
        auto r = open();
        std::size_t n = 0;
        REQUIRE(r.backend().list(file_type::snapshot, [&](std::string_view, std::uint64_t) { ++n; }));
        CHECK(n == 0);
        CHECK(files_in(dir + "/snapshots") == 0);
        r.backend().cache_packs([] { return [](std::string_view) { return false; }; });  // no pack holds trees any more
        CHECK(files_in(dir + "/data") == 0);
        CHECK(files_in(dir + "/index") == 1);
    }
    SECTION("a cache of another version is left alone") {
        std::filesystem::remove_all(dir);
        std::filesystem::create_directories(dir);
        { std::ofstream(dir + "/version") << "2\n"; }
        int warned = 0;
        be::cache_options co;
        co.on_warning = [&](error const& e) {
            ++warned;
            CHECK(std::string(e.what()).find("version") != std::string::npos);
        };
        backend.reset();
        {
            auto r = repo_t::open(be::any(be::cache(backend, base, co)), "pw");
            REQUIRE(r);
            run(*r);
        }
        CHECK(warned == 1);
        CHECK(backend.of(file_type::index) == 1);
        CHECK(files_in(dir) == 1);  // the version file only
    }
    std::filesystem::remove_all(tmpl);
}
