// A backend chosen at run time: type erasure over any model of `stash::backend`, for apps that pick
// the driver from a repository string. One virtual call per file operation (a network round trip or
// a file system call), so the cost does not show.
#pragma once

#include <stash/concepts/backend.hpp>

#include <memory>
#include <type_traits>

namespace stash::policies::backend {

/** Holds any `stash::backend` and forwards to it. Copies share the same driver (and its connection
    pool). @par Concepts `stash::staging_backend` (staging fails with `errc::unsupported` when the
    held driver cannot stage), `stash::caching_backend` (nothing happens when the held driver keeps
    no cache); thread-safe when the held driver is. */
class any {
public:
    template <class B>
        requires(stash::backend<B> && !std::is_same_v<std::remove_cvref_t<B>, any>)
    any(B b) : p_(std::make_shared<model<B>>(std::move(b))) {}

    std::string location() const { return p_->location(); }
    result<void> create() { return p_->create(); }
    result<void> put(handle const& h, byte_span data) { return p_->put(h, data); }
    result<void> get(handle const& h, std::uint64_t off, std::uint64_t len, bytes& out) { return p_->get(h, off, len, out); }
    result<std::uint64_t> stat(handle const& h) { return p_->stat(h); }
    result<void> list(file_type t, list_fn const& fn) { return p_->list(t, fn); }
    result<void> remove(handle const& h) { return p_->remove(h); }
    /// Forwarded when the held driver models `stash::staging_backend`, else `errc::unsupported`.
    result<staged_file> stage() { return p_->stage(); }
    result<void> commit(handle const& h, staged_file f) { return p_->commit(h, std::move(f)); }
    /// Forwarded when the held driver models `stash::caching_backend`; nothing happens otherwise.
    void bind_cache(std::string const& repo_id) { p_->bind_cache(repo_id); }
    void cache_packs(pack_filter_maker make) { p_->cache_packs(std::move(make)); }
    void keep_copy(handle const& h, byte_span data) { p_->keep_copy(h, data); }

private:
    struct concept_ {
        virtual ~concept_() = default;
        virtual std::string location() const = 0;
        virtual result<void> create() = 0;
        virtual result<void> put(handle const&, byte_span) = 0;
        virtual result<void> get(handle const&, std::uint64_t, std::uint64_t, bytes&) = 0;
        virtual result<std::uint64_t> stat(handle const&) = 0;
        virtual result<void> list(file_type, list_fn const&) = 0;
        virtual result<void> remove(handle const&) = 0;
        virtual result<staged_file> stage() = 0;
        virtual result<void> commit(handle const&, staged_file) = 0;
        virtual void bind_cache(std::string const&) = 0;
        virtual void cache_packs(pack_filter_maker) = 0;
        virtual void keep_copy(handle const&, byte_span) = 0;
    };
    template <class B>
    struct model final : concept_ {
        B b;
        explicit model(B x) : b(std::move(x)) {}
        std::string location() const override { return b.location(); }
        result<void> create() override { return b.create(); }
        result<void> put(handle const& h, byte_span d) override { return b.put(h, d); }
        result<void> get(handle const& h, std::uint64_t o, std::uint64_t l, bytes& out) override { return b.get(h, o, l, out); }
        result<std::uint64_t> stat(handle const& h) override { return b.stat(h); }
        result<void> list(file_type t, list_fn const& fn) override { return b.list(t, fn); }
        result<void> remove(handle const& h) override { return b.remove(h); }
        result<staged_file> stage() override {
            if constexpr (staging_backend<B>) return b.stage();
            else return make_error(errc::unsupported, b.location() + ": this backend does not stage files");
        }
        result<void> commit(handle const& h, staged_file f) override {
            if constexpr (staging_backend<B>) return b.commit(h, std::move(f));
            else return make_error(errc::unsupported, b.location() + ": this backend does not stage files");
        }
        void bind_cache(std::string const& repo_id) override {
            if constexpr (caching_backend<B>) b.bind_cache(repo_id);
        }
        void cache_packs(pack_filter_maker make) override {
            if constexpr (caching_backend<B>) b.cache_packs(std::move(make));
        }
        void keep_copy(handle const& h, byte_span data) override {
            if constexpr (caching_backend<B>) b.keep_copy(h, data);
        }
    };
    std::shared_ptr<concept_> p_;
};

static_assert(stash::staging_backend<any> && stash::caching_backend<any>);

}  // namespace stash::policies::backend
