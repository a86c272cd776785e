// Cluster policy `rest`: any conformant Kubernetes API server over HTTP/1.1 (Boost.Beast), TLS through
// OpenSSL (verified by default), kept-alive connections reused, a client-side rate limit, watches
// as chunked streams read by a background thread.
#pragma once

#include <stash/kube/cluster.hpp>
#include <stash/kube/config.hpp>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <openssl/x509.h>

#include <chrono>
#include <deque>
#include <mutex>
#include <thread>

namespace stash::policies::cluster {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;

/** Models `stash::kube::cluster`. Thread-safe: requests from several threads use separate pooled
    connections. Construct with `connect`. */
class rest {
public:
    struct options {
        double qps = 50;       ///< sustained requests per second (client-go's token bucket)
        unsigned burst = 100;  ///< requests allowed at once above the rate
        std::chrono::seconds timeout{30};
        std::string user_agent = "stash-operator/0.1";
    };

    /// Prepares TLS (CA, client certificate) and runs an exec credential plugin if the config has
    /// one. Errors name what could not be loaded. No request is made yet.
    static result<std::unique_ptr<rest>> connect(kube::rest_config cfg) { return connect(std::move(cfg), options{}); }
    static result<std::unique_ptr<rest>> connect(kube::rest_config cfg, options opt) {
        STASH_TRYV(kube::run_exec_plugin(cfg));
        auto r = std::unique_ptr<rest>(new rest(std::move(cfg), opt));
        STASH_TRYV(r->parse_server());
        if (r->tls_) STASH_TRYV(r->setup_tls());
        return r;
    }

    std::string default_namespace() const { return cfg_.namespace_; }
    kube::rest_config const& config() const noexcept { return cfg_; }

    result<json::value> get(kube::resource_type const& r, std::string const& ns, std::string const& name) {
        return call(http::verb::get, r.path(ns, name), {});
    }

    result<kube::list_response> list(kube::resource_type const& r, std::string const& ns, kube::list_request const& q) {
        std::string t = r.path(ns);
        char sep = '?';
        auto add = [&](char const* k, std::string const& v) {
            if (v.empty()) return;
            t += sep + std::string(k) + "=" + escape(v);
            sep = '&';
        };
        add("labelSelector", q.label_selector);
        add("fieldSelector", q.field_selector);
        if (q.limit) add("limit", std::to_string(q.limit));
        add("continue", q.continue_);
        auto v = call(http::verb::get, t, {});
        if (!v) return std::move(v).error();
        kube::list_response out;
        auto const& o = v->as_object();
        if (auto const* items = o.if_contains("items"); items && items->is_array()) out.items = items->get_array();
        if (auto const* m = o.if_contains("metadata"); m && m->is_object()) {
            out.resource_version = kube::detail::jstr(m->get_object(), "resourceVersion");
            out.continue_ = kube::detail::jstr(m->get_object(), "continue");
        }
        return out;
    }

    result<json::value> create(kube::resource_type const& r, std::string const& ns, json::value o) {
        return call(http::verb::post, r.path(ns), json::serialize(o));
    }
    result<json::value> update(kube::resource_type const& r, std::string const& ns, std::string const& name, json::value o,
                               std::string const& sub = {}) {
        return call(http::verb::put, r.path(ns, name, sub), json::serialize(o));
    }
    result<json::value> patch(kube::resource_type const& r, std::string const& ns, std::string const& name, kube::patch_type t,
                              json::value p, std::string const& sub = {}) {
        char const* ct = t == kube::patch_type::merge ? "application/merge-patch+json"
                         : t == kube::patch_type::json ? "application/json-patch+json"
                                                       : "application/strategic-merge-patch+json";
        return call(http::verb::patch, r.path(ns, name, sub), json::serialize(p), ct);
    }
    result<void> remove(kube::resource_type const& r, std::string const& ns, std::string const& name, kube::deletion d) {
        char const* pp = d == kube::deletion::foreground ? "Foreground" : d == kube::deletion::orphan ? "Orphan" : "Background";
        auto v = call(http::verb::delete_, r.path(ns, name),
                      json::serialize(json::object{{"kind", "DeleteOptions"}, {"apiVersion", "v1"}, {"propagationPolicy", pp}}));
        if (!v) return std::move(v).error();
        return {};
    }

