// A decorator that keeps local copies of the files every command reads again — snapshots, index
// files and the packs that hold trees — so that a command over a network fetches only what is new.
#pragma once

#include <stash/concepts/backend.hpp>
#include <stash/concepts/hasher.hpp>
#include <stash/core/hex.hpp>
#include <stash/crypto/random.hpp>
#include <stash/policies/hash/sha256.hpp>

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <condition_variable>
#include <cstring>
#include <ctime>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_set>

namespace stash::policies::backend {

struct cache_options {
    /// Called (at most once) when the cache cannot be used or written: the directory cannot be
    /// made, a copy cannot be written. The backend then goes on without it.
    std::function<void(error const&)> on_warning;
};

/** `cache<B, H>` models `stash::backend` and `stash::caching_backend` over `B`, keeping copies of
    files under `base/<repository id>/` in restic's cache layout (restic's doc/cache.rst, version 1):
    `snapshots/<id>`, `index/<id>`, `data/<first two hex digits>/<id>`, each the file's bytes as the
    repository holds them, a `version` file holding `1`, and a `CACHEDIR.TAG` in `base`.

    What it keeps: snapshots and index files as they are read or written, packs of trees as they
    are written (`keep_copy`), and whole the packs `cache_packs` names (those holding trees): the
    first ranged read of such a pack fetches all of it (once, however many threads ask) and later
    reads are local. Copies are checked against
    their names (the SHA-256 of their bytes, restic-format.md §1.1): snapshots and index files
    each time they are read, packs the first time a process reads them. A damaged copy is dropped
    and fetched again, so the cache can lose files but never change what a reader gets. Files gone from the repository go from the cache too: after a
    listing of snapshots or index files, those not listed; with `cache_packs`, packs that no
    longer hold trees; with `remove`, the file removed.

    Not kept: config, keys, locks (small, and must be current) and data packs. Until
    `bind_cache` is called (by the repository, with the config's ID), or when the directory
    cannot be used, every call goes straight to `B`. Writes to the cache are not fsynced: a copy
    lost in a crash is fetched again, and one cut short fails its check. A copy is written under a
    temporary name and renamed, so processes sharing the directory see whole files only.

    Memory: each pack being fetched for the cache, whole (a pack holding trees, at most the
    repository's pack size: 16 MiB by default); checking a copy reads it 1 MiB at a time.
    @par Concepts
    `stash::caching_backend`; `stash::staging_backend` when `B` is. Thread-safe when `B` is.
*/
template <stash::backend B, stash::incremental_hasher H = hash::sha256>
class cache {
public:
    /// `base`: the directory holding one subdirectory per repository (made as needed).
    cache(B inner, std::string base, cache_options opt = {}) : inner_(std::move(inner)), s_(std::make_shared<state>()) {
        while (base.size() > 1 && base.back() == '/') base.pop_back();
        s_->base = std::move(base);
        s_->on_warning = std::move(opt.on_warning);
    }

    B& inner() noexcept { return inner_; }
    std::string location() const { return inner_.location(); }
    result<void> create() { return inner_.create(); }
    result<std::uint64_t> stat(handle const& h) { return inner_.stat(h); }

    result<void> put(handle const& h, byte_span data) {
        auto r = inner_.put(h, data);
        if (r && kept_whole(h.type))
            if (auto const dir = s_->directory(); !dir.empty()) keep(dir, h, data);
        return r;
    }

    result<void> get(handle const& h, std::uint64_t off, std::uint64_t len, bytes& out) {
        auto const dir = s_->directory();
        if (dir.empty()) return inner_.get(h, off, len, out);
        std::string const path = path_of(dir, h);
        if (kept_whole(h.type)) {
            if (!read_file(path, out) || H::digest(out).str() != h.name) {
                if (!out.empty()) ::unlink(path.c_str());  // damaged
                STASH_TRYV(inner_.get(h, 0, 0, out));
                // A file that does not match its name is passed on as it is, for the caller to report.
                if (H::digest(out).str() == h.name) keep(dir, h, out);
            }
            return slice(path, off, len, out);
        }
        if (h.type == file_type::pack && s_->wanted(h.name) && ensure(dir, h, path) && read_range(path, off, len, out)) return {};
        return inner_.get(h, off, len, out);
    }

