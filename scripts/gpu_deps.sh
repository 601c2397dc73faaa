#!/usr/bin/env bash
# gpu_deps.sh — run HERE (a Debian machine with apt), before working on a GPU machine that has
# the CUDA toolkit, CMake and a C compiler but no Debian packages: downloads the .deb files of
# what the core library needs beyond CUDA (cJSON, stb headers) into .deps/ (git-ignored), to be
# carried along and unpacked there by scripts/gpu_check.sh. oneDNN, libwebsockets and msgpack
# are optional and not needed on the GPU machine.
source "$(dirname "$0")/lib.sh"
cd "$(dirname "$0")/.."
mkdir -p .deps
step "downloading the .deb files of cJSON and stb into .deps/ (seconds)" \
     "check apt (apt-get update; the package names exist in Debian 12), then run this again"
(cd .deps && apt-get download libcjson-dev libcjson1 libstb-dev libstb0)
ls -la .deps/*.deb
