#!/usr/bin/env bash
# test_orbax.sh PI0 SRC_DIR VENV TMP [TOK_DIR [ORBAX_READ]] — openpi's Orbax checkpoints read as published: a tiny
# π0 (float32, one chunk per array) and a tiny π0.5 (bfloat16 matrices, float32 vectors, nnx "value"
# leaves, arrays split into many zarr chunks as sharded training saves them) written by
# the real orbax-checkpoint (tests/orbax/gen_orbax.py, pinned PyPI packages) give actions
# bit-identical to the same weights loaded from safetensors (ref and fast); `pi0 convert` output
# is the same safetensors tensor for tensor and loads the same; without config.json the sizes
# come from the shapes; broken checkpoints (a flipped manifest byte, a truncated data file, a
# missing array) fail with one clear line naming the file or array; with TOK_DIR, `pi0 infer
# --model <openpi dir>` (params/ + assets/, no config.json, as published) prints the same actions
# as on the safetensors checkpoint, norm stats from assets/; with ORBAX_READ (tests/orbax_read.c),
# zarr layouts Orbax does not write but the format allows (partial edge chunks, "/" separator,
# no compressor, 0-d, float16), written by tensorstore, read back byte for byte. Exit 77: PyPI
# unreachable.
set -u
PI0=$1 SRC=$2 VENV=$3 TMP=$4 TOK=${5:-} ORBAX_READ=${6:-}
bash "$SRC/scripts/pyvenv.sh" "$VENV" "$SRC/tests/orbax/requirements.txt"; rc=$?
[ $rc -eq 0 ] || exit $rc
PY="$VENV/bin/python"
rm -rf "$TMP" && mkdir -p "$TMP"
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
BACKENDS="ref"
"$PI0" run --help 2>/dev/null | grep -q "fast" && BACKENDS="ref fast"

same_actions() { # same_actions NAME MODEL_A MODEL_B INPUTS
  local name=$1 a=$2 b=$3 in=$4 be
  for be in $BACKENDS; do
    if "$PI0" run --model "$a" --inputs "$in" --out "$TMP/$name.a.$be.st" --backend $be 2>"$TMP/err" &&
       "$PI0" run --model "$b" --inputs "$in" --out "$TMP/$name.b.$be.st" --backend $be 2>"$TMP/err"; then
      if cmp -s "$TMP/$name.a.$be.st" "$TMP/$name.b.$be.st"; then
        echo "$name ($be): actions bit-identical (max |diff| 0)"; ok
      else bad "$name ($be): actions differ"; fi
    else bad "$name ($be): pi0 run failed: $(cat "$TMP/err")"; fi
  done
}

same_tensors() { # same_tensors A.safetensors B.safetensors: names, dtypes, shapes, bytes
  "$PY" - "$1" "$2" <<'PY'
import json, sys
def rd(p):
    raw = open(p, "rb").read(); n = int.from_bytes(raw[:8], "little"); h = json.loads(raw[8:8 + n])
    return {k: (v["dtype"], v["shape"], raw[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]])
            for k, v in h.items() if k != "__metadata__"}
a, b = rd(sys.argv[1]), rd(sys.argv[2])
diff = sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))
print(f"convert: {len(b)} tensors, {len(diff)} differ from the source safetensors {diff[:3]}")
sys.exit(1 if diff else 0)
PY
}

