#!/usr/bin/env bash
# Compares `charter dev` with `geth --dev` on this machine: builds geth at the
# go-ethereum version of go.mod into a throwaway folder outside the repository
# (nothing of geth is committed or kept), starts both on free loopback ports,
# and runs `charter bench --compare` for each kind: alternating runs, each
# printed, then the medians and the ratios charter/geth.
#
# Usage: scripts/bench-vs-geth.sh
#   RATE=1000 DURATION=20s RUNS=3 SENDERS=100 KINDS="transfer erc20" BATCH=100
#   GETH=/path/to/geth   reuse a geth binary instead of building one
#   OUT=DIR              write the JSON, HTML and progress lines of each kind there (default: a new temporary folder, printed)
set -euo pipefail
rate=${RATE:-1000}; duration=${DURATION:-20s}; runs=${RUNS:-3}; senders=${SENDERS:-100}
kinds=${KINDS:-transfer erc20}; batch=${BATCH:-100}
cd "$(dirname "$0")/.."
work=$(mktemp -d)
out=${OUT:-$(mktemp -d)}
mkdir -p "$out"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -INT "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  # geth's binary and both chains go; Go's build cache keeps geth's objects.
  rm -rf "$work"
}
trap cleanup EXIT

version=$(go list -m -f '{{.Version}}' github.com/ethereum/go-ethereum)
geth=${GETH:-}
if [ -z "$geth" ]; then
  echo "building geth $version into $work/bin (outside the repository)" >&2
  # Outside any module: `go install pkg@version` resolves geth's own go.mod.
  (cd "$work" && GOFLAGS= GOBIN="$work/bin" go install "github.com/ethereum/go-ethereum/cmd/geth@$version")
  geth=$work/bin/geth
fi
go build -o "$work/charter" ./cmd/charter

freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
gport=$(freeport); gauth=$(freeport); cport=$(freeport)

"$geth" --dev --datadir "$work/geth" --http --http.addr 127.0.0.1 --http.port "$gport" --http.api eth,net,web3 \
  --authrpc.addr 127.0.0.1 --authrpc.port "$gauth" --port 0 --ipcdisable --nodiscover >"$work/geth.log" 2>&1 &
pids+=($!)
"$work/charter" dev --http.port "$cport" --datadir "$work/charter-data" >"$work/charter.log" 2>&1 &
pids+=($!)

ready() { # PORT LOG
  for _ in $(seq 600); do
    curl -s -o /dev/null -XPOST -H 'content-type: application/json' \
      -d '{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}' "127.0.0.1:$1" && return 0
    sleep 0.1
  done
  echo "no JSON-RPC on 127.0.0.1:$1 after 60 s; the end of its log:" >&2
  tail -n 20 "$2" >&2
  return 1
}
ready "$gport" "$work/geth.log"; ready "$cport" "$work/charter.log"
echo "geth $version --dev on 127.0.0.1:$gport, charter dev on 127.0.0.1:$cport; rate $rate/s for $duration, $runs runs each, $senders senders" >&2
echo "commit $(git rev-parse --short HEAD), $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores" >&2

for kind in $kinds; do
  echo "== $kind"
  "$work/charter" bench --rpc "http://127.0.0.1:$cport" --compare "http://127.0.0.1:$gport" --kind "$kind" \
    --rate "$rate" --duration "$duration" --senders "$senders" --batch "$batch" --runs "$runs" \
    --json "$out/$kind.json" --html "$out/$kind.html" 2>"$out/$kind.progress"
done
echo "results in $out" >&2
