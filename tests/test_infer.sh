#!/usr/bin/env bash
# test_infer.sh PI0 TOK_DIR TMP — `pi0 infer` end to end on a small generated model (real
# tokenizer vocabulary, 224-pixel images) with a real photograph and a generated PNG:
# actions printed; identical to `pi0 run` on the same preprocessed observation; norm stats
# applied; every bad-input case answered with a one-line error and exit code 2.
set -u
PI0=$1 TOK=$2 TMP=$3
rm -rf "$TMP" && mkdir -p "$TMP"
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
expect() { # expect CODE NEEDLE -- command...
  local code=$1 needle=$2; shift 3
  "$@" >"$TMP/out" 2>"$TMP/err"; local rc=$?
  # one error line (besides the random-weights note and the no-norm-stats warning)
  if [ $rc -eq "$code" ] && grep -q -- "$needle" "$TMP/err" && [ "$(grep -c "error" "$TMP/err")" -le 1 ] \
     && [ "$(wc -l <"$TMP/err")" -le 3 ]; then ok
  else bad "$* -> rc $rc (want $code), stderr: $(cat "$TMP/err")"; fi
}
PY=/usr/bin/python3
PHOTO=/usr/lib/python3/dist-packages/skimage/data/coffee.png
[ -f "$PHOTO" ] || { echo "FAIL: $PHOTO missing (python3-skimage)"; exit 1; }
[ -f "$TOK/tokenizer.json" ] || { echo "FAIL: no $TOK/tokenizer.json"; exit 1; }
M="$TMP/model"
"$PI0" gen-model --config demo --dtype bf16 --seed 5 --out "$M" 2>/dev/null || { echo "FAIL: gen-model"; exit 1; }
"$PI0" gen-image --out "$TMP/scene.png" && ok || bad "gen-image"
STATE=0.1,-0.2,0.3,0.05,0.5,-0.6,1.0
# each option once (a repeated one is refused): BASE, then the prompt and the state
BASE=(--model "$M" --tokenizer "$TOK/tokenizer.json" --image base_0_rgb="$PHOTO"
      --image left_wrist_0_rgb="$TMP/scene.png" --seed 11)
PROMPT=(--prompt "pick up the coffee cup")
COMMON=("${BASE[@]}" "${PROMPT[@]}" --state $STATE)

# 1. actions printed, in each format
if "$PI0" infer "${COMMON[@]}" --action-dims 32 --format csv --save-inputs "$TMP/obs.st" >"$TMP/infer.csv" 2>"$TMP/infer.err"; then ok
else bad "infer: $(cat "$TMP/infer.err")"; fi
grep -q "RANDOM weights" "$TMP/infer.err" && ok || bad "no random-weights notice"
# no norm stats: a warning that the state is taken as normalized and the actions are normalized
grep -q "warning: no norm stats .*state is taken as already normalized .*actions are in normalized space" "$TMP/infer.err" \
  && ok || bad "no warning about missing norm stats: $(cat "$TMP/infer.err")"
grep -q "denoise" "$TMP/infer.err" && ok || bad "no stage timings"
[ "$(wc -l <"$TMP/infer.csv")" -eq 51 ] && ok || bad "csv should have a header and 50 rows"
"$PI0" infer "${COMMON[@]}" --format table >"$TMP/t.txt" 2>/dev/null && grep -q "^  49 " "$TMP/t.txt" && ok || bad "table format"
"$PI0" infer "${COMMON[@]}" --format json 2>/dev/null | $PY -c 'import json,sys; d=json.load(sys.stdin); assert len(d["actions"])==50 and len(d["actions"][0])==32' && ok || bad "json format"

# 2. the same observation through `pi0 run` gives identical actions
"$PI0" run --model "$M" --inputs "$TMP/obs.st" --out "$TMP/run.st" 2>/dev/null && ok || bad "pi0 run on saved inputs"
$PY - "$TMP/infer.csv" "$TMP/run.st" <<'PY' && ok || bad "infer and run actions differ"
import json, struct, sys, array
rows = [list(map(float, l.split(","))) for l in open(sys.argv[1]).read().split("\n")[1:] if l]
b = open(sys.argv[2], "rb").read(); n = struct.unpack("<Q", b[:8])[0]; h = json.loads(b[8:8 + n])
s, e = h["actions"]["data_offsets"]; a = array.array("f", b[8 + n + s:8 + n + e])
flat = [struct.unpack("f", struct.pack("f", v))[0] for r in rows for v in r]  # %.9g round-trips float32
assert len(flat) == len(a), (len(flat), len(a))
diff = max(abs(x - y) for x, y in zip(flat, a))
print(f"infer vs run: {len(a)} values, max |diff| {diff}")
assert all(x == y for x, y in zip(flat, a)), "not identical"
PY

