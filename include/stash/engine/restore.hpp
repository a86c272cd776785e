// Restore: a snapshot's tree back into a directory, content and metadata.
#pragma once

#include <stash/crypto/sealer.hpp>
#include <stash/engine/detail/blob_batch.hpp>
#include <stash/engine/detail/pool.hpp>
#include <stash/engine/filter.hpp>
#include <stash/engine/fs.hpp>
#include <stash/engine/progress.hpp>
#include <stash/engine/snapshots.hpp>
#include <stash/engine/tree_prefetch.hpp>

#include <sys/resource.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <memory>
#include <span>
#include <tuple>

namespace stash::engine {

/// What to restore and where.
struct restore_options {
    std::string target;                 ///< directory to restore into (created if missing)
    std::string subpath;                ///< restore only this path of the snapshot ("" = all)
    std::vector<std::string> includes;  ///< restore only matching paths (and what lies below them)
    std::vector<std::string> excludes;  ///< skip matching paths
    unsigned threads = 0;               ///< workers; 0 = one per core
    bool sparse = true;                 ///< leave holes where a blob is all zeros
    /// Nodes of trees fetched ahead of the walk, level by level, and not yet reached (a few hundred
    /// bytes each), for backends where each request waits on a network; 0 (the default: on a
    /// local disk the second loader cost more than it saved) loads each directory's subtrees when
    /// the walk gets there.
    std::size_t prefetch_nodes = 0;
    progress_fn on_progress;
    std::chrono::milliseconds progress_interval{1000};
    /// Called for each path that could not be restored (path, message); the restore goes on.
    std::function<void(std::string const&, std::string const&)> on_error;
};

struct restore_summary {
    std::uint64_t files = 0, dirs = 0, others = 0, bytes = 0, errors = 0;
    double seconds = 0;
};

namespace detail {

template <class Repo>
class restore_run {
    using node = repo::node;
    using node_type = repo::node_type;

public:
    restore_run(Repo& repo, restore_options const& opt)
        : repo_(repo), opt_(opt), includes_(opt.includes), excludes_(opt.excludes),
          threads_(opt.threads ? opt.threads : std::max(2u, std::thread::hardware_concurrency())),
          is_root_(::geteuid() == 0), scratch_(threads_ + 1) {}

    result<restore_summary> run(repo::snapshot const& snap) {
        if (opt_.target.empty()) return make_error(errc::invalid_argument, "restore: --target is required");
        std::string const target = absolute_path(opt_.target);
        if (::mkdir(target.c_str(), 0700) != 0 && errno != EEXIST) return errno_error("create target directory " + target);
        if (::access(target.c_str(), W_OK) != 0) return errno_error("target directory " + target + " is not writable");

        // Descend to the requested subpath of the snapshot.
        auto nodes = repo_.load_tree(snap.tree);
        if (!nodes) return std::move(nodes).error();
        std::string vpath;
        for (auto comp : engine::detail::components(opt_.subpath)) {
            auto it = std::find_if(nodes->begin(), nodes->end(), [&](node const& n) { return n.name == comp; });
            if (it == nodes->end())
                return make_error(errc::not_found, "path \"" + opt_.subpath + "\" not found in snapshot");
            vpath += "/" + std::string(comp);
            if (it->type != node_type::dir) {
                node single = *it;
                *nodes = {single};
                vpath = vpath.substr(0, vpath.rfind('/'));
                break;
            }
            auto sub = repo_.load_tree(*it->subtree);
            if (!sub) return std::move(sub).error();
            *nodes = std::move(*sub);
        }

        restore_summary sum;
        {
            progress_reporter reporter(progress_, opt_.on_progress, opt_.progress_interval);
            pool_ = std::make_unique<pool>(threads_, 8 * threads_ + 16, 2 * threads_);
            if (opt_.prefetch_nodes) {
                // The walk's own rules for descending (see walk).
                auto want = [this](std::string const& v, std::string const& name) { return valid_name(name) && selected(v, true); };
                prefetch_.emplace(repo_, want, opt_.prefetch_nodes);
                prefetch_->start(*nodes, vpath);
            }
            walk(*nodes, target, vpath, open_dir(nullptr, target));
            prefetch_.reset();  // every tree wanted has been taken
            batches_.flush(*pool_);
            pool_->join();
            for (auto const& [path, n] : links_) link(path, n);
            // Directory metadata last, deepest first, after their contents stopped changing.
            for (auto it = dirs_.rbegin(); it != dirs_.rend(); ++it) meta(it->first, it->second);
            reporter.finish();
        }
        if (failure_) return *failure_;
        sum.files = files_, sum.dirs = dirs_.size(), sum.others = others_;
        sum.bytes = progress_.bytes_done, sum.errors = progress_.errors;
        sum.seconds = progress_.read().seconds;
        return sum;
    }

private:
    using pool = engine::detail::pool;

