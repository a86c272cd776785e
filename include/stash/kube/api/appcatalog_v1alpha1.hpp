// appcatalog.appscode.com/v1alpha1 AppBinding: how to reach a database, and which Stash Tasks back it
// up (stash-api.md §1.11).
#pragma once

#include <stash/kube/resource.hpp>

namespace stash::kube::appcatalog_v1alpha1 {

struct service_reference {
    BOOST_HANA_DEFINE_STRUCT(service_reference,
        (std::string, scheme), (std::string, namespace_), (std::string, name), (std::optional<std::int32_t>, port),
        (std::string, path), (std::string, query));
    static constexpr std::array field_rules{required("name")};
};

struct client_config {
    BOOST_HANA_DEFINE_STRUCT(client_config,
        (std::optional<std::string>, url),
        (std::optional<service_reference>, service),
        (std::optional<bool>, insecureSkipTLSVerify),
        (std::string, caBundle),  ///< base64, as []byte marshals in JSON
        (std::string, serverName));
};

/// The Secret with the database's credentials (older objects carry only `name`).
struct secret_reference {
    BOOST_HANA_DEFINE_STRUCT(secret_reference, (std::string, apiGroup), (std::string, kind), (std::string, name));
    static constexpr std::array field_rules{required("name")};
};

struct app_binding_spec {
    BOOST_HANA_DEFINE_STRUCT(app_binding_spec,
        (std::string, type),  ///< e.g. kubedb.com/postgres
        (std::optional<typed_object_reference>, appRef),
        (std::string, version),
        (client_config, clientConfig),
        (std::optional<secret_reference>, secret),
        (std::vector<boost::json::value>, secretTransforms),
        (boost::json::value, parameters),  ///< may hold a StashAddon object (backupTask, restoreTask)
        (boost::json::value, tlsSecret));
    static constexpr std::array field_rules{required("clientConfig")};
};

struct app_binding_kind {
    static constexpr std::string_view group = "appcatalog.appscode.com", version = "v1alpha1", kind = "AppBinding",
                                      plural = "appbindings", singular = "appbinding";
    static constexpr std::array<std::string_view, 0> short_names{};
    static constexpr std::array<std::string_view, 1> categories{"appscode"};
    static constexpr bool namespaced = true;
    static constexpr std::array columns{printer_column{"Type", "string", ".spec.type"},
                                        printer_column{"Version", "string", ".spec.version"}};
    using spec_type = app_binding_spec;
    using status_type = no_status;
};
using app_binding = resource<app_binding_kind>;

}  // namespace stash::kube::appcatalog_v1alpha1
