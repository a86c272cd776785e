// A blocking HTTP/1.1 client for the backend drivers: one origin (scheme, host, port), TLS through
// OpenSSL (verified by default, extra CA or none on request), kept-alive connections pooled so that
// several threads each have a request in flight, and a timeout on every connect, write and read.
#pragma once

#include <stash/core/bytes.hpp>
#include <stash/core/error.hpp>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <cctype>
#include <chrono>
#include <cstdio>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace stash::net {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

/// Where requests go: "http://host:port" or "https://host[:port]" (IPv6 in brackets).
struct origin {
    bool tls = false;
    std::string host, port;

    /// Parses the scheme and authority of `url`; a path after them is ignored.
    static result<origin> parse(std::string_view url) {
        origin o;
        if (url.starts_with("https://")) o.tls = true, url.remove_prefix(8);
        else if (url.starts_with("http://")) url.remove_prefix(7);
        else return make_error(errc::invalid_argument, "\"" + std::string(url) + "\": expected an http:// or https:// URL");
        url = url.substr(0, url.find('/'));
        if (url.starts_with('[')) {
            auto const close = url.find(']');
            if (close == std::string_view::npos) return make_error(errc::invalid_argument, "\"" + std::string(url) + "\": unclosed [");
            o.host = url.substr(1, close - 1);
            url.remove_prefix(close + 1);
            o.port = url.starts_with(':') ? std::string(url.substr(1)) : "";
        } else if (auto c = url.rfind(':'); c != std::string_view::npos) {
            o.host = url.substr(0, c), o.port = url.substr(c + 1);
        } else {
            o.host = url;
        }
        if (o.host.empty()) return make_error(errc::invalid_argument, "URL without a host");
        if (o.port.empty()) o.port = o.tls ? "443" : "80";
        return o;
    }
    /// The Host header: the port only when it is not the scheme's default.
    std::string host_header() const {
        std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
        return port == (tls ? "443" : "80") ? h : h + ":" + port;
    }
};

struct http_options {
    std::chrono::milliseconds timeout{60000};  ///< per connect, request write and response read
    bool insecure_tls = false;                 ///< skip certificate verification (Stash's `insecureTLS`)
    std::string ca_pem;                        ///< trust this CA (PEM) instead of the system's
    std::size_t max_idle = 16;                 ///< idle connections kept for reuse
    std::string user_agent = "stash-cpp";
};

using header_list = std::vector<std::pair<std::string, std::string>>;

struct http_response {
    unsigned status = 0;
    http::fields headers;
    bytes body;
    std::string body_text() const { return std::string(reinterpret_cast<char const*>(body.data()), body.size()); }
    std::string header(std::string_view name) const {
        auto it = headers.find(name);
        return it == headers.end() ? std::string() : std::string(it->value());
    }
};

/** Sends requests to one origin. Thread-safe: each request takes a connection of its own from the
    pool (or opens one). Errors: `errc::timeout` when the server does not answer within the
    timeout, `errc::io` for network failures (connection refused or reset), `errc::unauthorized`
    for a server certificate that does not verify, with the method and target in the message. An HTTP error status is not an error here: the caller maps it. */
class http_client {
public:
    static result<std::unique_ptr<http_client>> make(origin o, http_options opt = {}) {
        std::unique_ptr<http_client> c(new http_client(std::move(o), std::move(opt)));
        if (c->origin_.tls) {
            c->ssl_.emplace(asio::ssl::context::tls_client);
            beast::error_code ec;
            if (c->opt_.insecure_tls) {
                c->ssl_->set_verify_mode(asio::ssl::verify_none);
            } else {
                c->ssl_->set_verify_mode(asio::ssl::verify_peer);
                if (!c->opt_.ca_pem.empty()) c->ssl_->add_certificate_authority(asio::buffer(c->opt_.ca_pem), ec);
                else c->ssl_->set_default_verify_paths(ec);
                if (ec) return make_error(errc::invalid_argument, "CA certificate for " + c->origin_.host + ": " + ec.message());
            }
        }
        return c;
    }

    origin const& where() const noexcept { return origin_; }

