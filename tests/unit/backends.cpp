// Backend drivers without their servers: AWS Signature V4 against AWS's published examples, the
// retry and fault decorators over the memory backend, repository-string parsing, and the shared
// credential the token-based drivers renew.
#include <stash/policies/backend/any.hpp>
#include <stash/policies/backend/azure.hpp>
#include <stash/policies/backend/detail/shared_credential.hpp>
#include <stash/policies/backend/fault.hpp>
#include <stash/policies/backend/memory.hpp>
#include <stash/policies/backend/rest.hpp>
#include <stash/policies/backend/retry.hpp>
#include <stash/policies/backend/s3.hpp>

#include "result_printer.hpp"

#include <atomic>
#include <set>
#include <thread>

using namespace stash;
namespace sigv4 = stash::net::sigv4;
namespace be = stash::policies::backend;

namespace {
// The AWS Signature Version 4 test suite's fixed inputs.
sigv4::credentials const suite_creds{"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", ""};
sigv4::request suite_request(std::string method, std::vector<std::pair<std::string, std::string>> query = {},
                             std::vector<std::pair<std::string, std::string>> extra = {}) {
    sigv4::request r{std::move(method), "/", std::move(query), {{"Host", "example.amazonaws.com"}, {"X-Amz-Date", "20150830T123600Z"}}, sigv4::empty_payload_hash};
    for (auto& h : extra) r.headers.push_back(std::move(h));
    return r;
}
std::string id64(int i) {
    char b[65];
    std::snprintf(b, sizeof b, "%064x", i);
    return b;
}
}  // namespace

