#!/usr/bin/env bash
# Fuzzes every parser with libFuzzer (clang, AddressSanitizer + UBSan + LeakSanitizer).
#
#   bash scripts/fuzz.sh [SECONDS] [HARNESS ...]     (default: 60 s each, every harness)
#
# Harnesses: safetensors inputs config norm_stats tokenizer_json tokenizer_model image protocol lerobot orbax.
# For each: builds build-fuzz/fuzz_<h> (cmake -DCMAKE_C_COMPILER=clang -DPI0_FUZZ=ON), replays the
# regression inputs in fuzz/regress/<h>/ once each, then fuzzes for SECONDS from the committed seeds
# in fuzz/corpus/<h>/ (new inputs go to build-fuzz/corpus/<h>/, so the committed corpus stays as
# it is) with the dictionary fuzz/<h>.dict. Limits: 2 GiB RSS and per-allocation, 10 s per input.
# Findings are saved as build-fuzz/artifacts/<h>/{crash,leak,timeout,oom}-*. Prints a table of
# executions, exec/s, coverage (libFuzzer's cov and ft), corpus size and findings per harness;
# exits 1 if a regression input fails or any harness finds anything.
#
# Run long campaigns niced: nice -n 19 bash scripts/fuzz.sh 1800. PI0_GOLDEN_DIR overrides the
# golden cases' location (tests/golden); the protocol harness loads golden tiny-f32.
set -uo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
shift || true
all=(safetensors inputs config norm_stats tokenizer_json tokenizer_model image protocol lerobot orbax)
harnesses=("$@")
[ ${#harnesses[@]} -gt 0 ] || harnesses=("${all[@]}")
case $secs in ''|*[!0-9]*) echo "usage: scripts/fuzz.sh [SECONDS] [HARNESS ...]" >&2; exit 1 ;; esac
command -v clang >/dev/null || { echo "fuzz: clang is not installed (Debian package clang)" >&2; exit 1; }

B=${PI0_FUZZ_BUILD:-build-fuzz}
golden=${PI0_GOLDEN_DIR:-$PWD/tests/golden}
echo "fuzz: building the harnesses with clang in $B (~2-5 min on 2 cores)" >&2
cmake -S . -B "$B" -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPI0_FUZZ=ON -DPI0_CUDA=OFF \
  -DPI0_GOLDEN_DIR="$golden" >/dev/null ||
  { echo "fuzz: cmake configure failed (see above; bash scripts/deps.sh --test installs clang and its runtimes)" >&2; exit 1; }
targets=()
for h in "${harnesses[@]}"; do targets+=("fuzz_$h"); done
cmake --build "$B" -j"$(nproc)" --target "${targets[@]}" >"$B/fuzz_build.log" 2>&1 ||
  { tail -30 "$B/fuzz_build.log"; echo "fuzz: build failed (log: $B/fuzz_build.log; a missing libclang_rt.fuzzer or .asan: bash scripts/deps.sh --test installs libclang-rt-14-dev)" >&2; exit 1; }

# ASan: LeakSanitizer on, abort on the first error; UBSan: stack traces. libFuzzer's own limits
# below turn huge allocations into OOM reports instead of machine-wide memory pressure.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:allocator_may_return_null=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
limits=(-rss_limit_mb=2048 -malloc_limit_mb=2048 -timeout=10)

status=0
rows=()
for h in "${harnesses[@]}"; do
  bin="$B/fuzz/fuzz_$h"
  art="$B/artifacts/$h"
  work="$B/corpus/$h"
  log="$B/fuzz_$h.log"
  mkdir -p "$art" "$work"
  # 1. regression inputs: every reproducer must run cleanly
  regress=ok
  if compgen -G "fuzz/regress/$h/*" >/dev/null; then
    if ! "$bin" "${limits[@]}" -artifact_prefix="$art/regress-" fuzz/regress/"$h"/* >"$B/regress_$h.log" 2>&1; then
      regress=FAIL
      status=1
      echo "fuzz: $h: a regression input fails:" >&2
      grep -E "Running:|ERROR|runtime error|SUMMARY" "$B/regress_$h.log" | tail -8 >&2
    fi
  fi
  # 2. the campaign
  before=$(ls "$art" | grep -cv '^regress-' || true)
  dict=()
  [ -f "fuzz/$h.dict" ] && dict=(-dict="fuzz/$h.dict")
  echo "fuzz: $h for $secs s ..." >&2
  "$bin" "${limits[@]}" "${dict[@]}" -max_total_time="$secs" -print_final_stats=1 -artifact_prefix="$art/" \
    "$work" "fuzz/corpus/$h" >"$log" 2>&1
  rc=$?
  after=$(ls "$art" | grep -cv '^regress-' || true)
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  eps=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log" | tail -1)
  last=$(grep -E '^#[0-9]+' "$log" | grep -E 'cov: ' | tail -1)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
  corp=$(sed -n 's/.* corp: \([0-9]*\/[0-9a-zA-Z]*\).*/\1/p' <<<"$last")
  crashes=$(grep -cE 'ERROR: AddressSanitizer|ERROR: libFuzzer: deadly signal|runtime error:|ERROR: UndefinedBehaviorSanitizer' "$log")
  leaks=$(grep -c 'ERROR: LeakSanitizer' "$log")
  timeouts=$(grep -c 'ERROR: libFuzzer: timeout' "$log")
  ooms=$(grep -cE 'ERROR: libFuzzer: out-of-memory|allocator is out of memory|requested allocation size' "$log")
  found=$((after - before))
  if [ "$rc" -ne 0 ] || [ "$found" -gt 0 ] || [ $((crashes + leaks + timeouts + ooms)) -gt 0 ]; then
    status=1
    echo "fuzz: $h: FINDING (exit $rc); log $log, artifacts in $art" >&2
    grep -E 'ERROR|runtime error|SUMMARY|Test unit written' "$log" | head -6 >&2
  fi
  rows+=("$(printf '%-16s %10s %8s %7s %7s %11s %7s %5s %8s %5s %6s %8s' "$h" "${execs:-?}" "${eps:-?}" \
    "${cov:-?}" "${ft:-?}" "${corp:-?}" "$crashes" "$leaks" "$timeouts" "$ooms" "${rss:-?}" "$regress")")
done

echo
echo "libFuzzer, $secs s per harness (clang $(clang -dumpversion), ASan + UBSan + LSan):"
printf '%-16s %10s %8s %7s %7s %11s %7s %5s %8s %5s %6s %8s\n' harness execs exec/s cov ft corpus crashes \
  leaks timeouts ooms rss_mb regress
for r in "${rows[@]}"; do echo "$r"; done
[ $status -eq 0 ] && echo "fuzz: no findings" || echo "fuzz: FINDINGS (see above)"
exit $status