    void report(std::string const& path, std::string const& msg) {
        ++progress_.errors;
        if (opt_.on_error) opt_.on_error(path, msg);
    }

    void meta(std::string const& path, node const& n) {
        if (auto e = apply_metadata(path, n, is_root_); !e.empty()) report(path, e);
    }

    static bool valid_name(std::string const& name) { return !name.empty() && name != "." && name != ".." && name.find('/') == std::string::npos; }

    // A symlink, FIFO or device node; returns an error message.
    std::string make_special(std::string const& path, node const& n) {
        ::unlink(path.c_str());
        switch (n.type) {
            case node_type::symlink:
                if (::symlink(n.linktarget.c_str(), path.c_str()) != 0) return std::string("symlink: ") + std::strerror(errno);
                break;
            case node_type::fifo:
                if (::mkfifo(path.c_str(), 0600) != 0) return std::string("mkfifo: ") + std::strerror(errno);
                break;
            default:
                if (::mknod(path.c_str(), (n.type == node_type::dev ? S_IFBLK : S_IFCHR) | 0600, dev_t(n.device)) != 0)
                    return std::string("mknod: ") + std::strerror(errno);
        }
        return {};
    }

    bool selected(std::string const& vpath, bool is_dir) const {
        if (!excludes_.empty() && excludes_.matches(vpath)) return false;
        if (includes_.empty() || includes_.matches(vpath)) return true;
        return is_dir && includes_.may_match_below(vpath);
    }

    // A directory being restored, open (O_PATH) while its files are queued: they are created
    // relative to it, so the kernel does not walk their whole paths again. At most an eighth of
    // the descriptor limit (up to 1024) are open at once, as packs and the files being written need
    // theirs; past that, or when opening fails, full paths are used (null).
    struct dir_fd {
        int fd;
        std::atomic<unsigned>& count;  // of those open
        dir_fd(int f, std::atomic<unsigned>& n) noexcept : fd(f), count(n) {}
        dir_fd(dir_fd const&) = delete;
        dir_fd& operator=(dir_fd const&) = delete;
        ~dir_fd() {
            ::close(fd);
            --count;
        }
    };
    using dir_ref = std::shared_ptr<dir_fd const>;

    // The (descriptor, name) pair that *at calls take for `path`, a child of `dir`.
    static std::pair<int, char const*> at(dir_ref const& dir, std::string const& path) noexcept {
        if (!dir) return {AT_FDCWD, path.c_str()};
        return {dir->fd, path.c_str() + path.rfind('/') + 1};
    }

    static unsigned dir_budget() noexcept {
        struct rlimit rl {};
        if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) return 0;
        return unsigned(std::min<rlim_t>(rl.rlim_cur / 8, 1024));
    }

    dir_ref open_dir(dir_ref const& parent, std::string const& path) {
        if (open_dirs_.fetch_add(1) >= dir_budget_) {
            --open_dirs_;
            return nullptr;
        }
        auto [dfd, name] = at(parent, path);
        int fd = ::openat(dfd, name, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0) {
            --open_dirs_;
            return nullptr;
        }
        return std::make_shared<dir_fd const>(fd, open_dirs_);
    }

