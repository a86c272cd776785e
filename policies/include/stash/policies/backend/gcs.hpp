// Google Cloud Storage through its JSON API, authorized with a service account (OAuth 2.0 JWT grant).
#pragma once

#include <stash/concepts/backend.hpp>
#include <stash/policies/backend/detail/object_store.hpp>
#include <stash/policies/backend/detail/shared_credential.hpp>
#include <stash/core/hex.hpp>
#include <stash/policies/net/http.hpp>
#include <stash/policies/net/sigv4.hpp>

#include <boost/json.hpp>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include <chrono>
#include <fstream>
#include <tuple>

namespace stash::policies::backend {

struct gcs_options {
    std::string bucket, prefix;
    std::string project_id;              ///< for creating the bucket (GOOGLE_PROJECT_ID)
    std::string service_account_json;    ///< the key file's contents
    std::string endpoint = "https://storage.googleapis.com";  ///< GOOGLE_STORAGE_ENDPOINT overrides (tests)
    unsigned list_page = 1000;
    net::http_options http;
};

namespace detail {
inline std::string base64url(byte_span b) {
    std::string s = to_base64(b);
    while (!s.empty() && s.back() == '=') s.pop_back();
    for (char& c : s) c = c == '+' ? '-' : c == '/' ? '_' : c;
    return s;
}
inline std::string form_escape(std::string_view s) { return net::sigv4::uri_encode(s, false); }
}  // namespace detail

/** Access tokens for a service account (RFC 7523 JWT bearer grant, as Google documents it for
    server-to-server OAuth 2.0): a JWT signed RS256 with the account's private key is exchanged at
    the key's `token_uri` for a bearer token, cached until a minute before it expires. */
class gcs_token_source {
public:
    static result<std::shared_ptr<gcs_token_source>> make(std::string const& key_json, net::http_options http) {
        boost::system::error_code ec;
        auto v = boost::json::parse(key_json, ec);
        if (ec || !v.is_object()) return make_error(errc::invalid_argument, "gcs: the service account key is not JSON");
        auto const& o = v.get_object();
        auto str = [&](char const* k) { auto const* x = o.if_contains(k); return x && x->is_string() ? std::string(x->get_string()) : std::string(); };
        auto t = std::shared_ptr<gcs_token_source>(new gcs_token_source);
        t->email_ = str("client_email");
        t->key_id_ = str("private_key_id");
        t->token_uri_ = str("token_uri");
        if (t->token_uri_.empty()) t->token_uri_ = "https://oauth2.googleapis.com/token";
        auto const pem = str("private_key");
        if (t->email_.empty() || pem.empty()) return make_error(errc::invalid_argument, "gcs: the service account key lacks client_email or private_key");
        BIO* bio = BIO_new_mem_buf(pem.data(), int(pem.size()));
        t->pkey_.reset(PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr));
        BIO_free(bio);
        if (!t->pkey_) return make_error(errc::invalid_argument, "gcs: the service account's private_key is not a PEM private key");
        auto origin = net::origin::parse(t->token_uri_);
        if (!origin) return std::move(origin).error();
        t->path_ = t->token_uri_.substr(std::min(t->token_uri_.find('/', t->token_uri_.find("://") + 3), t->token_uri_.size()));
        if (t->path_.empty()) t->path_ = "/";
        auto c = net::http_client::make(*origin, std::move(http));
        if (!c) return std::move(c).error();
        t->client_ = std::move(*c);
        return t;
    }

    struct bearer {
        std::string token;
        std::chrono::system_clock::time_point expires;  // a minute early
    };
    using bearer_ptr = std::shared_ptr<bearer const>;

    /// A bearer token that has not expired.
    result<bearer_ptr> token() {
        auto const fetch = [this](bearer const*) { return grant(); };
        auto t = cache_.get(fetch);
        if (t && std::chrono::system_clock::now() >= (*t)->expires) return cache_.renew(*t, fetch);
        return t;
    }
    /// `attempt(token)`, again with a new token while `rejected(outcome)` (after a 401): one grant for
    /// all the threads that saw a token rejected (see detail::shared_credential::with_renewal).
    template <class Attempt, class Rejected>
    auto with_renewal(Attempt&& attempt, Rejected&& rejected) {
        return cache_.with_renewal(token(), [this](bearer const*) { return grant(); }, attempt, rejected);
    }

private:
    gcs_token_source() = default;

