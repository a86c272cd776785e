// The 32-byte identifier of every object in a restic repository (SHA-256 of its bytes).
#pragma once

#include <stash/core/error.hpp>
#include <stash/core/hex.hpp>

#include <boost/unordered/unordered_flat_set.hpp>

#include <array>
#include <compare>
#include <cstring>
#include <functional>
#include <ostream>
#include <string>
#include <string_view>

namespace stash {

/// A SHA-256 digest naming a blob, pack, index, snapshot or key file. Printed as 64 lower-case hex digits.
struct id {
    std::array<std::byte, 32> bytes{};

    std::string str() const { return to_hex(bytes); }
    /// The first 8 hex digits, as restic prints snapshot IDs.
    std::string short_str() const { return str().substr(0, 8); }
    bool is_null() const noexcept { return *this == id{}; }

    /// Parses exactly 64 hex digits.
    static result<id> parse(std::string_view s) {
        id v;
        if (!from_hex(s, v.bytes)) return make_error(errc::invalid_argument, "invalid ID \"" + std::string(s) + "\"");
        return v;
    }

    friend bool operator==(id const&, id const&) = default;
    friend auto operator<=>(id const& a, id const& b) noexcept {
        return std::memcmp(a.bytes.data(), b.bytes.data(), 32) <=> 0;
    }
};

inline std::ostream& operator<<(std::ostream& os, id const& v) { return os << v.str(); }

/// Hash for unordered containers: the id is already uniformly distributed, so take 8 of its bytes.
struct id_hash {
    /// Tells Boost's open-addressing containers that the bits need no further mixing.
    using is_avalanching = void;
    std::size_t operator()(id const& v) const noexcept {
        std::size_t h;
        std::memcpy(&h, v.bytes.data(), sizeof h);
        return h;
    }
};

/** A set of IDs in one open-addressing table (Boost.Unordered's flat set): no allocation per ID, so
    inserting the ~80,000 blobs of a backup and freeing them at its end are cheap. Inserting
    invalidates iterators and references. */
using id_set = boost::unordered_flat_set<id, id_hash>;

}  // namespace stash
