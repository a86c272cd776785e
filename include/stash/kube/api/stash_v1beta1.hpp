// stash.appscode.com/v1beta1: BackupConfiguration, BackupSession, RestoreSession, BackupBatch,
// RestoreBatch, BackupBlueprint, Task, Function and their shared types (stash-api.md §1.1, §1.3–1.10).
// Embedded core/v1 types the operator passes through untouched (resources, probes, affinity, volumes,
// PVC specs…) are kept as JSON values.
#pragma once

#include <stash/kube/api/stash_v1alpha1.hpp>

namespace stash::kube::stash_v1beta1 {

using stash_v1alpha1::retention_policy;
using json = boost::json::value;

/// The kinds a backup or restore target may be.
inline constexpr std::string_view target_kinds =
    "Deployment|StatefulSet|DaemonSet|ReplicaSet|ReplicationController|PersistentVolumeClaim|AppBinding|EmptyTarget";

struct target_ref {
    BOOST_HANA_DEFINE_STRUCT(target_ref, (std::string, apiVersion), (std::string, kind), (std::string, name), (std::string, namespace_));
    static constexpr std::array field_rules{field_rule{.key = "kind", .required = true, .one_of = target_kinds}, required("name")};
};

struct backup_target {
    BOOST_HANA_DEFINE_STRUCT(backup_target,
        (std::string, alias),
        (target_ref, ref),
        (std::vector<std::string>, paths),
        (std::vector<volume_mount>, volumeMounts),
        (std::optional<std::int32_t>, replicas),
        (std::string, snapshotClassName),
        (std::vector<std::string>, exclude),
        (std::vector<std::string>, args));
    static constexpr std::array field_rules{required("ref"), field_rule{.key = "replicas", .minimum = 0}};
};

/// A restore rule: which snapshots or paths of which source host go to which target hosts.
struct rule {
    BOOST_HANA_DEFINE_STRUCT(rule,
        (std::vector<std::string>, targetHosts),
        (std::string, sourceHost),
        (std::vector<std::string>, snapshots),
        (std::vector<std::string>, paths),
        (std::vector<std::string>, exclude),
        (std::vector<std::string>, include));
};

struct restore_target {
    BOOST_HANA_DEFINE_STRUCT(restore_target,
        (std::string, alias),
        (target_ref, ref),
        (std::vector<volume_mount>, volumeMounts),
        (std::optional<std::int32_t>, replicas),
        (std::vector<json>, volumeClaimTemplates),
        (std::vector<rule>, rules),
        (std::vector<std::string>, args));
};

struct param {
    BOOST_HANA_DEFINE_STRUCT(param, (std::string, name), (std::string, value));
    static constexpr std::array field_rules{required("name")};
};
struct task_ref {
    BOOST_HANA_DEFINE_STRUCT(task_ref, (std::string, name), (std::vector<param>, params));
};

/// A hook action (kmodules prober Handler): exec, httpGet, httpPost or tcpSocket.
struct handler {
    BOOST_HANA_DEFINE_STRUCT(handler,
        (json, exec), (json, httpGet), (json, httpPost), (json, tcpSocket), (std::string, containerName));
};
struct post_backup_hook {
    BOOST_HANA_DEFINE_STRUCT(post_backup_hook,
        (json, exec), (json, httpGet), (json, httpPost), (json, tcpSocket), (std::string, containerName),
        (std::string, executionPolicy));
    static constexpr std::array field_rules{
        field_rule{.key = "executionPolicy", .default_json = "\"Always\"", .one_of = "Always|OnFailure|OnSuccess|OnFinalRetryFailure"}};
};
struct post_restore_hook {
    BOOST_HANA_DEFINE_STRUCT(post_restore_hook,
        (json, exec), (json, httpGet), (json, httpPost), (json, tcpSocket), (std::string, containerName),
        (std::string, executionPolicy));
    static constexpr std::array field_rules{
        field_rule{.key = "executionPolicy", .default_json = "\"Always\"", .one_of = "Always|OnFailure|OnSuccess"}};
};
struct backup_hooks {
    BOOST_HANA_DEFINE_STRUCT(backup_hooks, (std::optional<handler>, preBackup), (std::optional<post_backup_hook>, postBackup));
};
struct restore_hooks {
    BOOST_HANA_DEFINE_STRUCT(restore_hooks, (std::optional<handler>, preRestore), (std::optional<post_restore_hook>, postRestore));
};

struct runtime_settings {
    BOOST_HANA_DEFINE_STRUCT(runtime_settings, (json, container), (json, pod));
};
struct empty_dir_settings {
    BOOST_HANA_DEFINE_STRUCT(empty_dir_settings, (std::string, medium), (json, sizeLimit), (std::optional<bool>, disableCaching));
};
struct retry_config {
    BOOST_HANA_DEFINE_STRUCT(retry_config, (std::optional<std::int32_t>, maxRetry), (std::string, delay));
    static constexpr std::array field_rules{field_rule{.key = "maxRetry", .default_json = "1", .minimum = 0}};
};
struct object_ref {
    BOOST_HANA_DEFINE_STRUCT(object_ref, (std::string, name), (std::string, namespace_));
    static constexpr std::array field_rules{required("name")};
};

inline constexpr std::string_view drivers = "Restic|VolumeSnapshotter";

/// What a backup of one target needs (BackupConfiguration spec, batch member).
struct backup_configuration_template_spec {
    BOOST_HANA_DEFINE_STRUCT(backup_configuration_template_spec,
        (std::optional<task_ref>, task),
        (std::optional<backup_target>, target),
        (std::optional<runtime_settings>, runtimeSettings),
        (std::optional<empty_dir_settings>, tempDir),
        (json, interimVolumeTemplate),
        (std::optional<backup_hooks>, hooks));
};

struct backup_configuration_spec {
    BOOST_HANA_DEFINE_STRUCT(backup_configuration_spec,
        (std::optional<task_ref>, task),
        (std::optional<backup_target>, target),
        (std::optional<runtime_settings>, runtimeSettings),
        (std::optional<empty_dir_settings>, tempDir),
        (json, interimVolumeTemplate),
        (std::optional<backup_hooks>, hooks),
        (std::string, schedule),
        (std::string, driver),
        (object_ref, repository),
        (std::optional<retention_policy>, retentionPolicy),
        (std::optional<bool>, paused),
        (std::optional<std::int32_t>, backupHistoryLimit),
        (std::string, timeOut),
        (std::optional<retry_config>, retryConfig));
    static constexpr std::array field_rules{
        field_rule{.key = "schedule", .description = "cron schedule (5 fields), evaluated by a CronJob"},
        field_rule{.key = "driver", .default_json = "\"Restic\"", .one_of = drivers},
        required("repository"),
        required("retentionPolicy"),
        field_rule{.key = "backupHistoryLimit", .default_json = "1", .minimum = 0}};
};

struct backup_configuration_status {
    BOOST_HANA_DEFINE_STRUCT(backup_configuration_status,
        (std::optional<std::int64_t>, observedGeneration), (std::vector<condition>, conditions), (std::string, phase));
};

// --- sessions ------------------------------------------------------------------------------------

struct backup_invoker_ref {
    BOOST_HANA_DEFINE_STRUCT(backup_invoker_ref, (std::string, apiGroup), (std::string, kind), (std::string, name));
    static constexpr std::array field_rules{field_rule{.key = "kind", .required = true, .one_of = "BackupConfiguration|BackupBatch"},
                                      required("name")};
};
struct backup_session_spec {
    BOOST_HANA_DEFINE_STRUCT(backup_session_spec, (std::optional<backup_invoker_ref>, invoker), (std::optional<std::int32_t>, retryLeft));
    static constexpr std::array field_rules{field_rule{.key = "retryLeft", .minimum = 0}};
};

struct file_stats {
    BOOST_HANA_DEFINE_STRUCT(file_stats,
        (std::optional<std::int64_t>, totalFiles), (std::optional<std::int64_t>, newFiles),
        (std::optional<std::int64_t>, modifiedFiles), (std::optional<std::int64_t>, unmodifiedFiles));
};
struct snapshot_stats {
    BOOST_HANA_DEFINE_STRUCT(snapshot_stats,
        (std::string, name), (std::string, path), (std::string, totalSize), (std::string, uploaded),
        (std::string, processingTime), (std::optional<file_stats>, fileStats));
};
struct host_backup_stats {
    BOOST_HANA_DEFINE_STRUCT(host_backup_stats,
        (std::string, hostname), (std::string, phase), (std::string, duration), (std::string, error),
        (std::vector<snapshot_stats>, snapshots));
};
struct backup_target_status {
    BOOST_HANA_DEFINE_STRUCT(backup_target_status,
        (target_ref, ref), (std::optional<std::int32_t>, totalHosts), (std::string, phase),
        (std::vector<host_backup_stats>, stats), (std::vector<std::string>, preBackupActions),
        (std::vector<std::string>, postBackupActions), (std::vector<condition>, conditions));
};
struct backup_session_status {
    BOOST_HANA_DEFINE_STRUCT(backup_session_status,
        (std::string, phase), (std::string, sessionDuration), (std::vector<backup_target_status>, targets),
        (std::vector<condition>, conditions), (std::string, sessionDeadline), (std::optional<bool>, retried),
        (std::string, nextRetry));
};

struct restore_session_spec {
    BOOST_HANA_DEFINE_STRUCT(restore_session_spec,
        (std::optional<task_ref>, task),
        (std::optional<restore_target>, target),
        (std::optional<runtime_settings>, runtimeSettings),
        (std::optional<empty_dir_settings>, tempDir),
        (json, interimVolumeTemplate),
        (std::optional<restore_hooks>, hooks),
        (std::string, driver),
        (object_ref, repository),
        (std::vector<rule>, rules),
        (std::string, timeOut));
};

struct host_restore_stats {
    BOOST_HANA_DEFINE_STRUCT(host_restore_stats,
        (std::string, hostname), (std::string, phase), (std::string, duration), (std::string, error));
};
struct restore_session_status {
    BOOST_HANA_DEFINE_STRUCT(restore_session_status,
        (std::string, phase), (std::optional<std::int32_t>, totalHosts), (std::string, sessionDuration),
        (std::vector<host_restore_stats>, stats), (std::vector<condition>, conditions), (std::string, sessionDeadline));
};

// --- batches -------------------------------------------------------------------------------------

inline constexpr std::string_view execution_orders = "Parallel|Sequential";

struct backup_batch_spec {
    BOOST_HANA_DEFINE_STRUCT(backup_batch_spec,
        (std::vector<backup_configuration_template_spec>, members),
        (std::string, schedule),
        (std::optional<runtime_settings>, runtimeSettings),
        (std::string, driver),
        (object_ref, repository),
        (std::optional<retention_policy>, retentionPolicy),
        (std::optional<bool>, paused),
        (std::optional<std::int32_t>, backupHistoryLimit),
        (std::optional<backup_hooks>, hooks),
        (std::string, executionOrder),
        (std::string, timeOut),
        (std::optional<retry_config>, retryConfig));
    static constexpr std::array field_rules{
        field_rule{.key = "driver", .default_json = "\"Restic\"", .one_of = drivers},
        required("repository"),
        required("retentionPolicy"),
        field_rule{.key = "backupHistoryLimit", .default_json = "1", .minimum = 0},
        field_rule{.key = "executionOrder", .default_json = "\"Parallel\"", .one_of = execution_orders}};
};
struct member_conditions {
    BOOST_HANA_DEFINE_STRUCT(member_conditions, (target_ref, target), (std::vector<condition>, conditions));
};
struct backup_batch_status {
    BOOST_HANA_DEFINE_STRUCT(backup_batch_status,
        (std::optional<std::int64_t>, observedGeneration), (std::vector<condition>, conditions),
        (std::vector<member_conditions>, memberConditions), (std::string, phase));
};

/// A RestoreBatch member (RestoreTargetSpec).
struct restore_target_spec {
    BOOST_HANA_DEFINE_STRUCT(restore_target_spec,
        (std::optional<task_ref>, task),
        (std::optional<restore_target>, target),
        (std::optional<runtime_settings>, runtimeSettings),
        (std::optional<empty_dir_settings>, tempDir),
        (json, interimVolumeTemplate),
        (std::optional<restore_hooks>, hooks));
};
struct restore_batch_spec {
    BOOST_HANA_DEFINE_STRUCT(restore_batch_spec,
        (std::string, driver),
        (object_ref, repository),
        (std::vector<restore_target_spec>, members),
        (std::string, executionOrder),
        (std::optional<restore_hooks>, hooks),
        (std::string, timeOut));
    static constexpr std::array field_rules{
        field_rule{.key = "driver", .default_json = "\"Restic\"", .one_of = drivers},
        required("repository"),
        field_rule{.key = "executionOrder", .default_json = "\"Parallel\"", .one_of = execution_orders}};
};
struct restore_member_status {
    BOOST_HANA_DEFINE_STRUCT(restore_member_status,
        (target_ref, ref), (std::vector<condition>, conditions), (std::optional<std::int32_t>, totalHosts),
        (std::string, phase), (std::vector<host_restore_stats>, stats));
};
struct restore_batch_status {
    BOOST_HANA_DEFINE_STRUCT(restore_batch_status,
        (std::string, phase), (std::string, sessionDuration), (std::vector<condition>, conditions),
        (std::vector<restore_member_status>, members), (std::string, sessionDeadline));
};

// --- blueprint, task, function -------------------------------------------------------------------

struct backup_blueprint_spec {
    BOOST_HANA_DEFINE_STRUCT(backup_blueprint_spec,
        (stash_v1alpha1::backend_spec, backend),
        (std::optional<bool>, wipeOut),
        (std::optional<stash_v1alpha1::usage_policy>, usagePolicy),
        (std::string, backupNamespace),
        (std::string, repoNamespace),
        (std::string, schedule),
        (std::optional<task_ref>, task),
        (std::optional<retention_policy>, retentionPolicy),
        (std::optional<runtime_settings>, runtimeSettings),
        (std::optional<empty_dir_settings>, tempDir),
        (json, interimVolumeTemplate),
        (std::optional<backup_hooks>, hooks),
        (std::optional<std::int32_t>, backupHistoryLimit),
        (std::string, timeOut),
        (std::optional<retry_config>, retryConfig));
    static constexpr std::array field_rules{required("backend"), required("retentionPolicy"),
                                      field_rule{.key = "backupHistoryLimit", .default_json = "1", .minimum = 0}};
};

struct function_ref {
    BOOST_HANA_DEFINE_STRUCT(function_ref, (std::string, name), (std::vector<param>, params));
    static constexpr std::array field_rules{required("name")};
};
struct task_spec {
    BOOST_HANA_DEFINE_STRUCT(task_spec, (std::vector<function_ref>, steps), (std::vector<json>, volumes));
};
struct function_spec {
    BOOST_HANA_DEFINE_STRUCT(function_spec,
        (std::string, image), (std::vector<std::string>, command), (std::vector<std::string>, args),
        (std::string, workingDir), (std::vector<json>, ports), (std::vector<volume_mount>, volumeMounts),
        (std::vector<json>, volumeDevices), (json, runtimeSettings), (std::string, podSecurityPolicyName));
    static constexpr std::array field_rules{required("image")};
};

// --- kind descriptors ----------------------------------------------------------------------------

inline constexpr std::string_view group = "stash.appscode.com";

#define STASH_V1BETA1_KIND(Name, Kind, Plural, Singular, Spec, Status, Namespaced, ...) \
    struct Name##_kind {                                                                  \
        static constexpr std::string_view group = stash_v1beta1::group, version = "v1beta1", kind = Kind, \
                                          plural = Plural, singular = Singular;            \
        static constexpr bool namespaced = Namespaced;                                     \
        using spec_type = Spec;                                                            \
        using status_type = Status;                                                        \
        __VA_ARGS__                                                                        \
    };                                                                                     \
    using Name = resource<Name##_kind>

