#!/usr/bin/env bash
# fresh_check.sh — the README's two commands, verbatim, on a freshly bootstrapped Debian 12.
# Run as root:   bash scripts/fresh_check.sh [--keep] [--setup-only]
#
#  1. debootstrap bookworm into a new directory (installs debootstrap on the host if missing);
#  2. copies in the host's apt configuration (sources, apt.conf.d, keyrings), CA certificates,
#     DNS and pip/npm configuration (/etc/pip.conf, ~/.config/pip, ~/.npmrc, PIP_* / npm_config_*
#     and proxy variables), so that package clients inside work as they do on the host;
#  3. mounts /proc, /sys, /dev, /dev/pts, /dev/shm (always unmounted on exit);
#  4. installs only git inside, clones the commit under test (HEAD of this repository: commit
#     first; uncommitted changes are not tested) from a git bundle;
#  5. runs the README's two commands (read from the cloned README.md: the indented
#     `bash scripts/demo.sh` and `bash scripts/test.sh` lines), checks that the demo printed an
#     action chunk, and prints each step's wall time.
# Any failure names the step and prints its last 30 lines (full logs under the work directory,
# kept on failure or with --keep). --setup-only stops after the clone (to check the setup).
#
# Caches (speed only; a run with an empty cache gives the same result), under
# PI0_FRESH_CACHE (default /var/cache/pi0-fresh): the debootstrapped root as a tarball, reused
# while the archive's InRelease is unchanged; debootstrap's .deb files (debs/), apt's
# downloaded packages inside the root (apt-archives/, bind-mounted; apt checks their hashes), and
# pip's cache (pip/, bind-mounted as the root's ~/.cache/pip). PI0_FRESH_DIR: where the root is made
# (default a new directory under /var/tmp). PI0_FRESH_MIRROR: the Debian mirror for debootstrap
# (default http://deb.debian.org/debian).
source "$(dirname "$0")/lib.sh"
keep=0 setup_only=0
for a in "$@"; do
  case $a in --keep) keep=1 ;; --setup-only) setup_only=1 ;;
    *) die "unknown option $a" "usage: bash scripts/fresh_check.sh [--keep] [--setup-only]" ;; esac
done
[ "$(id -u)" -eq 0 ] || die "must run as root (debootstrap, chroot, mounts)" "sudo bash scripts/fresh_check.sh"
repo=$(cd "$(dirname "$0")/.." && pwd)
commit=$(git -C "$repo" rev-parse HEAD)
if [ -n "$(git -C "$repo" status --porcelain --untracked-files=no)" ]; then
  echo "fresh_check: WARNING: uncommitted changes in $repo are NOT tested (testing commit $commit)" >&2
