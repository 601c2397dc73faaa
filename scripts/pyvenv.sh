#!/usr/bin/env bash
# pyvenv.sh DIR REQUIREMENTS.txt [...] — a cached Python virtual environment for the tests and
# tools that need PyPI packages (torch, lerobot, orbax, NVIDIA's CUDA wheels, ...).
#
# Creates DIR with Debian's python3 (package python3-venv) and pip-installs the pinned
# requirement files into it. DIR/.pi0-stamp holds a hash of the requirement files: while it
# matches, nothing is installed again (a second run costs well under a second).
#
# Exit codes: 0 ready (DIR/bin/python works); 77 PyPI is unreachable (the caller skips, saying
# so: CTest's SKIP_RETURN_CODE); 1 anything else, with pip's last lines on stderr.
set -uo pipefail
if [ $# -lt 2 ]; then echo "usage: pyvenv.sh DIR REQUIREMENTS.txt [...]" >&2; exit 1; fi
dir=$1; shift
for r in "$@"; do [ -f "$r" ] || { echo "pyvenv: no requirements file $r" >&2; exit 1; }; done
stamp=$(cat "$@" | sha256sum | cut -c1-16)
if [ -x "$dir/bin/python" ] && [ "$(cat "$dir/.pi0-stamp" 2>/dev/null)" = "$stamp" ]; then exit 0; fi
py=/usr/bin/python3
[ -x "$py" ] || py=$(command -v python3)
# Directives in a requirements file (comment lines):
#   "# pyvenv: pythonX.Y"  the venv's Python: pythonX.Y on PATH, /usr/bin, /usr/local/bin or a
#                          pyenv install (~/.pyenv/versions/X.Y.*); none ⇒ exit 77 (skip)
#   "# pyvenv: no-deps"    pip install --no-deps: the file pins the whole environment
want=$(cat "$@" | sed -n 's/^# *pyvenv: *\(python[0-9.]*\) *$/\1/p' | head -n 1)
nodeps=$(cat "$@" | grep -qE '^# *pyvenv: *no-deps *$' && echo --no-deps)
if [ -n "$want" ]; then
  py=
  for cand in /usr/bin/"$want" /usr/local/bin/"$want" \
              $(ls -d "${PYENV_ROOT:-$HOME/.pyenv}"/versions/"${want#python}".*/bin/"$want" 2>/dev/null) \
              "$(command -v "$want")"; do  # a pyenv shim is on PATH but may not run: try each
    if [ -x "$cand" ] && "$cand" -c 'import venv' 2>/dev/null; then py=$cand; break; fi
  done
  if [ -z "$py" ]; then
    echo "SKIP: $* needs $want (not on PATH, in /usr/bin, /usr/local/bin or ~/.pyenv/versions)" >&2; exit 77
  fi
fi
rm -rf "$dir"
mkdir -p "$(dirname "$dir")"
if ! "$py" -m venv "$dir" 2>"$dir.log"; then
  echo "pyvenv: '$py -m venv' failed (Debian: apt-get install python3-venv, or bash scripts/deps.sh --test):" >&2
  tail -n 5 "$dir.log" >&2; rm -rf "$dir"; exit 1
fi
echo "pyvenv: installing $(cat "$@" | grep -cvE '^\s*(#|$|-)') pinned packages from PyPI into $dir (first run: minutes; cached after)" >&2
if ! "$dir/bin/python" -m pip install --quiet --disable-pip-version-check $nodeps "${@/#/-r}" >"$dir.log" 2>&1; then
  if grep -qiE "NewConnectionError|Temporary failure in name resolution|Name or service not known|Network is unreachable|Max retries exceeded|Connection refused|ConnectTimeout|ReadTimeout" "$dir.log"; then
    echo "SKIP: PyPI is unreachable from this machine (pip: $(grep -m1 -oiE '(NewConnectionError|Temporary failure in name resolution|Network is unreachable|Max retries exceeded|Connection refused)' "$dir.log"))" >&2
    rm -rf "$dir"; exit 77
  fi
  echo "pyvenv: pip install failed for $*; its last lines ($dir.log):" >&2
  tail -n 15 "$dir.log" >&2; rm -rf "$dir"; exit 1
fi
echo "$stamp" >"$dir/.pi0-stamp"
echo "pyvenv: $dir ready ($(du -sh "$dir" | cut -f1))" >&2
exit 0