using all_categories = std::array<std::string_view, 3>;
using stash_categories = std::array<std::string_view, 2>;

STASH_V1BETA1_KIND(backup_configuration, "BackupConfiguration", "backupconfigurations", "backupconfiguration",
                   backup_configuration_spec, backup_configuration_status, true,
                   static constexpr std::array<std::string_view, 1> short_names{"bc"};
                   static constexpr all_categories categories{"stash", "appscode", "all"};
                   static constexpr std::array columns{printer_column{"Task", "string", ".spec.task.name"},
                                                       printer_column{"Schedule", "string", ".spec.schedule"},
                                                       printer_column{"Paused", "boolean", ".spec.paused"},
                                                       printer_column{"Phase", "string", ".status.phase"}};);
STASH_V1BETA1_KIND(backup_session, "BackupSession", "backupsessions", "backupsession", backup_session_spec,
                   backup_session_status, true,
                   static constexpr std::array<std::string_view, 0> short_names{};
                   static constexpr all_categories categories{"stash", "appscode", "all"};
                   static constexpr std::array columns{printer_column{"Invoker-Type", "string", ".spec.invoker.kind"},
                                                       printer_column{"Invoker-Name", "string", ".spec.invoker.name"},
                                                       printer_column{"Phase", "string", ".status.phase"},
                                                       printer_column{"Duration", "string", ".status.sessionDuration"}};);