    result<void> list(file_type t, list_fn const& fn) {
        auto const dir = s_->directory();
        if (dir.empty() || !kept_whole(t)) return inner_.list(t, fn);
        std::unordered_set<std::string> listed;
        STASH_TRYV(inner_.list(t, [&](std::string_view name, std::uint64_t size) {
            listed.emplace(name);
            fn(name, size);
        }));
        sweep(dir + "/" + dir_name(t), [&](std::string const& name) { return listed.count(name) != 0; });
        return {};
    }

    result<void> remove(handle const& h) {
        auto r = inner_.remove(h);
        if (auto const dir = s_->directory(); !dir.empty() && (kept_whole(h.type) || h.type == file_type::pack)) {
            ::unlink(path_of(dir, h).c_str());
            s_->forget(h.name);
        }
        return r;
    }

    result<staged_file> stage()
        requires staging_backend<B>
    {
        return inner_.stage();
    }
    result<void> commit(handle const& h, staged_file f)
        requires staging_backend<B>
    {
        return inner_.commit(h, std::move(f));
    }

    /// Starts using `base/<repo_id>/` (made if missing; left alone when its `version` is not 1).
    void bind_cache(std::string const& repo_id) {
        std::array<std::byte, 32> raw;
        if (repo_id.size() != 64 || !from_hex(repo_id, raw)) return;  // not restic's kind of ID: no cache
        std::string const dir = s_->base + "/" + repo_id;
        if (auto e = prepare(dir); !e.empty()) return s_->warn(make_error(errc::io, "cache " + dir + ": " + e));
        std::lock_guard lk(s_->mu);
        s_->dir = dir;
    }

    /// Keeps the packs `make()` accepts (those holding trees) from now on, and drops copies of others.
    void cache_packs(pack_filter_maker make) {
        if (s_->directory().empty()) return;
        auto shared = std::make_shared<pack_filter const>(make());
        {
            std::lock_guard lk(s_->mu);
            s_->filter = shared;
        }
        if (auto const dir = s_->directory(); !dir.empty())
            for (int i = 0; i < 256; ++i)
                sweep(dir + "/data/" + to_hex(std::array{std::byte(i)}), [&](std::string const& name) { return (*shared)(name); });
    }

    /// Keeps a copy of a pack of trees just written (its name is the hash of `data`: no check needed).
    void keep_copy(handle const& h, byte_span data) {
        auto const dir = s_->directory();
        if (dir.empty() || h.type != file_type::pack || !keep(dir, h, data)) return;
        std::lock_guard lk(s_->mu);
        s_->checked.insert(h.name);
    }

private:
    static constexpr std::size_t piece = 1 << 20;  // bytes read at a time when checking a copy

    struct state {
        std::string base;
        std::function<void(error const&)> on_warning;
        std::mutex mu;
        std::string dir;                                      // base/<id> once bound and usable; empty: off
        std::shared_ptr<pack_filter const> filter;             // which packs to keep
        std::unordered_set<std::string> checked, loading;      // packs checked in place; being fetched
        std::condition_variable loaded;
        bool warned = false;

        std::string directory() {
            std::lock_guard lk(mu);
            return dir;
        }
        bool wanted(std::string const& pack) {
            std::shared_ptr<pack_filter const> f;
            {
                std::lock_guard lk(mu);
                if (checked.count(pack)) return true;  // kept since (keep_copy)
                f = filter;
            }
            return f && (*f)(pack);
        }
        void forget(std::string const& name) {
            std::lock_guard lk(mu);
            checked.erase(name);
        }
        // Reports once and turns the cache off.
        void warn(error const& e) {
            std::unique_lock lk(mu);
            dir.clear();
            if (std::exchange(warned, true) || !on_warning) return;
            lk.unlock();
            on_warning(e);
        }
    };

