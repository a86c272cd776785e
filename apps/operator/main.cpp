// `stash-operator`: with --embedded, serves an embedded Kubernetes API server (kubectl works against
// it through the kubeconfig written to the state directory); otherwise connects to a cluster through
// kubeconfig or in-cluster config and, with --leader-elect, runs only while it holds the Lease.
// The reconcilers come with the operator issue.
#include <stash/core/log.hpp>
#include <stash/embedded/server.hpp>
#include <stash/kube/events.hpp>
#include <stash/kube/leader_election.hpp>
#include <stash/policies/cluster/rest.hpp>
#include <stash/core/hex.hpp>
#include <stash/kube/yaml.hpp>

#include <CLI/CLI.hpp>

#include <unistd.h>

#include <atomic>
#include <csignal>
#include <thread>
#include <fstream>
#include <iostream>
#include <sstream>

namespace {

using namespace stash;

std::string read_file(std::string const& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

// Writes DIR/kubeconfig pointing kubectl at the server (atomically: write, then rename).
void write_kubeconfig(std::filesystem::path const& dir, std::string const& server, std::string const& token, std::string const& ca_pem) {
    boost::json::object user;
    if (!token.empty()) user["token"] = token;
    boost::json::object cluster{{"server", server}};
    if (!ca_pem.empty()) cluster["certificate-authority-data"] = to_base64(as_bytes(ca_pem));
    boost::json::object cfg{
        {"apiVersion", "v1"},
        {"kind", "Config"},
        {"clusters", boost::json::array{boost::json::object{{"name", "stash-embedded"}, {"cluster", std::move(cluster)}}}},
        {"users", boost::json::array{boost::json::object{{"name", "stash-embedded"}, {"user", std::move(user)}}}},
        {"contexts", boost::json::array{boost::json::object{
                         {"name", "stash-embedded"},
                         {"context", boost::json::object{{"cluster", "stash-embedded"}, {"user", "stash-embedded"}, {"namespace", "default"}}}}}},
        {"current-context", "stash-embedded"}};
    auto const tmp = dir / "kubeconfig.tmp";
    std::ofstream(tmp) << kube::to_yaml(cfg);
    std::filesystem::permissions(tmp, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
    std::filesystem::rename(tmp, dir / "kubeconfig");
}

std::atomic<bool> stop_requested{false};

// Connects to a cluster and, with leader election, holds the Lease until stopped.
int run_cluster(logger const& log, std::string const& kubeconfig, std::string const& context, bool leader_elect, kube::leader_election_config le) {
    auto cfg = kubeconfig.empty() && std::getenv("KUBERNETES_SERVICE_HOST") ? kube::in_cluster_config() : kube::load_kubeconfig(kubeconfig, context);
    if (!cfg) {
        std::cerr << "Fatal: " << cfg.error().what() << '\n';
        return 1;
    }
    auto client = policies::cluster::rest::connect(*cfg);
    if (!client) {
        std::cerr << "Fatal: " << client.error().what() << '\n';
        return 1;
    }
    auto& c = **client;
    if (auto v = c.get({"", "v1", "namespaces", false}, "", cfg->namespace_); !v && !v.error().is(errc::not_found)) {
        std::cerr << "Fatal: cannot reach " << cfg->server << ": " << v.error().what() << '\n';
        return 1;
    }
    log.info("connected", {{"server", cfg->server}, {"context", cfg->context}});
    if (!leader_elect) {
        log.info("running without leader election");
        while (!stop_requested) std::this_thread::sleep_for(std::chrono::milliseconds(100));
        return 0;
    }
    auto const el = log.with({{"lease", le.namespace_ + "/" + le.name}, {"identity", le.identity}});
    kube::event_recorder<policies::cluster::rest> recorder(c, {}, log);
    // As client-go does, the Lease itself carries an Event for each change of leader.
    auto on_lease = [&](char const* what) {
        if (auto l = c.get(kube::leases, le.namespace_, le.name)) recorder.normal(kube::document(*l), "LeaderElection", le.identity + " " + what);
    };
    kube::leader_elector<policies::cluster::rest> elector(
        c, le,
        [&] {
            el.info("started leading");
            on_lease("became leader");
        },
        [&] {
            el.info("stopped leading");
            on_lease("stopped leading");
        });
    el.info("waiting for leadership");
    std::atomic<bool> ended{false};
    std::jthread election([&](std::stop_token st) {
        elector.run(st);
        ended = true;
    });
    while (!stop_requested && !ended) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    election.request_stop();
    election.join();
    if (!stop_requested) {
        // As client-go operators do: a replica that lost its lease exits and is restarted.
        el.error("leadership lost");
        recorder.flush(std::chrono::seconds(2));
        return 1;
    }
    recorder.flush(std::chrono::seconds(2));
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"stash-operator: Stash-style backup operator", "stash-operator"};
    bool embedded = false, verbose = false;
    std::string state_dir, listen = "127.0.0.1:0", token;
    embedded::server_options opt;
    std::string tls_ca_file;
    app.add_flag("--embedded", embedded, "serve an embedded Kubernetes API server instead of using a cluster");
    app.add_option("--state-dir", state_dir, "where the embedded cluster keeps its objects (and writes kubeconfig)");
    app.add_option("--listen", listen, "address:port of the embedded API server (port 0: any free port)")->default_val("127.0.0.1:0");
    app.add_option("--token", token, "require this bearer token from clients");
    app.add_option("--tls-cert-file", opt.tls_cert_file, "serve HTTPS with this PEM certificate (chain)")->check(CLI::ExistingFile);
    app.add_option("--tls-private-key-file", opt.tls_key_file, "the PEM key of --tls-cert-file")->check(CLI::ExistingFile);
    app.add_option("--tls-ca-file", tls_ca_file, "CA to write into the kubeconfig (default: the certificate itself)")->check(CLI::ExistingFile);
    app.add_option("--client-ca-file", opt.client_ca_file, "accept client certificates signed by this CA as authentication")
        ->check(CLI::ExistingFile);
    app.add_flag("-v,--verbose", verbose, "log every request");
    std::string kubeconfig, context;
    bool leader_elect = false;
    kube::leader_election_config le;
    double lease_s = 15, renew_s = 10, retry_s = 2;
    app.add_option("--kubeconfig", kubeconfig, "kubeconfig file (default: KUBECONFIG, ~/.kube/config, or in-cluster)");
    app.add_option("--context", context, "kubeconfig context (default: current-context)");
    app.add_flag("--leader-elect", leader_elect, "run only while holding the Lease (for several replicas)");
    app.add_option("--leader-election-namespace", le.namespace_, "namespace of the Lease")->default_val("kube-system");
    app.add_option("--leader-election-lease-duration", lease_s, "seconds a lease holds without renewal")->default_val(15);
    app.add_option("--leader-election-renew-deadline", renew_s, "seconds the leader keeps trying to renew")->default_val(10);
    app.add_option("--leader-election-retry-period", retry_s, "seconds between attempts")->default_val(2);
    std::string level_name = "info", format_name = "text";
    app.add_option("--log-level", level_name, "debug, info, warn or error")->default_val("info")->check(CLI::IsMember({"debug", "info", "warn", "error"}));
    app.add_option("--log-format", format_name, "text (logfmt) or json (one object per line)")->default_val("text")->check(CLI::IsMember({"text", "json"}));
    CLI11_PARSE(app, argc, argv);
    logger const log(parse_log_level(level_name).value(), format_name == "json" ? log_format::json : log_format::text);
    if (!embedded) {
        char host[256] = {};
        ::gethostname(host, sizeof host - 1);
        le.identity = std::string(host) + "_" + std::to_string(::getpid());
        le.lease_duration = std::chrono::milliseconds(std::int64_t(lease_s * 1000));
        le.renew_deadline = std::chrono::milliseconds(std::int64_t(renew_s * 1000));
        le.retry_period = std::chrono::milliseconds(std::int64_t(retry_s * 1000));
        if (!(le.renew_deadline < le.lease_duration) || !(le.retry_period < le.renew_deadline)) {
            std::cerr << "Fatal: leader election needs retry period < renew deadline < lease duration\n";
            return 1;
        }
        std::signal(SIGINT, [](int) { stop_requested = true; });
        std::signal(SIGTERM, [](int) { stop_requested = true; });
        return run_cluster(log, kubeconfig, context, leader_elect, le);
    }
    if (state_dir.empty()) {
        std::cerr << "Fatal: --embedded needs --state-dir DIR\n";
        return 1;
    }
    auto const colon = listen.rfind(':');
    if (colon == std::string::npos) {
        std::cerr << "Fatal: --listen \"" << listen << "\": expected ADDRESS:PORT\n";
        return 1;
    }
    boost::system::error_code ec;
    auto const addr = boost::asio::ip::make_address(listen.substr(0, colon), ec);
    if (ec) {
        std::cerr << "Fatal: --listen \"" << listen << "\": " << ec.message() << '\n';
        return 1;
    }
    auto const port = static_cast<unsigned short>(std::strtoul(listen.c_str() + colon + 1, nullptr, 10));

    embedded::registry reg;
    embedded::store st(reg, state_dir);
    if (auto r = st.open(); !r) {
        std::cerr << "Fatal: " << r.error().what() << '\n';
        return 1;
    }
    if (opt.tls_cert_file.empty() != opt.tls_key_file.empty()) {
        std::cerr << "Fatal: --tls-cert-file and --tls-private-key-file go together\n";
        return 1;
    }
    if (!opt.client_ca_file.empty() && opt.tls_cert_file.empty()) {
        std::cerr << "Fatal: --client-ca-file needs TLS (--tls-cert-file)\n";
        return 1;
    }
    boost::asio::io_context io;
    opt.token = token;
    opt.require_client_auth = !opt.client_ca_file.empty();
    if (verbose) opt.log = [](std::string const& l) { std::cerr << l << '\n'; };
    std::optional<embedded::api_server> srv;
    try {
        srv.emplace(io, st, reg, boost::asio::ip::tcp::endpoint(addr, port), opt);
    } catch (std::exception const& e) {
        std::cerr << "Fatal: cannot listen on " << listen << ": " << e.what() << '\n';
        return 1;
    }
    srv->start();
    bool const tls = !opt.tls_cert_file.empty();
    std::string const url = (tls ? "https://" : "http://") + addr.to_string() + ":" + std::to_string(srv->port());
    write_kubeconfig(state_dir, url, token, tls ? read_file(tls_ca_file.empty() ? opt.tls_cert_file : tls_ca_file) : std::string());
    std::cout << "embedded API server listening on " << url << " (resourceVersion " << st.resource_version() << ")\n"
              << "kubeconfig: " << (std::filesystem::path(state_dir) / "kubeconfig").string() << std::endl;
    boost::asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&](boost::system::error_code, int) {
        srv->stop();
        io.stop();
    });
    io.run();
    return 0;
}
