#!/usr/bin/env bash
# Installs the Debian 12 packages pi0.c needs (only those missing).
#   bash scripts/deps.sh          build + run: compiler, CMake, cJSON, stb, npm (tokenizer fetch)
#   bash scripts/deps.sh --test   also the test references: sentencepiece tools, PIL, skimage photos,
#                                 and clang (libFuzzer) for the fuzz smoke run
set -euo pipefail
pkgs=(build-essential cmake pkg-config libcjson-dev libstb-dev libdnnl-dev libmsgpack-dev libwebsockets-dev)
[ "${1:-}" = "--test" ] && pkgs+=(sentencepiece python3-pil python3-skimage python3-websockets python3-msgpack python3-numpy
                                  clang libomp-dev)
command -v npm >/dev/null || pkgs+=(nodejs npm)
missing=()
for p in "${pkgs[@]}"; do
  case $p in nodejs|npm) missing+=("$p") ;; *) dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p") ;; esac
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
