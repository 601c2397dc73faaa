#!/usr/bin/env bash
# test_readme_configs.sh PI0 TOKENIZER REPO TMP — every command of the README's block "openpi's
# configs on the demo model", as printed, in a directory laid out like the clone after
# `bash scripts/demo.sh` (build/pi0 = the pi0 under test, demo/scene.png, .tok/ with the
# tokenizer): gen-model --assets, then `pi0 infer --config X` for each config; each must print
# an action chunk with the robot's action dims.
set -u
PI0=$1 TOKENIZER=$2 REPO=$3 TMP=$4
rm -rf "$TMP" && mkdir -p "$TMP/build" "$TMP/demo" "$TMP/.tok"
ln -s "$PI0" "$TMP/build/pi0"
ln -s "$REPO/scripts" "$TMP/scripts"
cp "$TOKENIZER" "$TMP/.tok/${TOKENIZER##*/}"
"$PI0" gen-image --out "$TMP/demo/scene.png" || exit 1
fail=0
bad() { echo "FAIL: $*"; fail=1; }
mapfile -t cmds < <(awk '/^### openpi.s configs on the demo model/ {on = 1; next} on && /^#/ {exit}
                         on && /^    [^ ]/ {sub(/^    /, ""); print}' "$REPO/README.md")
echo "README: ${#cmds[@]} commands in the block"
[ ${#cmds[@]} -ge 8 ] || bad "expected the README's block of commands, found ${#cmds[@]}"
declare -A dims=([libero]=7 [droid]=8 [aloha]=14)
n_infer=0
# the setup lines (gen-model, the tokenizer export) once, as printed, then each infer in a fresh
# shell with the block's exports
setup=$(printf '%s\n' "${cmds[@]}" | grep -v ' infer ')
exports=$(grep '^export ' <<<"$setup")
t0=$(date +%s%N)
(cd "$TMP" && env -u PI0_TOKENIZER bash -ec "$setup") >"$TMP/setup.txt" 2>&1 || { cat "$TMP/setup.txt"; bad "the setup lines failed"; }
echo "setup lines: $((($(date +%s%N) - t0) / 1000000)) ms"
for c in "${cmds[@]}"; do
  case $c in
    *" infer "*"--config "*)
      cfg=$(sed -n 's/.*--config \([a-z0-9_]*\).*/\1/p' <<<"$c")
      fam=generic
      for f in libero droid aloha; do [[ $cfg == *$f* ]] && fam=$f; done
      n_infer=$((n_infer + 1))
      t0=$(date +%s%N)
      (cd "$TMP" && env -u PI0_TOKENIZER bash -ec "$exports"$'\n'"$c") >"$TMP/out_$cfg.txt" 2>"$TMP/err_$cfg.txt"
      rc=$?
      ms=$((($(date +%s%N) - t0) / 1000000))
      rows=$(grep -cE '^ +[0-9]+( +-?[0-9.]+)+ *$' "$TMP/out_$cfg.txt")
      cols=$(grep -E '^step ' "$TMP/out_$cfg.txt" | wc -w)
      if [ $rc -ne 0 ] || [ "$rows" -lt 10 ] || [ "$cols" -ne $((${dims[$fam]} + 1)) ]; then
        bad "$cfg: exit $rc, $rows action rows, $((cols - 1)) dims (want ${dims[$fam]}): $(grep -v '^pi0: \(note\|using\)' "$TMP/err_$cfg.txt" | tail -n 3)"
      else
        echo "ok: $cfg ($fam): $rows steps x ${dims[$fam]} dims, $ms ms"
      fi ;;
  esac
done
[ $n_infer -ge 7 ] || bad "only $n_infer pi0 infer --config commands in the block"
for f in libero droid aloha; do grep -q -- "--config pi0_$f" <<<"${cmds[*]}" || bad "no pi0_$f command"; done
for f in libero droid aloha; do grep -q -- "--config pi05_$f" <<<"${cmds[*]}" || bad "no pi05_$f command"; done
[ $fail = 0 ] && echo "PASS: readme_configs ($n_infer configs)"
exit $fail
