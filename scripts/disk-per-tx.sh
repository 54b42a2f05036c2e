#!/usr/bin/env bash
# Measures the disk growth of one `charter dev` node per transaction: a
# warm-up load (the senders, recipients and token exist afterwards), then
# ROUNDS loads of TXS transactions, the size of the data directory taken
# after each. Usage:
#   scripts/disk-per-tx.sh [KIND=transfer] [TXS=50000] [ROUNDS=3]
# DEV_FLAGS adds flags to `charter dev` (DEV_FLAGS='--state.history all': an
# archive node, every height's state kept).
set -euo pipefail
kind=${1:-transfer}; txs=${2:-50000}; rounds=${3:-3}
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'kill -INT "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$tmp"' EXIT
bin=$tmp/charter
go build -o "$bin" ./cmd/charter
port=28745
# shellcheck disable=SC2086
"$bin" dev --http.port "$port" --datadir "$tmp/data" --index=false ${DEV_FLAGS:-} >"$tmp/dev.log" 2>&1 &
pid=$!
for _ in $(seq 100); do
  curl -s -o /dev/null -XPOST -H 'content-type: application/json' \
    -d '{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}' "127.0.0.1:$port" && break
  sleep 0.1
done
load() { "$bin" bench --rpc "http://127.0.0.1:$port" --kind "$kind" --txs "$1" --senders 200 2>/dev/null | tail -1; }
size() { du -sb "$tmp/data" | cut -f1; }
load 10000 >/dev/null
before=$(size)
echo "after warm-up: $before bytes"
for r in $(seq "$rounds"); do
  load "$txs" >/dev/null
  now=$(size)
  echo "round $r: $now bytes, $(( (now - before) / (r * txs) )) bytes per $kind since the warm-up"
done
