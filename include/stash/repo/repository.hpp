// A restic-format repository over any backend: keys, config, encrypted files, index, blobs, locks.
#pragma once

#include <stash/compress/zstd.hpp>
#include <stash/concepts/backend.hpp>
#include <stash/concepts/hasher.hpp>
#include <stash/repo/config.hpp>
#include <stash/repo/index.hpp>
#include <stash/repo/key.hpp>
#include <stash/repo/lock.hpp>
#include <stash/repo/snapshot.hpp>
#include <stash/repo/tree.hpp>

#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <functional>
#include <future>
#include <mutex>
#include <optional>
#include <span>
#include <thread>
#include <tuple>

namespace stash::repo {

/// Options for creating a repository.
struct init_options {
    unsigned version = 2;                          ///< 1 or 2
    std::string chunker = "rabin";                 ///< recorded in the config for later backups
    std::optional<chunk::polynomial> polynomial;   ///< random when empty
    crypto::scrypt_params kdf{32768, 8, 1};
    std::string username, hostname;
};

/// The host name as restic records it.
inline std::string this_hostname() {
    char buf[256] = {};
    ::gethostname(buf, sizeof buf - 1);
    return buf;
}

/** A restic repository (format versions 1 and 2) stored through `Backend`.

    Files other than packs are "unpacked": one box each, in v2 holding `0x02 ‖ zstd(JSON)`
    (restic-format.md §5.2). Their names are the `Hasher` digest of the stored bytes; loading verifies it.
    Blob reads verify the MAC and the blob ID. All members are thread-safe unless noted.

    @tparam Backend models `stash::backend`.
    @tparam Hasher models `stash::hasher` (SHA-256 for restic compatibility).
*/
template <backend Backend, hasher Hasher>
class repository {
public:
    using backend_type = Backend;
    using hasher_type = Hasher;
    static constexpr std::size_t max_key_attempts = 20;  ///< restic tries at most 20 key files

    /// Creates a repository: layout, a key file for `password`, and the config.
    static result<repository> init(Backend b, std::string_view password, init_options opt) {
        if (opt.version != 1 && opt.version != 2)
            return make_error(errc::unsupported, "repository version " + std::to_string(opt.version) +
                                                     " is not supported (use 1 or 2)");
        if (password.empty()) return make_error(errc::invalid_argument, "an empty password is not allowed");
        STASH_TRYV(b.create());
        config c;
        c.version = opt.version;
        std::array<std::byte, 32> rid;
        crypto::random_bytes(rid);
        c.id = to_hex(rid);
        c.chunker = opt.chunker;
        if (opt.polynomial) {
            c.chunker_polynomial = *opt.polynomial;
        } else {
            auto p = chunk::polynomial::derive([] {
                std::uint64_t v;
                crypto::random_bytes(std::as_writable_bytes(std::span(&v, 1)));
                return v;
            });
            if (!p) return make_error(errc::io, "could not find an irreducible polynomial");
            c.chunker_polynomial = *p;
        }
        repository r(std::move(b), crypto::restic_sealer(crypto::key_material::random()), c);
        auto kid = r.add_key(password, opt.kdf, opt.username, opt.hostname.empty() ? this_hostname() : opt.hostname);
        if (!kid) return std::move(kid).error();
        r.key_id_ = *kid;
        STASH_TRYV(r.save_config());
        return r;
    }

