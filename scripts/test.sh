#!/usr/bin/env bash
# The test command: dependencies, the tokenizer and its JS reference, an AddressSanitizer +
# UBSan build, every CTest test, then a 20-second smoke run of every fuzz harness (clang).
# Golden cases are read from tests/golden (a copy of the shared cases, kept in the repository;
# override with PI0_GOLDEN_DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh --test
bash scripts/fetch_tokenizer.sh --with-js
golden=${PI0_GOLDEN_DIR:-$PWD/tests/golden}
# The CUDA toolkit, when installed, is found and the cuda backend compiled (its tests skip
# without a GPU).
if ! command -v nvcc >/dev/null && [ -x /usr/local/cuda/bin/nvcc ]; then export PATH="$PATH:/usr/local/cuda/bin"; fi
cmake -S . -B build-test -DCMAKE_BUILD_TYPE=Debug -DPI0_SANITIZE=ON -DPI0_GOLDEN_DIR="$golden" >/dev/null
cmake --build build-test -j"$(nproc)"
ctest --test-dir build-test --output-on-failure
# Fuzz smoke run (issue 8): a clang libFuzzer build; each harness replays its regression inputs,
# then fuzzes for 20 s from the committed corpus (bash scripts/fuzz.sh N for longer campaigns).
if command -v clang >/dev/null; then
  bash scripts/fuzz.sh 20
else
  echo "SKIP: fuzz smoke run: clang is not installed (Debian packages clang, libomp-dev)"
fi
