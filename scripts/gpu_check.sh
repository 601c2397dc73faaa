#!/usr/bin/env bash
# gpu_check.sh [OUT_DIR] — everything the cuda backend must show on a GPU machine, in one run:
# build with PI0_CUDA=ON, the golden cases through cuda, `pi0 check --backend cuda` on a generated
# small π0 and π0.5 and on the full-size π0 (1 camera), `pi0 verify`, and `pi0 bench --backend
# cuda` (1 and 3 cameras, 20 runs) on full-size π0 and π0.5. Logs go to OUT_DIR (default
# $OUT when set, else gpu-out/). Carried Debian packages in .deps/ (scripts/gpu_deps.sh) are
# unpacked first when the machine lacks them. Measures and reports; exits non-zero if a check
# fails.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT_DIR=${1:-${OUT:-gpu-out}}
mkdir -p "$OUT_DIR"
log() { echo "== $*" | tee -a "$OUT_DIR/summary.txt"; }
fail=0
if ls .deps/*.deb >/dev/null 2>&1; then
  mkdir -p .deps/root && for f in .deps/*.deb; do dpkg -x "$f" .deps/root; done
  export CMAKE_PREFIX_PATH="$PWD/.deps/root/usr" LD_LIBRARY_PATH="$PWD/.deps/root/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}"
  export CPATH="$PWD/.deps/root/usr/include:${CPATH:-}"
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee -a "$OUT_DIR/summary.txt"
ARCH=${CUDA_ARCH:-90}
cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release -DPI0_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES="$ARCH" \
  >"$OUT_DIR/cmake.log" 2>&1 || { cat "$OUT_DIR/cmake.log"; exit 1; }
cmake --build build-gpu -j"$(nproc)" >"$OUT_DIR/build.log" 2>&1 || { tail -40 "$OUT_DIR/build.log"; exit 1; }
PI0=build-gpu/pi0
G=tests/golden
[ -d "$G" ] || G=../shared/golden
log "golden cases through cuda"
for c in tiny-f32 small-bf16 pi05-tiny-f32 pi05-small-bf16; do
  build-gpu/tests/test_golden "$G/$c" --backend cuda >"$OUT_DIR/golden_$c.txt" 2>&1 && r=ok || { r=FAIL; fail=1; }
  echo "$c: $r $(tail -1 "$OUT_DIR/golden_$c.txt")" | tee -a "$OUT_DIR/summary.txt"
done
M=gpu-models
mkdir -p "$M"
"$PI0" gen-model --config small --dtype bf16 --seed 1 --out "$M/small" 2>/dev/null
"$PI0" gen-model --config small --pi05 --dtype bf16 --seed 1 --out "$M/small05" 2>/dev/null
for m in small small05; do
  log "check --backend cuda: $m"
  "$PI0" check --model "$M/$m" --backend cuda >"$OUT_DIR/check_$m.txt" 2>&1 || fail=1
  tail -3 "$OUT_DIR/check_$m.txt" | tee -a "$OUT_DIR/summary.txt"
done
[ -f "$M/full/model.safetensors" ] || "$PI0" gen-model --config full --dtype bf16 --seed 1 --out "$M/full" 2>/dev/null
[ -f "$M/full05/model.safetensors" ] || "$PI0" gen-model --config full --pi05 --dtype bf16 --seed 1 --out "$M/full05" 2>/dev/null
log "verify --backend cuda (full pi0, 3 cameras)"
"$PI0" verify --model "$M/full" --backend cuda --cameras 3 >"$OUT_DIR/verify_full.txt" 2>&1 || fail=1
grep -E "accelerated path|host ->|FALLBACK" "$OUT_DIR/verify_full.txt" | tee -a "$OUT_DIR/summary.txt"
for m in full full05; do
  tok=48; [ "$m" = full05 ] && tok=60
  for cams in 1 3; do
    log "bench --backend cuda: $m, $cams camera(s), $tok tokens"
    "$PI0" bench --model "$M/$m" --backend cuda --cameras "$cams" --tokens "$tok" --runs 20 \
      >"$OUT_DIR/bench_${m}_$cams.txt" 2>&1 || fail=1
    grep -E "ceilings|stage|vision|prefix|denoise|total|first call|GPU memory" "$OUT_DIR/bench_${m}_$cams.txt" \
      | tee -a "$OUT_DIR/summary.txt"
  done
done
if [ "${FULL_CHECK:-1}" = 1 ]; then
  log "check --backend cuda: full pi0, 1 camera (ref is slow: ~1-2 min)"
  "$PI0" check --model "$M/full" --backend cuda --cameras 1 >"$OUT_DIR/check_full.txt" 2>&1 || fail=1
  tail -15 "$OUT_DIR/check_full.txt" | tee -a "$OUT_DIR/summary.txt"
fi
exit $fail
