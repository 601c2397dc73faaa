#!/usr/bin/env bash
# run_rtc.sh PI0 TOKENIZER_JSON VENV TMP LIBPI0 [PRELOAD] — pi0.c's real-time chunking against
# lerobot's real RTC code (issue 18, lerobot_rtc.py), in the pinned environment of
# requirements.txt (the same cached venv as run.sh). pi0.c runs through its Python binding
# (python/pi0) over LIBPI0; PRELOAD: the sanitizer runtimes a sanitized LIBPI0 needs, preloaded
# into that Python only. Exit 77 (CTest: skipped) where PyPI or Python 3.12 is unavailable.
set -uo pipefail
if [ $# -lt 5 ]; then echo "usage: run_rtc.sh PI0 TOKENIZER_JSON VENV TMP LIBPI0 [PRELOAD]" >&2; exit 2; fi
pi0=$1 tok=$2 venv=$3 tmp=$4 lib=$5 preload=${6:-}
here=$(cd "$(dirname "$0")" && pwd)
bash "$here/../../scripts/pyvenv.sh" "$venv" "$here/requirements.txt"
rc=$?
if [ $rc -ne 0 ]; then exit $rc; fi
rm -rf "$tmp" && mkdir -p "$tmp"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_HOME="$tmp/hf_home" PYTHONDONTWRITEBYTECODE=1
export PYTHONPATH="$here/../../python" PI0_LIBRARY="$lib"
t0=$(date +%s)
if [ -n "$preload" ]; then
  LD_PRELOAD="$preload" ASAN_OPTIONS=detect_leaks=0 "$venv/bin/python" "$here/lerobot_rtc.py" "$pi0" "$tok" "$tmp" 2> "$tmp/stderr"
else
  "$venv/bin/python" "$here/lerobot_rtc.py" "$pi0" "$tok" "$tmp" 2> "$tmp/stderr"
fi
r=$?
echo "(lerobot_rtc.py: $(( $(date +%s) - t0 )) s, exit $r)"
if [ $r -ne 0 ]; then echo "its stderr, last lines:"; tail -n 20 "$tmp/stderr"; fi
exit $r