    /// Opens a repository with `password`, trying each key file. Errors: `errc::not_found` when there
    /// is no repository, `errc::wrong_password` when no key opens, `errc::corrupt`/`unsupported` for a
    /// bad config.
    static result<repository> open(Backend b, std::string_view password) {
        if (auto st = b.stat({file_type::config, ""}); !st) {
            if (st.error().is(errc::not_found))
                return make_error(errc::not_found, "repository " + b.location() + " does not exist (no config file)");
            return std::move(st).error();
        }
        std::vector<std::string> keys;
        STASH_TRYV(b.list(file_type::key, [&](std::string_view n, std::uint64_t) { keys.emplace_back(n); }));
        std::sort(keys.begin(), keys.end());
        if (keys.size() > max_key_attempts) keys.resize(max_key_attempts);
        for (auto const& name : keys) {
            bytes raw;
            STASH_TRYV(b.get({file_type::key, name}, 0, 0, raw));
            auto kf = key_file::from_json(as_chars(raw), "key " + name);
            if (!kf) continue;  // an unreadable key file is skipped, as restic does
            auto master = open_key(password, *kf);
            if (!master) {
                if (master.error().is(errc::wrong_password)) continue;
                return std::move(master).error();
            }
            crypto::restic_sealer s(*master);
            bytes box, plain;
            STASH_TRYV(b.get({file_type::config, ""}, 0, 0, box));
            if (auto o = s.open(box, plain); !o) return make_error(errc::corrupt, "config: " + o.error().message);
            auto c = config::from_json(as_chars(plain));
            if (!c) return std::move(c).error();
            repository r(std::move(b), std::move(s), std::move(*c));
            if (auto kid = id::parse(name)) r.key_id_ = *kid;
            return r;
        }
        return make_error(errc::wrong_password, "wrong password or no key found for repository " + b.location());
    }

    repository(repository&& o) noexcept
        : backend_(std::move(o.backend_)), sealer_(std::move(o.sealer_)), config_(std::move(o.config_)), key_id_(o.key_id_) {}

    Backend& backend() noexcept { return backend_; }
    config const& cfg() const noexcept { return config_; }
    crypto::restic_sealer const& sealer() const noexcept { return sealer_; }
    repo::index& index() noexcept { return index_; }
    repo::index const& index() const noexcept { return index_; }
    /// v2 repositories store compressed blobs and unpacked files.
    bool compression() const noexcept { return config_.version >= 2; }

    // --- keys -----------------------------------------------------------------------------------

    /// The key file this repository was opened (or created) with.
    id const& key_id() const noexcept { return key_id_; }

    /// Adds a key file wrapping the master key under `password`; returns its ID.
    result<id> add_key(std::string_view password, crypto::scrypt_params prm, std::string username, std::string hostname) {
        if (password.empty()) return make_error(errc::invalid_argument, "an empty password is not allowed");
        auto k = make_key(password, sealer_.key(), prm, std::move(username), std::move(hostname));
        if (!k) return std::move(k).error();
        std::string const j = k->to_json();
        id const kid = Hasher::digest(as_bytes(j));
        STASH_TRYV(backend_.put({file_type::key, kid.str()}, as_bytes(j)));
        return kid;
    }

    /// Loads a key file's plaintext fields (its `data` stays sealed).
    result<key_file> load_key(id const& kid) {
        bytes raw;
        STASH_TRYV(backend_.get({file_type::key, kid.str()}, 0, 0, raw));
        return key_file::from_json(as_chars(raw), "key " + kid.str());
    }

    // --- unpacked files -------------------------------------------------------------------------

    /// Encrypts (and in v2 compresses) `plaintext` and stores it under its hash. Returns the file ID.
    result<id> save_unpacked(file_type t, std::string_view plaintext) {
        return save_unpacked_from(t, [plaintext](auto&& sink) { sink(plaintext); });
    }

    /// The same for a plaintext `produce(sink)` hands to `sink(std::string_view)` in pieces (see
    /// `write_index_json`): compressed as it comes and sealed in place, so the file's text is never
    /// whole in memory (a backup's last index: 14 MiB of JSON for `linux`).
    template <class Produce>
    result<id> save_unpacked_from(file_type t, Produce&& produce) {
        if (t == file_type::index || t == file_type::snapshot) STASH_TRYV(confirm_lock());
        bytes box;
        sealer_.seal_append(box, [&](bytes& out) {
            if (compression() && t != file_type::config && t != file_type::key) {
                out.push_back(std::byte{2});  // restic-format.md §5.2: a zstd frame follows
                compress::zstd_frame_writer z(out, compress::metadata_level, t == file_type::index ? index_workers() : 0);
                produce([&z](std::string_view piece) { z.write(as_bytes(piece)); });
                z.finish();
            } else {
                produce([&out](std::string_view piece) {
                    auto const b = as_bytes(piece);
                    out.insert(out.end(), b.begin(), b.end());
                });
            }
        });
        id const fid = Hasher::digest(box);
        STASH_TRYV(backend_.put({t, fid.str()}, box));
        return fid;
    }

