// restic's REST backend protocol (v2), as served by rest-server and `rclone serve restic`.
#pragma once

#include <stash/concepts/backend.hpp>
#include <stash/core/hex.hpp>
#include <stash/policies/net/http.hpp>

#include <boost/json.hpp>

namespace stash::policies::backend {

/** A repository behind a restic REST server (restic-format.md §11): `POST /?create=true` creates
    it, files are `/<type>/<name>` (`/config` for the config) with POST to store, GET with a Range
    to read, HEAD for the size and DELETE; listing `GET /<type>/` asks for the v2 media type and
    gets names with sizes. Basic auth from the URL's user information.

    Repository string: `rest:http[s]://[user:password@]host[:port][/path]`.

    @par Concepts
    `stash::backend`. Thread-safe (requests share a connection pool).
*/
class rest {
public:
    static constexpr char const* v2_media_type = "application/vnd.x.restic.rest.v2";

    /// Opens `rest:URL` (or a bare URL). Errors: `invalid_argument` for a malformed URL.
    static result<rest> open(std::string_view repo, net::http_options opt = {}) {
        std::string url(repo.starts_with("rest:") ? repo.substr(5) : repo);
        auto scheme_end = url.find("://");
        if (scheme_end == std::string::npos) return make_error(errc::invalid_argument, "repository \"" + std::string(repo) + "\": expected rest:http[s]://host[:port]/path");
        std::string auth;
        auto const authority_start = scheme_end + 3;
        auto const path_start = std::min(url.find('/', authority_start), url.size());
        if (auto at = url.rfind('@', path_start); at != std::string::npos && at > authority_start) {
            auth = url.substr(authority_start, at - authority_start);
            url.erase(authority_start, at + 1 - authority_start);
        }
        auto o = net::origin::parse(url);
        if (!o) return std::move(o).error();
        std::string path = url.substr(std::min(url.find('/', authority_start), url.size()));
        while (!path.empty() && path.back() == '/') path.pop_back();
        auto client = net::http_client::make(*o, std::move(opt));
        if (!client) return std::move(client).error();
        rest r;
        r.client_ = std::shared_ptr<net::http_client>(std::move(*client));
        r.base_ = path;
        while (url.ends_with('/')) url.pop_back();
        r.location_ = "rest:" + url;  // without the password
        if (!auth.empty()) {
            std::string plain;
            for (std::size_t i = 0; i < auth.size(); ++i)  // user information is percent-encoded
                if (auth[i] == '%' && i + 2 < auth.size()) plain += char(std::stoi(auth.substr(i + 1, 2), nullptr, 16)), i += 2;
                else plain += auth[i];
            r.auth_ = "Basic " + to_base64(as_bytes(plain));
        }
        return r;
    }

    std::string location() const { return location_; }

    result<void> create() {
        if (auto s = stat({file_type::config, ""}); s) return make_error(errc::already_exists, "repository " + location_ + " already exists (config file found)");
        else if (!s.error().is(errc::not_found)) return std::move(s).error();
        auto r = send(net::http::verb::post, base_ + "/?create=true", {{"Content-Type", "binary/octet-stream"}});
        if (!r) return std::move(r).error();
        if (r->status != 200) return net::status_error(r->status, "create " + location_, r->body_text());
        return {};
    }

    result<void> put(handle const& h, byte_span data) {
        auto r = send(net::http::verb::post, path(h), {{"Content-Type", "application/octet-stream"}}, data);
        if (!r) return std::move(r).error();
        if (r->status != 200) return net::status_error(r->status, location_ + ": save " + h.str(), r->body_text());
        return {};
    }

    result<void> get(handle const& h, std::uint64_t off, std::uint64_t len, bytes& out) {
        std::string range = "bytes=" + std::to_string(off) + "-" + (len ? std::to_string(off + len - 1) : "");
        auto r = send(net::http::verb::get, path(h), {{"Range", range}});
        if (!r) return std::move(r).error();
        if (r->status == 416 || (r->status != 200 && r->status != 206))
            return r->status == 416 ? make_error(errc::corrupt, h.str() + ": shorter than asked (" + range + ")")
                                    : net::status_error(r->status, location_ + ": load " + h.str(), r->body_text());
        out = std::move(r->body);
        if (r->status == 200 && off > 0) {  // a server that ignored the Range
            if (out.size() < off) return make_error(errc::corrupt, h.str() + ": shorter than asked (" + range + ")");
            out.erase(out.begin(), out.begin() + std::ptrdiff_t(off));
            if (len && out.size() > len) out.resize(len);
        }
        if (len && out.size() != len) return make_error(errc::corrupt, h.str() + ": shorter than asked (" + range + ", got " + std::to_string(out.size()) + " bytes)");
        return {};
    }

    result<std::uint64_t> stat(handle const& h) {
        auto r = send(net::http::verb::head, path(h), {});
        if (!r) return std::move(r).error();
        if (r->status != 200) return net::status_error(r->status, location_ + ": stat " + h.str());
        auto const len = r->header("Content-Length");
        if (len.empty()) return make_error(errc::io, "stat " + h.str() + ": the server sent no Content-Length");
        return std::stoull(len);
    }

    result<void> list(file_type t, list_fn const& fn) {
        auto r = send(net::http::verb::get, base_ + "/" + dir_name(t) + "/", {{"Accept", v2_media_type}});
        if (!r) return std::move(r).error();
        if (r->status != 200) return net::status_error(r->status, location_ + ": list " + std::string() + dir_name(t), r->body_text());
        boost::system::error_code ec;
        auto v = boost::json::parse(r->body_text(), ec);
        if (ec || !v.is_array()) return make_error(errc::io, std::string("list ") + dir_name(t) + ": the server's answer is not a JSON array");
        bool const v2 = r->header("Content-Type").starts_with(v2_media_type);
        for (auto const& e : v.get_array()) {
            std::string name;
            std::uint64_t size = 0;
            if (v2 && e.is_object() && e.get_object().contains("name")) {
                name = std::string(e.at("name").as_string());
                if (auto const* s = e.get_object().if_contains("size"); s && s->is_number()) size = s->to_number<std::uint64_t>();
            } else if (e.is_string()) {  // v1: names only; sizes by HEAD
                name = std::string(e.get_string());
                if (name.size() == 64) {
                    auto s = stat({t, name});
                    if (!s) return std::move(s).error();
                    size = *s;
                }
            }
            if (name.size() == 64 && std::all_of(name.begin(), name.end(), [](char c) { return std::isxdigit(static_cast<unsigned char>(c)); }))
                fn(name, size);
        }
        return {};
    }

    result<void> remove(handle const& h) {
        auto r = send(net::http::verb::delete_, path(h), {});
        if (!r) return std::move(r).error();
        if (r->status != 200 && r->status != 204) return net::status_error(r->status, location_ + ": remove " + h.str(), r->body_text());
        return {};
    }

private:
    rest() = default;

    std::string path(handle const& h) const { return base_ + "/" + h.str(); }

    result<net::http_response> send(net::http::verb v, std::string const& target, net::header_list headers, byte_span body = {}) {
        if (!auth_.empty()) headers.emplace_back("Authorization", auth_);
        if (v != net::http::verb::post || target.find("?create") == std::string::npos) headers.emplace_back("Accept", v2_media_type);
        auto r = client_->send(v, target, headers, body);
        if (!r) return error{r.error().code, location_ + ": " + r.error().what()};
        return r;
    }

    std::shared_ptr<net::http_client> client_;
    std::string base_, location_, auth_;
};

static_assert(stash::backend<rest>);

}  // namespace stash::policies::backend
