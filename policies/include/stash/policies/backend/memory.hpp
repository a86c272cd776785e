// A repository held in memory: for tests and benchmarks that must not touch a disk.
#pragma once

#include <stash/concepts/backend.hpp>

#include <map>
#include <memory>
#include <mutex>
#include <string>

namespace stash::policies::backend {

/** Files in a map guarded by a mutex. Copies share the same storage, so a test can hand one to a
    repository and inspect or damage the files through another.

    @par Concepts
    `stash::backend`.
*/
class memory {
public:
    std::string location() const { return "memory:"; }

    result<void> create() {
        std::lock_guard lk(s_->mu);
        if (s_->files.count({file_type::config, ""})) return make_error(errc::already_exists, "repository already exists");
        return {};
    }
    result<void> put(handle const& h, byte_span data) {
        std::lock_guard lk(s_->mu);
        s_->files[{h.type, h.name}] = bytes(data.begin(), data.end());
        return {};
    }
    result<void> get(handle const& h, std::uint64_t off, std::uint64_t len, bytes& out) {
        std::lock_guard lk(s_->mu);
        auto it = s_->files.find({h.type, h.name});
        if (it == s_->files.end()) return make_error(errc::not_found, h.str() + ": not found");
        auto const& f = it->second;
        if (len == 0) len = f.size() > off ? f.size() - off : 0;
        if (off + len > f.size()) return make_error(errc::corrupt, h.str() + ": file is shorter than expected");
        out.assign(f.begin() + std::ptrdiff_t(off), f.begin() + std::ptrdiff_t(off + len));
        return {};
    }
    result<std::uint64_t> stat(handle const& h) {
        std::lock_guard lk(s_->mu);
        auto it = s_->files.find({h.type, h.name});
        if (it == s_->files.end()) return make_error(errc::not_found, h.str() + ": not found");
        return std::uint64_t(it->second.size());
    }
    result<void> list(file_type t, list_fn const& fn) {
        std::vector<std::pair<std::string, std::uint64_t>> names;
        {
            std::lock_guard lk(s_->mu);
            for (auto const& [k, v] : s_->files)
                if (k.first == t && t != file_type::config) names.emplace_back(k.second, v.size());
        }
        for (auto const& [n, sz] : names) fn(n, sz);
        return {};
    }
    result<void> remove(handle const& h) {
        std::lock_guard lk(s_->mu);
        if (!s_->files.erase({h.type, h.name})) return make_error(errc::not_found, h.str() + ": not found");
        return {};
    }

    /// Direct access for tests that plant faults.
    bytes* file(handle const& h) {
        std::lock_guard lk(s_->mu);
        auto it = s_->files.find({h.type, h.name});
        return it == s_->files.end() ? nullptr : &it->second;
    }

private:
    struct state {
        std::mutex mu;
        std::map<std::pair<file_type, std::string>, bytes> files;
    };
    std::shared_ptr<state> s_ = std::make_shared<state>();
};
static_assert(stash::backend<memory>);

}  // namespace stash::policies::backend
