// OpenStack Swift object storage, authenticated by Swift's v1 auth or Keystone v2/v3.
#pragma once

#include <stash/concepts/backend.hpp>
#include <stash/policies/backend/detail/object_store.hpp>
#include <stash/policies/backend/detail/shared_credential.hpp>
#include <stash/policies/net/http.hpp>
#include <stash/policies/net/sigv4.hpp>

#include <boost/json.hpp>

#include <tuple>

namespace stash::policies::backend {

struct swift_options {
    std::string container, prefix;
    /// v1: `auth_url` with `user`/`key` (ST_AUTH, ST_USER, ST_KEY). Keystone: `auth_url` ending in
    /// /v2.0 or /v3 with `user`/`key` as user name and password, `project`, `region`, domains
    /// (OS_AUTH_URL, OS_USERNAME, OS_PASSWORD, OS_PROJECT_NAME or OS_TENANT_NAME, OS_REGION_NAME,
    /// OS_USER_DOMAIN_NAME, OS_PROJECT_DOMAIN_NAME). Or a ready `storage_url` + `token`
    /// (OS_STORAGE_URL, OS_AUTH_TOKEN).
    std::string auth_url, user, key, project, region, user_domain = "Default", project_domain = "Default";
    std::string storage_url, token;
    unsigned list_page = 1000;
    net::http_options http;
};

/** A repository in a Swift container, laid out as restic lays it out (`<prefix>/data/<2 hex>/<id>`,
    …): PUT, GET with a Range, HEAD for sizes, DELETE, and JSON listings paged by `marker`. The
    token and storage URL come from the auth service (v1 headers, Keystone v2 service catalog, or
    Keystone v3 `X-Subject-Token` and catalog, public interface, chosen region). A 401 renews them,
    up to three times a request: one thread authenticates while the others wait for its token.

    Repository string (as restic's): `swift:<container>:/<prefix>`.

    @par Concepts
    `stash::backend`. Thread-safe.
*/
class swift {
public:
    static result<swift> open(swift_options opt) {
        if (opt.container.empty()) return make_error(errc::invalid_argument, "swift: no container given");
        opt.prefix = detail::clean_prefix(std::move(opt.prefix));
        if (opt.storage_url.empty() && (opt.auth_url.empty() || opt.user.empty() || opt.key.empty()))
            return make_error(errc::invalid_argument, "swift: set ST_AUTH, ST_USER and ST_KEY, or OS_AUTH_URL, OS_USERNAME and OS_PASSWORD, or OS_STORAGE_URL and OS_AUTH_TOKEN");
        swift s;
        s.session_ = std::make_shared<detail::shared_credential<session>>();
        s.location_ = "swift:" + opt.container + ":/" + opt.prefix;
        s.opt_ = std::make_shared<swift_options const>(std::move(opt));
        return s;
    }

    /// Parses restic's `swift:container:/prefix` (credentials from the environment).
    static result<swift_options> parse(std::string_view repo) {
        auto where = detail::split_container(repo, "swift", "container");
        if (!where) return std::move(where).error();
        swift_options o;
        std::tie(o.container, o.prefix) = std::move(*where);
        auto const& env = detail::env;
        if (auto a = env("ST_AUTH"); !a.empty()) {
            o.auth_url = a, o.user = env("ST_USER"), o.key = env("ST_KEY");
        } else {
            o.auth_url = env("OS_AUTH_URL"), o.user = env("OS_USERNAME"), o.key = env("OS_PASSWORD");
            o.project = env("OS_PROJECT_NAME");
            if (o.project.empty()) o.project = env("OS_TENANT_NAME");
            o.region = env("OS_REGION_NAME");
            if (auto d = env("OS_USER_DOMAIN_NAME"); !d.empty()) o.user_domain = d;
            if (auto d = env("OS_PROJECT_DOMAIN_NAME"); !d.empty()) o.project_domain = d;
        }
        o.storage_url = env("OS_STORAGE_URL");
        o.token = env("OS_AUTH_TOKEN");
        return o;
    }

    std::string location() const { return location_; }

    result<void> create() {
        auto r = send(net::http::verb::put, "", {}, {});
        if (!r) return std::move(r).error();
        if (r->status != 201 && r->status != 202) return fail(*r, "create container " + opt_->container);
        return detail::must_be_new(*this, location_);
    }

    result<void> put(handle const& h, byte_span data) {
        auto r = send(net::http::verb::put, "/" + esc(detail::object_key(opt_->prefix, h)), {{"Content-Type", "application/octet-stream"}}, data);
        if (!r) return std::move(r).error();
        if (r->status != 201) return fail(*r, "save " + h.str());
        return {};
    }

    result<void> get(handle const& h, std::uint64_t off, std::uint64_t len, bytes& out) {
        auto const range = detail::byte_range(off, len);
        net::header_list hs;
        if (!range.empty()) hs.emplace_back("Range", range);
        auto r = send(net::http::verb::get, "/" + esc(detail::object_key(opt_->prefix, h)), hs, {});
        if (!r) return std::move(r).error();
        return detail::take_range(*r, location_, h, range, len, out, [this](net::http_response const& x, std::string const& w) { return fail(x, w); });
    }