    /// Sends `method target` with `headers` and `body`; Host, User-Agent and Content-Length are added.
    result<http_response> send(http::verb method, std::string const& target, header_list const& headers, byte_span body = {}) {
        auto const what = [&] { return std::string(http::to_string(method)) + " " + origin_.host_header() + target; };
        for (int attempt = 0;; ++attempt) {
            auto c = take();
            if (!c) return error{c.error().code, what() + ": " + c.error().what()};
            bool const reused = (*c)->used;
            (*c)->used = true;
            http::request<http::span_body<std::byte const>> req{method, target, 11};
            req.set(http::field::host, origin_.host_header());
            req.set(http::field::user_agent, opt_.user_agent);
            for (auto const& [k, v] : headers) req.set(k, v);
            req.body() = body;
            req.keep_alive(true);
            req.prepare_payload();
            if (body.empty() && (method == http::verb::put || method == http::verb::post)) req.content_length(0);
            http::response_parser<http::vector_body<std::byte>> parser;
            parser.body_limit(boost::none);
            if (method == http::verb::head) parser.skip(true);
            auto ec = (*c)->run([&](auto&& done) { (*c)->async_write(req, done); });
            if (!ec) ec = (*c)->run([&](auto&& done) { (*c)->async_read(parser, done); });
            if (ec) {
                // A kept-alive connection the server closed meanwhile: once more on a fresh one.
                if (reused && attempt == 0 &&
                    (ec == http::error::end_of_stream || ec == asio::error::connection_reset || ec == asio::error::broken_pipe ||
                     ec == asio::error::eof || ec == asio::ssl::error::stream_truncated))
                    continue;
                if (ec == beast::error::timeout) return make_error(errc::timeout, what() + ": no answer within " + std::to_string(opt_.timeout.count()) + " ms");
                return make_error(errc::io, what() + ": " + ec.message());
            }
            auto res = parser.release();
            http_response out{res.result_int(), {}, std::move(res.body())};
            for (auto const& f : res.base()) out.headers.insert(f.name_string(), f.value());
            if (res.keep_alive()) give_back(std::move(*c));
            return out;
        }
    }

private:
    // One connection with its own io_context; every operation runs it to completion under a timer.
    struct connection {
        asio::io_context io;
        std::optional<beast::tcp_stream> plain;
        std::optional<beast::ssl_stream<beast::tcp_stream>> secure;
        beast::flat_buffer buf;
        std::chrono::milliseconds timeout{};
        bool used = false;

        beast::tcp_stream& lowest() { return plain ? *plain : beast::get_lowest_layer(*secure); }
        template <class Start>
        beast::error_code run(Start&& start) {
            beast::error_code result;
            lowest().expires_after(timeout);
            start([&](beast::error_code ec, std::size_t = 0) { result = ec; });
            io.restart();
            io.run();
            return result;
        }
        template <class Msg, class H>
        void async_write(Msg& m, H&& h) {
            if (plain) http::async_write(*plain, m, std::forward<H>(h));
            else http::async_write(*secure, m, std::forward<H>(h));
        }
        template <class Parser, class H>
        void async_read(Parser& p, H&& h) {
            if (plain) http::async_read(*plain, buf, p, std::forward<H>(h));
            else http::async_read(*secure, buf, p, std::forward<H>(h));
        }
    };

    http_client(origin o, http_options opt) : origin_(std::move(o)), opt_(std::move(opt)) {}