STASH_V1BETA1_KIND(restore_session, "RestoreSession", "restoresessions", "restoresession", restore_session_spec,
                   restore_session_status, true,
                   static constexpr std::array<std::string_view, 1> short_names{"restore"};
                   static constexpr all_categories categories{"stash", "appscode", "all"};
                   static constexpr std::array columns{printer_column{"Repository", "string", ".spec.repository.name"},
                                                       printer_column{"Phase", "string", ".status.phase"},
                                                       printer_column{"Duration", "string", ".status.sessionDuration"}};);
STASH_V1BETA1_KIND(backup_batch, "BackupBatch", "backupbatches", "backupbatch", backup_batch_spec, backup_batch_status, true,
                   static constexpr std::array<std::string_view, 0> short_names{};
                   static constexpr all_categories categories{"stash", "appscode", "all"};
                   static constexpr std::array columns{printer_column{"Schedule", "string", ".spec.schedule"},
                                                       printer_column{"Paused", "boolean", ".spec.paused"},
                                                       printer_column{"Phase", "string", ".status.phase"}};);
STASH_V1BETA1_KIND(restore_batch, "RestoreBatch", "restorebatches", "restorebatch", restore_batch_spec, restore_batch_status, true,
                   static constexpr std::array<std::string_view, 0> short_names{};
                   static constexpr all_categories categories{"stash", "appscode", "all"};
                   static constexpr std::array columns{printer_column{"Repository", "string", ".spec.repository.name"},
                                                       printer_column{"Phase", "string", ".status.phase"},
                                                       printer_column{"Duration", "string", ".status.sessionDuration"}};);
STASH_V1BETA1_KIND(backup_blueprint, "BackupBlueprint", "backupblueprints", "backupblueprint", backup_blueprint_spec,
                   no_status, false,
                   static constexpr std::array<std::string_view, 1> short_names{"bb"};
                   static constexpr stash_categories categories{"stash", "appscode"};
                   static constexpr std::array columns{printer_column{"Task", "string", ".spec.task.name"},
                                                       printer_column{"Schedule", "string", ".spec.schedule"}};);
STASH_V1BETA1_KIND(task, "Task", "tasks", "task", task_spec, no_status, false,
                   static constexpr std::array<std::string_view, 1> short_names{"task"};
                   static constexpr stash_categories categories{"stash", "appscode"};
                   static constexpr std::array<printer_column, 0> columns{};);
STASH_V1BETA1_KIND(function, "Function", "functions", "function", function_spec, no_status, false,
                   static constexpr std::array<std::string_view, 1> short_names{"fn"};
                   static constexpr stash_categories categories{"stash", "appscode"};
                   static constexpr std::array<printer_column, 0> columns{};);

#undef STASH_V1BETA1_KIND

}  // namespace stash::kube::stash_v1beta1
