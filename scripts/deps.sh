#!/usr/bin/env bash
# Installs the Debian 12 packages pi0.c needs (only those missing).
#   bash scripts/deps.sh          build + run: compiler, CMake, cJSON, stb, oneDNN, npm (tokenizer
#                                 fetch); libwebsockets + msgpack-c for `pi0 serve` (optional to
#                                 the build: without them it builds without serve)
#   bash scripts/deps.sh --test   also the test references: sentencepiece tools, PIL, skimage photos,
#                                 python3-venv (scripts/pyvenv.sh: the PyPI packages of some tests),
#                                 and clang (libFuzzer) for the fuzz smoke run
set -euo pipefail
pkgs=(build-essential cmake pkg-config libcjson-dev libstb-dev libdnnl-dev libmsgpack-dev libwebsockets-dev)
[ "${1:-}" = "--test" ] && pkgs+=(sentencepiece python3-pil python3-skimage python3-websockets python3-msgpack python3-numpy
                                  python3-venv python3-matplotlib
                                  clang libomp-dev)
command -v npm >/dev/null || pkgs+=(nodejs npm)
missing=()
for p in "${pkgs[@]}"; do
  case $p in nodejs|npm) missing+=("$p") ;; *) dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p") ;; esac
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  # Another apt/dpkg (unattended-upgrades, a second install) may hold the lock: wait up to 10 min.
  # DPkg::Lock::Timeout covers dpkg's lock; `update` takes the lists lock, which it does not
  # wait for, so that one is retried.
  lock=(-o DPkg::Lock::Timeout=600)
  for try in $(seq 1 60); do
    out=$($SUDO apt-get "${lock[@]}" update -qq 2>&1) && break
    if ! grep -qi "lock" <<<"$out" || [ "$try" -eq 60 ]; then echo "$out" >&2; exit 1; fi
    [ "$try" -eq 1 ] && echo "deps: another apt holds the package lists lock; waiting (up to 10 min)" >&2
    sleep 10
  done
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get "${lock[@]}" install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
