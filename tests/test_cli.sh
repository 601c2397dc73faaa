#!/usr/bin/env bash
# test_cli.sh PI0 TEST_GOLDEN GOLDEN_DIR TMP — the pi0 command: `pi0 run --dump` on both golden
# cases checked tensor by tensor, exit codes and one-line errors on bad use, gen-model output
# loading and running.
set -u
PI0=$1 TG=$2 GOLDEN=$3 TMP=$4
rm -rf "$TMP" && mkdir -p "$TMP"
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
# expect CODE NEEDLE -- command...: exit code and a stderr line containing NEEDLE
expect() {
  local code=$1 needle=$2; shift 3
  "$@" >"$TMP/out" 2>"$TMP/err"; local rc=$?
  if [ $rc -eq "$code" ] && grep -q -- "$needle" "$TMP/err"; then ok
  else bad "$* -> rc $rc (want $code), stderr: $(cat "$TMP/err")"; fi
}

for c in tiny-f32 small-bf16 pi05-tiny-f32 pi05-small-bf16; do
  for be in ref fast; do
    if "$PI0" run --model "$GOLDEN/$c" --inputs "$GOLDEN/$c/inputs.safetensors" --out "$TMP/$c.$be.st" --dump --backend $be; then
      ok
      "$TG" "$GOLDEN/$c" --file "$TMP/$c.$be.st" --backend $be && ok || bad "golden comparison of pi0 run --dump ($c, $be)"
    else bad "pi0 run $c $be"; fi
  done
done
# the default backend is fast
"$PI0" run --model "$GOLDEN/tiny-f32" --inputs "$GOLDEN/tiny-f32/inputs.safetensors" --out "$TMP/default.st" 2>"$TMP/default.err" \
  && grep -q "fast backend" "$TMP/default.err" && ok || bad "default backend is not fast: $(cat "$TMP/default.err")"
# --full-prefix gives the same actions file bytes for 'actions' (checked by the golden compare too)
"$PI0" run --model "$GOLDEN/small-bf16" --inputs "$GOLDEN/small-bf16/inputs.safetensors" --backend ref \
  --out "$TMP/full.st" --full-prefix --dump && "$TG" "$GOLDEN/small-bf16" --file "$TMP/full.st" --backend ref && ok \
  || bad "full-prefix run"

expect 1 "unknown command" -- "$PI0" frobnicate
expect 1 "run needs" -- "$PI0" run --model "$GOLDEN/tiny-f32"
expect 1 "option '--model' needs a value" -- "$PI0" run --model
expect 1 "unknown option '--frobnicate'" -- "$PI0" run --frobnicate x

# --help on every subcommand: its usage on stdout, exit 0
for c in infer run serve gen-model gen-image check verify bench; do
  if "$PI0" $c --help >"$TMP/help.out" 2>"$TMP/help.err" && grep -q "^usage: pi0 $c " "$TMP/help.out" \
     && grep -q -- "--" "$TMP/help.out" && [ ! -s "$TMP/help.err" ]; then ok
  else bad "pi0 $c --help: $(cat "$TMP/help.out" "$TMP/help.err")"; fi
  "$PI0" $c -h 2>/dev/null | grep -q "^usage: pi0 $c " && ok || bad "pi0 $c -h"
done
"$PI0" help infer | grep -q "^usage: pi0 infer" && ok || bad "pi0 help infer"
"$PI0" infer --model x --prompt p -h | grep -q "^usage: pi0 infer" && ok || bad "-h after other options"
"$PI0" --help | grep -q "^  serve " && ok || bad "pi0 --help"
"$PI0" >/dev/null 2>&1; [ $? -eq 1 ] && ok || bad "pi0 without a command should exit 1"

# numbers are parsed strictly, with a range: a one-line usage error (exit 1) before anything runs
RUN=(run --model "$GOLDEN/tiny-f32" --inputs "$GOLDEN/tiny-f32/inputs.safetensors" --out "$TMP/t.st")
for t in 100000 abc -1 0 1025 " 4" 4x 2.5 ""; do
  expect 1 "--threads wants an integer in 1..1024, not '$t'" -- "$PI0" "${RUN[@]}" --threads "$t"
  expect 1 "--threads wants an integer in 1..1024" -- "$PI0" infer --model x --prompt p --state 1 --threads "$t"
  expect 1 "--threads wants an integer in 1..1024" -- "$PI0" bench --model x --threads "$t"
done
expect 1 "option '--threads' needs a value" -- "$PI0" "${RUN[@]}" --threads
"$PI0" "${RUN[@]}" --threads 1 2>"$TMP/t1.err" && grep -q "1 threads\|backend" "$TMP/t1.err" && ok || bad "--threads 1: $(cat "$TMP/t1.err")"
"$PI0" "${RUN[@]}" --threads 1024 --backend ref 2>/dev/null && ok || bad "--threads 1024 (the upper bound) must run"
for s in -1 abc 18446744073709551616 1e3; do
  expect 1 "--seed wants an integer in 0..18446744073709551615, not '$s'" -- "$PI0" "${RUN[@]}" --seed "$s"