# 3. norm stats: state normalized, actions unnormalized and sliced to the stats' 7 dims
cat >"$TMP/norm_stats.json" <<'J'
{"norm_stats": {"state": {"mean": [0,1,2,3,4,5,6], "std": [1,2,3,4,5,6,7], "q01": [0,0,0,0,0,0,0], "q99": [1,1,1,1,1,1,1]},
                "actions": {"mean": [10,20,30,40,50,60,70], "std": [2,2,2,2,2,2,2], "q01": [0,0,0,0,0,0,0], "q99": [1,1,1,1,1,1,1]}}}
J
RAW_STATE=$($PY -c 'm=[0,1,2,3,4,5,6];s=[1,2,3,4,5,6,7];v=[0.1,-0.2,0.3,0.05,0.5,-0.6,1.0];print(",".join(repr(x*(t+1e-6)+u) for x,u,t in zip(v,m,s)))')
"$PI0" infer "${BASE[@]}" "${PROMPT[@]}" --format csv --norm-stats "$TMP/norm_stats.json" --state "$RAW_STATE" >"$TMP/ns.csv" 2>"$TMP/ns.err" && ok || bad "infer with norm stats: $(cat "$TMP/ns.err")"
grep -q "no norm stats" "$TMP/ns.err" && bad "norm stats warning with norm stats given" || ok
$PY - "$TMP/infer.csv" "$TMP/ns.csv" <<'PY' && ok || bad "norm stats not applied as z-score"
import sys
raw = [list(map(float, l.split(","))) for l in open(sys.argv[1]).read().split("\n")[1:] if l]
un = [list(map(float, l.split(","))) for l in open(sys.argv[2]).read().split("\n")[1:] if l]
assert len(un[0]) == 7, len(un[0])
mean = [10, 20, 30, 40, 50, 60, 70]
err = max(abs(u[d] - (r[d] * (2 + 1e-6) + mean[d])) for r, u in zip(raw, un) for d in range(7))
print(f"unnormalized actions vs raw*(std+1e-6)+mean: max |diff| {err:.2e}")
assert err < 1e-3
PY

# 3b. norm stats found in the checkpoint's assets/<robot>/ (openpi's converted checkpoints)
mkdir -p "$TMP/model/assets/libero" && cp "$TMP/norm_stats.json" "$TMP/model/assets/libero/norm_stats.json"
"$PI0" infer "${BASE[@]}" "${PROMPT[@]}" --format csv --state "$RAW_STATE" >"$TMP/auto.csv" 2>"$TMP/auto.err" \
  && grep -q "using norm stats .*assets/libero/norm_stats.json" "$TMP/auto.err" && cmp -s "$TMP/auto.csv" "$TMP/ns.csv" \
  && ok || bad "assets/*/norm_stats.json not picked up: $(cat "$TMP/auto.err")"
mkdir -p "$TMP/model/assets/droid" && cp "$TMP/norm_stats.json" "$TMP/model/assets/droid/norm_stats.json"
expect 2 "norm stats for 2 robots" -- "$PI0" infer "${COMMON[@]}"
rm -rf "$TMP/model/assets"

# 4. long prompt: truncated with a warning, still answered
LONG=$(printf 'pick up the red block and put it in the bowl %.0s' $(seq 1 20))
"$PI0" infer "${BASE[@]}" --state $STATE --prompt "$LONG" >/dev/null 2>"$TMP/long.err" && grep -q "warning: prompt is .* truncated to max_token_len = 48" "$TMP/long.err" && ok || bad "long prompt: $(cat "$TMP/long.err")"

# 5. bad input: one-line errors, exit code 2 (1 for usage)
printf 'not a png' >"$TMP/broken.png"
expect 2 "unknown camera 'top_cam'" -- "$PI0" infer "${COMMON[@]}" --image top_cam="$TMP/scene.png"
# a state shorter than state_dim without norm stats: accepted as normalized, zero-padded, with the warning
"$PI0" infer "${BASE[@]}" "${PROMPT[@]}" --state 0.5 >/dev/null 2>"$TMP/one.err" && grep -q "no norm stats" "$TMP/one.err" \
  && ok || bad "one-value state: $(cat "$TMP/one.err")"
