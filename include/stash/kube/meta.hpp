// Object metadata and the small shared types of the Kubernetes API (meta/v1, kmodules), as structs
// for the reflection codec (codec.hpp).
#pragma once

#include <stash/kube/codec.hpp>

#include <array>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace stash::kube {

using string_map = std::map<std::string, std::string>;

/// meta/v1 OwnerReference.
struct owner_reference {
    BOOST_HANA_DEFINE_STRUCT(owner_reference,
        (std::string, apiVersion),
        (std::string, kind),
        (std::string, name),
        (std::string, uid),
        (std::optional<bool>, controller),
        (std::optional<bool>, blockOwnerDeletion));
    static constexpr std::array field_rules{required("apiVersion"), required("kind"), required("name"), required("uid")};
};

/// meta/v1 ObjectMeta. Times are RFC 3339 strings as the server writes them; `managedFields` is
/// carried as is.
struct object_meta {
    BOOST_HANA_DEFINE_STRUCT(object_meta,
        (std::string, name),
        (std::string, generateName),
        (std::string, namespace_),
        (std::string, uid),
        (std::string, resourceVersion),
        (std::optional<std::int64_t>, generation),
        (std::string, creationTimestamp),
        (std::string, deletionTimestamp),
        (std::optional<std::int64_t>, deletionGracePeriodSeconds),
        (string_map, labels),
        (string_map, annotations),
        (std::vector<owner_reference>, ownerReferences),
        (std::vector<std::string>, finalizers),
        (boost::json::value, managedFields));
};

/// meta/v1 LabelSelectorRequirement and LabelSelector.
struct label_selector_requirement {
    BOOST_HANA_DEFINE_STRUCT(label_selector_requirement,
        (std::string, key),
        (std::string, operator_),  ///< In, NotIn, Exists, DoesNotExist
        (std::vector<std::string>, values));
    static constexpr std::array field_rules{required("key"),
                                      field_rule{.key = "operator", .required = true, .one_of = "In|NotIn|Exists|DoesNotExist"}};
};
struct label_selector {
    BOOST_HANA_DEFINE_STRUCT(label_selector,
        (string_map, matchLabels),
        (std::vector<label_selector_requirement>, matchExpressions));
};

/// kmodules Condition: upserted by `type`.
struct condition {
    BOOST_HANA_DEFINE_STRUCT(condition,
        (std::string, type),
        (std::string, status),  ///< True, False, Unknown
        (std::string, reason),
        (std::string, message),
        (std::string, lastTransitionTime),
        (std::optional<std::int64_t>, observedGeneration),
        (std::string, severity));
    static constexpr std::array field_rules{required("type"), field_rule{.key = "status", .required = true, .one_of = "True|False|Unknown"}};
};

/// kmodules TypedObjectReference.
struct typed_object_reference {
    BOOST_HANA_DEFINE_STRUCT(typed_object_reference,
        (std::string, apiGroup),
        (std::string, kind),
        (std::string, namespace_),
        (std::string, name));
};

/// core/v1 VolumeMount (the fields the operator reads and writes).
struct volume_mount {
    BOOST_HANA_DEFINE_STRUCT(volume_mount,
        (std::string, name),
        (std::string, mountPath),
        (std::string, subPath),
        (std::optional<bool>, readOnly),
        (std::string, mountPropagation),
        (std::string, subPathExpr));
    static constexpr std::array field_rules{required("name"), required("mountPath")};
};

}  // namespace stash::kube
