#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/) with clang into build-fuzz/ (only those targets and the
# libraries they need) and runs each over a copy of its seed corpus (fuzz/corpus/<target>/), for a
# time or a number of executions. Prints, per target, the executions, the executions per second
# and whether anything was found; exits non-zero if any target crashed, leaked, timed out, ran
# out of memory or hit a sanitizer.
#
# Usage: scripts/fuzz.sh [SECONDS | --runs=N] [-j JOBS] [target...]
#   SECONDS    per target (default 60)
#   --runs=N   per target: N executions instead of a time (the long run: --runs=10000000)
#   -j JOBS    targets run at once (default 1; each is one process)
#   targets    object asm frames manifest rack preset open (default: every one whose
#              fuzz/fuzz_<target>.cpp exists)
# FUZZ_TIMEOUT=S sets libFuzzer's per-input timeout (default 25 s); a long run on a loaded machine
# may need more (an input of thousands of rack chips takes about 2 s alone under the sanitizers).
# Crash inputs are kept in build-fuzz/fuzz-work/<target>/artifacts/; reproduce one with
#   build-fuzz/bin/fuzz_<target> <artifact>
# New inputs the fuzzer found are in build-fuzz/fuzz-work/<target>/corpus/. To keep the
# interesting ones (small), minimise them into the seed corpus:
#   build-fuzz/bin/fuzz_<target> -merge=1 fuzz/corpus/<target> build-fuzz/fuzz-work/<target>/corpus
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
all=(object asm frames manifest rack preset open)

secs=60
runs=""
jobs=1
targets=()
while (($#)); do
  case "$1" in
    --runs=* | -runs=*) runs="${1#*=}" ;;
    -j) jobs="${2:-}"; shift ;;
    -j*) jobs="${1#-j}" ;;
    -h | --help) sed -n '2,20p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *)
      if ((${#targets[@]} == 0)) && [[ "$1" =~ ^[0-9]+$ ]]; then secs="$1"; else targets+=("$1"); fi
      ;;
  esac
  shift
done
for v in "$secs" "$jobs" ${runs:+"$runs"} "${FUZZ_TIMEOUT:-25}"; do
  [[ "$v" =~ ^[0-9]+$ ]] || { echo "fuzz: expected a whole number, got '$v' (see --help)" >&2; exit 2; }
done
if ((${#targets[@]} == 0)); then
  for t in "${all[@]}"; do [ -f "$here/fuzz/fuzz_$t.cpp" ] && targets+=("$t"); done
fi
for t in "${targets[@]}"; do
  [ -f "$here/fuzz/fuzz_$t.cpp" ] || { echo "fuzz: no target '$t' (fuzz/fuzz_$t.cpp; targets: ${all[*]})" >&2; exit 2; }
done
build="$here/build-fuzz"

command -v clang++ >/dev/null || { echo "fuzz: clang++ not found (scripts/setup.sh installs it)" >&2; exit 2; }
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
cmake -S "$here" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLPU_FUZZ=ON \
  -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ "${launcher[@]}" >/dev/null
cmake --build "$build" --target "${targets[@]/#/fuzz_}"

# Per-target libFuzzer options. The object loader and the protocol decoders promise to allocate
# only a small multiple of the input size, so any allocation over 64 MB is reported as a bug.
# The other targets keep libFuzzer's default limit (2 GB of RSS).
declare -A extra=([object]="-malloc_limit_mb=64" [frames]="-malloc_limit_mb=64" [open]="-malloc_limit_mb=64")
if [ -n "$runs" ]; then limit=(-runs="$runs"); what="$runs runs"; else limit=(-max_total_time="$secs"); what="${secs}s"; fi

mkdir -p "$build/fuzz-work"
fuzz_one() {
  local t="$1" work="$build/fuzz-work/$1" rc=0 start end
  rm -rf "$work" "$work.status"
  mkdir -p "$work/corpus" "$work/artifacts"
  cp -r "$here/fuzz/corpus/$t/." "$work/corpus/" 2>/dev/null || true
  start=$(date +%s.%N)
  # shellcheck disable=SC2086
  ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}" UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1}" \
    "$build/bin/fuzz_$t" "${limit[@]}" -timeout="${FUZZ_TIMEOUT:-25}" -print_final_stats=1 \
    -artifact_prefix="$work/artifacts/" ${extra[$t]:-} "$work/corpus" >"$work/log" 2>&1 || rc=$?
  end=$(date +%s.%N)
  local execs rate
  execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log" | tail -1)"
  if [ -z "$execs" ]; then  # no final stats after a crash: take the last progress line
    execs="$(grep -oE '^#[0-9]+' "$work/log" | tail -1 | tr -d '#')"
  fi
  rate="$(awk -v n="${execs:-0}" -v a="$start" -v b="$end" 'BEGIN { d = b - a; printf "%.0f", (d > 0 ? n / d : 0) }')"
  # Per CPU second too (user + system time of the fuzzer, from `times`): on a shared machine
  # the wall-clock rate says more about the load than about the target.
  local cpu
  times >"$work/times"  # a builtin with a redirection runs in this shell, which waited for the fuzzer
  cpu="$(tail -1 "$work/times" | awk -v n="${execs:-0}" '{
    t = 0
    for (i = 1; i <= 2; ++i) { split($i, p, /[ms]/); t += p[1] * 60 + p[2] }
    printf "%.0f", (t > 0 ? n / t : 0) }')"
  # slow-unit-* files are inputs over 10 s (a warning); crash-, leak-, timeout-, oom- a failure.
  local found=() slow=()
  mapfile -t found < <(find "$work/artifacts" -type f ! -name 'slow-unit-*')
  mapfile -t slow < <(find "$work/artifacts" -type f -name 'slow-unit-*')
  for a in "${slow[@]}"; do echo "fuzz: fuzz_$t: warning: an input took over 10 s: $a"; done
  if ((rc != 0 || ${#found[@]} > 0)); then
    echo "fuzz: fuzz_$t: CRASH found after ${execs:-?} executions (exit $rc; log: $work/log)"
    for a in "${found[@]}"; do echo "fuzz:   $a"; done
    grep -m1 -E 'ERROR: |runtime error|Assertion|terminate called|uncaught|out-of-memory|timeout' "$work/log" |
      sed 's/^/fuzz:   /' || true
    return 1
  fi
  echo "fuzz: fuzz_$t: ${execs:-?} executions, ${rate}/s (${cpu} per CPU second), no crash"
}

echo "fuzz: ${targets[*]}: $what each, $jobs at a time"
for t in "${targets[@]}"; do
  (fuzz_one "$t" && echo ok >"$build/fuzz-work/$t.status" || echo failed >"$build/fuzz-work/$t.status") &
  while (($(jobs -rp | wc -l) >= jobs)); do wait -n || true; done
done
wait
failed=0
for t in "${targets[@]}"; do
  [ "$(cat "$build/fuzz-work/$t.status" 2>/dev/null)" = ok ] || failed=1
done
exit "$failed"
