// The resource types the embedded API server serves: the built-in kinds the operator touches, and
// custom resources registered at run time by CustomResourceDefinition objects.
#pragma once

#include <stash/kube/api/validation.hpp>

#include <boost/json.hpp>

#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace stash::embedded {

namespace json = boost::json;

/// One served resource (a group/version/plural).
struct resource_info {
    std::string group, version, kind, plural, singular;
    bool namespaced = true;
    bool status_subresource = false;
    std::vector<std::string> short_names, categories;
    json::array printer_columns;  ///< CRD additionalPrinterColumns (empty: Name and Age)
    /// Extra admission of a created or updated object (the Stash kinds' typed rules); returns the
    /// object with defaults applied, or an error naming the field.
    std::function<result<json::value>(json::value const&)> admit;

    std::string api_version() const { return group.empty() ? version : group + "/" + version; }
    /// "deployments.apps", "pods": how owner references, events and errors name the resource.
    std::string qualified() const { return group.empty() ? plural : plural + "." + group; }
};

/** The resource types served, looked up by group/version/plural or group/kind. Thread-safe. */
class registry {
public:
    /// The built-in kinds (core, apps, batch, rbac, coordination, apiextensions).
    registry() {
        auto add_builtin = [&](std::string g, std::string v, std::string kind, std::string plural, bool ns, bool status,
                               std::vector<std::string> shorts = {}, std::vector<std::string> cats = {}) {
            resource_info r;
            r.group = std::move(g), r.version = std::move(v), r.kind = std::move(kind), r.plural = std::move(plural);
            r.singular = r.kind;
            for (auto& c : r.singular) c = char(std::tolower(static_cast<unsigned char>(c)));
            r.namespaced = ns, r.status_subresource = status, r.short_names = std::move(shorts), r.categories = std::move(cats);
            add(std::move(r));
        };
        add_builtin("", "v1", "Namespace", "namespaces", false, true, {"ns"});
        add_builtin("", "v1", "Pod", "pods", true, true, {"po"}, {"all"});
        add_builtin("", "v1", "Secret", "secrets", true, false);
        add_builtin("", "v1", "ConfigMap", "configmaps", true, false, {"cm"});
        add_builtin("", "v1", "ServiceAccount", "serviceaccounts", true, false, {"sa"});
        add_builtin("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", true, true, {"pvc"});
        add_builtin("", "v1", "ReplicationController", "replicationcontrollers", true, true, {"rc"}, {"all"});
        add_builtin("", "v1", "Service", "services", true, true, {"svc"}, {"all"});
        add_builtin("", "v1", "Endpoints", "endpoints", true, false, {"ep"});
        add_builtin("", "v1", "Event", "events", true, false, {"ev"});
        add_builtin("apps", "v1", "Deployment", "deployments", true, true, {"deploy"}, {"all"});
        add_builtin("apps", "v1", "StatefulSet", "statefulsets", true, true, {"sts"}, {"all"});
        add_builtin("apps", "v1", "DaemonSet", "daemonsets", true, true, {"ds"}, {"all"});
        add_builtin("apps", "v1", "ReplicaSet", "replicasets", true, true, {"rs"}, {"all"});
        add_builtin("batch", "v1", "Job", "jobs", true, true, {}, {"all"});
        add_builtin("batch", "v1", "CronJob", "cronjobs", true, true, {"cj"}, {"all"});
        add_builtin("rbac.authorization.k8s.io", "v1", "Role", "roles", true, false);
        add_builtin("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", true, false);
        add_builtin("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", false, false);
        add_builtin("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", false, false);
        add_builtin("coordination.k8s.io", "v1", "Lease", "leases", true, false);
        add_builtin("apiextensions.k8s.io", "v1", "CustomResourceDefinition", "customresourcedefinitions", false, true, {"crd", "crds"});
    }

    void add(resource_info r) {
        std::lock_guard lk(mu_);
        auto key = r.group + "/" + r.version + "/" + r.plural;
        by_path_[key] = std::move(r);
    }
    void remove(std::string const& group, std::string const& version, std::string const& plural) {
        std::lock_guard lk(mu_);
        by_path_.erase(group + "/" + version + "/" + plural);
    }

