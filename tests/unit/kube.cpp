// The Kubernetes API layer: YAML as kubectl reads it, the reflection codec, admission of Stash's
// objects (defaults, enums, required fields, cross-field rules) and the generated CRD schemas.
#include <stash/kube/api/repository_env.hpp>
#include <stash/kube/api/validation.hpp>
#include <stash/kube/document.hpp>
#include <stash/kube/schema.hpp>
#include <stash/kube/yaml.hpp>

#include "result_printer.hpp"

#include <boost/json/serialize.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>

using namespace stash;
using namespace stash::kube;
namespace json = boost::json;

namespace {
json::value yaml1(std::string const& text) {
    auto docs = parse_yaml(text, "test");
    REQUIRE(docs);
    REQUIRE(docs->size() == 1);
    return (*docs)[0];
}

// Whether every member of `in` is in `out` with the same value (out may add defaults).
bool covers(json::value const& out, json::value const& in, std::string const& path, std::string& why) {
    if (in.is_object()) {
        if (!out.is_object()) return why = path + ": not an object", false;
        for (auto const& [k, v] : in.get_object()) {
            auto const* o = out.get_object().if_contains(k);
            if (!o) return why = path + "." + std::string(k) + ": missing", false;
            if (!covers(*o, v, path + "." + std::string(k), why)) return false;
        }
        return true;
    }
    if (in.is_array()) {
        if (!out.is_array() || out.get_array().size() != in.get_array().size()) return why = path + ": list differs", false;
        for (std::size_t i = 0; i < in.get_array().size(); ++i)
            if (!covers(out.get_array()[i], in.get_array()[i], path + "[" + std::to_string(i) + "]", why)) return false;
        return true;
    }
    if (out != in) return why = path + ": " + json::serialize(out) + " != " + json::serialize(in), false;
    return true;
}

// Admits a document of any CRD kind; the error message, or "" when admitted.
std::string admit_any(json::value const& doc, json::value* out = nullptr) {
    auto const& o = doc.as_object();
    std::string const av(o.at("apiVersion").as_string()), kind(o.at("kind").as_string());
    std::string const group = av.find('/') == std::string::npos ? "" : av.substr(0, av.find('/'));
    std::string msg = "unknown kind";
    visit_kind(group, kind, [&](auto t) {
        using K = typename decltype(t)::type;
        auto r = admit<K>(doc);
        if (!r) return void(msg = r.error().what());
        msg.clear();
        if (out) *out = to_json(*r);
    });
    return msg;
}

json::value example(char const* yaml) { return yaml1(yaml); }
}  // namespace

TEST_CASE("YAML scalars resolve as kubectl's YAML 1.1 reader does", "[kube][yaml]") {
    auto v = yaml1("a: yes\nb: off\nc: 0644\nd: \"0644\"\ne: 1.5\nf: ~\ng: 0x1F\nh: 12_000\ni: '12'\nj: v1.2\nk: -3\nl: .inf\n");
    CHECK(v.at("a") == json::value(true));
    CHECK(v.at("b") == json::value(false));
    CHECK(v.at("c") == json::value(420));  // octal file mode
    CHECK(v.at("d") == json::value("0644"));
    CHECK(v.at("e") == json::value(1.5));
    CHECK(v.at("f").is_null());
    CHECK(v.at("g") == json::value(31));
    CHECK(v.at("h") == json::value(12000));
    CHECK(v.at("i") == json::value("12"));
    CHECK(v.at("j") == json::value("v1.2"));
    CHECK(v.at("k") == json::value(-3));
    CHECK(v.at("l") == json::value(".inf"));

    auto docs = parse_yaml("---\na: 1\n---\n---\nb: 2\n", "stream");
    REQUIRE(docs);
    CHECK(docs->size() == 2);

    auto bad = parse_yaml("a: [1, 2\nb: 3\n", "deploy/bad.yaml");
    REQUIRE_FALSE(bad);
    CHECK(bad.error().message.find("deploy/bad.yaml: line ") == 0);
}

