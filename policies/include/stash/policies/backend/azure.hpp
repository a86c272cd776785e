// Azure Blob Storage with Shared Key authorization.
#pragma once

#include <stash/concepts/backend.hpp>
#include <stash/policies/backend/detail/object_store.hpp>
#include <stash/core/hex.hpp>
#include <stash/policies/net/http.hpp>
#include <stash/policies/net/sigv4.hpp>

#include <stash/policies/backend/detail/xml.hpp>

#include <ctime>
#include <tuple>
#include <map>

namespace stash::policies::backend {

struct azure_options {
    std::string account, key;  ///< storage account name and its base64 access key
    std::string container;
    std::string prefix;        ///< path of the repository inside the container ("" = its root)
    /// The account's blob endpoint: default https://<account>.blob.<endpoint_suffix>; for Azurite,
    /// http://127.0.0.1:10000/<account> (path-style: the account is the first path segment).
    std::string endpoint;
    std::string endpoint_suffix = "core.windows.net";
    unsigned list_page = 5000;  ///< maxresults per List Blobs page
    net::http_options http;
};

/** A repository in an Azure Blob container, laid out as restic lays it out there (`<prefix>/config`,
    `<prefix>/data/<2 hex>/<id>`, …). Every request is signed with the account key (Shared Key,
    x-ms-version 2020-10-02); blobs are stored as block blobs with one Put Blob; reads are ranged
    GETs; listing is List Blobs page by page (markers). `create` makes the container if needed.

    Repository string (as restic's): `azure:<container>:/<prefix>`; credentials `AZURE_ACCOUNT_NAME`,
    `AZURE_ACCOUNT_KEY`; optional `AZURE_ENDPOINT` (full account URL, for emulators) or
    `AZURE_ENDPOINT_SUFFIX` (sovereign clouds).

    @par Concepts
    `stash::backend`. Thread-safe.
*/
class azure {
public:
    static constexpr char const* api_version = "2020-10-02";

    static result<azure> open(azure_options opt) {
        if (opt.account.empty() || opt.key.empty()) return make_error(errc::invalid_argument, "azure: AZURE_ACCOUNT_NAME and AZURE_ACCOUNT_KEY are required");
        auto key = from_base64(opt.key);
        if (!key) return make_error(errc::invalid_argument, "azure: AZURE_ACCOUNT_KEY is not base64");
        if (opt.endpoint.empty()) opt.endpoint = "https://" + opt.account + ".blob." + opt.endpoint_suffix;
        while (opt.endpoint.ends_with('/')) opt.endpoint.pop_back();
        opt.prefix = detail::clean_prefix(std::move(opt.prefix));
        auto o = net::origin::parse(opt.endpoint);
        if (!o) return std::move(o).error();
        auto c = net::http_client::make(*o, opt.http);
        if (!c) return std::move(c).error();
        azure a;
        a.client_ = std::shared_ptr<net::http_client>(std::move(*c));
        auto const scheme_end = opt.endpoint.find("://") + 3;
        auto const path_start = opt.endpoint.find('/', scheme_end);
        a.base_path_ = path_start == std::string::npos ? "" : opt.endpoint.substr(path_start);  // "/devstoreaccount1" for Azurite
        a.key_ = std::make_shared<bytes const>(std::move(*key));
        a.location_ = "azure:" + opt.container + ":/" + opt.prefix;
        a.opt_ = std::make_shared<azure_options const>(std::move(opt));
        return a;
    }

    /// Parses restic's `azure:container:/prefix` (credentials and endpoint from the environment).
    static result<azure_options> parse(std::string_view repo) {
        auto where = detail::split_container(repo, "azure", "container");
        if (!where) return std::move(where).error();
        azure_options o;
        std::tie(o.container, o.prefix) = std::move(*where);
        o.account = detail::env("AZURE_ACCOUNT_NAME");
        o.key = detail::env("AZURE_ACCOUNT_KEY");
        o.endpoint = detail::env("AZURE_ENDPOINT");
        if (auto s = detail::env("AZURE_ENDPOINT_SUFFIX"); !s.empty()) o.endpoint_suffix = s;
        return o;
    }

