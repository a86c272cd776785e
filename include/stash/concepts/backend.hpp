// The backend concept: where a repository's files live (local disk, memory, object stores).
#pragma once

#include <stash/core/bytes.hpp>
#include <stash/core/error.hpp>

#include <unistd.h>

#include <cerrno>
#include <concepts>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

namespace stash {

/// The kinds of file in a restic repository (restic-format.md §1.1).
enum class file_type { config, key, lock, snapshot, index, pack };

/// Directory name of a file type in restic's default layout.
constexpr char const* dir_name(file_type t) noexcept {
    switch (t) {
        case file_type::config: return "";
        case file_type::key: return "keys";
        case file_type::lock: return "locks";
        case file_type::snapshot: return "snapshots";
        case file_type::index: return "index";
        case file_type::pack: return "data";
    }
    return "";
}

/// Names one file: its type and its name (64 hex digits; empty for the config).
struct handle {
    file_type type;
    std::string name;
    std::string str() const { return type == file_type::config ? "config" : std::string(dir_name(type)) + "/" + name; }
};

/// Receives one listed file: name and size in bytes.
using list_fn = std::function<void(std::string_view name, std::uint64_t size)>;

/** A backend stores a repository's files as opaque named byte strings.

    Notation: `B` a type modelling backend, `b` an lvalue of `B`, `h` a `handle`, `t` a `file_type`,
    `data` a `byte_span`, `out` a `bytes&`, `off`/`len` `std::uint64_t`, `fn` a `list_fn`.

    | expression              | type                     | semantics |
    |-------------------------|--------------------------|-----------|
    | `b.location()`          | `std::string`            | the repository string, for messages. |
    | `b.create()`            | `result<void>`           | prepares an empty repository; `errc::already_exists` if a config is there. |
    | `b.put(h, data)`        | `result<void>`           | stores `data` atomically: readers see all of it or nothing, also after a crash (restic-format.md §1.1). |
    | `b.get(h, off, len, out)` | `result<void>`         | replaces `out` with bytes `[off, off+len)`; `len == 0` reads to the end. `errc::not_found` if missing; `errc::corrupt` if the file is shorter than asked. |
    | `b.stat(h)`             | `result<std::uint64_t>`  | size in bytes; `errc::not_found` if missing. |
    | `b.list(t, fn)`         | `result<void>`           | calls `fn` once per file of type `t` whose name is 64 hex digits (temp files are invisible). |
    | `b.remove(h)`           | `result<void>`           | deletes; `errc::not_found` if missing. |

    All operations MUST be safe to call from several threads at once.

    Models: `policies::backend::local`, `memory`, `rest`, `s3`, `azure`, `gcs`, `swift`, `b2`;
    decorators `retry<B>`, `fault<B>` and `cache<B>`; `any` (type-erased).
*/
template <class B>
concept backend = requires(B& b, handle const& h, file_type t, byte_span data, bytes& out, std::uint64_t n, list_fn fn) {
    { b.location() } -> std::convertible_to<std::string>;
    { b.create() } -> std::same_as<result<void>>;
    { b.put(h, data) } -> std::same_as<result<void>>;
    { b.get(h, n, n, out) } -> std::same_as<result<void>>;
    { b.stat(h) } -> std::same_as<result<std::uint64_t>>;
    { b.list(t, fn) } -> std::same_as<result<void>>;
    { b.remove(h) } -> std::same_as<result<void>>;
};

/** A backend's own way of writing a staged file's bytes (the local backend writes with O_DIRECT
    on threads of its own): `append` may return before the bytes are on their way, `flush` sends
    what is left on its way (no `append` after it), `finish` flushes and waits for every write.
    Errors of a write show in a later call. Its destructor waits for the writes in flight (they
    use the file's descriptor). */
class staged_writer {
public:
    virtual ~staged_writer() = default;
    virtual result<void> append(byte_span data) = 0;
    virtual result<void> flush() { return {}; }
    virtual result<void> finish() = 0;
};

/** An unnamed file a backend stages on its own storage (`O_TMPFILE`): written in pieces, it stays
    invisible until the backend commits it under a name, and disappears with its descriptor if it
    never is (a failed or killed writer leaves nothing behind). Written with `write(2)`, or through
    the backend's `staged_writer`. Move-only. */
class staged_file {
public:
    staged_file() = default;
    explicit staged_file(int fd, std::string where, std::unique_ptr<staged_writer> w = nullptr)
        : fd_(fd), where_(std::move(where)), writer_(std::move(w)) {}
    staged_file(staged_file&& o) noexcept
        : fd_(std::exchange(o.fd_, -1)), where_(std::move(o.where_)), writer_(std::move(o.writer_)) {}
    staged_file& operator=(staged_file&& o) noexcept {
        if (this != &o) close(), fd_ = std::exchange(o.fd_, -1), where_ = std::move(o.where_), writer_ = std::move(o.writer_);
        return *this;
    }
    ~staged_file() { close(); }