    std::optional<resource_info> find(std::string const& group, std::string const& version, std::string const& plural) const {
        std::lock_guard lk(mu_);
        auto it = by_path_.find(group + "/" + version + "/" + plural);
        if (it == by_path_.end()) return std::nullopt;
        return it->second;
    }
    /// By group and kind (for owner references), any version.
    std::optional<resource_info> find_kind(std::string const& group, std::string const& kind) const {
        std::lock_guard lk(mu_);
        for (auto const& [k, r] : by_path_)
            if (r.group == group && r.kind == kind) return r;
        return std::nullopt;
    }
    /// Every served resource, ordered by group, version, plural.
    std::vector<resource_info> all() const {
        std::lock_guard lk(mu_);
        std::vector<resource_info> out;
        for (auto const& [k, r] : by_path_) out.push_back(r);
        return out;
    }

    /** The resource a CustomResourceDefinition describes (its storage version), with Stash's typed
        admission attached for the kinds this project defines. Errors name the CRD's field. */
    static result<resource_info> from_crd(json::value const& crd) {
        auto bad = [](std::string const& f, std::string const& m) { return make_error(errc::invalid_argument, f + ": " + m); };
        auto const* spec = crd.as_object().if_contains("spec");
        if (!spec || !spec->is_object()) return bad("spec", "Required value");
        auto const& s = spec->get_object();
        auto str = [](json::object const& o, char const* k) {
            auto const* v = o.if_contains(k);
            return v && v->is_string() ? std::string(v->get_string()) : std::string();
        };
        resource_info r;
        r.group = str(s, "group");
        if (r.group.empty()) return bad("spec.group", "Required value");
        auto const* names = s.if_contains("names");
        if (!names || !names->is_object()) return bad("spec.names", "Required value");
        r.kind = str(names->get_object(), "kind"), r.plural = str(names->get_object(), "plural");
        r.singular = str(names->get_object(), "singular");
        if (r.kind.empty()) return bad("spec.names.kind", "Required value");
        if (r.plural.empty()) return bad("spec.names.plural", "Required value");
        if (r.singular.empty()) {
            r.singular = r.kind;
            for (auto& c : r.singular) c = char(std::tolower(static_cast<unsigned char>(c)));
        }
        auto strings = [](json::value const* v) {
            std::vector<std::string> out;
            if (v && v->is_array())
                for (auto const& e : v->get_array())
                    if (e.is_string()) out.emplace_back(e.get_string());
            return out;
        };
        r.short_names = strings(names->get_object().if_contains("shortNames"));
        r.categories = strings(names->get_object().if_contains("categories"));
        std::string const scope = str(s, "scope");
        if (scope != "Namespaced" && scope != "Cluster") return bad("spec.scope", "Unsupported value: \"" + scope + "\": supported values: \"Namespaced\", \"Cluster\"");
        r.namespaced = scope == "Namespaced";
        auto const* versions = s.if_contains("versions");
        if (!versions || !versions->is_array() || versions->get_array().empty()) return bad("spec.versions", "Required value");
        json::object const* storage = nullptr;
        for (auto const& v : versions->get_array()) {
            if (!v.is_object()) return bad("spec.versions", "expected objects");
            auto const* st = v.get_object().if_contains("storage");
            if (st && st->is_bool() && st->get_bool()) storage = &v.get_object();
        }
        if (!storage) return bad("spec.versions", "Invalid value: exactly one version must be the storage version");
        r.version = str(*storage, "name");
        if (auto const* sub = storage->if_contains("subresources"); sub && sub->is_object() && sub->get_object().contains("status"))
            r.status_subresource = true;
        if (auto const* cols = storage->if_contains("additionalPrinterColumns"); cols && cols->is_array()) r.printer_columns = cols->get_array();
        kube::visit_kind(r.group, r.kind, [&](auto t) {
            using K = typename decltype(t)::type;
            if (r.version != K::version) return;
            r.admit = [](json::value const& doc) -> result<json::value> {
                auto a = kube::admit<K>(doc);
                if (!a) return std::move(a).error();
                return kube::to_json(*a);
            };
        });
        return r;
    }

private:
    mutable std::mutex mu_;
    std::map<std::string, resource_info> by_path_;
};

}  // namespace stash::embedded
