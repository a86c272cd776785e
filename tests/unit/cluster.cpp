// The Cluster concept's conformance suite, run against both stock policies: `rest` talking HTTP to
// an embedded API server started here, and `in_process` on the same kind of store. Plus kubeconfig
// and in-cluster config loading, and TLS with client certificates.
#include <stash/embedded/server.hpp>
#include <stash/kube/events.hpp>
#include <stash/policies/cluster/in_process.hpp>
#include <stash/policies/cluster/rest.hpp>

#include "result_printer.hpp"

#include <atomic>
#include <condition_variable>

using namespace stash;
namespace json = boost::json;
namespace asio = boost::asio;
using stash::policies::cluster::in_process;
using stash::policies::cluster::rest;

namespace {

struct temp_dir {
    std::filesystem::path path;
    temp_dir() {
        char tmpl[] = "/tmp/stash-cluster-XXXXXX";
        path = ::mkdtemp(tmpl);
    }
    ~temp_dir() { std::filesystem::remove_all(path); }
    std::filesystem::path operator/(char const* f) const { return path / f; }
};

void write(std::filesystem::path const& p, std::string const& text) { std::ofstream(p) << text; }

// An embedded API server on 127.0.0.1 (any port), served by a thread of its own.
struct test_server {
    temp_dir dir;
    embedded::registry reg;
    embedded::store st{reg, dir.path};
    asio::io_context io;
    std::optional<embedded::api_server> srv;
    std::jthread thread;

    explicit test_server(embedded::server_options opt = {}) {
        REQUIRE(st.open());
        srv.emplace(io, st, reg, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0), std::move(opt));
        srv->start();
        thread = std::jthread([this] { io.run(); });
    }
    ~test_server() {
        io.stop();
    }
    std::string url(bool tls = false) const { return std::string(tls ? "https" : "http") + "://127.0.0.1:" + std::to_string(srv->port()); }
};

kube::resource_type const configmaps{"", "v1", "configmaps", true};
kube::resource_type const deployments{"apps", "v1", "deployments", true};

// Collects watch events; waits for a count.
struct recorder {
    std::mutex mu;
    std::condition_variable cv;
    std::vector<kube::watch_event> events;
    std::function<void(kube::watch_event const&)> fn() {
        return [this](kube::watch_event const& e) {
            std::lock_guard lk(mu);
            events.push_back(e);
            cv.notify_all();
        };
    }
    bool wait_for(std::size_t n) {
        std::unique_lock lk(mu);
        return cv.wait_for(lk, std::chrono::seconds(10), [&] { return events.size() >= n; });
    }
};

std::string rv(json::value const& o) { return std::string(o.at("metadata").at("resourceVersion").as_string()); }

