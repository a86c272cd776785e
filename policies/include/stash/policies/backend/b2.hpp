// Backblaze B2 through its native API (b2api v2).
#pragma once

#include <stash/concepts/backend.hpp>
#include <stash/core/hex.hpp>
#include <stash/policies/backend/detail/object_store.hpp>
#include <stash/policies/backend/detail/shared_credential.hpp>
#include <stash/policies/net/http.hpp>
#include <stash/policies/net/sigv4.hpp>

#include <boost/json.hpp>

#include <openssl/evp.h>

#include <mutex>
#include <tuple>
#include <vector>

namespace stash::policies::backend {

struct b2_options {
    std::string bucket, prefix;
    std::string account_id, key;                        ///< B2_ACCOUNT_ID (or key ID), B2_ACCOUNT_KEY
    std::string api_url = "https://api.backblazeb2.com";  ///< where b2_authorize_account is; B2_API_URL overrides (tests)
    unsigned list_page = 1000;
    net::http_options http;
};

/** A repository in a B2 bucket, laid out as restic lays it out (`<prefix>/data/<2 hex>/<id>`, …):
    `b2_authorize_account` (Basic auth with the key) gives the API and download URLs and a token;
    uploads go to URLs from `b2_get_upload_url` (each used by one upload at a time, kept for reuse)
    with the content's SHA-1; downloads by name with a Range; `b2_list_file_names` pages by
    `nextFileName`; a remove deletes every version of the file. An expired token (401) is renewed,
    up to three times a request, by one thread while the others wait for it. `create` makes the
    bucket (allPrivate) when it does not exist.

    Repository string (as restic's): `b2:<bucket>:/<prefix>`.

    @par Concepts
    `stash::backend`. Thread-safe.
*/
class b2 {
public:
    static result<b2> open(b2_options opt) {
        if (opt.bucket.empty()) return make_error(errc::invalid_argument, "b2: no bucket given");
        if (opt.account_id.empty() || opt.key.empty()) return make_error(errc::invalid_argument, "b2: set B2_ACCOUNT_ID and B2_ACCOUNT_KEY");
        opt.prefix = detail::clean_prefix(std::move(opt.prefix));
        b2 b;
        b.st_ = std::make_shared<state>();
        b.location_ = "b2:" + opt.bucket + ":/" + opt.prefix;
        b.opt_ = std::make_shared<b2_options const>(std::move(opt));
        return b;
    }

    static result<b2_options> parse(std::string_view repo) {
        auto where = detail::split_container(repo, "b2", "bucket");
        if (!where) return std::move(where).error();
        b2_options o;
        std::tie(o.bucket, o.prefix) = std::move(*where);
        o.account_id = detail::env("B2_ACCOUNT_ID");
        o.key = detail::env("B2_ACCOUNT_KEY");
        if (auto u = detail::env("B2_API_URL"); !u.empty()) o.api_url = u;
        return o;
    }

    std::string location() const { return location_; }

    result<void> create() {
        auto s = st_->session.get([this](session_info const*) { return authorize(true); });
        if (!s) return std::move(s).error();
        return detail::must_be_new(*this, location_);
    }

    result<void> put(handle const& h, byte_span data) {
        std::array<unsigned char, 20> sha1{};
        unsigned n = 0;
        EVP_Digest(data.data(), data.size(), sha1.data(), &n, EVP_sha1(), nullptr);
        auto const name = detail::object_key(opt_->prefix, h);
        for (int attempt = 0;; ++attempt) {
            auto up = take_upload_url(attempt > 0);
            if (!up) return std::move(up).error();
            auto r = up->client->send(net::http::verb::post, up->path,
                                      {{"Authorization", up->token}, {"X-Bz-File-Name", net::sigv4::uri_encode(name, true)},
                                       {"Content-Type", "application/octet-stream"}, {"X-Bz-Content-Sha1", to_hex(std::as_bytes(std::span(sha1)))}},
                                      data);
            if (!r) return error{r.error().code, location_ + ": save " + h.str() + ": " + r.error().what()};
            // B2 documents 401 (expired) and 503 (busy pod) on uploads as "get a new upload URL".
            if ((r->status == 401 || r->status == 503) && attempt == 0) continue;
            if (r->status != 200) return fail(*r, "save " + h.str());
            give_back(std::move(*up));
            return {};
        }
    }

    result<void> get(handle const& h, std::uint64_t off, std::uint64_t len, bytes& out) {
        auto const range = detail::byte_range(off, len);
        net::header_list hs;
        if (!range.empty()) hs.emplace_back("Range", range);
        auto r = download(net::http::verb::get, h, hs);
        if (!r) return std::move(r).error();
        return detail::take_range(*r, location_, h, range, len, out, [this](net::http_response const& x, std::string const& w) { return fail(x, w); });
    }

    result<std::uint64_t> stat(handle const& h) {
        auto r = download(net::http::verb::head, h, {});
        if (!r) return std::move(r).error();
        return detail::head_size(*r, location_, h, [this](net::http_response const& x, std::string const& w) { return fail(x, w); });
    }

