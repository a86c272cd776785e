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
TEST_PACKAGES=(catch2 libbenchmark-dev restic jq attr util-linux curl openssl bc rclone)
