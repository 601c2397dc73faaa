#!/usr/bin/env bash
# cuda_pypi.sh DIR — a CUDA toolkit folder for compiling the cuda backend where none is
# installed: NVIDIA's wheels from PyPI (pinned with hashes in scripts/cuda_pypi.txt) unpacked into
# DIR as a toolkit tree (DIR/bin/nvcc, DIR/include, DIR/lib, DIR/nvvm), for cmake's
# -DPI0_CUDA_TOOLKIT_DIR=DIR. Only what the build needs is kept (libcublas and libnvblas are
# dropped: the backend links cuBLASLt). DIR/.pi0-stamp holds a hash of the pin list: while it
# matches, nothing is downloaded again.
#
# Exit codes: 0 ready; 77 PyPI is unreachable (callers skip, saying so); 1 anything else.
set -uo pipefail
if [ $# -ne 1 ]; then echo "usage: cuda_pypi.sh DIR" >&2; exit 1; fi
dir=$1
req="$(cd "$(dirname "$0")" && pwd)/cuda_pypi.txt"
stamp=$(sha256sum <"$req" | cut -c1-16)
if [ -x "$dir/bin/nvcc" ] && [ "$(cat "$dir/.pi0-stamp" 2>/dev/null)" = "$stamp" ]; then exit 0; fi
py=$(command -v python3) || { echo "cuda_pypi: python3 is needed" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if ! "$py" -m pip --version >/dev/null 2>&1; then # Debian's python3 without pip: a throwaway venv has it
  "$py" -m venv "$tmp/venv" >/dev/null 2>&1 || { echo "cuda_pypi: no pip (Debian: apt-get install python3-venv)" >&2; exit 1; }
  py=$tmp/venv/bin/python
fi
echo "cuda_pypi: downloading the CUDA 13.0 toolkit wheels (~525 MB, once) into $dir" >&2
plat=()
for t in manylinux1 manylinux2010 manylinux2014 manylinux_2_5 manylinux_2_12 manylinux_2_17 manylinux_2_27 manylinux_2_28; do
  plat+=(--platform "${t}_x86_64")
done
if ! "$py" -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: "${plat[@]}" \
    --require-hashes -r "$req" -d "$tmp/whl" >"$tmp/pip.log" 2>&1; then
  # pip --quiet may hide the connection errors behind "no matching distribution": ask the index
  if grep -qiE "NewConnectionError|Temporary failure in name resolution|Name or service not known|Network is unreachable|Max retries exceeded|Connection refused|ConnectTimeout|ReadTimeout" "$tmp/pip.log" ||
     ! "$py" -c 'import os, urllib.request
urllib.request.urlopen(os.environ.get("PIP_INDEX_URL", "https://pypi.org/simple").rstrip("/") + "/nvidia-cuda-nvcc/", timeout=20)' 2>/dev/null; then
    echo "SKIP: PyPI is unreachable from this machine: no CUDA toolkit to compile the cuda backend with" >&2
    exit 77
  fi
  echo "cuda_pypi: pip download failed; its last lines:" >&2
  tail -n 15 "$tmp/pip.log" >&2
  exit 1
fi
# Every wheel holds nvidia/cu13/{bin,include,lib,nvvm}: together they are a toolkit tree.
"$py" - "$tmp/whl" "$tmp/x" <<'PY' || exit 1
import pathlib, sys, zipfile
src, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
skip = ("libcublas.so", "libnvblas.so")
for whl in sorted(src.glob("*.whl")):
    with zipfile.ZipFile(whl) as z:
        for m in z.infolist():
            name = m.filename
            if not name.startswith("nvidia/cu13/") or pathlib.PurePosixPath(name).name.startswith(skip):
                continue
            z.extract(m, out)
            if (m.external_attr >> 16) & 0o111:
                (out / name).chmod(0o755)
PY
root=$tmp/x/nvidia/cu13
[ -x "$root/bin/nvcc" ] || { echo "cuda_pypi: the wheels held no bin/nvcc" >&2; exit 1; }
ln -sf libcublasLt.so.13 "$root/lib/libcublasLt.so"
ln -sf libcudart.so.13 "$root/lib/libcudart.so"
ln -sf lib "$root/lib64"
rm -rf "$dir"
mkdir -p "$(dirname "$dir")"
mv "$root" "$dir"
echo "$stamp" >"$dir/.pi0-stamp"
echo "cuda_pypi: toolkit ready: $dir ($(du -sh "$dir" | cut -f1))" >&2