    /** Loads, verifies (hash of the stored bytes) and decrypts an unpacked file, and hands its
        plaintext to `fn(std::string_view)`, which returns result<void>, in pieces of at most 1 MiB as
        it is decompressed: a large file's text (an index is several times its stored size) is never
        whole in memory. Errors: those of `fn` as they are; a corrupt file, naming it. */
    template <class Fn>
    result<void> read_unpacked(file_type t, id const& fid, Fn&& fn) {
        handle const h{t, fid.str()};
        bytes box, plain;
        STASH_TRYV(backend_.get(h, 0, 0, box));
        if (Hasher::digest(box) != fid) return make_error(errc::corrupt, h.str() + ": file content does not match its ID");
        if (auto r = sealer_.open(box, plain); !r) return make_error(errc::corrupt, h.str() + ": " + r.error().message);
        box = {};
        if (config_.version < 2 || plain.empty() || plain[0] == std::byte('{') || plain[0] == std::byte('['))
            return fn(as_chars(plain));
        if (plain[0] != std::byte{2}) return make_error(errc::corrupt, h.str() + ": not supported encoding format");
        compress::zstd_decoder dec;
        std::optional<error> rejected;  // by fn
        auto r = dec.decompress_pieces(byte_span(plain).subspan(1), [&](byte_span piece) {
            auto f = fn(as_chars(piece));
            if (!f) rejected = f.error();
            return f;
        });
        if (rejected) return *rejected;
        if (!r) return make_error(errc::corrupt, h.str() + ": " + r.error().message);
        return {};
    }

    /// Loads, verifies, decrypts and decompresses an unpacked file (see read_unpacked).
    result<std::string> load_unpacked(file_type t, id const& fid) {
        std::string text;
        STASH_TRYV(read_unpacked(t, fid, [&](std::string_view piece) -> result<void> {
            text += piece;
            return {};
        }));
        return text;
    }

    /// Loads a snapshot file.
    result<snapshot> load_snapshot(id const& sid) {
        auto text = load_unpacked(file_type::snapshot, sid);
        if (!text) return std::move(text).error();
        return snapshot::from_json(*text, "snapshot " + sid.str());
    }

    /// Lists the IDs of files of type `t`.
    result<std::vector<id>> list(file_type t) {
        std::vector<id> out;
        STASH_TRYV(backend_.list(t, [&](std::string_view n, std::uint64_t) {
            if (auto i = id::parse(n)) out.push_back(*i);
        }));
        std::sort(out.begin(), out.end());
        return out;
    }

    /// Resolves a unique ID prefix (as typed on the command line) among files of type `t`.
    result<id> find(file_type t, std::string_view prefix) {
        auto ids = list(t);
        if (!ids) return std::move(ids).error();
        std::optional<id> hit;
        for (auto const& i : *ids) {
            if (i.str().starts_with(prefix)) {
                if (hit) return make_error(errc::invalid_argument, "ID prefix \"" + std::string(prefix) + "\" is ambiguous");
                hit = i;
            }
        }
        if (!hit || prefix.empty())
            return make_error(errc::not_found, std::string(t == file_type::snapshot ? "snapshot" : "file") + " \"" +
                                                   std::string(prefix) + "\" not found");
        return *hit;
    }

    // --- index ----------------------------------------------------------------------------------

