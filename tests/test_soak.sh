#!/usr/bin/env bash
# test_soak.sh PI0 TOK_DIR TMP [SECONDS] — soak test of `pi0 serve` (serve_soak.py): 16 clients,
# about a quarter of the frames mutated or truncated, disconnects mid-request; then SIGTERM, and
# the server must exit 0 (in the sanitizer build that includes LeakSanitizer's verdict).
# ASan's quarantine is capped at 32 MiB so that RSS settles during the warm-up quarter. --seed 0:
# every valid request gets the same noise, so that its answer can be checked.
set -u
PI0=$1 TOK=$2 TMP=$3 SECS=${4:-45}
rm -rf "$TMP" && mkdir -p "$TMP"
PY=/usr/bin/python3
PHOTO=/usr/lib/python3/dist-packages/skimage/data/coffee.png
"$PI0" gen-model --config demo --dtype bf16 --seed 9 --out "$TMP/model" 2>/dev/null || { echo "FAIL: gen-model"; exit 1; }
PORT=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
ASAN_OPTIONS=${ASAN_OPTIONS:-quarantine_size_mb=32:detect_leaks=1} \
  "$PI0" serve --model "$TMP/model" --tokenizer "$TOK/tokenizer.json" --port "$PORT" --preset libero \
  --max-message-mb 2 --seed 0 --host 127.0.0.1 2>"$TMP/server.log" &
SERVER=$!
for i in $(seq 1 150); do
  $PY -c "import urllib.request as u; u.urlopen('http://127.0.0.1:$PORT/healthz', timeout=1)" 2>/dev/null && break
  sleep 0.2
done
fail=0
$PY "$(dirname "$0")/serve_soak.py" "$PORT" "$SERVER" "$SECS" "$PHOTO" || fail=1
kill -TERM $SERVER
wait $SERVER
rc=$?
grep -v "^    #" "$TMP/server.log" | tail -20
if [ $rc -ne 0 ]; then echo "FAIL: server exited with $rc after SIGTERM (sanitizer report above?)"; fail=1; fi
grep -q "shut down after" "$TMP/server.log" || { echo "FAIL: no clean shutdown message"; fail=1; }
exit $fail
