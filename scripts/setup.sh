#!/usr/bin/env bash
# Installs every Debian package the project needs (only those missing), then configures and
# builds into build/. Idempotent. Usage: scripts/setup.sh [--no-build] [--sanitize]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

PKGS=(
  build-essential cmake ninja-build ccache pkg-config python3
  verilator libsystemc-dev libboost-dev libfmt-dev doctest-dev
  libtomlplusplus-dev nlohmann-json3-dev libcli11-dev
  libopenblas-dev clang libclang-rt-14-dev gtkwave gnuplot-nox
  python3-numpy python3-matplotlib
  libopenmpi-dev openmpi-bin
)

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

build=1; sanitize=OFF; builddir="$here/build"
for a in "$@"; do
  case "$a" in
    --no-build) build=0 ;;
    --sanitize) sanitize=ON; builddir="$here/build-asan" ;;
    *) echo "setup: unknown option $a" >&2; exit 2 ;;
  esac
done
if ((build)); then
  launcher=()
  command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
  cmake -S "$here" -B "$builddir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DLPU_SANITIZE="$sanitize" "${launcher[@]}"
  cmake --build "$builddir" -j "$(nproc)"
fi