TEST_CASE("JSON written as YAML reads back the same", "[kube][yaml]") {
    json::value v = json::parse(R"({"s":["true","0644","","a: b","- x","#c","null","~","1e3","yes",
        "multi\nline","  padded"],"n":[1,-2,2.5,true,null],"o":{"k":{}},"e":[]})");
    auto back = parse_yaml(to_yaml(v), "round trip");
    REQUIRE(back);
    REQUIRE(back->size() == 1);
    CHECK(json::serialize((*back)[0]) == json::serialize(v));
}

TEST_CASE("every example manifest is admitted and round-trips with defaults added", "[kube][codec]") {
    std::size_t n = 0;
    for (auto const& f : std::filesystem::directory_iterator(STASH_SOURCE_DIR "/docs/examples")) {
        std::ifstream in(f.path());
        std::stringstream text;
        text << in.rdbuf();
        auto docs = parse_yaml(text.str(), f.path().filename().string());
        REQUIRE(docs);
        for (auto const& d : *docs) {
            std::string const kind(d.at("kind").as_string());
            if (kind == "Deployment") continue;  // a built-in kind: kept as a JSON document
            json::value out;
            INFO(f.path().filename().string() << " " << kind);
            CHECK(admit_any(d, &out) == "");
            std::string why;
            CHECK(covers(out, d, "", why));
            INFO(why);
            ++n;
        }
    }
    CHECK(n == 12);
}