fi
cache=${PI0_FRESH_CACHE:-/var/cache/pi0-fresh}
mirror=${PI0_FRESH_MIRROR:-http://deb.debian.org/debian}
mkdir -p "$cache/debs" "$cache/apt-archives/partial"
work=${PI0_FRESH_DIR:-$(mktemp -d /var/tmp/pi0-fresh.XXXXXX)}
mkdir -p "$work/logs"
root=$work/root
logs=$work/logs
mounts=()
ok=0
cleanup() {
  local i
  for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do
    umount "${mounts[i]}" 2>/dev/null || umount -l "${mounts[i]}" 2>/dev/null ||
      echo "fresh_check: could not unmount ${mounts[i]}" >&2
  done
  if [ $ok = 1 ] && [ $keep = 0 ]; then
    rm -rf --one-file-system "$work"
  else
    echo "fresh_check: the root and the logs are kept in $work (rm -rf --one-file-system $work)" >&2
  fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
mnt() {  # mnt TARGET mount-args...: mounts and remembers it for cleanup
  local target=$1
  shift
  mkdir -p "$target"
  mount "$@" "$target"
  mounts+=("$target")
}

times=()
# run_step NAME COMMAND...: runs it with its output shown and kept in $logs/NAME.log; on failure
# names the step and prints its last 30 lines.
run_step() {
  local name=$1 t0=$SECONDS rc=0
  shift
  step "$name"
  "$@" 2>&1 | tee "$logs/$name.log" || rc=$?
  times+=("$(printf '%-28s %6d s' "$name" $((SECONDS - t0)))")
  if [ $rc -ne 0 ]; then
    echo "" >&2
    echo "fresh_check: FAILED at step '$name' (exit $rc) after $((SECONDS - t0)) s; its last 30 lines:" >&2
    tail -n 30 "$logs/$name.log" | sed 's/^/  | /' >&2
    exit "$rc"
  fi
}
# in_root COMMAND: a login-like root shell in the new system, with the host's package-client
# settings passed through (and nothing else from the host's environment).
pass_env=(HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8
          TERM=dumb DEBIAN_FRONTEND=noninteractive "CI=${CI:-}")
while IFS='=' read -r k v; do
  case $k in PIP_*|npm_config_*|NPM_CONFIG_*|http_proxy|https_proxy|no_proxy|HTTP_PROXY|HTTPS_PROXY|NO_PROXY)
    pass_env+=("$k=$v") ;; esac
done < <(env)
in_root() { chroot "$root" /usr/bin/env -i "${pass_env[@]}" bash -c "$1"; }

# ---------------------------------------------------------------- 1. the root
if ! command -v debootstrap >/dev/null; then
  run_step host-debootstrap bash -c "apt-get update -q && apt-get install -y -q --no-install-recommends debootstrap"
fi
# A finished debootstrap is kept as a tarball named after the archive's InRelease file: unpacked
# again only while the archive is unchanged (the same packages a new debootstrap would install).
key=$(curl -fsS --connect-timeout 10 "$mirror/dists/bookworm/InRelease" 2>/dev/null | sha256sum | cut -c1-16 || true)
[ "$key" != "$(printf '' | sha256sum | cut -c1-16)" ] || key=""
tarball=$cache/bookworm-root-$key.tar
if [ -n "$key" ] && [ -f "$tarball" ]; then
  mkdir -p "$root"
  run_step debootstrap-cached tar -xpf "$tarball" -C "$root"
else
  run_step debootstrap debootstrap --cache-dir="$cache/debs" bookworm "$root" "$mirror"
  if [ -n "$key" ]; then
    rm -f "$cache"/bookworm-root-*.tar
    tar -cpf "$tarball.tmp" -C "$root" . && mv "$tarball.tmp" "$tarball" || rm -f "$tarball.tmp"
  fi
fi

# ---------------------------------------------------------------- 2. host configuration
configure() {
  rm -f "$root"/etc/apt/sources.list "$root"/etc/apt/sources.list.d/*
  cp -a /etc/apt/sources.list* "$root/etc/apt/" 2>/dev/null || true
  # apt.conf.d: the host's settings (here e.g. Check-Valid-Until false for a snapshot mirror),
  # except docker's clean hook, which would empty the bind-mounted download cache.
  for f in /etc/apt/apt.conf.d/*; do
    case $(basename "$f") in docker-clean) ;; *) cp -a "$f" "$root/etc/apt/apt.conf.d/" ;; esac
  done
  cp -a /etc/apt/trusted.gpg.d/. "$root/etc/apt/trusted.gpg.d/" 2>/dev/null || true
  [ -f /etc/apt/trusted.gpg ] && cp -a /etc/apt/trusted.gpg "$root/etc/apt/" || true
  mkdir -p "$root/usr/share/keyrings" "$root/etc/apt/keyrings"
  cp -an /usr/share/keyrings/. "$root/usr/share/keyrings/" 2>/dev/null || true
  [ -d /etc/apt/keyrings ] && cp -a /etc/apt/keyrings/. "$root/etc/apt/keyrings/" || true
  # CA certificates: the local ones (kept when ca-certificates is installed inside) and the bundle.
  mkdir -p "$root/usr/local/share/ca-certificates" "$root/etc/ssl/certs"
  cp -a /usr/local/share/ca-certificates/. "$root/usr/local/share/ca-certificates/" 2>/dev/null || true
  [ -f /etc/ssl/certs/ca-certificates.crt ] && cp -L /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/" || true
  cp -L /etc/resolv.conf "$root/etc/resolv.conf"
  cp /etc/hosts "$root/etc/hosts"
  # pip and npm configuration
  [ -f /etc/pip.conf ] && cp /etc/pip.conf "$root/etc/pip.conf" || true
  mkdir -p "$root/root/.config"
  [ -d "$HOME/.config/pip" ] && cp -a "$HOME/.config/pip" "$root/root/.config/" || true
  [ -d "$HOME/.pip" ] && cp -a "$HOME/.pip" "$root/root/" || true
  [ -f "$HOME/.npmrc" ] && cp "$HOME/.npmrc" "$root/root/.npmrc" || true
  [ -f /etc/npmrc ] && cp /etc/npmrc "$root/etc/npmrc" || true
  echo "fresh_check: copied apt sources ($(ls /etc/apt/sources.list* /etc/apt/sources.list.d/ 2>/dev/null | grep -cE '\.(list|sources)$') files), apt.conf.d, keyrings, CA certificates, resolv.conf, pip/npm configuration"
}
export root
run_step configure bash -ec "$(declare -f configure); configure"

# ---------------------------------------------------------------- 3. mounts
mnt "$root/proc" -t proc proc
mnt "$root/sys" --bind /sys
mnt "$root/dev" --bind /dev
mnt "$root/dev/pts" --bind /dev/pts
mnt "$root/dev/shm" -t tmpfs -o mode=1777 shm
mnt "$root/var/cache/apt/archives" --bind "$cache/apt-archives"
# pip's download and wheel cache, kept between runs (the PyPI-based tests' packages)
mkdir -p "$cache/pip"
mnt "$root/root/.cache/pip" --bind "$cache/pip"
# pip's find-links directories (PIP_FIND_LINKS), read-only at the same paths
for d in ${PIP_FIND_LINKS:-}; do
  if [ -d "$d" ]; then mnt "$root$d" --bind "$d"; mount -o remount,ro,bind "$root$d" || true; fi
done

# ---------------------------------------------------------------- 4. git and the clone
run_step install-git in_root "apt-get update -q && apt-get install -y -q --no-install-recommends git"
git -C "$repo" bundle create "$root/root/pi0.c.bundle" HEAD 2>"$logs/bundle.log" ||
  { cat "$logs/bundle.log" >&2; die "git bundle create failed in $repo"; }
run_step clone in_root "git clone -q /root/pi0.c.bundle /root/pi0.c && cd /root/pi0.c &&
  git checkout -q $commit && git log -1 --format='cloned %h: %s'"

if [ $setup_only = 1 ]; then
  finish
  ok=1
  echo "fresh_check: setup done (--setup-only); wall time per step:"
  printf '  %s\n' "${times[@]}"
  exit 0
fi

# ---------------------------------------------------------------- 5. the README's commands
mapfile -t cmds < <(grep -E '^    bash scripts/(demo|test)\.sh' "$root/root/pi0.c/README.md" | sed 's/^    //')
[ ${#cmds[@]} -eq 2 ] || die "expected the README's two commands (bash scripts/demo.sh, bash scripts/test.sh), found ${#cmds[@]}" \
  "README.md must keep them as indented lines"
echo "fresh_check: the README's commands: ${cmds[0]%%#*} / ${cmds[1]%%#*}" >&2
run_step readme-demo in_root "cd /root/pi0.c && ${cmds[0]}"
if ! grep -qE '^step +a0 ' "$logs/readme-demo.log" || [ "$(grep -cE '^ +[0-9]+( +-?[0-9.]+){3,} *$' "$logs/readme-demo.log")" -lt 10 ]; then
  tail -n 30 "$logs/readme-demo.log" | sed 's/^/  | /' >&2
  die "the demo printed no action chunk (a 'step a0 ...' table)" "see $logs/readme-demo.log"
fi
run_step readme-test in_root "cd /root/pi0.c && ${cmds[1]}"
finish

ok=1
echo ""
echo "fresh_check: PASSED on a fresh Debian 12 root (commit $(git -C "$repo" rev-parse --short HEAD)); wall time per step:"
printf '  %s\n' "${times[@]}"
echo "  total                        $SECONDS s"
