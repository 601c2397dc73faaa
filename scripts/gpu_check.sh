#!/usr/bin/env bash
# gpu_check.sh [OUT_DIR] — everything the cuda backend must show on a GPU machine, in one run that
# fits the window a GPU is lent for (budget: under 8 minutes of wall time on a 16-core H100 host):
#   binaries   prebuilt ones carried in gpu-bin/ (scripts/gpu_bundle.sh, built with nvcc for
#              sm_90 on a machine without a GPU), else built here (scripts/cuda_build.sh)
#   models     the full-size π0 and π0.5 checkpoints generated here, in the background, while
#              the golden cases and the small checks run
#   golden     the four golden cases through cuda
#   backward   test_backward: the backward ops on cuda against ref, and as a replayed CUDA graph
#   check      `pi0 check --backend cuda` on a small π0 and π0.5, and on full-size π0, 1 camera
#   verify     full π0, 3 cameras: every op on cuda, no epilogue fallback
#   bench      full π0 and π0.5, 1 and 3 cameras, 20 runs, against the targets
# then prints one summary table (also OUT_DIR/summary.txt). Logs go to OUT_DIR (default $OUT when
# set, else gpu-out/). Exits non-zero if a step fails; every step has a time limit so that one
# hang cannot eat the lease.
#
# Before a GPU lease, here: `bash scripts/gpu_bundle.sh` (gpu-bin/) and, for the fallback build,
# `bash scripts/gpu_deps.sh` (.deps/); then one device call: command `bash scripts/gpu_check.sh`,
# carry ["gpu-bin", ".deps"], timeout_s 600. Expected there: ~4 minutes (golden and small checks
# ~15 s; both full-size checkpoints ~1 minute in parallel, overlapped; verify ~10 s; four benches
# ~10-15 s each; the full check ~1-2 minutes of ref on the CPU), ~1 more if it must build.
#
# Rehearsal without a GPU (CPU emulation, or any build): GPU_BIN=DIR names the binaries,
# FULL_CONFIG / FULL05_CONFIG a preset or config.json standing in for "full", BENCH_RUNS the runs.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT_DIR=${1:-${OUT:-gpu-out}}
mkdir -p "$OUT_DIR"
: >"$OUT_DIR/summary.txt"
T0=$(date +%s)
M=${GPU_MODELS:-gpu-models}
FULL=${FULL_CONFIG:-full}
FULL05=${FULL05_CONFIG:-$FULL}
RUNS=${BENCH_RUNS:-20}
BENCH_LIMIT=${BENCH_LIMIT:-180} # seconds per bench step (a rehearsal under CPU emulation needs more)
rows=()
fail=0
note() { echo "== [$(( $(date +%s) - T0 ))s] $*" | tee -a "$OUT_DIR/summary.txt"; }
# row NAME RESULT SECONDS DETAIL: one line of the final table
row() { rows+=("$(printf '%-34s %-6s %6s  %s' "$1" "$2" "$3" "$4")"); [ "$2" = FAIL ] && fail=1; return 0; }
# step NAME LIMIT LOG CMD...: runs CMD with a time limit, its output in OUT_DIR/LOG; sets $rc and $secs
step() {
  local name=$1 limit=$2 log=$3; shift 3
  note "$name"
  local t=$(date +%s)
  timeout "$limit" "$@" >"$OUT_DIR/$log" 2>&1
  rc=$?
  secs=$(( $(date +%s) - t ))
  [ $rc -eq 124 ] && echo "(timed out after ${limit}s)" >>"$OUT_DIR/$log"
  return 0
}

# ---------------------------------------------------------------- machine and binaries
if command -v nvidia-smi >/dev/null; then
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee -a "$OUT_DIR/summary.txt"
else
  note "no nvidia-smi: a rehearsal (no GPU)"
fi
# Carried Debian packages (scripts/gpu_deps.sh), for a build here.
if ls .deps/*.deb >/dev/null 2>&1; then
  mkdir -p .deps/root && for f in .deps/*.deb; do dpkg -x "$f" .deps/root; done
  export CMAKE_PREFIX_PATH="$PWD/.deps/root/usr" CPATH="$PWD/.deps/root/usr/include:${CPATH:-}"
  export LD_LIBRARY_PATH="$PWD/.deps/root/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}"
fi
BIN=${GPU_BIN:-gpu-bin}
[ -d "$BIN/lib" ] && export LD_LIBRARY_PATH="$PWD/$BIN/lib:${LD_LIBRARY_PATH:-}"
# cuBLASLt is not carried (550 MB): the machine's own, from its toolkit or its Python wheels.
cublas_dirs() {
  ls -d /usr/local/cuda*/lib64 /usr/local/cuda*/targets/x86_64-linux/lib 2>/dev/null
  python3 - 2>/dev/null <<'PY'