    result<std::uint64_t> stat(handle const& h) {
        auto r = send(net::http::verb::head, "/" + esc(detail::object_key(opt_->prefix, h)), {}, {});
        if (!r) return std::move(r).error();
        return detail::head_size(*r, location_, h, [this](net::http_response const& x, std::string const& w) { return fail(x, w); });
    }

    result<void> list(file_type t, list_fn const& fn) {
        std::string const dir = detail::list_prefix(opt_->prefix, t);
        std::string marker;
        for (;;) {
            std::string q = "?format=json&prefix=" + net::sigv4::uri_encode(dir, false) + "&limit=" + std::to_string(opt_->list_page);
            if (!marker.empty()) q += "&marker=" + net::sigv4::uri_encode(marker, false);
            auto r = send(net::http::verb::get, q, {{"Accept", "application/json"}}, {});
            if (!r) return std::move(r).error();
            if (r->status == 204) return {};  // an empty container
            if (r->status != 200) return fail(*r, std::string("list ") + dir_name(t));
            boost::system::error_code ec;
            auto v = boost::json::parse(r->body_text(), ec);
            if (ec || !v.is_array()) return make_error(errc::io, location_ + ": list " + dir_name(t) + ": the answer is not a JSON array");
            if (v.get_array().empty()) return {};
            for (auto const& o : v.get_array()) {
                if (!o.is_object()) continue;
                auto const* n = o.get_object().if_contains("name");
                auto const* b = o.get_object().if_contains("bytes");
                if (!n || !n->is_string()) continue;
                marker = std::string(n->get_string());
                detail::report_listed(marker, b && b->is_number() ? b->to_number<std::uint64_t>() : 0, fn);
            }
            if (v.get_array().size() < opt_->list_page) return {};
        }
    }

    result<void> remove(handle const& h) {
        auto r = send(net::http::verb::delete_, "/" + esc(detail::object_key(opt_->prefix, h)), {}, {});
        if (!r) return std::move(r).error();
        if (r->status != 204 && r->status != 200) return fail(*r, "remove " + h.str());
        return {};
    }

private:
    struct session {
        std::shared_ptr<net::http_client> storage;
        std::string url;        // the storage URL
        std::string base_path;  // its path: /v1/AUTH_account
        std::string token;
    };

    swift() = default;

    static std::string esc(std::string_view s) { return net::sigv4::uri_encode(s, true); }

    error fail(net::http_response const& r, std::string const& what) const {
        auto body = r.body_text();
        if (body.size() > 200 || body.find('<') != std::string::npos) body.clear();  // HTML error pages say nothing useful
        return net::status_error(r.status, location_ + ": " + what, body);
    }

    static result<session> connect(std::string const& storage_url, std::string const& token, session const* previous, net::http_options const& http) {
        if (previous && previous->url == storage_url) {  // a renewed token: keep the connections
            session s = *previous;
            s.token = token;
            return s;
        }
        auto o = net::origin::parse(storage_url);
        if (!o) return std::move(o).error();
        auto c = net::http_client::make(*o, http);
        if (!c) return std::move(c).error();
        auto const path_start = storage_url.find('/', storage_url.find("://") + 3);
        std::string path = path_start == std::string::npos ? "" : storage_url.substr(path_start);
        while (path.ends_with('/')) path.pop_back();
        return session{std::shared_ptr<net::http_client>(std::move(*c)), storage_url, path, token};
    }

    // The configured storage URL and token first, if any, then sessions from the auth service.
    result<session> fetch(session const* previous) const {
        bool const given = !opt_->storage_url.empty() && (!previous || opt_->auth_url.empty());
        auto s = given ? connect(opt_->storage_url, opt_->token, previous, opt_->http) : authenticate(previous);
        if (!s) return error{s.error().code, location_ + ": " + s.error().what()};
        return s;
    }

