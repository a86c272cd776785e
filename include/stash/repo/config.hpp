// The repository config file (restic-format.md §3).
#pragma once

#include <stash/chunk/polynomial.hpp>
#include <stash/core/json_writer.hpp>
#include <stash/repo/json.hpp>

#include <cstdio>
#include <string>

namespace stash::repo {

/// Contents of `config`: format version, repository ID, chunker polynomial.
struct config {
    unsigned version = 2;                ///< 1 or 2
    std::string id;                      ///< 64 hex digits
    chunk::polynomial chunker_polynomial;
    /// Our extension: the chunker new backups use ("rabin" when absent). restic ignores unknown keys.
    std::string chunker = "rabin";

    std::string to_json() const {
        std::string s;
        json_writer w(s);
        char pol[24];
        std::snprintf(pol, sizeof pol, "%llx", static_cast<unsigned long long>(chunker_polynomial.value));
        w.begin_object().field("version", version).field("id", id).field("chunker_polynomial", pol);
        if (chunker != "rabin") w.field("chunker", chunker);
        w.end_object();
        return s;
    }

    static result<config> from_json(std::string_view text) {
        auto o = parse_object(text, "config");
        if (!o) return std::move(o).error();
        json_reader r(*o, "config");
        config c;
        auto v = r.u64("version", true);
        if (!v) return std::move(v).error();
        if (*v != 1 && *v != 2)
            return make_error(errc::unsupported, "config: unsupported repository version " + std::to_string(*v));
        c.version = unsigned(*v);
        auto id = r.str("id", true);
        if (!id) return std::move(id).error();
        c.id = *id;
        auto pol = r.str("chunker_polynomial", true);
        if (!pol) return std::move(pol).error();
        char* end = nullptr;
        c.chunker_polynomial.value = std::strtoull(pol->c_str(), &end, 16);
        if (pol->empty() || *end || !c.chunker_polynomial.irreducible())
            return make_error(errc::corrupt, "config: invalid chunker polynomial \"" + *pol + "\"");
        auto ch = r.str("chunker");
        if (!ch) return std::move(ch).error();
        if (!ch->empty()) c.chunker = *ch;
        return c;
    }
};

}  // namespace stash::repo