    static bool kept_whole(file_type t) noexcept { return t == file_type::snapshot || t == file_type::index; }

    static std::string path_of(std::string const& dir, handle const& h) {
        if (h.type == file_type::pack) return dir + "/data/" + h.name.substr(0, 2) + "/" + h.name;
        return dir + "/" + dir_name(h.type) + "/" + h.name;
    }

    // Makes the repository's cache directory; returns what went wrong.
    static std::string prepare(std::string const& dir) {
        std::string const base = dir.substr(0, dir.rfind('/'));
        if (!make_dirs(base)) return std::strerror(errno);
        // The Cache Directory Tagging Specification's tag, so backup tools skip the cache.
        std::string const tag = base + "/CACHEDIR.TAG";
        if (::access(tag.c_str(), F_OK) != 0)
            (void)write_file(tag, as_bytes(std::string_view("Signature: 8a477f597d28d172789f06886806bc55\n"
                                                             "# This file is a cache directory tag created by stash.\n")));
        for (char const* sub : {"", "/snapshots", "/index", "/data"})
            if (::mkdir((dir + sub).c_str(), 0700) != 0 && errno != EEXIST) return std::strerror(errno);
        std::string const version = dir + "/version";
        bytes v;
        if (read_file(version, v)) {
            if (std::string_view(reinterpret_cast<char const*>(v.data()), v.size()).substr(0, 2) != "1\n")
                return "version is not 1 (a newer layout?): left alone";
        } else if (!write_file(version, as_bytes(std::string_view("1\n")))) {
            return std::strerror(errno);
        }
        ::utimensat(AT_FDCWD, dir.c_str(), nullptr, 0);  // last used: old caches can be found by age
        return {};
    }

    static bool make_dirs(std::string const& p) {
        for (std::size_t at = 1; at != std::string::npos;) {
            at = p.find('/', at + 1);
            if (::mkdir(p.substr(0, at).c_str(), 0700) != 0 && errno != EEXIST) return false;
        }
        return true;
    }

    static bool read_file(std::string const& path, bytes& out) {
        out.clear();
        int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) return false;
        struct stat st;
        bool ok = ::fstat(fd, &st) == 0;
        if (ok) out.resize(std::size_t(st.st_size));
        for (std::size_t got = 0; ok && got < out.size();) {
            ssize_t n = ::read(fd, out.data() + got, out.size() - got);
            if (n < 0 && errno == EINTR) continue;
            ok = n > 0;
            got += ok ? std::size_t(n) : 0;
        }
        ::close(fd);
        if (!ok) out.clear();
        return ok;
    }

