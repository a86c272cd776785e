// The embedded API server's machinery without HTTP: selectors, the three patch formats, and the
// store's Kubernetes semantics (versions, conflicts, generation, finalizers, garbage collection,
// paging, watch resume, persistence).
#include <stash/embedded/patch.hpp>
#include <stash/embedded/selector.hpp>
#include <stash/embedded/store.hpp>

#include "result_printer.hpp"

#include <boost/json/serialize.hpp>

using namespace stash;
using namespace stash::embedded;

namespace {
json::value obj(char const* s) { return json::parse(s); }

struct temp_dir {
    std::filesystem::path path = std::filesystem::temp_directory_path() / ("stash-store-" + std::to_string(::getpid()) + "-" +
                                                                            std::to_string(reinterpret_cast<std::uintptr_t>(this)));
    ~temp_dir() { std::filesystem::remove_all(path); }
};

std::string rv_of(json::value const& o) { return std::string(o.at("metadata").at("resourceVersion").as_string()); }
}  // namespace

TEST_CASE("label selectors parse and match as the API server's", "[embedded][selector]") {
    auto m = [](char const* sel, char const* labels) {
        auto s = selector::parse(sel, "labelSelector");
        REQUIRE(s);
        return s->matches_labels(json::parse(std::string(R"({"metadata":{"labels":)") + labels + "}}").as_object());
    };
    CHECK(m("", "{}"));
    CHECK(m("app=a", R"({"app":"a"})"));
    CHECK(m("app==a", R"({"app":"a"})"));
    CHECK_FALSE(m("app!=a", R"({"app":"a"})"));
    CHECK(m("app!=a", "{}"));  // != also matches objects without the key
    CHECK(m("tier in (web, db),app", R"({"tier":"db","app":"x"})"));
    CHECK_FALSE(m("tier notin (web,db)", R"({"tier":"db"})"));
    CHECK(m("!legacy", R"({"app":"x"})"));
    CHECK_FALSE(m("app,!legacy", R"({"app":"x","legacy":"1"})"));
    CHECK_FALSE(selector::parse("tier in web", "labelSelector"));
    CHECK_FALSE(selector::parse("a=b,,", "labelSelector"));
    CHECK(selector::parse("tier in web", "labelSelector").error().message.find("labelSelector \"tier in web\"") == 0);
}

TEST_CASE("merge patch (RFC 7386) and JSON patch (RFC 6902)", "[embedded][patch]") {
    CHECK(merge_patch(obj(R"({"a":{"b":1,"c":2},"d":[1]})"), obj(R"({"a":{"b":null,"e":3},"d":[2]})")) == obj(R"({"a":{"c":2,"e":3},"d":[2]})"));
    auto p = json_patch(obj(R"({"a":[1,2],"b":{"c":"x"}})"), obj(R"([
        {"op":"add","path":"/a/1","value":9},{"op":"add","path":"/a/-","value":3},
        {"op":"replace","path":"/b/c","value":"y"},{"op":"copy","from":"/b/c","path":"/b/d"},
        {"op":"move","from":"/b/d","path":"/e"},{"op":"remove","path":"/a/0"},{"op":"test","path":"/e","value":"y"},
        {"op":"add","path":"/f~1g","value":true}])"));
    REQUIRE(p);
    CHECK(*p == obj(R"({"a":[9,2,3],"b":{"c":"y"},"e":"y","f/g":true})"));
    auto t = json_patch(obj(R"({"a":1})"), obj(R"([{"op":"test","path":"/a","value":2}])"));
    REQUIRE_FALSE(t);
    CHECK(t.error().is(errc::conflict));
    CHECK(json_patch(obj("{}"), obj(R"([{"op":"replace","path":"/x","value":1}])")).error().message == "operation 0: path /x does not exist");
}

TEST_CASE("strategic merge patch merges containers, volumes and env by name", "[embedded][patch]") {
    auto out = strategic_merge_patch(obj(R"({"spec":{"containers":[{"name":"app","image":"a:1","env":[{"name":"A","value":"1"}]}],
                                                   "volumes":[{"name":"v1"},{"name":"v2"}],"args":["x"]}})"),
                                     obj(R"({"spec":{"containers":[{"name":"app","env":[{"name":"B","value":"2"}]},{"name":"stash","image":"s"}],
                                                   "volumes":[{"name":"v1","$patch":"delete"}],"args":["y"],"$setElementOrder/volumes":[]}})"));
    CHECK(out == obj(R"({"spec":{"containers":[{"name":"app","image":"a:1","env":[{"name":"A","value":"1"},{"name":"B","value":"2"}]},
                                               {"name":"stash","image":"s"}],"volumes":[{"name":"v2"}],"args":["y"]}})"));
}

