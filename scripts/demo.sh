#!/usr/bin/env bash
# The main job: set up (Debian packages), build, and run the default examples on the emulated
# lp30 chip: an MLP block (bf16, two MXM planes, VXM bias + GELU) and the all-slice SRAM stream.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$here/scripts/setup.sh"
lpu="$here/build/bin/lpu"
out="$here/out"
mkdir -p "$out"
"$lpu" info --preset lp30
for ex in mlp_bf16 sram_stream; do
  echo
  echo "== examples/$ex.lpa"
  "$lpu" asm "$here/examples/$ex.lpa" -o "$out/$ex.lpo" --schedule "$out/$ex.schedule.txt"
  "$lpu" run "$out/$ex.lpo" --stats "$out/$ex.stats.json"
done
"$lpu" run "$out/mlp_bf16.lpo" -q --output "Y=$out/mlp_y.npy"
echo
echo "objects, schedules, statistics and the MLP output (mlp_y.npy) are in $out/"
