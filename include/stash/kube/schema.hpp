// OpenAPI v3 schemas and CustomResourceDefinitions generated from the typed resources, so the CRD
// manifests, the API server's validation and the operator's codec all read one declaration.
#pragma once

#include <stash/kube/resource.hpp>

#include <boost/json/parse.hpp>

namespace stash::kube {

template <class T>
struct schema_of;

/// The structural OpenAPI v3 schema of `T` (apiextensions.k8s.io/v1 rules: every node typed, free-form
/// JSON marked `x-kubernetes-preserve-unknown-fields`).
template <class T>
boost::json::object schema() {
    return schema_of<T>::get();
}

template <>
struct schema_of<bool> {
    static boost::json::object get() { return {{"type", "boolean"}}; }
};
template <class I>
    requires(std::is_integral_v<I> && !std::is_same_v<I, bool>)
struct schema_of<I> {
    static boost::json::object get() { return {{"type", "integer"}, {"format", sizeof(I) <= 4 ? "int32" : "int64"}}; }
};
template <>
struct schema_of<double> {
    static boost::json::object get() { return {{"type", "number"}}; }
};
template <>
struct schema_of<std::string> {
    static boost::json::object get() { return {{"type", "string"}}; }
};
template <>
struct schema_of<boost::json::value> {
    static boost::json::object get() { return {{"x-kubernetes-preserve-unknown-fields", true}}; }
};
template <class T>
struct schema_of<std::optional<T>> {
    static boost::json::object get() { return schema<T>(); }
};
template <class T>
struct schema_of<std::vector<T>> {
    static boost::json::object get() { return {{"type", "array"}, {"items", schema<T>()}}; }
};
template <class T>
struct schema_of<std::map<std::string, T>> {
    static boost::json::object get() { return {{"type", "object"}, {"additionalProperties", schema<T>()}}; }
};
/// Object metadata is validated by the server itself; CRDs only say it is an object.
template <>
struct schema_of<object_meta> {
    static boost::json::object get() { return {{"type", "object"}}; }
};

template <class S>
    requires boost::hana::Struct<S>::value
struct schema_of<S> {
    static boost::json::object get() {
        boost::json::object props;
        boost::json::array required;
        boost::hana::for_each(boost::hana::accessors<S>(), [&](auto pair) {
            using M = std::decay_t<decltype(boost::hana::second(pair)(std::declval<S const&>()))>;
            auto const key = json_key(boost::hana::to<char const*>(boost::hana::first(pair)));
            boost::json::object p = schema<M>();
            if constexpr (requires { S::field_rules; }) {
                if (auto const* r = rule_for<S>(key)) {
                    if (r->required) required.emplace_back(key);
                    if (!r->default_json.empty()) p["default"] = boost::json::parse(r->default_json);
                    if (!r->one_of.empty()) {
                        boost::json::array e;
                        for (std::string_view rest = r->one_of;;) {
                            auto const bar = rest.find('|');
                            e.emplace_back(rest.substr(0, bar));
                            if (bar == std::string_view::npos) break;
                            rest.remove_prefix(bar + 1);
                        }
                        p["enum"] = std::move(e);
                    }
                    if (r->minimum != std::numeric_limits<std::int64_t>::min()) p["minimum"] = r->minimum;
                    if (!r->description.empty()) p["description"] = r->description;
                }
            }
            props[key] = std::move(p);
        });
        boost::json::object o{{"type", "object"}};
        if (!props.empty()) o["properties"] = std::move(props);
        if (!required.empty()) o["required"] = std::move(required);
        return o;
    }
};

/** The apiextensions.k8s.io/v1 CustomResourceDefinition of kind `K`: names, scope, one served and
    stored version with its structural schema, the status subresource, and printer columns (plus Age,
    as kubectl shows for every kind). */
template <kind_descriptor K>
boost::json::value crd() {
    using R = resource<K>;
    boost::json::object root = schema<R>();
    // apiVersion and kind are checked by the server; keep the schema the shape kubectl expects.
    boost::json::array short_names, categories, columns;
    for (auto s : K::short_names) short_names.emplace_back(s);
    for (auto c : K::categories) categories.emplace_back(c);
    for (auto const& c : K::columns) {
        boost::json::object col{{"name", c.name}, {"type", c.type}, {"jsonPath", c.json_path}};
        if (c.priority) col["priority"] = c.priority;
        columns.push_back(std::move(col));
    }
    columns.push_back(boost::json::object{{"name", "Age"}, {"type", "date"}, {"jsonPath", ".metadata.creationTimestamp"}});
    boost::json::object names{{"kind", K::kind}, {"listKind", std::string(K::kind) + "List"}, {"plural", K::plural},
                              {"singular", K::singular}};
    if (!short_names.empty()) names["shortNames"] = std::move(short_names);
    if (!categories.empty()) names["categories"] = std::move(categories);
    boost::json::object version{{"name", K::version},
                                {"served", true},
                                {"storage", true},
                                {"schema", boost::json::object{{"openAPIV3Schema", std::move(root)}}},
                                {"subresources", boost::json::object{{"status", boost::json::object{}}}},
                                {"additionalPrinterColumns", std::move(columns)}};
    return boost::json::object{
        {"apiVersion", "apiextensions.k8s.io/v1"},
        {"kind", "CustomResourceDefinition"},
        {"metadata", boost::json::object{{"name", std::string(K::plural) + "." + std::string(K::group)},
                                         {"labels", boost::json::object{{"app.kubernetes.io/name", "stash"}}}}},
        {"spec", boost::json::object{{"group", K::group},
                                     {"names", std::move(names)},
                                     {"scope", K::namespaced ? "Namespaced" : "Cluster"},
                                     {"versions", boost::json::array{std::move(version)}}}}};
}

}  // namespace stash::kube