    /// Starts a watch on its own connection and thread. `fn` gets each event, then one with an empty
    /// type when the stream ends (server timeout, error, or `stop`).
    result<kube::watch_handle> watch(kube::resource_type const& r, std::string const& ns, kube::watch_request const& q,
                                     std::function<void(kube::watch_event const&)> fn) {
        std::string t = r.path(ns) + "?watch=true";
        if (!q.resource_version.empty()) t += "&resourceVersion=" + escape(q.resource_version);
        if (!q.label_selector.empty()) t += "&labelSelector=" + escape(q.label_selector);
        if (!q.field_selector.empty()) t += "&fieldSelector=" + escape(q.field_selector);
        if (q.bookmarks) t += "&allowWatchBookmarks=true";
        if (q.timeout_seconds) t += "&timeoutSeconds=" + std::to_string(q.timeout_seconds);
        throttle();
        auto conn = open_connection(false);
        if (!conn) return std::move(conn).error();
        auto c = std::shared_ptr<connection>(std::move(*conn));
        http::request<http::empty_body> req{http::verb::get, t, 11};
        prepare(req);
        beast::error_code ec;
        auto parser = std::make_shared<http::response_parser<http::empty_body>>();
        parser->body_limit(boost::none);
        c->write(req, ec);
        if (!ec) c->read_header(*parser, ec);
        if (ec) return make_error(errc::io, "watch " + t + ": " + ec.message());
        if (parser->get().result_int() != 200)
            return make_error(status_code(parser->get().result_int()), "watch " + t + ": HTTP " + std::to_string(parser->get().result_int()));
        auto thread = std::make_shared<std::jthread>([c, fn = std::move(fn), parser](std::stop_token) mutable {
            auto& p = *parser;
            std::string pending;
            auto on_chunk = [&](std::uint64_t, std::string_view data, beast::error_code&) {
                pending.append(data);
                for (std::size_t nl; (nl = pending.find('\n')) != std::string::npos;) {
                    boost::system::error_code jec;
                    auto ev = json::parse(std::string_view(pending).substr(0, nl), jec);
                    pending.erase(0, nl + 1);
                    if (jec || !ev.is_object()) continue;
                    auto const* type = ev.get_object().if_contains("type");
                    auto const* obj = ev.get_object().if_contains("object");
                    if (type && type->is_string() && obj) fn({std::string(type->get_string()), *obj});
                }
                return data.size();
            };
            std::function<std::size_t(std::uint64_t, std::string_view, beast::error_code&)> cb = on_chunk;
            p.on_chunk_body(cb);
            beast::error_code ec;
            while (!p.is_done()) {
                c->read_some(p, ec);
                if (ec) break;
            }
            fn({"", json::value()});
        });
        return kube::watch_handle([c, thread] {
            c->shutdown();
            if (thread->joinable() && thread->get_id() != std::this_thread::get_id()) thread->join();
        });
    }

private:
    // One connection: plain TCP or TLS, with its own io_context for blocking operations.
    struct connection {
        asio::io_context io;
        std::optional<beast::tcp_stream> plain;
        std::optional<beast::ssl_stream<beast::tcp_stream>> secure;
        beast::flat_buffer buf;

        beast::tcp_stream& lowest() { return plain ? *plain : beast::get_lowest_layer(*secure); }
        template <class Msg>
        void write(Msg& m, beast::error_code& ec) {
            if (plain) http::write(*plain, m, ec);
            else http::write(*secure, m, ec);
        }
        template <class Parser>
        void read_header(Parser& p, beast::error_code& ec) {
            if (plain) http::read_header(*plain, buf, p, ec);
            else http::read_header(*secure, buf, p, ec);
        }
        template <class Parser>
        void read_some(Parser& p, beast::error_code& ec) {
            if (plain) http::read_some(*plain, buf, p, ec);
            else http::read_some(*secure, buf, p, ec);
        }
        template <class Res>
        void read(Res& res, beast::error_code& ec) {
            if (plain) http::read(*plain, buf, res, ec);
            else http::read(*secure, buf, res, ec);
        }
        void shutdown() {
            beast::error_code ec;
            lowest().socket().shutdown(asio::ip::tcp::socket::shutdown_both, ec);
        }
    };

    rest(kube::rest_config cfg, options opt) : cfg_(std::move(cfg)), opt_(opt), tokens_(opt.burst), last_refill_(std::chrono::steady_clock::now()) {}