TEST_CASE("store: versions, conflicts, generation, status, finalizers", "[embedded][store]") {
    temp_dir dir;
    registry reg;
    store st(reg, dir.path);
    REQUIRE(st.open());
    auto const cm = *reg.find("", "v1", "configmaps");
    auto const deploy = *reg.find("apps", "v1", "deployments");

    auto a = st.create(deploy, "default", obj(R"({"metadata":{"name":"web"},"spec":{"replicas":1}})"));
    REQUIRE(a);
    CHECK(a->at("metadata").at("generation") == json::value(1));
    CHECK(a->at("apiVersion") == json::value("apps/v1"));
    CHECK(st.create(deploy, "default", obj(R"({"metadata":{"name":"web"}})")).error().is(errc::already_exists));
    CHECK(st.create(deploy, "nowhere", obj(R"({"metadata":{"name":"web"}})")).error().message == "namespaces \"nowhere\" not found");
    CHECK(st.create(cm, "default", obj(R"({"metadata":{"name":"Bad_Name"}})")).error().is(errc::invalid_argument));

    // A stale resourceVersion conflicts; a label change keeps the generation, a spec change bumps it.
    json::value stale = *a;
    auto b = st.update(deploy, "default", "web", obj((R"({"metadata":{"name":"web","labels":{"x":"1"}},"spec":{"replicas":1}})")), false);
    REQUIRE(b);
    CHECK(b->at("metadata").at("generation") == json::value(1));
    CHECK(std::stoull(rv_of(*b)) > std::stoull(rv_of(*a)));
    stale.at("spec").as_object()["replicas"] = 3;
    CHECK(st.update(deploy, "default", "web", stale, false).error().is(errc::conflict));
    auto c = st.modify(deploy, "default", "web", false, [](json::value o) -> result<json::value> {
        o.at("spec").as_object()["replicas"] = 2;
        return o;
    });
    REQUIRE(c);
    CHECK(c->at("metadata").at("generation") == json::value(2));
    // Status goes through the subresource only.
    auto d = st.update(deploy, "default", "web", obj(R"({"metadata":{"name":"web"},"status":{"readyReplicas":2}})"), true);
    REQUIRE(d);
    CHECK(d->at("status").at("readyReplicas") == json::value(2));
    CHECK(d->at("spec").at("replicas") == json::value(2));
    CHECK(d->at("metadata").at("generation") == json::value(2));
    auto e = st.modify(deploy, "default", "web", false, [](json::value o) -> result<json::value> {
        o.as_object().erase("status");
        return o;
    });
    CHECK(e->at("status").at("readyReplicas") == json::value(2));

    // Finalizers hold a delete until they are removed.
    REQUIRE(st.create(cm, "default", obj(R"({"metadata":{"name":"held","finalizers":["stash.appscode.com"]}})")));
    auto del = st.remove(cm, "default", "held", propagation::background);
    REQUIRE(del);
    CHECK(del->at("metadata").as_object().contains("deletionTimestamp"));
    CHECK(st.get(cm, "default", "held"));
    REQUIRE(st.modify(cm, "default", "held", false, [](json::value o) -> result<json::value> {
        o.at("metadata").as_object().erase("finalizers");
        return o;
    }));
    CHECK(st.get(cm, "default", "held").error().is(errc::not_found));
}