    static bool read_range(std::string const& path, std::uint64_t off, std::uint64_t len, bytes& out) {
        int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) return false;
        struct stat st;
        bool ok = ::fstat(fd, &st) == 0 && off <= std::uint64_t(st.st_size);
        if (ok && len == 0) len = std::uint64_t(st.st_size) - off;
        if (ok) out.resize(len);
        for (std::uint64_t got = 0; ok && got < len;) {
            ssize_t n = ::pread(fd, out.data() + got, len - got, off_t(off + got));
            if (n < 0 && errno == EINTR) continue;
            ok = n > 0;
            got += ok ? std::uint64_t(n) : 0;
        }
        ::close(fd);
        return ok;
    }

    // Whether the copy at `path` is the file named `name`, read a piece at a time.
    static bool matches(std::string const& path, std::string const& name) {
        int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) return false;
        typename H::state st;
        bytes buf(piece);
        ssize_t n;
        while ((n = ::read(fd, buf.data(), buf.size())) > 0 || (n < 0 && errno == EINTR))
            if (n > 0) st.update(byte_span(buf.data(), std::size_t(n)));
        ::close(fd);
        return n == 0 && st.finish().str() == name;
    }

    // Writes under a temporary name, then renames: other processes see the whole file or none.
    static bool write_file(std::string const& path, byte_span data) {
        std::array<std::byte, 8> rnd;
        crypto::random_bytes(rnd);
        std::string const tmp = path + "-tmp-" + to_hex(rnd);
        int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0) return false;
        bool ok = true;
        for (std::size_t off = 0; ok && off < data.size();) {
            ssize_t n = ::write(fd, data.data() + off, data.size() - off);
            if (n < 0 && errno == EINTR) continue;
            ok = n > 0;
            off += ok ? std::size_t(n) : 0;
        }
        ok = ::close(fd) == 0 && ok && ::rename(tmp.c_str(), path.c_str()) == 0;
        if (!ok) ::unlink(tmp.c_str());
        return ok;
    }

    // Stores a copy; a failure turns the cache off (with one warning).
    bool keep(std::string const& dir, handle const& h, byte_span data) {
        std::string const path = path_of(dir, h);
        if (h.type == file_type::pack) ::mkdir(path.substr(0, path.rfind('/')).c_str(), 0700);
        if (write_file(path, data)) return true;
        s_->warn(errno_error("cache: write " + path));
        return false;
    }

    // Whether the pack's copy is in place and checked, fetching it whole first if need be. Threads
    // asking for a pack being fetched wait for it.
    bool ensure(std::string const& dir, handle const& h, std::string const& path) {
        std::unique_lock lk(s_->mu);
        for (;;) {
            if (s_->checked.count(h.name)) return true;
            if (!s_->loading.count(h.name)) break;
            s_->loaded.wait(lk);
        }
        s_->loading.insert(h.name);
        lk.unlock();
        bool ok = matches(path, h.name);
        if (!ok) {
            ::unlink(path.c_str());
            bytes whole;
            ok = inner_.get(h, 0, 0, whole) && H::digest(whole).str() == h.name && keep(dir, h, whole);
        }
        lk.lock();
        s_->loading.erase(h.name);
        if (ok) s_->checked.insert(h.name);
        s_->loaded.notify_all();
        return ok;
    }

    // The requested part of a file read whole; `errc::corrupt` when it is shorter.
    static result<void> slice(std::string const& path, std::uint64_t off, std::uint64_t len, bytes& out) {
        if (off == 0 && len == 0) return {};
        if (len == 0) len = out.size() > off ? out.size() - off : 0;
        if (off + len > out.size())
            return make_error(errc::corrupt, path + ": file is shorter than expected (wanted bytes " + std::to_string(off) + "…" +
                                                 std::to_string(off + len) + ")");
        out.erase(out.begin(), out.begin() + std::ptrdiff_t(off));
        out.resize(len);
        return {};
    }

    // Removes the copies in `dir` that `keep_name` rejects, and temporary files left for an hour
    // (by a process killed while writing one).
    template <class Keep>
    static void sweep(std::string const& dir, Keep&& keep_name) {
        DIR* d = ::opendir(dir.c_str());
        if (!d) return;
        std::time_t const stale = std::time(nullptr) - 3600;
        while (dirent* e = ::readdir(d)) {
            std::string const name = e->d_name;
            if (name == "." || name == "..") continue;
            std::string const path = dir + "/" + name;
            if (name.size() == 64) {
                if (!keep_name(name)) ::unlink(path.c_str());
            } else if (name.find("-tmp-") != std::string::npos) {
                struct stat st;
                if (::stat(path.c_str(), &st) == 0 && st.st_mtime < stale) ::unlink(path.c_str());
            }
        }
        ::closedir(d);
    }

    B inner_;
    std::shared_ptr<state> s_;
};

}  // namespace stash::policies::backend
