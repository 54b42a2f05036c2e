#!/usr/bin/env bash
# Runs `charter bench` RUNS times against a fresh `charter dev` each time and
# prints the median TPS and latencies. Usage:
#   scripts/bench-dev.sh [KIND=transfer] [TXS=30000] [SENDERS=200] [RUNS=5]
# DEV_FLAGS adds flags to `charter dev` (DEV_FLAGS=--index=false: no SQL index,
# the setting of rows measured before 2026-12-05).
set -euo pipefail
kind=${1:-transfer}; txs=${2:-30000}; senders=${3:-200}; runs=${4:-5}
cd "$(dirname "$0")/.."
bin=$(mktemp -d)/charter
go build -o "$bin" ./cmd/charter
port=28645
out=$(mktemp -d)
for i in $(seq "$runs"); do
  # shellcheck disable=SC2086
  "$bin" dev --http.port "$port" ${DEV_FLAGS:-} >/dev/null 2>&1 &
  pid=$!
  for _ in $(seq 100); do
    curl -s -o /dev/null -XPOST -H 'content-type: application/json' \
      -d '{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}' "127.0.0.1:$port" && break
    sleep 0.1
  done
  "$bin" bench --rpc "http://127.0.0.1:$port" ${BATCH:+--batch $BATCH} --kind "$kind" --txs "$txs" --senders "$senders" --json "$out/$i.json" 2>/dev/null | tail -1
  kill -INT "$pid"; wait "$pid" || true
done
python3 - "$out" <<'PY'
import json, statistics, sys, glob
rs = [json.load(open(f)) for f in sorted(glob.glob(sys.argv[1] + "/*.json"))]
med = lambda k: statistics.median(r[k] for r in rs)
lat = lambda k: statistics.median(r["latency_ms"][k] for r in rs)
print(f"median of {len(rs)}: {med('tps'):.0f} tx/s, p50 {lat('p50'):.0f} ms, p95 {lat('p95'):.0f} ms, p99 {lat('p99'):.0f} ms, max {lat('max'):.0f} ms; all tps: {[round(r['tps']) for r in rs]}")
PY