TEST_CASE("SigV4: AWS's test suite and the S3 GET Object example", "[backend][sigv4]") {
    auto sig = [](sigv4::request const& r) { return sigv4::sign(r, suite_creds, "us-east-1", "service", "20150830T123600Z"); };
    auto v = sig(suite_request("GET"));
    CHECK(v.canonical_request == "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n" + std::string(sigv4::empty_payload_hash));
    CHECK(v.string_to_sign == "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\nbb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63");
    CHECK(v.signature == "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");  // get-vanilla
    CHECK(sig(suite_request("POST")).signature == "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b");  // post-vanilla
    auto q = sig(suite_request("GET", {{"Param2", "value2"}, {"Param1", "value1"}}));  // get-vanilla-query-order-key-case
    CHECK(q.signature == "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500");
    CHECK(sig(suite_request("POST", {}, {{"My-Header1", "VALUE1"}})).signature == "cdbc9802e29d2942e5e10b5bccfdd67c5f22c7c4e8ae67b53629efa58b974b7d");

    // S3's documented example: GET /test.txt, Range bytes=0-9, signed payload hash of an empty body.
    sigv4::request s3{"GET", "/test.txt", {}, {{"Host", "examplebucket.s3.amazonaws.com"}, {"Range", "bytes=0-9"},
                      {"x-amz-content-sha256", sigv4::empty_payload_hash}, {"x-amz-date", "20130524T000000Z"}}, sigv4::empty_payload_hash};
    auto g = sigv4::sign(s3, {"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", ""}, "us-east-1", "s3", "20130524T000000Z");
    CHECK(g.string_to_sign == "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972");
    CHECK(g.authorization ==
          "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,"
          "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
    CHECK(sigv4::uri_encode("data/ab/x y+z", true) == "data/ab/x%20y%2Bz");
}

TEST_CASE("repository strings: s3 and rest", "[backend][parse]") {
    ::setenv("AWS_ACCESS_KEY_ID", "AK", 1);
    ::setenv("AWS_SECRET_ACCESS_KEY", "SK", 1);
    auto o = be::s3::parse("s3:http://127.0.0.1:9000/bucket/some/prefix");
    REQUIRE(o);
    CHECK(o->endpoint == "http://127.0.0.1:9000");
    CHECK(o->bucket == "bucket");
    CHECK(o->prefix == "some/prefix");
    CHECK(o->credentials.access_key_id == "AK");
    auto aws = be::s3::parse("s3:s3.amazonaws.com/bucket");
    REQUIRE(aws);
    CHECK(aws->endpoint == "https://s3.amazonaws.com");
    CHECK(aws->prefix.empty());
    CHECK(be::s3::parse("s3:host-only").error().is(errc::invalid_argument));
    ::unsetenv("AWS_SECRET_ACCESS_KEY");
    CHECK(be::s3::parse("s3:h/b").error().is(errc::invalid_argument));  // a key id without its secret
    ::unsetenv("AWS_ACCESS_KEY_ID");

    auto r = be::rest::open("rest:http://user:p%40ss@127.0.0.1:8000/repo/");
    REQUIRE(r);
    CHECK(r->location() == "rest:http://127.0.0.1:8000/repo");  // the password never shows
    CHECK(be::rest::open("rest:127.0.0.1:8000").error().is(errc::invalid_argument));
}

TEST_CASE("retry over fault: transient faults are retried, permanent ones are not, writes stay idempotent", "[backend][retry]") {
    be::memory mem;
    be::fault_options fo;
    fo.error_rate = 0.3;
    fo.seed = 42;
    be::fault<be::memory> faulty(mem, fo);
    be::retry_options ro;
    ro.initial = std::chrono::milliseconds(1);
    ro.attempts = 20;
    unsigned retries = 0;
    ro.on_retry = [&](error const&, unsigned, std::chrono::milliseconds) { ++retries; };
    be::any b = be::retry(faulty, ro);
    REQUIRE(b.create());
    std::map<std::string, std::string> want;
    for (int i = 0; i < 200; ++i) {
        std::string const body = "file " + std::to_string(i);
        REQUIRE(b.put({file_type::lock, id64(i)}, as_bytes(body)));
        want[id64(i)] = body;
    }
    for (auto const& [name, body] : want) {
        bytes got;
        REQUIRE(b.get({file_type::lock, name}, 0, 0, got));
        CHECK(std::string(reinterpret_cast<char const*>(got.data()), got.size()) == body);
    }
    std::set<std::string> listed;
    std::size_t calls = 0;
    REQUIRE(b.list(file_type::lock, [&](std::string_view n, std::uint64_t) { listed.emplace(n), ++calls; }));
    CHECK(listed.size() == want.size());
    CHECK(calls == want.size());  // a listing retried after a "lost answer" repeats nothing
    for (int i = 0; i < 50; ++i) REQUIRE(b.remove({file_type::lock, id64(i)}));
    CHECK(b.stat({file_type::lock, id64(3)}).error().is(errc::not_found));  // permanent: returned at once
    CHECK(retries > 50);

    // Every call fails: the last error comes back with the number of tries.
    be::fault_options always;
    always.error_rate = 1;
    be::retry_options three;
    three.attempts = 3;
    three.initial = std::chrono::milliseconds(1);
    be::retry<be::fault<be::memory>> hopeless(be::fault(mem, always), three);
    auto e = hopeless.stat({file_type::lock, id64(100)});
    REQUIRE(!e);
    CHECK(e.error().is(errc::io));
    CHECK(e.error().what().find("gave up after 3 tries") != std::string::npos);

    // A permanent injected fault names the operation and the file.
    be::fault_options perm;
    perm.fail = "put:pack";
    be::retry<be::fault<be::memory>> denied(be::fault(mem, perm), three);
    auto p = denied.put({file_type::pack, id64(7)}, as_bytes(std::string("x")));
    REQUIRE(!p);
    CHECK(p.error().is(errc::forbidden));
    CHECK(p.error().what().find("put data/" + id64(7)) != std::string::npos);
    CHECK(denied.put({file_type::index, id64(7)}, as_bytes(std::string("x"))));
}

TEST_CASE("Azure Shared Key: the string to sign of Microsoft's documented example", "[backend][azure]") {
    // "Authorize with Shared Key", Blob service example: Get Container Metadata with a timeout.
    auto const sts = be::azure::string_to_sign("GET", {{"x-ms-date", "Fri, 26 Jun 2015 23:39:12 GMT"}, {"x-ms-version", "2015-02-21"}}, "myaccount",
                                               "/mycontainer", {{"restype", "container"}, {"comp", "metadata"}, {"timeout", "20"}});
    CHECK(sts == "GET\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:Fri, 26 Jun 2015 23:39:12 GMT\nx-ms-version:2015-02-21\n/myaccount/mycontainer\n"
                 "comp:metadata\nrestype:container\ntimeout:20");
    // Content-Length is empty when zero, and present otherwise; the range and type headers take their places.
    auto const put = be::azure::string_to_sign("PUT", {{"content-length", "0"}, {"content-type", "application/octet-stream"}, {"x-ms-blob-type", "BlockBlob"},
                                                       {"x-ms-date", "D"}, {"x-ms-version", "V"}}, "acct", "/acct/c/b", {});
    CHECK(put == "PUT\n\n\n\n\napplication/octet-stream\n\n\n\n\n\n\nx-ms-blob-type:BlockBlob\nx-ms-date:D\nx-ms-version:V\n/acct/acct/c/b");
}

TEST_CASE("shared credential: requests that see one token rejected wait for a single renewal", "[backend][credential]") {
    be::detail::shared_credential<int> cred;
    std::atomic<int> fetches{0};
    auto const fetch = [&](int const* previous) -> result<int> {
        ++fetches;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));  // a slow auth service
        return previous ? *previous + 1 : 1;
    };
    auto first = cred.get(fetch);
    REQUIRE(first);
    CHECK(**first == 1);
    CHECK(**cred.get(fetch) == 1);  // cached
    // Eight requests in flight all find token 1 rejected.
    std::vector<std::thread> ts;
    std::vector<int> seen(8);
    for (int i = 0; i < 8; ++i) ts.emplace_back([&, i] { seen[i] = **cred.renew(*first, fetch); });
    for (auto& t : ts) t.join();
    CHECK(fetches == 2);
    CHECK(std::set<int>(seen.begin(), seen.end()) == std::set<int>{2});
    // A request that saw token 2 rejected gets token 3; a failing fetch is reported and keeps the last.
    CHECK(**cred.renew(*cred.get(fetch), fetch) == 3);
    auto e = cred.renew(*cred.get(fetch), [](int const*) -> result<int> { return make_error(errc::unauthorized, "auth: HTTP 401"); });
    REQUIRE(!e);
    CHECK(e.error().is(errc::unauthorized));
    CHECK(**cred.get(fetch) == 3);
}

