// A repository in a local directory, in restic's default layout.
#pragma once

#include <stash/concepts/backend.hpp>
#include <stash/core/hex.hpp>
#include <stash/crypto/random.hpp>
#include <stash/policies/backend/detail/direct_io.hpp>

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <iterator>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace stash::policies::backend {

/** Files under a directory as restic's local backend lays them out (restic-format.md §1.1):
    `config`, `keys/`, `locks/`, `snapshots/`, `index/`, `data/00…ff/`. Directories 0700, files 0400.

    `put` writes `<name>-tmp-<random>` in the target directory, fsyncs, closes and renames, so a reader
    (or a crash) never sees a partial file; listing skips names that are not 64 hex digits. Packs
    are the exception to the fsync: their write-back starts at once (`sync_file_range`) and the
    writer goes on, while their descriptors wait; the next other file (an index, a snapshot, a
    lock), or the 32nd waiting pack, first fsyncs them, so no index is durable before the packs it
    names. A write-back error fails that `put`. The disk then writes while the CPUs chunk and seal,
    as `dd conv=fsync` does, instead of stalling each worker on each pack.
    Packs are immutable once written, so reads of packs keep a few descriptors open (restores read
    many blobs from each pack).

    A pack can also be streamed while it is built: `stage` opens an unnamed file in `data/`
    (O_TMPFILE), and `commit` links it under its name and queues it for the same late fsync. A
    writer that fails or is killed leaves nothing behind. Staged files bypass the page cache
    (O_DIRECT, written on threads of the backend's: `detail::direct_io`) where the file system
    allows it; `commit` waits for their writes first.

    @par Concepts
    `stash::staging_backend`. Thread-safe: every call works on its own file descriptors.
*/
class local {
public:
    explicit local(std::string root) : root_(std::move(root)) {
        while (root_.size() > 1 && root_.back() == '/') root_.pop_back();
    }

    std::string location() const { return root_; }

    result<void> create() {
        struct stat st;
        if (::stat((root_ + "/config").c_str(), &st) == 0)
            return make_error(errc::already_exists, "repository " + root_ + " already exists (config file found)");
        if (::mkdir(root_.c_str(), 0700) != 0 && errno != EEXIST) return errno_error("create " + root_);
        for (auto t : {file_type::key, file_type::lock, file_type::snapshot, file_type::index, file_type::pack})
            STASH_TRYV(mkdir(root_ + "/" + dir_name(t)));
        for (int i = 0; i < 256; ++i) STASH_TRYV(mkdir(root_ + "/data/" + to_hex(std::array{std::byte(i)})));
        return {};
    }

    result<void> put(handle const& h, byte_span data) {
        std::string const path = path_of(h);
        std::array<std::byte, 8> rnd;
        crypto::random_bytes(rnd);
        std::string const tmp = path + "-tmp-" + to_hex(rnd);
        int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0 && errno == ENOENT && h.type == file_type::pack) {
            // Tolerate repositories whose data/XX directories were not all created.
            STASH_TRYV(mkdir(path.substr(0, path.rfind('/'))));
            fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        }
        if (fd < 0) return errno_error("create " + tmp);
        for (std::size_t off = 0; off < data.size();) {
            ssize_t n = ::write(fd, data.data() + off, data.size() - off);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) {
                auto e = errno_error("write " + tmp);
                ::close(fd), ::unlink(tmp.c_str());
                return e;
            }
            off += std::size_t(n);
        }
        bool const pack = h.type == file_type::pack;
        if (pack) ::sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);  // a hint: errors show in the fsync
        else STASH_TRYV(unsynced_->sync_all());                        // what this file may name is durable first
        if ((!pack && ::fsync(fd) != 0) || ::fchmod(fd, 0400) != 0) {
            auto e = errno_error("fsync " + tmp);
            ::close(fd), ::unlink(tmp.c_str());
            return e;
        }
        if (::rename(tmp.c_str(), path.c_str()) != 0) {
            auto e = errno_error("rename " + tmp);
            ::close(fd), ::unlink(tmp.c_str());
            return e;
        }
        if (!pack) {
            ::close(fd);
            return {};
        }
        return unsynced_->add(fd, path);
    }

    /// An unnamed file in `data/` (O_TMPFILE); `errc::unsupported` on a file system without them.
    result<staged_file> stage() {
        std::string const dir = root_ + "/data";
        int fd = ::open(dir.c_str(), O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
        if (fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL))
            return make_error(errc::unsupported, dir + ": the file system has no O_TMPFILE");
        if (fd < 0) return errno_error("create a staged file in " + dir);
        auto writer = direct_->open(fd, dir);
        return staged_file(fd, dir, std::move(writer));
    }

    /// Links a staged pack into place; it is fsynced with the packs `put` wrote (see above).
    result<void> commit(handle const& h, staged_file f) {
        if (h.type != file_type::pack) return make_error(errc::invalid_argument, "only packs are staged, not " + h.str());
        std::string const path = path_of(h);
        STASH_TRYV(f.finish());
        ::sync_file_range(f.fd(), 0, 0, SYNC_FILE_RANGE_WRITE);  // a hint: errors show in the fsync
        if (::fchmod(f.fd(), 0400) != 0) return errno_error("chmod the staged file for " + path);
        // linkat with AT_EMPTY_PATH needs CAP_DAC_READ_SEARCH; through /proc it needs nothing.
        std::string const proc = "/proc/self/fd/" + std::to_string(f.fd());
        auto link = [&] {
            return ::linkat(AT_FDCWD, proc.c_str(), AT_FDCWD, path.c_str(), AT_SYMLINK_FOLLOW) == 0 ||
                   ::linkat(f.fd(), "", AT_FDCWD, path.c_str(), AT_EMPTY_PATH) == 0;
        };
        bool linked = link();
        if (!linked && errno == ENOENT) {  // a repository whose data/XX directories were not all created
            STASH_TRYV(mkdir(path.substr(0, path.rfind('/'))));
            linked = link();
        }
        if (!linked && errno != EEXIST) return errno_error("link the staged file as " + path);
        return unsynced_->add(f.release(), path);
    }

    result<void> get(handle const& h, std::uint64_t off, std::uint64_t len, bytes& out) {
        std::string const path = path_of(h);
        auto fd = h.type == file_type::pack ? fds_->get(path) : open_fd(path);
        if (!fd) return std::move(fd).error();
        if (len == 0) {
            struct stat st;
            if (::fstat(**fd, &st) != 0) return errno_error("stat " + path);
            len = std::uint64_t(st.st_size) > off ? std::uint64_t(st.st_size) - off : 0;
        }
        out.resize(len);
        std::uint64_t got = 0;
        while (got < len) {
            ssize_t n = ::pread(**fd, out.data() + got, len - got, off_t(off + got));
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) return errno_error("read " + path);
            if (n == 0) break;
            got += std::uint64_t(n);
        }
        if (got != len)
            return make_error(errc::corrupt, path + ": file is shorter than expected (wanted bytes " + std::to_string(off) +
                                                 "…" + std::to_string(off + len) + ")");
        return {};
    }

    result<std::uint64_t> stat(handle const& h) {
        struct stat st;
        std::string const path = path_of(h);
        if (::stat(path.c_str(), &st) != 0) return errno_error("stat " + path);
        return std::uint64_t(st.st_size);
    }

    result<void> list(file_type t, list_fn const& fn) {
        if (t == file_type::config) return {};
        std::string const dir = root_ + "/" + dir_name(t);
        if (t != file_type::pack) return list_dir(dir, fn);
        for (int i = 0; i < 256; ++i) {
            auto r = list_dir(dir + "/" + to_hex(std::array{std::byte(i)}), fn);
            if (!r && !r.error().is(errc::not_found)) return r;
        }
        return {};
    }

    result<void> remove(handle const& h) {
        std::string const path = path_of(h);
        if (h.type == file_type::pack) fds_->forget(path);
        if (::unlink(path.c_str()) != 0) return errno_error("remove " + path);
        return {};
    }

    std::string path_of(handle const& h) const {
        switch (h.type) {
            case file_type::config: return root_ + "/config";
            case file_type::pack: return root_ + "/data/" + h.name.substr(0, 2) + "/" + h.name;
            default: return root_ + "/" + dir_name(h.type) + "/" + h.name;
        }
    }

