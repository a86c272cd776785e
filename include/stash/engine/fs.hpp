// Reading and writing file-system metadata as restic nodes (Linux).
#pragma once

#include <stash/repo/tree.hpp>

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <string>
#include <unordered_map>

namespace stash::engine {

/// Caches uid → user name and gid → group name lookups (backups see the same few ids many times).
class name_cache {
public:
    std::string user(std::uint32_t uid) {
        return cached(users_, uid, [](std::uint32_t id, char* buf, std::size_t n) -> char const* {
            passwd pw, *res = nullptr;
            return getpwuid_r(id, &pw, buf, n, &res) == 0 && res ? res->pw_name : nullptr;
        });
    }
    std::string group(std::uint32_t gid) {
        return cached(groups_, gid, [](std::uint32_t id, char* buf, std::size_t n) -> char const* {
            struct ::group gr, *res = nullptr;
            return getgrgid_r(id, &gr, buf, n, &res) == 0 && res ? res->gr_name : nullptr;
        });
    }

private:
    using map = std::unordered_map<std::uint32_t, std::string>;

    // Looks `id` up once; an unknown id is remembered as an empty name (restic then omits it).
    template <class Lookup>
    std::string cached(map& m, std::uint32_t id, Lookup lookup) {
        std::lock_guard lk(mu_);
        auto [it, fresh] = m.try_emplace(id);
        if (fresh) {
            char buf[4096];
            if (char const* name = lookup(id, buf, sizeof buf)) it->second = name;
        }
        return it->second;
    }

