# Installs the package from BUILD_DIR into a scratch prefix and builds and runs the consumer against it.
set -euo pipefail
build=$1 src=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d /tmp/stash-consumer.XXXXXX); trap 'rm -rf "$work"' EXIT
cmake --install "$build" --prefix "$work/prefix" >/dev/null
cmake -S "$src" -B "$work/build" -G Ninja -DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null
cmake --build "$work/build" >/dev/null
out=$("$work/build/consumer")
grep -q "opened" <<<"$out" && echo "ok: find_package(stash) consumer builds and runs"
