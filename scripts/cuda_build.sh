#!/usr/bin/env bash
# cuda_build.sh BUILD_DIR [ARCH [CMAKE_ARGS...]] — compile pi0 with the cuda backend for one GPU architecture
# (default 90: Hopper, H100/H200) or, with ARCH "all", for cmake/cuda.cmake's whole list, warning-clean, also on a machine without the CUDA toolkit:
# an installed nvcc is used when there is one, else the pinned PyPI toolkit (scripts/cuda_pypi.sh)
# cached in $PI0_CUDA_PYPI_DIR (default ~/.cache/pi0/cuda-13.0). Builds pi0, test_golden and
# test_backward (what scripts/gpu_check.sh carries to a GPU machine). CTest's cuda_compile test runs it.
# Exit codes: 0 built, no warnings; 77 no toolkit and PyPI unreachable; 1 failure or a warning.
set -uo pipefail
if [ $# -lt 1 ]; then echo "usage: cuda_build.sh BUILD_DIR [ARCH [CMAKE_ARGS...]]" >&2; exit 1; fi
src="$(cd "$(dirname "$0")/.." && pwd)"
build=$1
arch=${2:-90}
tk=()
if ! command -v nvcc >/dev/null && [ -z "${CUDACXX:-}" ]; then
  pypi=${PI0_CUDA_PYPI_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/pi0/cuda-13.0}
  bash "$src/scripts/cuda_pypi.sh" "$pypi"
  rc=$?
  [ $rc -eq 0 ] || exit $rc
  tk=(-DPI0_CUDA_TOOLKIT_DIR="$pypi")
fi
t0=$(date +%s)
mkdir -p "$build"
# a cache naming a compiler that is gone (a moved toolkit folder) cannot be reconfigured: start over
cc=$(sed -n 's/^CMAKE_CUDA_COMPILER:[A-Z]*=//p' "$build/CMakeCache.txt" 2>/dev/null)
[ -n "$cc" ] && [ ! -x "$cc" ] && rm -rf "$build/CMakeCache.txt" "$build/CMakeFiles"
archs=(-DCMAKE_CUDA_ARCHITECTURES="$arch")
[ "$arch" = all ] && archs=(-UCMAKE_CUDA_ARCHITECTURES) # the project's list (cmake/cuda.cmake)
if ! cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Release -DPI0_CUDA=ON "${archs[@]}" \
    "${tk[@]}" "${@:3}" >"$build/cuda_build.cmake.log" 2>&1; then
  echo "cuda_build: cmake failed:" >&2; tail -n 20 "$build/cuda_build.cmake.log" >&2; exit 1
fi
built_for=$(sed -n 's/.*pi0: cuda backend: yes.*architectures \(.*\))$/\1/p' "$build/cuda_build.cmake.log")
grep "pi0: cuda backend" "$build/cuda_build.cmake.log"
# -j: cores, or PI0_JOBS (nvcc is memory-hungry on small machines)
if ! cmake --build "$build" -j"${PI0_JOBS:-$(nproc)}" --target pi0 test_golden test_backward >"$build/cuda_build.build.log" 2>&1; then
  echo "cuda_build: build failed:" >&2; grep -E "error|Error" "$build/cuda_build.build.log" | head -n 30 >&2; exit 1
fi
if grep -iE "warning" "$build/cuda_build.build.log" >&2; then echo "cuda_build: FAIL: the build printed warnings (above)" >&2; exit 1; fi
echo "cuda_build: pi0, test_golden and test_backward built for sm_${built_for:-$arch} in $(( $(date +%s) - t0 )) s, no warnings: $build"