// `compact` makes the server forget its history (as etcd compaction does).
template <kube::cluster C>
void conformance(C& c, std::function<void()> const& compact) {
    std::string const ns = c.default_namespace();
    // create / get / already exists / not found
    auto a = c.create(configmaps, ns, json::parse(R"({"metadata":{"name":"a","labels":{"tier":"web"}},"data":{"k":"1"}})"));
    REQUIRE(a);
    CHECK(a->at("metadata").at("uid").is_string());
    CHECK(c.create(configmaps, ns, json::parse(R"({"metadata":{"name":"a"}})")).error().is(errc::already_exists));
    CHECK(c.get(configmaps, ns, "missing").error().is(errc::not_found));
    auto got = c.get(configmaps, ns, "a");
    REQUIRE(got);
    CHECK(got->at("data").at("k") == json::value("1"));
    CHECK(c.create(configmaps, ns, json::parse(R"({"metadata":{"name":"Not Valid"}})")).error().is(errc::invalid_argument));

    // update with a stale version conflicts
    json::value stale = *got;
    auto upd = *got;
    upd.at("data").as_object()["k"] = "2";
    auto u = c.update(configmaps, ns, "a", upd, "");
    REQUIRE(u);
    CHECK(rv(*u) != rv(stale));
    stale.at("data").as_object()["k"] = "3";
    CHECK(c.update(configmaps, ns, "a", stale, "").error().is(errc::conflict));

    // patches
    REQUIRE(c.patch(configmaps, ns, "a", kube::patch_type::merge, json::parse(R"({"data":{"m":"x"}})"), ""));
    REQUIRE(c.patch(configmaps, ns, "a", kube::patch_type::json, json::parse(R"([{"op":"add","path":"/data/j","value":"y"}])"), ""));
    auto t = c.patch(configmaps, ns, "a", kube::patch_type::json, json::parse(R"([{"op":"test","path":"/data/j","value":"nope"}])"), "");
    CHECK_FALSE(t);
    auto d = c.create(deployments, ns, json::parse(R"({"metadata":{"name":"web"},"spec":{"replicas":1,"template":{"spec":{"containers":[{"name":"app","image":"a"}]}}}})"));
    REQUIRE(d);
    auto sp = c.patch(deployments, ns, "web", kube::patch_type::strategic,
                      json::parse(R"({"spec":{"template":{"spec":{"containers":[{"name":"stash","image":"s"}]}}}})"), "");
    REQUIRE(sp);
    CHECK(sp->at("spec").at("template").at("spec").at("containers").as_array().size() == 2);
    auto p = c.get(configmaps, ns, "a");
    CHECK(p->at("data") == json::parse(R"({"k":"2","m":"x","j":"y"})"));

    // status subresource
    auto st = c.patch(deployments, ns, "web", kube::patch_type::merge, json::parse(R"({"status":{"replicas":1}})"), "status");
    REQUIRE(st);
    CHECK(st->at("status").at("replicas") == json::value(1));
    auto no_status = c.patch(deployments, ns, "web", kube::patch_type::merge, json::parse(R"({"status":{"replicas":5},"spec":{"replicas":2}})"), "");
    REQUIRE(no_status);
    CHECK(no_status->at("status").at("replicas") == json::value(1));
    CHECK(no_status->at("metadata").at("generation") == json::value(3));

    // selectors and paging
    for (int i = 0; i < 7; ++i) {
        json::object labels{{"tier", i % 2 ? "db" : "web"}};
        json::object meta{{"name", "p" + std::to_string(i)}, {"labels", std::move(labels)}};
        REQUIRE(c.create(configmaps, ns, json::object{{"metadata", std::move(meta)}}));
    }
    kube::list_request lr;
    lr.label_selector = "tier in (web)";
    auto web = c.list(configmaps, ns, lr);
    REQUIRE(web);
    CHECK(web->items.size() == 5);  // a, p0, p2, p4, p6
    lr = {};
    lr.field_selector = "metadata.name=p3";
    CHECK(c.list(configmaps, ns, lr)->items.size() == 1);
    lr = {};
    lr.limit = 3;
    std::size_t total = 0, pages = 0;
    for (;;) {
        auto page = c.list(configmaps, ns, lr);
        REQUIRE(page);
        total += page->items.size(), ++pages;
        if (page->continue_.empty()) break;
        lr.continue_ = page->continue_;
    }
    CHECK(total == 8);
    CHECK(pages == 3);

    // watch: resume from a version sees exactly the later changes, in order
    auto base = c.list(configmaps, ns, {});
    REQUIRE(base);
    recorder rec;
    kube::watch_request wr;
    wr.resource_version = base->resource_version;
    auto w = c.watch(configmaps, ns, wr, rec.fn());
    REQUIRE(w);
    REQUIRE(c.create(configmaps, ns, json::parse(R"({"metadata":{"name":"w1"}})")));
    REQUIRE(c.patch(configmaps, ns, "w1", kube::patch_type::merge, json::parse(R"({"data":{"x":"1"}})"), ""));
    REQUIRE(c.remove(configmaps, ns, "w1", kube::deletion::background));
    REQUIRE(rec.wait_for(3));
    w->stop();
    {
        std::lock_guard lk(rec.mu);
        std::vector<std::string> types;
        for (auto const& e : rec.events)
            if (e.type != "BOOKMARK" && !e.type.empty()) types.push_back(e.type);
        CHECK(types == std::vector<std::string>{"ADDED", "MODIFIED", "DELETED"});
    }
    // a watch from a compacted version: one ERROR event with 410
    compact();
    recorder gone;
    auto w2 = c.watch(configmaps, ns, wr, gone.fn());
    REQUIRE(w2);
    REQUIRE(gone.wait_for(1));
    {
        std::lock_guard lk(gone.mu);
        CHECK(gone.events[0].type == "ERROR");
        CHECK(gone.events[0].object.at("code") == json::value(410));
    }
    w2->stop();

    // delete with owner references: background GC, orphan keeps
    auto owner_uid = std::string(c.get(deployments, ns, "web")->at("metadata").at("uid").as_string());
    json::object owned{{"metadata", json::object{{"name", "owned"},
                                                 {"ownerReferences", json::array{json::object{
                                                      {"apiVersion", "apps/v1"}, {"kind", "Deployment"}, {"name", "web"}, {"uid", owner_uid}}}}}}};
    REQUIRE(c.create(configmaps, ns, owned));
    REQUIRE(c.remove(deployments, ns, "web", kube::deletion::background));
    CHECK(c.get(configmaps, ns, "owned").error().is(errc::not_found));
    CHECK(c.remove(configmaps, ns, "owned", kube::deletion::background).error().is(errc::not_found));
}

}  // namespace