expect 2 "state has 33 values; this model takes 1 to 32" -- "$PI0" infer "${BASE[@]}" "${PROMPT[@]}" --state $(seq -s, 1 33)
# statistics longer than the state are sliced to it, as openpi's Normalize does (said once);
# shorter ones are refused (openpi's do not broadcast)
"$PI0" infer "${BASE[@]}" "${PROMPT[@]}" --norm-stats "$TMP/norm_stats.json" --state 1,2,3,4,5,6 >/dev/null 2>"$TMP/slice.err" \
  && [ "$(grep -c "warning: norm_stats.state has 7 values and the state 6: the first 6 statistics are used, as openpi's Normalize slices them" "$TMP/slice.err")" -eq 1 ] \
  && ok || bad "norm stats longer than the state: $(cat "$TMP/slice.err")"
expect 2 "state has 8 values but norm_stats.state only 7" -- "$PI0" infer "${BASE[@]}" "${PROMPT[@]}" --norm-stats "$TMP/norm_stats.json" --state 1,2,3,4,5,6,7,8
expect 2 "'abc' is not a number" -- "$PI0" infer "${BASE[@]}" "${PROMPT[@]}" --state 1,abc,3
expect 2 "broken.png: cannot decode image" -- "$PI0" infer "${COMMON[@]}" --image right_wrist_0_rgb="$TMP/broken.png"
expect 2 "nope.png: cannot open" -- "$PI0" infer "${COMMON[@]}" --image right_wrist_0_rgb="$TMP/nope.png"
expect 2 "missing_model: cannot open" -- "$PI0" infer --model "$TMP/missing_model" --prompt x --state 1
mkdir -p "$TMP/empty_model" && echo '{}' >"$TMP/empty_model/config.json"
expect 2 "no model.safetensors" -- "$PI0" infer --model "$TMP/empty_model" --prompt x --state 1
expect 2 "no tokenizer" -- env PI0_TOKENIZER= "$PI0" infer --model "$M" --prompt x --state 1
"$PI0" gen-model --config tiny --out "$TMP/tiny" 2>/dev/null
expect 2 "outside the model's vocabulary" -- "$PI0" infer --model "$TMP/tiny" --tokenizer "$TOK/tokenizer.json" --prompt "hello" --state 1 \
  --image base_0_rgb="$TMP/scene.png"
# an observation without any camera is refused (a key typo would otherwise run the model blind)
expect 2 "no camera image found" -- "$PI0" infer --model "$M" --tokenizer "$TOK/tokenizer.json" --prompt "hello" --state 1
expect 1 "--format must be" -- "$PI0" infer "${COMMON[@]}" --format xml
expect 1 "infer needs" -- "$PI0" infer --model "$M"

# 6. pi0.5: quantile norm stats, the state enters only as discretized text in the prompt
M5="$TMP/model05"
"$PI0" gen-model --config demo --pi05 --dtype bf16 --seed 6 --out "$M5" 2>/dev/null || bad "gen-model --pi05"
C5=(--model "$M5" --tokenizer "$TOK/tokenizer.json" --image base_0_rgb="$PHOTO"
    --seed 11 --format csv --norm-stats "$TMP/norm_stats.json")
# q01 = 0, q99 = 1: s = (x - 0)/(1 + 1e-6)·2 - 1; x = 0.30 and 0.2995 fall in bin 76, 0.31 in 79
"$PI0" infer "${C5[@]}" "${PROMPT[@]}" --state 0.1,0.2,0.30,0.4,0.5,0.6,0.7 --save-inputs "$TMP/obs05.st" >"$TMP/p5a.csv" 2>"$TMP/p5.err" \
  && ok || bad "pi0.5 infer: $(cat "$TMP/p5.err")"
"$PI0" infer "${C5[@]}" "${PROMPT[@]}" --state 0.1,0.2,0.2995,0.4,0.5,0.6,0.7 >"$TMP/p5b.csv" 2>/dev/null && cmp -s "$TMP/p5a.csv" "$TMP/p5b.csv" \
  && ok || bad "pi0.5: a state change inside one bin changed the actions"
"$PI0" infer "${C5[@]}" "${PROMPT[@]}" --state 0.1,0.2,0.31,0.4,0.5,0.6,0.7 >"$TMP/p5c.csv" 2>/dev/null && ! cmp -s "$TMP/p5a.csv" "$TMP/p5c.csv" \
  && ok || bad "pi0.5: a state change across a bin edge left the actions unchanged"
"$PI0" run --model "$M5" --inputs "$TMP/obs05.st" --out "$TMP/run05.st" 2>/dev/null && ok || bad "pi0 run on pi0.5 inputs"
$PY - "$TMP/p5a.csv" "$TMP/run05.st" <<'PY' && ok || bad "pi0.5 actions not unnormalized with quantiles"
import json, struct, sys, array
un = [list(map(float, l.split(","))) for l in open(sys.argv[1]).read().split("\n")[1:] if l]
b = open(sys.argv[2], "rb").read(); n = struct.unpack("<Q", b[:8])[0]; h = json.loads(b[8:8 + n])
s, e = h["actions"]["data_offsets"]; a = array.array("f", b[8 + n + s:8 + n + e])
A = h["actions"]["shape"][1]
err = max(abs(un[r][d] - ((a[r * A + d] + 1) / 2 * (1 - 0 + 1e-6) + 0)) for r in range(len(un)) for d in range(7))
print(f"pi0.5 unnormalized actions vs (a+1)/2*(q99-q01+1e-6)+q01: max |diff| {err:.2e}")
assert len(un[0]) == 7 and err < 1e-5
PY
LONG5=$(printf 'pick up the red block and put it in the bowl %.0s' $(seq 1 25))
"$PI0" infer "${C5[@]}" --state 0.1,0.2,0.3,0.4,0.5,0.6,0.7 --prompt "$LONG5" >/dev/null 2>"$TMP/long5.err" \
  && grep -q "warning: prompt is .* truncated to max_token_len = 200" "$TMP/long5.err" && ok || bad "pi0.5 long prompt: $(cat "$TMP/long5.err")"
echo "infer: $pass passed, $fail failed"
[ $fail -eq 0 ]