    /// Loads every index file into `index()`, in parallel.
    result<void> load_index() {
        auto ids = list(file_type::index);
        if (!ids) return std::move(ids).error();
        std::atomic<std::size_t> next{0};
        std::mutex emu;
        std::optional<error> first_error;
        auto work = [&] {
            for (std::size_t i; (i = next++) < ids->size();) {
                auto r = load_index_file((*ids)[i]);
                if (!r) {
                    std::lock_guard lk(emu);
                    if (!first_error) first_error = r.error();
                }
            }
        };
        std::vector<std::jthread> pool;
        for (unsigned t = 1; t < std::min<std::size_t>(std::max(2u, std::thread::hardware_concurrency()), ids->size()); ++t)
            pool.emplace_back(work);
        work();
        pool.clear();
        if (first_error) return *first_error;
        if constexpr (caching_backend<Backend>) {
            // The packs holding trees: every walk of a snapshot reads them again.
            backend_.cache_packs([this]() -> pack_filter {
                auto trees = std::make_shared<id_set>();
                index_.for_each([&](blob_location const& l) {
                    if (l.entry.type == blob_type::tree) trees->insert(l.pack);
                });
                return [trees](std::string_view pack) {
                    auto p = id::parse(pack);
                    return p && trees->count(*p) != 0;
                };
            });
        }
        return {};
    }

    // Parsed as it is decompressed (read_unpacked): holding an index's text whole, plus a DOM, was
    // most of a small backup's memory.
    result<void> load_index_file(id const& iid) {
        std::string const what = "index " + iid.str();
        index_reader reader(what, [&](indexed_pack&& p) -> result<void> {
            if (config_.version == 1)
                for (auto const& b : p.blobs)
                    if (b.uncompressed_length) return make_error(errc::corrupt, what + " uses feature not supported by repository version 1");
            index_.add(p);
            return {};
        });
        STASH_TRYV(read_unpacked(file_type::index, iid, [&](std::string_view piece) { return reader.feed(piece); }));
        return reader.finish();
    }

    // --- blobs ----------------------------------------------------------------------------------

    /// Loads a blob's plaintext, verifying MAC and ID. Errors name the blob and its pack.
    result<bytes> load_blob(blob_type t, id const& blob) {
        auto loc = index_.find(blob, t);
        if (!loc) return make_error(errc::not_found, std::string(to_string(t)) + " blob " + blob.str() + " not found in index");
        bytes sealed, out;
        STASH_TRYV(backend_.get({file_type::pack, loc->pack.str()}, loc->entry.offset, loc->entry.length, sealed));
        STASH_TRYV(decode_blob(*loc, sealed, out));
        return out;
    }

    /// Loads and parses a tree blob.
    result<std::vector<node>> load_tree(id const& tree) {
        auto b = load_blob(blob_type::tree, tree);
        if (!b) return std::move(b).error();
        return parse_tree(as_chars(*b), "tree " + tree.str());
    }

    /// Loads many trees with few requests (see read_sealed); one result per ID, in the given order.
    std::vector<result<std::vector<node>>> load_trees(std::span<id const> trees) {
        std::vector<result<std::vector<node>>> out(trees.size(), make_error(errc::not_found, "not loaded"));
        std::vector<blob_location> locs;
        std::vector<std::size_t> which;
        for (std::size_t i = 0; i < trees.size(); ++i) {
            if (auto loc = index_.find(trees[i], blob_type::tree)) locs.push_back(*loc), which.push_back(i);
            else out[i] = make_error(errc::not_found, "tree blob " + trees[i].str() + " not found in index");
        }
        bytes plain;
        read_sealed(locs, [&](std::size_t k, byte_span sealed, error const* failed) {
            auto& r = out[which[k]];
            if (failed) r = *failed;
            else if (auto d = decode_blob(locs[k], sealed, plain); !d) r = std::move(d).error();
            else r = parse_tree(as_chars(plain), "tree " + trees[which[k]].str());
        });
        return out;
    }

