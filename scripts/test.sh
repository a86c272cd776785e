#!/usr/bin/env bash
# Builds everything and runs the test suite (unit tests and interop tests against restic 0.14).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
need_packages "${BUILD_PACKAGES[@]}" "${TEST_PACKAGES[@]}"
need_npm_tools
cmake --preset release
cmake --build --preset release
cmake --build --preset release --target all_verify_interface_header_sets   # every header compiles alone
ctest --preset release "$@"
