#!/usr/bin/env bash
# bench/orbax_load.sh [CONFIG] [OUT_DIR] — loading openpi's Orbax checkpoint vs the same weights
# as safetensors: generates a random bf16 π0 (CONFIG: full by default, 3.2 B parameters, 6.5 GB;
# small / demo or a config.json file for a quick look, e.g. bench/orbax_mid.json: 1.45 B, 2.9 GB),
# writes it as openpi publishes it with the real orbax-checkpoint (tests/orbax/gen_orbax.py, in the
# tests' cached venv $PI0_VENV_DIR/orbax, ~/.cache/pi0/venv by default; its peak RSS is about 1.8
# times the model: the model once plus its compressed chunks, which orbax's one atomic OCDBT
# transaction holds until it commits; 5.2 GB measured for a 2.9 GB model, 13.0 GB for full), then prints for each form `pi0 bench`'s load time (read, check, reorder
# for the fast backend) and peak RSS, and `pi0 convert`'s time and peak RSS. Warm page cache (the
# files were just written). Measures; asserts nothing. Not run by CI.
set -euo pipefail
cd "$(dirname "$0")/.."
CFG=${1:-full}
OUT=${2:-bench/out}
mkdir -p "$OUT"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" --target pi0 >/dev/null
NAME=$(basename "$CFG" .json)
ST="$OUT/pi0-$NAME-bf16" OB="$OUT/pi0-$NAME-bf16-orbax" CV="$OUT/pi0-$NAME-bf16-converted"
[ -f "$ST/model.safetensors" ] || ./build/pi0 gen-model --config "$CFG" --dtype bf16 --seed 1 --out "$ST"
VENV=${PI0_VENV_DIR:-${HOME:-build}/.cache/pi0/venv}/orbax
bash scripts/pyvenv.sh "$VENV" tests/orbax/requirements.txt
if [ ! -f "$OB/params/manifest.ocdbt" ]; then
  /usr/bin/time -f "gen_orbax: %e s, peak RSS %M KB" "$VENV/bin/python" tests/orbax/gen_orbax.py "$ST" "$OB"
fi
echo "sizes: safetensors $(du -sh "$ST/model.safetensors" | cut -f1), orbax params/ $(du -sh "$OB/params" | cut -f1)"
for round in 1 2; do # twice each, alternating: the second round has both forms' files cached
  for m in "$ST" "$OB"; do
    echo "=== $m (round $round) ==="
    ./build/pi0 bench --model "$m" --cameras 1 --runs 1 --tokens 8 | grep -E "^(load|peak RSS):"
  done
done
rm -rf "$CV"
/usr/bin/time -f "pi0 convert: %e s, peak RSS %M KB" ./build/pi0 convert --model "$OB" --out "$CV"
cmp -s "$ST/model.safetensors" "$CV/model.safetensors" && echo "converted model.safetensors: byte-identical to the generated one" \
  || echo "converted model.safetensors differs in bytes from the generated one (tensor order may differ)"