    // Asks the auth service for a token and the storage URL.
    result<session> authenticate(session const* previous) const {
        auto const& o = *opt_;
        auto origin = net::origin::parse(o.auth_url);
        if (!origin) return std::move(origin).error();
        auto c = net::http_client::make(*origin, o.http);
        if (!c) return std::move(c).error();
        auto const path_start = o.auth_url.find('/', o.auth_url.find("://") + 3);
        std::string path = path_start == std::string::npos ? "/" : o.auth_url.substr(path_start);
        while (path.size() > 1 && path.ends_with('/')) path.pop_back();
        auto const what = "swift: authentication at " + o.auth_url;
        auto check = [&](net::http_response const& r) -> result<void> {
            if (r.status == 200 || r.status == 201 || r.status == 204) return {};
            auto e = net::status_error(r.status, what);
            if (r.status == 401 || r.status == 403) e = make_error(errc::unauthorized, what + ": HTTP " + std::to_string(r.status) + " (wrong user, key or project?)");
            return e;
        };
        if (path.ends_with("/v3")) {
            boost::json::object body{{"auth", {{"identity", {{"methods", {"password"}},
                                                             {"password", {{"user", {{"name", o.user}, {"domain", {{"name", o.user_domain}}}, {"password", o.key}}}}}}},
                                               {"scope", {{"project", {{"name", o.project}, {"domain", {{"name", o.project_domain}}}}}}}}}};
            auto const s = boost::json::serialize(body);
            auto r = (*c)->send(net::http::verb::post, path + "/auth/tokens", {{"Content-Type", "application/json"}}, as_bytes(s));
            if (!r) return error{r.error().code, what + ": " + r.error().what()};
            STASH_TRYV(check(*r));
            auto url = endpoint_from_catalog(r->body_text(), "/token/catalog", true);
            if (!url) return std::move(url).error();
            return connect(*url, r->header("X-Subject-Token"), previous, o.http);
        }
        if (path.ends_with("/v2.0")) {
            boost::json::object body{{"auth", {{"passwordCredentials", {{"username", o.user}, {"password", o.key}}}, {"tenantName", o.project}}}};
            auto const s = boost::json::serialize(body);
            auto r = (*c)->send(net::http::verb::post, path + "/tokens", {{"Content-Type", "application/json"}}, as_bytes(s));
            if (!r) return error{r.error().code, what + ": " + r.error().what()};
            STASH_TRYV(check(*r));
            auto url = endpoint_from_catalog(r->body_text(), "/access/serviceCatalog", false);
            if (!url) return std::move(url).error();
            boost::system::error_code ec;
            auto v = boost::json::parse(r->body_text(), ec);
            auto const* tok = ec ? nullptr : v.find_pointer("/access/token/id", ec);
            if (!tok || !tok->is_string()) return make_error(errc::io, what + ": no access.token.id in the answer");
            return connect(*url, std::string(tok->get_string()), previous, o.http);
        }
        // v1: credentials in headers, token and storage URL in the answer's headers.
        auto r = (*c)->send(net::http::verb::get, path, {{"X-Auth-User", o.user}, {"X-Auth-Key", o.key}});
        if (!r) return error{r.error().code, what + ": " + r.error().what()};
        STASH_TRYV(check(*r));
        auto url = r->header("X-Storage-Url");
        auto tok = r->header("X-Auth-Token");
        if (url.empty() || tok.empty()) return make_error(errc::io, what + ": the answer lacks X-Storage-Url or X-Auth-Token");
        return connect(url, tok, previous, o.http);
    }

    // The object-store endpoint of a Keystone service catalog: public, in the configured region if any.
    result<std::string> endpoint_from_catalog(std::string const& body, char const* pointer, bool v3) const {
        boost::system::error_code ec;
        auto v = boost::json::parse(body, ec);
        auto const* catalog = ec ? nullptr : v.find_pointer(pointer, ec);
        if (catalog && catalog->is_array())
            for (auto const& svc : catalog->get_array()) {
                if (!svc.is_object() || svc.get_object().if_contains("type") == nullptr || svc.at("type") != "object-store") continue;
                auto const* eps = svc.get_object().if_contains("endpoints");
                if (!eps || !eps->is_array()) continue;
                for (auto const& ep : eps->get_array()) {
                    if (!ep.is_object()) continue;
                    auto const& e = ep.get_object();
                    auto s = [&](char const* k) { auto const* x = e.if_contains(k); return x && x->is_string() ? std::string(x->get_string()) : std::string(); };
                    if (!opt_->region.empty() && s(v3 ? "region_id" : "region") != opt_->region && s("region") != opt_->region) continue;
                    if (v3 && s("interface") != "public") continue;
                    auto url = s(v3 ? "url" : "publicURL");
                    if (!url.empty()) return url;
                }
            }
        return make_error(errc::not_found, "swift: no public object-store endpoint" + (opt_->region.empty() ? std::string() : " in region " + opt_->region) +
                                               " in the service catalog of " + opt_->auth_url);
    }

    // `sub` is appended to /<container> of the storage URL's path.
    result<net::http_response> send(net::http::verb v, std::string const& sub, net::header_list headers, byte_span body) {
        auto const fetch = [this](session const* previous) { return this->fetch(previous); };
        // Tokens expire or are revoked: renewed a few times at most, since a server may hand out
        // tokens that lack the rights for this container. A fixed token (no auth URL) is not renewed.
        return session_->with_renewal(
            session_->get(fetch), fetch,
            [&](std::shared_ptr<session const> const& s) -> result<net::http_response> {
                auto hs = headers;
                hs.emplace_back("X-Auth-Token", s->token);
                auto r = s->storage->send(v, s->base_path + "/" + net::sigv4::uri_encode(opt_->container, false) + sub, hs, body);
                if (!r) return error{r.error().code, location_ + ": " + r.error().what()};
                return r;
            },
            [this](result<net::http_response> const& r) { return r && r->status == 401 && !opt_->auth_url.empty(); });
    }

    std::shared_ptr<detail::shared_credential<session>> session_;
    std::shared_ptr<swift_options const> opt_;
    std::string location_;
};

static_assert(stash::backend<swift>);

}  // namespace stash::policies::backend