    std::mutex mu_;
    map users_, groups_;
};

/// `p` made absolute and lexically normal, without a trailing '/' (except for "/" itself).
inline std::string absolute_path(std::string const& p) {
    auto a = std::filesystem::absolute(p).lexically_normal().string();
    while (a.size() > 1 && a.back() == '/') a.pop_back();
    return a;
}

inline timestamp to_timestamp(struct timespec ts) { return {ts.tv_sec, std::uint32_t(ts.tv_nsec), 0}; }

namespace detail {
// Extended attributes through `list(buf, n)` and `get(name, buf, n)` (by path or by descriptor),
// sorted by name, as listxattr order is not stable.
template <class List, class Get>
std::vector<repo::xattr> read_xattrs_with(List list, Get get) {
    std::vector<repo::xattr> out;
    ssize_t n = list(nullptr, 0);
    if (n <= 0) return out;
    std::string names(std::size_t(n), '\0');
    n = list(names.data(), names.size());
    if (n <= 0) return out;
    for (std::size_t p = 0; p < std::size_t(n);) {
        std::string name(names.c_str() + p);
        p += name.size() + 1;
        ssize_t vn = get(name.c_str(), nullptr, 0);
        if (vn < 0) continue;
        bytes v(static_cast<std::size_t>(vn));
        vn = get(name.c_str(), v.data(), v.size());
        if (vn < 0) continue;
        v.resize(std::size_t(vn));
        out.push_back({std::move(name), std::move(v)});
    }
    std::sort(out.begin(), out.end(), [](auto const& a, auto const& b) { return a.name < b.name; });
    return out;
}
}  // namespace detail

/// Reads a path's extended attributes (not following a symlink), sorted by name.
inline std::vector<repo::xattr> read_xattrs(std::string const& path) {
    return detail::read_xattrs_with([&](char* b, std::size_t n) { return ::llistxattr(path.c_str(), b, n); },
                                    [&](char const* k, void* b, std::size_t n) { return ::lgetxattr(path.c_str(), k, b, n); });
}

/// The same for an open file: no path lookup.
inline std::vector<repo::xattr> read_xattrs(int fd) {
    return detail::read_xattrs_with([&](char* b, std::size_t n) { return ::flistxattr(fd, b, n); },
                                    [&](char const* k, void* b, std::size_t n) { return ::fgetxattr(fd, k, b, n); });
}

/// Builds a node from `lstat` data (no content): type, mode, times, owner, inode, links, device.
inline repo::node node_from_stat(std::string name, struct stat const& st, name_cache& names) {
    using repo::node_type;
    repo::node n;
    n.name = std::move(name);
    switch (st.st_mode & S_IFMT) {
        case S_IFDIR: n.type = node_type::dir; break;
        case S_IFLNK: n.type = node_type::symlink; break;
        case S_IFBLK: n.type = node_type::dev; break;
        case S_IFCHR: n.type = node_type::chardev; break;
        case S_IFIFO: n.type = node_type::fifo; break;
        case S_IFSOCK: n.type = node_type::socket; break;
        default: n.type = node_type::file; break;
    }
    n.mode = repo::go_mode::from_posix(st.st_mode);
    n.mtime = to_timestamp(st.st_mtim), n.atime = to_timestamp(st.st_atim), n.ctime = to_timestamp(st.st_ctim);
    n.uid = st.st_uid, n.gid = st.st_gid;
    n.user = names.user(st.st_uid), n.group = names.group(st.st_gid);
    n.inode = st.st_ino;
    n.device_id = st.st_dev;
    if (n.type != node_type::dir && n.type != node_type::fifo) n.links = st.st_nlink;  // as restic 0.14 writes it
    if (n.type == node_type::file) n.size = std::uint64_t(st.st_size);
    if (n.type == node_type::dev || n.type == node_type::chardev) n.device = st.st_rdev;
    return n;
}

namespace detail {
// Owner (when permitted), mode, xattrs, times, in that order (a chown clears set-id bits), through
// `Ops`: by path or by file descriptor.
template <class Ops>
std::string apply_metadata_with(Ops const& op, std::string const& path, repo::node const& n, bool is_root) {
    std::string err;
    auto note = [&](char const* what) {
        if (err.empty()) err = std::string(what) + " " + path + ": " + std::strerror(errno);
    };
    // What the file already has needs no call (Ops::owned/has_perm: false when unknown).
    if (!op.owned(n.uid, n.gid) && op.chown(n.uid, n.gid) != 0 && (is_root || errno != EPERM)) note("chown");
    auto const perm = repo::go_mode::to_posix_perm(n.mode);
    if (n.type != repo::node_type::symlink && !op.has_perm(perm) && op.chmod(perm) != 0) note("chmod");
    for (auto const& x : n.xattrs)
        if (op.setxattr(x.name.c_str(), x.value.data(), x.value.size()) != 0 && errno != ENOTSUP && errno != EPERM) note("setxattr");
    struct timespec const ts[2] = {{n.atime.sec, long(n.atime.nsec)}, {n.mtime.sec, long(n.mtime.nsec)}};
    if (op.utimens(ts) != 0) note("set times of");
    return err;
}
}  // namespace detail

/// Applies a node's metadata to a restored path: owner (when permitted), mode, xattrs, times.
/// Returns the first error as a message, or empty.
inline std::string apply_metadata(std::string const& path, repo::node const& n, bool is_root) {
    struct by_path {
        char const* p;
        bool owned(uid_t, gid_t) const { return false; }
        bool has_perm(mode_t) const { return false; }
        int chown(uid_t u, gid_t g) const { return ::lchown(p, u, g); }
        int chmod(mode_t m) const { return ::chmod(p, m); }
        int setxattr(char const* k, void const* v, std::size_t len) const { return ::lsetxattr(p, k, v, len, 0); }
        int utimens(struct timespec const* ts) const { return ::utimensat(AT_FDCWD, p, ts, AT_SYMLINK_NOFOLLOW); }
    };
    return detail::apply_metadata_with(by_path{path.c_str()}, path, n, is_root);
}

/// The same for a regular file open as `fd` (written by restore): no path lookups, and one `fstat`
/// instead of a chown and a chmod that would change nothing (each of those also rewrites the inode's
/// ctime: together 4% of the CPU time of restoring `linux` to ext4). `path` names it in messages.
inline std::string apply_metadata(int fd, std::string const& path, repo::node const& n, bool is_root) {
    struct by_fd {
        int fd;
        struct stat st;
        bool known = ::fstat(fd, &st) == 0;
        bool owned(uid_t u, gid_t g) const { return known && st.st_uid == u && st.st_gid == g; }
        // A chown that changes the owner clears set-id bits, so those are always set again.
        bool has_perm(mode_t m) const { return known && (st.st_mode & 07777) == m && !(m & 06000); }
        int chown(uid_t u, gid_t g) const { return ::fchown(fd, u, g); }
        int chmod(mode_t m) const { return ::fchmod(fd, m); }
        int setxattr(char const* k, void const* v, std::size_t len) const { return ::fsetxattr(fd, k, v, len, 0); }
        int utimens(struct timespec const* ts) const { return ::futimens(fd, ts); }
    };
    return detail::apply_metadata_with(by_fd{fd, {}}, path, n, is_root);
}

}  // namespace stash::engine
