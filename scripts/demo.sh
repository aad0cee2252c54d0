#!/usr/bin/env bash
# The main job: set up (Debian packages), build, and run the default decode experiment:
#  1. Llama-3-70B (fp8, 8k context) decoding one token on the default 256-chip LPX rack
#     (configs/lpx-rack.toml), timing-only: tokens/s per user, latency, chips, utilisation,
#     power; statistics in out/decode_70b.stats.json.
#  2. The tiny test model decoding 8 tokens functionally on a 4-chip rack through the runtime,
#     checked token by token against the plain C++ reference decoder; its timeline (Perfetto /
#     chrome://tracing) in out/decode_tiny.trace.json and statistics in out/decode_tiny.stats.json.
#  3. The all-slice SRAM stream on one lp30 chip (150 TB/s claim).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$here/scripts/setup.sh"
lpu="$here/build/bin/lpu"
out="$here/out"
mkdir -p "$out"
threads="$(nproc)"
echo "== Llama-3-70B decode on the LPX rack (timing-only, $threads host threads)"
"$lpu" decode --model llama-3-70b --rack "$here/configs/lpx-rack.toml" --timing-only --threads "$threads" \
  --stats "$out/decode_70b.stats.json"
echo
echo "== the same in tensor groups of a tray (--partition hybrid)"
"$lpu" decode --model llama-3-70b --rack "$here/configs/lpx-rack.toml" --partition hybrid --timing-only --threads "$threads" \
  --stats "$out/decode_70b_hybrid.stats.json"
echo
echo "== tiny decode, functional, checked against the reference decoder"
"$lpu" gen weights --model tiny --seed 1 -o "$out/tiny.safetensors"
"$lpu" decode --model tiny --rack "$here/examples/decode/mini4.toml" --context 64 --weights "$out/tiny.safetensors" \
  --prompt 1,2,3 --max-new 8 --reference --stats "$out/decode_tiny.stats.json" --trace "$out/decode_tiny.trace.json"
echo
echo "== examples/sram_stream.lpa on one lp30 chip"
"$lpu" asm "$here/examples/sram_stream.lpa" -o "$out/sram_stream.lpo" --schedule "$out/sram_stream.schedule.txt"
"$lpu" run "$out/sram_stream.lpo" --stats "$out/sram_stream.stats.json"
echo
echo "statistics, the tiny decode's timeline and objects are in $out/ (docs/experiments.md, docs/decode.md)"
