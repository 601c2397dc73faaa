#!/usr/bin/env bash
# test_serve.sh PI0 TOK_DIR TMP — `pi0 serve` on 127.0.0.1 with a small generated model, driven
# by serve_client.py (openpi's protocol): option values checked, metadata, actions == `pi0 infer`,
# 16 concurrent clients, malformed input, /healthz, clean shutdown on SIGTERM (and, in the sanitizer build,
# no leaks: the server's exit status includes LeakSanitizer's verdict).
set -u
PI0=$1 TOK=$2 TMP=$3
rm -rf "$TMP" && mkdir -p "$TMP"
PY=/usr/bin/python3
PHOTO=/usr/lib/python3/dist-packages/skimage/data/coffee.png
"$PI0" gen-model --config demo --dtype bf16 --seed 9 --out "$TMP/model" 2>/dev/null || { echo "FAIL: gen-model"; exit 1; }
fail=0
# option values parsed strictly: exit 1 with a one-line usage error, nothing listens
for bad in "--port abc" "--port 0" "--port 70000" "--port -1" "--port 80x" "--threads 100000" "--threads 0" \
           "--max-message-mb 0" "--max-message-mb abc" "--seed -1" "--action-dims 0"; do
  set -- $bad
  "$PI0" serve --model "$TMP/model" --tokenizer "$TOK/tokenizer.json" "$1" "$2" >/dev/null 2>"$TMP/opt.err"; rc=$?
  if [ $rc -eq 1 ] && grep -q -- "$1 wants .*, not '$2'" "$TMP/opt.err" && [ "$(wc -l <"$TMP/opt.err")" -eq 1 ]; then
    echo "serve $bad: $(cat "$TMP/opt.err")"
  else echo "FAIL: serve $bad -> rc $rc: $(cat "$TMP/opt.err")"; fail=1; fi
done
PORT=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# --seed 0: the same noise on every request, so that answers can be compared with `pi0 infer`
# (the default is fresh noise per request, as openpi: tests/serve_configs.py checks that)
"$PI0" serve --model "$TMP/model" --tokenizer "$TOK/tokenizer.json" --port "$PORT" --preset libero \
  --max-message-mb 2 --seed 0 --host 127.0.0.1 2>"$TMP/server.log" &
SERVER=$!
for i in $(seq 1 100); do
  code=$($PY -c "import urllib.request as u; r=u.urlopen('http://127.0.0.1:$PORT/healthz', timeout=1); print(r.status, repr(r.read().decode()))" 2>/dev/null) && break
  sleep 0.2
done
if [ "$code" = "200 'OK\n'" ]; then echo "healthz: $code"; else echo "FAIL: /healthz answered '$code'"; fail=1; fi
TMPDIR_SERVE="$TMP" $PY "$(dirname "$0")/serve_client.py" test "$PORT" "$TMP/model" "$PI0" "$TOK/tokenizer.json" "$PHOTO" || fail=1
kill -TERM $SERVER
wait $SERVER
rc=$?
cat "$TMP/server.log"
if [ $rc -ne 0 ]; then echo "FAIL: server exited with $rc after SIGTERM"; fail=1; fi
grep -q "shut down after" "$TMP/server.log" || { echo "FAIL: no clean shutdown message"; fail=1; }

# pi0.5: the server answers with the same actions as `pi0 infer` on the same observation
"$PI0" gen-model --config demo --pi05 --dtype bf16 --seed 8 --out "$TMP/model05" 2>/dev/null || { echo "FAIL: gen-model --pi05"; exit 1; }
cat >"$TMP/model05/norm_stats.json" <<'J'
{"norm_stats": {"state": {"q01": [-1,-1,-1,-1,-1,-1,-1,-1], "q99": [1,1,1,1,1,1,1,1]},
                "actions": {"q01": [0,0,0,0,0,0,0], "q99": [2,2,2,2,2,2,2]}}}
J
$PY -c "
import numpy as np; from PIL import Image
a = np.asarray(Image.open('$PHOTO').convert('RGB')); Image.fromarray(a[::2, ::2].copy()).save('$TMP/wrist.png')"
"$PI0" serve --model "$TMP/model05" --tokenizer "$TOK/tokenizer.json" --port "$PORT" --preset libero --seed 0 \
  --host 127.0.0.1 2>"$TMP/server05.log" &
SERVER=$!
for i in $(seq 1 100); do
  $PY -c "import urllib.request as u; u.urlopen('http://127.0.0.1:$PORT/healthz', timeout=1)" 2>/dev/null && break
  sleep 0.2
done
STATE05=0.1,-0.2,0.3,0.05,0.5,-0.6,0.9,0.2
$PY "$(dirname "$0")/serve_client.py" once "$PORT" "$PHOTO" "open the drawer" "$STATE05" >"$TMP/once05.json" 2>"$TMP/once05.err" \
  || { echo "FAIL: pi0.5 request: $(cat "$TMP/once05.err")"; fail=1; }
kill -TERM $SERVER; wait $SERVER
"$PI0" infer --model "$TMP/model05" --tokenizer "$TOK/tokenizer.json" --image base_0_rgb="$PHOTO" \
  --image left_wrist_0_rgb="$TMP/wrist.png" --prompt "open the drawer" --state "$STATE05" --format json \
  --action-dims 7 >"$TMP/infer05.json" 2>"$TMP/infer05.err" || { echo "FAIL: pi0.5 infer: $(cat "$TMP/infer05.err")"; fail=1; }
$PY - "$TMP/once05.json" "$TMP/infer05.json" <<'PY' || fail=1
import json, sys
s = json.load(open(sys.argv[1]))["actions"]; i = json.load(open(sys.argv[2]))["actions"]
d = max(abs(a - b) for r, q in zip(s, i) for a, b in zip(r, q))
print(f"pi0.5 serve vs infer: {len(s)}x{len(s[0])} actions, max |diff| {d:.3g}")
assert len(s) == len(i) and len(s[0]) == 7 and d < 1e-5, "pi0.5 served actions differ from pi0 infer"
PY
grep -q "warning: no norm stats.*actions are in normalized space" "$TMP/server.log" \
  || { echo "FAIL: no warning that, without norm stats, actions are normalized"; fail=1; }
exit $fail