    result<bearer> grant() const {
        auto const now = std::chrono::system_clock::now();
        auto const iat = std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
        boost::json::object header{{"alg", "RS256"}, {"typ", "JWT"}};
        if (!key_id_.empty()) header["kid"] = key_id_;
        boost::json::object claims{{"iss", email_}, {"scope", "https://www.googleapis.com/auth/devstorage.read_write"},
                                   {"aud", token_uri_}, {"iat", iat}, {"exp", iat + 3600}};
        std::string const input = detail::base64url(as_bytes(boost::json::serialize(header))) + "." + detail::base64url(as_bytes(boost::json::serialize(claims)));
        auto sig = sign(input);
        if (!sig) return std::move(sig).error();
        std::string const body = "grant_type=" + detail::form_escape("urn:ietf:params:oauth:grant-type:jwt-bearer") + "&assertion=" + input + "." + detail::base64url(*sig);
        auto r = client_->send(net::http::verb::post, path_, {{"Content-Type", "application/x-www-form-urlencoded"}}, as_bytes(body));
        if (!r) return error{r.error().code, "gcs: token from " + token_uri_ + ": " + r.error().what()};
        boost::system::error_code ec;
        auto v = boost::json::parse(r->body_text(), ec);
        if (r->status != 200) {
            std::string detail;
            if (!ec && v.is_object())
                for (char const* k : {"error", "error_description"})
                    if (auto const* e = v.get_object().if_contains(k); e && e->is_string()) detail += (detail.empty() ? "" : ": ") + std::string(e->get_string());
            auto e = net::status_error(r->status, "gcs: token for " + email_ + " from " + token_uri_, detail);
            if (r->status == 400 || r->status == 401) e = make_error(errc::unauthorized, e.message + " (is the service account key valid?)");
            return e;
        }
        auto const* tok = !ec && v.is_object() ? v.get_object().if_contains("access_token") : nullptr;
        if (!tok || !tok->is_string()) return make_error(errc::io, "gcs: the token endpoint's answer has no access_token");
        auto const* exp = v.get_object().if_contains("expires_in");
        return bearer{std::string(tok->get_string()), now + std::chrono::seconds((exp && exp->is_number() ? exp->to_number<std::int64_t>() : 3600) - 60)};
    }

    result<bytes> sign(std::string const& input) const {
        std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
        std::size_t len = 0;
        if (EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, pkey_.get()) != 1 ||
            EVP_DigestSign(ctx.get(), nullptr, &len, reinterpret_cast<unsigned char const*>(input.data()), input.size()) != 1)
            return make_error(errc::invalid_argument, "gcs: cannot sign with the service account key");
        bytes sig(len);
        if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len, reinterpret_cast<unsigned char const*>(input.data()), input.size()) != 1)
            return make_error(errc::invalid_argument, "gcs: cannot sign with the service account key");
        sig.resize(len);
        return sig;
    }

    struct pkey_free {
        void operator()(EVP_PKEY* k) const noexcept { EVP_PKEY_free(k); }
    };
    std::string email_, key_id_, token_uri_, path_;
    std::unique_ptr<EVP_PKEY, pkey_free> pkey_;
    std::unique_ptr<net::http_client> client_;
    detail::shared_credential<bearer> cache_;
};