TEST_CASE("admission applies the CRD defaults", "[kube][codec]") {
    json::value out;
    REQUIRE(admit_any(example(R"(
apiVersion: stash.appscode.com/v1beta1
kind: BackupBatch
metadata: {name: b, namespace: demo}
spec:
  repository: {name: r}
  members: [{target: {ref: {kind: PersistentVolumeClaim, name: p}}}]
  retentionPolicy: {name: keep, keepLast: 1, prune: false}
  retryConfig: {}
  hooks: {postBackup: {exec: {command: [date]}}}
)"), &out) == "");
    CHECK(out.at("spec").at("executionOrder") == json::value("Parallel"));
    CHECK(out.at("spec").at("driver") == json::value("Restic"));
    CHECK(out.at("spec").at("backupHistoryLimit") == json::value(1));
    CHECK(out.at("spec").at("retryConfig").at("maxRetry") == json::value(1));
    CHECK(out.at("spec").at("hooks").at("postBackup").at("executionPolicy") == json::value("Always"));
    CHECK(out.at("spec").at("retentionPolicy").at("prune") == json::value(false));  // required: written even when false
}

TEST_CASE("invalid objects are refused with the object and the field named", "[kube][codec]") {
    std::string const bc = R"(
apiVersion: stash.appscode.com/v1beta1
kind: BackupConfiguration
metadata: {name: app, namespace: demo}
spec:
  repository: {name: r}
  schedule: "*/5 * * * *"
  target: {ref: {apiVersion: apps/v1, kind: Deployment, name: d}, paths: [/data]}
  retentionPolicy: {name: keep, keepLast: 5, prune: true}
)";
    CHECK(admit_any(example(bc.c_str())) == "");
    auto with = [&](std::string const& from, std::string const& to) {
        std::string s = bc;
        s.replace(s.find(from), from.size(), to);
        return admit_any(example(s.c_str()));
    };
    CHECK(with("kind: Deployment", "kind: Pod") ==
          "BackupConfiguration demo/app: spec.target.ref.kind: Unsupported value: \"Pod\": supported values: \"Deployment\", "
          "\"StatefulSet\", \"DaemonSet\", \"ReplicaSet\", \"ReplicationController\", \"PersistentVolumeClaim\", \"AppBinding\", "
          "\"EmptyTarget\"");
    CHECK(with("keepLast: 5", "keepLast: -1") ==
          "BackupConfiguration demo/app: spec.retentionPolicy.keepLast: Invalid value: -1: must be greater than or equal to 0");
    CHECK(with("  retentionPolicy: {name: keep, keepLast: 5, prune: true}\n", "") ==
          "BackupConfiguration demo/app: spec.retentionPolicy: Required value");
    CHECK(with("prune: true", "dryRun: true") == "BackupConfiguration demo/app: spec.retentionPolicy.prune: Required value");
    CHECK(with("keepLast: 5", "keepLast: five") == "BackupConfiguration demo/app: spec.retentionPolicy.keepLast: expected an integer");
    CHECK(with("*/5 * * * *", "every day") ==
          "BackupConfiguration demo/app: spec.schedule: Invalid value: \"every day\": expected 5 cron fields or an @-descriptor");
    CHECK(with(", paths: [/data]", "") ==
          "BackupConfiguration demo/app: spec.target.paths: Required value: a workload target needs the paths to back up");
    CHECK(with("stash.appscode.com/v1beta1", "stash.appscode.com/v1alpha1").find("apiVersion: Invalid value") != std::string::npos);
    CHECK(with("{name: app, namespace: demo}", "{namespace: demo}") ==
          "BackupConfiguration demo/: metadata.name: Required value: name or generateName is required");

    std::string const repo = R"(
apiVersion: stash.appscode.com/v1alpha1
kind: Repository
metadata: {name: r, namespace: demo}
spec:
  backend: {storageSecretName: s, local: {mountPath: /safe, hostPath: {path: /data}}}
)";
    CHECK(admit_any(example(repo.c_str())) == "");
    auto repo_with = [&](std::string const& from, std::string const& to) {
        std::string s = repo;
        s.replace(s.find(from), from.size(), to);
        return admit_any(example(s.c_str()));
    };
    CHECK(repo_with("local: {mountPath: /safe, hostPath: {path: /data}}", "ftp: {host: h}") ==
          "Repository demo/r: spec.backend: Required value: one of local, s3, gcs, azure, swift, b2, rest must be set");
    CHECK(repo_with("mountPath: /safe", "mountPath: /stash/x") ==
          "Repository demo/r: spec.backend.local.mountPath: Invalid value: \"/stash/x\": must not be /stash or below it (the agent uses it)");
    CHECK(repo_with("local: {mountPath: /safe, hostPath: {path: /data}}", "s3: {bucket: b}") ==
          "Repository demo/r: spec.backend.s3.endpoint: Required value");
    CHECK(repo_with("storageSecretName: s,", "storageSecretName: s, s3: {endpoint: e, bucket: b},") ==
          "Repository demo/r: spec.backend: Invalid value: only one of local, s3, gcs, azure, swift, b2, rest may be set");
    CHECK(repo_with("spec:", "spec:\n  wipeOut: true").find("spec.wipeOut: Forbidden") != std::string::npos);

    CHECK(admit_any(example(R"(
apiVersion: stash.appscode.com/v1beta1
kind: RestoreSession
metadata: {name: rs, namespace: demo}
spec:
  repository: {name: r}
  target:
    ref: {kind: StatefulSet, name: s}
    rules: [{paths: [/a]}, {snapshots: [abc]}]
)")) == "RestoreSession demo/rs: spec.target.rules[1].targetHosts: Invalid value: at most one rule may leave targetHosts empty");
    CHECK(admit_any(example(R"(
apiVersion: stash.appscode.com/v1beta1
kind: RestoreSession
metadata: {name: rs, namespace: demo}
spec:
  repository: {name: r}
  target:
    ref: {kind: StatefulSet, name: s}
    rules: [{targetHosts: [h0], paths: [/a], snapshots: [abc]}]
)")) == "RestoreSession demo/rs: spec.target.rules[0]: Invalid value: snapshots and paths are mutually exclusive");
}

TEST_CASE("CRDs: names, scope, structural schema with rules, printer columns", "[kube][schema]") {
    auto bc = crd<stash_v1beta1::backup_configuration_kind>();
    CHECK(bc.at("metadata").at("name") == json::value("backupconfigurations.stash.appscode.com"));
    CHECK(bc.at("spec").at("scope") == json::value("Namespaced"));
    CHECK(bc.at("spec").at("names").at("shortNames") == json::parse(R"(["bc"])"));
    CHECK(bc.at("spec").at("names").at("categories") == json::parse(R"(["stash","appscode","all"])"));
    auto const& v = bc.at("spec").at("versions").at(0);
    CHECK(v.at("name") == json::value("v1beta1"));
    CHECK(v.at("subresources") == json::parse(R"({"status":{}})"));
    auto const& spec = v.at("schema").at("openAPIV3Schema").at("properties").at("spec");
    CHECK(spec.at("required") == json::parse(R"(["repository","retentionPolicy"])"));
    CHECK(spec.at("properties").at("driver") ==
          json::parse(R"({"type":"string","default":"Restic","enum":["Restic","VolumeSnapshotter"]})"));
    CHECK(spec.at("properties").at("retentionPolicy").at("properties").at("keepLast") ==
          json::parse(R"({"type":"integer","format":"int64","minimum":0})"));
    CHECK(spec.at("properties").at("runtimeSettings").at("properties").at("pod") ==
          json::parse(R"({"x-kubernetes-preserve-unknown-fields":true})"));
    auto const& cols = v.at("additionalPrinterColumns").as_array();
    CHECK(cols.size() == 5);
    CHECK(cols.back() == json::parse(R"({"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"})"));
    CHECK(crd<stash_v1beta1::task_kind>().at("spec").at("scope") == json::value("Cluster"));
}

TEST_CASE("built-in kinds as documents: typed access, unknown fields survive a read-modify-write", "[kube][document]") {
    auto doc = document(yaml1(R"(
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: demo
  uid: 1234
  labels: {app: web}
  futureField: {keep: me}
spec:
  replicas: 3
  minReadySeconds: 5
  template:
    metadata: {labels: {app: web}}
    spec:
      shareProcessNamespace: true
      containers:
      - {name: app, image: nginx, futureContainerField: 1}
      volumes:
      - {name: data, emptyDir: {}}
)"));
    CHECK(doc.name() == "web");
    CHECK(doc.namespace_() == "demo");
    CHECK(doc.label("app") == std::optional<std::string>("web"));
    CHECK_FALSE(doc.annotation("x"));
    CHECK(doc.replicas() == 3);

    // Inject a sidecar and a volume the way the operator does, twice (the second time changes nothing).
    auto* pod = doc.pod_spec();
    REQUIRE(pod);
    auto sidecar = json::parse(R"({"name":"stash","image":"stash:1","args":["run-backup"]})");
    CHECK(document::upsert_by_name(*pod, "containers", sidecar));
    CHECK_FALSE(document::upsert_by_name(*pod, "containers", sidecar));
    CHECK(document::upsert_by_name(*pod, "volumes", json::parse(R"({"name":"stash-tmp-dir","emptyDir":{}})")));
    doc.set_annotation("stash.appscode.com/last-applied-backupconfiguration-hash", "abc");
    doc.add_owner_reference({"stash.appscode.com/v1beta1", "BackupConfiguration", "bc", "u-1", true, std::nullopt});
    doc.add_owner_reference({"stash.appscode.com/v1beta1", "BackupConfiguration", "bc", "u-1", true, std::nullopt});
    CHECK(doc.owner_references().size() == 1);

    auto const& o = doc.json();
    CHECK(o.at("metadata").at("futureField") == json::parse(R"({"keep":"me"})"));
    CHECK(o.at("spec").at("minReadySeconds") == json::value(5));
    CHECK(o.at("spec").at("template").at("spec").at("shareProcessNamespace") == json::value(true));
    CHECK(o.at("spec").at("template").at("spec").at("containers").at(0).at("futureContainerField") == json::value(1));
    CHECK(o.at("spec").at("template").at("spec").at("containers").as_array().size() == 2);
    CHECK(document::find_by_name(*pod, "containers", "stash"));
    CHECK(document::remove_by_name(*pod, "containers", "stash"));
    CHECK_FALSE(document::find_by_name(*pod, "containers", "stash"));

    auto cron = document(json::parse(R"({"kind":"CronJob","spec":{"schedule":"* * * * *"}})"));
    REQUIRE(cron.pod_spec());
    cron.pod_spec()->emplace("restartPolicy", "Never");
    CHECK(cron.json().at("spec").at("jobTemplate").at("spec").at("template").at("spec").at("restartPolicy") == json::value("Never"));
    CHECK_FALSE(document(json::parse(R"({"kind":"Secret"})")).pod_spec());
}

TEST_CASE("a Repository's backend and Secret become the agent's repository string, environment and options", "[kube][backend]") {
    using namespace stash::kube::stash_v1alpha1;
    std::map<std::string, std::string> secret{{"RESTIC_PASSWORD", "pw"}, {"AWS_ACCESS_KEY_ID", "AK"}, {"AWS_SECRET_ACCESS_KEY", "SK"},
                                              {"CA_CERT_DATA", "-----BEGIN CERTIFICATE-----"}, {"UNRELATED", "x"}};
    backend_spec b;
    b.storageSecretName = "s3-secret";
    b.s3 = s3_spec{"https://minio.local:9000/", "stash-backup", "/demo/app", "eu-west-1", true};
    auto e = kube::api::make_repository_env(b, secret, "demo/s3-repo");
    REQUIRE(e);
    CHECK(e->repository == "s3:https://minio.local:9000/stash-backup/demo/app");
    CHECK(e->env.at("AWS_DEFAULT_REGION") == "eu-west-1");
    CHECK(e->env.at("AWS_ACCESS_KEY_ID") == "AK");
    CHECK(e->env.at("RESTIC_PASSWORD") == "pw");
    CHECK(!e->env.count("UNRELATED"));
    CHECK(e->args == std::vector<std::string>{"--insecure-tls"});
    CHECK(e->ca_cert.starts_with("-----BEGIN"));

    backend_spec g;
    g.gcs = gcs_spec{"bkt", "x/y", 5};
    auto ge = kube::api::make_repository_env(g, {{"RESTIC_PASSWORD", "pw"}, {"GOOGLE_PROJECT_ID", "p"}}, "demo/gcs");
    REQUIRE(ge);
    CHECK(ge->repository == "gs:bkt:/x/y");
    CHECK(ge->args == std::vector<std::string>{"--option=gs.connections=5"});

    backend_spec r;
    r.storageSecretName = "rest-secret";
    r.rest = rest_spec{"http://rest.local:8000/repo"};
    auto re = kube::api::make_repository_env(r, {{"RESTIC_PASSWORD", "pw"}, {"REST_SERVER_USERNAME", "ann"}, {"REST_SERVER_PASSWORD", "p@ss:1"}}, "demo/rest");
    REQUIRE(re);
    CHECK(re->repository == "rest:http://ann:p%40ss%3A1@rest.local:8000/repo");

    backend_spec b2b;
    b2b.storageSecretName = "b2-secret";
    b2b.b2 = b2_spec{"bkt", "p", {}};
    auto missing = kube::api::make_repository_env(b2b, {{"RESTIC_PASSWORD", "pw"}}, "demo/b2");
    REQUIRE(!missing);
    CHECK(missing.error().what() == "Repository demo/b2: Secret b2-secret: key B2_ACCOUNT_ID is required for b2");
    CHECK(kube::api::make_repository_env(b2b, {}, "demo/b2").error().what() == "Repository demo/b2: Secret b2-secret: key RESTIC_PASSWORD is required");
    backend_spec none;
    CHECK(kube::api::make_repository_env(none, secret, "demo/x").error().what().find("exactly one of") != std::string::npos);
}