    result<std::unique_ptr<connection>> take() {
        {
            std::lock_guard lk(mu_);
            if (!idle_.empty()) {
                auto c = std::move(idle_.back());
                idle_.pop_back();
                return c;
            }
        }
        auto c = std::make_unique<connection>();
        c->timeout = opt_.timeout;
        // Beast reads at most the buffer's free capacity (at least 512 bytes) per call: without room,
        // a 16 MiB body takes tens of thousands of tiny reads, each with its own timer and epoll round.
        c->buf.reserve(read_chunk);
        beast::error_code ec;
        asio::ip::tcp::resolver resolver(c->io);
        auto endpoints = resolver.resolve(origin_.host, origin_.port, ec);
        if (ec) return make_error(errc::io, "cannot resolve " + origin_.host + ": " + ec.message());
        if (origin_.tls) c->secure.emplace(c->io, *ssl_);
        else c->plain.emplace(c->io);
        ec = c->run([&](auto&& done) {
            c->lowest().async_connect(endpoints, [done](beast::error_code e, auto const&) mutable { done(e); });
        });
        if (ec) return make_error(ec == beast::error::timeout ? errc::timeout : errc::io, "cannot connect: " + ec.message());
        c->lowest().socket().set_option(asio::ip::tcp::no_delay(true), ec);  // request/response: no Nagle delays
        if (origin_.tls) {
            SSL_set_tlsext_host_name(c->secure->native_handle(), origin_.host.c_str());
            if (!opt_.insecure_tls) {
                X509_VERIFY_PARAM* param = SSL_get0_param(c->secure->native_handle());
                boost::system::error_code aec;
                (void)asio::ip::make_address(origin_.host, aec);
                if (!aec) X509_VERIFY_PARAM_set1_ip_asc(param, origin_.host.c_str());
                else X509_VERIFY_PARAM_set1_host(param, origin_.host.c_str(), 0);
            }
            ec = c->run([&](auto&& done) { c->secure->async_handshake(asio::ssl::stream_base::client, [done](beast::error_code e) mutable { done(e); }); });
            // Permanent (not retried): waiting does not make a certificate trustworthy.
            if (ec && ec != beast::error::timeout && ec.category() != asio::error::get_system_category())
                return make_error(errc::unauthorized, "TLS handshake failed: " + ec.message() + (opt_.insecure_tls ? "" : " (is the CA certificate right?)"));
            if (ec) return make_error(ec == beast::error::timeout ? errc::timeout : errc::io, "TLS handshake failed: " + ec.message());
        }
        return c;
    }

    void give_back(std::unique_ptr<connection> c) {
        std::lock_guard lk(mu_);
        if (idle_.size() < opt_.max_idle) idle_.push_back(std::move(c));
    }

    static constexpr std::size_t read_chunk = 64 * 1024;  // Beast's own cap on one read

    origin origin_;
    http_options opt_;
    std::optional<asio::ssl::context> ssl_;
    std::mutex mu_;
    std::vector<std::unique_ptr<connection>> idle_;
};

/** The error for an HTTP status that is not success, for backend drivers: 401 `unauthorized`, 403
    `forbidden`, 404 `not_found`, 408 and 504 `timeout`, 429 and other 5xx `io` (transient: the
    retry decorator tries again), other 4xx `bad_request`. `what` names the operation and object;
    `detail` is the server's own message, if any. */
inline error status_error(unsigned status, std::string const& what, std::string const& detail = {}) {
    errc e = errc::bad_request;
    std::string why = "HTTP " + std::to_string(status);
    if (status == 401) e = errc::unauthorized, why += " (authentication failed: check the credentials)";
    else if (status == 403) e = errc::forbidden, why += " (access denied: check the credentials and permissions)";
    else if (status == 404) e = errc::not_found;
    else if (status == 408 || status == 504) e = errc::timeout;
    else if (status == 429 || status >= 500) e = errc::io;
    return make_error(e, what + ": " + why + (detail.empty() ? "" : ": " + detail));
}

/// Whether an error is worth another try: network failures, timeouts, 429 and 5xx.
inline bool transient(error const& e) noexcept { return e.is(errc::io) || e.is(errc::timeout); }

/// Percent-encodes everything but RFC 3986's unreserved characters (and '/' when `keep_slash`).
inline std::string uri_escape(std::string_view s, bool keep_slash = false) {
    std::string o;
    for (unsigned char ch : s) {
        if (std::isalnum(ch) || ch == '-' || ch == '_' || ch == '.' || ch == '~' || (keep_slash && ch == '/')) {
            o += char(ch);
        } else {
            char b[4];
            std::snprintf(b, sizeof b, "%%%02X", ch);
            o += b;
        }
    }
    return o;
}

}  // namespace stash::net
