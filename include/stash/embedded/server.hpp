// The embedded API server: Kubernetes REST semantics over HTTP/1.1 (Boost.Beast) on top of `store`,
// enough for kubectl and client libraries: discovery, CRUD, patch, status, selectors, paging,
// watch streams, Table output for `kubectl get`, Status errors.
#pragma once

#include <stash/embedded/patch.hpp>
#include <stash/embedded/store.hpp>
#include <stash/kube/yaml.hpp>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <charconv>
#include <iostream>
#include <memory>

namespace stash::embedded {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

struct server_options {
    std::string token;  ///< when set, requests need "Authorization: Bearer <token>" (or a client certificate)
    /// TLS: PEM files of the server's certificate chain and key; with `client_ca_file`, client
    /// certificates signed by that CA are verified and authenticate requests.
    std::string tls_cert_file, tls_key_file, client_ca_file;
    bool require_client_auth = false;  ///< refuse requests without a token or a verified client certificate
    std::string git_version = "v1.30.0-stash-embedded";
    std::function<void(std::string const&)> log;  ///< one line per request (method, path, status)
};

namespace detail {

inline std::string percent_decode(std::string_view s) {
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '%' && i + 2 < s.size()) {
            unsigned v = 0;
            auto [p, ec] = std::from_chars(s.data() + i + 1, s.data() + i + 3, v, 16);
            if (ec == std::errc() && p == s.data() + i + 3) {
                out += char(v);
                i += 2;
                continue;
            }
        }
        out += s[i] == '+' ? ' ' : s[i];
    }
    return out;
}

struct request_target {
    std::vector<std::string> segments;
    std::map<std::string, std::string> query;
    std::string param(char const* k) const {
        auto it = query.find(k);
        return it == query.end() ? std::string() : it->second;
    }
};

inline request_target parse_target(std::string_view t) {
    request_target r;
    auto const q = t.find('?');
    std::string_view path = t.substr(0, q);
    for (std::size_t b = 0; b < path.size();) {
        auto e = path.find('/', b);
        if (e == std::string_view::npos) e = path.size();
        if (e > b) r.segments.push_back(percent_decode(path.substr(b, e - b)));
        b = e + 1;
    }
    if (q != std::string_view::npos) {
        std::string_view qs = t.substr(q + 1);
        for (std::size_t b = 0; b < qs.size();) {
            auto e = qs.find('&', b);
            if (e == std::string_view::npos) e = qs.size();
            auto kv = qs.substr(b, e - b);
            auto const eq = kv.find('=');
            r.query[percent_decode(kv.substr(0, eq))] = eq == std::string_view::npos ? "" : percent_decode(kv.substr(eq + 1));
            b = e + 1;
        }
    }
    return r;
}

/// "5s", "3m", "2h", "4d": how `kubectl get` shows ages.
inline std::string human_age(std::string const& rfc3339) {
    auto t = parse_rfc3339(rfc3339);
    if (!t) return "<unknown>";
    std::int64_t s = std::max<std::int64_t>(0, timestamp::now().sec - t->sec);
    if (s < 120) return std::to_string(s) + "s";
    if (s < 3600 * 3) return std::to_string(s / 60) + "m";
    if (s < 86400 * 2) return std::to_string(s / 3600) + "h";
    return std::to_string(s / 86400) + "d";
}

/// A simple JSONPath (".status.phase") into an object; null when absent.
inline json::value json_path(json::value const& o, std::string_view path) {
    json::value const* cur = &o;
    for (std::size_t b = path.starts_with('.') ? 1 : 0; b < path.size();) {
        auto e = path.find('.', b);
        if (e == std::string_view::npos) e = path.size();
        if (!cur->is_object()) return nullptr;
        cur = cur->get_object().if_contains(path.substr(b, e - b));
        if (!cur) return nullptr;
        b = e + 1;
    }
    return *cur;
}

}  // namespace detail

/** Serves `store` on an acceptor. All handlers run on the io_context given; run it on one thread (the
    store is thread-safe, so other threads may use it directly, and their changes reach watchers). */