    void walk(std::vector<node> const& nodes, std::string const& dir, std::string const& vdir, dir_ref const& dfd) {
        // The subdirectories' trees, loaded 64 at a time: a request per directory is what network
        // backends cannot afford, and all of a wide directory's subtrees at once would take memory.
        std::vector<id> subtrees;
        for (auto const& n : nodes)
            if (n.type == node_type::dir && n.subtree && valid_name(n.name) && selected(vdir + "/" + n.name, true)) subtrees.push_back(*n.subtree);
        std::vector<result<std::vector<node>>> loaded;
        std::size_t first_loaded = 0, next = 0;
        auto subtree = [&]() -> result<std::vector<node>>& {
            if (next >= first_loaded + loaded.size()) {
                first_loaded = next;
                auto const ids = std::span(subtrees).subspan(next, std::min<std::size_t>(64, subtrees.size() - next));
                loaded = prefetch_ ? prefetch_->take(ids) : repo_.load_trees(ids);
            }
            return loaded[next++ - first_loaded];
        };
        for (auto const& n : nodes) {
            if (!valid_name(n.name)) {
                report(dir + "/" + n.name, "invalid file name in snapshot, skipped");
                continue;
            }
            std::string const path = dir + "/" + n.name, vpath = vdir + "/" + n.name;
            if (!selected(vpath, n.type == node_type::dir)) continue;
            switch (n.type) {
                case node_type::dir: {
                    auto* sub = n.subtree ? &subtree() : nullptr;
                    auto [parent, name] = at(dfd, path);
                    if (::mkdirat(parent, name, 0700) != 0 && errno != EEXIST) {
                        report(path, std::string("mkdir: ") + std::strerror(errno));
                        continue;
                    }
                    dirs_.emplace_back(path, n);
                    if (!sub) {
                        report(path, "directory without subtree in snapshot");
                        continue;
                    }
                    if (!*sub) {
                        report(path, sub->error().what());
                        continue;
                    }
                    walk(**sub, path, vpath, open_dir(dfd, path));
                    *sub = std::vector<node>();  // done with it
                    break;
                }
                case node_type::file: {
                    ++progress_.files_total;
                    progress_.bytes_total += n.size;
                    if (n.links > 1 && n.inode) {
                        auto key = std::make_pair(n.device_id, n.inode);
                        auto [it, fresh] = first_link_.try_emplace(key, path);
                        if (!fresh) {
                            links_.emplace_back(path, n);
                            link_source_[path] = it->second;
                            continue;
                        }
                    }
                    ++files_;
                    batches_.add(*pool_, {path, dfd, std::make_shared<node const>(n)}, n.size);
                    break;
                }
                case node_type::symlink:
                case node_type::fifo:
                case node_type::dev:
                case node_type::chardev:
                    if (auto e = make_special(path, n); !e.empty()) report(path, e);
                    else meta(path, n), ++others_;
                    break;
                case node_type::socket: break;
            }
        }
    }

    static bool all_zero(byte_span b) noexcept {
        return b.empty() || (b[0] == std::byte{} && std::memcmp(b.data(), b.data() + 1, b.size() - 1) == 0);
    }

    // A contiguous part of a file: blobs [first, first + count) of its content, stored back to back in
    // one pack, written at byte `offset` of the file. One ranged read fetches a part.
    struct part {
        std::size_t first, count;
        std::uint64_t offset;
    };
    // A file whose parts several workers write; the last to finish closes it.
    struct file_job {
        std::string path;
        std::shared_ptr<node const> n;  // freed with the job: the snapshot's nodes are never all held
        int fd = -1;
        std::uint64_t size = 0;
        std::vector<repo::blob_location> blobs;
        std::atomic<std::size_t> pending{0};
        std::atomic<bool> failed{false}, holes{false};  // holes: some all-zero blob was not written
    };

