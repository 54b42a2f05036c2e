#!/usr/bin/env bash
# Real-client acceptance test: ethers v6, web3.js v4, viem and web3js-quorum (over web3 1.x)
# against `charter dev` (and, for privacy.test.js, a 2-organization `charter testnet`);
# console.test.js drives Debian's chromium (/usr/bin/chromium, which test.sh installs) with the
# pinned playwright-core against a 4-organization testnet, screenshots in output/console/.
#
# Idempotent: installs the pinned packages with `npm ci` only when node_modules is
# missing or package-lock.json / package.json / .npmrc changed since the last install
# (a stamp in node_modules records their hash). Needs no network but the npm registry,
# and that only for the install. Builds charter once unless CHARTER_BIN is set.
#
#   test/js/run.sh                      # everything
#   test/js/run.sh test/ws.test.js      # some files (paths relative to test/js)
#   CHARTER_BIN=/path/to/charter test/js/run.sh
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cd "$here"

for tool in node npm go; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    if [ "$tool" != go ] || [ -z "${CHARTER_BIN:-}" ]; then
      echo "test/js/run.sh: $tool is not installed; install it (Node.js >= 20 with npm, Go for building charter)" >&2
      exit 1
    fi
  fi
done
node_major="$(node -p 'process.versions.node.split(".")[0]')"
if [ "$node_major" -lt 20 ]; then
  echo "test/js/run.sh: Node.js $(node --version) is too old; install Node.js 20 or newer" >&2
  exit 1
fi

stamp="node_modules/.charter-install-stamp"
want="$(cat package.json package-lock.json .npmrc | sha256sum | cut -d' ' -f1)"
if [ ! -d node_modules ] || [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "test/js: npm ci (pinned packages from package-lock.json)"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$want" >"$stamp"
fi

tmp="$(mktemp -d "${TMPDIR:-/tmp}/charter-js.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
if [ -z "${CHARTER_BIN:-}" ]; then
  echo "test/js: go build ./cmd/charter"
  (cd "$repo" && go build -o "$tmp/charter" ./cmd/charter)
  export CHARTER_BIN="$tmp/charter"
fi

if [ "$#" -gt 0 ]; then
  files=("$@")
else
  files=(test/*.test.js)
fi
# Each file starts its own charter dev node; run a few at a time.
node --test --test-reporter=spec --test-concurrency="${CHARTER_JS_CONCURRENCY:-3}" "${files[@]}"
