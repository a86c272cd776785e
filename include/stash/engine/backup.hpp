// Backup: walk → read → chunk → hash → dedup → compress → seal → pack → upload → trees → index → snapshot.
#pragma once

#include <stash/chunk/stream.hpp>
#include <stash/concepts/chunker.hpp>
#include <stash/concepts/compressor.hpp>
#include <stash/engine/detail/pool.hpp>
#include <stash/engine/filter.hpp>
#include <stash/engine/fs.hpp>
#include <stash/engine/progress.hpp>
#include <stash/engine/snapshots.hpp>
#include <stash/engine/tree_prefetch.hpp>

#include <dirent.h>
#include <sys/resource.h>

#include <deque>
#include <future>
#include <map>
#include <memory>

namespace stash::engine {

/// What to back up and how.
struct backup_options {
    std::vector<std::string> paths;     ///< files or directories; made absolute
    std::vector<std::string> excludes;  ///< restic-style patterns
    std::vector<std::string> tags;
    std::string hostname;               ///< default: this host
    std::optional<id> parent;           ///< default: latest snapshot of the same host and paths
    bool force = false;                 ///< re-read every file even if the parent has it unchanged
    std::optional<timestamp> time;      ///< snapshot time (default: now)
    unsigned threads = 0;               ///< workers; 0 = one per core
    std::size_t pack_size = 16 * 1024 * 1024;  ///< target pack size in bytes (restic's default)
    /// Nodes of the parent snapshot's trees fetched ahead of the walk, level by level, and not yet
    /// reached (a few hundred bytes each), for backends where each request waits on a network; 0
    /// (the default) loads each directory's parent tree when the walk lists the directory.
    std::size_t prefetch_nodes = 0;
    bool from_stdin = false;            ///< back up standard input as one file
    std::string stdin_filename = "stdin";
    int stdin_fd = 0;
    progress_fn on_progress;
    std::chrono::milliseconds progress_interval{1000};
    /// Called for each input that could not be read (path, message); the backup goes on.
    std::function<void(std::string const&, std::string const&)> on_error;
};

/// What a backup did, in restic's summary terms.
struct backup_summary {
    std::uint64_t files_new = 0, files_changed = 0, files_unmodified = 0;
    std::uint64_t dirs_new = 0, dirs_changed = 0, dirs_unmodified = 0;
    std::uint64_t data_blobs = 0, tree_blobs = 0;
    std::uint64_t data_added = 0;  ///< bytes stored in new packs (sealed blob sizes)
    std::uint64_t total_files_processed = 0, total_bytes_processed = 0;
    std::uint64_t errors = 0;      ///< inputs that could not be read
    double total_duration = 0;     ///< seconds
    id snapshot_id;
    std::optional<id> parent;
};

namespace detail {

template <class Repo, chunker Chunker, compressor Compressor>
class backup_run {
    using hasher = typename Repo::hasher_type;
    using node = repo::node;
    using node_type = repo::node_type;

    // A directory whose tree is being built: it is finalized (serialized, stored, linked into its
    // parent) by whichever thread completes its last pending child.
    struct dir_state {
        dir_state* parent = nullptr;
        std::size_t slot = 0;
        std::vector<node> nodes;
        std::vector<char> skip;
        std::optional<id> previous;  // the parent snapshot's tree for this directory
        std::vector<node> previous_nodes;  // and its nodes, when it could be loaded
        std::atomic<std::size_t> pending{1};
        int fd = -1;  // O_PATH descriptor its files are opened at (see dir_fd; closed in finalize), or -1: by path
        bool fd_tried = false;
    };

    struct counters {
        std::atomic<std::uint64_t> files_new{0}, files_changed{0}, files_unmodified{0}, dirs_new{0}, dirs_changed{0},
            dirs_unmodified{0}, data_blobs{0}, tree_blobs{0}, data_added{0};
    };

public:
    backup_run(Repo& repo, Chunker const& ch, backup_options const& opt)
        : repo_(repo), chunker_(ch), opt_(opt), excludes_(opt.excludes),
          threads_(opt.threads ? opt.threads : std::max(2u, std::thread::hardware_concurrency())),
          read_ahead_(read_ahead_budget(threads_)), compressors_(threads_ + 1), buffers_(threads_ + 1) {
        // Reserved, not touched: a packer's pages become resident only as it fills. (A compressor
        // writes into it at up to its bound: zstd's is the size plus 1/256.)
        for (unsigned i = 0; i <= threads_; ++i) packers_.emplace_back(opt.pack_size + ch.max_size() + ch.max_size() / 128 + 4096);
        for (unsigned i = 0; i < threads_; ++i) copies_.push_back(std::make_shared<scratch_bytes>());  // (empty until used)
    }