import glob, site, sys
for base in site.getsitepackages() + [site.getusersitepackages()] + sys.path:
    for p in glob.glob(base + "/nvidia/*/lib") + glob.glob(base + "/nvidia/*/*/lib"):
        if glob.glob(p + "/libcublasLt.so*"): print(p)
PY
}
needs() { ldd "$1" 2>/dev/null | grep "not found"; }
if [ -x "$BIN/pi0" ] && [ -n "$(needs "$BIN/pi0")" ]; then
  for d in $(cublas_dirs); do
    if ls "$d"/libcublasLt.so.* >/dev/null 2>&1; then
      export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:-}:$d"
      [ -z "$(needs "$BIN/pi0")" ] && break
    fi
  done
fi
if [ -x "$BIN/pi0" ] && [ -z "$(needs "$BIN/pi0")" ] && "$BIN/pi0" help >/dev/null 2>&1; then
  PI0=$BIN/pi0 TG=$BIN/test_golden TB=$BIN/test_backward
  row "binaries (carried)" ok 0 "$BIN: $(du -sh "$BIN" | cut -f1)"
else
  [ -x "$BIN/pi0" ] && { echo "carried $BIN/pi0 does not run here:"; needs "$BIN/pi0"; } | tee -a "$OUT_DIR/summary.txt"
  export PI0_JOBS=$(nproc)
  step "build (sm_${CUDA_ARCH:-90}, nvcc here)" 480 build.txt bash scripts/cuda_build.sh build-gpu "${CUDA_ARCH:-90}"
  if [ $rc -ne 0 ]; then row "build" FAIL $secs "$(tail -3 "$OUT_DIR/build.txt" | tr '\n' ' ')"; printf '%s\n' "${rows[@]}"; exit 1; fi
  PI0=build-gpu/pi0 TG=build-gpu/tests/test_golden TB=build-gpu/tests/test_backward
  row "build (sm_${CUDA_ARCH:-90})" ok $secs "$(tail -1 "$OUT_DIR/build.txt")"
fi

# ---------------------------------------------------------------- models, in the background
mkdir -p "$M"
gen() { # gen DIR CONFIG [--pi05]: once per machine (the files stay while it is held)
  [ -f "$1/model.safetensors" ] && [ "$(cat "$1/.config" 2>/dev/null)" = "$2 ${3:-}" ] && return 0
  rm -rf "$1" && "$PI0" gen-model --config "$2" ${3:-} --dtype bf16 --seed 1 --out "$1" && echo "$2 ${3:-}" >"$1/.config"
}
tg=$(date +%s)
( gen "$M/full" "$FULL" >"$OUT_DIR/gen_full.txt" 2>&1 ) &
gen_full=$!
( gen "$M/full05" "$FULL05" --pi05 >"$OUT_DIR/gen_full05.txt" 2>&1 ) &
gen_full05=$!
gen "$M/small" small >/dev/null 2>&1
gen "$M/small05" small --pi05 >/dev/null 2>&1

# ---------------------------------------------------------------- golden and small checks
G=tests/golden
[ -d "$G" ] || G=../shared/golden
for c in tiny-f32 small-bf16 pi05-tiny-f32 pi05-small-bf16; do
  step "golden through cuda: $c" 120 "golden_$c.txt" "$TG" "$G/$c" --backend cuda
  row "golden $c" "$([ $rc -eq 0 ] && echo PASS || echo FAIL)" $secs "$(tail -1 "$OUT_DIR/golden_$c.txt")"
done
# the backward ops (exact RTC guidance) on cuda against ref, and replayed as a CUDA graph
if [ -x "$TB" ]; then
  step "backward ops: cuda against ref" 120 backward.txt "$TB"
  res=$([ $rc -eq 0 ] && echo PASS || echo FAIL)
  grep -q "cuda against ref: skipped" "$OUT_DIR/backward.txt" && res=FAIL
  row "backward ops cuda vs ref + graph" "$res" $secs "$(grep -c '^  cuda' "$OUT_DIR/backward.txt") comparisons; $(tail -1 "$OUT_DIR/backward.txt")"