    result<void> list(file_type t, list_fn const& fn) {
        std::string const dir = detail::list_prefix(opt_->prefix, t);
        std::string start;
        for (;;) {
            auto s = session();
            if (!s) return std::move(s).error();
            boost::json::object q{{"bucketId", (*s)->bucket_id}, {"prefix", dir}, {"maxFileCount", opt_->list_page}};
            if (!start.empty()) q["startFileName"] = start;
            auto v = call("b2_list_file_names", q, std::string("list ") + dir_name(t));
            if (!v) return std::move(v).error();
            if (auto const* files = v->get_object().if_contains("files"); files && files->is_array())
                for (auto const& f : files->get_array()) {
                    auto const* n = f.is_object() ? f.get_object().if_contains("fileName") : nullptr;
                    auto const* len = f.is_object() ? f.get_object().if_contains("contentLength") : nullptr;
                    if (n && n->is_string()) detail::report_listed(n->get_string(), len && len->is_number() ? len->to_number<std::uint64_t>() : 0, fn);
                }
            auto const* next = v->get_object().if_contains("nextFileName");
            if (!next || !next->is_string()) return {};
            start = std::string(next->get_string());
        }
    }

    result<void> remove(handle const& h) {
        auto const name = detail::object_key(opt_->prefix, h);
        auto s = session();
        if (!s) return std::move(s).error();
        auto v = call("b2_list_file_versions", {{"bucketId", (*s)->bucket_id}, {"startFileName", name}, {"prefix", name}, {"maxFileCount", 100}}, "remove " + h.str());
        if (!v) return std::move(v).error();
        bool any = false;
        if (auto const* files = v->get_object().if_contains("files"); files && files->is_array())
            for (auto const& f : files->get_array()) {
                if (!f.is_object() || f.get_object().if_contains("fileName") == nullptr || f.at("fileName") != boost::json::value(name)) continue;
                auto d = call("b2_delete_file_version", {{"fileName", name}, {"fileId", f.at("fileId")}}, "remove " + h.str());
                if (!d) return std::move(d).error();
                any = true;
            }
        if (!any) return make_error(errc::not_found, location_ + ": remove " + h.str() + ": not found");
        return {};
    }

private:
    struct session_info {
        std::shared_ptr<net::http_client> api, download;
        std::string api_path, download_path, token, account_id, bucket_id;
    };
    struct upload_url {
        std::shared_ptr<net::http_client> client;
        std::string path, token;
    };
    using session_ptr = std::shared_ptr<session_info const>;
    struct state {
        detail::shared_credential<session_info> session;
        std::mutex mu;  // guards idle_uploads
        std::vector<upload_url> idle_uploads;
    };

    b2() = default;

    static result<std::pair<std::shared_ptr<net::http_client>, std::string>> client_for(std::string const& url, net::http_options const& http) {
        auto o = net::origin::parse(url);
        if (!o) return std::move(o).error();
        auto c = net::http_client::make(*o, http);
        if (!c) return std::move(c).error();
        auto const p = url.find('/', url.find("://") + 3);
        std::string path = p == std::string::npos ? "" : url.substr(p);
        while (path.ends_with('/')) path.pop_back();
        return std::pair{std::shared_ptr<net::http_client>(std::move(*c)), path};
    }

    result<session_ptr> session() {
        return st_->session.get([this](session_info const*) { return authorize(false); });
    }
    // `attempt(session)`, on a renewed session while `rejected(outcome)` (see shared_credential).
    template <class Attempt, class Rejected>
    auto with_session(Attempt&& attempt, Rejected&& rejected) {
        return st_->session.with_renewal(session(), [this](session_info const*) { return authorize(false); }, attempt, rejected);
    }

    // A new session: authorizes, and finds (or creates) the bucket.
    result<session_info> authorize(bool create_bucket) {
        auto const what = "b2: authorization at " + opt_->api_url;
        auto auth = client_for(opt_->api_url, opt_->http);
        if (!auth) return std::move(auth).error();
        auto const basic = "Basic " + to_base64(as_bytes(opt_->account_id + ":" + opt_->key));
        auto r = auth->first->send(net::http::verb::get, auth->second + "/b2api/v2/b2_authorize_account", {{"Authorization", basic}});
        if (!r) return error{r.error().code, location_ + ": " + what + ": " + r.error().what()};
        if (r->status != 200) {
            auto e = fail(*r, what);
            if (r->status == 401) e = make_error(errc::unauthorized, e.message + " (check B2_ACCOUNT_ID and B2_ACCOUNT_KEY)");
            return e;
        }
        boost::system::error_code ec;
        auto v = boost::json::parse(r->body_text(), ec);
        if (ec || !v.is_object()) return make_error(errc::io, location_ + ": " + what + ": the answer is not JSON");
        auto str = [&](char const* k) { auto const* x = v.get_object().if_contains(k); return x && x->is_string() ? std::string(x->get_string()) : std::string(); };
        session_info s;
        s.token = str("authorizationToken"), s.account_id = str("accountId");
        auto api = client_for(str("apiUrl"), opt_->http);
        if (!api) return std::move(api).error();
        auto dl = client_for(str("downloadUrl"), opt_->http);
        if (!dl) return std::move(dl).error();
        std::tie(s.api, s.api_path) = std::move(*api);
        std::tie(s.download, s.download_path) = std::move(*dl);
        auto bucket = raw_call(s, "b2_list_buckets", {{"accountId", s.account_id}, {"bucketName", opt_->bucket}});
        if (!bucket) return error{bucket.error().code, location_ + ": find bucket " + opt_->bucket + ": " + bucket.error().what()};
        if (auto const* bs = bucket->get_object().if_contains("buckets"); bs && bs->is_array() && !bs->get_array().empty())
            s.bucket_id = std::string(bs->get_array()[0].at("bucketId").as_string());
        if (s.bucket_id.empty()) {
            if (!create_bucket) return make_error(errc::not_found, location_ + ": bucket " + opt_->bucket + " does not exist");
            auto made = raw_call(s, "b2_create_bucket", {{"accountId", s.account_id}, {"bucketName", opt_->bucket}, {"bucketType", "allPrivate"}});
            if (!made) return error{made.error().code, location_ + ": create bucket " + opt_->bucket + ": " + made.error().what()};
            s.bucket_id = std::string(made->at("bucketId").as_string());
        }
        std::lock_guard lk(st_->mu);
        st_->idle_uploads.clear();  // their tokens came with the old session
        return s;
    }