    result<backup_summary> run() {
        backup_summary sum;
        auto const start = std::chrono::steady_clock::now();
        std::optional<snapshot_entry> parent;
        std::vector<std::string> paths;
        if (opt_.from_stdin) {
            if (opt_.stdin_filename.empty() || opt_.stdin_filename.find('/') != std::string::npos)
                return make_error(errc::invalid_argument, "--stdin-filename must be a plain file name");
            paths.push_back("/" + opt_.stdin_filename);
        } else {
            if (opt_.paths.empty()) return make_error(errc::invalid_argument, "nothing to back up: no paths given");
            for (auto const& p : opt_.paths) {
                auto const a = absolute_path(p);
                struct stat st;
                if (::lstat(a.c_str(), &st) != 0) return errno_error("backup source " + a);
                paths.push_back(a);
            }
        }
        std::string const host = opt_.hostname.empty() ? repo::this_hostname() : opt_.hostname;
        if (opt_.parent) {
            auto s = repo_.load_snapshot(*opt_.parent);
            if (!s) return std::move(s).error();
            parent = snapshot_entry{*opt_.parent, std::move(*s)};
        } else if (!opt_.force) {
            snapshot_filter f{{host}, {}, paths};
            auto all = load_snapshots(repo_, f);
            if (!all) return std::move(all).error();
            if (!all->empty()) parent = std::move(all->back());
        }
        if (parent) sum.parent = parent->sid;

        std::vector<node> parent_root;
        if (parent && !opt_.force) {
            auto t = repo_.load_tree(parent->snap.tree);
            if (!t) return std::move(t).error();
            parent_root = std::move(*t);
            if (opt_.prefetch_nodes) {
                prefetch_.emplace(repo_, [](std::string const&, std::string const&) { return true; }, opt_.prefetch_nodes);
                prefetch_->start(parent_root, "");
            }
        }

        std::promise<id> root_id;
        auto root_future = root_id.get_future();
        {
            // As restic does: when progress is shown, a scanner runs ahead only to count what is to
            // do, so the totals (and the ETA) mean something long before the walker gets there.
            std::jthread scanner;
            if (opt_.on_progress && !opt_.from_stdin)
                scanner = std::jthread([this, &paths](std::stop_token st) {
                    for (auto const& p : paths) scan(p, st);
                });
            progress_reporter reporter(progress_, opt_.on_progress, opt_.progress_interval);
            pool_ = std::make_unique<pool>(threads_, 4 * threads_ + 16, 2 * threads_);
            auto* root = new dir_state;
            root_done_ = &root_id;
            if (opt_.from_stdin) {
                walk_stdin(root);
            } else {
                trie t;
                for (auto const& p : paths) {
                    trie* cur = &t;
                    if (p == "/") cur->target = true;
                    for (auto c : engine::detail::components(p)) cur = &cur->children[std::string(c)];
                    cur->target = true;
                }
                if (t.target) {
                    listing l;
                    if (parent && !opt_.force) l.previous = parent->snap.tree, l.previous_loaded = true;
                    l.previous_nodes = std::move(parent_root);
                    await(l);
                    walk_dir(root, l);
                } else {
                    walk_virtual(t, "", root, parent_root.empty() ? nullptr : &parent_root);
                }
            }
            batches_.flush(*pool_);
            root_future.wait();  // the walkers released their hold; workers finish the rest
            pool_->join();
            prefetch_.reset();
            reporter.finish();
        }
        for (auto& p : packers_) flush_packer(p);
        flush_packer(tree_packer_);
        for (auto& p : packers_) commit_sealed(p);
        commit_sealed(tree_packer_);
        if (failure_) return *failure_;
        // The index file is written last and is large (~200 bytes a blob): free the workers' pack and
        // read and copy buffers first, so the two peaks do not add up.
        packers_.clear(), buffers_.clear(), copies_.clear(), tree_packer_ = packer(0);
        STASH_TRYV(repo_.flush_index());

        repo::snapshot snap;
        snap.time = opt_.time ? *opt_.time : timestamp::now();
        if (parent) snap.parent = parent->sid;
        snap.tree = root_future.get();
        snap.paths = paths;
        snap.hostname = host;
        snap.username = Repo::current_user();
        snap.uid = ::getuid(), snap.gid = ::getgid();
        snap.excludes = opt_.excludes;
        snap.tags = opt_.tags;
        auto sid = repo_.save_unpacked(file_type::snapshot, snap.to_json());
        if (!sid) return std::move(sid).error();

        sum.snapshot_id = *sid;
        sum.files_new = c_.files_new, sum.files_changed = c_.files_changed, sum.files_unmodified = c_.files_unmodified;
        sum.dirs_new = c_.dirs_new, sum.dirs_changed = c_.dirs_changed, sum.dirs_unmodified = c_.dirs_unmodified;
        sum.data_blobs = c_.data_blobs, sum.tree_blobs = c_.tree_blobs, sum.data_added = c_.data_added;
        sum.total_files_processed = progress_.files_done, sum.total_bytes_processed = progress_.bytes_done;
        sum.errors = progress_.errors;
        sum.total_duration = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        return sum;
    }

private:
    using pool = engine::detail::pool;

    struct trie {
        bool target = false;
        std::map<std::string, trie> children;
    };

    // --- walker (runs on the calling thread, slot threads_) ------------------------------------

    static node const* find_node(std::vector<node> const* nodes, std::string const& name) {
        if (!nodes) return nullptr;
        auto it = std::lower_bound(nodes->begin(), nodes->end(), name, [](node const& n, std::string const& k) { return n.name < k; });
        if (it != nodes->end() && it->name == name) return &*it;
        for (auto const& n : *nodes)  // trees written by other tools may be unsorted
            if (n.name == name) return &n;
        return nullptr;
    }

    void report(std::string const& path, std::string const& msg) {
        ++progress_.errors;
        if (opt_.on_error) opt_.on_error(path, msg);
    }

    // Sizes a directory's node list; the walker holds one pending count until it has seen every child.
    static void prepare(dir_state* ds, std::size_t n) {
        ds->nodes.resize(n);
        ds->skip.assign(n, 0);
        ds->pending = n + 1;
    }

    void walk_virtual(trie const& t, std::string const& path, dir_state* ds, std::vector<node> const* prev) {
        prepare(ds, t.children.size());
        std::size_t i = 0;
        for (auto const& [name, child] : t.children) {
            std::string const full = path + "/" + name;
            node const* pn = find_node(prev, name);
            struct stat st;
            if (::lstat(full.c_str(), &st) != 0) {
                report(full, std::string("lstat: ") + std::strerror(errno));
                ds->skip[i] = 1;
                release(ds, threads_);
            } else if (child.target) {
                auto n = make_node(full, name, st, pn);
                if (!n) {
                    ds->skip[i] = 1;
                    release(ds, threads_);
                } else {
                    ds->nodes[i] = std::move(*n);
                    entry(ds, i, full, keep_unchanged(ds->nodes[i], pn), pn, nullptr);
                }
            } else {
                ds->nodes[i] = node_from_stat(name, st, names_);
                ds->nodes[i].xattrs = read_xattrs(full);
                auto* sub = new dir_state;
                sub->parent = ds, sub->slot = i;
                sub->previous = previous_subtree(pn);
                if (sub->previous) sub->previous_nodes = load_previous(*sub->previous);
                walk_virtual(child, full, sub, sub->previous_nodes.empty() ? nullptr : &sub->previous_nodes);
            }
            ++i;
        }
        release(ds, threads_);
    }