fi
# worst component of a check log: "min PCC x (component)"
worst() { awk '/>= 0.99/ && $0 !~ /none/ {n=split($0,f," +"); for(i=1;i<=n;i++) if (f[i] ~ /^[01]\.[0-9]+$/) {p=f[i]; break}
          if (min=="" || p<min) {min=p; w=$0}} END {sub(/   +.*/,"",w); printf "worst PCC %s (%s)", min, w}' "$1"; }
for m in small small05; do
  step "check --backend cuda: $m" 120 "check_$m.txt" "$PI0" check --model "$M/$m" --backend cuda
  row "check $m (3 cameras)" "$([ $rc -eq 0 ] && echo PASS || echo FAIL)" $secs "$(worst "$OUT_DIR/check_$m.txt")"
done

# ---------------------------------------------------------------- full size
wait $gen_full; r1=$?
wait $gen_full05; r2=$?
row "generate full pi0 + pi05 (parallel)" "$([ $r1$r2 = 00 ] && echo ok || echo FAIL)" $(( $(date +%s) - tg )) \
  "$FULL / $FULL05, $(du -sh "$M" | cut -f1) (wall from start, overlapped)"
if [ $r1 -eq 0 ]; then
  step "verify --backend cuda: full π0, 3 cameras" 180 verify_full.txt "$PI0" verify --model "$M/full" --backend cuda --cameras 3
  acc=$(grep -m1 "accelerated path" "$OUT_DIR/verify_full.txt")
  res=$([ $rc -eq 0 ] && echo PASS || echo FAIL)
  grep -q "EPILOGUE FALLBACK" "$OUT_DIR/verify_full.txt" && acc="$acc; EPILOGUE FALLBACK (see log)"
  echo "$acc" | grep -q " 0 fallback row" || res=FAIL
  row "verify full pi0 3 cameras" "$res" $secs "$acc"
fi
# bench: the total median against the target (3 cameras ≤ 10 ms, 1 camera ≤ 6 ms)
for m in full full05; do
  [ -f "$M/$m/model.safetensors" ] || { row "bench $m" FAIL 0 "no model"; continue; }
  tok=48; [ $m = full05 ] && tok=60
  for cams in 1 3; do
    target=$([ $cams = 1 ] && echo 6 || echo 10)
    step "bench --backend cuda: $m, $cams camera(s), $tok tokens" "$BENCH_LIMIT" "bench_${m}_$cams.txt" \
      "$PI0" bench --model "$M/$m" --backend cuda --cameras $cams --tokens $tok --runs "$RUNS"
    L=$OUT_DIR/bench_${m}_$cams.txt
    tot=$(awk '/^total/ {print $2; exit}' "$L")
    stages=$(awk '/^vision|^prefix|^denoise/ {for (i = 2; i <= NF; i++) if ($i ~ /^[0-9.]+$/) {printf "%s %s ", $1, $i; break}}' "$L")
    mem=$(grep -m1 "GPU memory" "$L" | awk '{print $3}')
    res=$([ $rc -eq 0 ] && [ -n "$tot" ] && echo ok || echo FAIL)
    row "bench $m ${cams}cam ${tok}tok (<= $target ms)" "$res" $secs "total ${tot:-?} ms [$stages] GPU mem ${mem:-?} GB"
  done
done
if [ "${FULL_CHECK:-1}" = 1 ] && [ $r1 -eq 0 ]; then
  step "check --backend cuda: full π0, 1 camera (ref on the CPU)" 240 check_full.txt \
    "$PI0" check --model "$M/full" --backend cuda --cameras 1
  row "check full pi0 1 camera" "$([ $rc -eq 0 ] && echo PASS || echo FAIL)" $secs "$(worst "$OUT_DIR/check_full.txt")"
fi

# ---------------------------------------------------------------- summary
{
  echo
  printf '%-34s %-6s %6s  %s\n' "step" "result" "s" "detail"
  printf '%s\n' "${rows[@]}"
  echo "wall time: $(( $(date +%s) - T0 )) s; $([ $fail = 0 ] && echo "all passed" || echo "SOME FAILED"); logs in $OUT_DIR"
} | tee -a "$OUT_DIR/summary.txt"
exit $fail
