#!/usr/bin/env bash
# test_client.sh PI0 TOKENIZER REPO TMP VERSION — examples/client.py against `pi0 serve`: one
# observation for an openpi LIBERO config and an ALOHA config (keys from the server's metadata,
# the robot's action dims back), images by short key, --opt=value, usage without arguments (no
# traceback), --version = the project's version, a repeated option refused, a bad state length
# and an unknown camera named.
set -u
PI0=$1 TOK=$2 REPO=$3 TMP=$4 VERSION=$5
PY=/usr/bin/python3
C="$REPO/examples/client.py"
rm -rf "$TMP" && mkdir -p "$TMP"
fail=0
bad() { echo "FAIL: $*"; fail=1; }
ok() { echo "ok: $*"; }
"$PI0" gen-model --config demo --dtype bf16 --assets --out "$TMP/model" 2>/dev/null || exit 1
"$PI0" gen-image --out "$TMP/scene.png" || exit 1
free_port() { $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
serve() {  # serve CONFIG -> $PORT, $SERVER
  PORT=$(free_port)
  "$PI0" serve --model "$TMP/model" --tokenizer "$TOK" --config "$1" --port "$PORT" --host 127.0.0.1 --seed 0 2>"$TMP/serve_$1.log" &
  SERVER=$!
  for _ in $(seq 1 300); do
    $PY -c "import socket,sys; socket.create_connection(('127.0.0.1', $PORT), 0.2)" 2>/dev/null && return 0
    kill -0 $SERVER 2>/dev/null || { cat "$TMP/serve_$1.log"; return 1; }
    sleep 0.2
  done
  return 1
}
stop() { kill $SERVER; wait $SERVER 2>/dev/null; }
rows() { grep -cE '^ +[0-9]+( +-?[0-9.]+)+ *$' "$1"; }
dims() { grep -E '^step ' "$1" | awk '{print NF - 1}'; }

# without arguments: usage, exit 2, no traceback
$PY "$C" >"$TMP/noargs.out" 2>"$TMP/noargs.err"
rc=$?
[ $rc = 2 ] && grep -q "^usage: client.py" "$TMP/noargs.err" && ! grep -q Traceback "$TMP/noargs.err" \
  && ok "no arguments: usage, exit 2" || bad "no arguments: exit $rc: $(cat "$TMP/noargs.err")"
v=$($PY "$C" --version 2>&1)
[ "$v" = "client.py (pi0.c) $VERSION" ] && ok "--version: $v" || bad "--version printed '$v', want version $VERSION"

serve pi0_libero || bad "pi0 serve --config pi0_libero did not start"
$PY "$C" --port="$PORT" --image image="$TMP/scene.png" --image=wrist_image="$TMP/scene.png" \
  --state=0.1,0.2,0.3,0,0,0,0.04,-0.04 --prompt "put the bowl on the plate" >"$TMP/libero.out" 2>"$TMP/libero.err"
rc=$?
[ $rc = 0 ] && [ "$(rows "$TMP/libero.out")" = 50 ] && [ "$(dims "$TMP/libero.out")" = 7 ] \
  && grep -q "config pi0_libero" "$TMP/libero.out" && grep -q "^timing: connect .* round trip .* server infer" "$TMP/libero.out" \
  && ok "pi0_libero: 50 x 7 actions; $(grep '^timing' "$TMP/libero.out")" || bad "pi0_libero: exit $rc: $(tail -3 "$TMP/libero.err" "$TMP/libero.out")"
# the actions equal pi0 infer's on the same observation (same seed 0)
"$PI0" infer --model "$TMP/model" --tokenizer "$TOK" --config pi0_libero --image observation/image="$TMP/scene.png" \
  --image observation/wrist_image="$TMP/scene.png" --state 0.1,0.2,0.3,0,0,0,0.04,-0.04 \
  --prompt "put the bowl on the plate" >"$TMP/infer.out" 2>/dev/null
diff <(grep -E '^ +[0-9]+ ' "$TMP/infer.out" | awk '{for (i = 2; i <= NF; i++) printf "%.4f ", $i; print ""}') \
     <(grep -E '^ +[0-9]+ ' "$TMP/libero.out" | awk '{for (i = 2; i <= NF; i++) printf "%.4f ", $i; print ""}') >/dev/null \
  && ok "client's actions == pi0 infer's (4 decimals)" || bad "client's actions differ from pi0 infer's"
$PY "$C" --port "$PORT" --repeat 3 --format json >"$TMP/json.out" 2>&1 &&
  $PY -c "import json,sys; d=json.load(open(sys.argv[1])); assert len(d['round_trip_ms']) == 3 and len(d['actions']) == 50" "$TMP/json.out" \
  && ok "--repeat 3 --format json" || bad "--repeat 3 --format json: $(tail -3 "$TMP/json.out")"
$PY "$C" --port "$PORT" --image image="$TMP/scene.png" --image image="$TMP/scene.png" >/dev/null 2>"$TMP/dup.err"
rc=$?
[ $rc = 2 ] && grep -q -- "--image image= given twice" "$TMP/dup.err" && ok "repeated --image KEY= refused" \
  || bad "repeated --image: exit $rc: $(cat "$TMP/dup.err")"
$PY "$C" --port "$PORT" --port "$PORT" >/dev/null 2>"$TMP/dup2.err"
[ $? = 2 ] && grep -q -- "--port given twice" "$TMP/dup2.err" && ok "repeated --port refused" || bad "repeated --port: $(cat "$TMP/dup2.err")"
$PY "$C" --port "$PORT" --state 1,2 >/dev/null 2>"$TMP/state.err"
[ $? = 1 ] && grep -q "state has 2 values; this robot's state has 8" "$TMP/state.err" && ok "bad state length named" \
  || bad "bad state: $(cat "$TMP/state.err")"
$PY "$C" --port "$PORT" --image cam_high="$TMP/scene.png" >/dev/null 2>"$TMP/cam.err"
[ $? = 1 ] && grep -q "cam_high: not a camera" "$TMP/cam.err" && ok "unknown camera named" || bad "unknown camera: $(cat "$TMP/cam.err")"
stop

serve pi0_aloha || bad "pi0 serve --config pi0_aloha did not start"
$PY "$C" --port "$PORT" --prompt "fold the towel" >"$TMP/aloha.out" 2>"$TMP/aloha.err"
rc=$?
[ $rc = 0 ] && [ "$(rows "$TMP/aloha.out")" = 50 ] && [ "$(dims "$TMP/aloha.out")" = 14 ] && grep -q "images/cam_high" "$TMP/aloha.out" \
  && ok "pi0_aloha (keys from the metadata): 50 x 14 actions" || bad "pi0_aloha: exit $rc: $(tail -3 "$TMP/aloha.err" "$TMP/aloha.out")"
stop
$PY "$C" --port "$PORT" >/dev/null 2>"$TMP/down.err"
[ $? = 1 ] && grep -q "cannot connect" "$TMP/down.err" && ! grep -q Traceback "$TMP/down.err" && ok "no server: one line" \
  || bad "no server: $(cat "$TMP/down.err")"
[ $fail = 0 ] && echo "PASS: client"
exit $fail
