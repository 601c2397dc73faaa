#!/usr/bin/env bash
# run.sh PI0 TOKENIZER_JSON VENV TMP — the reference tests (issue 21): pi0.c against lerobot's
# real PyTorch π0 / π0.5 policies, end to end (lerobot_e2e.py) and component by component
# (lerobot_components.py). Installs the pinned environment of requirements.txt into VENV with
# scripts/pyvenv.sh (cached; first run: minutes). Exit 77 (CTest: skipped) where PyPI or the
# Python that lerobot needs is unavailable.
set -uo pipefail
if [ $# -ne 4 ]; then echo "usage: run.sh PI0 TOKENIZER_JSON VENV TMP" >&2; exit 2; fi
pi0=$1 tok=$2 venv=$3 tmp=$4
here=$(cd "$(dirname "$0")" && pwd)
t0=$(date +%s)
bash "$here/../../scripts/pyvenv.sh" "$venv" "$here/requirements.txt"
rc=$?
if [ $rc -ne 0 ]; then exit $rc; fi
echo "environment ready in $(( $(date +%s) - t0 )) s ($venv)"
rm -rf "$tmp" && mkdir -p "$tmp"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_HOME="$tmp/hf_home" PYTHONDONTWRITEBYTECODE=1
fail=0
for t in lerobot_e2e.py lerobot_components.py; do
  [ -f "$here/$t" ] || continue
  echo "== $t"
  t1=$(date +%s)
  # lerobot's loaders log to stderr at WARNING (no accelerator, vision key notes): keep them out
  "$venv/bin/python" "$here/$t" "$pi0" "$tok" "$tmp/${t%.py}" 2> "$tmp/${t%.py}.stderr"
  r=$?
  echo "   ($t: $(( $(date +%s) - t1 )) s, exit $r)"
  if [ $r -ne 0 ]; then fail=1; echo "   its stderr, last lines:"; tail -n 20 "$tmp/${t%.py}.stderr"; fi
done
exit $fail
