// Reading a Stash object as the API server admits it: decode (types, required fields, enums,
// minimums, defaults — codec.hpp) and then the cross-field rules of Stash's webhooks
// (stash-api.md §1.1–1.5). Errors name the object and the field path.
#pragma once

#include <stash/kube/api/kinds.hpp>

#include <cctype>
#include <regex>
#include <set>

namespace stash::kube {

namespace detail {
inline error invalid(std::string const& path, std::string const& what) { return make_error(errc::invalid_argument, path + ": " + what); }

// "5-field cron", or one of the @-descriptors CronJob accepts.
inline bool valid_schedule(std::string const& s) {
    if (s.starts_with('@'))
        return s == "@yearly" || s == "@annually" || s == "@monthly" || s == "@weekly" || s == "@daily" || s == "@midnight" ||
               s == "@hourly" || s.starts_with("@every ");
    std::size_t fields = 0;
    bool in = false;
    for (char c : s) {
        bool const sp = c == ' ' || c == '\t';
        if (!sp && !in) ++fields;
        in = !sp;
        if (!sp && !(std::isalnum(static_cast<unsigned char>(c)) || c == '*' || c == '/' || c == ',' || c == '-' || c == '?'))
            return false;
    }
    return fields == 5;
}

// Go's time.ParseDuration syntax: "300ms", "1h30m", "2m".
inline bool valid_duration(std::string const& s) {
    static std::regex const re("[-+]?([0-9]*(\\.[0-9]*)?(ns|us|µs|ms|s|m|h))+|0");
    return std::regex_match(s, re);
}

inline result<void> check_backend(stash_v1alpha1::backend_spec const& b, std::optional<bool> wipe_out, std::string const& path) {
    int n = 0;
    std::string which;
    auto count = [&](bool set, char const* name) {
        if (set) ++n, which = name;
    };
    count(b.local.has_value(), "local"), count(b.s3.has_value(), "s3"), count(b.gcs.has_value(), "gcs");
    count(b.azure.has_value(), "azure"), count(b.swift.has_value(), "swift"), count(b.b2.has_value(), "b2");
    count(b.rest.has_value(), "rest");
    if (n != 1)
        return invalid(path, n == 0 ? "Required value: one of local, s3, gcs, azure, swift, b2, rest must be set"
                                    : "Invalid value: only one of local, s3, gcs, azure, swift, b2, rest may be set");
    if (b.local) {
        auto const& m = b.local->mountPath;
        if (m == "/stash" || m.starts_with("/stash/"))
            return invalid(path + ".local.mountPath", "Invalid value: \"" + m + "\": must not be /stash or below it (the agent uses it)");
        auto v = kube::to_json(*b.local);
        auto const volumes = v.as_object().size() - 1 - (b.local->subPath.empty() ? 0 : 1);
        if (volumes != 1) return invalid(path + ".local", "Invalid value: exactly one volume source (hostPath, nfs, persistentVolumeClaim, …) is required");
    }
    if (wipe_out.value_or(false) && (b.local || b.b2))
        return invalid(path.substr(0, path.rfind('.')) + ".wipeOut", "Forbidden: wipeOut is not supported for the " + which + " backend");
    return {};
}

inline result<void> check_rules(std::vector<stash_v1beta1::rule> const& rules, std::string const& path) {
    std::set<std::string> hosts;
    int catch_all = 0;
    for (std::size_t i = 0; i < rules.size(); ++i) {
        std::string const at = path + "[" + std::to_string(i) + "]";
        auto const& r = rules[i];
        if (!r.snapshots.empty() && !r.paths.empty()) return invalid(at, "Invalid value: snapshots and paths are mutually exclusive");
        if (r.targetHosts.empty() && ++catch_all > 1) return invalid(at + ".targetHosts", "Invalid value: at most one rule may leave targetHosts empty");
        for (auto const& h : r.targetHosts)
            if (!hosts.insert(h).second) return invalid(at + ".targetHosts", "Duplicate value: \"" + h + "\" is a target host of another rule");
    }
    return {};
}
}  // namespace detail

/// Cross-field rules of each kind (after decoding). The default admits everything.
template <class R>
result<void> validate(R const&) {
    return {};
}

inline result<void> validate(stash_v1alpha1::repository const& r) { return detail::check_backend(r.spec.backend, r.spec.wipeOut, "spec.backend"); }

inline result<void> validate(stash_v1beta1::backup_configuration const& b) {
    if (!b.spec.schedule.empty() && !detail::valid_schedule(b.spec.schedule))
        return detail::invalid("spec.schedule", "Invalid value: \"" + b.spec.schedule + "\": expected 5 cron fields or an @-descriptor");
    if (!b.spec.timeOut.empty() && !detail::valid_duration(b.spec.timeOut))
        return detail::invalid("spec.timeOut", "Invalid value: \"" + b.spec.timeOut + "\": expected a duration such as 30m or 1h30m");
    if (b.spec.driver == "Restic" && b.spec.target && b.spec.target->ref.kind != "PersistentVolumeClaim" &&
        b.spec.target->ref.kind != "AppBinding" && b.spec.target->paths.empty() && !b.spec.task)
        return detail::invalid("spec.target.paths", "Required value: a workload target needs the paths to back up");
    return {};
}

inline result<void> validate(stash_v1beta1::backup_batch const& b) {
    if (b.spec.members.empty()) return detail::invalid("spec.members", "Required value: a batch needs at least one member");
    if (!b.spec.schedule.empty() && !detail::valid_schedule(b.spec.schedule))
        return detail::invalid("spec.schedule", "Invalid value: \"" + b.spec.schedule + "\": expected 5 cron fields or an @-descriptor");
    return {};
}

inline result<void> validate(stash_v1beta1::restore_session const& r) {
    if (!r.spec.rules.empty() && r.spec.target && !r.spec.target->rules.empty())
        return detail::invalid("spec.rules", "Invalid value: set rules in spec.target.rules only (spec.rules is deprecated)");
    if (auto c = detail::check_rules(r.spec.rules, "spec.rules"); !c) return c;
    if (r.spec.target) return detail::check_rules(r.spec.target->rules, "spec.target.rules");
    return {};
}

inline result<void> validate(stash_v1beta1::restore_batch const& b) {
    if (b.spec.members.empty()) return detail::invalid("spec.members", "Required value: a batch needs at least one member");
    for (std::size_t i = 0; i < b.spec.members.size(); ++i)
        if (auto const& t = b.spec.members[i].target)
            if (auto c = detail::check_rules(t->rules, "spec.members[" + std::to_string(i) + "].target.rules"); !c) return c;
    return {};
}

inline result<void> validate(stash_v1beta1::backup_blueprint const& b) {
    return detail::check_backend(b.spec.backend, b.spec.wipeOut, "spec.backend");
}

/** Decodes and validates an object of kind `K`, as the API server admits it: apiVersion and kind must
    be `K`'s, metadata.name set (or generateName), defaults applied. Errors name the object:
    `BackupConfiguration demo/app: spec.target.ref.kind: Unsupported value: "Pod": supported values: …`. */
template <kind_descriptor K>
result<resource<K>> admit(boost::json::value const& doc) {
    auto const* o = doc.if_object();
    auto str = [&](char const* k) -> std::string {
        if (!o) return {};
        auto const* v = o->if_contains(k);
        return v && v->is_string() ? std::string(v->get_string()) : std::string();
    };
    std::string name = str("kind");
    if (auto const* m = o ? o->if_contains("metadata") : nullptr; m && m->is_object()) {
        auto field = [&](char const* k) {
            auto const* v = m->get_object().if_contains(k);
            return v && v->is_string() ? std::string(v->get_string()) : std::string();
        };
        std::string const ns = field("namespace"), n = field("name").empty() ? field("generateName") : field("name");
        name = std::string(K::kind) + " " + (ns.empty() ? n : ns + "/" + n);
    } else {
        name = std::string(K::kind);
    }
    auto fail = [&](error const& e) { return error{e.code, name + ": " + e.message}; };
    if (str("apiVersion") != api_version<K>() || str("kind") != K::kind)
        return fail(detail::invalid("apiVersion", "Invalid value: expected " + api_version<K>() + " " + std::string(K::kind)));
    auto r = from_json<resource<K>>(doc);
    if (!r) return fail(r.error());
    if (r->metadata.name.empty() && r->metadata.generateName.empty())
        return fail(detail::invalid("metadata.name", "Required value: name or generateName is required"));
    if (auto v = validate(*r); !v) return fail(v.error());
    return r;
}

}  // namespace stash::kube
