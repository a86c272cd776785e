// The embedded API server's object store: objects by resource, namespace and name, one increasing
// resourceVersion, the metadata the real server manages, watch history, finalizers, owner-reference
// garbage collection, and persistence (a write-ahead log fsynced before a write is acknowledged, and
// a snapshot that compacts it).
#pragma once

#include <stash/core/hex.hpp>
#include <stash/core/time.hpp>
#include <stash/crypto/random.hpp>
#include <stash/embedded/registry.hpp>
#include <stash/embedded/selector.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <sstream>

namespace stash::embedded {

/// One change, as a watch delivers it. `object` carries the resourceVersion of the change.
struct watch_event {
    std::uint64_t rv = 0;
    std::string type;  ///< ADDED, MODIFIED, DELETED
    std::string key;   ///< "group/plural/namespace/name"
    json::value object;
};

/// How a delete treats the object's dependents (owner references pointing at it).
enum class propagation { background, foreground, orphan };

struct list_options {
    std::string namespace_;  ///< empty: all namespaces (or cluster-scoped)
    selector labels, fields;
    std::uint64_t limit = 0;    ///< 0: all
    std::string continue_;      ///< token from a previous page
};

struct list_result {
    json::array items;
    std::uint64_t rv = 0;
    std::string continue_;  ///< empty on the last page
    std::uint64_t remaining = 0;
};

/** Errors use `stash::errc`: `not_found` (404), `already_exists` (409 AlreadyExists), `conflict`
    (409 Conflict), `invalid_argument` (422 Invalid), `gone` (410), `io` (500). Thread-safe: every
    call holds one mutex; watch callbacks run under it and must not call back into the store. */
class store {
public:
    /// How many past events a watch can resume from before it gets 410 Gone.
    static constexpr std::size_t history_limit = 200000;
    /// The log is compacted into the snapshot when it grows beyond this many bytes.
    static constexpr std::uint64_t wal_limit = 64u << 20;

    /// `sync_writes` false skips the fdatasync per write: faster, but a machine crash may lose
    /// acknowledged writes (a process crash still loses nothing). For tests that are not about durability.
    store(registry& reg, std::filesystem::path state_dir, bool sync_writes = true)
        : reg_(reg), dir_(std::move(state_dir)), sync_writes_(sync_writes) {}
    store(store const&) = delete;
    ~store() {
        if (wal_fd_ >= 0) ::close(wal_fd_);
    }

