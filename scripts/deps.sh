#!/usr/bin/env bash
# Installs the Debian 12 packages pi0.c needs (only those missing).
#   bash scripts/deps.sh          build + run: compiler, CMake, cJSON, stb, oneDNN, curl (tokenizer
#                                 download); libzstd for openpi's Orbax checkpoints (optional);
#                                 libwebsockets + msgpack-c for `pi0 serve` (optional to
#                                 the build: without them it builds without serve)
#   bash scripts/deps.sh --test   also what the tests link against and run: sentencepiece tools,
#                                 Python (PIL, skimage photos, websockets, msgpack, venv), Node.js +
#                                 npm (the JavaScript tokenizer reference), clang with its runtime
#                                 libraries (libFuzzer, sanitizers) for the fuzz smoke run
#   bash scripts/deps.sh --npm    only Node.js + npm (scripts/fetch_tokenizer.sh's second route)
source "$(dirname "$0")/lib.sh"
base=(build-essential cmake pkg-config ca-certificates curl libcjson-dev libstb-dev libdnnl-dev libmsgpack-dev
      libwebsockets-dev libzstd-dev)
# clang on bookworm is clang-14; its libFuzzer and sanitizer runtimes are in libclang-rt-14-dev,
# a recommendation only (not pulled in with --no-install-recommends).
testing=(sentencepiece python3 python3-venv python3-pil python3-skimage python3-websockets python3-msgpack
         python3-numpy python3-matplotlib clang libclang-rt-14-dev libomp-dev nodejs npm)
case ${1:-} in
  "") pkgs=("${base[@]}") ;;
  --test) pkgs=("${base[@]}" "${testing[@]}") ;;
  --npm) pkgs=(nodejs npm) ;;
  *) die "unknown option ${1}" "usage: bash scripts/deps.sh [--test | --npm]" ;;
esac
missing=()
for p in "${pkgs[@]}"; do
  if [ "$p" = npm ] && command -v npm >/dev/null; then continue; fi  # e.g. NodeSource's nodejs bundles npm
  if [ "$p" = nodejs ] && command -v node >/dev/null; then continue; fi
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
[ ${#missing[@]} -gt 0 ] || exit 0
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || die "not root and no sudo" "as root: apt-get install ${missing[*]}"
  SUDO=sudo
fi
export DEBIAN_FRONTEND=noninteractive
# Another apt/dpkg (unattended-upgrades, a second install) may hold the lock: wait up to 10 min.
# DPkg::Lock::Timeout covers dpkg's lock; `update` takes the lists lock, which it does not
# wait for, so that one is retried.
lock=(-o DPkg::Lock::Timeout=600)
step "apt-get update (package lists; ~10-60 s)" \
     "check the machine's apt sources and network (apt-get update shows the failing source)"
for try in $(seq 1 60); do
  out=$($SUDO apt-get "${lock[@]}" update -q 2>&1) && break
  if ! grep -qi "lock" <<<"$out" || [ "$try" -eq 60 ]; then echo "$out" | tail -n 20 >&2; die "apt-get update failed" "$PI0_HINT"; fi
  [ "$try" -eq 1 ] && echo "deps: another apt holds the package lists lock; waiting (up to 10 min)" >&2
  sleep 10
done
# The full count (with dependencies) from a dry run, for an honest estimate.
n=$($SUDO apt-get "${lock[@]}" install -s --no-install-recommends "${missing[@]}" 2>/dev/null | grep -c '^Inst ' || true)
step "installing ${#missing[@]} Debian packages (${missing[*]}) and their dependencies: $n packages in all (roughly $((n / 60 + 2)) min)" \
     "see the apt output above; fix the apt problem, then run this again"
log=$(mktemp /tmp/pi0-deps.XXXXXX.log)
# apt's own lines go to $log; every 25th download / set-up is echoed, and the log's tail on failure.
if ! $SUDO apt-get "${lock[@]}" install -y -q --no-install-recommends "${missing[@]}" 2>&1 | tee "$log" |
     awk -v n="$n" '/^Get:/ { g++; if (g % 25 == 0 || g == n) printf "deps: downloaded %d of %d\n", g, n; fflush() }
                    /^Setting up / { s++; if (s % 25 == 0 || s == n) printf "deps: set up %d of %d\n", s, n; fflush() }' >&2; then
  tail -n 30 "$log" >&2
  die "apt-get install failed (full log: $log)" "$PI0_HINT"
fi
rm -f "$log"
finish