done
"$PI0" "${RUN[@]}" --seed 18446744073709551615 2>/dev/null && ok || bad "largest seed refused"
expect 1 "--action-dims wants an integer in 1..1024, not '0'" -- "$PI0" infer --model x --prompt p --state 1 --action-dims 0
expect 1 "--width wants an integer in 1..8192, not 'abc'" -- "$PI0" gen-image --out "$TMP/x.png" --width abc
expect 1 "--height wants an integer in 1..8192, not '9000'" -- "$PI0" gen-image --out "$TMP/x.png" --height 9000
expect 1 "--cameras wants an integer in 1..3, not '4'" -- "$PI0" check --model x --cameras 4
expect 1 "--runs wants an integer in 1..1000, not '-5'" -- "$PI0" bench --model x --runs -5
expect 1 "--seed wants an integer" -- "$PI0" gen-model --config tiny --out "$TMP/x" --seed abc
expect 2 "cannot open" -- "$PI0" run --model "$TMP/nope" --inputs x --out y
expect 2 "missing input tensor 'tokens'" -- "$PI0" run --model "$GOLDEN/tiny-f32" \
  --inputs "$GOLDEN/tiny-f32/expected.safetensors" --out "$TMP/o.st"
expect 2 "input 'tokens' has 12 elements" -- "$PI0" run --model "$GOLDEN/tiny-f32" \
  --inputs "$GOLDEN/small-bf16/inputs.safetensors" --out "$TMP/o.st"
expect 2 "not available\|no CUDA GPU found" -- "$PI0" run --model "$GOLDEN/tiny-f32" --backend cuda \
  --inputs "$GOLDEN/tiny-f32/inputs.safetensors" --out "$TMP/o.st"
expect 2 "cannot create" -- "$PI0" run --model "$GOLDEN/tiny-f32" \
  --inputs "$GOLDEN/tiny-f32/inputs.safetensors" --out "$TMP/no/such/dir/o.st"
[ ! -e "$TMP/o.st" ] && ok || bad "a failed run left an output file"

# gen-model: tiny in f32 and small in bf16 load and run; a seed makes it reproducible.
for spec in "tiny f32" "small bf16"; do
  set -- $spec
  if "$PI0" gen-model --config "$1" --dtype "$2" --seed 3 --out "$TMP/gen-$1" 2>/dev/null; then ok; else bad "gen-model $1"; fi
done
"$PI0" run --model "$TMP/gen-tiny" --inputs "$GOLDEN/tiny-f32/inputs.safetensors" --out "$TMP/g1.st" 2>/dev/null && ok || bad "run generated tiny"
"$PI0" run --model "$TMP/gen-small" --inputs "$GOLDEN/small-bf16/inputs.safetensors" --out "$TMP/g2.st" 2>/dev/null && ok || bad "run generated small"
"$PI0" gen-model --config tiny --seed 3 --out "$TMP/gen-tiny2" 2>/dev/null
cmp -s "$TMP/gen-tiny/model.safetensors" "$TMP/gen-tiny2/model.safetensors" && ok || bad "gen-model not reproducible"
# check: every component of fast against ref on the generated small model; verify: coverage
"$PI0" check --model "$TMP/gen-small" >"$TMP/check.txt" 2>&1 && grep -q "check passed" "$TMP/check.txt" \
  && [ "$(grep -c PASS "$TMP/check.txt")" -eq 11 ] && ok || bad "pi0 check: $(cat "$TMP/check.txt")"
"$PI0" verify --model "$TMP/gen-small" >"$TMP/verify.txt" 2>&1 && grep -q "accelerated path: 100.00% of FLOPs" "$TMP/verify.txt" \
  && grep -q "0 fallback" "$TMP/verify.txt" && ok || bad "pi0 verify: $(cat "$TMP/verify.txt")"
PI0_FAST_F32=1 "$PI0" verify --model "$TMP/gen-small" 2>&1 | grep -q "fast: f32" && ok || bad "PI0_FAST_F32 does not select the f32 path"
"$PI0" bench --model "$TMP/gen-small" --cameras 1 --runs 1 >"$TMP/bench.txt" 2>&1 && grep -q "of peak" "$TMP/bench.txt" \
  && ok || bad "pi0 bench: $(cat "$TMP/bench.txt")"
# pi0.5: generated, checked component by component (the adaRMS condition too), verified
"$PI0" gen-model --config small --pi05 --dtype bf16 --seed 4 --out "$TMP/gen-small05" 2>/dev/null \
  && grep -q '"type": "pi05"' "$TMP/gen-small05/config.json" && ok || bad "gen-model --pi05"
"$PI0" check --model "$TMP/gen-small05" >"$TMP/check05.txt" 2>&1 && grep -q "check passed" "$TMP/check05.txt" \
  && [ "$(grep -c PASS "$TMP/check05.txt")" -eq 12 ] && grep -q "adaRMS condition .* PASS" "$TMP/check05.txt" \
  && ok || bad "pi0 check (pi0.5): $(cat "$TMP/check05.txt")"
"$PI0" verify --model "$TMP/gen-small05" >"$TMP/verify05.txt" 2>&1 && grep -q "accelerated path: 100.00% of FLOPs" "$TMP/verify05.txt" \
  && grep -q "rmsnorm_mod" "$TMP/verify05.txt" && grep -q "0 fallback" "$TMP/verify05.txt" && ok || bad "pi0 verify (pi0.5): $(cat "$TMP/verify05.txt")"
expect 1 "--dtype must be" -- "$PI0" gen-model --config tiny --dtype f64 --out "$TMP/x"
expect 2 "cannot open" -- "$PI0" gen-model --config nonesuch.json --out "$TMP/x"

echo "cli: $pass passed, $fail failed"
[ $fail -eq 0 ]