    // One API call without renewal; B2's error JSON is {"status","code","message"}.
    result<boost::json::value> raw_call(session_info const& s, std::string const& op, boost::json::object const& body) {
        auto const text = boost::json::serialize(body);
        auto r = s.api->send(net::http::verb::post, s.api_path + "/b2api/v2/" + op, {{"Authorization", s.token}, {"Content-Type", "application/json"}}, as_bytes(text));
        if (!r) return std::move(r).error();
        if (r->status != 200) return fail(*r, op);
        boost::system::error_code ec;
        auto v = boost::json::parse(r->body_text(), ec);
        if (ec || !v.is_object()) return make_error(errc::io, location_ + ": " + op + ": the answer is not a JSON object");
        return v;
    }
    // An API call on the current session, renewed on 401 (expired_auth_token).
    result<boost::json::value> call(std::string const& op, boost::json::object const& body, std::string const& what) {
        auto v = with_session([&](session_ptr const& s) { return raw_call(*s, op, body); },
                              [](result<boost::json::value> const& x) { return !x && x.error().is(errc::unauthorized); });
        if (!v) return error{v.error().code, v.error().what() + " (" + what + ")"};
        return v;
    }

    result<net::http_response> download(net::http::verb v, handle const& h, net::header_list hs) {
        auto const target = "/file/" + net::sigv4::uri_encode(opt_->bucket, false) + "/" + net::sigv4::uri_encode(detail::object_key(opt_->prefix, h), true);
        return with_session(
            [&](session_ptr const& s) -> result<net::http_response> {
                auto headers = hs;
                headers.emplace_back("Authorization", s->token);
                auto r = s->download->send(v, s->download_path + target, headers);
                if (!r) return error{r.error().code, location_ + ": " + r.error().what()};
                return r;
            },
            [](result<net::http_response> const& r) { return r && r->status == 401; });
    }

    result<upload_url> take_upload_url(bool fresh) {
        if (!fresh) {
            std::lock_guard lk(st_->mu);
            if (!st_->idle_uploads.empty()) {
                auto u = std::move(st_->idle_uploads.back());
                st_->idle_uploads.pop_back();
                return u;
            }
        }
        auto s = session();
        if (!s) return std::move(s).error();
        auto v = call("b2_get_upload_url", {{"bucketId", (*s)->bucket_id}}, "get an upload URL");
        if (!v) return std::move(v).error();
        auto const* url = v->get_object().if_contains("uploadUrl");
        auto const* tok = v->get_object().if_contains("authorizationToken");
        if (!url || !url->is_string() || !tok || !tok->is_string()) return make_error(errc::io, location_ + ": b2_get_upload_url: no uploadUrl or token");
        auto c = client_for(std::string(url->get_string()), opt_->http);
        if (!c) return std::move(c).error();
        return upload_url{c->first, c->second, std::string(tok->get_string())};
    }
    void give_back(upload_url u) {
        std::lock_guard lk(st_->mu);
        if (st_->idle_uploads.size() < 16) st_->idle_uploads.push_back(std::move(u));
    }

    error fail(net::http_response const& r, std::string const& what) const {
        std::string detail;
        boost::system::error_code ec;
        auto v = boost::json::parse(r.body_text(), ec);
        if (!ec && v.is_object()) {
            auto const& o = v.get_object();
            for (char const* k : {"code", "message"})
                if (auto const* x = o.if_contains(k); x && x->is_string() && !x->get_string().empty())
                    detail += (detail.empty() ? "" : ": ") + std::string(x->get_string());
        }
        auto e = net::status_error(r.status, location_ + ": " + what, detail);
        return e;
    }

    std::shared_ptr<state> st_;
    std::shared_ptr<b2_options const> opt_;
    std::string location_;
};

static_assert(stash::backend<b2>);

}  // namespace stash::policies::backend