    // The entries of directory `path` ("" = the root) that are backed up, sorted by name: no excluded
    // paths and no sockets (restic 0.14 stores no node for them). With `report`, entries that cannot
    // be listed or stat'ed are reported as errors.
    std::vector<std::pair<std::string, struct stat>> read_dir(std::string const& path, bool report_errors) {
        std::vector<std::pair<std::string, struct stat>> entries;
        std::string const dpath = path.empty() ? "/" : path;
        DIR* d = ::opendir(dpath.c_str());
        if (!d) {
            if (report_errors) report(dpath, std::string("open directory: ") + std::strerror(errno));
            return entries;
        }
        while (dirent* e = ::readdir(d)) {
            std::string name = e->d_name;
            if (name == "." || name == "..") continue;
            std::string const full = path + "/" + name;
            if (!excludes_.empty() && excludes_.matches(full)) continue;
            struct stat st;
            if (::fstatat(::dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
                if (report_errors) report(full, std::string("lstat: ") + std::strerror(errno));
                continue;
            }
            if (S_ISSOCK(st.st_mode)) continue;
            entries.emplace_back(std::move(name), st);
        }
        ::closedir(d);
        std::sort(entries.begin(), entries.end(), [](auto const& a, auto const& b) { return a.first < b.first; });
        return entries;
    }

    // Setting or removing an extended attribute changes ctime: with the same inode and ctime, the
    // parent snapshot's attributes are still current, and a listxattr per entry is saved.
    static bool same_xattrs(node const& n, node const* pn) {
        return pn && pn->type == n.type && pn->inode == n.inode && pn->ctime == n.ctime;
    }

    // An entry's node from its lstat data: extended attributes (see same_xattrs; a regular file's are
    // read later through the descriptor its reader opens) and a symlink's target. Empty when the
    // entry cannot be read (reported).
    std::optional<node> make_node(std::string const& full, std::string const& name, struct stat const& st, node const* pn) {
        node n = node_from_stat(name, st, names_);
        if (same_xattrs(n, pn)) n.xattrs = pn->xattrs;
        else if (n.type != node_type::file) n.xattrs = read_xattrs(full);
        if (n.type == node_type::symlink) {
            std::string target(std::size_t(st.st_size ? st.st_size : 256), '\0');
            ssize_t len = ::readlink(full.c_str(), target.data(), target.size());
            if (len < 0) {
                report(full, std::string("readlink: ") + std::strerror(errno));
                return std::nullopt;
            }
            target.resize(std::size_t(len));
            n.linktarget = std::move(target);
        }
        return n;
    }

    // A directory read ahead of the walker, by an idle worker or else by the walker itself: its
    // entries as nodes, with the parent snapshot's version of it. The walker only hands the files out
    // and builds the trees; the system calls, parent trees and change checks are done here.
    struct listing {
        std::string path;
        std::optional<id> previous;         // the parent snapshot's tree of this directory
        bool previous_loaded = false;       // previous_nodes are given (the root)
        std::atomic<int> state{0};          // queued, being listed, done
        std::vector<node> nodes;            // sorted by name; files known unchanged carry their content
        std::vector<char> skip;             // entries that could not be read (reported)
        std::vector<char> same;             // files unchanged since the parent snapshot
        std::vector<node const*> prev;      // each entry's node in previous_nodes, or null
        std::vector<node> previous_nodes;   // when the previous tree could be loaded
    };
    static constexpr int queued = 0, listing_now = 1, listed = 2;

    void list(listing& l) {
        auto const entries = read_dir(l.path, true);
        if (l.previous && !l.previous_loaded) l.previous_nodes = load_previous(*l.previous);
        std::size_t const n = entries.size();
        l.nodes.resize(n), l.skip.assign(n, 0), l.same.assign(n, 0), l.prev.assign(n, nullptr);
        for (std::size_t i = 0; i < n; ++i) {
            auto const& [name, st] = entries[i];
            node const* pn = l.prev[i] = find_node(&l.previous_nodes, name);
            auto nd = make_node(l.path + "/" + name, name, st, pn);
            if (!nd) {
                l.skip[i] = 1;
                continue;
            }
            l.nodes[i] = std::move(*nd);
            l.same[i] = keep_unchanged(l.nodes[i], pn);
        }
    }

    // Claims and lists `l` on this thread, or waits for the worker that has it.
    void await(listing& l) {
        int s = queued;
        if (l.state.compare_exchange_strong(s, listing_now)) {
            list(l);
            l.state = listed;
            return;
        }
        while ((s = l.state.load()) != listed) l.state.wait(s);
    }
    // A worker's read-ahead task: lists `l` unless the walker already took it.
    void list_ahead(listing& l) {
        int s = queued;
        if (!l.state.compare_exchange_strong(s, listing_now)) return;
        list(l);
        l.state = listed;
        l.state.notify_all();
    }

    void walk_dir(dir_state* ds, listing& l) {
        std::string const path = std::move(l.path);
        ds->nodes = std::move(l.nodes);
        ds->skip = std::move(l.skip);
        ds->previous = l.previous;
        ds->previous_nodes = std::move(l.previous_nodes);  // (moving keeps the addresses in l.prev)
        std::size_t const n = ds->nodes.size();
        ds->pending = n + 1;  // the walker's hold until it has seen every entry
        // Subdirectories are queued for reading ahead last first: idle workers take the newest
        // first, so the one the walker reaches next is read first (depth-first, as the walk goes).
        std::vector<std::shared_ptr<listing>> subs(n);
        for (std::size_t i = n; i-- > 0;) {
            if (ds->skip[i] || ds->nodes[i].type != node_type::dir) continue;
            subs[i] = sub_listing(path + "/" + ds->nodes[i].name, l.prev[i]);
            pool_->submit_ahead([this, sub = subs[i]](unsigned) { list_ahead(*sub); });
        }
        for (std::size_t i = 0; i < n; ++i) {
            if (ds->skip[i]) {
                release(ds, threads_);
                continue;
            }
            entry(ds, i, path + "/" + ds->nodes[i].name, l.same[i], l.prev[i], subs[i].get());
        }
        release(ds, threads_);
    }

    std::shared_ptr<listing> sub_listing(std::string path, node const* pn) {
        auto l = std::make_shared<listing>();
        l->path = std::move(path);
        l->previous = previous_subtree(pn);
        return l;
    }

    // The parent snapshot's tree of a directory whose parent-snapshot node is `pn`, if it has one.
    static std::optional<id> previous_subtree(node const* pn) {
        if (pn && pn->type == node_type::dir && pn->subtree) return *pn->subtree;
        return std::nullopt;
    }
    // A parent tree that cannot be loaded only costs speed: its files are read again (empty).
    std::vector<node> load_previous(id const& tree) {
        auto t = prefetch_ ? prefetch_->take(tree) : repo_.load_tree(tree);
        return t ? std::move(*t) : std::vector<node>{};
    }

    // Hands out entry i of `ds`, whose node is filled in: a file to read (unless `same`), a
    // directory to walk (listed ahead in `sub`, or here when null).
    void entry(dir_state* ds, std::size_t i, std::string const& full, bool same, node const* pn, listing* sub) {
        node const& n = ds->nodes[i];
        if (failure_flag_) {
            ds->skip[i] = 1;
            release(ds, threads_);
            return;
        }
        switch (n.type) {
            case node_type::file: {
                if (!opt_.on_progress) ++progress_.files_total, progress_.bytes_total += n.size;  // else the scanner counts
                if (same) {
                    ++c_.files_unmodified;
                    ++progress_.files_done;
                    progress_.bytes_done += n.size;
                    release(ds, threads_);
                } else {
                    bool const known = pn && pn->type == node_type::file;
                    dir_fd(ds, full, n.name);
                    batches_.add(*pool_, {ds, i, full, known, !same_xattrs(n, pn)}, n.size);
                }
                break;
            }
            case node_type::dir: {
                std::shared_ptr<listing> own;
                if (!sub) own = sub_listing(full, pn), sub = own.get();
                await(*sub);
                auto* child = new dir_state;
                child->parent = ds, child->slot = i;
                walk_dir(child, *sub);
                break;
            }
            default: release(ds, threads_); break;
        }
    }

    // Opens the directory of a file to read (`full` = its path, `name` its last component) once, so
    // workers open its files with openat: one component to look up instead of the whole path. At
    // most max_dir_fds are held (released when the directory's tree is built); beyond, and if the
    // open fails, files are opened by path. Walker only, before the directory's first file is queued.
    static constexpr int max_dir_fds = 256;
    void dir_fd(dir_state* ds, std::string const& full, std::string const& name) {
        if (ds->fd_tried) return;
        ds->fd_tried = true;
        if (dir_fds_.load() >= max_dir_fds) return;
        std::string const dir = full.size() > name.size() + 1 ? full.substr(0, full.size() - name.size() - 1) : "/";
        ds->fd = ::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (ds->fd >= 0) ++dir_fds_;
    }

    // Counts the files and bytes of backup path `path` into the progress totals (lstat only).
    void scan(std::string const& path, std::stop_token const& st) {
        struct stat sb;
        if (::lstat(path.c_str(), &sb) != 0) return;
        if (S_ISREG(sb.st_mode)) ++progress_.files_total, progress_.bytes_total += std::uint64_t(sb.st_size);
        else if (S_ISDIR(sb.st_mode)) scan_dir(path == "/" ? "" : path, st);
    }
    void scan_dir(std::string const& path, std::stop_token const& st) {
        if (st.stop_requested()) return;
        for (auto const& [name, sb] : read_dir(path, false)) {
            if (S_ISDIR(sb.st_mode)) scan_dir(path + "/" + name, st);
            else if (S_ISREG(sb.st_mode)) ++progress_.files_total, progress_.bytes_total += std::uint64_t(sb.st_size);
        }
    }

    // A file unchanged since the parent snapshot takes its content from there (it is not read).
    bool keep_unchanged(node& n, node const* pn) const {
        if (n.type != node_type::file || !unchanged(n, pn)) return false;
        n.content = pn->content;
        return true;
    }

    // restic's change detection: same type, mtime, ctime, size and inode, and all content still indexed.
    bool unchanged(node const& n, node const* pn) const {
        if (opt_.force || !pn || pn->type != node_type::file) return false;
        if (pn->mtime != n.mtime || pn->ctime != n.ctime || pn->size != n.size || pn->inode != n.inode) return false;
        if (pn->content.empty() && n.size != 0) return false;
        for (auto const& b : pn->content)
            if (!repo_.index().has(b, repo::blob_type::data)) return false;
        return true;
    }

    void walk_stdin(dir_state* root) {
        prepare(root, 1);
        node& n = root->nodes[0];
        n.name = opt_.stdin_filename;
        n.type = node_type::file;
        n.mode = 0644;
        n.mtime = n.atime = n.ctime = timestamp::now();
        n.uid = ::getuid(), n.gid = ::getgid();
        n.user = names_.user(n.uid), n.group = names_.group(n.gid);
        ++progress_.files_total;
        pool_->submit_file([this, root](unsigned self) { read_fd(root, 0, "stdin", opt_.stdin_fd, false, self); });
        release(root, threads_);
    }

    // A file for a worker to read: slot i of directory ds.
    struct file_item {
        dir_state* ds;
        std::size_t i;
        std::string path;
        bool known;
        bool xattrs;  // read its extended attributes (through the open descriptor)
    };

    // --- workers --------------------------------------------------------------------------------

    void read_file(dir_state* ds, std::size_t i, std::string const& path, bool known, bool xattrs, unsigned self) {
        int const fd = open_file(ds, i, path, xattrs, self);
        if (fd < 0) return;
        read_fd(ds, i, path, fd, known, self);
        ::close(fd);
    }

    // Opens file i of ds for reading (and reads its extended attributes if asked), or reports it,
    // marks it skipped and releases it: -1. Also -1 (skipped) once the backup has failed.
    int open_file(dir_state* ds, std::size_t i, std::string const& path, bool xattrs, unsigned self) {
        if (failure_flag_) {
            ds->skip[i] = 1;
            release(ds, self);
            return -1;
        }
        int const at = ds->fd >= 0 ? ds->fd : AT_FDCWD;
        char const* const rel = ds->fd >= 0 ? ds->nodes[i].name.c_str() : path.c_str();
        int fd = ::openat(at, rel, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOATIME);
        if (fd < 0 && errno == EPERM) fd = ::openat(at, rel, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0) {
            report(path, std::string("open: ") + std::strerror(errno));
            ds->skip[i] = 1;
            release(ds, self);
            return -1;
        }
        if (xattrs) ds->nodes[i].xattrs = read_xattrs(fd);
        return fd;
    }

    // A batch of small files (each under file_batches::alone_bytes when listed): each is read whole
    // into the worker's buffer, and once ~2 MiB are in, all their chunks are hashed in one call
    // (digest_all: a batch_hasher runs sixteen in SIMD lanes, ~2x one stream) and then stored file by
    // file, as read_fd would. A file that turns out larger than 4 MiB (it grew since it was listed,
    // or it is a /proc file listed as empty) is read again as a stream.
    //
    // Files are opened up to read_ahead_ ahead of the one being read, and the kernel is asked to
    // read each in (POSIX_FADV_WILLNEED), so that with the page cache cold the disk has that many
    // reads at a time from each worker instead of one (`linux` from a cold cache: 4.5-5.0 s
    // instead of 8.1-9.8 s).
    void read_batch(std::span<file_item const> files, unsigned self) {
        if (!batch_hasher<hasher> || files.size() == 1) {
            for (auto const& f : files) read_file(f.ds, f.i, f.path, f.known, f.xattrs, self);
            return;
        }
        // Room for a batch that has not reached batch_fill plus one file of up to read_limit.
        std::byte* const buf = buffers_[self].get(std::max(2 * chunker_.max_size(), batch_fill + read_limit));
        std::vector<batched_file> read;
        std::size_t used = 0;
        std::vector<int> fds(files.size(), -1);
        std::size_t opened = 0;
        for (std::size_t k = 0; k < files.size(); ++k) {
            for (; opened < std::min(files.size(), k + 1 + read_ahead_); ++opened) {
                auto const& f = files[opened];
                fds[opened] = open_file(f.ds, f.i, f.path, f.xattrs, self);
                if (fds[opened] >= 0) ::posix_fadvise(fds[opened], 0, 0, POSIX_FADV_WILLNEED);
            }
            auto const& f = files[k];
            if (used >= batch_fill) store_batch(read, buf, self), read.clear(), used = 0;
            int const fd = fds[k];
            if (fd < 0) continue;
            auto n = read_whole(fd, mutable_byte_span(buf + used, read_limit), f.ds->nodes[f.i].size);
            if (!n) {
                report(f.path, n.error().what());
                f.ds->skip[f.i] = 1;
                release(f.ds, self);
            } else if (!*n) {  // too large: the batch so far first, as the stream reuses the buffer
                store_batch(read, buf, self), read.clear(), used = 0;
                if (::lseek(fd, 0, SEEK_SET) == 0) {
                    read_fd(f.ds, f.i, f.path, fd, f.known, self);
                } else {
                    report(f.path, errno_error("lseek").what());
                    f.ds->skip[f.i] = 1;
                    release(f.ds, self);
                }
            } else {
                read.push_back({&f, used, **n});
                used += **n;
            }
            ::close(fd);
        }
        store_batch(read, buf, self);
    }
    static constexpr std::size_t batch_fill = 2 << 20, read_limit = 4 << 20;

    // Files each worker may hold open ahead: up to 64, within half of RLIMIT_NOFILE's soft limit
    // less the directories held (max_dir_fds), shared by the workers (a 1024 limit: 64 each for
    // up to 4 workers, 4 each for 64).
    static std::size_t read_ahead_budget(unsigned threads) noexcept {
        struct rlimit rl {};
        if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) return 0;
        std::size_t const room = rl.rlim_cur / 2 > std::size_t(max_dir_fds) ? rl.rlim_cur / 2 - max_dir_fds : 0;
        return std::min<std::size_t>(64, room / threads);
    }
    struct batched_file {
        file_item const* f;
        std::size_t offset, size;  // in the worker's buffer
    };

