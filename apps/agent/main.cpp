// `stash`: the agent. restic-shaped commands over the stock policy stack (see policies.hpp).
#include "output.hpp"
#include "policies.hpp"

#include <stash/core/descriptors.hpp>
#include <stash/engine/backup.hpp>
#include <stash/engine/check.hpp>
#include <stash/engine/copy.hpp>
#include <stash/engine/forget.hpp>
#include <stash/engine/prune.hpp>
#include <stash/engine/rebuild_index.hpp>
#include <stash/engine/restore.hpp>
#include <stash/engine/snapshots.hpp>
#include <stash/engine/stats.hpp>
#include <stash/engine/tree_prefetch.hpp>

#include <CLI/CLI.hpp>
#include <boost/json/parse.hpp>

#include <malloc.h>

#include <fstream>
#include <iostream>
#include <sstream>

namespace {

using namespace stash;
using agent::stock_repo;

constexpr int exit_ok = 0, exit_fatal = 1, exit_partial = 3;

// Nodes of trees fetched ahead of a walk on network repositories (~400 bytes each: ~50 MiB at most).
// `linux`'s 88,000 fit: over REST with 0-20 ms a request `ls` took 1.25 s; with 32,768 the fetching
// paused once the first levels filled it and the walk went back to a request a directory (14.5 s).
constexpr std::size_t prefetch_nodes = 131072;

struct globals {
    std::string repo, password_file;
    bool json = false, quiet = false, no_lock = false, no_cache = false;
    std::string cache_dir;
    agent::backend_settings backend;
};

/// A fatal error: printed as "Fatal: …" and mapped to exit code 1.
struct fatal : std::runtime_error {
    using runtime_error::runtime_error;
};

template <class T>
T check(result<T> r) {
    if (!r) throw fatal(r.error().what());
    if constexpr (!std::is_void_v<T>) return std::move(*r);
}

std::string env(char const* n) {
    char const* v = std::getenv(n);
    return v ? v : "";
}

// The first line of a password file.
std::string password_from_file(std::string const& file) {
    std::ifstream in(file);
    if (!in) throw fatal("cannot read password file " + file + ": " + std::strerror(errno));
    std::string pw;
    std::getline(in, pw);
    return pw;
}

// Asks on the terminal; with `confirm`, twice.
std::string prompt_password(char const* prompt, bool confirm) {
    std::string pw = ::getpass(prompt);
    if (confirm && pw != std::string(::getpass("enter password again: "))) throw fatal("passwords do not match");
    return pw;
}

std::string read_password(globals const& g, bool confirm) {
    std::string file = g.password_file.empty() ? env("RESTIC_PASSWORD_FILE") : g.password_file;
    if (!file.empty()) return password_from_file(file);
    if (char const* pw = std::getenv("RESTIC_PASSWORD")) return pw;
    if (!::isatty(STDIN_FILENO))
        throw fatal("no password given: set RESTIC_PASSWORD or RESTIC_PASSWORD_FILE, or use --password-file");
    return prompt_password("enter password for repository: ", confirm);
}

// The repository named by -r, else by $RESTIC_REPOSITORY.
std::string repo_location(globals const& g) { return g.repo.empty() ? env("RESTIC_REPOSITORY") : g.repo; }

// Where network repositories keep their local cache: --cache-dir, else $RESTIC_CACHE_DIR (the
// layout is restic's, so the two can share it), else $XDG_CACHE_HOME/stash, else ~/.cache/stash.
std::string cache_base(globals const& g) {
    if (!g.cache_dir.empty()) return g.cache_dir;
    if (auto d = env("RESTIC_CACHE_DIR"); !d.empty()) return d;
    if (auto d = env("XDG_CACHE_HOME"); !d.empty()) return d + "/stash";
    if (auto d = env("HOME"); !d.empty()) return d + "/.cache/stash";
    return {};
}

// Whether a network repository's snapshots, index files and tree packs go through the local cache.
bool uses_cache(globals const& g) { return agent::is_remote(repo_location(g)) && !g.no_cache && !cache_base(g).empty(); }

// Whether walks fetch trees ahead (tree_prefetch): over a network without the cache. With it, a
// pack of trees comes whole once and the rest is read from disk, and fetching ahead gained nothing
// (REST, 0-20 ms a request, cache warm: ls 0.27-0.28 / 0.29-0.30 s, unchanged backup 0.48-0.61 /
// 0.47-0.48 s, restore 2.97-2.99 / 2.92-2.96 s with / without) for 6-30 MiB more memory.
bool fetch_trees_ahead(globals const& g) { return agent::is_remote(repo_location(g)) && !uses_cache(g); }

// With `cached` (all but check, which must read the repository itself), see uses_cache.
stock_repo open_repo(globals const& g, bool cached = true) {
    auto b = check(agent::backend_for(repo_location(g), g.backend));
    if (cached && uses_cache(g))
        b = agent::with_cache(std::move(b), cache_base(g), [](error const& e) { std::cerr << "warning: " << e.what() << "; going on without the cache\n"; });
    return check(stock_repo::open(std::move(b), read_password(g, false)));
}

void say(globals const& g, std::string const& s) {
    if (!g.quiet && !g.json) std::cout << s << '\n';
}

std::string json_str(std::string const& s) {
    std::string o = "\"";
    json_writer::escape(o, s);
    return o + '"';
}

// Prints a path that could not be backed up or restored: a restic-style error line with --json
// (`during` names the phase, if any), else a line on stderr.
std::function<void(std::string const&, std::string const&)> path_error_printer(globals const& g, char const* during) {
    return [&g, during](std::string const& path, std::string const& msg) {
        if (!g.json) return void(std::cerr << "error: " << path << ": " << msg << '\n');
        std::cout << "{\"message_type\":\"error\",\"error\":{\"message\":" << json_str(msg) << "}"
                  << (during ? std::string(",\"during\":\"") + during + "\"" : std::string()) << ",\"item\":" << json_str(path)
                  << "}\n";
    };
}

// --- init ----------------------------------------------------------------------------------------

int cmd_init(globals const& g, unsigned version, std::string const& chunker) {
    if (chunker != "rabin" && chunker != "fastcdc") throw fatal("--chunker must be rabin or fastcdc, not \"" + chunker + "\"");
    if (version != 1 && version != 2) throw fatal("--repository-version must be 1 or 2, not " + std::to_string(version));
    std::string const where = repo_location(g);
    auto b = check(agent::backend_for(where, g.backend));
    repo::init_options opt;
    opt.version = version;
    opt.chunker = chunker;
    opt.username = stock_repo::current_user();
    auto r = check(stock_repo::init(std::move(b), read_password(g, true), opt));
    if (g.json) {
        std::cout << "{\"message_type\":\"initialized\",\"id\":" << json_str(r.cfg().id)
                  << ",\"repository\":" << json_str(where) << ",\"version\":" << version << "}\n";
    } else {
        say(g, "created restic repository " + r.cfg().id.substr(0, 10) + " at " + where + " (version " +
                   std::to_string(version) + ", chunker " + chunker + ")");
        say(g, "\nPlease note that knowledge of your password is required to access\nthe repository. "
               "Losing your password means that your data is irrecoverably lost.");
    }
    return exit_ok;
}

// --- backup --------------------------------------------------------------------------------------

struct backup_args {
    std::vector<std::string> paths, tags, excludes;
    std::string host, parent, stdin_filename = "stdin", time;
    bool from_stdin = false, force = false;
};

// A shared lock (unless --no-lock), with the index loading during the lock's 200 ms wait. With
// `deferred`, the wait goes on beside the command's work until it writes an index or snapshot, or
// confirms the lock itself (restore, at its end).
std::unique_ptr<stock_repo::lock_holder> lock_loading_index(globals const& g, stock_repo& r, bool deferred = false) {
    if (g.no_lock) {
        check(r.load_index());
        return nullptr;
    }
    return check(r.acquire_lock(false, [&] { return r.load_index(); }, deferred));
}

int cmd_backup(globals const& g, backup_args const& a) {
    auto r = open_repo(g);
    auto lock = lock_loading_index(g, r, true);
    engine::backup_options opt;
    opt.paths = a.paths, opt.tags = a.tags, opt.excludes = a.excludes, opt.hostname = a.host, opt.force = a.force;
    opt.from_stdin = a.from_stdin, opt.stdin_filename = a.stdin_filename;
    // Over a network without the cache, the parent snapshot's trees come ahead of the walk, many a request.
    if (fetch_trees_ahead(g)) opt.prefetch_nodes = prefetch_nodes;
    if (!a.parent.empty()) opt.parent = check(r.find(file_type::snapshot, a.parent));
    if (!a.time.empty()) {
        std::string t = a.time;
        if (t.size() == 19 && t[10] == ' ') t[10] = 'T';
        if (t.size() == 19) t += 'Z';
        auto ts = parse_rfc3339(t);
        if (!ts) throw fatal("--time \"" + a.time + "\": expected \"YYYY-MM-DD HH:MM:SS\"");
        opt.time = *ts;
    }
    opt.on_progress = agent::progress_printer(g.json, g.quiet, "backup ");
    opt.progress_interval = std::chrono::milliseconds(g.json ? 1000 : 200);
    opt.on_error = path_error_printer(g, "archival");
    if (!g.json && !g.quiet && !a.from_stdin && opt.parent) std::cout << "using parent snapshot " << opt.parent->short_str() << '\n';
    auto chunker = check(agent::chunker_for(r.cfg()));
    auto s = check(std::visit([&](auto const& c) { return engine::backup<agent::stock_compressor>(r, c, opt); }, chunker));
    if (g.json) {
        std::printf("{\"message_type\":\"summary\",\"files_new\":%llu,\"files_changed\":%llu,\"files_unmodified\":%llu,"
                    "\"dirs_new\":%llu,\"dirs_changed\":%llu,\"dirs_unmodified\":%llu,\"data_blobs\":%llu,\"tree_blobs\":%llu,"
                    "\"data_added\":%llu,\"total_files_processed\":%llu,\"total_bytes_processed\":%llu,"
                    "\"total_duration\":%.3f,\"snapshot_id\":\"%s\",\"error_count\":%llu}\n",
                    (unsigned long long)s.files_new, (unsigned long long)s.files_changed, (unsigned long long)s.files_unmodified,
                    (unsigned long long)s.dirs_new, (unsigned long long)s.dirs_changed, (unsigned long long)s.dirs_unmodified,
                    (unsigned long long)s.data_blobs, (unsigned long long)s.tree_blobs, (unsigned long long)s.data_added,
                    (unsigned long long)s.total_files_processed, (unsigned long long)s.total_bytes_processed, s.total_duration,
                    s.snapshot_id.str().c_str(), (unsigned long long)s.errors);
    } else if (!g.quiet) {
        std::printf("\nFiles:       %5llu new, %5llu changed, %5llu unmodified\n", (unsigned long long)s.files_new,
                    (unsigned long long)s.files_changed, (unsigned long long)s.files_unmodified);
        std::printf("Dirs:        %5llu new, %5llu changed, %5llu unmodified\n", (unsigned long long)s.dirs_new,
                    (unsigned long long)s.dirs_changed, (unsigned long long)s.dirs_unmodified);
        std::printf("Added to the repository: %s (%llu data blobs, %llu tree blobs)\n\n", agent::format_bytes(double(s.data_added)).c_str(),
                    (unsigned long long)s.data_blobs, (unsigned long long)s.tree_blobs);
        std::printf("processed %llu files, %s in %s\n", (unsigned long long)s.total_files_processed,
                    agent::format_bytes(double(s.total_bytes_processed)).c_str(), agent::format_duration(s.total_duration).c_str());
        std::printf("snapshot %s saved\n", s.snapshot_id.short_str().c_str());
    }
    if (s.errors) {
        std::cerr << "Warning: at least one source file could not be read (" << s.errors << " errors); snapshot "
                  << s.snapshot_id.short_str() << " was saved without them\n";
        return exit_partial;
    }
    return exit_ok;
}

// --- restore -------------------------------------------------------------------------------------

int cmd_restore(globals const& g, std::string const& what, std::string const& target, std::vector<std::string> const& includes,
                std::vector<std::string> const& excludes, std::vector<std::string> const& hosts) {
    // glibc's arena per thread (no M_ARENA_MAX): one shared arena kept the peak no lower now (linux:
    // 50-53 MiB either way) and made workers wait on its lock (~110 ms of a 1.7 s restore; 5% slower).
    auto r = open_repo(g);
    // The lock's re-check runs beside the restore, whose reads change nothing in the repository
    // (the wait was 8% of restoring `linux` to tmpfs). A conflicting exclusive lock (a prune that
    // began as we locked) is reported at the end instead of at the start, in place of what it
    // caused: blobs whose packs it removed.
    auto lock = lock_loading_index(g, r, true);
    std::string id_part = what, sub;
    if (auto c = what.find(':'); c != std::string::npos) id_part = what.substr(0, c), sub = what.substr(c + 1);
    auto snap = check(engine::find_snapshot(r, id_part, {hosts, {}, {}}));
    engine::restore_options opt;
    opt.target = target, opt.subpath = sub, opt.includes = includes, opt.excludes = excludes;
    // Workers spend most of a network restore waiting on responses: keep eight requests in flight;
    // without the cache, fetch trees ahead of the walk, many a request, not a round trip per directory.
    if (agent::is_remote(repo_location(g))) opt.threads = 8;
    if (fetch_trees_ahead(g)) opt.prefetch_nodes = prefetch_nodes;
    opt.on_progress = agent::progress_printer(g.json, g.quiet, "restore");
    opt.progress_interval = std::chrono::milliseconds(g.json ? 1000 : 200);
    opt.on_error = path_error_printer(g, nullptr);
    say(g, "restoring snapshot " + snap.sid.short_str() + " of " + (snap.snap.paths.empty() ? "" : snap.snap.paths[0]) +
               (snap.snap.paths.size() > 1 ? " …" : "") + " at " + format_rfc3339(snap.snap.time) + " to " + target);
    auto restored = engine::restore(r, snap.snap, opt);
    check(r.confirm_lock());
    auto s = check(std::move(restored));
    if (g.json) {
        std::printf("{\"message_type\":\"summary\",\"snapshot_id\":\"%s\",\"files_restored\":%llu,\"dirs_restored\":%llu,"
                    "\"bytes_restored\":%llu,\"total_duration\":%.3f,\"error_count\":%llu}\n",
                    snap.sid.str().c_str(), (unsigned long long)s.files, (unsigned long long)s.dirs, (unsigned long long)s.bytes,
                    s.seconds, (unsigned long long)s.errors);
    } else {
        say(g, "Summary: restored " + std::to_string(s.files) + " files, " + std::to_string(s.dirs) + " directories, " +
                   agent::format_bytes(double(s.bytes)) + " in " + agent::format_duration(s.seconds));
    }
    if (s.errors) {
        std::cerr << "Fatal: there were " << s.errors << " errors while restoring\n";
        return exit_fatal;
    }
    return exit_ok;
}

// --- snapshots, ls, cat, unlock ------------------------------------------------------------------

std::string snapshot_json(engine::snapshot_entry const& e, bool ls_header) {
    std::string j = e.snap.to_json();
    j.pop_back();
    j += ",\"id\":\"" + e.sid.str() + "\",\"short_id\":\"" + e.sid.short_str() + "\"";
    if (ls_header) j += ",\"struct_type\":\"snapshot\"";
    return j + "}";
}

int cmd_snapshots(globals const& g, engine::snapshot_filter const& f) {
    auto r = open_repo(g);
    auto all = check(engine::load_snapshots(r, f));
    if (g.json) {
        std::cout << '[';
        for (std::size_t i = 0; i < all.size(); ++i) std::cout << (i ? "," : "") << snapshot_json(all[i], false);
        std::cout << "]\n";
        return exit_ok;
    }
    std::printf("%-8s  %-19s  %-16s  %-12s  %s\n", "ID", "Time", "Host", "Tags", "Paths");
    std::printf("%s\n", std::string(80, '-').c_str());
    for (auto const& e : all) {
        std::string tags, when = format_rfc3339({e.snap.time.sec, 0, e.snap.time.offset_min}).substr(0, 19);
        when[10] = ' ';
        for (auto const& t : e.snap.tags) tags += (tags.empty() ? "" : ",") + t;
        for (std::size_t i = 0; i < std::max<std::size_t>(1, e.snap.paths.size()); ++i)
            std::printf("%-8s  %-19s  %-16s  %-12s  %s\n", i ? "" : e.sid.short_str().c_str(), i ? "" : when.c_str(),
                        i ? "" : e.snap.hostname.c_str(), i ? "" : tags.c_str(),
                        i < e.snap.paths.size() ? e.snap.paths[i].c_str() : "");
    }
    std::printf("%s\n%zu snapshots\n", std::string(80, '-').c_str(), all.size());
    return exit_ok;
}

// Depth first; with `ahead` (network repositories without the cache) the trees come fetched level by level, many a request.
template <class Fn>
void walk_tree(stock_repo& r, engine::tree_prefetch<stock_repo>* ahead, std::vector<repo::node> const& nodes, std::string const& prefix, Fn&& fn) {
    for (auto const& n : nodes) {
        std::string const path = prefix + "/" + n.name;
        fn(path, n);
        if (n.type != repo::node_type::dir || !n.subtree) continue;
        auto sub = ahead ? ahead->take(*n.subtree) : r.load_tree(*n.subtree);
        walk_tree(r, ahead, check(std::move(sub)), path, fn);
    }
}

int cmd_ls(globals const& g, std::string const& what, bool long_format) {
    auto r = open_repo(g);
    auto snap = check(engine::find_snapshot(r, what));
    check(r.load_index());
    if (g.json) std::cout << snapshot_json(snap, true) << '\n';
    else say(g, "snapshot " + snap.sid.short_str() + " of [" + (snap.snap.paths.empty() ? "" : snap.snap.paths[0]) + "] at " +
                    format_rfc3339(snap.snap.time) + "):");
    auto const root = check(r.load_tree(snap.snap.tree));
    std::optional<engine::tree_prefetch<stock_repo>> ahead;
    if (fetch_trees_ahead(g)) {
        ahead.emplace(r, [](std::string const&, std::string const&) { return true; }, prefetch_nodes);
        ahead->start(root, "");
    }
    walk_tree(r, ahead ? &*ahead : nullptr, root, "", [&](std::string const& path, repo::node const& n) {
        if (g.json) {
            std::string j;
            json_writer w(j);
            w.begin_object().field("name", n.name).field("type", repo::to_string(n.type)).field("path", path);
            w.field("uid", n.uid).field("gid", n.gid);
            if (n.type == repo::node_type::file) w.field("size", n.size);
            w.field("mode", n.mode).field("mtime", format_rfc3339(n.mtime)).field("atime", format_rfc3339(n.atime));
            w.field("ctime", format_rfc3339(n.ctime)).field("struct_type", "node").end_object();
            std::cout << j << '\n';
        } else if (long_format) {
            std::printf("%o %5u %5u %12llu %s %s\n", repo::go_mode::to_posix_perm(n.mode), n.uid, n.gid,
                        (unsigned long long)n.size, format_rfc3339(n.mtime).substr(0, 19).c_str(), path.c_str());
        } else {
            std::cout << path << '\n';
        }
    });
    return exit_ok;
}

int cmd_cat(globals const& g, std::string const& kind, std::string const& arg) {
    auto r = open_repo(g);
    auto print_json = [](std::string_view text) {
        boost::system::error_code ec;
        auto v = boost::json::parse(text, ec);
        if (ec) throw fatal("stored document is not JSON: " + ec.message());
        std::string out;
        agent::pretty(out, v);
        std::cout << out << '\n';
    };
    auto need = [&] {
        if (arg.empty()) throw fatal("cat " + kind + " needs an ID");
    };
    if (kind == "config") {
        print_json(r.cfg().to_json());
    } else if (kind == "masterkey") {
        print_json(repo::master_key_json(r.sealer().key()));
    } else if (kind == "snapshot" || kind == "index" || kind == "lock") {
        need();
        auto t = kind == "snapshot" ? file_type::snapshot : kind == "index" ? file_type::index : file_type::lock;
        print_json(check(r.load_unpacked(t, check(r.find(t, arg)))));
    } else if (kind == "key") {
        need();
        auto kid = check(r.find(file_type::key, arg));
        bytes raw;
        check(r.backend().get({file_type::key, kid.str()}, 0, 0, raw));
        print_json(as_chars(raw));
    } else if (kind == "blob" || kind == "tree") {
        need();
        auto bid = check(id::parse(arg));
        check(r.load_index());
        auto t = kind == "tree" ? repo::blob_type::tree : repo::blob_type::data;
        auto b = r.load_blob(t, bid);
        if (!b && kind == "blob") b = r.load_blob(repo::blob_type::tree, bid);
        auto data = check(std::move(b));
        std::cout.write(reinterpret_cast<char const*>(data.data()), std::streamsize(data.size()));
    } else if (kind == "pack") {
        need();
        auto pid = check(r.find(file_type::pack, arg));
        bytes raw;
        check(r.backend().get({file_type::pack, pid.str()}, 0, 0, raw));
        std::cout.write(reinterpret_cast<char const*>(raw.data()), std::streamsize(raw.size()));
    } else {
        throw fatal("cat: unknown type \"" + kind + "\" (config, masterkey, key, lock, snapshot, index, pack, blob, tree)");
    }
    return exit_ok;
}

struct prune_args {
    std::string max_unused = "5%", max_repack_size;
    bool repack_small = false, repack_uncompressed = false, dry_run = false;

