#!/usr/bin/env bash
# bench/run.sh [OUT_DIR] — full-size π0 and π0.5 benchmark on this machine: generates the random
# bf16 full-size checkpoints (3.2 B parameters, 6.5 GB each; once) and a small one, then runs
# `pi0 bench` with 1 and 3 cameras, 10 steps: π0 with a 48-token prompt (its whole budget), π0.5
# with a realistic 60-token prompt in its 200-token budget; and the tokenizer on 1 K, 10 K and
# 60 K characters. Measures; asserts nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-bench/out}
RUNS=${RUNS:-3}
mkdir -p "$OUT"
bash scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
[ -f "$OUT/pi0-full-bf16/model.safetensors" ] || ./build/pi0 gen-model --config full --dtype bf16 --seed 1 --out "$OUT/pi0-full-bf16"
[ -f "$OUT/pi05-full-bf16/model.safetensors" ] || ./build/pi0 gen-model --config full --pi05 --dtype bf16 --seed 1 --out "$OUT/pi05-full-bf16"
[ -f "$OUT/pi0-small/model.safetensors" ] || ./build/pi0 gen-model --config small --dtype bf16 --seed 1 --out "$OUT/pi0-small"
for cams in 1 3; do
  echo "=== pi0, $cams camera(s) ==="
  ./build/pi0 bench --model "$OUT/pi0-full-bf16" --cameras "$cams" --runs "$RUNS" --small "$OUT/pi0-small"
  echo "=== pi0.5, $cams camera(s) ==="
  ./build/pi0 bench --model "$OUT/pi05-full-bf16" --cameras "$cams" --runs "$RUNS" --tokens 60
done
echo "=== tokenizer ==="
tok=$(bash scripts/fetch_tokenizer.sh)
./build/tokenizer_bench "$tok" 1000 10000 60000