/** A repository in a GCS bucket, laid out as restic lays it out (`<prefix>/data/<2 hex>/<id>`, …),
    through the JSON API: simple media uploads (`uploadType=media`), `alt=media` downloads with a
    Range, object metadata for sizes, paged listing (`pageToken`), delete; `create` makes the bucket
    in `project_id` when it does not exist. A 401 renews the token, three times at most a request,
    with one grant for all the requests that saw it rejected.

    Repository string (as restic's): `gs:<bucket>:/<prefix>`. Credentials: the service account key
    in `GOOGLE_SERVICE_ACCOUNT_JSON_KEY` (its contents, as Stash's Secrets hold it) or in the file
    named by `GOOGLE_APPLICATION_CREDENTIALS`; `GOOGLE_PROJECT_ID`.

    @par Concepts
    `stash::backend`. Thread-safe.
*/
class gcs {
public:
    static result<gcs> open(gcs_options opt) {
        if (opt.bucket.empty()) return make_error(errc::invalid_argument, "gcs: no bucket given");
        opt.prefix = detail::clean_prefix(std::move(opt.prefix));
        auto tokens = gcs_token_source::make(opt.service_account_json, opt.http);
        if (!tokens) return std::move(tokens).error();
        while (opt.endpoint.ends_with('/')) opt.endpoint.pop_back();
        auto o = net::origin::parse(opt.endpoint);
        if (!o) return std::move(o).error();
        auto c = net::http_client::make(*o, opt.http);
        if (!c) return std::move(c).error();
        gcs g;
        g.client_ = std::shared_ptr<net::http_client>(std::move(*c));
        g.tokens_ = std::move(*tokens);
        g.location_ = "gs:" + opt.bucket + ":/" + opt.prefix;
        g.opt_ = std::make_shared<gcs_options const>(std::move(opt));
        return g;
    }

    /// Parses restic's `gs:bucket:/prefix` (credentials from the environment).
    static result<gcs_options> parse(std::string_view repo) {
        auto where = detail::split_container(repo, "gs", "bucket");
        if (!where) return std::move(where).error();
        gcs_options o;
        std::tie(o.bucket, o.prefix) = std::move(*where);
        auto const& env = detail::env;
        o.project_id = env("GOOGLE_PROJECT_ID");
        o.service_account_json = env("GOOGLE_SERVICE_ACCOUNT_JSON_KEY");
        if (o.service_account_json.empty()) {
            auto const file = env("GOOGLE_APPLICATION_CREDENTIALS");
            if (file.empty()) return make_error(errc::invalid_argument, "gcs: set GOOGLE_SERVICE_ACCOUNT_JSON_KEY or GOOGLE_APPLICATION_CREDENTIALS");
            std::ifstream in(file, std::ios::binary);
            if (!in) return make_error(errc::invalid_argument, "gcs: cannot read GOOGLE_APPLICATION_CREDENTIALS file " + file);
            o.service_account_json.assign(std::istreambuf_iterator<char>(in), {});
        }
        if (auto e = env("GOOGLE_STORAGE_ENDPOINT"); !e.empty()) o.endpoint = e;
        return o;
    }

    std::string location() const { return location_; }

    result<void> create() {
        auto b = send(net::http::verb::get, "/storage/v1/b/" + esc(opt_->bucket), {}, {});
        if (!b) return std::move(b).error();
        if (b->status == 404) {
            if (opt_->project_id.empty()) return make_error(errc::invalid_argument, location_ + ": bucket " + opt_->bucket + " does not exist; set GOOGLE_PROJECT_ID to create it");
            auto body = boost::json::serialize(boost::json::object{{"name", opt_->bucket}});
            auto r = send(net::http::verb::post, "/storage/v1/b?project=" + esc(opt_->project_id), {{"Content-Type", "application/json"}}, as_bytes(body));
            if (!r) return std::move(r).error();
            if (r->status != 200) return fail(*r, "create bucket " + opt_->bucket);
        } else if (b->status != 200) {
            return fail(*b, "bucket " + opt_->bucket);
        }
        return detail::must_be_new(*this, location_);
    }

    result<void> put(handle const& h, byte_span data) {
        auto r = send(net::http::verb::post, "/upload/storage/v1/b/" + esc(opt_->bucket) + "/o?uploadType=media&name=" + esc(key(h)),
                      {{"Content-Type", "application/octet-stream"}}, data);
        if (!r) return std::move(r).error();
        if (r->status != 200) return fail(*r, "save " + h.str());
        return {};
    }

    result<void> get(handle const& h, std::uint64_t off, std::uint64_t len, bytes& out) {
        auto const range = detail::byte_range(off, len);
        net::header_list hs;
        if (!range.empty()) hs.emplace_back("Range", range);
        auto r = send(net::http::verb::get, object_path(h) + "?alt=media", hs, {});
        if (!r) return std::move(r).error();
        return detail::take_range(*r, location_, h, range, len, out, [this](net::http_response const& x, std::string const& w) { return fail(x, w); });
    }