    /// Loads the snapshot and replays the log (re-registering CRDs), writes a new snapshot, and opens
    /// the log for appending. A torn last line (a crash mid-write) was never acknowledged and is dropped.
    result<void> open() {
        std::lock_guard lk(mu_);
        std::error_code ec;
        std::filesystem::create_directories(dir_, ec);
        if (ec) return make_error(errc::io, "state directory " + dir_.string() + ": " + ec.message());
        if (std::ifstream in(dir_ / "snapshot.json"); in) {
            std::stringstream text;
            text << in.rdbuf();
            boost::system::error_code jec;
            auto v = json::parse(text.str(), jec);
            if (jec || !v.is_object()) return make_error(errc::corrupt, (dir_ / "snapshot.json").string() + ": " + jec.message());
            rv_ = floor_ = std::uint64_t(v.at("rv").as_int64());
            for (auto const& e : v.at("objects").as_array()) apply_loaded(std::string(e.at("key").as_string()), e.at("object"), false, 0);
        }
        auto const wal = dir_ / "wal.jsonl";
        if (std::ifstream in(wal); in) {
            std::string line;
            std::uint64_t good = 0;
            while (std::getline(in, line)) {
                if (in.eof()) break;  // no newline: torn write
                boost::system::error_code jec;
                auto v = json::parse(line, jec);
                if (jec || !v.is_object()) break;
                auto const& o = v.get_object();
                std::uint64_t const rv = std::uint64_t(o.at("rv").as_int64());
                std::string const key(o.at("key").as_string());
                rv_ = std::max(rv_, rv);
                apply_loaded(key, o.at("object"), o.at("op").as_string() == "del", rv, std::string(o.at("type").as_string()));
                good += line.size() + 1;
            }
            wal_bytes_ = good;
            if (std::filesystem::file_size(wal, ec) != good) std::filesystem::resize_file(wal, good, ec);
        }
        wal_fd_ = ::open(wal.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (wal_fd_ < 0) return make_error(errc::io, wal.string() + ": " + std::strerror(errno));
        // Start from a fresh snapshot: history before this start is compacted (a watch from an older
        // resourceVersion gets 410 Gone and re-lists, as after an etcd compaction).
        STASH_TRYV(compact_locked());
        for (char const* ns : {"default", "kube-system", "kube-public"})
            if (!objects_.count(key_of(ns_info(), "", ns))) {
                json::object o{{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", json::object{{"name", ns}}}};
                if (auto r = create_locked(ns_info(), "", o); !r) return std::move(r).error();
            }
        return {};
    }

    std::uint64_t resource_version() const {
        std::lock_guard lk(mu_);
        return rv_;
    }

    result<json::value> create(resource_info const& ri, std::string const& ns, json::value obj) {
        std::lock_guard lk(mu_);
        return create_locked(ri, ns, std::move(obj));
    }

    result<json::value> get(resource_info const& ri, std::string const& ns, std::string const& name) const {
        std::lock_guard lk(mu_);
        auto it = objects_.find(key_of(ri, ns, name));
        if (it == objects_.end()) return not_found(ri, name);
        return it->second;
    }

    result<list_result> list(resource_info const& ri, list_options const& opt) const {
        std::lock_guard lk(mu_);
        for (auto const& r : opt.fields.requirements())
            if (r.key != "metadata.name" && r.key != "metadata.namespace")
                return make_error(errc::invalid_argument, "field label not supported: " + r.key);
        list_result out;
        out.rv = rv_;
        std::string const prefix = ri.group + "/" + ri.plural + "/" + (ri.namespaced && !opt.namespace_.empty() ? opt.namespace_ + "/" : "");
        // A continue token is "<rv>:<key>": the version of the first page and the key of the last item
        // returned; the next page starts after that key. Every page reports the first page's version,
        // so a watch from it replays whatever changed while the client was paging (pages are not a
        // snapshot, as etcd's are, but list + watch still misses nothing).
        std::string after;
        if (!opt.continue_.empty()) {
            auto const colon = opt.continue_.find(':');
            if (colon == std::string::npos) return make_error(errc::invalid_argument, "continue: invalid token");
            out.rv = std::strtoull(opt.continue_.c_str(), nullptr, 10);
            after = opt.continue_.substr(colon + 1);
            if (!after.starts_with(prefix) || out.rv == 0) return make_error(errc::invalid_argument, "continue: invalid token");
        }
        auto it = after.empty() ? objects_.lower_bound(prefix) : objects_.upper_bound(after);
        std::string last;
        for (; it != objects_.end() && it->first.starts_with(prefix); ++it) {
            auto const& o = it->second.get_object();
            if (!opt.labels.matches_labels(o) || !matches_fields(opt.fields, o)) continue;
            if (opt.limit && out.items.size() == opt.limit) {
                ++out.remaining;
                continue;
            }
            out.items.push_back(it->second);
            last = it->first;
        }
        if (out.remaining) out.continue_ = std::to_string(out.rv) + ":" + last;
        return out;
    }

    /** Replaces an object (`status_only`: only its status, the status subresource). A set
        metadata.resourceVersion must equal the stored one (409 Conflict otherwise). Without
        `status_only`, a kind with a status subresource keeps its stored status. */
    result<json::value> update(resource_info const& ri, std::string const& ns, std::string const& name, json::value obj,
                               bool status_only) {
        std::lock_guard lk(mu_);
        return update_locked(ri, ns, name, std::move(obj), status_only);
    }

    /// Reads, transforms and writes back under the lock (for patches), as one atomic step.
    result<json::value> modify(resource_info const& ri, std::string const& ns, std::string const& name, bool status_only,
                               std::function<result<json::value>(json::value)> const& fn) {
        std::lock_guard lk(mu_);
        auto it = objects_.find(key_of(ri, ns, name));
        if (it == objects_.end()) return not_found(ri, name);
        auto next = fn(it->second);
        if (!next) return std::move(next).error();
        if (next->is_object())
            if (auto* m = next->get_object().if_contains("metadata"); m && m->is_object())
                m->get_object().erase("resourceVersion");  // a patch applies to the current version
        return update_locked(ri, ns, name, std::move(*next), status_only);
    }

    /** Deletes an object: with finalizers it only gets a deletionTimestamp (and is deleted once an
        update empties them); otherwise it goes, and its dependents are deleted (background,
        foreground) or released (orphan). Returns the object as last stored. */
    result<json::value> remove(resource_info const& ri, std::string const& ns, std::string const& name, propagation p,
                               std::optional<std::string> const& precondition_uid = std::nullopt) {
        std::lock_guard lk(mu_);
        return remove_locked(ri, ns, name, p, precondition_uid);
    }

    using watch_fn = std::function<void(watch_event const&)>;

    /** Calls `fn` for every change of resource `ri` (in namespace `ns` unless empty) after
        `from_rv`; `from_rv` 0 first replays the current objects as ADDED. Errors: `errc::gone` when
        history after `from_rv` was compacted. Returns an ID for `unwatch`. */
    result<std::uint64_t> watch(resource_info const& ri, std::string const& ns, std::uint64_t from_rv, watch_fn fn) {
        std::lock_guard lk(mu_);
        std::string const prefix = ri.group + "/" + ri.plural + "/" + (ri.namespaced && !ns.empty() ? ns + "/" : "");
        if (from_rv == 0) {
            for (auto it = objects_.lower_bound(prefix); it != objects_.end() && it->first.starts_with(prefix); ++it)
                fn({rv_, "ADDED", it->first, it->second});
        } else {
            if (from_rv < floor_)
                return make_error(errc::gone, "too old resource version: " + std::to_string(from_rv) + " (" + std::to_string(floor_) + ")");
            if (from_rv > rv_) return make_error(errc::gone, "too large resource version: " + std::to_string(from_rv) + " (current " + std::to_string(rv_) + ")");
            auto it = std::lower_bound(history_.begin(), history_.end(), from_rv + 1, [](watch_event const& e, std::uint64_t v) { return e.rv < v; });
            for (; it != history_.end(); ++it)
                if (it->key.starts_with(prefix)) fn(*it);
        }
        auto const id = ++next_watch_;
        watchers_[id] = {prefix, std::move(fn)};
        return id;
    }
    void unwatch(std::uint64_t id) {
        std::lock_guard lk(mu_);
        watchers_.erase(id);
    }

    /// Writes the snapshot and empties the log.
    result<void> compact() {
        std::lock_guard lk(mu_);
        return compact_locked();
    }

private:
    static resource_info const& ns_info() {
        static resource_info const r = [] {
            resource_info i;
            i.version = "v1", i.kind = "Namespace", i.plural = "namespaces", i.namespaced = false, i.status_subresource = true;
            return i;
        }();
        return r;
    }
    static std::string key_of(resource_info const& ri, std::string const& ns, std::string const& name) {
        return ri.group + "/" + ri.plural + "/" + (ri.namespaced ? ns + "/" : "") + name;
    }
    static error not_found(resource_info const& ri, std::string const& name) {
        return make_error(errc::not_found, ri.qualified() + " \"" + name + "\" not found");
    }
    static json::object& meta(json::value& o) {
        auto& m = o.get_object()["metadata"];
        if (!m.is_object()) m = json::object();
        return m.get_object();
    }
    static std::string str(json::object const& o, char const* k) {
        auto const* v = o.if_contains(k);
        return v && v->is_string() ? std::string(v->get_string()) : std::string();
    }
    static bool matches_fields(selector const& f, json::object const& o) {
        if (f.empty()) return true;
        auto const* m = o.if_contains("metadata");
        std::string name, ns;
        if (m && m->is_object()) name = str(m->get_object(), "name"), ns = str(m->get_object(), "namespace");
        return f.matches([&](std::string const& k) -> std::string const* { return k == "metadata.name" ? &name : &ns; });
    }
    static std::string uuid() {
        std::array<std::byte, 16> b;
        crypto::random_bytes(b);
        b[6] = (b[6] & std::byte{0x0f}) | std::byte{0x40};
        b[8] = (b[8] & std::byte{0x3f}) | std::byte{0x80};
        std::string h = to_hex(b);
        return h.substr(0, 8) + "-" + h.substr(8, 4) + "-" + h.substr(12, 4) + "-" + h.substr(16, 4) + "-" + h.substr(20);
    }
    static std::string now() {
        auto t = timestamp::now();
        t.nsec = 0;
        return format_rfc3339(t);
    }
    static result<void> check_name(std::string const& name) {
        bool ok = !name.empty() && name.size() <= 253;
        for (char c : name) ok = ok && ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.');
        ok = ok && std::isalnum(static_cast<unsigned char>(name.front())) && std::isalnum(static_cast<unsigned char>(name.back()));
        if (!ok)
            return make_error(errc::invalid_argument, "metadata.name: Invalid value: \"" + name +
                                                          "\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
                                                          "characters, '-' or '.', and must start and end with an alphanumeric character");
        return {};
    }
    // Everything but metadata and status: what a generation counts changes of.
    static json::object spec_part(json::value const& o) {
        json::object s = o.get_object();
        s.erase("metadata"), s.erase("status"), s.erase("apiVersion"), s.erase("kind");
        return s;
    }

    result<json::value> create_locked(resource_info const& ri, std::string const& ns, json::value obj) {
        if (!obj.is_object()) return make_error(errc::invalid_argument, "the body must be a JSON object");
        auto& o = obj.get_object();
        o["apiVersion"] = ri.api_version();
        o["kind"] = ri.kind;
        auto& m = meta(obj);
        std::string name = str(m, "name");
        if (name.empty() && !str(m, "generateName").empty()) {
            std::string const alphabet = "bcdfghjklmnpqrstvwxz2456789";
            do {
                name = str(m, "generateName");
                std::array<std::byte, 5> r;
                crypto::random_bytes(r);
                for (auto b : r) name += alphabet[std::to_integer<unsigned>(b) % alphabet.size()];
            } while (objects_.count(key_of(ri, ns, name)));
            m["name"] = name;
        }
        if (name.empty()) return make_error(errc::invalid_argument, "metadata.name: Required value: name or generateName is required");
        STASH_TRYV(check_name(name));
        if (ri.namespaced) {
            if (ns.empty()) return make_error(errc::invalid_argument, "metadata.namespace: Required value");
            if (!objects_.count(key_of(ns_info(), "", ns)))
                return make_error(errc::not_found, "namespaces \"" + ns + "\" not found");
            auto const* ns_obj = &objects_.at(key_of(ns_info(), "", ns));
            if (!str(ns_obj->at("metadata").as_object(), "deletionTimestamp").empty())
                return make_error(errc::forbidden, "unable to create new content in namespace " + ns + " because it is being terminated");
            m["namespace"] = ns;
        } else {
            m.erase("namespace");
        }
        auto const key = key_of(ri, ns, name);
        if (objects_.count(key)) return make_error(errc::already_exists, ri.qualified() + " \"" + name + "\" already exists");
        if (ri.status_subresource && ri.kind != "Namespace" && ri.kind != "CustomResourceDefinition" && !ri.group.empty() &&
            ri.admit)
            o.erase("status");  // custom resources ignore status on create
        if (ri.admit) {
            auto a = ri.admit(obj);
            if (!a) return std::move(a).error();
            obj = std::move(*a);
        }
        if (ri.kind == "CustomResourceDefinition") {
            auto r = registry::from_crd(obj);
            if (!r) return std::move(r).error();
            if (r->plural + "." + r->group != name)
                return make_error(errc::invalid_argument, "metadata.name: Invalid value: \"" + name + "\": must be spec.names.plural+\".\"+spec.group");
            obj.get_object()["status"] = crd_status(*r);
            reg_.add(*r);
        }
        if (ri.kind == "Namespace") obj.get_object()["status"] = json::object{{"phase", "Active"}};
        auto& mm = meta(obj);
        mm["uid"] = uuid();
        mm["creationTimestamp"] = now();
        mm["generation"] = 1;
        mm.erase("deletionTimestamp");
        mm.erase("resourceVersion");
        return commit(key, std::move(obj), "ADDED");
    }

    result<json::value> update_locked(resource_info const& ri, std::string const& ns, std::string const& name, json::value obj,
                                      bool status_only) {
        if (!obj.is_object()) return make_error(errc::invalid_argument, "the body must be a JSON object");
        auto const key = key_of(ri, ns, name);
        auto it = objects_.find(key);
        if (it == objects_.end()) return not_found(ri, name);
        json::value const& old = it->second;
        auto const& om = old.at("metadata").as_object();
        auto& m = meta(obj);
        if (std::string const rv = str(m, "resourceVersion"); !rv.empty() && rv != str(om, "resourceVersion"))
            return make_error(errc::conflict, "Operation cannot be fulfilled on " + ri.qualified() + " \"" + name +
                                                  "\": the object has been modified; please apply your changes to the latest version and try again");
        if (std::string const n = str(m, "name"); !n.empty() && n != name)
            return make_error(errc::bad_request, "the name of the object (" + n + ") does not match the name on the URL (" + name + ")");
        json::value next;
        if (status_only) {
            next = old;
            if (auto const* st = obj.get_object().if_contains("status")) next.get_object()["status"] = *st;
            else next.get_object().erase("status");
        } else {
            next = std::move(obj);
            auto& no = next.get_object();
            no["apiVersion"] = ri.api_version();
            no["kind"] = ri.kind;
            if (ri.status_subresource) {
                if (auto const* st = old.get_object().if_contains("status")) no["status"] = *st;
                else no.erase("status");
            }
            // Server-managed metadata cannot be changed by clients.
            auto& nm = meta(next);
            for (char const* k : {"uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "namespace", "name"}) {
                if (auto const* v = om.if_contains(k)) nm[k] = *v;
                else nm.erase(k);
            }
            if (ri.admit) {
                auto a = ri.admit(next);
                if (!a) return std::move(a).error();
                next = std::move(*a);
                if (ri.status_subresource) {
                    if (auto const* st = old.get_object().if_contains("status")) next.get_object()["status"] = *st;
                    else next.get_object().erase("status");
                }
            }
            if (ri.kind == "CustomResourceDefinition") {
                auto r = registry::from_crd(next);
                if (!r) return std::move(r).error();
                next.get_object()["status"] = crd_status(*r);
                reg_.add(*r);
            }
        }
        auto& nm = meta(next);
        std::int64_t gen = om.contains("generation") && om.at("generation").is_int64() ? om.at("generation").get_int64() : 1;
        if (spec_part(next) != spec_part(old)) ++gen;
        nm["generation"] = gen;
        nm.erase("resourceVersion");
        if (next == old) return old;  // nothing changed: no new version, no event
        // A terminating object whose last finalizer is gone is deleted.
        auto const* fin = nm.if_contains("finalizers");
        if (!str(nm, "deletionTimestamp").empty() && (!fin || !fin->is_array() || fin->get_array().empty())) {
            commit(key, next, "MODIFIED");
            return finish_delete(ri, key, propagation::background);
        }
        return commit(key, std::move(next), "MODIFIED");
    }

    result<json::value> remove_locked(resource_info const& ri, std::string const& ns, std::string const& name, propagation p,
                                      std::optional<std::string> const& precondition_uid) {
        auto const key = key_of(ri, ns, name);
        auto it = objects_.find(key);
        if (it == objects_.end()) return not_found(ri, name);
        auto const& om = it->second.at("metadata").as_object();
        if (precondition_uid && *precondition_uid != str(om, "uid"))
            return make_error(errc::conflict, "Precondition failed: UID in precondition: " + *precondition_uid + ", UID in object meta: " + str(om, "uid"));
        auto const* fin = om.if_contains("finalizers");
        bool const has_finalizers = fin && fin->is_array() && !fin->get_array().empty();
        if (ri.kind == "Namespace") {
            // The namespace goes with everything in it.
            std::vector<std::pair<resource_info, std::string>> inside;
            for (auto const& r : reg_.all())
                if (r.namespaced)
                    for (auto i = objects_.lower_bound(r.group + "/" + r.plural + "/" + name + "/");
                         i != objects_.end() && i->first.starts_with(r.group + "/" + r.plural + "/" + name + "/"); ++i)
                        inside.emplace_back(r, str(i->second.at("metadata").as_object(), "name"));
            for (auto const& [r, n] : inside) (void)remove_locked(r, name, n, propagation::background, std::nullopt);
        }
        if (has_finalizers) {
            if (!str(om, "deletionTimestamp").empty()) return it->second;  // already terminating
            json::value next = it->second;
            meta(next)["deletionTimestamp"] = now();
            meta(next)["deletionGracePeriodSeconds"] = 0;
            meta(next).erase("resourceVersion");
            return commit(key, std::move(next), "MODIFIED");
        }
        if (p == propagation::foreground) collect_dependents(str(om, "uid"), propagation::foreground);
        return finish_delete(ri, key, p);
    }

    // Removes the object and treats its dependents by `p`.
    result<json::value> finish_delete(resource_info const& ri, std::string const& key, propagation p) {
        json::value last = objects_.at(key);
        std::string const uid = str(last.at("metadata").as_object(), "uid");
        meta(last).erase("resourceVersion");
        auto r = commit(key, last, "DELETED");
        if (!r) return r;
        if (ri.kind == "CustomResourceDefinition") {
            if (auto info = registry::from_crd(last)) {
                std::string const prefix = info->group + "/" + info->plural + "/";
                std::vector<std::string> keys;
                for (auto i = objects_.lower_bound(prefix); i != objects_.end() && i->first.starts_with(prefix); ++i) keys.push_back(i->first);
                for (auto const& k : keys) {
                    json::value o = objects_.at(k);
                    meta(o).erase("resourceVersion");
                    (void)commit(k, std::move(o), "DELETED");
                }
                reg_.remove(info->group, info->version, info->plural);
            }
        }
        collect_dependents(uid, p);
        return r;
    }

    // Dependents of `owner_uid`: deleted (background, foreground) or released (orphan).
    void collect_dependents(std::string const& owner_uid, propagation p) {
        std::vector<std::pair<std::string, json::value>> deps;
        for (auto const& [k, o] : objects_) {
            auto const* m = o.get_object().if_contains("metadata");
            auto const* refs = m ? m->get_object().if_contains("ownerReferences") : nullptr;
            if (!refs || !refs->is_array()) continue;
            for (auto const& ref : refs->get_array())
                if (ref.is_object() && str(ref.get_object(), "uid") == owner_uid) {
                    deps.emplace_back(k, o);
                    break;
                }
        }
        for (auto& [k, o] : deps) {
            auto const ri = info_of_key(k);
            if (!ri) continue;
            auto const& m = o.at("metadata").as_object();
            std::string const ns = str(m, "namespace"), name = str(m, "name");
            if (p == propagation::orphan) {
                json::value next = o;
                auto& refs = meta(next)["ownerReferences"].as_array();
                refs.erase(std::remove_if(refs.begin(), refs.end(),
                                          [&](json::value const& r) { return r.is_object() && str(r.get_object(), "uid") == owner_uid; }),
                           refs.end());
                if (refs.empty()) meta(next).erase("ownerReferences");
                meta(next).erase("resourceVersion");
                (void)commit(k, std::move(next), "MODIFIED");
            } else {
                (void)remove_locked(*ri, ns, name, p, std::nullopt);
            }
        }
    }

    std::optional<resource_info> info_of_key(std::string const& key) const {
        auto const a = key.find('/'), b = key.find('/', a + 1);
        std::string const group = key.substr(0, a), plural = key.substr(a + 1, b - a - 1);
        for (auto const& r : reg_.all())
            if (r.group == group && r.plural == plural) return r;
        return std::nullopt;
    }

    static json::object crd_status(resource_info const& r) {
        auto cond = [](char const* type, char const* reason, char const* msg) {
            return json::object{{"type", type}, {"status", "True"}, {"reason", reason}, {"message", msg}, {"lastTransitionTime", now()}};
        };
        json::object names{{"kind", r.kind}, {"listKind", r.kind + "List"}, {"plural", r.plural}, {"singular", r.singular}};
        return json::object{{"conditions", json::array{cond("NamesAccepted", "NoConflicts", "no conflicts found"),
                                                        cond("Established", "InitialNamesAccepted", "the initial names have been accepted")}},
                            {"acceptedNames", std::move(names)},
                            {"storedVersions", json::array{json::string(r.version)}}};
    }

    // Assigns the next resourceVersion, logs durably, applies, and notifies watchers.
    result<json::value> commit(std::string const& key, json::value obj, std::string const& type) {
        std::uint64_t const rv = rv_ + 1;
        meta(obj)["resourceVersion"] = std::to_string(rv);
        json::object rec{{"rv", rv}, {"op", type == "DELETED" ? "del" : "put"}, {"type", type}, {"key", key}, {"object", obj}};
        std::string line = json::serialize(rec);
        line += '\n';
        if (wal_fd_ >= 0) {
            for (std::size_t off = 0; off < line.size();) {
                ssize_t n = ::write(wal_fd_, line.data() + off, line.size() - off);
                if (n < 0) {
                    if (errno == EINTR) continue;
                    return make_error(errc::io, "state directory: write: " + std::string(std::strerror(errno)));
                }
                off += std::size_t(n);
            }
            if (sync_writes_ && ::fdatasync(wal_fd_) != 0) return make_error(errc::io, "state directory: fsync: " + std::string(std::strerror(errno)));
            wal_bytes_ += line.size();
        }
        rv_ = rv;
        if (type == "DELETED") objects_.erase(key);
        else objects_[key] = obj;
        record({rv, type, key, obj});
        if (wal_bytes_ > wal_limit) (void)compact_locked();
        return obj;
    }

    void record(watch_event ev) {
        for (auto const& [id, w] : watchers_)
            if (ev.key.starts_with(w.first)) w.second(ev);
        history_.push_back(std::move(ev));
        if (history_.size() > history_limit) {
            floor_ = history_.front().rv;
            history_.pop_front();
        }
    }

    void apply_loaded(std::string const& key, json::value const& obj, bool deleted, std::uint64_t rv, std::string type = "ADDED") {
        if (deleted) objects_.erase(key);
        else objects_[key] = obj;
        if (key.starts_with("apiextensions.k8s.io/customresourcedefinitions/")) {
            if (auto r = registry::from_crd(obj)) {
                if (deleted) reg_.remove(r->group, r->version, r->plural);
                else reg_.add(*r);
            }
        }
        if (rv) record({rv, type, key, obj});
    }

    result<void> compact_locked() {
        json::array objs;
        for (auto const& [k, o] : objects_) objs.push_back(json::object{{"key", k}, {"object", o}});
        std::string const text = json::serialize(json::object{{"rv", rv_}, {"objects", std::move(objs)}});
        auto const tmp = dir_ / "snapshot.json.tmp";
        int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0) return make_error(errc::io, tmp.string() + ": " + std::strerror(errno));
        bool ok = ::write(fd, text.data(), text.size()) == ssize_t(text.size()) && ::fsync(fd) == 0;
        ::close(fd);
        if (!ok) return make_error(errc::io, tmp.string() + ": write failed");
        std::error_code ec;
        std::filesystem::rename(tmp, dir_ / "snapshot.json", ec);
        if (ec) return make_error(errc::io, "snapshot: " + ec.message());
        if (::ftruncate(wal_fd_, 0) != 0) return make_error(errc::io, "wal: " + std::string(std::strerror(errno)));
        wal_bytes_ = 0;
        floor_ = rv_;
        history_.clear();
        return {};
    }

    registry& reg_;
    std::filesystem::path dir_;
    bool sync_writes_;
    mutable std::mutex mu_;
    std::map<std::string, json::value> objects_;
    std::uint64_t rv_ = 0, floor_ = 0, next_watch_ = 0, wal_bytes_ = 0;  // floor_: history holds every event after it
    std::deque<watch_event> history_;
    std::map<std::uint64_t, std::pair<std::string, watch_fn>> watchers_;
    int wal_fd_ = -1;
};

}  // namespace stash::embedded
