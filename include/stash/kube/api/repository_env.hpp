// How a Stash Repository's Backend and its storage Secret become what the agent runs with: the
// repository string, the environment and the command-line options (stash-api.md §5.1–5.2). The
// operator puts them on the sidecar, init-container or Job; the agent's backend drivers read them.
#pragma once

#include <stash/core/error.hpp>
#include <stash/kube/api/stash_v1alpha1.hpp>

#include <cctype>
#include <map>
#include <string>
#include <vector>

namespace stash::kube::api {

struct repository_env {
    std::string repository;                      ///< RESTIC_REPOSITORY
    std::map<std::string, std::string> env;      ///< RESTIC_PASSWORD, credentials, AWS_DEFAULT_REGION, …
    std::vector<std::string> args;               ///< --insecure-tls, --option X.connections=N
    std::string ca_cert;                         ///< CA_CERT_DATA: to be written to a file and passed as --cacert
};

/** Maps `b` and the decoded data of its storage Secret (`secret`, key → value) to the agent's
    inputs. Errors (`errc::invalid_argument`) name the Repository `where` and the field or key:
    no backend or more than one, a missing RESTIC_PASSWORD, missing B2 credentials, a REST URL
    that is not http(s). The local backend's repository is its mountPath. */
inline result<repository_env> make_repository_env(stash_v1alpha1::backend_spec const& b, std::map<std::string, std::string> const& secret,
                                                  std::string const& where) {
    auto bad = [&](std::string const& m) { return make_error(errc::invalid_argument, "Repository " + where + ": " + m); };
    int const n = int(b.local.has_value()) + int(b.s3.has_value()) + int(b.gcs.has_value()) + int(b.azure.has_value()) +
                  int(b.swift.has_value()) + int(b.b2.has_value()) + int(b.rest.has_value());
    if (n != 1) return bad("spec.backend: exactly one of local, s3, gcs, azure, swift, b2, rest must be set");
    auto const pw = secret.find("RESTIC_PASSWORD");
    if (pw == secret.end() || pw->second.empty()) return bad("Secret " + b.storageSecretName + ": key RESTIC_PASSWORD is required");
    repository_env out;
    out.env["RESTIC_PASSWORD"] = pw->second;
    auto copy = [&](std::initializer_list<char const*> keys) {
        for (auto const* k : keys)
            if (auto it = secret.find(k); it != secret.end()) out.env[k] = it->second;
    };
    auto join = [](std::string a, std::string const& b) {
        while (a.ends_with('/')) a.pop_back();
        std::string p = b;
        while (p.starts_with('/')) p.erase(0, 1);
        return p.empty() ? a : a + "/" + p;
    };
    auto connections = [&](char const* scheme, std::optional<std::int64_t> n) {
        if (n && *n > 0) out.args.push_back(std::string("--option=") + scheme + ".connections=" + std::to_string(*n));
    };
    if (auto it = secret.find("CA_CERT_DATA"); it != secret.end()) out.ca_cert = it->second;
    if (b.local) {
        out.repository = b.local->mountPath;
    } else if (b.s3) {
        std::string endpoint = b.s3->endpoint;  // restic takes s3:host/bucket (HTTPS) or s3:http(s)://host/bucket
        out.repository = "s3:" + join(join(endpoint, b.s3->bucket), b.s3->prefix);
        if (!b.s3->region.empty()) out.env["AWS_DEFAULT_REGION"] = b.s3->region;
        if (b.s3->insecureTLS.value_or(false)) out.args.push_back("--insecure-tls");
        copy({"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"});
    } else if (b.gcs) {
        out.repository = "gs:" + b.gcs->bucket + ":/" + b.gcs->prefix;
        copy({"GOOGLE_PROJECT_ID", "GOOGLE_SERVICE_ACCOUNT_JSON_KEY"});
        connections("gs", b.gcs->maxConnections);
    } else if (b.azure) {
        out.repository = "azure:" + b.azure->container + ":/" + b.azure->prefix;
        copy({"AZURE_ACCOUNT_NAME", "AZURE_ACCOUNT_KEY"});
        connections("azure", b.azure->maxConnections);
    } else if (b.swift) {
        out.repository = "swift:" + b.swift->container + ":/" + b.swift->prefix;
        copy({"ST_AUTH", "ST_USER", "ST_KEY", "OS_AUTH_URL", "OS_REGION_NAME", "OS_USERNAME", "OS_PASSWORD", "OS_TENANT_ID", "OS_TENANT_NAME",
              "OS_USER_DOMAIN_NAME", "OS_PROJECT_NAME", "OS_PROJECT_DOMAIN_NAME", "OS_STORAGE_URL", "OS_AUTH_TOKEN"});
    } else if (b.b2) {
        out.repository = "b2:" + b.b2->bucket + ":/" + b.b2->prefix;
        for (auto const* k : {"B2_ACCOUNT_ID", "B2_ACCOUNT_KEY"})
            if (!secret.count(k)) return bad(std::string("Secret ") + b.storageSecretName + ": key " + k + " is required for b2");
        copy({"B2_ACCOUNT_ID", "B2_ACCOUNT_KEY"});
        connections("b2", b.b2->maxConnections);
    } else {
        auto const& url = b.rest->url;
        auto const scheme_end = url.find("://");
        if (scheme_end == std::string::npos || (!url.starts_with("http://") && !url.starts_with("https://")))
            return bad("spec.backend.rest.url: \"" + url + "\": expected http:// or https://");
        auto esc = [](std::string const& v) {  // user information is percent-encoded in a URL
            std::string o;
            for (unsigned char c : v) {
                if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') o += char(c);
                else o += '%', o += "0123456789ABCDEF"[c >> 4], o += "0123456789ABCDEF"[c & 15];
            }
            return o;
        };
        std::string auth;
        if (auto u = secret.find("REST_SERVER_USERNAME"); u != secret.end()) {
            auth = esc(u->second);
            if (auto p = secret.find("REST_SERVER_PASSWORD"); p != secret.end()) auth += ":" + esc(p->second);
            auth += "@";
        }
        out.repository = "rest:" + url.substr(0, scheme_end + 3) + auth + url.substr(scheme_end + 3);
    }
    return out;
}

}  // namespace stash::kube::api