class api_server {
public:
    /// Throws `boost::system::system_error` when the address cannot be bound or the TLS files not read.
    api_server(asio::io_context& io, store& st, registry& reg, tcp::endpoint ep, server_options opt = {})
        : io_(io), store_(st), reg_(reg), acceptor_(io, ep), opt_(std::move(opt)) {
        if (!opt_.tls_cert_file.empty()) {
            tls_.emplace(asio::ssl::context::tls_server);
            tls_->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 | asio::ssl::context::no_sslv3 |
                              asio::ssl::context::no_tlsv1 | asio::ssl::context::no_tlsv1_1);
            tls_->use_certificate_chain_file(opt_.tls_cert_file);
            tls_->use_private_key_file(opt_.tls_key_file, asio::ssl::context::pem);
            if (!opt_.client_ca_file.empty()) {
                tls_->load_verify_file(opt_.client_ca_file);
                // Ask for a certificate; requests without one may still authenticate by token.
                tls_->set_verify_mode(asio::ssl::verify_peer);
                tls_->set_verify_callback([](bool, asio::ssl::verify_context&) { return true; });
            }
        }
    }

    /// The bound port (after binding port 0).
    unsigned short port() const { return acceptor_.local_endpoint().port(); }

    void start() { accept(); }
    void stop() {
        boost::system::error_code ec;
        acceptor_.close(ec);
    }

