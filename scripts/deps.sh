# Installs Debian packages that are missing (sourced by the other scripts). Usage: need_packages PKG...
need_packages() {
  local missing=()
  for p in "$@"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "installing: ${missing[*]}"
  local sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}
BUILD_PACKAGES=(g++ cmake ninja-build pkg-config ccache libboost1.81-dev libssl-dev libzstd-dev libcli11-dev libyaml-cpp-dev)
TEST_PACKAGES=(catch2 libbenchmark-dev restic jq attr util-linux curl openssl bc rclone python3)

# npm packages for the backend tests (servers started by the tests on 127.0.0.1), installed into
# .tools/npm of the checkout: s3rver (S3) and azurite (Azure Blob). Usage: need_npm_tools
NPM_TOOLS=(s3rver@3.7.1 azurite@3.37.0)
need_npm_tools() {
  local dir; dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/.tools/npm"
  if [ -x "$dir/node_modules/.bin/s3rver" ] && [ -x "$dir/node_modules/.bin/azurite-blob" ]; then return 0; fi
  command -v npm > /dev/null || need_packages nodejs npm
  echo "installing into $dir: ${NPM_TOOLS[*]}"
  mkdir -p "$dir"
  npm install --silent --no-audit --no-fund --prefix "$dir" "${NPM_TOOLS[@]}" > /dev/null 2>&1 ||
    echo "warning: npm install failed; the S3 and Azure tests will be skipped" >&2
}