    result<void> parse_server() {
        std::string s = cfg_.server;
        if (s.starts_with("https://")) tls_ = true, s = s.substr(8);
        else if (s.starts_with("http://")) tls_ = false, s = s.substr(7);
        else return make_error(errc::invalid_argument, "server \"" + cfg_.server + "\": expected http:// or https://");
        if (auto slash = s.find('/'); slash != std::string::npos) s = s.substr(0, slash);
        auto const colon = s.rfind(':');
        if (!s.empty() && s.front() == '[') {  // [IPv6]:port
            auto const close = s.find(']');
            host_ = s.substr(1, close - 1);
            port_ = close + 1 < s.size() && s[close + 1] == ':' ? s.substr(close + 2) : (tls_ ? "443" : "80");
        } else if (colon != std::string::npos) {
            host_ = s.substr(0, colon), port_ = s.substr(colon + 1);
        } else {
            host_ = s, port_ = tls_ ? "443" : "80";
        }
        return {};
    }

    result<void> setup_tls() {
        ssl_.emplace(asio::ssl::context::tls_client);
        beast::error_code ec;
        if (cfg_.insecure_skip_tls_verify) {
            ssl_->set_verify_mode(asio::ssl::verify_none);
        } else {
            ssl_->set_verify_mode(asio::ssl::verify_peer);
            if (!cfg_.ca_pem.empty()) ssl_->add_certificate_authority(asio::buffer(cfg_.ca_pem), ec);
            else ssl_->set_default_verify_paths(ec);
            if (ec) return make_error(errc::invalid_argument, "certificate authority of " + cfg_.server + ": " + ec.message());
        }
        if (!cfg_.client_cert_pem.empty()) {
            ssl_->use_certificate_chain(asio::buffer(cfg_.client_cert_pem), ec);
            if (!ec) ssl_->use_private_key(asio::buffer(cfg_.client_key_pem), asio::ssl::context::pem, ec);
            if (ec) return make_error(errc::invalid_argument, "client certificate for " + cfg_.server + ": " + ec.message());
        }
        return {};
    }

    result<std::unique_ptr<connection>> open_connection(bool pooled) {
        if (pooled) {
            std::lock_guard lk(pool_mu_);
            if (!idle_.empty()) {
                auto c = std::move(idle_.back());
                idle_.pop_back();
                return c;
            }
        }
        auto c = std::make_unique<connection>();
        c->buf.reserve(64 * 1024);  // Beast reads at most the free capacity per call: room for large lists
        beast::error_code ec;
        asio::ip::tcp::resolver resolver(c->io);
        auto endpoints = resolver.resolve(host_, port_, ec);
        if (ec) return make_error(errc::io, "cannot resolve " + host_ + ": " + ec.message());
        if (tls_) {
            c->secure.emplace(c->io, *ssl_);
            beast::get_lowest_layer(*c->secure).expires_after(opt_.timeout);
            beast::get_lowest_layer(*c->secure).connect(endpoints, ec);
            std::string const sni = cfg_.tls_server_name.empty() ? host_ : cfg_.tls_server_name;
            if (!ec) {
                SSL_set_tlsext_host_name(c->secure->native_handle(), sni.c_str());
                if (!cfg_.insecure_skip_tls_verify) {
                    // Verify the certificate names the host (DNS name or IP address).
                    X509_VERIFY_PARAM* param = SSL_get0_param(c->secure->native_handle());
                    boost::system::error_code aec;
                    auto addr = asio::ip::make_address(sni, aec);
                    if (!aec) X509_VERIFY_PARAM_set1_ip_asc(param, sni.c_str());
                    else X509_VERIFY_PARAM_set1_host(param, sni.c_str(), 0);
                }
                c->secure->handshake(asio::ssl::stream_base::client, ec);
                if (ec)
                    return make_error(errc::unauthorized, "TLS handshake with " + cfg_.server + " failed: " + ec.message() +
                                                              " (check the certificate authority in the kubeconfig)");
            }
            beast::get_lowest_layer(*c->secure).expires_never();
        } else {
            c->plain.emplace(c->io);
            c->plain->expires_after(opt_.timeout);
            c->plain->connect(endpoints, ec);
            c->plain->expires_never();
        }
        if (ec) return make_error(errc::io, "cannot connect to " + cfg_.server + ": " + ec.message());
        return c;
    }

    void release(std::unique_ptr<connection> c) {
        std::lock_guard lk(pool_mu_);
        if (idle_.size() < 16) idle_.push_back(std::move(c));
    }