    // Reads fd to its end into `into`: the bytes read, or nullopt when they do not fit. A short read
    // that reaches the listed size `expected` ends it (the read that would return 0 is skipped).
    static result<std::optional<std::size_t>> read_whole(int fd, mutable_byte_span into, std::uint64_t expected) {
        std::size_t got = 0;
        for (;;) {
            if (got == into.size()) return std::optional<std::size_t>();
            ssize_t const r = ::read(fd, into.data() + got, into.size() - got);
            if (r < 0 && errno == EINTR) continue;
            if (r < 0) return errno_error("read");
            if (r == 0) return std::optional<std::size_t>(got);
            got += std::size_t(r);
            if (got == expected && got < into.size()) return std::optional<std::size_t>(got);
        }
    }

    // Cuts the files read into `buf` into chunks, hashes them all at once, and keeps each file's.
    void store_batch(std::vector<batched_file> const& read, std::byte const* buf, unsigned self) {
        if (read.empty()) return;
        std::vector<byte_span> chunks;
        std::vector<std::size_t> first;  // a file's first chunk
        for (auto const& r : read) {
            first.push_back(chunks.size());
            for (byte_span rest(buf + r.offset, r.size); !rest.empty();) {
                std::size_t const n = chunker_.cut(rest);
                chunks.push_back(rest.first(n));
                rest = rest.subspan(n);
            }
        }
        first.push_back(chunks.size());
        std::vector<id> ids(chunks.size());
        digest_all<hasher>(chunks, ids);
        for (std::size_t k = 0; k < read.size(); ++k) {
            file_item const& f = *read[k].f;
            for (std::size_t c = first[k]; c < first[k + 1]; ++c) {
                progress_.bytes_done += chunks[c].size();
                keep_chunk(ids[c], chunks[c], self);
            }
            finish_file(f.ds, f.i, std::vector<id>(ids.begin() + std::ptrdiff_t(first[k]), ids.begin() + std::ptrdiff_t(first[k + 1])),
                        read[k].size, f.known, self);
        }
    }

