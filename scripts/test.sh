#!/usr/bin/env bash
# Sets up (Debian packages), builds and runs the whole test suite through ctest.
#   scripts/test.sh            release build in build/, all tests
#   scripts/test.sh --sanitize address+undefined build in build-asan/, all tests
# Extra arguments after -- go to ctest (e.g. -- -L unit, -- -R assembler).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
builddir="$here/build"
setup_args=()
ctest_args=()
while (($#)); do
  case "$1" in
    --sanitize) setup_args+=(--sanitize); builddir="$here/build-asan" ;;
    --) shift; ctest_args=("$@"); break ;;
    -h|--help) sed -n '2,5p' "$0"; exit 0 ;;
    *) echo "test.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
"$here/scripts/setup.sh" "${setup_args[@]}"
if ((${#setup_args[@]})); then
  export LSAN_OPTIONS="suppressions=$here/tests/lsan.supp:print_suppressions=0"
  export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
fi
cd "$builddir"
ctest --output-on-failure -j "$(nproc)" "${ctest_args[@]}"
