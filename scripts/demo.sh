#!/usr/bin/env bash
# The main job: set up, build, and run the default example on the emulator.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$here/scripts/setup.sh"
lpu="$here/build/bin/lpu"
out="$here/out"
mkdir -p "$out"
"$lpu" info --preset lp30
for ex in vector_add matvec_i8 sram_stream; do
  "$lpu" asm "$here/examples/$ex.lpa" -o "$out/$ex.lpo" --schedule "$out/$ex.schedule.txt"
done
"$lpu" disasm "$out/matvec_i8.lpo"
echo "objects, schedules and disassembly in $out/"