    /** Reads the sealed bytes of many blobs with few requests: sorted by pack and offset, blobs less
        than `max_gap` bytes apart come in one ranged read of at most `max_run` bytes (the bytes in
        between cost less than another round trip). Calls `fn(i, sealed, failed)` for each `locs[i]`, in
        pack order: the blob's bytes (valid during the call), or `failed` pointing to the read's error.
        The reads go to `scratch` when given (a caller's buffer kept from call to call). */
    template <class Fn>
    void read_sealed(std::span<blob_location const> locs, Fn&& fn, std::uint64_t max_gap = 1u << 20, std::uint64_t max_run = 16u << 20,
                     bytes* scratch = nullptr) {
        std::vector<std::size_t> order(locs.size());
        for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
        std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
            return std::tie(locs[a].pack, locs[a].entry.offset) < std::tie(locs[b].pack, locs[b].entry.offset);
        });
        bytes own;
        bytes& sealed = scratch ? *scratch : own;
        for (std::size_t i = 0; i < order.size();) {
            auto const& first = locs[order[i]];
            auto const start = first.entry.offset;
            auto end = start + first.entry.length;
            std::size_t j = i + 1;
            for (; j < order.size(); ++j) {
                auto const& b = locs[order[j]];
                if (b.pack != first.pack || b.entry.offset > end + max_gap || b.entry.offset + b.entry.length - start > max_run) break;
                end = std::max(end, b.entry.offset + b.entry.length);
            }
            auto got = backend_.get({file_type::pack, first.pack.str()}, start, end - start, sealed);
            std::optional<error> failed;
            if (!got) failed = got.error();
            for (; i < j; ++i) {
                auto const& b = locs[order[i]];
                if (failed) fn(order[i], byte_span(), &*failed);
                else fn(order[i], byte_span(sealed).subspan(b.entry.offset - start, b.entry.length), nullptr);
            }
        }
    }

    /// Opens a sealed blob read from its pack into `out` (replaced) and checks its ID.
    result<void> decode_blob(blob_location const& loc, byte_span sealed, bytes& out) {
        auto view = decode_blob(loc, sealed);
        if (!view) return std::move(view).error();
        out.assign(view->begin(), view->end());
        return {};
    }

    /// The same into per-thread buffers: the view is valid until the thread's next call. Saves
    /// the copy and the zero-fill of an owned buffer where the plaintext is used at once.
    result<byte_span> decode_blob(blob_location const& loc, byte_span sealed) {
        thread_local scratch_bytes plain;
        auto text = open_blob(loc, sealed, plain.get(loc.entry.plaintext_length(crypto::restic_sealer::overhead) + 1));
        if (!text) return std::move(text).error();
        if (Hasher::digest(*text) != loc.entry.blob) return blob_mismatch(loc);
        return *text;
    }

    /// Opens a sealed blob (MAC, decryption, decompression) into `dst`, which has room for its
    /// plaintext length plus one byte, without checking its ID: for callers that hash many blobs
    /// at once (`digest_all`) and report a mismatch as `blob_mismatch(loc)`.
    result<byte_span> open_blob(blob_location const& loc, byte_span sealed, std::byte* dst) {
        if (sealed.size() != loc.entry.length)  // (dst is sized by the entry)
            return make_error(errc::corrupt, blob_name(loc) + ": " + std::to_string(sealed.size()) + " bytes read, the index says " +
                                                 std::to_string(loc.entry.length));
        if (!loc.entry.uncompressed_length) {
            if (auto r = sealer_.open(sealed, dst); !r) return make_error(errc::corrupt, blob_name(loc) + ": " + r.error().message);
            return byte_span(dst, sealed.size() - crypto::restic_sealer::overhead);
        }
        thread_local bytes frame;
        frame.clear();
        if (auto r = sealer_.open(sealed, frame); !r) return make_error(errc::corrupt, blob_name(loc) + ": " + r.error().message);
        auto d = thread_decoder().decompress(frame, loc.entry.uncompressed_length, dst);
        if (!d) return make_error(errc::corrupt, blob_name(loc) + ": " + d.error().message);
        return *d;
    }

    /// The error of a blob whose plaintext does not hash to its ID.
    static error blob_mismatch(blob_location const& loc) { return make_error(errc::corrupt, blob_name(loc) + ": content does not match its ID"); }

    /// Uploads a finished pack, then makes its blobs visible in the index and queues them for the
    /// next index file. Packs are named by the hash of their bytes.
    result<id> save_pack(byte_span pack, std::vector<blob_entry> entries) {
        id const pid = Hasher::digest(pack);
        STASH_TRYV(backend_.put({file_type::pack, pid.str()}, pack));
        if constexpr (caching_backend<Backend>)  // the next backup reads its parent's trees again
            if (std::any_of(entries.begin(), entries.end(), [](blob_entry const& e) { return e.type == blob_type::tree; }))
                backend_.keep_copy({file_type::pack, pid.str()}, pack);
        return add_saved_pack(pid, std::move(entries));
    }

    /// A pack written to a staged file while it is built: what is appended is hashed on the way.
    struct pack_stream {
        staged_file file;
        typename Hasher::state hash;
        result<void> append(byte_span s) {
            hash.update(s);
            return file.append(s);
        }
    };

    /// A stream for a new pack, or nothing when the backend cannot stage files (then the pack is
    /// built in memory and given to `save_pack` whole). Errors: the backend's, other than
    /// `errc::unsupported` (no space, no permission).
    result<std::optional<pack_stream>> begin_pack_stream() {
        if constexpr (staging_backend<Backend> && incremental_hasher<Hasher>) {
            auto f = backend_.stage();
            if (!f && f.error().is(errc::unsupported)) return std::optional<pack_stream>{};
            if (!f) return std::move(f).error();
            return std::optional<pack_stream>{pack_stream{std::move(*f), {}}};
        } else {
            return std::optional<pack_stream>{};
        }
    }

    /// A streamed pack with its last bytes appended and its name known, whose writes may still be
    /// under way: `commit_pack` names it and adds its blobs to the index.
    struct sealed_pack {
        pack_stream stream;
        id pid;
        std::vector<blob_entry> entries;
    };
    /// Appends a streamed pack's last bytes (`tail`, ending with the header) and starts their
    /// writes, without waiting for them: a caller commits the pack later, while it goes on.
    result<sealed_pack> seal_pack(pack_stream s, byte_span tail, std::vector<blob_entry> entries) {
        STASH_TRYV(s.append(tail));
        STASH_TRYV(s.file.flush());
        id const pid = s.hash.finish();
        return sealed_pack{std::move(s), pid, std::move(entries)};
    }
    /// Names a sealed pack once its writes are done, then as `save_pack`.
    result<id> commit_pack(sealed_pack p) {
        STASH_TRYV(backend_.commit({file_type::pack, p.pid.str()}, std::move(p.stream.file)));
        return add_saved_pack(p.pid, std::move(p.entries));
    }
    /// Saves a streamed pack once its last bytes (`tail`, ending with the header) are appended, as
    /// `save_pack` does a whole one.
    result<id> save_pack(pack_stream s, byte_span tail, std::vector<blob_entry> entries) {
        auto sealed = seal_pack(std::move(s), tail, std::move(entries));
        if (!sealed) return std::move(sealed).error();
        return commit_pack(std::move(*sealed));
    }

    /// Hands out the packs saved since the last flush, for a caller that writes their index itself
    /// (prune folds them into the index that supersedes the old one).
    std::vector<indexed_pack> take_pending_packs() {
        std::lock_guard lk(pending_mu_);
        pending_blobs_ = 0;
        return std::exchange(pending_, {});
    }

    /// Writes an index file for packs saved since the last flush (no-op when there are none).
    result<void> flush_index() {
        std::vector<indexed_pack> packs = take_pending_packs();
        if (packs.empty()) return {};
        auto r = save_unpacked_from(file_type::index, [&packs](auto&& sink) { write_index_json(packs, {}, sink); });
        if (!r) return std::move(r).error();
        return {};
    }

    /// Blobs saved in packs but not yet in an index file (flushed at `index_file_blobs`).
    std::size_t pending_index_blobs() const {
        std::lock_guard lk(pending_mu_);
        return pending_blobs_;
    }

    /// Claims a blob for writing: true if no one has it or is writing it. Lets concurrent workers
    /// store each new blob once.
    bool claim(id const& blob, blob_type t) {
        if (index_.has(blob, t)) return false;
        std::lock_guard lk(claim_mu_);
        return claimed_[std::size_t(t)].insert(blob).second;
    }

    // --- locks ----------------------------------------------------------------------------------

    /// A held lock: refreshed every 5 minutes by a background thread, removed on destruction.
    class lock_holder {
    public:
        lock_holder(repository& r, repo::lock l, id file) : repo_(&r), lock_(std::move(l)), file_(file) {
            refresher_ = std::jthread([this](std::stop_token st) {
                std::mutex m;
                std::condition_variable_any cv;
                std::unique_lock lk(m);
                for (;;) {
                    cv.wait_for(lk, st, std::chrono::minutes(5), [] { return false; });
                    if (st.stop_requested()) return;
                    lock_.time = timestamp::now();
                    if (auto n = repo_->save_unpacked(file_type::lock, lock_.to_json())) {
                        (void)repo_->backend().remove({file_type::lock, file_.str()});
                        file_ = *n;
                    }
                }
            });
        }
        lock_holder(lock_holder const&) = delete;
        ~lock_holder() {
            refresher_ = {};
            (void)repo_->backend().remove({file_type::lock, file_.str()});
        }

    private:
        repository* repo_;
        repo::lock lock_;
        id file_;
        std::jthread refresher_;
    };

    /** Takes a lock as restic does (restic-format.md §9): write ours, wait 200 ms, re-check for
        conflicts. `meanwhile` (optional) runs during the wait: read-only work such as loading the
        index, which is valid if the lock holds (an exclusive holder that could have changed the
        repository meanwhile makes the re-check fail).

        With `deferred` (shared locks only), the wait and the re-check run on a thread of their own
        and this returns after `meanwhile`: a writer such as a backup can read and upload packs in
        the meantime, while an index or snapshot file, which would publish them, waits for the
        re-check (see confirm_lock). Packs uploaded before a failed re-check are unreferenced, as
        after an interrupted backup. The re-check still runs 200 ms after the lock was written.

        Errors: `errc::locked`, naming the holder; those of `meanwhile` (the lock is then removed). */
    result<std::unique_ptr<lock_holder>> acquire_lock(bool exclusive, std::function<result<void>()> const& meanwhile = {},
                                                      bool deferred = false) {
        repo::lock l;
        l.time = timestamp::now();
        l.exclusive = exclusive;
        l.hostname = this_hostname();
        l.username = current_user();
        l.pid = ::getpid();
        l.uid = ::getuid(), l.gid = ::getgid();
        STASH_TRYV(check_locks(exclusive, std::nullopt));
        auto fid = save_unpacked(file_type::lock, l.to_json());
        if (!fid) return std::move(fid).error();
        auto const recheck_at = std::chrono::steady_clock::now() + std::chrono::milliseconds(200);
        if (deferred && !exclusive) {
            std::lock_guard lk(lock_check_mu_);
            lock_check_ = std::async(std::launch::async, [this, recheck_at, own = *fid] {
                std::this_thread::sleep_until(recheck_at);
                return check_locks(false, own);
            }).share();
        }
        if (meanwhile) {
            if (auto m = meanwhile(); !m) {
                (void)confirm_lock();
                (void)backend_.remove({file_type::lock, fid->str()});
                return std::move(m).error();
            }
        }
        if (!deferred || exclusive) {
            std::this_thread::sleep_until(recheck_at);
            if (auto c = check_locks(exclusive, *fid); !c) {
                (void)backend_.remove({file_type::lock, fid->str()});
                return std::move(c).error();
            }
        }
        return std::make_unique<lock_holder>(*this, std::move(l), *fid);
    }

    /// Waits for a deferred lock re-check (acquire_lock) and returns its outcome; at once when there
    /// is none. Called before an index or snapshot file is written.
    result<void> confirm_lock() {
        std::shared_future<result<void>> check;
        {
            std::lock_guard lk(lock_check_mu_);
            check = lock_check_;
        }
        if (!check.valid()) return {};
        return check.get();
    }

    /// Removes stale locks (or all with `all`); returns how many were removed.
    result<std::size_t> remove_locks(bool all) {
        auto ids = list(file_type::lock);
        if (!ids) return std::move(ids).error();
        std::size_t n = 0;
        auto const host = this_hostname();
        for (auto const& i : *ids) {
            bool del = all;
            if (!del) {
                auto text = load_unpacked(file_type::lock, i);
                auto l = text ? repo::lock::from_json(*text, "lock " + i.str()) : result<repo::lock>(text.error());
                del = l && l->stale(host, timestamp::now());
            }
            if (del && backend_.remove({file_type::lock, i.str()})) ++n;
        }
        return n;
    }

    /// The user name as restic records it: $USER, else the password database's entry for our uid.
    static std::string current_user() {
        if (char const* u = std::getenv("USER"); u && *u) return u;
        if (passwd const* pw = ::getpwuid(::getuid())) return pw->pw_name;
        return {};
    }

