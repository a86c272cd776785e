// Load on the embedded API server: N objects created over keep-alive connections while W watchers
// stream the changes, then a paged list. Checks that every watcher saw every event once, in
// resourceVersion order, and that paging returns every object once; prints requests/s.
//   stash_bench_embedded_load HOST PORT [OBJECTS=10000] [WATCHERS=10] [WRITERS=4]
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>

#include <atomic>
#include <chrono>
#include <iostream>
#include <mutex>
#include <thread>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
using tcp = asio::ip::tcp;

namespace {

struct client {
    asio::io_context io;
    beast::tcp_stream stream{io};
    beast::flat_buffer buf;
    std::string host;

    client(std::string const& h, std::string const& port) : host(h) {
        tcp::resolver r(io);
        stream.connect(r.resolve(h, port));
    }
    http::response<http::string_body> call(http::verb v, std::string const& target, std::string body = {}) {
        http::request<http::string_body> req{v, target, 11};
        req.set(http::field::host, host);
        req.set(http::field::content_type, "application/json");
        req.keep_alive(true);
        req.body() = std::move(body);
        req.prepare_payload();
        http::write(stream, req);
        http::response<http::string_body> res;
        http::read(stream, buf, res);
        return res;
    }
};

}  // namespace

int main(int argc, char** argv) {
    if (argc < 3) {
        std::cerr << "usage: stash_bench_embedded_load HOST PORT [OBJECTS] [WATCHERS] [WRITERS]\n";
        return 2;
    }
    std::string const host = argv[1], port = argv[2];
    int const objects = argc > 3 ? std::atoi(argv[3]) : 10000, watchers = argc > 4 ? std::atoi(argv[4]) : 10,
              writers = argc > 5 ? std::atoi(argv[5]) : 4;
    std::string const ns = "load-" + std::to_string(std::chrono::system_clock::now().time_since_epoch().count() % 1000000);
    client admin(host, port);
    if (admin.call(http::verb::post, "/api/v1/namespaces", R"({"metadata":{"name":")" + ns + R"("}})").result_int() != 201) {
        std::cerr << "cannot create namespace " << ns << '\n';
        return 1;
    }
    std::string const base = "/api/v1/namespaces/" + ns + "/configmaps";
    auto const list0 = json::parse(admin.call(http::verb::get, base).body());
    std::string const from_rv(list0.at("metadata").at("resourceVersion").as_string());

    // Watchers: each reads the chunked stream and records (rv, name) of ADDED events.
    std::vector<std::vector<std::uint64_t>> seen(static_cast<std::size_t>(watchers));
    std::vector<std::thread> wt;
    std::atomic<int> ready{0};
    for (int w = 0; w < watchers; ++w)
        wt.emplace_back([&, w] {
            asio::io_context io;
            beast::tcp_stream s(io);
            tcp::resolver r(io);
            s.connect(r.resolve(host, port));
            http::request<http::empty_body> req{http::verb::get, base + "?watch=true&resourceVersion=" + from_rv, 11};
            req.set(http::field::host, host);
            http::write(s, req);
            beast::flat_buffer b;
            http::response_parser<http::empty_body> p;
            http::read_header(s, b, p);
            ++ready;
            std::string pending;
            http::chunk_extensions ext;
            auto on_body = [&](std::uint64_t, std::string_view data, beast::error_code&) {
                pending.append(data);
                for (std::size_t nl; (nl = pending.find('\n')) != std::string::npos;) {
                    auto ev = json::parse(std::string_view(pending).substr(0, nl));
                    pending.erase(0, nl + 1);
                    if (ev.at("type") == "ADDED")
                        seen[std::size_t(w)].push_back(std::stoull(std::string(ev.at("object").at("metadata").at("resourceVersion").as_string())));
                }
                return data.size();
            };
            http::response_parser<http::empty_body>& parser = p;
            std::function<std::size_t(std::uint64_t, std::string_view, beast::error_code&)> cb = on_body;
            parser.on_chunk_body(cb);
            beast::error_code ec;
            while (!parser.is_done() && int(seen[std::size_t(w)].size()) < objects) {
                http::read_some(s, b, parser, ec);
                if (ec) break;
            }
        });
    while (ready < watchers) std::this_thread::sleep_for(std::chrono::milliseconds(5));

    auto const t0 = std::chrono::steady_clock::now();
    std::atomic<int> next{0}, failures{0};
    std::vector<std::thread> ct;
    for (int c = 0; c < writers; ++c)
        ct.emplace_back([&] {
            client cl(host, port);
            for (int i; (i = next++) < objects;) {
                auto res = cl.call(http::verb::post, base,
                                   R"({"metadata":{"name":"cm-)" + std::to_string(100000 + i) + R"(","labels":{"bench":"load"}},"data":{"i":")" +
                                       std::to_string(i) + R"("}})");
                if (res.result_int() != 201) ++failures;
            }
        });
    for (auto& t : ct) t.join();
    double const create_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    for (auto& t : wt) t.join();
    double const watch_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

    // Paged list.
    auto const t1 = std::chrono::steady_clock::now();
    std::size_t listed = 0, pages = 0;
    std::string cont;
    std::string last;
    bool ordered = true;
    do {
        auto page = json::parse(admin.call(http::verb::get, base + "?limit=500" + (cont.empty() ? "" : "&continue=" + cont)).body());
        for (auto const& o : page.at("items").as_array()) {
            std::string const n(o.at("metadata").at("name").as_string());
            ordered = ordered && n > last;
            last = n;
            ++listed;
        }
        ++pages;
        auto const* c = page.at("metadata").as_object().if_contains("continue");
        cont = c ? std::string(c->as_string()) : std::string();
    } while (!cont.empty());
    double const list_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();

    bool ok = failures == 0 && listed == std::size_t(objects) && ordered;
    for (auto const& v : seen) ok = ok && int(v.size()) == objects && std::is_sorted(v.begin(), v.end()) &&
                                  std::adjacent_find(v.begin(), v.end()) == v.end();
    json::object out{{"objects", objects},
                     {"watchers", watchers},
                     {"writers", writers},
                     {"create_seconds", create_s},
                     {"creates_per_second", objects / create_s},
                     {"all_watch_events_seconds", watch_s},
                     {"watch_events_delivered", std::size_t(objects) * std::size_t(watchers)},
                     {"list_pages", pages},
                     {"list_seconds", list_s},
                     {"failures", failures.load()},
                     {"every_watcher_saw_every_event_in_order", ok}};
    std::cout << json::serialize(out) << '\n';
    admin.call(http::verb::delete_, "/api/v1/namespaces/" + ns);
    return ok ? 0 : 1;
}
