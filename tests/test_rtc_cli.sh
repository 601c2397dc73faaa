#!/usr/bin/env bash
# test_rtc_cli.sh PI0 GOLDEN_CASE_DIR TMP — `pi0 run`'s guided RTC options (issue 18): a plain
# run's chunk as the leftover (--rtc-prev takes its 'actions'), both Jacobians, the per-step
# correction dumps (rtc_correction.<step>), the two forms giving different actions, refusals.
set -uo pipefail
pi0=$1 case=$2 tmp=$3
rm -rf "$tmp" && mkdir -p "$tmp"
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
run() { "$pi0" run --model "$case" --inputs "$case/inputs.safetensors" --backend ref "$@"; }
run --out "$tmp/plain.safetensors" 2>/dev/null || fail "plain run"
for j in lerobot exact; do
  run --out "$tmp/$j.safetensors" --rtc-prev "$tmp/plain.safetensors" --rtc-delay 2 --rtc-horizon 3 \
      --rtc-schedule EXP --rtc-weight 4 --rtc-jacobian $j --dump 2>/dev/null || fail "--rtc-jacobian $j"
  head -c 65536 "$tmp/$j.safetensors" | grep -q '"rtc_correction.0"' || fail "$j: no rtc_correction.0 dump"
done
# the actions differ (the files' bytes from the header on: actions come first)
cmp -s "$tmp/lerobot.safetensors" "$tmp/exact.safetensors" && fail "exact and lerobot runs wrote the same file"
cmp -s "$tmp/plain.safetensors" "$tmp/lerobot.safetensors" && fail "the leftover changed nothing"
err=$(run --out "$tmp/x.safetensors" --rtc-jacobian bogus 2>&1) && fail "--rtc-jacobian bogus accepted"
grep -q "rtc-jacobian 'bogus'" <<<"$err" || fail "--rtc-jacobian bogus: '$err'"
err=$(run --out "$tmp/x.safetensors" --rtc-prev "$case/inputs.safetensors" 2>&1) && fail "a leftover without 'prev' accepted"
grep -q "needs a float tensor 'prev'" <<<"$err" || fail "no 'prev': '$err'"
[ -e "$tmp/x.safetensors" ] && fail "a refused run wrote its output"
echo "rtc_cli: $fails failed"
exit $((fails > 0))