private:
    // An open descriptor, closed when the last holder lets go (the cache may evict it meanwhile).
    using shared_fd = std::shared_ptr<int const>;

    static result<shared_fd> open_fd(std::string const& path) {
        int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) return errno_error("open " + path);
        return shared_fd(new int(fd), [](int const* p) { ::close(*p), delete p; });
    }

    // A small LRU of read descriptors of packs.
    class fd_cache {
    public:
        result<shared_fd> get(std::string const& path) {
            {
                std::lock_guard lk(mu_);
                if (auto it = map_.find(path); it != map_.end()) {
                    lru_.splice(lru_.begin(), lru_, it->second);
                    return it->second->second;
                }
            }
            auto fd = open_fd(path);
            if (!fd) return fd;
            std::lock_guard lk(mu_);
            if (!map_.count(path)) {
                lru_.emplace_front(path, *fd);
                map_[path] = lru_.begin();
                if (lru_.size() > capacity) {
                    map_.erase(lru_.back().first);
                    lru_.pop_back();
                }
            }
            return fd;
        }
        void forget(std::string const& path) {
            std::lock_guard lk(mu_);
            if (auto it = map_.find(path); it != map_.end()) lru_.erase(it->second), map_.erase(it);
        }

    private:
        static constexpr std::size_t capacity = 64;
        std::mutex mu_;
        std::list<std::pair<std::string, shared_fd>> lru_;
        std::unordered_map<std::string, std::list<std::pair<std::string, shared_fd>>::iterator> map_;
    };

    static result<void> mkdir(std::string const& p) {
        if (::mkdir(p.c_str(), 0700) != 0 && errno != EEXIST) return errno_error("create directory " + p);
        return {};
    }

    // Packs written but not yet fsynced, with the descriptors they were written through (a
    // write-back error is reported to those; a descriptor opened later might not see it).
    class unsynced_packs {
    public:
        static constexpr std::size_t max_waiting = 32;  // 512 MiB of 16 MiB packs
        ~unsynced_packs() {
            for (auto const& w : waiting_) ::close(w.first);
        }
        result<void> add(int fd, std::string path) {
            std::vector<std::pair<int, std::string>> due;
            {
                std::lock_guard lk(mu_);
                waiting_.emplace_back(fd, std::move(path));
                if (waiting_.size() > max_waiting) {  // the oldest, whose write-back has had the longest
                    auto const end = waiting_.begin() + 8;
                    due.assign(std::make_move_iterator(waiting_.begin()), std::make_move_iterator(end));
                    waiting_.erase(waiting_.begin(), end);
                }
            }
            return sync(std::move(due));
        }
        result<void> sync_all() {
            std::vector<std::pair<int, std::string>> due;
            {
                std::lock_guard lk(mu_);
                due.swap(waiting_);
            }
            return sync(std::move(due));
        }

    private:
        // A failed fsync sticks: no later index may name a pack whose data may be lost.
        result<void> sync(std::vector<std::pair<int, std::string>> due) {
            result<void> r;
            for (auto const& [fd, path] : due) {
                if (r && ::fsync(fd) != 0) r = errno_error("fsync " + path);
                ::close(fd);
            }
            std::lock_guard lk(mu_);
            if (!r && !failed_) failed_ = r.error();
            if (failed_) return *failed_;
            return {};
        }
        std::mutex mu_;
        std::vector<std::pair<int, std::string>> waiting_;
        std::optional<error> failed_;
    };

    static bool is_id(std::string_view n) noexcept {
        if (n.size() != 64) return false;
        for (char c : n)
            if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
        return true;
    }

    static result<void> list_dir(std::string const& dir, list_fn const& fn) {
        DIR* d = ::opendir(dir.c_str());
        if (!d) return errno_error("list " + dir);
        while (dirent* e = ::readdir(d)) {
            if (!is_id(e->d_name)) continue;
            struct stat st;
            if (::fstatat(::dirfd(d), e->d_name, &st, 0) == 0) fn(e->d_name, std::uint64_t(st.st_size));
        }
        ::closedir(d);
        return {};
    }

    std::string root_;
    std::shared_ptr<fd_cache> fds_ = std::make_shared<fd_cache>();
    std::shared_ptr<unsynced_packs> unsynced_ = std::make_shared<unsynced_packs>();
    std::shared_ptr<detail::direct_io> direct_ = std::make_shared<detail::direct_io>();
};
static_assert(stash::staging_backend<local>);

}  // namespace stash::policies::backend