TEST_CASE("shared credential: a rejected request is retried on a renewed credential, a few times at most", "[backend][credential]") {
    using cred_t = be::detail::shared_credential<int>;
    cred_t cred;
    int fetches = 0;
    auto const fetch = [&](int const* previous) -> result<int> { return ++fetches, previous ? *previous + 1 : 1; };
    std::vector<int> tried;
    // The server accepts tokens from 3 on: two renewals.
    auto attempt = [&](cred_t::ptr const& t) -> result<int> { return tried.push_back(*t), 200 + *t; };
    auto const rejected_below = [](int n) { return [n](result<int> const& r) { return r && *r < 200 + n; }; };
    auto r = cred.with_renewal(cred.get(fetch), fetch, attempt, rejected_below(3));
    REQUIRE(r);
    CHECK(*r == 203);
    CHECK(tried == std::vector<int>{1, 2, 3});
    // A server that never accepts: the first try and max_renewals more, then its answer as it is.
    tried.clear();
    r = cred.with_renewal(cred.get(fetch), fetch, attempt, rejected_below(1000));
    REQUIRE(r);
    CHECK(tried.size() == std::size_t(1 + cred_t::max_renewals));
    CHECK(*r == 200 + tried.back());
    // A credential that cannot be had is the error; nothing is attempted.
    tried.clear();
    r = cred.with_renewal(make_error(errc::unauthorized, "auth: HTTP 401"), fetch, attempt, rejected_below(0));
    REQUIRE_FALSE(r);
    CHECK(r.error().is(errc::unauthorized));
    CHECK(tried.empty());
}