    template <class Req>
    void prepare(Req& req) {
        req.set(http::field::host, host_ + ":" + port_);
        req.set(http::field::user_agent, opt_.user_agent);
        req.set(http::field::accept, "application/json");
        if (auto t = cfg_.bearer_token(); !t.empty()) req.set(http::field::authorization, "Bearer " + t);
    }

    // The client-side token bucket: waits until a request may go.
    void throttle() {
        std::unique_lock lk(rate_mu_);
        for (;;) {
            auto const now = std::chrono::steady_clock::now();
            tokens_ = std::min<double>(opt_.burst, tokens_ + std::chrono::duration<double>(now - last_refill_).count() * opt_.qps);
            last_refill_ = now;
            if (tokens_ >= 1) {
                tokens_ -= 1;
                return;
            }
            lk.unlock();
            std::this_thread::sleep_for(std::chrono::duration<double>((1 - tokens_) / opt_.qps));
            lk.lock();
        }
    }

    static errc status_code(unsigned code, std::string_view reason = {}) {
        switch (code) {
        case 400: return errc::bad_request;
        case 401: return errc::unauthorized;
        case 403: return errc::forbidden;
        case 404: return errc::not_found;
        case 409: return reason == "AlreadyExists" ? errc::already_exists : errc::conflict;
        case 410: return errc::gone;
        case 415: return errc::unsupported;
        case 422: return errc::invalid_argument;
        case 408:
        case 504: return errc::timeout;
        default: return errc::io;
        }
    }

    result<json::value> call(http::verb v, std::string const& target, std::string body, char const* content_type = "application/json") {
        throttle();
        for (int attempt = 0;; ++attempt) {
            auto conn = open_connection(true);
            if (!conn) return std::move(conn).error();
            auto& c = **conn;
            http::request<http::string_body> req{v, target, 11};
            prepare(req);
            req.keep_alive(true);
            if (!body.empty() || v == http::verb::post || v == http::verb::put || v == http::verb::patch) {
                req.set(http::field::content_type, content_type);
                req.body() = body;
            }
            req.prepare_payload();
            beast::error_code ec;
            http::response<http::string_body> res;
            c.lowest().expires_after(opt_.timeout);
            c.write(req, ec);
            if (!ec) c.read(res, ec);
            c.lowest().expires_never();
            if (ec) {
                // A pooled connection the server closed meanwhile: one retry on a new one.
                if (attempt == 0 && (ec == http::error::end_of_stream || ec == asio::error::connection_reset || ec == asio::error::broken_pipe ||
                                     ec == asio::ssl::error::stream_truncated))
                    continue;
                if (ec == beast::error::timeout) return make_error(errc::timeout, std::string(http::to_string(v)) + " " + target + ": timed out");
                return make_error(errc::io, std::string(http::to_string(v)) + " " + target + ": " + ec.message());
            }
            if (res.keep_alive()) release(std::move(*conn));
            boost::system::error_code jec;
            auto j = json::parse(res.body(), jec);
            if (res.result_int() >= 200 && res.result_int() < 300) {
                if (jec) return make_error(errc::io, std::string(http::to_string(v)) + " " + target + ": the response is not JSON");
                return j;
            }
            std::string msg, reason;
            if (!jec && j.is_object()) msg = kube::detail::jstr(j.get_object(), "message"), reason = kube::detail::jstr(j.get_object(), "reason");
            if (msg.empty()) msg = "HTTP " + std::to_string(res.result_int()) + " from " + std::string(http::to_string(v)) + " " + target;
            return make_error(status_code(res.result_int(), reason), msg);
        }
    }

    static std::string escape(std::string const& s) {
        std::string o;
        for (unsigned char ch : s) {
            if (std::isalnum(ch) || ch == '-' || ch == '_' || ch == '.' || ch == '~') o += char(ch);
            else {
                char b[4];
                std::snprintf(b, sizeof b, "%%%02X", ch);
                o += b;
            }
        }
        return o;
    }

    kube::rest_config cfg_;
    options opt_;
    bool tls_ = false;
    std::string host_, port_;
    std::optional<asio::ssl::context> ssl_;
    std::mutex pool_mu_;
    std::vector<std::unique_ptr<connection>> idle_;
    std::mutex rate_mu_;
    double tokens_;
    std::chrono::steady_clock::time_point last_refill_;
};

static_assert(kube::cluster<rest>);

}  // namespace stash::policies::cluster
