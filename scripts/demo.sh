#!/usr/bin/env bash
# The main job on a fresh machine: install, build (Release), then run the policy.
# With MODEL=DIR (a checkpoint directory) it runs that; otherwise it generates a small
# random-weight demo checkpoint: its actions are meaningless, it only shows the engine working.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)"
golden=${PI0_GOLDEN_DIR:-$(cd .. && pwd)/shared/golden}
model=${MODEL:-}
if [ -z "$model" ]; then
  model=demo/pi0-small
  [ -f "$model/model.safetensors" ] || ./build/pi0 gen-model --config small --dtype bf16 --seed 0 --out "$model"
  echo "demo: using a RANDOM-WEIGHT checkpoint ($model); the actions below are meaningless"
fi
inputs=${INPUTS:-$golden/small-bf16/inputs.safetensors}
./build/pi0 run --model "$model" --inputs "$inputs" --out demo/actions.safetensors
echo "demo: actions written to demo/actions.safetensors"