    /// Appends `data`. Errors: `errc::io` naming the directory it is staged in.
    result<void> append(byte_span data) {
        if (writer_) return writer_->append(data);
        for (std::size_t off = 0; off < data.size();) {
            ssize_t n = ::write(fd_, data.data() + off, data.size() - off);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) return errno_error("write a staged file in " + where_);
            off += std::size_t(n);
        }
        return {};
    }
    /// Starts writing what is still buffered, for a caller that commits the file later; no
    /// `append` after it.
    result<void> flush() { return writer_ ? writer_->flush() : result<void>{}; }
    /// Waits until every byte appended is written (a backend calls it before committing the file).
    result<void> finish() { return writer_ ? writer_->finish() : result<void>{}; }
    int fd() const noexcept { return fd_; }
    /// Gives up the descriptor (the backend keeps it after a commit), once writes in flight are done.
    int release() noexcept {
        writer_.reset();
        return std::exchange(fd_, -1);
    }

private:
    void close() noexcept {
        writer_.reset();  // (first: its writes use the descriptor)
        if (fd_ >= 0) ::close(fd_), fd_ = -1;
    }
    int fd_ = -1;
    std::string where_;
    std::unique_ptr<staged_writer> writer_;
};

/** Optional, for backends on a local file system: a pack can be streamed into a staged file while it
    is built (its name, the hash of its bytes, is known only at the end) instead of being gathered in
    memory, and then named without a copy.

    | expression          | type                  | semantics |
    |---------------------|-----------------------|-----------|
    | `b.stage()`         | `result<staged_file>` | a new staged file; `errc::unsupported` when this instance cannot (then callers `put` instead) |
    | `b.commit(h, f)`    | `result<void>`        | names `f` (an rvalue) as `h` with `put`'s guarantees; `h` existing already is not an error (same name, same bytes) |

    Models: `policies::backend::local`, and `any` (forwarding; `errc::unsupported` for other drivers).
*/
template <class B>
concept staging_backend = backend<B> && requires(B& b, handle const& h, staged_file f) {
    { b.stage() } -> std::same_as<result<staged_file>>;
    { b.commit(h, std::move(f)) } -> std::same_as<result<void>>;
};

/// Says whether a pack, named by its 64 hex digits, holds tree blobs.
using pack_filter = std::function<bool(std::string_view pack)>;
/// Makes a `pack_filter` (from the index), only if it is wanted.
using pack_filter_maker = std::function<pack_filter()>;

/** Optional, for backends that keep local copies of files read again and again: the repository
    tells them which repository they serve once it has read its config, which packs hold trees
    once it has loaded its index, and which packs it writes hold trees.

    | expression              | type   | semantics |
    |-------------------------|--------|-----------|
    | `b.bind_cache(repo_id)` | `void` | `repo_id` the config's `id`; copies kept before this call are none |
    | `b.cache_packs(make)`   | `void` | `make` (a `pack_filter_maker`) is called at once, if at all (a backend keeping no cache need not pay for the filter); packs the filter accepts may be kept, copies of others are dropped |
    | `b.keep_copy(h, data)`  | `void` | `data`, just stored as `h` by `put`, will be read again (a pack of trees): a copy may be kept |

    None of them may fail the repository: a cache that cannot be used is passed by.
    Models: `policies::backend::cache`, and `any` (forwarding; nothing for other drivers).
*/
template <class B>
concept caching_backend = backend<B> && requires(B& b, std::string const& repo_id, pack_filter_maker make, handle const& h, byte_span data) {
    b.bind_cache(repo_id);
    b.cache_packs(std::move(make));
    b.keep_copy(h, data);
};

}  // namespace stash