    void read_fd(dir_state* ds, std::size_t i, std::string const& path, int fd, bool known, unsigned self) {
        node& n = ds->nodes[i];
        // A short read that reaches the size the listing saw is the end of a regular file: the read
        // that would return 0 is skipped (one syscall of the ~6 a small file costs). A file that grew
        // since reads on as usual.
        std::uint64_t got = 0;
        bool at_end = false;
        auto reader = [fd, &got, &at_end, expected = n.size](mutable_byte_span buf) -> result<std::size_t> {
            if (at_end) return std::size_t(0);
            for (;;) {
                ssize_t r = ::read(fd, buf.data(), buf.size());
                if (r < 0 && errno == EINTR) continue;
                if (r < 0) return errno_error("read");
                got += std::uint64_t(r);
                at_end = r > 0 && std::size_t(r) < buf.size() && got == expected;
                return std::size_t(r);
            }
        };
        chunk::stream<Chunker, decltype(reader)> s(chunker_, reader, buffers_[self]);
        auto file = std::make_shared<file_in_flight>(ds, i, known);
        std::uint64_t size = 0;
        for (;;) {
            auto c = s.next();
            if (!c) {
                report(path, c.error().what());
                file->failed = true;
                break;
            }
            if (!*c) break;
            size += (*c)->size();
            progress_.bytes_done += (*c)->size();
            if (hand_off(file, **c, self)) continue;
            // With the next chunk already at hand, the two are hashed together (digest_all: side
            // by side on SHA-NI).
            byte_span chunks[2] = {**c, {}};
            id ids[2];
            std::size_t k = 1;
            if (auto d = s.next_buffered()) {
                chunks[k++] = *d;
                size += d->size();
                progress_.bytes_done += d->size();
            }
            digest_all<hasher>(std::span<byte_span const>(chunks, k), std::span<id>(ids, k));
            for (std::size_t j = 0; j < k; ++j) {
                file->content.push_back(ids[j]);
                keep_chunk(ids[j], chunks[j], self);
            }
        }
        if (size > release_threshold) release_tail(buffers_[self]);
        file->size = size;
        done_with(*file, self);
    }