    static constexpr std::uint64_t max_part_bytes = 16u << 20;
    // A worker's buffer for the sealed bytes of its reads, kept from part to part: a fresh one each
    // time costs a page fault per 4 KiB filled. After a read of up to 16 MiB its pages past `keep`
    // go back. (Blobs are opened into `plain`, kept whole, or a larger one into the repository's
    // scratch: handing back its pages after each part made 40% of a restore's page faults.)
    struct scratch {
        static constexpr std::size_t keep = 512 << 10;
        bytes sealed;
        scratch_bytes plain;  // opened blobs (blob_batch)
        void trim() noexcept {
            if (sealed.size() > keep) release_pages(sealed.data() + keep, sealed.data() + sealed.capacity());
        }
    };
    // Bytes of other blobs a batch's ranged read may span to reach the next blob it needs: reading
    // them costs less than another round trip.
    static constexpr std::uint64_t max_gap_bytes = 1u << 20;

    struct restore_item {
        std::string path;
        dir_ref dir;  // its directory
        std::shared_ptr<node const> n;
    };

    void write_items(std::span<restore_item const> items, unsigned self) {
        if (items.size() == 1) write_file(items[0], self);
        else write_batch(items, self);
    }

    // Creates the file and finds its blobs in the index; null (reported) when either fails.
    std::shared_ptr<file_job> open_job(restore_item const& item) {
        auto const& [path, dir, node_ptr] = item;
        node const& n = *node_ptr;
        auto const [dfd, name] = at(dir, path);
        int const flags = O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW;
        // Created with its permission bits (less the umask; set-id bits come after the owner), so
        // that usually no chmod is needed afterwards. A directory restore creates stays 0700 until
        // its contents are restored.
        mode_t const perm = repo::go_mode::to_posix_perm(n.mode) & 0777;
        int fd = ::openat(dfd, name, flags, perm);
        if (fd < 0 && (errno == ELOOP || errno == EACCES || errno == ETXTBSY)) {
            // Something is in the way (a symlink, a read-only file): replace it, never write through it.
            ::unlinkat(dfd, name, 0);
            fd = ::openat(dfd, name, flags, perm);
        }
        if (fd < 0) {
            report(path, std::string("create: ") + std::strerror(errno));
            return nullptr;
        }
        auto job = std::make_shared<file_job>();
        job->path = path, job->n = node_ptr, job->fd = fd;
        job->blobs.reserve(n.content.size());
        for (auto const& b : n.content) {
            auto loc = repo_.index().find(b, repo::blob_type::data);
            if (!loc || loc->entry.length < crypto::restic_sealer::overhead) {
                report(path, "data blob " + b.str() + (loc ? ": index entry shorter than a sealed blob" : " not found in index"));
                ::close(fd);
                return nullptr;
            }
            job->blobs.push_back(*loc);
            job->size += loc->entry.plaintext_length(crypto::restic_sealer::overhead);
        }
        return job;
    }

    // A file alone (a large one): blobs stored back to back in one pack (a file's chunks, as backup
    // writes them) are read with one ranged request of up to 16 MiB, a part. The parts go to all
    // workers, each writing at its own offset.
    void write_file(restore_item const& item, unsigned self) {
        auto job = open_job(item);
        if (!job) return;
        std::vector<part> parts;
        std::uint64_t at = 0;
        for (std::size_t i = 0; i < job->blobs.size(); ++i) {
            if (parts.empty() || !adjacent(job->blobs[i - 1], job->blobs[i], job->blobs[parts.back().first]))
                parts.push_back({i, 0, at});
            ++parts.back().count;
            at += job->blobs[i].entry.plaintext_length(crypto::restic_sealer::overhead);
        }
        job->pending = std::max<std::size_t>(parts.size(), 1);
        if (parts.empty()) return finish(*job);
        for (std::size_t k = 1; k < parts.size(); ++k)
            pool_->submit_blob([this, job, p = parts[k]](unsigned w) { write_part(*job, p, w); }, self);
        write_part(*job, parts.front(), self);
    }

