#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/) with clang into build-fuzz/ and runs each for N seconds
# (default 60) over a copy of its seed corpus. Prints the executions and whether a crash was
# found; exits non-zero if any target crashed, leaked, timed out or hit a sanitizer.
# Usage: scripts/fuzz.sh [seconds] [target...]     targets: object asm frames (default all)
# Crash inputs are kept in build-fuzz/fuzz-work/<target>/artifacts/; reproduce one with
#   build-fuzz/bin/fuzz_<target> <artifact>
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
secs="${1:-60}"
shift || true
targets=("$@")
((${#targets[@]})) || targets=(object asm frames)
if ! [[ "$secs" =~ ^[0-9]+$ ]]; then
  echo "fuzz: seconds must be a number, got '$secs'" >&2
  exit 2
fi
build="$here/build-fuzz"

command -v clang++ >/dev/null || { echo "fuzz: clang++ not found (scripts/setup.sh installs it)" >&2; exit 2; }
cmake -S "$here" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLPU_FUZZ=ON \
  -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ >/dev/null
cmake --build "$build" --target "${targets[@]/#/fuzz_}"

# Per-target libFuzzer options. The object loader and the protocol decoders promise to allocate
# only a small multiple of the input size, so any allocation over 64 MB is reported as a bug.
declare -A extra=([object]="-malloc_limit_mb=64" [asm]="" [frames]="-malloc_limit_mb=64")

failed=0
for t in "${targets[@]}"; do
  work="$build/fuzz-work/$t"
  rm -rf "$work"
  mkdir -p "$work/corpus" "$work/artifacts"
  cp -r "$here/fuzz/corpus/$t/." "$work/corpus/"
  echo "fuzz: fuzz_$t for ${secs}s (log: $work/log)"
  rc=0
  # shellcheck disable=SC2086
  ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}" UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1}" \
    "$build/bin/fuzz_$t" -max_total_time="$secs" -timeout=25 -print_final_stats=1 \
    -artifact_prefix="$work/artifacts/" ${extra[$t]} "$work/corpus" >"$work/log" 2>&1 || rc=$?
  execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log" | tail -1)"
  if [ -z "$execs" ]; then  # no final stats after a crash: take the last progress line
    execs="$(grep -oE '^#[0-9]+' "$work/log" | tail -1 | tr -d '#')"
  fi
  mapfile -t found < <(find "$work/artifacts" -type f)
  if ((rc != 0 || ${#found[@]} > 0)); then
    failed=1
    echo "fuzz: fuzz_$t: CRASH found after ${execs:-?} executions (exit $rc)"
    for a in "${found[@]}"; do echo "fuzz:   $a"; done
    grep -m1 -E 'ERROR: |runtime error|Assertion|terminate called|uncaught' "$work/log" | sed 's/^/fuzz:   /' || true
  else
    echo "fuzz: fuzz_$t: ${execs:-?} executions, no crash"
  fi
done
exit "$failed"
