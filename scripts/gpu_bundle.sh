#!/usr/bin/env bash
# gpu_bundle.sh [ARCH] — build, here (no GPU needed), the binaries scripts/gpu_check.sh runs on a
# GPU machine, into gpu-bin/ (git-ignored; carry it: the device tool's `carry: ["gpu-bin"]`):
# pi0, test_golden and test_backward compiled with nvcc for sm_ARCH (default 90; the PyPI toolkit when no nvcc
# is installed), without the fast backend and `pi0 serve` (no oneDNN / libwebsockets to carry),
# and the few shared libraries a bare GPU machine lacks (cJSON, stb, libgomp) in gpu-bin/lib.
# cuBLASLt is not carried (550 MB): gpu_check.sh finds the machine's own.
set -euo pipefail
cd "$(dirname "$0")/.."
arch=${1:-90}
bash scripts/cuda_build.sh build-gpubin "$arch" -DPI0_SERVE=OFF -DPI0_FAST=OFF
rm -rf gpu-bin
mkdir -p gpu-bin/lib
cp build-gpubin/pi0 build-gpubin/tests/test_golden build-gpubin/tests/test_backward gpu-bin/
strip gpu-bin/pi0 gpu-bin/test_golden gpu-bin/test_backward
for lib in $(ldd gpu-bin/pi0 gpu-bin/test_golden | awk '$3 ~ /^\// {print $3}' | sort -u); do
  case $(basename "$lib") in libcjson.so*|libstb.so*|libgomp.so*) cp -L "$lib" gpu-bin/lib/ ;; esac
done
ldd gpu-bin/pi0 | grep -q "libcublasLt.so.13" || { echo "gpu_bundle: pi0 does not link libcublasLt.so.13" >&2; exit 1; }
echo "gpu_bundle: gpu-bin/ ($(du -sh gpu-bin | cut -f1)): $(cd gpu-bin && ls -R | tr '\n' ' ')"