    // A large file being read: its chunks' IDs in order, some still being hashed on other workers
    // (hand_off). Whoever finishes last (the reader or a worker) completes the file's node.
    struct file_in_flight {
        file_in_flight(dir_state* d, std::size_t n, bool k) : ds(d), i(n), known(k) {}
        dir_state* ds;
        std::size_t i;
        bool known;
        bool failed = false;  // a read failed: the file is skipped (set by the reader)
        std::uint64_t size = 0;
        std::deque<id> content;  // (a deque: a worker writes its slot while the reader appends)
        std::atomic<unsigned> pending{1};  // chunks handed off and not yet hashed, +1 while reading
    };
    void done_with(file_in_flight& f, unsigned self) {
        if (f.pending.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
        if (f.failed) {
            f.ds->skip[f.i] = 1;
            release(f.ds, self);
        } else {
            finish_file(f.ds, f.i, std::vector<id>(f.content.begin(), f.content.end()), f.size, f.known, self);
        }
    }

    // Copies a large chunk into a task for another worker, which hashes and keeps it, when workers
    // would otherwise run dry and a copy buffer is free: false (the caller keeps it) otherwise. The
    // reader then only reads and cuts: hashing there too left it the pipeline's slowest stage (one
    // large file: ~15% of the other core idle).
    bool hand_off(std::shared_ptr<file_in_flight> const& file, byte_span chunk, unsigned self) {
        auto copy = copy_to_hand_off(chunk);
        if (!copy) return false;
        id* const slot = &file->content.emplace_back();
        file->pending.fetch_add(1, std::memory_order_relaxed);
        pool_->submit_blob([this, file, slot, copy, n = chunk.size()](unsigned w) {
            byte_span const c(copy->data(), n);
            *slot = hasher::digest(c);
            if (repo_.claim(*slot, repo::blob_type::data)) store_blob(*slot, repo::blob_type::data, c, w);
            give_back(copy, n);
            done_with(*file, w);
        }, self);
        return true;
    }

    // Stores chunk `bid` of a file if no other has it (claim).
    void keep_chunk(id const& bid, byte_span chunk, unsigned self) {
        if (!repo_.claim(bid, repo::blob_type::data)) return;
        if (auto copy = copy_to_hand_off(chunk); !copy) {
            store_blob(bid, repo::blob_type::data, chunk, self);
        } else {
            pool_->submit_blob([this, bid, copy, n = chunk.size()](unsigned w) {
                store_blob(bid, repo::blob_type::data, byte_span(copy->data(), n), w);
                give_back(copy, n);
            }, self);
        }
    }

    // A large chunk becomes a task of its own when workers would otherwise run dry (one big file
    // then keeps every core busy): a copy of it, or null while files wait for every worker, or
    // each worker's copy is still in use (the caller then keeps it in place rather than copy it).
    std::shared_ptr<scratch_bytes> copy_to_hand_off(byte_span chunk) {
        std::shared_ptr<scratch_bytes> copy;
        if (chunk.size() < 256 * 1024 || !pool_->wants_work() || !(copy = take_copy_buffer())) return nullptr;
        std::memcpy(copy->get(chunk.size()), chunk.data(), chunk.size());
        return copy;
    }

    void finish_file(dir_state* ds, std::size_t i, std::vector<id> content, std::uint64_t size, bool known, unsigned self) {
        node& n = ds->nodes[i];
        n.content = std::move(content);
        n.size = size;
        ++(known ? c_.files_changed : c_.files_new);
        ++progress_.files_done;
        release(ds, self);
    }

    // Large files fill the read buffer past chunk::stream's window (4 MiB for most chunks, a
    // chunk's size plus 1 MiB for long ones); hand the pages past 2 MiB back afterwards so each
    // worker's buffer is resident that far only while it reads a large file. Below 2 MiB the pages
    // stay, so files of 1–2 MiB (44 of the 84 past 1 MiB in `linux`) do not refault them: a few
    // percent of a backup's system time (0.58–0.61 → 0.55–0.57 s for `linux-edit`) for up to 2 MiB
    // more peak. At 4 MiB the peak grew by up to 5 MiB for no further gain (and with the stream's
    // 2 MiB windows, no faster: 2.72 vs 2.68 s, 8 runs each).
    static constexpr std::size_t release_threshold = 2 << 20;
    static void release_tail(scratch_bytes& buf) { release_pages(buf.data() + release_threshold, buf.data() + buf.size()); }

    // The buffers of chunk copies handed to another worker: at most one per worker, kept for the
    // next copy (none free: the chunk is stored in place). A fresh buffer for each large chunk was
    // a fresh mapping (past malloc's mmap threshold), faulted in page by page and unmapped after
    // one use: backing up random.bin (2 GB, one file) took 600,000 page faults, 81% of them in
    // that copy. One per worker suffices to keep the others busy; more (up to the blob queue's
    // capacity) held 25 MiB more at peak for no gain. A kept buffer holds its first 2 MiB (in huge
    // pages, a chunk past that refaults 2 MiB at a time), not the largest chunk it ever held.
    std::shared_ptr<scratch_bytes> take_copy_buffer() {
        std::lock_guard lk(copies_mu_);
        if (copies_.empty()) return nullptr;
        auto b = std::move(copies_.back());
        copies_.pop_back();
        return b;
    }
    void give_back(std::shared_ptr<scratch_bytes> b, std::size_t used) {
        if (used > release_threshold) release_pages(b->data() + release_threshold, b->data() + used);
        std::lock_guard lk(copies_mu_);
        copies_.push_back(std::move(b));
    }

    // Compresses, seals and packs one new blob on worker `self` (its own packer and compressor): the
    // compressor writes its frame straight into the pack buffer, where it is sealed in place.
    void store_blob(id const& bid, repo::blob_type t, byte_span plain, unsigned self) {
        std::uint32_t ulen = 0;
        auto const& sealer = repo_.sealer();
        // In v2 trees are compressed even when data is not, as restic does.
        bool compressed = repo_.compression() && !plain.empty() && (Compressor::enabled || t == repo::blob_type::tree);
        if constexpr (probes_compressibility<Compressor>) {
            if (compressed && t == repo::blob_type::data) compressed = compressors_[self].worth_compressing(plain);
        }
        if (compressed) ulen = std::uint32_t(plain.size());
        auto seal_into = [&](bytes& out) {
            std::size_t const before = out.size();
            if (!compressed) {
                sealer.seal(plain, out);
            } else if constexpr (Compressor::enabled) {
                sealer.seal_append(out, [&](bytes& o) { compressors_[self].compress(plain, o); });
            } else {
                sealer.seal_append(out, [&](bytes& o) { compress::zstd_compress_frame(plain, o); });
            }
            c_.data_added += out.size() - before;
        };
        (t == repo::blob_type::data ? c_.data_blobs : c_.tree_blobs)++;
        if (t == repo::blob_type::tree) {
            std::lock_guard lk(tree_mu_);
            add_to(tree_packer_, bid, t, ulen, seal_into);
        } else {
            add_to(packers_[self], bid, t, ulen, seal_into);
        }
    }

    // A pack under construction. On a backend that stages files (a local repository), its bytes go
    // to a staged file each time `spill` of them gather, so a packer holds about that plus one blob
    // instead of a whole pack (16–24 MiB for each worker filling one); elsewhere it is built whole.
    struct packer {
        repo::pack_builder b;
        std::optional<typename Repo::pack_stream> stream;
        std::optional<typename Repo::sealed_pack> sealed;  // the one before, not committed yet
        explicit packer(std::size_t reserve) : b(reserve) {}
    };
    static constexpr std::size_t spill = 1 << 20;
    // A streamed packer's pages past this are handed back after a blob that reached them. Blobs of
    // a large file are chunks of 0.5–8 MiB: at 2 MiB most of them refaulted pages handed back after
    // the one before (random.bin: 110,000 faults left, 84% in the compressor's output), at 4 MiB
    // 37,000-46,000 and 6.4 s instead of 8.3 s; 8 MiB was no faster within the noise and held
    // 5 MiB more at peak.
    static constexpr std::size_t streamed_keep = 4 * spill;

    template <class Seal>
    void add_to(packer& p, id const& bid, repo::blob_type t, std::uint32_t ulen, Seal const& seal_into) {
        p.b.add(bid, t, ulen, seal_into);
        if (p.b.size() >= opt_.pack_size) return flush_packer(p);
        if (p.b.buffered() < spill || !staging_ || failure_flag_) return;
        if (!p.stream) {
            auto s = repo_.begin_pack_stream();
            if (!s) return fail(s.error());
            if (!*s) {
                staging_ = false;  // the backend cannot: build packs in memory
                return;
            }
            p.stream = std::move(**s);
        }
        bool const big = p.b.buffered() > streamed_keep;  // a large blob touched pages past the usual fill
        if (auto r = p.b.drain([&](byte_span d) { return p.stream->append(d); }); !r) return fail(r.error());
        if (big) p.b.release_pages(streamed_keep);
    }

    // A streamed pack is committed when its packer's next one is done (or at the end), not at once:
    // its last writes then finish while the worker fills the next pack. Waiting for them (all of
    // direct_io's blocks may be in flight) took 0.28 s of a 3.5 s backup of random.bin.
    void flush_packer(packer& p) {
        if (p.b.empty() || failure_flag_) return;  // (reset keeps the reserved buffer; a stream is dropped)
        byte_span tail = p.b.finish(repo_.sealer());
        bool const streamed = p.stream.has_value();
        result<void> r;
        if (streamed) {
            auto s = repo_.seal_pack(std::move(*p.stream), tail, p.b.entries());
            if (s) commit_sealed(p), p.sealed = std::move(*s);
            else r = s.error();
        } else if (auto s = repo_.save_pack(tail, p.b.entries()); s) {
            flush_index_when_due();
        } else {
            r = s.error();
        }
        p.stream.reset();
        p.b.reset();
        p.b.release_pages(streamed ? streamed_keep : 0);
        if (!r) fail(r.error());
    }
    void commit_sealed(packer& p) {
        if (!p.sealed || failure_flag_) return;
        auto r = repo_.commit_pack(std::move(*p.sealed));
        p.sealed.reset();
        if (!r) return fail(r.error());
        flush_index_when_due();
    }
    void flush_index_when_due() {
        if (repo_.pending_index_blobs() < repo::index_file_blobs) return;
        if (auto f = repo_.flush_index(); !f) fail(f.error());
    }

    void fail(error e) {
        std::lock_guard lk(fail_mu_);
        if (!failure_) failure_ = std::move(e);
        failure_flag_ = true;
    }

    // --- trees ----------------------------------------------------------------------------------

    void release(dir_state* ds, unsigned self) {
        if (--ds->pending == 0) finalize(ds, self);
    }

    void finalize(dir_state* ds, unsigned self) {
        if (ds->fd >= 0) {
            ::close(std::exchange(ds->fd, -1));
            --dir_fds_;
        }
        std::vector<node> nodes;
        nodes.reserve(ds->nodes.size());
        for (std::size_t i = 0; i < ds->nodes.size(); ++i)
            if (!ds->skip[i]) nodes.push_back(std::move(ds->nodes[i]));
        id tid;
        if (ds->previous && !ds->previous_nodes.empty() && nodes == ds->previous_nodes) {
            tid = *ds->previous;  // the parent snapshot's tree, as stored: nothing to serialize or hash
        } else {
            std::string const json = repo::tree_json(nodes);
            tid = hasher::digest(as_bytes(json));
            if (repo_.claim(tid, repo::blob_type::tree)) store_blob(tid, repo::blob_type::tree, as_bytes(json), self);
        }
        dir_state* parent = ds->parent;
        if (!parent) {
            delete ds;
            root_done_->set_value(tid);
            return;
        }
        if (ds->previous == tid) ++c_.dirs_unmodified;
        else ++(ds->previous ? c_.dirs_changed : c_.dirs_new);
        parent->nodes[ds->slot].subtree = tid;
        delete ds;
        release(parent, self);
    }

    Repo& repo_;
    Chunker const& chunker_;
    backup_options const& opt_;
    path_filter excludes_;
    unsigned threads_;
    std::size_t read_ahead_;  // files opened ahead in a batch, per worker (read_batch)
    std::unique_ptr<pool> pool_;
    std::optional<engine::tree_prefetch<Repo>> prefetch_;  // the parent snapshot's trees, on network backends
    std::vector<packer> packers_;
    std::vector<Compressor> compressors_;
    std::vector<scratch_bytes> buffers_;  // read buffers (chunk::stream), one per worker
    std::mutex copies_mu_;
    std::vector<std::shared_ptr<scratch_bytes>> copies_;  // the free ones (take_copy_buffer)
    std::mutex tree_mu_;
    packer tree_packer_{0};
    std::atomic<bool> staging_{true};  // until the backend says it cannot stage files
    name_cache names_;
    progress_counters progress_;
    counters c_;
    std::promise<id>* root_done_ = nullptr;
    std::mutex fail_mu_;
    std::optional<error> failure_;
    std::atomic<bool> failure_flag_{false};
    std::atomic<int> dir_fds_{0};  // directory descriptors held (dir_fd)
    engine::detail::file_batches<file_item> batches_{
        [this](std::span<file_item const> files, unsigned self) {
            read_batch(files, self);
        }};
};

}  // namespace detail

/** Backs up `opt.paths` (or standard input) into `repo` and writes a snapshot.

    Files are chunked by `ch`, new blobs compressed by `Compressor` (v2) and sealed, on one worker per
    core; the walker runs ahead with bounded queues. Unchanged files (restic's rule: same mtime,
    ctime, size and inode as in the parent snapshot) are not read; the parent's trees are loaded as
    directories are listed, or with `opt.prefetch_nodes` ahead of the walk, level by level, many a
    request (for network backends). Packs are uploaded before the index
    that lists them, and the snapshot last, so an interrupted backup leaves a valid repository.
    Descriptors: up to 256 directories, and per worker the file being read plus up to 64 small
    files opened ahead with POSIX_FADV_WILLNEED (within half of RLIMIT_NOFILE's soft limit).

    Inputs that cannot be read are reported through `opt.on_error`, counted in `errors`, and left out
    of the snapshot. Errors: those of the backend (the backup then stops; no snapshot is written).
*/
template <compressor Compressor, class Repo, chunker Chunker>
result<backup_summary> backup(Repo& repo, Chunker const& ch, backup_options const& opt) {
    return detail::backup_run<Repo, Chunker, Compressor>(repo, ch, opt).run();
}

}  // namespace stash::engine
