// Amazon S3 and S3-compatible object stores (MinIO, Ceph, Wasabi, s3rver, GCS interoperability).
#pragma once

#include <stash/concepts/backend.hpp>
#include <stash/policies/backend/detail/object_store.hpp>
#include <stash/core/time.hpp>
#include <stash/policies/net/http.hpp>
#include <stash/policies/net/sigv4.hpp>

#include <stash/policies/backend/detail/xml.hpp>


namespace stash::policies::backend {

struct s3_options {
    std::string endpoint;   ///< "https://s3.amazonaws.com", "http://127.0.0.1:9000"
    std::string bucket;
    std::string prefix;     ///< key prefix of the repository inside the bucket ("" = bucket root)
    std::string region = "us-east-1";
    net::sigv4::credentials credentials;
    enum class lookup { automatic, path, dns } bucket_lookup = lookup::automatic;  ///< dns: virtual-host style
    unsigned list_page = 1000;  ///< max-keys per ListObjectsV2 page
    net::http_options http;
};

/** A repository in an S3 bucket, laid out as restic lays it out there (the default layout:
    `<prefix>/config`, `<prefix>/keys/…`, `<prefix>/data/<2 hex>/<id>`). Requests are signed with
    AWS Signature Version 4 (payload hash included); listing is ListObjectsV2 page by page;
    reads are ranged GETs. `create` makes the bucket when it does not exist.

    Repository string (as restic's): `s3:https://host[:port]/bucket[/prefix]`, `s3:http://…`, or
    `s3:host/bucket[/prefix]` (HTTPS). Credentials: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
    optional `AWS_SESSION_TOKEN`; region `AWS_DEFAULT_REGION` (default us-east-1).

    Errors name the repository and the object; the server's `<Code>: <Message>` is appended
    (`SignatureDoesNotMatch`, `InvalidAccessKeyId` → `errc::forbidden`).

    @par Concepts
    `stash::backend`. Thread-safe.
*/
class s3 {
public:
    static result<s3> open(s3_options opt) {
        auto o = net::origin::parse(opt.endpoint);
        if (!o) return std::move(o).error();
        if (opt.bucket.empty()) return make_error(errc::invalid_argument, "s3: no bucket given");
        opt.prefix = detail::clean_prefix(std::move(opt.prefix));
        bool const dns = opt.bucket_lookup == s3_options::lookup::dns ||
                         (opt.bucket_lookup == s3_options::lookup::automatic && o->host.ends_with("amazonaws.com") && opt.bucket.find('.') == std::string::npos);
        if (dns) o->host = opt.bucket + "." + o->host;
        auto c = net::http_client::make(*o, opt.http);
        if (!c) return std::move(c).error();
        s3 b;
        b.client_ = std::shared_ptr<net::http_client>(std::move(*c));
        b.dns_ = dns;
        b.location_ = "s3:" + opt.endpoint + "/" + opt.bucket + (opt.prefix.empty() ? "" : "/" + opt.prefix);
        b.opt_ = std::make_shared<s3_options const>(std::move(opt));
        return b;
    }

    /// Parses restic's `s3:` repository string into options (credentials from the environment).
    static result<s3_options> parse(std::string_view repo) {
        if (!repo.starts_with("s3:")) return make_error(errc::invalid_argument, "\"" + std::string(repo) + "\" is not an s3: repository");
        std::string rest(repo.substr(3));
        s3_options o;
        std::string scheme = "https://";
        if (rest.starts_with("https://")) rest.erase(0, 8);
        else if (rest.starts_with("http://")) rest.erase(0, 7), scheme = "http://";
        auto const slash = rest.find('/');
        if (slash == std::string::npos || slash + 1 >= rest.size())
            return make_error(errc::invalid_argument, "repository \"" + std::string(repo) + "\": expected s3:[http[s]://]host[:port]/bucket[/prefix]");
        o.endpoint = scheme + rest.substr(0, slash);
        auto path = rest.substr(slash + 1);
        auto const b = path.find('/');
        o.bucket = path.substr(0, b);
        o.prefix = b == std::string::npos ? "" : path.substr(b + 1);
        o.credentials = {detail::env("AWS_ACCESS_KEY_ID"), detail::env("AWS_SECRET_ACCESS_KEY"), detail::env("AWS_SESSION_TOKEN")};
        if (auto r = detail::env("AWS_DEFAULT_REGION"); !r.empty()) o.region = r;
        if (o.credentials.access_key_id.empty() != o.credentials.secret_access_key.empty())
            return make_error(errc::invalid_argument, "s3: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY go together");
        return o;
    }

    std::string location() const { return location_; }

    result<void> create() {
        auto head = send(net::http::verb::head, bucket_path(), {}, {});
        if (!head) return std::move(head).error();
        if (head->status == 404) {
            std::string body;
            if (opt_->region != "us-east-1")
                body = "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><LocationConstraint>" + opt_->region +
                       "</LocationConstraint></CreateBucketConfiguration>";
            auto r = send(net::http::verb::put, bucket_path(), {}, as_bytes(body));
            if (!r) return std::move(r).error();
            if (r->status != 200) return fail(*r, "create bucket " + opt_->bucket);
        } else if (head->status != 200) {
            return fail(*head, "bucket " + opt_->bucket);
        }
        return detail::must_be_new(*this, location_);
    }

