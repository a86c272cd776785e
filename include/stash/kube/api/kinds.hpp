// Every kind this project defines a CRD for, as one compile-time list (for generators and for
// dispatching on apiVersion/kind at run time).
#pragma once

#include <stash/kube/api/appcatalog_v1alpha1.hpp>
#include <stash/kube/api/stash_v1beta1.hpp>

#include <boost/hana/tuple.hpp>
#include <boost/hana/type.hpp>

namespace stash::kube {

/// The kind descriptors of Stash's CRDs and AppBinding, as `hana::type`s.
inline constexpr auto crd_kinds = boost::hana::tuple_t<
    stash_v1alpha1::repository_kind, stash_v1beta1::backup_configuration_kind, stash_v1beta1::backup_session_kind,
    stash_v1beta1::restore_session_kind, stash_v1beta1::backup_batch_kind, stash_v1beta1::restore_batch_kind,
    stash_v1beta1::backup_blueprint_kind, stash_v1beta1::task_kind, stash_v1beta1::function_kind,
    appcatalog_v1alpha1::app_binding_kind>;

/// Calls `fn(hana::type_c<K>)` for the descriptor `K` of `group`/`kind`; returns false when unknown.
template <class Fn>
bool visit_kind(std::string_view group, std::string_view kind, Fn&& fn) {
    bool found = false;
    boost::hana::for_each(crd_kinds, [&](auto t) {
        using K = typename decltype(t)::type;
        if (!found && K::group == group && K::kind == kind) {
            found = true;
            fn(t);
        }
    });
    return found;
}

}  // namespace stash::kube
