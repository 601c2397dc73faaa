#!/usr/bin/env bash
# test_pip_install.sh REPO PI0 TOKENIZER TMP VERSION — the Python package as a user installs it:
# a fresh virtual environment, `pip install ./python` (builds libpi0.so with CMake), then the
# README's Python example ("Using it from Python"), as printed, on a demo model with its assets.
# Exit 77 (skip) when PyPI is unreachable (pip needs setuptools to build).
set -u
REPO=$(cd "$1" && pwd) PI0=$2 TOKENIZER=$3 TMP=$4 VERSION=$5
rm -rf "$TMP" && mkdir -p "$TMP/demo"
fail=0
bad() { echo "FAIL: $*"; fail=1; }
/usr/bin/python3 -m venv "$TMP/venv" 2>"$TMP/venv.log" ||
  { cat "$TMP/venv.log"; echo "FAIL: python3 -m venv (Debian package python3-venv: bash scripts/deps.sh --test)"; exit 1; }
t0=$(date +%s)
# pip's in-tree build writes python/build/ and python/pi0.egg-info (ignored by git); a copy of the
# sources keeps parallel runs and the clone apart.
mkdir -p "$TMP/src"
(cd "$REPO" && git ls-files -z 2>/dev/null | xargs -0 cp --parents -t "$TMP/src" 2>/dev/null) || cp -r "$REPO/." "$TMP/src"
[ -f "$TMP/src/python/pyproject.toml" ] || cp -r "$REPO/." "$TMP/src"
env -u PI0_LIBRARY -u PYTHONPATH "$TMP/venv/bin/pip" install --disable-pip-version-check "$TMP/src/python" >"$TMP/pip.log" 2>&1
rc=$?
if [ $rc -ne 0 ]; then
  if grep -qiE "NewConnectionError|Temporary failure in name resolution|Name or service not known|Network is unreachable|Max retries exceeded|Connection refused|ConnectTimeout|ReadTimeout|No matching distribution found for setuptools" "$TMP/pip.log"; then
    echo "SKIP: PyPI is unreachable (pip needs setuptools to build the package): $(grep -m1 -oiE 'NewConnectionError|Temporary failure in name resolution|Network is unreachable|Max retries exceeded|Connection refused|No matching distribution found for setuptools' "$TMP/pip.log")"
    exit 77
  fi
  tail -n 30 "$TMP/pip.log"; echo "FAIL: pip install ./python (exit $rc)"; exit 1
fi
echo "pip install ./python: $(($(date +%s) - t0)) s ($(grep -m1 -o 'Successfully installed.*' "$TMP/pip.log"))"
v=$("$TMP/venv/bin/python" -c 'import importlib.metadata as m; print(m.version("pi0"))')
[ "$v" = "$VERSION" ] && echo "ok: version $v" || bad "installed version $v, want $VERSION (python/pyproject.toml vs CMakeLists.txt)"
"$PI0" gen-model --config demo --dtype bf16 --assets --out "$TMP/demo/pi0-assets" 2>/dev/null || exit 1
# the README's example, from the first indented line after the heading to the block's end
awk '/^## Using it from Python/ {on = 1; next} on && /^## / {exit}
     on && /^    / {sub(/^    /, ""); print; blk = 1; next} on && blk && /^$/ {exit}' "$REPO/README.md" >"$TMP/example.py"
echo "README example: $(wc -l <"$TMP/example.py") lines"
grep -q "pi0.Policy" "$TMP/example.py" || bad "no Python example found in the README"
(cd "$TMP" && env -u PI0_LIBRARY -u PYTHONPATH -u LD_PRELOAD PI0_TOKENIZER="$TOKENIZER" "$TMP/venv/bin/python" example.py) \
  >"$TMP/example.out" 2>"$TMP/example.err"
rc=$?
cat "$TMP/example.out"
[ $rc = 0 ] || { tail -n 5 "$TMP/example.err"; bad "the README's example failed (exit $rc)"; }
grep -qx "(50, 7)" "$TMP/example.out" && grep -qx "pi0_libero" "$TMP/example.out" || bad "unexpected output"
lib=$(cd "$TMP" && env -u PI0_LIBRARY -u PYTHONPATH "$TMP/venv/bin/python" -c 'import pi0; print(pi0.library_path())')
case $lib in "$TMP/venv/"*) echo "ok: libpi0 from the package: $lib" ;; *) bad "pi0 loaded $lib, not the installed package's" ;; esac
[ $fail = 0 ] && echo "PASS: pip_install"
exit $fail
