#!/usr/bin/env bash
# The test command: dependencies, the tokenizer and its JS reference, an AddressSanitizer +
# UBSan build, every CTest test (in parallel, one job per core), then a 20-second smoke run of
# every fuzz harness (clang). Golden cases are read from tests/golden (a copy of the shared cases,
# kept in the repository; override with PI0_GOLDEN_DIR).
source "$(dirname "$0")/lib.sh"
cd "$(dirname "$0")/.."
bash scripts/deps.sh --test
bash scripts/fetch_tokenizer.sh --with-js >/dev/null
golden=${PI0_GOLDEN_DIR:-$PWD/tests/golden}
# The CUDA toolkit, when installed, is found and the cuda backend compiled (its tests skip
# without a GPU).
if ! command -v nvcc >/dev/null && [ -x /usr/local/cuda/bin/nvcc ]; then export PATH="$PATH:/usr/local/cuda/bin"; fi
jobs=$(nproc)
step "configuring and building the sanitizer test build in build-test (~5-10 min on 2 cores)" \
     "read the compiler's message above; bash scripts/deps.sh --test installs the build dependencies"
cmake -S . -B build-test -DCMAKE_BUILD_TYPE=Debug -DPI0_SANITIZE=ON -DPI0_GOLDEN_DIR="$golden" >/dev/null
if ! cmake --build build-test -j"$jobs" >build-test/build.log 2>&1; then
  tail -n 30 build-test/build.log >&2
  die "the build failed (full log: build-test/build.log)" "$PI0_HINT"
fi
step "running the CTest tests, $jobs at a time (~10-25 min on 2 cores)" \
     "the failing tests' output is above; rerun one with: ctest --test-dir build-test -R NAME --output-on-failure"
ctest --test-dir build-test --output-on-failure -j"$jobs"
# Fuzz smoke run (issue 8): a clang libFuzzer build; each harness replays its regression inputs,
# then fuzzes for 20 s from the committed corpus (bash scripts/fuzz.sh N for longer campaigns).
if command -v clang >/dev/null; then
  step "fuzz smoke run: every harness 20 s (~5 min with the build)" \
       "the finding or the build error is above; bash scripts/fuzz.sh 20 HARNESS reruns one"
  bash scripts/fuzz.sh 20
else
  echo "SKIP: fuzz smoke run: clang is not installed (Debian packages clang, libclang-rt-14-dev, libomp-dev)"
fi
finish