    void add_to(CLI::App* cmd, bool with_dry_run) {
        cmd->add_option("--max-unused", max_unused, "tolerate this much unused space: P%, a size (K/M/G/T) or unlimited")
            ->default_val("5%");
        cmd->add_option("--max-repack-size", max_repack_size, "repack at most this many bytes (K/M/G/T)");
        cmd->add_flag("--repack-small", repack_small, "also repack packs below 80% of the target pack size");
        cmd->add_flag("--repack-uncompressed", repack_uncompressed, "compress data stored uncompressed (v2)");
        if (with_dry_run) cmd->add_flag("-n,--dry-run", dry_run, "only show what would be done");
    }

    engine::prune_options options() const {
        engine::prune_options o;
        o.unused = check(engine::max_unused::parse(max_unused));
        if (!max_repack_size.empty()) {
            auto m = check(engine::max_unused::parse(max_repack_size));
            if (m.k != engine::max_unused::kind::bytes) throw fatal("--max-repack-size \"" + max_repack_size + "\": expected a size");
            o.max_repack_bytes = m.bytes;
        }
        o.repack_small = repack_small, o.repack_uncompressed = repack_uncompressed, o.dry_run = dry_run;
        return o;
    }
};

// Prunes an open, exclusively locked repository and reports as restic does.
int run_prune(globals const& g, stock_repo& r, engine::prune_options opt) {
    opt.on_progress = [&g](std::string const& m) { say(g, m); };
    auto s = check(engine::prune(r, opt));
    auto const total_blobs = s.blobs.used + s.blobs.duplicate + s.blobs.unused;
    auto const total_size = s.size.used + s.size.duplicate + s.size.unused + s.unreferenced_size;
    auto const unused_after = s.size.duplicate + s.size.unused - s.size.remove - s.size.repackrm;
    if (g.json) {
        auto counts = [](engine::prune_counts const& c) {
            return "{\"used\":" + std::to_string(c.used) + ",\"duplicate\":" + std::to_string(c.duplicate) +
                   ",\"unused\":" + std::to_string(c.unused) + ",\"remove\":" + std::to_string(c.remove) +
                   ",\"repack\":" + std::to_string(c.repack) + ",\"repackrm\":" + std::to_string(c.repackrm) + "}";
        };
        std::cout << "{\"message_type\":\"summary\",\"dry_run\":" << (opt.dry_run ? "true" : "false")
                  << ",\"blobs\":" << counts(s.blobs) << ",\"size\":" << counts(s.size)
                  << ",\"unreferenced_size\":" << s.unreferenced_size << ",\"packs\":{\"used\":" << s.packs_used
                  << ",\"partly_used\":" << s.packs_partly_used << ",\"unused\":" << s.packs_unused
                  << ",\"keep\":" << s.packs_keep << ",\"repack\":" << s.packs_repack << ",\"remove\":" << s.packs_remove
                  << ",\"unreferenced\":" << s.packs_unreferenced << ",\"missing\":" << s.packs_missing
                  << ",\"written\":" << s.packs_written << "},\"total_prune_size\":" << s.total_prune_size()
                  << ",\"remaining_size\":" << total_size - s.total_prune_size() << ",\"unused_size_after\":" << unused_after
                  << "}\n";
        return exit_ok;
    }
    auto line = [&](char const* label, std::uint64_t blobs, std::uint64_t bytes) {
        char buf[128];
        std::snprintf(buf, sizeof buf, "%-14s%10llu blobs / %s", label, (unsigned long long)blobs, agent::format_bytes(double(bytes)).c_str());
        say(g, buf);
    };
    line("used:", s.blobs.used, s.size.used);
    if (s.blobs.duplicate) line("duplicates:", s.blobs.duplicate, s.size.duplicate);
    line("unused:", s.blobs.unused, s.size.unused);
    if (s.unreferenced_size) say(g, "unreferenced:  " + agent::format_bytes(double(s.unreferenced_size)));
    line("total:", total_blobs, total_size);
    auto percent = [](std::uint64_t part, std::uint64_t whole) {
        char buf[32];
        std::snprintf(buf, sizeof buf, "%.2f%%", whole ? 100.0 * double(part) / double(whole) : 0.0);
        return std::string(buf);
    };
    say(g, "unused size: " + percent(s.size.duplicate + s.size.unused, total_size) + " of total size\n");
    line("to repack:", s.blobs.repack, s.size.repack);
    line("this removes:", s.blobs.repackrm, s.size.repackrm);
    line("to delete:", s.blobs.remove, s.size.remove + s.unreferenced_size);
    line("total prune:", s.blobs.remove + s.blobs.repackrm, s.total_prune_size());
    line("remaining:", total_blobs - s.blobs.remove - s.blobs.repackrm, total_size - s.total_prune_size());
    say(g, "unused size after prune: " + agent::format_bytes(double(unused_after)) + " (" +
               percent(unused_after, total_size - s.total_prune_size()) + " of remaining size)\n");
    say(g, "packs: " + std::to_string(s.packs_keep) + " kept, " + std::to_string(s.packs_repack) + " repacked into " +
               std::to_string(s.packs_written) + ", " + std::to_string(s.packs_remove) + " deleted, " +
               std::to_string(s.packs_unreferenced) + " unreferenced deleted" +
               (s.packs_missing ? ", " + std::to_string(s.packs_missing) + " missing dropped from the index" : ""));
    say(g, opt.dry_run ? "dry run: nothing was changed" : "done");
    return exit_ok;
}

struct forget_args {
    engine::keep_policy policy;
    std::string within, group_by = "host,paths";
    std::vector<std::string> keep_tags, ids;
    engine::snapshot_filter filter;
    bool dry_run = false, prune = false;
    prune_args pa;
};

int cmd_forget(globals const& g, forget_args a) {
    if (!a.within.empty()) a.policy.within = check(engine::calendar_duration::parse(a.within));
    for (auto const& t : a.keep_tags) {
        std::vector<std::string> list;
        for (auto part : engine::detail::components_of(t, ',')) list.emplace_back(part);
        if (list.empty()) list.emplace_back();
        a.policy.tags.push_back(std::move(list));
    }
    auto by = check(engine::group_by::parse(a.group_by));
    auto const prune_opt = a.pa.options();  // bad prune flags fail before anything is removed
    auto r = open_repo(g);
    std::unique_ptr<stock_repo::lock_holder> lock;
    if (!g.no_lock && !a.dry_run) lock = check(r.acquire_lock(true));
    std::vector<engine::snapshot_entry> doomed;
    std::vector<engine::forget_group> groups;
    if (!a.ids.empty()) {
        for (auto const& i : a.ids) doomed.push_back(check(engine::find_snapshot(r, i)));
    } else {
        if (a.policy.empty() && !g.json) say(g, "no policy was specified, no snapshots will be removed");
        groups = engine::forget(check(engine::load_snapshots(r, a.filter)), a.policy, by, timestamp::now());
        for (auto const& gr : groups) doomed.insert(doomed.end(), gr.remove.begin(), gr.remove.end());
    }
    if (g.json) {
        std::string j = "[";
        auto list = [&](std::vector<engine::snapshot_entry> const& v) {
            if (v.empty()) return std::string("null");
            std::string s = "[";
            for (std::size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + snapshot_json(v[i], false);
            return s + "]";
        };
        auto strings = [](std::vector<std::string> const& v) {
            if (v.empty()) return std::string("null");
            std::string s = "[";
            for (std::size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + json_str(v[i]);
            return s + "]";
        };
        for (std::size_t gi = 0; gi < groups.size(); ++gi) {
            auto const& gr = groups[gi];
            j += (gi ? "," : "") + std::string("{\"tags\":") + strings(gr.tags) + ",\"host\":" + json_str(gr.host) +
                 ",\"paths\":" + strings(gr.paths) + ",\"keep\":" + list(gr.keep) + ",\"remove\":" + list(gr.remove) +
                 ",\"reasons\":[";
            for (std::size_t k = 0; k < gr.keep.size(); ++k)
                j += (k ? "," : "") + std::string("{\"snapshot\":") + snapshot_json(gr.keep[k], false) +
                     ",\"matches\":" + strings(gr.reasons[k]) + "}";
            j += "]}";
        }
        std::cout << j << "]\n";
    } else {
        for (auto const& gr : groups) {
            say(g, "snapshots for host " + gr.host + (gr.paths.empty() ? "" : ", paths " + gr.paths[0] + (gr.paths.size() > 1 ? " …" : "")) +
                       ": keep " + std::to_string(gr.keep.size()) + ", remove " + std::to_string(gr.remove.size()));
            for (std::size_t k = 0; k < gr.keep.size(); ++k) {
                std::string why;
                for (auto const& w : gr.reasons[k]) why += (why.empty() ? "" : ", ") + w;
                say(g, "  keep   " + gr.keep[k].sid.short_str() + "  " + format_rfc3339(gr.keep[k].snap.time) + "  " + why);
            }
            for (auto const& e : gr.remove) say(g, "  remove " + e.sid.short_str() + "  " + format_rfc3339(e.snap.time));
        }
    }
    if (a.dry_run) return exit_ok;
    for (auto const& e : doomed) {
        check(r.backend().remove({file_type::snapshot, e.sid.str()}));
        say(g, "removed snapshot " + e.sid.short_str());
    }
    if (a.prune && !doomed.empty()) return run_prune(g, r, prune_opt);
    return exit_ok;
}

int cmd_prune(globals const& g, prune_args const& a) {
    auto opt = a.options();
    auto r = open_repo(g);
    std::unique_ptr<stock_repo::lock_holder> lock;
    if (!g.no_lock) lock = check(r.acquire_lock(true));
    return run_prune(g, r, opt);
}

int cmd_check(globals const& g, bool read_data, std::string const& subset) {
    engine::check_options opt;
    opt.read_data = read_data || !subset.empty();
    if (!subset.empty()) {
        unsigned n = 0, m = 0;
        double pct = 0;
        char tail = 0;
        if (std::sscanf(subset.c_str(), "%u/%u%c", &n, &m, &tail) == 2 && n >= 1 && n <= m) {
            opt.subset_n = n, opt.subset_m = m;
        } else if (std::sscanf(subset.c_str(), "%lf%%%c", &pct, &tail) == 1 && pct > 0 && pct <= 100 && subset.back() == '%') {
            opt.subset_percent = pct;
        } else {
            throw fatal("--read-data-subset \"" + subset + "\": expected N/M (1 <= N <= M) or P% (0 < P <= 100)");
        }
    }
    opt.on_error = [&g](std::string const& m) {
        if (g.json) std::cout << "{\"message_type\":\"error\",\"message\":" << json_str(m) << "}\n";
        else std::cerr << "error: " << m << '\n';
    };
    opt.on_hint = [&g](std::string const& m) { say(g, "hint: " + m); };
    auto r = open_repo(g, false);  // what is in the repository, not in a cache
    std::unique_ptr<stock_repo::lock_holder> lock;
    if (!g.no_lock) lock = check(r.acquire_lock(true));
    say(g, "checking index, packs, snapshots and trees" + std::string(opt.read_data ? ", reading data" : ""));
    auto s = check(engine::check(r, opt));
    if (g.json)
        std::printf("{\"message_type\":\"summary\",\"errors\":%llu,\"hints\":%llu,\"packs\":%llu,\"packs_read\":%llu,"
                    "\"blobs_read\":%llu,\"snapshots\":%llu,\"trees\":%llu}\n",
                    (unsigned long long)s.errors, (unsigned long long)s.hints, (unsigned long long)s.packs,
                    (unsigned long long)s.packs_read, (unsigned long long)s.blobs_read, (unsigned long long)s.snapshots,
                    (unsigned long long)s.trees);
    if (s.errors) {
        std::cerr << "Fatal: repository contains errors (" << s.errors << ")\n";
        return exit_fatal;
    }
    say(g, "no errors were found (" + std::to_string(s.snapshots) + " snapshots, " + std::to_string(s.trees) + " trees, " +
               std::to_string(s.packs) + " packs" + (opt.read_data ? ", " + std::to_string(s.packs_read) + " read" : "") + ")");
    return exit_ok;
}

struct copy_args {
    std::string from_repo, from_password_file;
    std::vector<std::string> ids;
    engine::snapshot_filter filter;
};

// Copies snapshots from another repository (its own password) into this one.
int cmd_copy(globals const& g, copy_args const& a) {
    std::string from = a.from_repo.empty() ? env("RESTIC_FROM_REPOSITORY") : a.from_repo;
    if (from.empty()) throw fatal("copy needs the source repository: --from-repo or RESTIC_FROM_REPOSITORY");
    std::string pw;
    if (std::string f = a.from_password_file.empty() ? env("RESTIC_FROM_PASSWORD_FILE") : a.from_password_file; !f.empty())
        pw = password_from_file(f);
    else if (char const* p = std::getenv("RESTIC_FROM_PASSWORD")) pw = p;
    else if (::isatty(STDIN_FILENO)) pw = prompt_password("enter password for source repository: ", false);
    else throw fatal("no password for the source repository: --from-password-file, RESTIC_FROM_PASSWORD_FILE or RESTIC_FROM_PASSWORD");
    auto src = check(stock_repo::open(check(agent::backend_for(from, g.backend)), pw));
    auto dst = open_repo(g);
    std::unique_ptr<stock_repo::lock_holder> src_lock, dst_lock;
    if (!g.no_lock) src_lock = check(src.acquire_lock(false)), dst_lock = check(dst.acquire_lock(false));
    std::vector<engine::snapshot_entry> snaps;
    if (a.ids.empty()) snaps = check(engine::load_snapshots(src, a.filter));
    else
        for (auto const& i : a.ids) snaps.push_back(check(engine::find_snapshot(src, i, a.filter)));
    engine::copy_options opt;
    opt.on_snapshot = [&g](id const& s, id const& d, bool skipped) {
        if (g.json)
            std::cout << "{\"message_type\":\"snapshot\",\"source\":\"" << s.str() << "\",\"id\":\"" << d.str()
                      << "\",\"skipped\":" << (skipped ? "true" : "false") << "}\n";
        else if (skipped) say(g, "skipping snapshot " + s.short_str() + ", already copied as " + d.short_str());
        else say(g, "copied snapshot " + s.short_str() + " as " + d.short_str());
    };
    auto st = check(engine::copy_snapshots<agent::stock_compressor>(src, dst, snaps, opt));
    if (g.json)
        std::cout << "{\"message_type\":\"summary\",\"snapshots_copied\":" << st.snapshots_copied
                  << ",\"snapshots_skipped\":" << st.snapshots_skipped << ",\"blobs_copied\":" << st.blobs_copied
                  << ",\"bytes_copied\":" << st.bytes_copied << ",\"packs_written\":" << st.packs_written << "}\n";
    else
        say(g, "copied " + std::to_string(st.snapshots_copied) + " snapshots (" + std::to_string(st.blobs_copied) + " blobs, " +
                   agent::format_bytes(double(st.bytes_copied)) + "), skipped " + std::to_string(st.snapshots_skipped));
    return exit_ok;
}

// Statistics over all (filtered) snapshots or the given ones, in restic's JSON shape.
int cmd_stats(globals const& g, std::vector<std::string> const& ids, std::string const& mode, engine::snapshot_filter const& f) {
    engine::stats_mode m;
    if (mode == "restore-size") m = engine::stats_mode::restore_size;
    else if (mode == "raw-data") m = engine::stats_mode::raw_data;
    else throw fatal("--mode \"" + mode + "\": expected restore-size or raw-data");
    auto r = open_repo(g);
    auto lock = lock_loading_index(g, r);
    std::vector<engine::snapshot_entry> snaps;
    if (ids.empty()) snaps = check(engine::load_snapshots(r, f));
    else
        for (auto const& i : ids) snaps.push_back(check(engine::find_snapshot(r, i, f)));
    auto s = check(engine::compute_stats(r, snaps, m));
    if (g.json) {
        std::cout << "{\"total_size\":" << s.total_size << ",\"total_file_count\":" << s.total_file_count;
        if (m == engine::stats_mode::raw_data)
            std::cout << ",\"total_uncompressed_size\":" << s.total_uncompressed_size << ",\"total_blob_count\":" << s.total_blob_count;
        std::cout << ",\"snapshots_count\":" << s.snapshots_count << "}\n";
        return exit_ok;
    }
    say(g, "Stats in " + mode + " mode:");
    say(g, "Snapshots processed:   " + std::to_string(s.snapshots_count));
    if (s.total_blob_count) say(g, "   Total Blob Count:   " + std::to_string(s.total_blob_count));
    if (s.total_file_count) say(g, "   Total File Count:   " + std::to_string(s.total_file_count));
    if (m == engine::stats_mode::raw_data)
        say(g, "  Uncompressed Size:   " + agent::format_bytes(double(s.total_uncompressed_size)));
    say(g, "         Total Size:   " + agent::format_bytes(double(s.total_size)));
    return exit_ok;
}

int cmd_rebuild_index(globals const& g, bool read_all) {
    auto r = open_repo(g);
    std::unique_ptr<stock_repo::lock_holder> lock;
    if (!g.no_lock) lock = check(r.acquire_lock(true));
    engine::rebuild_index_options opt;
    opt.read_all_packs = read_all;
    opt.on_problem = [&g](std::string const& m) {
        if (g.json) std::cout << "{\"message_type\":\"error\",\"message\":" << json_str(m) << "}\n";
        else std::cerr << "error: " << m << '\n';
    };
    auto s = check(engine::rebuild_index(r, opt));
    if (g.json)
        std::cout << "{\"message_type\":\"summary\",\"packs\":" << s.packs << ",\"packs_read\":" << s.packs_read
                  << ",\"packs_skipped\":" << s.packs_skipped << ",\"packs_dropped\":" << s.packs_dropped
                  << ",\"index_files_written\":" << s.index_files_written << ",\"index_files_removed\":" << s.index_files_removed
                  << ",\"index_files_unreadable\":" << s.index_files_unreadable << "}\n";
    else
        say(g, "indexed " + std::to_string(s.packs) + " packs (" + std::to_string(s.packs_read) + " read from their headers, " +
                   std::to_string(s.packs_skipped) + " unreadable left out, " + std::to_string(s.packs_dropped) +
                   " missing dropped) into " + std::to_string(s.index_files_written) + " index files, replacing " +
                   std::to_string(s.index_files_removed));
    return s.packs_skipped || s.index_files_unreadable ? exit_partial : exit_ok;
}

int cmd_key(globals const& g, std::string const& action, std::string const& arg, std::string const& new_password_file) {
    auto r = open_repo(g);
    auto new_password = [&] {
        if (!new_password_file.empty()) return password_from_file(new_password_file);
        if (!::isatty(STDIN_FILENO)) throw fatal("key " + action + " needs --new-password-file when not on a terminal");
        return prompt_password("enter new password: ", true);
    };
    std::unique_ptr<stock_repo::lock_holder> lock;
    if (action != "list" && !g.no_lock) lock = check(r.acquire_lock(true));
    if (action == "list") {
        auto ids = check(r.list(file_type::key));
        if (g.json) std::cout << '[';
        else std::printf(" %-10s %-10s %-20s %s\n", "ID", "User", "Host", "Created");
        for (std::size_t i = 0; i < ids.size(); ++i) {
            auto k = check(r.load_key(ids[i]));
            bool const current = ids[i] == r.key_id();
            if (g.json)
                std::cout << (i ? "," : "") << "{\"current\":" << (current ? "true" : "false") << ",\"id\":\"" << ids[i].str()
                          << "\",\"userName\":" << json_str(k.username) << ",\"hostName\":" << json_str(k.hostname)
                          << ",\"created\":\"" << format_rfc3339(k.created) << "\"}";
            else
                std::printf("%s%-10s %-10s %-20s %s\n", current ? "*" : " ", ids[i].short_str().c_str(), k.username.c_str(),
                            k.hostname.c_str(), format_rfc3339(k.created).substr(0, 19).c_str());
        }
        if (g.json) std::cout << "]\n";
        return exit_ok;
    }
    if (action == "add" || action == "passwd") {
        auto kid = check(r.add_key(new_password(), {32768, 8, 1}, stock_repo::current_user(), repo::this_hostname()));
        if (action == "passwd") check(r.backend().remove({file_type::key, r.key_id().str()}));
        say(g, "saved new key as " + kid.short_str() +
                   (action == "passwd" ? ", removed the old key " + r.key_id().short_str() : ""));
        return exit_ok;
    }
    if (action == "remove") {
        if (arg.empty()) throw fatal("key remove needs a key ID");
        auto kid = check(r.find(file_type::key, arg));
        if (kid == r.key_id()) throw fatal("refusing to remove key " + kid.short_str() + ": it is the one in use (use another password)");
        check(r.backend().remove({file_type::key, kid.str()}));
        say(g, "removed key " + kid.short_str());
        return exit_ok;
    }
    throw fatal("key: unknown action \"" + action + "\" (list, add, remove, passwd)");
}

int cmd_unlock(globals const& g, bool all) {
    auto r = open_repo(g);
    auto n = check(r.remove_locks(all));
    if (g.json) std::cout << "{\"message_type\":\"unlock\",\"removed\":" << n << "}\n";
    else say(g, "successfully removed " + std::to_string(n) + " locks");
    return exit_ok;
}

// Lists the files of one type, as `restic list` does: IDs one a line (with --json, one array).
int cmd_list(globals const& g, std::string const& what) {
    static std::map<std::string, file_type> const types{{"packs", file_type::pack}, {"index", file_type::index}, {"snapshots", file_type::snapshot},
                                                       {"keys", file_type::key}, {"locks", file_type::lock}};
    auto t = types.find(what);
    if (t == types.end()) throw fatal("list: \"" + what + "\": expected packs, index, snapshots, keys or locks");
    auto r = open_repo(g);
    std::vector<std::string> names;
    check(r.backend().list(t->second, [&](std::string_view n, std::uint64_t) { names.emplace_back(n); }));
    std::sort(names.begin(), names.end());
    if (g.json) {
        boost::json::array a(names.begin(), names.end());
        std::cout << boost::json::serialize(a) << '\n';
    } else {
        for (auto const& n : names) std::cout << n << '\n';
    }
    return exit_ok;
}

}  // namespace

int main(int argc, char** argv) {
    // Chunk-sized buffers (256 KiB … 8 MiB) come and go on every worker; a fixed mmap threshold hands
    // them back to the system on free instead of letting glibc's per-thread arenas keep them.
    ::mallopt(M_MMAP_THRESHOLD, 256 * 1024);
    reserve_descriptors(2048);  // restore holds up to 1,100, backup ~400; while we have one thread
    CLI::App app{"stash: backup and restore into restic-format repositories", "stash"};
    app.require_subcommand(1);
    app.fallthrough();  // global flags may follow the command, as with restic
    app.set_version_flag("--version", "stash 0.1.0 (restic repository format v1/v2)");
    globals g;
    app.add_option("-r,--repo", g.repo, "repository (a path, local:PATH, rest:URL, s3:HOST/BUCKET[/PREFIX], azure:CONTAINER:/PREFIX, gs:BUCKET:/PREFIX, swift:CONTAINER:/PREFIX, b2:BUCKET:/PREFIX); default $RESTIC_REPOSITORY");
    app.add_option("-p,--password-file", g.password_file, "read the password from a file; default $RESTIC_PASSWORD_FILE");
    app.add_flag("--json", g.json, "machine-readable output");
    app.add_flag("-q,--quiet", g.quiet, "print only errors");
    app.add_flag("--no-lock", g.no_lock, "do not lock the repository");
    app.add_option("--cache-dir", g.cache_dir, "local cache of network repositories (snapshots, index files, packs of trees); "
                                              "default $RESTIC_CACHE_DIR, else $XDG_CACHE_HOME/stash, else ~/.cache/stash");
    app.add_flag("--no-cache", g.no_cache, "do not use the local cache");
    app.add_option("-o,--option", g.backend.options, "backend option KEY=VALUE (s3.region, s3.bucket-lookup, s3.list-max-keys, "
                                                     "azure.list-max-results, gs.list-max-results, swift.list-limit, b2.list-max-file-count, <backend>.connections); repeatable");
    app.add_option_function<std::string>("--cacert", [&g](std::string const& f) {
        std::ifstream in(f, std::ios::binary);
        if (!in) throw CLI::ValidationError("--cacert", "cannot read " + f);
        g.backend.ca_pem.assign(std::istreambuf_iterator<char>(in), {});
    }, "trust this CA certificate (PEM) for TLS to the backend");
    app.add_flag("--insecure-tls", g.backend.insecure_tls, "do not verify the backend's TLS certificate");

    int rc = exit_ok;
    auto run = [&rc](auto&& fn) { return [&rc, fn] { rc = fn(); }; };

    unsigned version = 2;
    std::string chunker = "rabin";
    auto* init = app.add_subcommand("init", "create a repository");
    init->add_option("--repository-version", version, "format version: 1 or 2")->default_val(2);
    init->add_option("--chunker", chunker, "chunker for backups: rabin (restic-compatible) or fastcdc")->default_val("rabin");
    init->callback(run([&] { return cmd_init(g, version, chunker); }));

    backup_args ba;
    auto* backup = app.add_subcommand("backup", "back up files and directories");
    backup->add_option("paths", ba.paths, "files and directories to back up");
    backup->add_option("--tag", ba.tags, "tag the snapshot (repeatable)");
    backup->add_option("--host", ba.host, "host name recorded in the snapshot");
    backup->add_option("-e,--exclude", ba.excludes, "exclude paths matching a pattern (repeatable)");
    backup->add_option("--parent", ba.parent, "compare against this snapshot (default: latest of same host and paths)");
    backup->add_flag("-f,--force", ba.force, "read every file, ignoring the parent snapshot");
    backup->add_flag("--stdin", ba.from_stdin, "back up standard input");
    backup->add_option("--stdin-filename", ba.stdin_filename, "file name for --stdin")->default_val("stdin");
    backup->add_option("--time", ba.time, "snapshot time \"YYYY-MM-DD HH:MM:SS\" (UTC)");
    backup->callback(run([&] {
        if (ba.paths.empty() && !ba.from_stdin) throw fatal("nothing to back up, please specify a path or --stdin");
        if (!ba.paths.empty() && ba.from_stdin) throw fatal("--stdin and paths are mutually exclusive");
        return cmd_backup(g, ba);
    }));

    std::string snap_arg, target;
    std::vector<std::string> includes, excludes, hosts;
    auto* restore = app.add_subcommand("restore", "restore a snapshot (SNAPSHOT[:SUBPATH], or latest)");
    restore->add_option("snapshot", snap_arg, "snapshot ID, prefix or latest, optionally :SUBPATH")->required();
    restore->add_option("-t,--target", target, "directory to restore into")->required();
    restore->add_option("-i,--include", includes, "restore only paths matching a pattern (repeatable)");
    restore->add_option("-e,--exclude", excludes, "skip paths matching a pattern (repeatable)");
    restore->add_option("-H,--host", hosts, "with latest: only snapshots of this host");
    restore->callback(run([&] { return cmd_restore(g, snap_arg, target, includes, excludes, hosts); }));

    engine::snapshot_filter sf;
    auto* snapshots = app.add_subcommand("snapshots", "list snapshots");
    snapshots->add_option("-H,--host", sf.hosts, "only this host (repeatable)");
    snapshots->add_option("--tag", sf.tags, "only snapshots with this tag (repeatable)");
    snapshots->add_option("--path", sf.paths, "only snapshots of exactly these paths (repeatable)");
    snapshots->callback(run([&] { return cmd_snapshots(g, sf); }));

    std::string ls_arg;
    bool ls_long = false;
    auto* ls = app.add_subcommand("ls", "list the files of a snapshot");
    ls->add_option("snapshot", ls_arg, "snapshot ID, prefix or latest")->required();
    ls->add_flag("-l,--long", ls_long, "mode, owner, size and time too");
    ls->callback(run([&] { return cmd_ls(g, ls_arg, ls_long); }));

    std::string cat_kind, cat_arg;
    auto* cat = app.add_subcommand("cat", "print a repository object");
    cat->add_option("type", cat_kind, "config|masterkey|key|lock|snapshot|index|pack|blob|tree")->required();
    cat->add_option("id", cat_arg, "ID or unique prefix");
    cat->callback(run([&] { return cmd_cat(g, cat_kind, cat_arg); }));

    forget_args fa;
    auto* forget = app.add_subcommand("forget", "remove snapshots by a keep policy (restic's rules) or by ID");
    forget->add_option("ids", fa.ids, "snapshots to remove (instead of a policy)");
    forget->add_option("-l,--keep-last", fa.policy.last, "keep the last N snapshots");
    forget->add_option("-H,--keep-hourly", fa.policy.hourly, "keep the last N hourly snapshots");
    forget->add_option("-d,--keep-daily", fa.policy.daily, "keep the last N daily snapshots");
    forget->add_option("-w,--keep-weekly", fa.policy.weekly, "keep the last N weekly snapshots");
    forget->add_option("-m,--keep-monthly", fa.policy.monthly, "keep the last N monthly snapshots");
    forget->add_option("-y,--keep-yearly", fa.policy.yearly, "keep the last N yearly snapshots");
    forget->add_option("--keep-within", fa.within, "keep snapshots newer than latest minus a duration (1y5m7d2h)");
    forget->add_option("--keep-tag", fa.keep_tags, "keep snapshots with these tags (comma list; repeatable)");
    forget->add_option("-g,--group-by", fa.group_by, "group by host, paths, tags (comma list; \"\" for none)");
    forget->add_option("--host", fa.filter.hosts, "only snapshots of this host (repeatable)");
    forget->add_option("--tag", fa.filter.tags, "only snapshots with this tag (repeatable)");
    forget->add_option("--path", fa.filter.paths, "only snapshots of exactly these paths (repeatable)");
    forget->add_flag("-n,--dry-run", fa.dry_run, "only show what would be removed");
    forget->add_flag("--prune", fa.prune, "prune the repository after removing snapshots");
    fa.pa.add_to(forget, false);
    forget->callback(run([&] { return cmd_forget(g, fa); }));

    prune_args pa;
    auto* prune = app.add_subcommand("prune", "remove data no snapshot uses, repacking partly used packs");
    pa.add_to(prune, true);
    prune->callback(run([&] { return cmd_prune(g, pa); }));

    bool read_data = false;
    std::string subset;
    auto* chk = app.add_subcommand("check", "check the repository (with --read-data: every stored byte)");
    chk->add_flag("--read-data", read_data, "read and verify all packs");
    chk->add_option("--read-data-subset", subset, "read and verify a subset of packs: N/M or P%");
    chk->callback(run([&] { return cmd_check(g, read_data, subset); }));

    copy_args ca;
    auto* copy = app.add_subcommand("copy", "copy snapshots from another repository into this one");
    copy->add_option("ids", ca.ids, "snapshots to copy (default: all that match the filters)");
    copy->add_option("--from-repo", ca.from_repo, "source repository; default $RESTIC_FROM_REPOSITORY");
    copy->add_option("--from-password-file", ca.from_password_file, "source password file; default $RESTIC_FROM_PASSWORD_FILE");
    copy->add_option("-H,--host", ca.filter.hosts, "only snapshots of this host (repeatable)");
    copy->add_option("--tag", ca.filter.tags, "only snapshots with this tag (repeatable)");
    copy->add_option("--path", ca.filter.paths, "only snapshots of exactly these paths (repeatable)");
    copy->callback(run([&] { return cmd_copy(g, ca); }));

    std::vector<std::string> stats_ids;
    std::string stats_mode = "restore-size";
    engine::snapshot_filter stats_filter;
    auto* stats = app.add_subcommand("stats", "how much the snapshots restore (restore-size) or store (raw-data)");
    stats->add_option("ids", stats_ids, "snapshots to count (default: all that match the filters)");
    stats->add_option("--mode", stats_mode, "restore-size or raw-data")->default_val("restore-size");
    stats->add_option("-H,--host", stats_filter.hosts, "only snapshots of this host (repeatable)");
    stats->add_option("--tag", stats_filter.tags, "only snapshots with this tag (repeatable)");
    stats->add_option("--path", stats_filter.paths, "only snapshots of exactly these paths (repeatable)");
    stats->callback(run([&] { return cmd_stats(g, stats_ids, stats_mode, stats_filter); }));

    bool read_all_packs = false;
    auto* rebuild = app.add_subcommand("rebuild-index", "write a new index from the pack files");
    rebuild->add_flag("--read-all-packs", read_all_packs, "read every pack's header, not only unindexed ones");
    rebuild->callback(run([&] { return cmd_rebuild_index(g, read_all_packs); }));

    std::string key_action, key_arg, new_password_file;
    auto* key = app.add_subcommand("key", "manage keys (passwords): list, add, remove ID, passwd");
    key->add_option("action", key_action, "list|add|remove|passwd")->required();
    key->add_option("id", key_arg, "key ID (for remove)");
    key->add_option("--new-password-file", new_password_file, "read the new password from a file");
    key->callback(run([&] { return cmd_key(g, key_action, key_arg, new_password_file); }));

    std::string list_type;
    auto* list = app.add_subcommand("list", "list the IDs of packs, index, snapshots, keys or locks");
    list->add_option("type", list_type, "packs|index|snapshots|keys|locks")->required();
    list->callback(run([&] { return cmd_list(g, list_type); }));

    bool remove_all = false;
    auto* unlock = app.add_subcommand("unlock", "remove stale locks");
    unlock->add_flag("--remove-all", remove_all, "remove all locks, even active ones");
    unlock->callback(run([&] { return cmd_unlock(g, remove_all); }));

    try {
        app.parse(argc, argv);
    } catch (CLI::ParseError const& e) {
        return app.exit(e) == 0 ? exit_ok : exit_fatal;
    } catch (fatal const& e) {
        std::cerr << "Fatal: " << e.what() << '\n';
        return exit_fatal;
    } catch (std::exception const& e) {
        std::cerr << "Fatal: " << e.what() << '\n';
        return exit_fatal;
    }
    return rc;
}