    result<void> put(handle const& h, byte_span data) {
        auto r = send(net::http::verb::put, object_path(h), {{"Content-Type", "application/octet-stream"}}, data);
        if (!r) return std::move(r).error();
        if (r->status != 200) return fail(*r, "save " + h.str());
        return {};
    }

    result<void> get(handle const& h, std::uint64_t off, std::uint64_t len, bytes& out) {
        auto const range = detail::byte_range(off, len);
        net::header_list hs;
        if (!range.empty()) hs.emplace_back("Range", range);
        auto r = send(net::http::verb::get, object_path(h), hs, {});
        if (!r) return std::move(r).error();
        return detail::take_range(*r, location_, h, range, len, out, [this](net::http_response const& x, std::string const& w) { return fail(x, w); });
    }

    result<std::uint64_t> stat(handle const& h) {
        auto r = send(net::http::verb::head, object_path(h), {}, {});
        if (!r) return std::move(r).error();
        return detail::head_size(*r, location_, h, [this](net::http_response const& x, std::string const& w) { return fail(x, w); });
    }

    /// ListObjectsV2 under `<prefix>/<type dir>/`, all pages (continuation tokens).
    result<void> list(file_type t, list_fn const& fn) {
        std::string const dir = detail::list_prefix(opt_->prefix, t);
        std::string token;
        for (;;) {
            std::vector<std::pair<std::string, std::string>> q{{"list-type", "2"}, {"prefix", dir}, {"max-keys", std::to_string(opt_->list_page)}};
            if (!token.empty()) q.emplace_back("continuation-token", token);
            auto r = send(net::http::verb::get, bucket_path(), {}, {}, q);
            if (!r) return std::move(r).error();
            if (r->status != 200) return fail(*r, std::string("list ") + dir_name(t));
            auto tree = detail::listing_xml(*r, location_, t);
            if (!tree) return std::move(tree).error();
            boost::property_tree::ptree const none;  // get_child's default must outlive the reference it returns
            auto const& res = tree->get_child("ListBucketResult", none);
            for (auto const& [tag, item] : res) {
                if (tag != "Contents") continue;
                detail::report_listed(item.get<std::string>("Key", ""), item.get<std::uint64_t>("Size", 0), fn);
            }
            if (res.get<std::string>("IsTruncated", "false") != "true") return {};
            token = res.get<std::string>("NextContinuationToken", "");
            if (token.empty()) return make_error(errc::io, location_ + ": list " + dir_name(t) + ": a truncated page without a continuation token");
        }
    }

    result<void> remove(handle const& h) {
        // S3 answers 204 whether or not the key existed; restic's contract wants not_found.
        auto s = stat(h);
        if (!s) return std::move(s).error();
        auto r = send(net::http::verb::delete_, object_path(h), {}, {});
        if (!r) return std::move(r).error();
        if (r->status != 204 && r->status != 200) return fail(*r, "remove " + h.str());
        return {};
    }

private:
    s3() = default;

    std::string bucket_path() const { return dns_ ? "/" : "/" + net::sigv4::uri_encode(opt_->bucket, false); }
    std::string object_path(handle const& h) const {
        return (dns_ ? "" : bucket_path()) + "/" + net::sigv4::uri_encode(detail::object_key(opt_->prefix, h), true);
    }

    // S3's error document: <Error><Code>…</Code><Message>…</Message></Error>.
    error fail(net::http_response const& r, std::string const& what) const {
        std::string why;
        if (auto tree = detail::parse_xml(r.body_text())) {
            why = tree->get<std::string>("Error.Code", "");
            if (auto m = tree->get<std::string>("Error.Message", ""); !m.empty()) why += (why.empty() ? "" : ": ") + m;
        }
        auto e = net::status_error(r.status, location_ + ": " + what, why);
        if (r.status == 403 && (why.starts_with("SignatureDoesNotMatch") || why.starts_with("InvalidAccessKeyId")))
            e = make_error(errc::unauthorized, e.message);
        return e;
    }

    result<net::http_response> send(net::http::verb v, std::string const& path, net::header_list headers, byte_span body,
                                    std::vector<std::pair<std::string, std::string>> const& query = {}) {
        auto const now = timestamp::now();
        auto const iso = format_rfc3339({now.sec, 0, 0});  // 2013-05-24T00:00:00Z
        std::string amz_date;
        for (char c : iso)
            if (c != '-' && c != ':') amz_date += c;
        std::string const payload = body.empty() ? net::sigv4::empty_payload_hash : to_hex(net::sigv4::sha256(body));
        headers.emplace_back("Host", client_->where().host_header());
        headers.emplace_back("x-amz-date", amz_date);
        headers.emplace_back("x-amz-content-sha256", payload);
        if (!opt_->credentials.session_token.empty()) headers.emplace_back("x-amz-security-token", opt_->credentials.session_token);
        std::string target = path;
        if (!query.empty()) target += "?" + net::sigv4::canonical_query(query);
        if (!opt_->credentials.access_key_id.empty()) {
            std::string const method(net::http::to_string(v));
            auto s = net::sigv4::sign({method, path, query, headers, payload}, opt_->credentials, opt_->region, "s3", amz_date);
            headers.emplace_back("Authorization", s.authorization);
        }
        auto r = client_->send(v, target, headers, body);
        if (!r) return error{r.error().code, location_ + ": " + r.error().what()};
        return r;
    }

    std::shared_ptr<net::http_client> client_;
    std::shared_ptr<s3_options const> opt_;
    bool dns_ = false;
    std::string location_;
};

static_assert(stash::backend<s3>);

}  // namespace stash::policies::backend