TEST_CASE("store: owner references are garbage collected", "[embedded][store]") {
    temp_dir dir;
    registry reg;
    store st(reg, dir.path);
    REQUIRE(st.open());
    auto const cm = *reg.find("", "v1", "configmaps");
    auto const deploy = *reg.find("apps", "v1", "deployments");
    auto owner = [&](char const* name) {
        auto o = st.create(deploy, "default", json::object{{"metadata", json::object{{"name", name}}}});
        REQUIRE(o);
        return std::string(o->at("metadata").at("uid").as_string());
    };
    auto dependent = [&](char const* name, std::string const& uid) {
        REQUIRE(st.create(cm, "default", json::object{{"metadata", json::object{{"name", name},
                                                                               {"ownerReferences", json::array{json::object{
                                                                                    {"apiVersion", "apps/v1"}, {"kind", "Deployment"},
                                                                                    {"name", "o"}, {"uid", uid}}}}}}}));
    };
    dependent("a", owner("one"));
    dependent("b", owner("two"));
    dependent("c", owner("three"));
    REQUIRE(st.remove(deploy, "default", "one", propagation::background));
    CHECK(st.get(cm, "default", "a").error().is(errc::not_found));
    REQUIRE(st.remove(deploy, "default", "two", propagation::foreground));
    CHECK(st.get(cm, "default", "b").error().is(errc::not_found));
    REQUIRE(st.remove(deploy, "default", "three", propagation::orphan));
    auto c = st.get(cm, "default", "c");
    REQUIRE(c);
    CHECK_FALSE(c->at("metadata").as_object().contains("ownerReferences"));
}

TEST_CASE("store: paging, watch resume and 410, persistence across restarts", "[embedded][store]") {
    temp_dir dir;
    registry reg;
    auto const cm = *reg.find("", "v1", "configmaps");
    std::uint64_t rv_mid = 0, rv_end = 0;
    {
        store st(reg, dir.path);
        REQUIRE(st.open());
        for (int i = 0; i < 25; ++i) {
            REQUIRE(st.create(cm, "default", json::object{{"metadata", json::object{{"name", "cm-" + std::to_string(100 + i)},
                                                                                      {"labels", json::object{{"odd", i % 2 ? "y" : "n"}}}}}}));
            if (i == 9) rv_mid = st.resource_version();
        }
        rv_end = st.resource_version();

        list_options lo;
        lo.namespace_ = "default", lo.limit = 10;
        std::vector<std::string> names;
        for (;;) {
            auto page = st.list(cm, lo);
            REQUIRE(page);
            for (auto const& o : page->items) names.emplace_back(o.at("metadata").at("name").as_string());
            if (page->continue_.empty()) break;
            CHECK(page->remaining > 0);
            lo.continue_ = page->continue_;
        }
        CHECK(names.size() == 25);
        CHECK(std::is_sorted(names.begin(), names.end()));
        lo = {};
        lo.labels = *selector::parse("odd=y", "labelSelector");
        CHECK(st.list(cm, lo)->items.size() == 12);

        // Resuming from the middle replays exactly the later events, in order.
        std::vector<std::uint64_t> seen;
        auto w = st.watch(cm, "default", rv_mid, [&](watch_event const& ev) { seen.push_back(ev.rv); });
        REQUIRE(w);
        CHECK(seen.size() == 15);
        CHECK(std::is_sorted(seen.begin(), seen.end()));
        CHECK(seen.front() == rv_mid + 1);
        REQUIRE(st.create(cm, "default", obj(R"({"metadata":{"name":"live"}})")));
        CHECK(seen.size() == 16);
        st.unwatch(*w);
        rv_end = st.resource_version();
    }
    // Reopen: objects and versions are back; history before the restart is compacted.
    store st(reg, dir.path);
    REQUIRE(st.open());
    CHECK(st.resource_version() == rv_end);
    auto live = st.get(cm, "default", "live");
    REQUIRE(live);
    CHECK(rv_of(*live) == std::to_string(rv_end));
    CHECK(st.watch(cm, "", rv_mid, [](watch_event const&) {}).error().is(errc::gone));
    CHECK(st.watch(cm, "", rv_end, [](watch_event const&) {}));
    auto next = st.create(cm, "default", obj(R"({"metadata":{"name":"after"}})"));
    REQUIRE(next);
    CHECK(rv_of(*next) == std::to_string(rv_end + 1));
}

TEST_CASE("store: a torn last log line is dropped, everything before it kept", "[embedded][store]") {
    temp_dir dir;
    registry reg;
    auto const cm = *reg.find("", "v1", "configmaps");
    {
        store st(reg, dir.path);
        REQUIRE(st.open());
        REQUIRE(st.create(cm, "default", obj(R"({"metadata":{"name":"kept"}})")));
    }
    std::ofstream(dir.path / "wal.jsonl", std::ios::app) << R"({"rv":99,"op":"put","type":"ADDED","key":"/configmaps/default/torn","obj)";
    store st(reg, dir.path);
    REQUIRE(st.open());
    CHECK(st.get(cm, "default", "kept"));
    CHECK(st.get(cm, "default", "torn").error().is(errc::not_found));
}
