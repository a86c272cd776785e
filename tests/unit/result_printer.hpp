// Lets Catch2 print any stash::result<T>: the error message when there is one, which is what a
// failing REQUIRE(r) needs to show.
#pragma once

#include <stash/core/error.hpp>

#include <catch2/catch.hpp>

namespace Catch {
template <class T>
struct StringMaker<boost::system::result<T, stash::error>> {
    static std::string convert(boost::system::result<T, stash::error> const& r) {
        return r ? std::string("{value}") : "{error: " + r.error().what() + "}";
    }
};
}  // namespace Catch
