#!/usr/bin/env bash
# Every test the project has, from a clean clone. Installs what it needs
# (npm packages for the real-client acceptance tests, Debian's postgresql
# for the tests of the SQL index, Debian's prometheus for promtool) by itself.
#   ./test.sh            the whole suite (what CI runs)
#   CHARTER_SOAK=1 ./test.sh   long simulation seeds and crash loops too
set -euo pipefail
cd "$(dirname "$0")"

# PostgreSQL: tests start throwaway clusters of their own (internal/pgtest);
# under CI they fail, rather than skip, without it.
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && [ -z "${CHARTER_PG_BIN:-}" ]; then
  echo "== installing Debian's postgresql (for the SQL index tests)"
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get install -y -q postgresql >/dev/null || { $sudo apt-get update -q >/dev/null && $sudo apt-get install -y -q postgresql >/dev/null; }
fi

# promtool (Debian's prometheus): deploy/deploy_test.go checks and unit-tests
# the alert rules of docs/alerts.yml with it; under CI it fails without it.
if ! command -v promtool >/dev/null 2>&1; then
  echo "== installing Debian's prometheus (promtool, for the alert rule tests)"
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get install -y -q --no-install-recommends prometheus >/dev/null || { $sudo apt-get update -q >/dev/null && $sudo apt-get install -y -q --no-install-recommends prometheus >/dev/null; }
fi

# chromium (Debian's): test/js/test/console.test.js drives it with the pinned
# playwright-core to test the web console; under CI it fails without it.
if [ ! -x /usr/bin/chromium ] && [ -z "${CHARTER_CHROMIUM:-}" ]; then
  echo "== installing Debian's chromium (for the web console's browser test)"
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get install -y -q chromium >/dev/null || { $sudo apt-get update -q >/dev/null && $sudo apt-get install -y -q chromium >/dev/null; }
fi

echo "== go vet"
go vet ./...

echo "== gofmt"
unformatted=$(gofmt -l cmd internal test deploy)
if [ -n "$unformatted" ]; then
  echo "gofmt would change:"; echo "$unformatted"; exit 1
fi

# Simulation seed ranges start at a fresh random seed each run (internal/consensus/simnet/seeds.go).
: "${CHARTER_SEED_START:=$(( (RANDOM << 30 | RANDOM << 15 | RANDOM) % 1000000000000 + 1 ))}"
export CHARTER_SEED_START
echo "== simulation seeds start at $CHARTER_SEED_START (CHARTER_SEED_START=$CHARTER_SEED_START repeats them; a failing seed prints CHARTER_SEED=n)"

echo "== go test"
go test -count=1 -timeout 20m ./...

echo "== go test -race (concurrent packages)"
go test -count=1 -race -timeout 20m ./internal/txpool/... ./internal/rpc/... ./internal/node/... ./internal/p2p/... ./internal/consensus/solo/... ./internal/auth/... ./internal/gateway/... ./internal/keystore/... ./internal/index/... ./internal/streams/... ./internal/sinks/... ./internal/ledger/... ./internal/snapshot/...

echo "== real-client acceptance (ethers, web3.js, viem, solc) and the web console in chromium"
bash test/js/run.sh

echo "== all tests passed"