    // Whether blob b continues the part that starts at `first` and ends with `prev`.
    static bool adjacent(repo::blob_location const& prev, repo::blob_location const& b, repo::blob_location const& first) {
        return b.pack == prev.pack && b.entry.offset == prev.entry.offset + prev.entry.length &&
               b.entry.offset + b.entry.length - first.entry.offset <= max_part_bytes;
    }

    void write_part(file_job& job, part const& p, unsigned self) {
        if (!job.failed) {
            if (auto e = fetch_and_write(job, p, scratch_[self]); !e.empty() && !job.failed.exchange(true)) report(job.path, e);
            scratch_[self].trim();
        }
        if (--job.pending == 0) finish(job);
    }

    // Reads one part (its blobs lie back to back in one pack: one ranged request) and writes its
    // blobs, opened a few at a time into the worker's batch buffer so that their IDs are checked
    // together (blob_batch: two at once on SHA-NI); returns an error message.
    std::string fetch_and_write(file_job& job, part const& p, scratch& buf) {
        std::string err;
        auto opened = [&](std::uint64_t at, result<byte_span> text) {
            if (err.empty()) err = text ? write_plain(job, *text, at) : text.error().what();
        };
        engine::detail::blob_batch<Repo, std::uint64_t, decltype(opened)> batch(repo_, buf.plain, opened);
        std::uint64_t at = p.offset;  // the blobs come in pack order, here the file's
        auto fn = [&](std::size_t i, byte_span sealed, error const* failed) {
            auto const& loc = job.blobs[p.first + i];
            if (!err.empty()) return;
            if (failed) err = failed->what();
            else batch.add(loc, sealed, at);
            at += loc.entry.plaintext_length(crypto::restic_sealer::overhead);
        };
        repo_.read_sealed(std::span(job.blobs).subspan(p.first, p.count), fn, 0, max_part_bytes, &buf.sealed);
        batch.flush();
        return err;
    }

    // Small files restored together: their blobs are read sorted by pack and offset, one ranged
    // request per run of nearby blobs (repository::read_sealed), so a batch costs a request or two,
    // not one a file.
    void write_batch(std::span<restore_item const> items, unsigned self) {
        struct ref {
            file_job* job;
            std::uint64_t at;  // offset in the file
        };
        std::vector<std::shared_ptr<file_job>> jobs;
        std::vector<repo::blob_location> locs;  // locs[i] goes to refs[i]
        std::vector<ref> refs;
        for (auto const& item : items) {
            auto job = open_job(item);
            if (!job) continue;
            std::uint64_t at = 0;
            for (auto const& loc : job->blobs) {
                locs.push_back(loc);
                refs.push_back({job.get(), at});
                at += loc.entry.plaintext_length(crypto::restic_sealer::overhead);
            }
            job->pending = job->blobs.size();
            if (job->blobs.empty()) finish(*job);
            jobs.push_back(std::move(job));
        }
        // Blobs are opened into the worker's batch buffer and hashed together (blob_batch) before
        // they are written.
        auto& sc = scratch_[self];
        auto done = [&](std::size_t i, std::string const& e) {
            auto& job = *refs[i].job;
            if (!e.empty() && !job.failed.exchange(true)) report(job.path, e);
            if (--job.pending == 0) finish(job);
        };
        auto opened = [&](std::size_t i, result<byte_span> text) {
            auto& job = *refs[i].job;
            if (job.failed) done(i, {});
            else if (!text) done(i, text.error().what());
            else done(i, write_plain(job, *text, refs[i].at));
        };
        engine::detail::blob_batch<Repo, std::size_t, decltype(opened)> batch(repo_, sc.plain, opened);
        repo_.read_sealed(locs, [&](std::size_t i, byte_span sealed, error const* failed) {
            if (refs[i].job->failed) return done(i, {});
            if (failed) return done(i, failed->what());
            batch.add(locs[i], sealed, i);
        }, max_gap_bytes, max_part_bytes, &sc.sealed);
        batch.flush();
        sc.trim();
    }

