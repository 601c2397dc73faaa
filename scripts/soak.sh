#!/usr/bin/env bash
# The full soak test of `pi0 serve` (issue 8): 16 concurrent clients for SECONDS (default 120),
# a quarter of the frames mutated or truncated, disconnects mid-request, against the
# AddressSanitizer + UBSan build (build-test, as scripts/test.sh builds it); checks every valid
# answer, the server alive, RSS at the end within 20 % of RSS after warm-up, LeakSanitizer clean.
# CI runs a 45 s version (CTest test serve_soak).
#   bash scripts/soak.sh [SECONDS]
source "$(dirname "$0")/lib.sh"
cd "$(dirname "$0")/.."
secs=${1:-120}
golden=${PI0_GOLDEN_DIR:-$PWD/tests/golden}
bash scripts/fetch_tokenizer.sh --with-js >/dev/null
step "building pi0 with the sanitizers in build-test (~1-5 min)" \
     "read the compiler's message above; bash scripts/deps.sh --test installs the build dependencies"
cmake -S . -B build-test -DCMAKE_BUILD_TYPE=Debug -DPI0_SANITIZE=ON -DPI0_GOLDEN_DIR="$golden" >/dev/null
cmake --build build-test -j"$(nproc)" --target pi0 >/dev/null
finish
exec bash tests/test_soak.sh build-test/pi0 .tok build-test/tests/tmp_soak_full "$secs"
