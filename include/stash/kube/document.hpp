// Built-in kinds (Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet, ReplicationController, Job,
// CronJob, Secret, PVC, …) as JSON documents with typed accessors for the fields the operator reads
// or changes. Everything else in the document is left alone, so a read-modify-write never drops a
// field this code does not know (newer Kubernetes versions add them all the time).
#pragma once

#include <stash/kube/codec.hpp>
#include <stash/kube/meta.hpp>

#include <boost/json.hpp>

#include <optional>
#include <string>

namespace stash::kube {

/** A JSON object viewed as a Kubernetes object. Accessors that return references create the
    member (as an empty object or list) when it is missing; `const` ones never modify. */
class document {
public:
    document() : v_(boost::json::object{}) {}
    explicit document(boost::json::value v) : v_(std::move(v)) {
        if (!v_.is_object()) v_ = boost::json::object{};
    }

    boost::json::value const& json() const noexcept { return v_; }
    boost::json::value& json() noexcept { return v_; }
    boost::json::object& object() { return v_.get_object(); }
    boost::json::object const& object() const { return v_.get_object(); }

    std::string api_version() const { return str(object(), "apiVersion"); }
    std::string kind() const { return str(object(), "kind"); }
    std::string name() const { return str(meta(), "name"); }
    std::string namespace_() const { return str(meta(), "namespace"); }
    std::string uid() const { return str(meta(), "uid"); }
    std::string resource_version() const { return str(meta(), "resourceVersion"); }
    std::int64_t generation() const {
        auto const* g = meta().if_contains("generation");
        return g && g->is_int64() ? g->get_int64() : 0;
    }

    /// A label or annotation, if present.
    std::optional<std::string> label(std::string_view k) const { return entry("labels", k); }
    std::optional<std::string> annotation(std::string_view k) const { return entry("annotations", k); }
    void set_label(std::string_view k, std::string_view v) { sub(meta(), "labels")[k] = v; }
    void set_annotation(std::string_view k, std::string_view v) { sub(meta(), "annotations")[k] = v; }
    void remove_annotation(std::string_view k) {
        if (auto* a = meta().if_contains("annotations"); a && a->is_object()) a->get_object().erase(k);
    }

    /// metadata.ownerReferences, decoded.
    std::vector<owner_reference> owner_references() const {
        auto const* r = meta().if_contains("ownerReferences");
        if (!r) return {};
        auto refs = from_json<std::vector<owner_reference>>(*r, "metadata.ownerReferences");
        return refs ? std::move(*refs) : std::vector<owner_reference>{};
    }
    /// Adds an owner reference unless one with the same uid is there.
    void add_owner_reference(owner_reference const& ref) {
        auto& refs = list(meta(), "ownerReferences");
        for (auto const& r : refs)
            if (r.is_object() && str(r.get_object(), "uid") == ref.uid) return;
        refs.push_back(to_json(ref));
    }

    /// The pod spec of a Pod, or of the pod template of a workload or Job (a CronJob's job template
    /// too). Null when the document has neither.
    boost::json::object* pod_spec() {
        auto& o = object();
        std::string const k = kind();
        if (k == "Pod") return &sub(o, "spec");
        if (k == "CronJob") return &sub(sub(sub(sub(sub(o, "spec"), "jobTemplate"), "spec"), "template"), "spec");
        if (k == "Deployment" || k == "StatefulSet" || k == "DaemonSet" || k == "ReplicaSet" || k == "ReplicationController" || k == "Job")
            return &sub(sub(sub(o, "spec"), "template"), "spec");
        return nullptr;
    }
    /// The pod template's metadata (workloads, Jobs); null for other kinds.
    boost::json::object* pod_template_metadata() {
        std::string const k = kind();
        if (k == "Deployment" || k == "StatefulSet" || k == "DaemonSet" || k == "ReplicaSet" || k == "ReplicationController" || k == "Job")
            return &sub(sub(sub(object(), "spec"), "template"), "metadata");
        return nullptr;
    }

    /// Inserts or replaces, by `name`, an element of a list field of `spec` (containers,
    /// initContainers, volumes, env, …); returns true when something changed.
    static bool upsert_by_name(boost::json::object& parent, std::string_view field, boost::json::value element) {
        auto& l = list(parent, field);
        std::string const name = element.is_object() ? str(element.get_object(), "name") : std::string();
        for (auto& e : l)
            if (e.is_object() && str(e.get_object(), "name") == name) {
                if (e == element) return false;
                e = std::move(element);
                return true;
            }
        l.push_back(std::move(element));
        return true;
    }
    /// Removes the element named `name` from a list field; returns true when it was there.
    static bool remove_by_name(boost::json::object& parent, std::string_view field, std::string_view name) {
        auto* l = parent.if_contains(field);
        if (!l || !l->is_array()) return false;
        auto& a = l->get_array();
        for (auto it = a.begin(); it != a.end(); ++it)
            if (it->is_object() && str(it->get_object(), "name") == name) {
                a.erase(it);
                return true;
            }
        return false;
    }
    /// The element named `name` of a list field, if any.
    static boost::json::object const* find_by_name(boost::json::object const& parent, std::string_view field, std::string_view name) {
        auto const* l = parent.if_contains(field);
        if (!l || !l->is_array()) return nullptr;
        for (auto const& e : l->get_array())
            if (e.is_object() && str(e.get_object(), "name") == name) return &e.get_object();
        return nullptr;
    }

    /// spec.replicas (workloads), 1 when unset as the API server defaults it.
    std::int64_t replicas() const {
        auto const* s = object().if_contains("spec");
        auto const* r = s && s->is_object() ? s->get_object().if_contains("replicas") : nullptr;
        return r && r->is_int64() ? r->get_int64() : 1;
    }

    static std::string str(boost::json::object const& o, std::string_view k) {
        auto const* v = o.if_contains(k);
        return v && v->is_string() ? std::string(v->get_string()) : std::string();
    }

private:
    boost::json::object& meta() { return sub(object(), "metadata"); }
    boost::json::object const& meta() const {
        static boost::json::object const empty;
        auto const* m = object().if_contains("metadata");
        return m && m->is_object() ? m->get_object() : empty;
    }
    std::optional<std::string> entry(char const* map, std::string_view k) const {
        auto const* m = meta().if_contains(map);
        if (!m || !m->is_object()) return std::nullopt;
        auto const* v = m->get_object().if_contains(k);
        if (!v || !v->is_string()) return std::nullopt;
        return std::string(v->get_string());
    }
    static boost::json::object& sub(boost::json::object& o, std::string_view k) {
        auto& v = o[k];
        if (!v.is_object()) v = boost::json::object{};
        return v.get_object();
    }
    static boost::json::array& list(boost::json::object& o, std::string_view k) {
        auto& v = o[k];
        if (!v.is_array()) v = boost::json::array{};
        return v.get_array();
    }

    boost::json::value v_;
};

}  // namespace stash::kube
