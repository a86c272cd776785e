// Where the cluster is and how to authenticate, read the way kubectl reads it: kubeconfig files
// (--kubeconfig, KUBECONFIG merged, ~/.kube/config) and in-cluster service-account config.
#pragma once

#include <stash/core/hex.hpp>
#include <stash/kube/yaml.hpp>

#include <boost/json.hpp>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

namespace stash::kube {

/// An exec credential plugin (client.authentication.k8s.io/v1): a command printing an ExecCredential.
struct exec_plugin {
    std::string api_version, command;
    std::vector<std::string> args;
    std::vector<std::pair<std::string, std::string>> env;
};

/** Everything a client needs to reach one API server. PEM material is held as text (files are read
    when the config is loaded; a token file is re-read on each use, as service-account tokens rotate). */
struct rest_config {
    std::string server;               ///< https://host:port or http://host:port
    std::string namespace_ = "default";
    std::string ca_pem;               ///< empty: the system trust store
    bool insecure_skip_tls_verify = false;
    std::string tls_server_name;
    std::string client_cert_pem, client_key_pem;
    std::string token, token_file;
    std::optional<exec_plugin> exec;
    std::string context;              ///< the kubeconfig context used ("" in-cluster)

    /// The bearer token to send now: the token file's current content, else `token`.
    std::string bearer_token() const {
        if (!token_file.empty()) {
            std::ifstream in(token_file);
            std::string t((std::istreambuf_iterator<char>(in)), {});
            while (!t.empty() && (t.back() == '\n' || t.back() == '\r' || t.back() == ' ')) t.pop_back();
            if (!t.empty()) return t;
        }
        return token;
    }
};

namespace detail {
inline result<std::string> read_text(std::filesystem::path const& p, std::string const& what) {
    std::ifstream in(p, std::ios::binary);
    if (!in) return make_error(errc::not_found, what + ": cannot read " + p.string() + ": " + std::strerror(errno));
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}
inline std::string jstr(boost::json::object const& o, std::string_view k) {
    auto const* v = o.if_contains(k);
    return v && v->is_string() ? std::string(v->get_string()) : std::string();
}
inline result<std::string> decode_b64(std::string const& s, std::string const& what) {
    auto b = from_base64(s);
    if (!b) return make_error(errc::invalid_argument, what + ": invalid base64");
    return std::string(reinterpret_cast<char const*>(b->data()), b->size());
}
// A file path in a kubeconfig is relative to the file that names it.
inline std::filesystem::path resolve(std::string const& p, std::filesystem::path const& file) {
    std::filesystem::path const path(p);
    return path.is_absolute() ? path : file.parent_path() / path;
}
}  // namespace detail

/** Loads the kubeconfig as kubectl does: `explicit_path` if given (only that file), else the files
    in `KUBECONFIG` (':'-separated, merged: the first file to define a cluster, user or context name
    wins, and the first current-context set wins), else `~/.kube/config`. `context` overrides
    current-context; `namespace_override` the context's namespace. Errors name the file and entry. */
inline result<rest_config> load_kubeconfig(std::string const& explicit_path = {}, std::string const& context = {},
                                           std::string const& namespace_override = {}) {
    std::vector<std::filesystem::path> files;
    if (!explicit_path.empty()) {
        files.emplace_back(explicit_path);
    } else if (char const* env = std::getenv("KUBECONFIG"); env && *env) {
        std::string_view s(env);
        for (std::size_t b = 0; b <= s.size();) {
            auto e = s.find(':', b);
            if (e == std::string_view::npos) e = s.size();
            if (e > b) files.emplace_back(std::string(s.substr(b, e - b)));
            b = e + 1;
        }
    } else if (char const* home = std::getenv("HOME")) {
        files.emplace_back(std::filesystem::path(home) / ".kube" / "config");
    }
    struct named {
        boost::json::object value;
        std::filesystem::path file;
    };
    std::map<std::string, named> clusters, users, contexts;
    std::string current;
    bool any = false;
    for (auto const& f : files) {
        auto text = detail::read_text(f, "kubeconfig");
        if (!text) {
            if (!explicit_path.empty()) return std::move(text).error();
            continue;  // KUBECONFIG may name files that do not exist, as with kubectl
        }
        auto docs = parse_yaml(*text, f.string());
        if (!docs) return std::move(docs).error();
        if (docs->empty() || !(*docs)[0].is_object()) continue;
        any = true;
        auto const& o = (*docs)[0].get_object();
        auto collect = [&](char const* list, char const* field, std::map<std::string, named>& into) {
            auto const* l = o.if_contains(list);
            if (!l || !l->is_array()) return;
            for (auto const& e : l->get_array()) {
                if (!e.is_object()) continue;
                auto const n = detail::jstr(e.get_object(), "name");
                auto const* v = e.get_object().if_contains(field);
                if (!n.empty() && !into.count(n)) into[n] = {v && v->is_object() ? v->get_object() : boost::json::object{}, f};
            }
        };
        collect("clusters", "cluster", clusters);
        collect("users", "user", users);
        collect("contexts", "context", contexts);
        if (current.empty()) current = detail::jstr(o, "current-context");
    }
    if (!any) return make_error(errc::not_found, "no kubeconfig found (tried --kubeconfig, KUBECONFIG, ~/.kube/config)");
    std::string const ctx_name = context.empty() ? current : context;
    if (ctx_name.empty()) return make_error(errc::invalid_argument, "kubeconfig: no current-context is set and no context was given");
    auto ctx = contexts.find(ctx_name);
    if (ctx == contexts.end()) return make_error(errc::not_found, "kubeconfig: context \"" + ctx_name + "\" not found");
    std::string const cluster_name = detail::jstr(ctx->second.value, "cluster"), user_name = detail::jstr(ctx->second.value, "user");
    auto cl = clusters.find(cluster_name);
    if (cl == clusters.end()) return make_error(errc::not_found, "kubeconfig: cluster \"" + cluster_name + "\" (of context \"" + ctx_name + "\") not found");

    rest_config rc;
    rc.context = ctx_name;
    auto const& c = cl->second.value;
    rc.server = detail::jstr(c, "server");
    if (rc.server.empty()) return make_error(errc::invalid_argument, "kubeconfig: cluster \"" + cluster_name + "\" has no server");
    if (auto const* v = c.if_contains("insecure-skip-tls-verify"); v && v->is_bool()) rc.insecure_skip_tls_verify = v->get_bool();
    rc.tls_server_name = detail::jstr(c, "tls-server-name");
    if (auto d = detail::jstr(c, "certificate-authority-data"); !d.empty()) {
        auto pem = detail::decode_b64(d, "kubeconfig: cluster \"" + cluster_name + "\" certificate-authority-data");
        if (!pem) return std::move(pem).error();
        rc.ca_pem = std::move(*pem);
    } else if (auto f = detail::jstr(c, "certificate-authority"); !f.empty()) {
        auto pem = detail::read_text(detail::resolve(f, cl->second.file), "kubeconfig: cluster \"" + cluster_name + "\" certificate-authority");
        if (!pem) return std::move(pem).error();
        rc.ca_pem = std::move(*pem);
    }
    if (auto u = users.find(user_name); u != users.end()) {
        auto const& uo = u->second.value;
        std::string const what = "kubeconfig: user \"" + user_name + "\"";
        auto pem_of = [&](char const* data_key, char const* file_key, std::string& out) -> result<void> {
            if (auto d = detail::jstr(uo, data_key); !d.empty()) {
                auto pem = detail::decode_b64(d, what + " " + data_key);
                if (!pem) return std::move(pem).error();
                out = std::move(*pem);
            } else if (auto f = detail::jstr(uo, file_key); !f.empty()) {
                auto pem = detail::read_text(detail::resolve(f, u->second.file), what + " " + file_key);
                if (!pem) return std::move(pem).error();
                out = std::move(*pem);
            }
            return {};
        };
        STASH_TRYV(pem_of("client-certificate-data", "client-certificate", rc.client_cert_pem));
        STASH_TRYV(pem_of("client-key-data", "client-key", rc.client_key_pem));
        rc.token = detail::jstr(uo, "token");
        if (auto tf = detail::jstr(uo, "tokenFile"); !tf.empty()) rc.token_file = detail::resolve(tf, u->second.file).string();
        if (auto const* ex = uo.if_contains("exec"); ex && ex->is_object()) {
            exec_plugin p;
            p.api_version = detail::jstr(ex->get_object(), "apiVersion");
            p.command = detail::jstr(ex->get_object(), "command");
            if (auto const* a = ex->get_object().if_contains("args"); a && a->is_array())
                for (auto const& x : a->get_array())
                    if (x.is_string()) p.args.emplace_back(x.get_string());
            if (auto const* e = ex->get_object().if_contains("env"); e && e->is_array())
                for (auto const& x : e->get_array())
                    if (x.is_object()) p.env.emplace_back(detail::jstr(x.get_object(), "name"), detail::jstr(x.get_object(), "value"));
            if (p.command.empty()) return make_error(errc::invalid_argument, what + ": exec has no command");
            rc.exec = std::move(p);
        }
    } else if (!user_name.empty()) {
        return make_error(errc::not_found, "kubeconfig: user \"" + user_name + "\" (of context \"" + ctx_name + "\") not found");
    }
    if (auto ns = detail::jstr(ctx->second.value, "namespace"); !ns.empty()) rc.namespace_ = ns;
    if (!namespace_override.empty()) rc.namespace_ = namespace_override;
    if (!rc.client_cert_pem.empty() != !rc.client_key_pem.empty())
        return make_error(errc::invalid_argument, "kubeconfig: user \"" + user_name + "\": a client certificate needs its key and the other way round");
    return rc;
}

/** In-cluster config: the service account mounted into every pod (token, CA, namespace under
    `sa_dir`) and the API server's address from KUBERNETES_SERVICE_HOST/PORT. The token file is
    re-read on each request (kubelet rotates it). */
inline result<rest_config> in_cluster_config(std::filesystem::path const& sa_dir = "/var/run/secrets/kubernetes.io/serviceaccount") {
    char const* host = std::getenv("KUBERNETES_SERVICE_HOST");
    char const* port = std::getenv("KUBERNETES_SERVICE_PORT");
    if (!host || !*host || !port || !*port)
        return make_error(errc::not_found, "not running in a cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set");
    rest_config rc;
    std::string h(host);
    if (h.find(':') != std::string::npos) h = "[" + h + "]";  // IPv6
    rc.server = "https://" + h + ":" + port;
    rc.token_file = (sa_dir / "token").string();
    if (rc.bearer_token().empty()) return make_error(errc::not_found, "in-cluster config: no token in " + rc.token_file);
    auto ca = detail::read_text(sa_dir / "ca.crt", "in-cluster config");
    if (!ca) return std::move(ca).error();
    rc.ca_pem = std::move(*ca);
    if (auto ns = detail::read_text(sa_dir / "namespace", "in-cluster config"); ns && !ns->empty()) rc.namespace_ = *ns;
    return rc;
}

/** Runs an exec credential plugin and returns the token (or client certificate/key) it prints as
    an ExecCredential (client.authentication.k8s.io/v1 or v1beta1). Errors name the command. */
inline result<void> run_exec_plugin(rest_config& rc) {
    if (!rc.exec) return {};
    auto const& p = *rc.exec;
    auto quote = [](std::string const& s) {  // one shell word, whatever it contains
        std::string q = "'";
        for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
        return q + "'";
    };
    std::string cmd;
    for (auto const& [k, v] : p.env) cmd += k + "=" + quote(v) + " ";
    cmd += quote(p.command);
    for (auto const& a : p.args) cmd += " " + quote(a);
    std::string const info = std::string(R"({"apiVersion":")") + (p.api_version.empty() ? "client.authentication.k8s.io/v1" : p.api_version) +
                             R"(","kind":"ExecCredential","spec":{"interactive":false}})";
    ::setenv("KUBERNETES_EXEC_INFO", info.c_str(), 1);
    FILE* f = ::popen(cmd.c_str(), "r");
    if (!f) return make_error(errc::io, "exec plugin " + p.command + ": " + std::strerror(errno));
    std::string out;
    char buf[4096];
    for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0;) out.append(buf, n);
    int const rc_code = ::pclose(f);
    if (rc_code != 0) return make_error(errc::io, "exec plugin " + p.command + " failed with status " + std::to_string(rc_code));
    boost::system::error_code ec;
    auto v = boost::json::parse(out, ec);
    if (ec || !v.is_object()) return make_error(errc::invalid_argument, "exec plugin " + p.command + ": output is not an ExecCredential");
    auto const* st = v.get_object().if_contains("status");
    if (!st || !st->is_object()) return make_error(errc::invalid_argument, "exec plugin " + p.command + ": ExecCredential has no status");
    rc.token = detail::jstr(st->get_object(), "token");
    if (auto c = detail::jstr(st->get_object(), "clientCertificateData"); !c.empty()) rc.client_cert_pem = c;
    if (auto k = detail::jstr(st->get_object(), "clientKeyData"); !k.empty()) rc.client_key_pem = k;
    if (rc.token.empty() && rc.client_cert_pem.empty())
        return make_error(errc::invalid_argument, "exec plugin " + p.command + ": ExecCredential has neither a token nor a client certificate");
    return {};
}

}  // namespace stash::kube