    std::string location() const { return location_; }

    result<void> create() {
        auto r = send(net::http::verb::put, container_path(), {{"restype", "container"}}, {}, {});
        if (!r) return std::move(r).error();
        if (r->status != 201 && r->status != 409) return fail(*r, "create container " + opt_->container);
        return detail::must_be_new(*this, location_);
    }

    result<void> put(handle const& h, byte_span data) {
        auto r = send(net::http::verb::put, blob_path(h), {}, {{"x-ms-blob-type", "BlockBlob"}, {"Content-Type", "application/octet-stream"}}, data);
        if (!r) return std::move(r).error();
        if (r->status != 201) return fail(*r, "save " + h.str());
        return {};
    }

    result<void> get(handle const& h, std::uint64_t off, std::uint64_t len, bytes& out) {
        auto const range = detail::byte_range(off, len);
        net::header_list hs;
        if (!range.empty()) hs.emplace_back("x-ms-range", range);
        auto r = send(net::http::verb::get, blob_path(h), {}, hs, {});
        if (!r) return std::move(r).error();
        return detail::take_range(*r, location_, h, range, len, out, [this](net::http_response const& x, std::string const& w) { return fail(x, w); });
    }

    result<std::uint64_t> stat(handle const& h) {
        auto r = send(net::http::verb::head, blob_path(h), {}, {}, {});
        if (!r) return std::move(r).error();
        return detail::head_size(*r, location_, h, [this](net::http_response const& x, std::string const& w) { return fail(x, w); });
    }

    result<void> list(file_type t, list_fn const& fn) {
        std::string const dir = detail::list_prefix(opt_->prefix, t);
        std::string marker;
        for (;;) {
            std::vector<std::pair<std::string, std::string>> q{{"restype", "container"}, {"comp", "list"}, {"prefix", dir}, {"maxresults", std::to_string(opt_->list_page)}};
            if (!marker.empty()) q.emplace_back("marker", marker);
            auto r = send(net::http::verb::get, container_path(), q, {}, {});
            if (!r) return std::move(r).error();
            if (r->status != 200) return fail(*r, std::string("list ") + dir_name(t));
            auto tree = detail::listing_xml(*r, location_, t);
            if (!tree) return std::move(tree).error();
            boost::property_tree::ptree const none;  // get_child's default must outlive the reference it returns
            auto const& res = tree->get_child("EnumerationResults", none);
            for (auto const& [tag, blob] : res.get_child("Blobs", none)) {
                if (tag != "Blob") continue;
                detail::report_listed(blob.get<std::string>("Name", ""), blob.get<std::uint64_t>("Properties.Content-Length", 0), fn);
            }
            marker = res.get<std::string>("NextMarker", "");
            if (marker.empty()) return {};
        }
    }

    result<void> remove(handle const& h) {
        auto r = send(net::http::verb::delete_, blob_path(h), {}, {}, {});
        if (!r) return std::move(r).error();
        if (r->status != 202 && r->status != 200) return fail(*r, "remove " + h.str());
        return {};
    }