TEST_CASE("cluster conformance: the REST client against the embedded API server", "[cluster][rest]") {
    test_server s;
    kube::rest_config cfg;
    cfg.server = s.url();
    auto c = rest::connect(cfg);
    REQUIRE(c);
    conformance(**c, [&] { REQUIRE(s.st.compact()); });
}

TEST_CASE("cluster conformance: in-process", "[cluster][in_process]") {
    temp_dir dir;
    embedded::registry reg;
    embedded::store st(reg, dir.path);
    REQUIRE(st.open());
    in_process c(st, reg);
    conformance(c, [&] { REQUIRE(st.compact()); });
}

namespace {
// Events about one ConfigMap: a repeat bumps the count of the first Event; another reason makes a
// second Event; both carry what `kubectl describe` shows.
template <kube::cluster C>
void events_suite(C& c) {
    auto cm = c.create(configmaps, "default", json::parse(R"({"metadata":{"name":"subject"}})"));
    REQUIRE(cm);
    kube::document const obj(*cm);
    {
        kube::event_recorder<C> rec(c, {"stash-operator", "node-1"});
        rec.normal(obj, "BackupSkipped", "paused");
        REQUIRE(rec.flush(std::chrono::seconds(5)));
        rec.normal(obj, "BackupSkipped", "paused");
        rec.normal(obj, "BackupSkipped", "paused");
        rec.warning(obj, "RepositoryUnreachable", "s3:…/bucket: connection refused");
        REQUIRE(rec.flush(std::chrono::seconds(5)));
        CHECK(rec.dropped() == 0);
    }
    auto l = c.list(kube::events, "default", {});
    REQUIRE(l);
    REQUIRE(l->items.size() == 2);
    std::map<std::string, json::object> by_reason;
    for (auto const& e : l->items) by_reason[std::string(e.at("reason").as_string())] = e.as_object();
    auto const& skipped = by_reason.at("BackupSkipped");
    CHECK(skipped.at("count") == json::value(3));
    CHECK(skipped.at("type") == json::value("Normal"));
    CHECK(skipped.at("message") == json::value("paused"));
    CHECK(skipped.at("involvedObject").at("kind") == json::value("ConfigMap"));
    CHECK(skipped.at("involvedObject").at("uid") == cm->at("metadata").at("uid"));
    CHECK(skipped.at("source").at("component") == json::value("stash-operator"));
    CHECK(skipped.at("source").at("host") == json::value("node-1"));
    CHECK(std::string(skipped.at("metadata").at("name").as_string()).starts_with("subject."));
    CHECK(parse_rfc3339(skipped.at("lastTimestamp").as_string()));
    auto const& warn = by_reason.at("RepositoryUnreachable");
    CHECK(warn.at("type") == json::value("Warning"));
    CHECK(warn.at("count") == json::value(1));
}
}  // namespace

TEST_CASE("events: recorded, aggregated, through both cluster policies", "[cluster][events]") {
    test_server s;
    kube::rest_config cfg;
    cfg.server = s.url();
    auto c = rest::connect(cfg);
    REQUIRE(c);
    events_suite(**c);

    temp_dir dir;
    embedded::registry reg;
    embedded::store st(reg, dir.path);
    REQUIRE(st.open());
    in_process ip(st, reg);
    events_suite(ip);
}

