// Typed resources: an object of a kind (apiVersion, kind, metadata, spec, status), and the kind's
// registration facts (group, version, plural, scope, printer columns) that CRDs and the API server use.
#pragma once

#include <stash/kube/meta.hpp>

#include <span>

namespace stash::kube {

/// A printer column of a CRD (`additionalPrinterColumns`).
struct printer_column {
    std::string_view name, type, json_path;  ///< type: string, integer, boolean, date
    std::int32_t priority = 0;
};

/// A kind without a status (Task, Function).
struct no_status {
    BOOST_HANA_DEFINE_STRUCT(no_status);
};

/** The requirements on a kind descriptor `K` (one per kind, in kube/api/):

    | expression         | type                           | meaning |
    |--------------------|--------------------------------|---------|
    | `K::group`         | `std::string_view`             | API group ("" for core) |
    | `K::version`       | `std::string_view`             | served and stored version |
    | `K::kind`          | `std::string_view`             | e.g. "BackupConfiguration" |
    | `K::plural`, `K::singular` | `std::string_view`     | resource names, lower case |
    | `K::short_names`, `K::categories` | range of `std::string_view` | for kubectl |
    | `K::namespaced`    | `bool`                         | scope |
    | `K::columns`       | range of `printer_column`      | kubectl get columns (Age is added) |
    | `K::spec_type`, `K::status_type` | Hana structs     | `no_status` for kinds without status |
*/
template <class K>
concept kind_descriptor = requires {
    { K::group } -> std::convertible_to<std::string_view>;
    { K::version } -> std::convertible_to<std::string_view>;
    { K::kind } -> std::convertible_to<std::string_view>;
    { K::plural } -> std::convertible_to<std::string_view>;
    { K::singular } -> std::convertible_to<std::string_view>;
    { K::namespaced } -> std::convertible_to<bool>;
    std::span<std::string_view const>(K::short_names);
    std::span<std::string_view const>(K::categories);
    std::span<printer_column const>(K::columns);
    typename K::spec_type;
    typename K::status_type;
};

/// `group/version`, or just `version` for the core group.
template <kind_descriptor K>
std::string api_version() {
    return K::group.empty() ? std::string(K::version) : std::string(K::group) + "/" + std::string(K::version);
}

/// An object of kind `K`. `status` is absent until a controller writes it.
template <kind_descriptor K>
struct resource {
    using descriptor = K;
    BOOST_HANA_DEFINE_STRUCT(resource,
        (std::string, apiVersion),
        (std::string, kind),
        (object_meta, metadata),
        (typename K::spec_type, spec),
        (std::optional<typename K::status_type>, status));

    /// A new object with apiVersion and kind filled in.
    static resource make(std::string name, std::string ns = {}) {
        resource r;
        r.apiVersion = api_version<K>();
        r.kind = std::string(K::kind);
        r.metadata.name = std::move(name);
        r.metadata.namespace_ = std::move(ns);
        return r;
    }
};

}  // namespace stash::kube
