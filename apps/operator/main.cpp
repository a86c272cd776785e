// `stash-operator`: with --embedded, serves an embedded Kubernetes API server (kubectl works against
// it through the kubeconfig written to the state directory). The reconcilers come with issue 4+.
#include <stash/embedded/server.hpp>
#include <stash/core/hex.hpp>
#include <stash/kube/yaml.hpp>

#include <CLI/CLI.hpp>

#include <csignal>
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
    CLI11_PARSE(app, argc, argv);
    if (!embedded) {
        std::cerr << "Fatal: only --embedded is implemented so far (a real cluster through kubeconfig comes with the controller runtime)\n";
        return 1;
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