    result<std::uint64_t> stat(handle const& h) {
        auto r = send(net::http::verb::get, object_path(h) + "?fields=size", {}, {});
        if (!r) return std::move(r).error();
        if (r->status != 200) return fail(*r, "stat " + h.str());
        boost::system::error_code ec;
        auto v = boost::json::parse(r->body_text(), ec);
        auto const* size = !ec && v.is_object() ? v.get_object().if_contains("size") : nullptr;
        if (!size || !size->is_string()) return make_error(errc::io, location_ + ": stat " + h.str() + ": no size in the object's metadata");
        return std::stoull(std::string(size->get_string()));
    }

    result<void> list(file_type t, list_fn const& fn) {
        std::string const dir = detail::list_prefix(opt_->prefix, t);
        std::string token;
        for (;;) {
            std::string target = "/storage/v1/b/" + esc(opt_->bucket) + "/o?prefix=" + esc(dir) + "&maxResults=" + std::to_string(opt_->list_page) +
                                 "&fields=" + esc("items(name,size),nextPageToken");
            if (!token.empty()) target += "&pageToken=" + esc(token);
            auto r = send(net::http::verb::get, target, {}, {});
            if (!r) return std::move(r).error();
            if (r->status != 200) return fail(*r, std::string("list ") + dir_name(t));
            boost::system::error_code ec;
            auto v = boost::json::parse(r->body_text(), ec);
            if (ec || !v.is_object()) return make_error(errc::io, location_ + ": list " + dir_name(t) + ": the answer is not a JSON object");
            if (auto const* items = v.get_object().if_contains("items"); items && items->is_array())
                for (auto const& it : items->get_array()) {
                    if (!it.is_object()) continue;
                    auto const* n = it.get_object().if_contains("name");
                    auto const* s = it.get_object().if_contains("size");
                    if (!n || !n->is_string()) continue;
                    detail::report_listed(n->get_string(), s && s->is_string() ? std::stoull(std::string(s->get_string())) : 0, fn);
                }
            auto const* next = v.get_object().if_contains("nextPageToken");
            if (!next || !next->is_string() || next->get_string().empty()) return {};
            token = std::string(next->get_string());
        }
    }

    result<void> remove(handle const& h) {
        auto r = send(net::http::verb::delete_, object_path(h), {}, {});
        if (!r) return std::move(r).error();
        if (r->status != 204 && r->status != 200) return fail(*r, "remove " + h.str());
        return {};
    }

private:
    gcs() = default;

    static std::string esc(std::string_view s) { return net::sigv4::uri_encode(s, false); }
    std::string key(handle const& h) const { return detail::object_key(opt_->prefix, h); }
    std::string object_path(handle const& h) const { return "/storage/v1/b/" + esc(opt_->bucket) + "/o/" + esc(key(h)); }

    // Google's JSON error: {"error":{"code":…,"message":…}}.
    error fail(net::http_response const& r, std::string const& what) const {
        std::string detail;
        boost::system::error_code ec;
        auto v = boost::json::parse(r.body_text(), ec);
        if (!ec && v.is_object())
            if (auto const* e = v.get_object().if_contains("error"); e && e->is_object())
                if (auto const* m = e->get_object().if_contains("message"); m && m->is_string()) detail = std::string(m->get_string());
        return net::status_error(r.status, location_ + ": " + what, detail);
    }

    result<net::http_response> send(net::http::verb v, std::string const& target, net::header_list headers, byte_span body) {
        auto r = tokens_->with_renewal(
            [&](gcs_token_source::bearer_ptr const& tok) {
                auto hs = headers;
                hs.emplace_back("Authorization", "Bearer " + tok->token);
                return client_->send(v, target, hs, body);
            },
            [](result<net::http_response> const& x) { return x && x->status == 401; });  // expired or revoked
        if (!r) return error{r.error().code, location_ + ": " + r.error().what()};
        return r;
    }

    std::shared_ptr<net::http_client> client_;
    std::shared_ptr<gcs_token_source> tokens_;
    std::shared_ptr<gcs_options const> opt_;
    std::string location_;
};

static_assert(stash::backend<gcs>);

}  // namespace stash::policies::backend