private:
    static std::string blob_name(blob_location const& loc) {
        return std::string(to_string(loc.entry.type)) + " blob " + loc.entry.blob.str() + " in pack " + loc.pack.str();
    }
    // An index file (megabytes of JSON at the end of a backup) is compressed on every core.
    static int index_workers() {
        static int const n = int(std::min(4u, std::thread::hardware_concurrency()));
        return n > 1 ? n : 0;
    }
    static compress::zstd_decoder& thread_decoder() {
        thread_local compress::zstd_decoder dec;
        return dec;
    }
    repository(Backend b, crypto::restic_sealer s, config c)
        : backend_(std::move(b)), sealer_(std::move(s)), config_(std::move(c)) {
        if constexpr (caching_backend<Backend>) backend_.bind_cache(config_.id);
    }

    result<void> save_config() {
        bytes box;
        std::string const j = config_.to_json();
        sealer_.seal(as_bytes(j), box);  // the config is never compressed
        return backend_.put({file_type::config, ""}, box);
    }

    // A pack is stored: its blobs become visible in the index and wait for the next index file.
    result<id> add_saved_pack(id const& pid, std::vector<blob_entry> entries) {
        indexed_pack ip{pid, std::move(entries)};
        index_.add(ip);
        std::lock_guard lk(pending_mu_);
        pending_blobs_ += ip.blobs.size();
        pending_.push_back(std::move(ip));
        return pid;
    }

    result<void> check_locks(bool exclusive, std::optional<id> own) {
        auto ids = list(file_type::lock);
        if (!ids) return std::move(ids).error();
        for (auto const& i : *ids) {
            if (own && i == *own) continue;
            auto text = load_unpacked(file_type::lock, i);
            if (!text) continue;  // unreadable locks are ignored, as restic does
            auto l = repo::lock::from_json(*text, "lock " + i.str());
            if (!l) continue;
            if (exclusive || l->exclusive)
                return make_error(errc::locked, std::string("repository is already locked ") + (l->exclusive ? "exclusively " : "") +
                                                    "by PID " + std::to_string(l->pid) + " on " + l->hostname + " by " +
                                                    l->username + " (lock " + i.short_str() + ", created " +
                                                    format_rfc3339(l->time) + "); run `stash unlock` if it is stale");
        }
        return {};
    }

    Backend backend_;
    crypto::restic_sealer sealer_;
    config config_;
    id key_id_;
    repo::index index_;
    std::mutex lock_check_mu_;
    std::shared_future<result<void>> lock_check_;  // a deferred lock re-check (acquire_lock)
    mutable std::mutex pending_mu_;
    std::vector<indexed_pack> pending_;
    std::size_t pending_blobs_ = 0;
    std::mutex claim_mu_;
    id_set claimed_[2];
};

}  // namespace stash::repo
