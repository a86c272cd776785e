// The compiled parts of Boost.JSON, built once and linked by the apps, tests and benchmarks
// (header-only consumers include <boost/json/src.hpp> in one TU of their own instead).
#include <boost/json/src.hpp>
