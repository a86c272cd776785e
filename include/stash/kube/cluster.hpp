// The Cluster concept: what reconcilers need of a Kubernetes API (get, list, create, update, patch,
// delete, watch; the status subresource), on JSON documents. Models: `policies::cluster::rest` (any
// conformant API server) and `policies::cluster::in_process` (the embedded store, for unit tests).
#pragma once

#include <stash/core/error.hpp>

#include <boost/json.hpp>

#include <concepts>
#include <functional>
#include <memory>
#include <string>

namespace stash::kube {

/// A resource type, as a path names it: group ("" for core), version, plural, scope.
struct resource_type {
    std::string group, version, plural;
    bool namespaced = true;

    std::string api_version() const { return group.empty() ? version : group + "/" + version; }
    /// "/api/v1/namespaces/NS/pods/NAME/status"; ns is ignored for cluster-scoped resources.
    std::string path(std::string const& ns = {}, std::string const& name = {}, std::string const& sub = {}) const {
        std::string p = group.empty() ? "/api/" + version : "/apis/" + group + "/" + version;
        if (namespaced && !ns.empty()) p += "/namespaces/" + ns;
        p += "/" + plural;
        if (!name.empty()) p += "/" + name;
        if (!sub.empty()) p += "/" + sub;
        return p;
    }
};

struct list_request {
    std::string label_selector, field_selector;
    std::uint64_t limit = 0;
    std::string continue_;
};
struct list_response {
    boost::json::array items;
    std::string resource_version, continue_;
};

enum class patch_type { merge, json, strategic };
enum class deletion { background, foreground, orphan };

struct watch_request {
    std::string resource_version;  ///< "" or "0": current state first (as ADDED), then changes
    std::string label_selector, field_selector;
    bool bookmarks = true;
    unsigned timeout_seconds = 0;  ///< 0: the server's default
};

/// One event of a watch. `type` is ADDED, MODIFIED, DELETED, BOOKMARK or ERROR (then `object` is a
/// Status; 410 means the requested version is gone: list again).
struct watch_event {
    std::string type;
    boost::json::value object;
};

/// A running watch; stopping (or destroying) it ends the stream. Thread-safe.
class watch_handle {
public:
    watch_handle() = default;
    explicit watch_handle(std::function<void()> stop) : stop_(std::make_shared<std::function<void()>>(std::move(stop))) {}
    void stop() {
        if (stop_ && *stop_) std::exchange(*stop_, {})();
    }

private:
    std::shared_ptr<std::function<void()>> stop_;
};

/** Requirements on a cluster policy `C` (`c` a `C&`, `r` a `resource_type`, `ns`/`name` strings, `o`
    a `boost::json::value`):

    | expression                                   | returns                       | semantics |
    |----------------------------------------------|-------------------------------|-----------|
    | `c.get(r, ns, name)`                         | `result<json::value>`         | the object; `errc::not_found` |
    | `c.list(r, ns, list_request)`                | `result<list_response>`       | `ns` "" = all namespaces; paging by limit/continue |
    | `c.create(r, ns, o)`                         | `result<json::value>`         | `errc::already_exists`, `invalid_argument` (422) |
    | `c.update(r, ns, name, o, sub)`              | `result<json::value>`         | `sub` "" or "status"; a stale resourceVersion is `errc::conflict` |
    | `c.patch(r, ns, name, patch_type, o, sub)`   | `result<json::value>`         | merge, JSON or strategic merge patch |
    | `c.remove(r, ns, name, deletion)`            | `result<void>`                | owner-reference GC by the deletion policy |
    | `c.watch(r, ns, watch_request, fn)`          | `result<watch_handle>`        | `fn(watch_event const&)` from a background thread; the stream ends with an event of type "" (closed) |
    | `c.default_namespace()`                      | `std::string`                 | the namespace of the configured context |

    Errors are `stash::error` with `errc::not_found`, `already_exists`, `conflict`, `invalid_argument`,
    `gone`, `forbidden`, `unauthorized`, `timeout`, `bad_request` or `io`, and the server's message. */
template <class C>
concept cluster = requires(C& c, resource_type const& r, std::string const& s, boost::json::value o, list_request const& lr,
                           watch_request const& wr, std::function<void(watch_event const&)> fn) {
    { c.get(r, s, s) } -> std::same_as<result<boost::json::value>>;
    { c.list(r, s, lr) } -> std::same_as<result<list_response>>;
    { c.create(r, s, o) } -> std::same_as<result<boost::json::value>>;
    { c.update(r, s, s, o, s) } -> std::same_as<result<boost::json::value>>;
    { c.patch(r, s, s, patch_type::merge, o, s) } -> std::same_as<result<boost::json::value>>;
    { c.remove(r, s, s, deletion::background) } -> std::same_as<result<void>>;
    { c.watch(r, s, wr, fn) } -> std::same_as<result<watch_handle>>;
    { c.default_namespace() } -> std::convertible_to<std::string>;
};

}  // namespace stash::kube