    // Writes a blob's plaintext at `at` (or leaves a hole for zeros when sparse); returns an error message.
    std::string write_plain(file_job& job, byte_span blob, std::uint64_t at) {
        if (opt_.sparse && all_zero(blob)) {
            job.holes = true;
        } else {
            for (std::size_t done = 0; done < blob.size();) {
                ssize_t w = ::pwrite(job.fd, blob.data() + done, blob.size() - done, off_t(at + done));
                if (w < 0 && errno == EINTR) continue;
                if (w < 0) return std::string("write: ") + std::strerror(errno);
                done += std::size_t(w);
            }
        }
        progress_.bytes_done += blob.size();
        return {};
    }

    void finish(file_job& job) {
        // The file was created empty and every byte up to its size written, unless a hole was left.
        if (!job.failed && job.holes && ::ftruncate(job.fd, off_t(job.size)) != 0) report(job.path, std::string("truncate: ") + std::strerror(errno));
        if (!job.failed) {
            if (auto e = apply_metadata(job.fd, job.path, *job.n, is_root_); !e.empty()) report(job.path, e);
            ++progress_.files_done;
        }
        ::close(job.fd);
    }

    void link(std::string const& path, node const& n) {
        auto const& src = link_source_[path];
        ::unlink(path.c_str());
        if (::link(src.c_str(), path.c_str()) != 0) return report(path, std::string("link: ") + std::strerror(errno));
        ++files_;
        ++progress_.files_done;
        progress_.bytes_done += n.size;
    }

    Repo& repo_;
    restore_options const& opt_;
    path_filter includes_, excludes_;
    unsigned threads_;
    bool is_root_;
    std::atomic<unsigned> open_dirs_{0};  // dir_fd's, declared before everything that holds them
    unsigned const dir_budget_ = dir_budget();
    std::unique_ptr<pool> pool_;
    std::optional<engine::tree_prefetch<Repo>> prefetch_;
    std::vector<scratch> scratch_;  // one per worker (pool index)
    progress_counters progress_;
    std::vector<std::pair<std::string, node>> dirs_, links_;
    std::map<std::pair<std::uint64_t, std::uint64_t>, std::string> first_link_;
    std::map<std::string, std::string> link_source_;
    std::atomic<std::uint64_t> files_{0}, others_{0};
    engine::detail::file_batches<restore_item> batches_{[this](std::span<restore_item const> items, unsigned self) { write_items(items, self); }};
    std::optional<error> failure_;
};

}  // namespace detail

/** Restores `snap` into `opt.target`: directories, files (in parallel, holes for all-zero blobs),
    symlinks, FIFOs, devices (as root), hard links, then owner, mode, xattrs and times, directories
    last. Paths that cannot be restored are reported through `opt.on_error` and counted in `errors`.
    Reads: a large file in ranged reads of up to 16 MiB spread over the workers; small files 64 at a
    time with their blobs grouped by pack; a directory's subtrees together, or with
    `opt.prefetch_nodes`, trees ahead of the walk, level by level, up to 256 a request. Memory: the
    nodes of the files queued or being written (each freed with its file), the directories' nodes
    (their metadata is set last), up to 64 subtrees on each level of the current path, and up to
    `opt.prefetch_nodes` nodes fetched ahead. Descriptors:
    up to 64 packs, the files of the batches being written, and the directories of queued files
    (at most an eighth of RLIMIT_NOFILE, up to 1024).
    Errors: the target cannot be created or written; the snapshot's root tree cannot be loaded.
*/
template <class Repo>
result<restore_summary> restore(Repo& repo, repo::snapshot const& snap, restore_options const& opt) {
    return detail::restore_run<Repo>(repo, opt).run(snap);
}

}  // namespace stash::engine