    /** The Shared Key string to sign (Azure Storage REST docs, "Authorize with Shared Key"): the
        verb, eleven standard headers (Content-Length empty when 0), the x-ms-* headers sorted, and
        the canonicalized resource `/<account><path>` plus `\nname:value` per query parameter sorted. */
    static std::string string_to_sign(std::string_view verb, std::map<std::string, std::string> const& headers, std::string_view account,
                                      std::string_view path, std::vector<std::pair<std::string, std::string>> const& query) {
        auto h = [&](char const* n) {
            auto it = headers.find(n);
            return it == headers.end() ? std::string() : it->second;
        };
        std::string cl = h("content-length");
        if (cl == "0") cl.clear();
        std::string s = std::string(verb) + "\n" + h("content-encoding") + "\n" + h("content-language") + "\n" + cl + "\n" + h("content-md5") + "\n" +
                        h("content-type") + "\n" + h("date") + "\n" + h("if-modified-since") + "\n" + h("if-match") + "\n" + h("if-none-match") + "\n" +
                        h("if-unmodified-since") + "\n" + h("range") + "\n";
        for (auto const& [k, v] : headers)
            if (k.starts_with("x-ms-")) s += k + ":" + v + "\n";
        s += "/" + std::string(account) + std::string(path);
        std::map<std::string, std::vector<std::string>> q;
        for (auto const& [k, v] : query) {
            std::string lk = k;
            std::transform(lk.begin(), lk.end(), lk.begin(), [](unsigned char c) { return char(std::tolower(c)); });
            q[lk].push_back(v);
        }
        for (auto& [k, vs] : q) {
            std::sort(vs.begin(), vs.end());
            s += "\n" + k + ":";
            for (std::size_t i = 0; i < vs.size(); ++i) s += (i ? "," : "") + vs[i];
        }
        return s;
    }

private:
    azure() = default;

    std::string container_path() const { return base_path_ + "/" + net::sigv4::uri_encode(opt_->container, false); }
    std::string blob_path(handle const& h) const {
        return container_path() + "/" + net::sigv4::uri_encode(detail::object_key(opt_->prefix, h), true);
    }

    // Azure's error document: <Error><Code>…</Code><Message>…</Message></Error>; HEAD has only x-ms-error-code.
    error fail(net::http_response const& r, std::string const& what) const {
        std::string why = r.header("x-ms-error-code");
        if (auto tree = detail::parse_xml(r.body_text())) {
            if (auto c = tree->get<std::string>("Error.Code", ""); !c.empty()) why = c;
            if (auto m = tree->get<std::string>("Error.Message", ""); !m.empty()) why += ": " + m.substr(0, m.find('\n'));
        }
        auto e = net::status_error(r.status, location_ + ": " + what, why);
        if (r.status == 403 && why.starts_with("AuthenticationFailed")) e = make_error(errc::unauthorized, e.message);
        return e;
    }

    result<net::http_response> send(net::http::verb v, std::string const& path, std::vector<std::pair<std::string, std::string>> const& query,
                                    net::header_list extra, byte_span body) {
        char date[64];
        std::time_t const now = std::time(nullptr);
        std::tm tm{};
        ::gmtime_r(&now, &tm);
        std::strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
        std::map<std::string, std::string> signed_headers{{"x-ms-date", date}, {"x-ms-version", api_version}};
        if (v == net::http::verb::put || v == net::http::verb::post) signed_headers["content-length"] = std::to_string(body.size());
        for (auto const& [k, val] : extra) {
            std::string lk = k;
            std::transform(lk.begin(), lk.end(), lk.begin(), [](unsigned char c) { return char(std::tolower(c)); });
            signed_headers[lk] = val;
        }
        // The canonicalized path is the request path as sent (still percent-encoded, as Azure compares it).
        auto const sts = string_to_sign(net::http::to_string(v), signed_headers, opt_->account, path, query);
        auto const mac = net::sigv4::hmac(*key_, sts);
        net::header_list hs;
        for (auto const& [k, val] : signed_headers)
            if (k != "content-length") hs.emplace_back(k, val);
        hs.emplace_back("Authorization", "SharedKey " + opt_->account + ":" + to_base64(mac));
        std::string target = path;
        if (!query.empty()) target += "?" + net::sigv4::canonical_query(query);
        auto r = client_->send(v, target, hs, body);
        if (!r) return error{r.error().code, location_ + ": " + r.error().what()};
        return r;
    }

    std::shared_ptr<net::http_client> client_;
    std::shared_ptr<azure_options const> opt_;
    std::shared_ptr<bytes const> key_;
    std::string base_path_, location_;
};

static_assert(stash::backend<azure>);

}  // namespace stash::policies::backend
