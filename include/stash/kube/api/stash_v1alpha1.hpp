// stash.appscode.com/v1alpha1: Repository, its Backend, and RetentionPolicy (stash-api.md §1.1–1.2).
#pragma once

#include <stash/kube/resource.hpp>

namespace stash::kube::stash_v1alpha1 {

/// `local` backend: an inline core/v1 VolumeSource (one of its keys) plus where to mount it.
struct local_spec {
    BOOST_HANA_DEFINE_STRUCT(local_spec,
        (boost::json::value, hostPath), (boost::json::value, emptyDir), (boost::json::value, nfs),
        (boost::json::value, persistentVolumeClaim), (boost::json::value, gcePersistentDisk),
        (boost::json::value, awsElasticBlockStore), (boost::json::value, secret), (boost::json::value, iscsi),
        (boost::json::value, glusterfs), (boost::json::value, rbd), (boost::json::value, flexVolume),
        (boost::json::value, cinder), (boost::json::value, cephfs), (boost::json::value, flocker),
        (boost::json::value, downwardAPI), (boost::json::value, fc), (boost::json::value, azureFile),
        (boost::json::value, configMap), (boost::json::value, vsphereVolume), (boost::json::value, quobyte),
        (boost::json::value, azureDisk), (boost::json::value, photonPersistentDisk), (boost::json::value, projected),
        (boost::json::value, portworxVolume), (boost::json::value, scaleIO), (boost::json::value, storageos),
        (boost::json::value, csi), (boost::json::value, ephemeral),
        (std::string, mountPath),
        (std::string, subPath));
    static constexpr std::array field_rules{
        field_rule{.key = "mountPath", .required = true, .description = "where the volume is mounted; not /stash or below it"}};
};

struct s3_spec {
    BOOST_HANA_DEFINE_STRUCT(s3_spec,
        (std::string, endpoint), (std::string, bucket), (std::string, prefix), (std::string, region),
        (std::optional<bool>, insecureTLS));
    static constexpr std::array field_rules{required("endpoint"), required("bucket")};
};
struct gcs_spec {
    BOOST_HANA_DEFINE_STRUCT(gcs_spec, (std::string, bucket), (std::string, prefix), (std::optional<std::int64_t>, maxConnections));
    static constexpr std::array field_rules{required("bucket")};
};
struct azure_spec {
    BOOST_HANA_DEFINE_STRUCT(azure_spec, (std::string, container), (std::string, prefix), (std::optional<std::int64_t>, maxConnections));
    static constexpr std::array field_rules{required("container")};
};
struct swift_spec {
    BOOST_HANA_DEFINE_STRUCT(swift_spec, (std::string, container), (std::string, prefix));
    static constexpr std::array field_rules{required("container")};
};
struct b2_spec {
    BOOST_HANA_DEFINE_STRUCT(b2_spec, (std::string, bucket), (std::string, prefix), (std::optional<std::int64_t>, maxConnections));
    static constexpr std::array field_rules{required("bucket")};
};
struct rest_spec {
    BOOST_HANA_DEFINE_STRUCT(rest_spec, (std::string, url));
    static constexpr std::array field_rules{field_rule{.key = "url", .required = true, .description = "e.g. http://host:8000/path"}};
};

/// Where a repository lives: exactly one of the provider sections.
struct backend_spec {
    BOOST_HANA_DEFINE_STRUCT(backend_spec,
        (std::string, storageSecretName),
        (std::optional<local_spec>, local),
        (std::optional<s3_spec>, s3),
        (std::optional<gcs_spec>, gcs),
        (std::optional<azure_spec>, azure),
        (std::optional<swift_spec>, swift),
        (std::optional<b2_spec>, b2),
        (std::optional<rest_spec>, rest));
};

struct allowed_namespaces {
    BOOST_HANA_DEFINE_STRUCT(allowed_namespaces, (std::string, from), (std::optional<label_selector>, selector));
    static constexpr std::array field_rules{field_rule{.key = "from", .default_json = "\"Same\"", .one_of = "All|Selector|Same"}};
};
struct usage_policy {
    BOOST_HANA_DEFINE_STRUCT(usage_policy, (std::optional<allowed_namespaces>, allowedNamespaces));
};

struct repository_spec {
    BOOST_HANA_DEFINE_STRUCT(repository_spec,
        (backend_spec, backend),
        (std::optional<bool>, wipeOut),
        (std::optional<usage_policy>, usagePolicy));
    static constexpr std::array field_rules{required("backend")};
};

struct repository_status {
    BOOST_HANA_DEFINE_STRUCT(repository_status,
        (std::optional<std::int64_t>, observedGeneration),
        (std::string, firstBackupTime),
        (std::string, lastBackupTime),
        (std::optional<bool>, integrity),
        (std::string, totalSize),
        (std::optional<std::int64_t>, snapshotCount),
        (std::optional<std::int64_t>, snapshotsRemovedOnLastCleanup),
        (std::vector<typed_object_reference>, references));
};

/// Which snapshots to keep after a backup (restic's forget flags); `prune` is always written.
struct retention_policy {
    BOOST_HANA_DEFINE_STRUCT(retention_policy,
        (std::string, name),
        (std::optional<std::int64_t>, keepLast),
        (std::optional<std::int64_t>, keepHourly),
        (std::optional<std::int64_t>, keepDaily),
        (std::optional<std::int64_t>, keepWeekly),
        (std::optional<std::int64_t>, keepMonthly),
        (std::optional<std::int64_t>, keepYearly),
        (std::vector<std::string>, keepTags),
        (bool, prune),
        (std::optional<bool>, dryRun));
    static constexpr std::array field_rules{
        required("name"),
        field_rule{.key = "keepLast", .minimum = 0}, field_rule{.key = "keepHourly", .minimum = 0},
        field_rule{.key = "keepDaily", .minimum = 0}, field_rule{.key = "keepWeekly", .minimum = 0},
        field_rule{.key = "keepMonthly", .minimum = 0}, field_rule{.key = "keepYearly", .minimum = 0},
        field_rule{.key = "prune", .required = true, .description = "prune unused data after forgetting snapshots"}};
};

struct repository_kind {
    static constexpr std::string_view group = "stash.appscode.com", version = "v1alpha1", kind = "Repository",
                                      plural = "repositories", singular = "repository";
    static constexpr std::array<std::string_view, 1> short_names{"repo"};
    static constexpr std::array<std::string_view, 2> categories{"stash", "appscode"};
    static constexpr bool namespaced = true;
    static constexpr std::array columns{
        printer_column{"Integrity", "boolean", ".status.integrity"},
        printer_column{"Size", "string", ".status.totalSize"},
        printer_column{"Snapshot-Count", "integer", ".status.snapshotCount"},
        printer_column{"Last-Successful-Backup", "date", ".status.lastBackupTime"}};
    using spec_type = repository_spec;
    using status_type = repository_status;
};
using repository = resource<repository_kind>;

}  // namespace stash::kube::stash_v1alpha1