private:
    template <class Stream>
    class session;

    void accept() {
        acceptor_.async_accept([this](boost::system::error_code ec, tcp::socket s) {
            if (ec) return;
            if (tls_) std::make_shared<session<beast::ssl_stream<beast::tcp_stream>>>(*this, std::move(s), *tls_)->run();
            else std::make_shared<session<beast::tcp_stream>>(*this, std::move(s))->run();
            accept();
        });
    }

    using response = http::response<http::string_body>;

    static response make_json(unsigned status, json::value const& body, unsigned version, bool keep_alive) {
        response r{static_cast<http::status>(status), version};
        r.set(http::field::content_type, "application/json");
        r.body() = json::serialize(body);
        r.keep_alive(keep_alive);
        r.prepare_payload();
        return r;
    }

    static json::value status_object(unsigned code, std::string const& reason, std::string const& message,
                                     json::object details = {}) {
        json::object s{{"kind", "Status"}, {"apiVersion", "v1"}, {"metadata", json::object{}}, {"status", code < 400 ? "Success" : "Failure"},
                       {"message", message}, {"reason", reason}, {"code", code}};
        if (!details.empty()) s["details"] = std::move(details);
        return s;
    }

    static std::pair<unsigned, std::string> http_of(error const& e) {
        if (e.is(errc::not_found)) return {404, "NotFound"};
        if (e.is(errc::already_exists)) return {409, "AlreadyExists"};
        if (e.is(errc::conflict)) return {409, "Conflict"};
        if (e.is(errc::invalid_argument)) return {422, "Invalid"};
        if (e.is(errc::gone)) return {410, "Expired"};
        if (e.is(errc::bad_request)) return {400, "BadRequest"};
        if (e.is(errc::forbidden)) return {403, "Forbidden"};
        if (e.is(errc::unsupported)) return {415, "UnsupportedMediaType"};
        return {500, "InternalError"};
    }

    // --- discovery ------------------------------------------------------------------------------

    json::value version_info() const {
        return json::object{{"major", "1"}, {"minor", "30"}, {"gitVersion", opt_.git_version}, {"gitCommit", "embedded"},
                            {"gitTreeState", "clean"}, {"buildDate", "2026-11-25T00:00:00Z"}, {"goVersion", "n/a"},
                            {"compiler", "g++"}, {"platform", "linux/amd64"}};
    }

    json::value resource_list(std::string const& group, std::string const& version) const {
        json::array res;
        for (auto const& r : reg_.all()) {
            if (r.group != group || r.version != version) continue;
            json::array verbs{"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"};
            json::object e{{"name", r.plural}, {"singularName", r.singular}, {"namespaced", r.namespaced}, {"kind", r.kind},
                           {"verbs", verbs}};
            if (!r.short_names.empty()) {
                json::array a;
                for (auto const& s : r.short_names) a.emplace_back(s);
                e["shortNames"] = std::move(a);
            }
            if (!r.categories.empty()) {
                json::array a;
                for (auto const& s : r.categories) a.emplace_back(s);
                e["categories"] = std::move(a);
            }
            res.push_back(std::move(e));
            if (r.status_subresource)
                res.push_back(json::object{{"name", r.plural + "/status"}, {"singularName", ""}, {"namespaced", r.namespaced},
                                           {"kind", r.kind}, {"verbs", json::array{"get", "patch", "update"}}});
        }
        return json::object{{"kind", "APIResourceList"}, {"apiVersion", "v1"},
                            {"groupVersion", group.empty() ? version : group + "/" + version}, {"resources", std::move(res)}};
    }

    json::value group_list() const {
        std::map<std::string, std::set<std::string>> groups;
        for (auto const& r : reg_.all())
            if (!r.group.empty()) groups[r.group].insert(r.version);
        json::array gs;
        for (auto const& [g, vs] : groups) gs.push_back(group_object(g, vs));
        return json::object{{"kind", "APIGroupList"}, {"apiVersion", "v1"}, {"groups", std::move(gs)}};
    }

    static json::object group_object(std::string const& g, std::set<std::string> const& vs) {
        json::array versions;
        for (auto const& v : vs) versions.push_back(json::object{{"groupVersion", g + "/" + v}, {"version", v}});
        auto preferred = versions.front();
        return json::object{{"kind", "APIGroup"}, {"apiVersion", "v1"}, {"name", g}, {"versions", std::move(versions)},
                            {"preferredVersion", std::move(preferred)}};
    }

    json::value openapi_core() const {
        json::object paths;
        for (auto const& r : reg_.all()) {
            if (!r.group.empty()) continue;
            json::object op{{"x-kubernetes-group-version-kind", json::object{{"group", ""}, {"version", r.version}, {"kind", r.kind}}},
                            {"parameters", json::array{json::object{{"name", "fieldValidation"}, {"in", "query"}, {"schema", json::object{{"type", "string"}}}}}},
                            {"responses", json::object{{"200", json::object{{"description", "OK"}}}}}};
            std::string const path = r.namespaced ? "/api/v1/namespaces/{namespace}/" + r.plural + "/{name}" : "/api/v1/" + r.plural + "/{name}";
            paths[path] = json::object{{"patch", std::move(op)}};
        }
        return json::object{{"openapi", "3.0.0"}, {"info", json::object{{"title", "stash embedded"}, {"version", opt_.git_version}}},
                            {"paths", std::move(paths)}};
    }

    // --- tables ---------------------------------------------------------------------------------

    static bool wants_table(std::string_view accept) { return accept.find("as=Table") != std::string_view::npos; }

    static json::array table_columns(resource_info const& ri) {
        json::array cols{json::object{{"name", "Name"}, {"type", "string"}, {"format", "name"}, {"description", "Name of the object"}, {"priority", 0}}};
        for (auto const& c : ri.printer_columns) {
            auto const& o = c.as_object();
            cols.push_back(json::object{{"name", o.at("name")}, {"type", o.at("type")}, {"format", ""}, {"description", ""},
                                        {"priority", o.contains("priority") ? o.at("priority") : json::value(0)}});
        }
        // A CRD's columns replace the default ones (Name, Age) except Name, as the real server does.
        if (ri.printer_columns.empty())
            cols.push_back(json::object{{"name", "Age"}, {"type", "date"}, {"format", ""}, {"description", "Time since creation"}, {"priority", 0}});
        return cols;
    }

    static json::object table_row(resource_info const& ri, json::value const& obj) {
        auto const& m = obj.at("metadata").as_object();
        json::array cells{m.at("name")};
        for (auto const& c : ri.printer_columns) {
            auto const& o = c.as_object();
            auto v = detail::json_path(obj, o.at("jsonPath").as_string());
            if (o.at("type") == "date" && v.is_string()) v = json::string(detail::human_age(std::string(v.get_string())));
            cells.push_back(v.is_null() ? json::value("") : v);
        }
        if (ri.printer_columns.empty()) {
            auto const* ct = m.if_contains("creationTimestamp");
            cells.emplace_back(ct && ct->is_string() ? detail::human_age(std::string(ct->get_string())) : "<unknown>");
        }
        return json::object{{"cells", std::move(cells)},
                            {"object", json::object{{"kind", "PartialObjectMetadata"}, {"apiVersion", "meta.k8s.io/v1"}, {"metadata", m}}}};
    }

    static json::value table(resource_info const& ri, json::array const& items, json::object list_meta) {
        json::array rows;
        for (auto const& o : items) rows.push_back(table_row(ri, o));
        return json::object{{"kind", "Table"}, {"apiVersion", "meta.k8s.io/v1"}, {"metadata", std::move(list_meta)},
                            {"columnDefinitions", table_columns(ri)}, {"rows", std::move(rows)}};
    }

    // --- request handling -----------------------------------------------------------------------

    struct route {
        resource_info info;
        std::string ns, name, sub;
    };

    // Maps path segments to a resource route; nullopt for paths that are not resources.
    std::optional<route> resolve(std::vector<std::string> const& seg, error& err) const {
        std::string group, version;
        std::size_t i;
        if (seg.size() >= 3 && seg[0] == "api") group = "", version = seg[1], i = 2;
        else if (seg.size() >= 4 && seg[0] == "apis") group = seg[1], version = seg[2], i = 3;
        else return std::nullopt;
        std::vector<std::string> rest(seg.begin() + std::ptrdiff_t(i), seg.end());
        route r;
        if (rest.size() >= 3 && rest[0] == "namespaces" && !(rest.size() == 3 && (rest[2] == "status" || rest[2] == "finalize"))) {
            r.ns = rest[1];
            rest.erase(rest.begin(), rest.begin() + 2);
        }
        auto info = reg_.find(group, version, rest[0]);
        if (!info) {
            err = make_error(errc::not_found, "the server could not find the requested resource");
            return std::nullopt;
        }
        r.info = *info;
        if (rest.size() >= 2) r.name = rest[1];
        if (rest.size() >= 3) r.sub = rest[2];
        if (rest.size() > 3 || (!r.sub.empty() && r.sub != "status") || (r.sub == "status" && !r.info.status_subresource)) {
            err = make_error(errc::not_found, "the server could not find the requested resource");
            return std::nullopt;
        }
        return r;
    }

    template <class Stream>
    class session : public std::enable_shared_from_this<session<Stream>> {
        static constexpr bool tls = !std::is_same_v<Stream, beast::tcp_stream>;
        using std::enable_shared_from_this<session<Stream>>::shared_from_this;
        using std::enable_shared_from_this<session<Stream>>::weak_from_this;

    public:
        session(api_server& srv, tcp::socket s) : srv_(srv), store_(srv.store_), stream_(std::move(s)), timer_(srv.io_) {}
        session(api_server& srv, tcp::socket s, asio::ssl::context& ctx)
            : srv_(srv), store_(srv.store_), stream_(std::move(s), ctx), timer_(srv.io_) {}
        // Sessions outlive the server object when the io_context is destroyed after it (as it must be:
        // io objects go before their io_context), so the destructor touches only the store.
        ~session() {
            if (watch_id_) store_.unwatch(*watch_id_);
        }

        void run() {
            if constexpr (tls) {
                beast::get_lowest_layer(stream_).expires_after(std::chrono::seconds(30));
                stream_.async_handshake(asio::ssl::stream_base::server, [self = shared_from_this()](boost::system::error_code ec) {
                    if (ec) return self->close();
                    beast::get_lowest_layer(self->stream_).expires_never();
                    // A verified client certificate authenticates the request like a token does.
                    self->client_cert_ = SSL_get0_peer_certificate(self->stream_.native_handle()) != nullptr &&
                                         SSL_get_verify_result(self->stream_.native_handle()) == X509_V_OK;
                    self->read();
                });
            } else {
                read();
            }
        }

    private:
        void read() {
            req_ = {};
            parser_.emplace();
            parser_->body_limit(64u << 20);
            http::async_read(stream_, buf_, *parser_, [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
                if (ec) return self->close();
                self->req_ = self->parser_->release();
                self->handle();
            });
        }

        void close() {
            boost::system::error_code ec;
            beast::get_lowest_layer(stream_).socket().shutdown(tcp::socket::shutdown_both, ec);
            beast::get_lowest_layer(stream_).close();
            timer_.cancel();
        }

        void send(response r) {
            auto sp = std::make_shared<response>(std::move(r));
            bool const keep = sp->keep_alive();
            if (srv_.opt_.log) srv_.opt_.log(std::string(req_.method_string()) + " " + std::string(req_.target()) + " " + std::to_string(sp->result_int()));
            http::async_write(stream_, *sp, [self = shared_from_this(), sp, keep](boost::system::error_code ec, std::size_t) {
                if (ec || !keep) return self->close();
                self->read();
            });
        }

        void fail(error const& e, std::string const& name = {}, std::string const& kind = {}, resource_info const* ri = nullptr) {
            auto [code, reason] = http_of(e);
            json::object details;
            if (!name.empty()) details["name"] = name;
            if (!kind.empty()) details["kind"] = kind;
            std::string message = e.what();
            if (code == 422 && ri) {
                // "Kind ns/name: field: detail" (admission) or "field: detail" (store) → the real
                // server's shape, which kubectl prints as `The Kind "name" is invalid: field: detail`.
                std::string m = message;
                if (m.starts_with(ri->kind + " ")) m = m.substr(std::min(m.size(), m.find(": ") + 2));
                auto const colon = m.find(": ");
                std::string const field = colon == std::string::npos ? std::string() : m.substr(0, colon);
                std::string const detail = colon == std::string::npos ? m : m.substr(colon + 2);
                details["group"] = ri->group;
                details["kind"] = ri->kind;
                details["causes"] = json::array{json::object{{"reason", "FieldValueInvalid"}, {"message", detail}, {"field", field}}};
                message = ri->kind + (ri->group.empty() ? "" : "." + ri->group) + " \"" + name + "\" is invalid: " + m;
            }
            send(make_json(code, status_object(code, reason, message, std::move(details)), req_.version(), req_.keep_alive()));
        }

        void ok(json::value const& v, unsigned code = 200) { send(make_json(code, v, req_.version(), req_.keep_alive())); }

        // The request body: JSON, or YAML (application/yaml; malformed YAML is 422 Invalid with its
        // line and column).
        result<json::value> body_json() {
            std::string const ct(req_[http::field::content_type]);
            if (ct.starts_with("application/yaml") || ct.starts_with("application/x-yaml")) {
                auto docs = kube::parse_yaml(req_.body(), "body");
                if (!docs) return std::move(docs).error();
                if (docs->size() != 1) return make_error(errc::bad_request, "the body must hold exactly one YAML document");
                return std::move((*docs)[0]);
            }
            if (!ct.empty() && !ct.starts_with("application/json") && !ct.ends_with("+json"))
                return make_error(errc::unsupported, "the body of the request was in an unknown format - accepted media types include: "
                                                     "application/json, application/yaml");
            boost::system::error_code ec;
            auto v = json::parse(req_.body(), ec);
            if (ec) return make_error(errc::bad_request, "the request body is not valid JSON: " + ec.message());
            return v;
        }

        void handle() {
            auto const t = detail::parse_target(req_.target());
            auto const& seg = t.segments;
            bool const need_auth = !srv_.opt_.token.empty() || srv_.opt_.require_client_auth;
            bool const authed = (!srv_.opt_.token.empty() && req_[http::field::authorization] == "Bearer " + srv_.opt_.token) || client_cert_;
            if (need_auth && !authed)
                return send(make_json(401, status_object(401, "Unauthorized", "Unauthorized"), req_.version(), req_.keep_alive()));
            bool const get = req_.method() == http::verb::get;
            if (get && seg.size() == 1 && seg[0] == "version") return ok(srv_.version_info());
            if (get && seg.size() == 1 && seg[0] == "healthz") return ok(json::string("ok"));
            if (get && seg.size() == 1 && seg[0] == "api")
                return ok(json::object{{"kind", "APIVersions"}, {"versions", json::array{"v1"}},
                                       {"serverAddressByClientCIDRs", json::array{json::object{{"clientCIDR", "0.0.0.0/0"},
                                                                                                {"serverAddress", "127.0.0.1:" + std::to_string(srv_.port())}}}}});
            if (get && seg.size() == 1 && seg[0] == "apis") return ok(srv_.group_list());
            // OpenAPI v3: no schemas, only PATCH operations that declare the fieldValidation parameter,
            // which tells kubectl to leave validation to the server (it validates every object itself).
            if (get && seg.size() == 2 && seg[0] == "openapi" && seg[1] == "v3")
                return ok(json::object{{"paths", json::object{{"api/v1", json::object{{"serverRelativeURL", "/openapi/v3/api/v1"}}}}}});
            if (get && seg.size() == 4 && seg[0] == "openapi" && seg[1] == "v3" && seg[2] == "api" && seg[3] == "v1") return ok(srv_.openapi_core());
            // OpenAPI v2 as kubectl asks for it (gnostic protobuf): a Document with only swagger: "2.0",
            // so client-side validation finds no schema and skips, as for any unknown kind.
            if (get && seg.size() == 2 && seg[0] == "openapi" && seg[1] == "v2") {
                response res{http::status::ok, req_.version()};
                res.set(http::field::content_type, "application/com.github.proto-openapi.spec.v2.v1.0+protobuf");
                res.body() = std::string("\x0a\x03" "2.0", 5);
                res.keep_alive(req_.keep_alive());
                res.prepare_payload();
                return send(std::move(res));
            }
            if (get && seg.size() == 2 && seg[0] == "api") return ok(srv_.resource_list("", seg[1]));
            if (get && seg.size() == 2 && seg[0] == "apis") {
                std::set<std::string> vs;
                for (auto const& r : srv_.reg_.all())
                    if (r.group == seg[1]) vs.insert(r.version);
                if (vs.empty()) return fail(make_error(errc::not_found, "the server could not find the requested resource"));
                return ok(group_object(seg[1], vs));
            }
            if (get && seg.size() == 3 && seg[0] == "apis") {
                bool any = false;
                for (auto const& r : srv_.reg_.all()) any = any || (r.group == seg[1] && r.version == seg[2]);
                if (!any) return fail(make_error(errc::not_found, "the server could not find the requested resource"));
                return ok(srv_.resource_list(seg[1], seg[2]));
            }
            error err;
            auto r = srv_.resolve(seg, err);
            if (!r) return fail(err.code ? err : make_error(errc::not_found, "the server could not find the requested resource"));
            handle_resource(*r, t);
        }

        void handle_resource(route const& r, detail::request_target const& t) {
            auto& st = srv_.store_;
            std::string const accept(req_[http::field::accept]);
            bool const table = wants_table(accept);
            auto const& ri = r.info;
            switch (req_.method()) {
            case http::verb::get: {
                if (!r.name.empty()) {
                    auto o = st.get(ri, r.ns, r.name);
                    if (!o) return fail(o.error(), r.name, ri.plural);
                    if (table) return ok(table_of(ri, json::array{*o}, json::object{{"resourceVersion", o->at("metadata").at("resourceVersion")}}));
                    return ok(*o);
                }
                auto labels = selector::parse(t.param("labelSelector"), "labelSelector");
                if (!labels) return fail(error{make_error_code(errc::bad_request), labels.error().message});
                auto fields = selector::parse(t.param("fieldSelector"), "fieldSelector");
                if (!fields) return fail(error{make_error_code(errc::bad_request), fields.error().message});
                std::string const w = t.param("watch");
                if (w == "true" || w == "1") return start_watch(r, t, *labels, *fields, table);
                list_options lo;
                lo.namespace_ = r.ns, lo.labels = std::move(*labels), lo.fields = std::move(*fields);
                lo.limit = std::strtoull(t.param("limit").c_str(), nullptr, 10);
                lo.continue_ = t.param("continue");
                auto l = st.list(ri, lo);
                if (!l) return fail(error{make_error_code(errc::bad_request), l.error().message});
                json::object meta{{"resourceVersion", std::to_string(l->rv)}};
                if (!l->continue_.empty()) meta["continue"] = l->continue_, meta["remainingItemCount"] = l->remaining;
                if (table) return ok(table_of(ri, l->items, std::move(meta)));
                return ok(json::object{{"kind", ri.kind + "List"}, {"apiVersion", ri.api_version()}, {"metadata", std::move(meta)},
                                       {"items", std::move(l->items)}});
            }
            case http::verb::post: {
                if (!r.name.empty()) return fail(make_error(errc::bad_request, "POST to a named object is not supported"));
                auto body = body_json();
                if (!body) return fail(body.error());
                if (auto e = check_namespace(*body, r.ns); e) return fail(*e);
                if (t.param("dryRun") == "All") {
                    if (ri.admit)
                        if (auto a = ri.admit(*body); !a) return fail(a.error(), name_of(*body), ri.kind, &ri);
                    return ok(*body, 201);
                }
                std::string const name = name_of(*body);
                auto o = st.create(ri, r.ns, std::move(*body));
                if (!o) return fail(o.error(), name, ri.kind, &ri);
                return ok(*o, 201);
            }
            case http::verb::put: {
                if (r.name.empty()) return fail(make_error(errc::bad_request, "PUT needs an object name"));
                auto body = body_json();
                if (!body) return fail(body.error());
                if (auto e = check_namespace(*body, r.ns); e) return fail(*e);
                auto o = st.update(ri, r.ns, r.name, std::move(*body), r.sub == "status");
                if (!o) return fail(o.error(), r.name, ri.kind, &ri);
                return ok(*o);
            }
            case http::verb::patch: {
                if (r.name.empty()) return fail(make_error(errc::bad_request, "PATCH needs an object name"));
                std::string const ct(req_[http::field::content_type]);
                auto patch = body_json();
                if (!patch) return fail(patch.error());
                std::function<result<json::value>(json::value)> fn;
                if (ct.starts_with("application/merge-patch+json"))
                    fn = [&](json::value cur) -> result<json::value> { return merge_patch(std::move(cur), *patch); };
                else if (ct.starts_with("application/json-patch+json"))
                    fn = [&](json::value cur) { return json_patch(std::move(cur), *patch); };
                else if (ct.starts_with("application/strategic-merge-patch+json")) {
                    if (!ri.group.empty() && ri.admit) return fail(make_error(errc::unsupported, "strategic merge patch is not supported for custom resources"));
                    fn = [&](json::value cur) -> result<json::value> { return strategic_merge_patch(std::move(cur), *patch); };
                } else
                    return fail(make_error(errc::unsupported, "the body of the request was in an unknown format - accepted media types include: "
                                                              "application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json"));
                auto o = st.modify(ri, r.ns, r.name, r.sub == "status", fn);
                if (!o) return fail(o.error(), r.name, ri.kind, &ri);
                return ok(*o);
            }
            case http::verb::delete_: {
                propagation p = ri.kind == "Namespace" ? propagation::background : propagation::background;
                std::string pp = t.param("propagationPolicy");
                std::optional<std::string> uid;
                if (!req_.body().empty()) {
                    boost::system::error_code ec;
                    auto opts = json::parse(req_.body(), ec);
                    if (!ec && opts.is_object()) {
                        if (auto const* v = opts.get_object().if_contains("propagationPolicy"); v && v->is_string()) pp = std::string(v->get_string());
                        if (auto const* v = opts.get_object().if_contains("orphanDependents"); v && v->is_bool() && v->get_bool()) pp = "Orphan";
                        if (auto const* pc = opts.get_object().if_contains("preconditions"); pc && pc->is_object())
                            if (auto const* u = pc->get_object().if_contains("uid"); u && u->is_string()) uid = std::string(u->get_string());
                    }
                }
                if (pp == "Foreground") p = propagation::foreground;
                else if (pp == "Orphan") p = propagation::orphan;
                else if (!pp.empty() && pp != "Background") return fail(make_error(errc::bad_request, "unknown propagationPolicy \"" + pp + "\""));
                if (r.name.empty()) {  // deletecollection
                    auto labels = selector::parse(t.param("labelSelector"), "labelSelector");
                    if (!labels) return fail(error{make_error_code(errc::bad_request), labels.error().message});
                    list_options lo;
                    lo.namespace_ = r.ns, lo.labels = std::move(*labels);
                    auto l = st.list(ri, lo);
                    if (!l) return fail(l.error());
                    for (auto const& o : l->items) {
                        auto const& m = o.at("metadata").as_object();
                        (void)st.remove(ri, m.contains("namespace") ? std::string(m.at("namespace").as_string()) : "",
                                        std::string(m.at("name").as_string()), p);
                    }
                    return ok(status_object(200, "", ""));
                }
                auto o = st.remove(ri, r.ns, r.name, p, uid);
                if (!o) return fail(o.error(), r.name, ri.plural);
                return ok(*o);
            }
            default: return fail(make_error(errc::bad_request, "method not allowed"));
            }
        }

        json::value table_of(resource_info const& ri, json::array const& items, json::object meta) {
            return api_server::table(ri, items, std::move(meta));
        }

        static std::string name_of(json::value const& v) {
            if (auto const* m = v.is_object() ? v.get_object().if_contains("metadata") : nullptr; m && m->is_object())
                if (auto const* n = m->get_object().if_contains("name"); n && n->is_string()) return std::string(n->get_string());
            return {};
        }

        static std::optional<error> check_namespace(json::value const& body, std::string const& ns) {
            if (!body.is_object()) return make_error(errc::bad_request, "the body must be a JSON object");
            auto const* m = body.get_object().if_contains("metadata");
            if (!m || !m->is_object()) return std::nullopt;
            auto const* n = m->get_object().if_contains("namespace");
            if (n && n->is_string() && !n->get_string().empty() && !ns.empty() && n->get_string() != ns)
                return make_error(errc::bad_request, "the namespace of the provided object does not match the namespace sent on the request");
            return std::nullopt;
        }

        // --- watch ------------------------------------------------------------------------------

        void start_watch(route const& r, detail::request_target const& t, selector labels, selector fields, bool table) {
            std::uint64_t from = std::strtoull(t.param("resourceVersion").c_str(), nullptr, 10);
            bool const bookmarks = t.param("allowWatchBookmarks") == "true";
            auto const ri = r.info;
            auto self = shared_from_this();
            auto weak = weak_from_this();
            auto& io = srv_.io_;
            auto emit = [weak, ri, labels, fields, table, &io](watch_event const& ev) {
                // Runs under the store's lock, maybe on another thread: filter and hand over.
                auto const& o = ev.object.get_object();
                if (!labels.matches_labels(o)) return;
                if (!fields.empty()) {
                    auto const& m = o.at("metadata").as_object();
                    std::string const name(m.at("name").as_string()), ns = m.contains("namespace") ? std::string(m.at("namespace").as_string()) : "";
                    if (!fields.matches([&](std::string const& k) -> std::string const* { return k == "metadata.name" ? &name : &ns; })) return;
                }
                json::value obj = table ? api_server::table(ri, json::array{ev.object}, json::object{}) : ev.object;
                std::string line = json::serialize(json::object{{"type", ev.type}, {"object", std::move(obj)}}) + "\n";
                asio::post(io, [weak, line = std::move(line), rv = ev.rv] {
                    if (auto s = weak.lock()) {
                        s->sent_rv_ = std::max(s->sent_rv_, rv);
                        s->push(line);
                    }
                });
            };
            // Headers first; events follow as chunks.
            auto hdr = std::make_shared<http::response<http::empty_body>>(http::status::ok, req_.version());
            hdr->set(http::field::content_type, "application/json");
            hdr->chunked(true);
            hdr->keep_alive(false);
            sr_ = std::make_shared<http::response_serializer<http::empty_body>>(*hdr);
            header_ = hdr;
            writing_ = true;
            if (srv_.opt_.log) srv_.opt_.log("WATCH " + std::string(req_.target()));
            http::async_write_header(stream_, *sr_, [self](boost::system::error_code ec, std::size_t) {
                self->writing_ = false;
                if (ec) return self->close();
                self->flush();
            });
            // Bookmarks promise that every event up to their version was sent on this stream, so they
            // carry the version of the last event queued here, never the store's newest.
            sent_rv_ = from ? from : srv_.store_.resource_version();
            auto id = srv_.store_.watch(ri, r.ns, from, emit);
            if (!id) {
                auto [code, reason] = http_of(id.error());
                push(json::serialize(json::object{{"type", "ERROR"}, {"object", status_object(code, reason, id.error().what())}}) + "\n");
                closing_ = true;
                return;
            }
            watch_id_ = *id;
            // Watches end after timeoutSeconds (clients re-establish them), bookmarks carry the version.
            auto const timeout = std::strtoull(t.param("timeoutSeconds").c_str(), nullptr, 10);
            deadline_ = std::chrono::steady_clock::now() + std::chrono::seconds(timeout ? timeout : 1800);
            tick(bookmarks, ri);
            // Notice the client going away.
            stream_.async_read_some(asio::buffer(drain_), [self](boost::system::error_code, std::size_t) { self->close(); });
        }

        void tick(bool bookmarks, resource_info const& ri) {
            timer_.expires_after(std::chrono::seconds(bookmarks ? 5 : 30));
            timer_.async_wait([self = shared_from_this(), bookmarks, ri](boost::system::error_code ec) {
                if (ec) return;
                if (std::chrono::steady_clock::now() >= self->deadline_) {
                    self->closing_ = true;
                    return self->flush();
                }
                if (bookmarks)
                    self->push(json::serialize(json::object{
                                   {"type", "BOOKMARK"},
                                   {"object", json::object{{"kind", ri.kind}, {"apiVersion", ri.api_version()},
                                                           {"metadata", json::object{{"resourceVersion", std::to_string(self->sent_rv_)}}}}}}) +
                               "\n");
                self->tick(bookmarks, ri);
            });
        }

        void push(std::string line) {
            pending_.push_back(std::move(line));
            flush();
        }

        void flush() {
            if (writing_ || !beast::get_lowest_layer(stream_).socket().is_open()) return;
            if (pending_.empty()) {
                if (closing_) {
                    writing_ = true;
                    asio::async_write(stream_, http::make_chunk_last(), [self = shared_from_this()](boost::system::error_code, std::size_t) {
                        self->close();
                    });
                }
                return;
            }
            writing_ = true;
            auto data = std::make_shared<std::string>(std::move(pending_.front()));
            pending_.pop_front();
            asio::async_write(stream_, http::make_chunk(asio::buffer(*data)), [self = shared_from_this(), data](boost::system::error_code ec, std::size_t) {
                self->writing_ = false;
                if (ec) return self->close();
                self->flush();
            });
        }

        api_server& srv_;
        store& store_;
        Stream stream_;
        bool client_cert_ = false;
        beast::flat_buffer buf_;
        std::optional<http::request_parser<http::string_body>> parser_;
        http::request<http::string_body> req_;
        asio::steady_timer timer_;
        std::shared_ptr<void> header_;
        std::shared_ptr<http::response_serializer<http::empty_body>> sr_;
        std::deque<std::string> pending_;
        bool writing_ = false, closing_ = false;
        std::uint64_t sent_rv_ = 0;
        std::optional<std::uint64_t> watch_id_;
        std::chrono::steady_clock::time_point deadline_;
        std::array<char, 512> drain_;
    };

    asio::io_context& io_;
    store& store_;
    registry& reg_;
    tcp::acceptor acceptor_;
    server_options opt_;
    std::optional<asio::ssl::context> tls_;
};

}  // namespace stash::embedded