# 0. the zarr layer on its own
if [ -n "$ORBAX_READ" ]; then
  "$PY" "$SRC/tests/orbax/zarr_edge.py" "$TMP/edge" 2>/dev/null || bad "zarr_edge.py"
  for f in "$TMP"/edge/*.bin; do
    n=$(basename "$f" .bin)
    if "$ORBAX_READ" "$TMP/edge/db" "$n" "$TMP/edge/$n.out" >"$TMP/out" 2>"$TMP/err" && cmp -s "$f" "$TMP/edge/$n.out"; then
      echo "zarr: $(cat "$TMP/out"): bytes identical"; ok
    else bad "zarr array $n: $(cat "$TMP/err")"; fi
  done
fi

# 1. tiny π0, float32; tiny π0.5, bfloat16 + float32 vectors + nnx "value" leaves
"$PI0" gen-model --config tiny --seed 3 --out "$TMP/pi0_st" 2>/dev/null || bad "gen-model pi0"
"$PI0" gen-model --config tiny --pi05 --dtype bf16 --seed 4 --out "$TMP/pi05_st" 2>/dev/null || bad "gen-model pi05"
for k in pi0 pi05; do
  mkdir -p "$TMP/${k}_st/assets/robot"
  echo '{"norm_stats": {"state": {"mean": [0,0,0,0,0,0], "std": [1,1,1,1,1,1]}, "actions": {"mean": [0,0,0,0,0,0], "std": [2,2,2,2,2,2]}}}' \
    >"$TMP/${k}_st/assets/robot/norm_stats.json"
done
"$PY" "$SRC/tests/orbax/gen_orbax.py" "$TMP/pi0_st" "$TMP/pi0_ob" 2>"$TMP/gen.err" && ok || { bad "gen_orbax pi0: $(tail -3 "$TMP/gen.err")"; }
"$PY" "$SRC/tests/orbax/gen_orbax.py" "$TMP/pi05_st" "$TMP/pi05_ob" --vectors-f32 --value --chunk-bytes=2000 2>"$TMP/gen.err" && ok \
  || bad "gen_orbax pi05: $(tail -3 "$TMP/gen.err")"
[ -f "$TMP/pi0_ob/params/manifest.ocdbt" ] && [ -d "$TMP/pi0_ob/params/ocdbt.process_0" ] && ok || bad "not an OCDBT checkpoint"
"$PY" - "$TMP/pi05_ob/params" <<'PY' && ok || bad "the pi0.5 fixture should hold multi-chunk arrays"
import sys, tensorstore as ts
keys = ts.KvStore.open({"driver": "ocdbt", "base": "file://" + sys.argv[1]}).result().list().result()
n = sum(1 for k in keys if k.startswith(b"params.PaliGemma.llm.embedder.input_embedding") and not k.endswith(b".zarray"))
print(f"pi05 fixture: {len(keys)} keys, input_embedding in {n} chunks"); sys.exit(0 if n > 1 else 1)
PY
for k in pi0 pi05; do
  /usr/bin/python3 "$SRC/bench/make_inputs.py" "$TMP/${k}_st/config.json" "$TMP/${k}_in.st" --cameras 2 --seed 7 || bad "make_inputs"
  same_actions "$k orbax vs safetensors" "$TMP/${k}_st" "$TMP/${k}_ob" "$TMP/${k}_in.st"
  if "$PI0" convert --model "$TMP/${k}_ob" --out "$TMP/${k}_cv" 2>"$TMP/err"; then ok
  else bad "convert $k: $(cat "$TMP/err")"; fi
  [ -f "$TMP/${k}_cv/assets/robot/norm_stats.json" ] && ok || bad "convert $k: assets/ not copied"
  if [ $k = pi0 ]; then same_tensors "$TMP/${k}_st/model.safetensors" "$TMP/${k}_cv/model.safetensors" && ok || bad "convert $k: tensors differ"; fi
  same_actions "$k converted vs safetensors" "$TMP/${k}_st" "$TMP/${k}_cv" "$TMP/${k}_in.st"
done

# 2. no config.json (as openpi publishes): sizes from the shapes, openpi's defaults for the rest
"$PY" "$SRC/tests/orbax/gen_orbax.py" "$TMP/pi05_st" "$TMP/bare" --no-config 2>/dev/null || bad "gen_orbax --no-config"
"$PI0" convert --model "$TMP/bare" --out "$TMP/bare_cv" 2>/dev/null || bad "convert without config.json"
"$PY" - "$TMP/bare_cv/config.json" <<'PY' && ok || bad "derived config.json"
import json, sys
c = json.load(open(sys.argv[1]))
assert c["type"] == "pi05" and c["vision"]["width"] == 24 and c["vision"]["image_size"] == 28 and c["vlm"]["vocab_size"] == 300 \
    and c["expert"]["width"] == 32 and c["action_dim"] == 6 and c["action_horizon"] == 50, c
PY
/usr/bin/python3 "$SRC/bench/make_inputs.py" "$TMP/bare_cv/config.json" "$TMP/bare_in.st" --seed 2 || bad "make_inputs"
BACKENDS=ref same_actions "no config.json" "$TMP/bare" "$TMP/bare_cv" "$TMP/bare_in.st"

# 3. broken checkpoints: one clear line, exit 2, never a crash (the test build runs under ASan)
expect_err() { # expect_err NEEDLE MODEL
  "$PI0" run --model "$2" --inputs "$TMP/pi0_in.st" --out "$TMP/x.st" >"$TMP/out" 2>"$TMP/err"; local rc=$?
  if [ $rc -eq 2 ] && grep -q -- "$1" "$TMP/err" && ! grep -q "Sanitizer" "$TMP/err"; then
    echo "broken checkpoint: $(head -c 300 "$TMP/err")"; ok
  else bad "expected '$1' (exit 2), got rc $rc: $(cat "$TMP/err")"; fi
}
cp -r "$TMP/pi0_ob" "$TMP/flip"
printf '\xff' | dd of="$TMP/flip/params/manifest.ocdbt" bs=1 seek=40 conv=notrunc 2>/dev/null
expect_err "manifest.ocdbt: CRC-32C checksum mismatch" "$TMP/flip"
cp -r "$TMP/pi0_ob" "$TMP/cut"
big=$(ls -S "$TMP/cut/params/ocdbt.process_0/d/"* | head -1)
truncate -s $(($(stat -c %s "$big") / 2)) "$big"
expect_err "params.PaliGemma.*past the end of data file" "$TMP/cut"
"$PY" "$SRC/tests/orbax/gen_orbax.py" "$TMP/pi0_st" "$TMP/drop" --drop=PaliGemma.llm.layers.mlp_1.linear 2>/dev/null || bad "gen_orbax --drop"
expect_err "missing array 'params.PaliGemma.llm.layers.mlp_1.linear'" "$TMP/drop"

# 4. pi0 infer on openpi's directory as published: real vocabulary (demo preset), a photograph
if [ -f "$TOK/tokenizer.json" ]; then
  "$PI0" gen-model --config demo --dtype bf16 --seed 5 --out "$TMP/demo_st" 2>/dev/null || bad "gen-model demo"
  mkdir -p "$TMP/demo_st/assets/robot"
  echo '{"norm_stats": {"state": {"mean": [0.1,0,0,0,0,0,0,0.5], "std": [1,1,1,1,1,1,1,2]}, "actions": {"mean": [0,0,0,0,0,0,0,0], "std": [2,2,2,2,2,2,2,2]}}}' \
    >"$TMP/demo_st/assets/robot/norm_stats.json"
  "$PY" "$SRC/tests/orbax/gen_orbax.py" "$TMP/demo_st" "$TMP/demo_ob" --no-config 2>/dev/null || bad "gen_orbax demo"
  for m in demo_st demo_ob; do
    "$PI0" infer --model "$TMP/$m" --tokenizer "$TOK/tokenizer.json" --prompt "pick up the cup" --format csv \
      --image base_0_rgb=/usr/lib/python3/dist-packages/skimage/data/coffee.png --state 0.1,-0.2,0.3,0.05,0.5,-0.6,1.0,0.2 \
      >"$TMP/$m.csv" 2>"$TMP/$m.err" || bad "infer $m: $(cat "$TMP/$m.err")"
  done
  grep -q "using norm stats .*demo_ob/assets/robot/norm_stats.json" "$TMP/demo_ob.err" && ok || bad "norm stats not found under assets/: $(cat "$TMP/demo_ob.err")"
  if cmp -s "$TMP/demo_st.csv" "$TMP/demo_ob.csv" && [ "$(wc -l <"$TMP/demo_ob.csv")" -eq 51 ]; then
    echo "pi0 infer --model <openpi dir>: the same $(($(wc -l <"$TMP/demo_ob.csv") - 1)) x 8 actions as from safetensors"; ok
  else bad "pi0 infer on the Orbax checkpoint printed other actions"; fi
else
  echo "note: no tokenizer.json in '$TOK': pi0 infer part skipped"
fi

echo "orbax: $pass passed, $fail failed"
[ $fail -eq 0 ]