TEST_CASE("structured logs: logfmt quoting, JSON lines, levels, fields of a child", "[cluster][log]") {
    std::vector<std::string> lines;
    logger root(log_level::info, log_format::text, [&](std::string_view l) { lines.emplace_back(l); });
    auto child = root.with({{"controller", "backupsession"}});
    child.debug("hidden");
    child.info("reconciled", {{"key", "demo/app"}, {"took_ms", 12}});
    root.error("bad \"thing\"", {{"error", "a=b c"}});
    REQUIRE(lines.size() == 2);
    CHECK(lines[0].starts_with("time="));
    CHECK(lines[0].find(" level=info msg=reconciled controller=backupsession key=demo/app took_ms=12\n") != std::string::npos);
    CHECK(lines[1].find(R"( level=error msg="bad \"thing\"" error="a=b c")") != std::string::npos);

    lines.clear();
    logger js(log_level::debug, log_format::json, [&](std::string_view l) { lines.emplace_back(l); });
    js.with({{"lease", "kube-system/stash-operator"}}).debug("renewed", {{"n", 3}});
    REQUIRE(lines.size() == 1);
    auto v = json::parse(lines[0]);
    CHECK(v.at("level") == json::value("debug"));
    CHECK(v.at("msg") == json::value("renewed"));
    CHECK(v.at("lease") == json::value("kube-system/stash-operator"));
    CHECK(v.at("n") == json::value("3"));
    CHECK(parse_log_level("warn").value() == log_level::warn);
    CHECK(parse_log_level("loud").error().is(errc::invalid_argument));
}

TEST_CASE("kubeconfig: files, merging, contexts, credentials", "[cluster][config]") {
    temp_dir dir;
    write(dir / "ca.pem", "CA-FROM-FILE\n");
    write(dir / "token", "file-token\n");
    write(dir / "a.yaml", R"(
apiVersion: v1
kind: Config
current-context: dev
clusters:
- name: c1
  cluster: {server: "https://10.0.0.1:6443", certificate-authority: ca.pem}
- name: c2
  cluster: {server: "https://10.0.0.2", insecure-skip-tls-verify: true, tls-server-name: api.internal}
users:
- name: u1
  user: {token: abc}
- name: u2
  user: {tokenFile: token, client-certificate-data: Q0VSVA==, client-key-data: S0VZ}
contexts:
- name: dev
  context: {cluster: c1, user: u1, namespace: team-a}
- name: ops
  context: {cluster: c2, user: u2}
)");
    write(dir / "b.yaml", R"(
apiVersion: v1
kind: Config
current-context: other
clusters:
- name: c1
  cluster: {server: "https://shadowed"}
- name: c3
  cluster: {server: "http://127.0.0.1:1", certificate-authority-data: Q0EtREFUQQ==}
users:
- name: u3
  user: {exec: {apiVersion: client.authentication.k8s.io/v1, command: /bin/sh, args: ["-c", "echo '{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\",\"status\":{\"token\":\"from-exec\"}}'"]}}
contexts:
- name: plugin
  context: {cluster: c3, user: u3}
)");

    SECTION("an explicit file, its current context, a CA file relative to it") {
        auto c = kube::load_kubeconfig((dir / "a.yaml").string());
        REQUIRE(c);
        CHECK(c->server == "https://10.0.0.1:6443");
        CHECK(c->namespace_ == "team-a");
        CHECK(c->ca_pem == "CA-FROM-FILE\n");
        CHECK(c->bearer_token() == "abc");
    }
    SECTION("another context: token file, client certificate data, insecure, server name; namespace override") {
        auto c = kube::load_kubeconfig((dir / "a.yaml").string(), "ops", "ns-x");
        REQUIRE(c);
        CHECK(c->insecure_skip_tls_verify);
        CHECK(c->tls_server_name == "api.internal");
        CHECK(c->bearer_token() == "file-token");
        write(dir / "token", "rotated\n");
        CHECK(c->bearer_token() == "rotated");  // re-read on each use
        CHECK(c->client_cert_pem == "CERT");
        CHECK(c->client_key_pem == "KEY");
        CHECK(c->namespace_ == "ns-x");
    }
    SECTION("KUBECONFIG merges: the first file wins each name and the current context") {
        ::setenv("KUBECONFIG", ((dir / "a.yaml").string() + ":" + (dir / "missing.yaml").string() + ":" + (dir / "b.yaml").string()).c_str(), 1);
        auto c = kube::load_kubeconfig();
        REQUIRE(c);
        CHECK(c->context == "dev");
        CHECK(c->server == "https://10.0.0.1:6443");  // c1 from a.yaml, not b.yaml's
        auto p = kube::load_kubeconfig({}, "plugin");
        REQUIRE(p);
        CHECK(p->ca_pem == "CA-DATA");
        REQUIRE(p->exec);
        REQUIRE(kube::run_exec_plugin(*p));
        CHECK(p->bearer_token() == "from-exec");
        ::unsetenv("KUBECONFIG");
    }
    SECTION("~/.kube/config") {
        std::filesystem::create_directories(dir / ".kube");
        std::filesystem::copy_file(dir / "a.yaml", dir.path / ".kube" / "config");
        std::filesystem::copy_file(dir / "ca.pem", dir.path / ".kube" / "ca.pem");
        std::string const home = std::getenv("HOME") ? std::getenv("HOME") : "";
        ::setenv("HOME", dir.path.c_str(), 1);
        ::unsetenv("KUBECONFIG");
        auto c = kube::load_kubeconfig();
        ::setenv("HOME", home.c_str(), 1);
        REQUIRE(c);
        CHECK(c->context == "dev");
    }
    SECTION("errors name what is missing") {
        CHECK(kube::load_kubeconfig((dir / "a.yaml").string(), "nope").error().message == "kubeconfig: context \"nope\" not found");
        CHECK(kube::load_kubeconfig((dir / "none.yaml").string()).error().is(errc::not_found));
    }
}

TEST_CASE("in-cluster config: service account token, CA, namespace, service address", "[cluster][config]") {
    temp_dir dir;
    write(dir / "token", "sa-token");
    write(dir / "ca.crt", "SA-CA");
    write(dir / "namespace", "stash");
    ::unsetenv("KUBERNETES_SERVICE_HOST");
    CHECK(kube::in_cluster_config(dir.path).error().is(errc::not_found));
    ::setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
    ::setenv("KUBERNETES_SERVICE_PORT", "443", 1);
    auto c = kube::in_cluster_config(dir.path);
    ::unsetenv("KUBERNETES_SERVICE_HOST");
    ::unsetenv("KUBERNETES_SERVICE_PORT");
    REQUIRE(c);
    CHECK(c->server == "https://10.96.0.1:443");
    CHECK(c->bearer_token() == "sa-token");
    CHECK(c->ca_pem == "SA-CA");
    CHECK(c->namespace_ == "stash");
}

TEST_CASE("REST client over TLS: client certificate, bearer token, wrong CA", "[cluster][tls]") {
    temp_dir dir;
    auto const d = dir.path.string();
    std::string const cmd =
        "cd " + d + " && exec >/dev/null 2>&1 && "
        "openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 2 -subj /CN=test-ca && "
        "openssl req -x509 -newkey rsa:2048 -nodes -keyout other.key -out other.crt -days 2 -subj /CN=other && "
        "openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN=127.0.0.1 && "
        "printf 'subjectAltName=IP:127.0.0.1\\n' > san.ext && "
        "openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out server.crt -days 2 -extfile san.ext && "
        "openssl req -newkey rsa:2048 -nodes -keyout client.key -out client.csr -subj /CN=admin && "
        "openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out client.crt -days 2";
    REQUIRE(std::system(cmd.c_str()) == 0);
    embedded::server_options opt;
    opt.tls_cert_file = d + "/server.crt", opt.tls_key_file = d + "/server.key", opt.client_ca_file = d + "/ca.crt";
    opt.token = "tok", opt.require_client_auth = true;
    test_server s(opt);
    auto read = [](std::string const& p) {
        std::ifstream in(p);
        return std::string((std::istreambuf_iterator<char>(in)), {});
    };
    kube::rest_config cfg;
    cfg.server = s.url(true);
    cfg.ca_pem = read(d + "/ca.crt");
    cfg.client_cert_pem = read(d + "/client.crt"), cfg.client_key_pem = read(d + "/client.key");
    auto c = rest::connect(cfg);
    REQUIRE(c);
    CHECK((*c)->get({"", "v1", "namespaces", false}, "", "default"));

    kube::rest_config with_token = cfg;
    with_token.client_cert_pem.clear(), with_token.client_key_pem.clear();
    with_token.token = "tok";
    CHECK((*rest::connect(with_token))->get({"", "v1", "namespaces", false}, "", "default"));
    with_token.token = "wrong";
    CHECK((*rest::connect(with_token))->get({"", "v1", "namespaces", false}, "", "default").error().is(errc::unauthorized));

    kube::rest_config wrong_ca = cfg;
    wrong_ca.ca_pem = read(d + "/other.crt");
    auto bad = (*rest::connect(wrong_ca))->get({"", "v1", "namespaces", false}, "", "default");
    REQUIRE_FALSE(bad);
    CHECK(bad.error().message.find("TLS handshake with " + cfg.server + " failed: certificate verify failed") == 0);
}

// --- work queue, controller, informer ---------------------------------------------------------------

#include <stash/kube/controller.hpp>
#include <stash/kube/informer.hpp>

TEST_CASE("work queue: dedup, no key in two hands, backoff grows", "[cluster][workqueue]") {
    kube::workqueue q;
    q.add("a"), q.add("a"), q.add("b");
    CHECK(q.size() == 2);
    auto k = q.get();
    REQUIRE(k);
    CHECK(*k == "a");
    q.add("a");  // while processing: comes back after done, not before
    auto k2 = q.get();
    CHECK(*k2 == "b");
    CHECK(q.size() == 0);
    q.done("a");
    CHECK(q.size() == 1);
    q.done("b");
    CHECK(*q.get() == "a");
    q.done("a");
    std::vector<std::chrono::milliseconds> d;
    for (int i = 0; i < 4; ++i) d.push_back(q.add_rate_limited("c"));
    CHECK(d == std::vector<std::chrono::milliseconds>{std::chrono::milliseconds(5), std::chrono::milliseconds(10),
                                                       std::chrono::milliseconds(20), std::chrono::milliseconds(40)});
    q.forget("c");
    CHECK(q.failures("c") == 0);
    auto const t0 = std::chrono::steady_clock::now();
    CHECK(*q.get() == "c");  // after its (last) delay
    CHECK(std::chrono::steady_clock::now() - t0 >= std::chrono::milliseconds(4));
    q.shut_down();
    q.done("c");
    CHECK_FALSE(q.get());
}

namespace {
// Fails `fail_times` times per key, throws once for key "boom", and checks that no key is reconciled
// by two workers at once.
struct flaky_reconciler {
    std::mutex mu;
    std::map<std::string, int> calls;
    std::map<std::string, std::vector<std::chrono::steady_clock::time_point>> when;
    std::set<std::string> active;
    std::atomic<int> overlaps{0};
    int fail_times = 3;

    result<kube::reconcile_result> reconcile(std::string const& key) {
        int n;
        {
            std::lock_guard lk(mu);
            if (!active.insert(key).second) ++overlaps;
            n = ++calls[key];
            when[key].push_back(std::chrono::steady_clock::now());
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
        {
            std::lock_guard lk(mu);
            active.erase(key);
        }
        if (key == "boom" && n == 1) throw std::runtime_error("kaboom");
        if (key != "boom" && n <= fail_times) return make_error(errc::io, "transient failure " + std::to_string(n));
        return kube::reconcile_result{};
    }
};
}  // namespace

TEST_CASE("controller: transient failures retried with growing delays, one worker per key, exceptions contained", "[cluster][controller]") {
    flaky_reconciler r;
    kube::workqueue q;
    std::atomic<int> logged{0};
    {
        kube::controller<flaky_reconciler> ctl(r, q, 4, logger(log_level::info, log_format::text, [&](std::string_view line) {
            if (line.find("level=error msg=\"reconcile failed\" key=") != std::string_view::npos) ++logged;
        }));
        for (int round = 0; round < 20; ++round)
            for (char const* k : {"ns/a", "ns/b", "boom"}) q.add(k);  // re-adds while processing must not overlap
        auto const deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        for (;;) {
            {
                std::lock_guard lk(r.mu);
                if (r.calls["ns/a"] >= 4 && r.calls["ns/b"] >= 4 && r.calls["boom"] >= 2) break;
            }
            REQUIRE(std::chrono::steady_clock::now() < deadline);
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    CHECK(r.overlaps == 0);
    CHECK(logged >= 3 + 3 + 1);
    CHECK(q.failures("ns/a") == 0);  // forgotten after the success
    // The gaps between attempts of one key grow (5, 10, 20 ms backoff).
    auto const& t = r.when["ns/a"];
    REQUIRE(t.size() >= 4);
    auto gap = [&](std::size_t i) { return t[i + 1] - t[i]; };
    CHECK(gap(1) > gap(0));
    CHECK(gap(2) > gap(1));
}

TEST_CASE("informer: 5,000 objects through two server restarts and a compaction end identical to a fresh list",
          "[cluster][informer]") {
    temp_dir dir;
    embedded::registry reg;
    // One server incarnation: store, io_context, server, thread. Torn down in the order that closes
    // every connection (destroying the io_context destroys the sessions) before the store goes.
    struct incarnation {
        std::unique_ptr<embedded::store> st;
        std::unique_ptr<asio::io_context> io;
        std::unique_ptr<embedded::api_server> srv;
        std::jthread thread;
        incarnation(embedded::registry& reg, std::filesystem::path const& dir, unsigned short port) {
            st = std::make_unique<embedded::store>(reg, dir, /*sync_writes=*/false);  // durability is not under test
            REQUIRE(st->open());
            io = std::make_unique<asio::io_context>();
            srv = std::make_unique<embedded::api_server>(*io, *st, reg, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
            srv->start();
            thread = std::jthread([this] { io->run(); });
        }
        ~incarnation() {
            io->stop();
            thread = {};
            srv.reset();  // io objects before their io_context
            io.reset();   // destroys the sessions, closing their connections
            st.reset();
        }
    };
    auto server = std::make_unique<incarnation>(reg, dir.path, 0);
    unsigned short const port = server->srv->port();
    kube::rest_config cfg;
    cfg.server = "http://127.0.0.1:" + std::to_string(port);
    auto c = rest::connect(cfg, rest::options{1000, 1000, std::chrono::seconds(5), "test"});
    REQUIRE(c);
    kube::informer_options opt;
    opt.namespace_ = "default";
    opt.backoff = std::chrono::milliseconds(50);
    kube::informer<rest> inf(**c, configmaps, opt);
    std::atomic<int> adds{0}, updates{0}, deletes{0};
    inf.add_handlers({[&](auto const&) { ++adds; }, [&](auto const&, auto const&) { ++updates; }, [&](auto const&) { ++deletes; }});
    inf.start();
    REQUIRE(inf.wait_for_sync(std::chrono::seconds(5)));

    // A restart reopens the store from its directory (a fresh snapshot: history compacted). With
    // `changes_while_down`, objects change while no server runs, so the informer's version is older
    // than the new history: its watch gets 410 and it must re-list.
    auto const cm_info = *reg.find("", "v1", "configmaps");
    auto restart = [&](bool changes_while_down) {
        server.reset();
        if (changes_while_down) {
            embedded::store offline(reg, dir.path, false);
            REQUIRE(offline.open());
            for (int k = 0; k < 20; ++k)
                REQUIRE(offline.create(cm_info, "default", json::object{{"metadata", json::object{{"name", "offline-" + std::to_string(k)}}}}));
        }
        server = std::make_unique<incarnation>(reg, dir.path, port);
    };
    auto const cm = *reg.find("", "v1", "configmaps");
    for (int i = 0; i < 5000; ++i) {
        json::object meta{{"name", "obj-" + std::to_string(i)}};
        auto& st = server->st;
        REQUIRE(st->create(cm, "default", json::object{{"metadata", std::move(meta)}, {"data", json::object{{"v", "0"}}}}));
        if (i % 3 == 0 && i > 0)
            REQUIRE(st->modify(cm, "default", "obj-" + std::to_string(i - 1), false, [](json::value o) -> result<json::value> {
                o.at("data").as_object()["v"] = "1";
                return o;
            }));
        if (i % 10 == 0 && i > 0) REQUIRE(st->remove(cm, "default", "obj-" + std::to_string(i - 5), embedded::propagation::background));
        if (i == 1500) restart(false);
        if (i == 3500) restart(true);
        if (i == 2500) REQUIRE(st->compact());
    }
    auto fresh = server->st->list(cm, {"default", {}, {}, 0, {}});
    REQUIRE(fresh);
    std::map<std::string, json::value> want;
    for (auto const& o : fresh->items) want.emplace(kube::key_of(o), o);
    auto const deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (inf.cache() != want && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    auto const have = inf.cache();
    std::string diff;
    for (auto const& [k, o] : want)
        if (!have.count(k)) diff += " missing:" + k;
        else if (have.at(k) != o) diff += " stale:" + k;
    for (auto const& [k, o] : have)
        if (!want.count(k)) diff += " extra:" + k;
    INFO("differences:" << diff.substr(0, 600) << " (lists " << inf.lists() << ")");
    CHECK(have.size() == want.size());
    CHECK(have == want);
    CHECK(inf.lists() >= 2);  // the changes made while down were compacted away: a re-list after 410
    CHECK(adds.load() >= int(want.size()));
    CHECK(deletes.load() >= 1);
    inf.stop();
}
