package node

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"

	"github.com/charter-ledger/charter/internal/chain"
	"github.com/charter-ledger/charter/internal/consensus"
)

// TestObserverPrunesBodies: a bft observer started with a body retention
// of 16 blocks deletes the bodies, receipts and transaction index entries
// of older blocks from its store (read from the pebble files themselves)
// and keeps the recent ones; its headers and certificates stay; JSON-RPC
// answers a pruned block or its receipts with an error naming the
// retention; it serves peers no pruned block and offers no snapshot it
// cannot back with the blocks after it; its store is smaller than a
// validator's; and it keeps following the network, also after a restart.
// A validator is refused the retention.
func TestObserverPrunesBodies(t *testing.T) {
	testObserverPrunesBodies(t, "bft", json.RawMessage(`{"blockTime":"50ms"}`))
}

// TestObserverPrunesBodiesPoA is the same on poa, whose ledger holds
// final blocks only (confirmations below the head).
func TestObserverPrunesBodiesPoA(t *testing.T) {
	testObserverPrunesBodies(t, "poa", json.RawMessage(`{"period":"100ms","turnTimeout":"1s","confirmations":1}`))
}

func testObserverPrunesBodies(t *testing.T, engine string, params json.RawMessage) {
	const keep = MinHistoryBodies
	defer func(v int) { pruneCompactBytes = v }(pruneCompactBytes)
	pruneCompactBytes = 1 // compact after every batch: the disk check below
	dir := t.TempDir()
	_, inits, err := InitNetwork(InitOptions{Dir: dir, Validators: 4, Observers: 1, Engine: engine, DevAccounts: true, BlockTimeMs: 200,
		RPCPort: freePortBase(t, 5), P2PPort: freePortBase(t, 5), MetricsPort: freePortBase(t, 5),
		ConsensusParams: params})
	if err != nil {
		t.Fatal(err)
	}
	var nodes []*netNode
	for _, in := range inits[:4] {
		nodes = append(nodes, startHomeNode(t, in.Home, in.Name, nil))
	}
	observe := func(c *Config) {
		c.HistoryBodies = keep
		c.Snapshots = SnapshotConfig{Every: 32, Keep: 1}
	}
	obs := startHomeNode(t, inits[4].Home, inits[4].Name, observe)
	if obs.Role() != RoleObserver {
		t.Fatalf("node %s is a %s", inits[4].Name, obs.Role())
	}

	// Transfers in a few early blocks.
	accts, _ := chain.DevAccounts(1)
	var txs []common.Hash
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for round := 0; round < 3; round++ {
		sendTransfers(t, nodes[0], accts[0].Key, 150)
	}
	last := nodes[0].Ledger().Head().Number.Uint64()
	for n := uint64(1); n <= last; n++ {
		for _, tx := range nodes[0].Ledger().BlockByNumber(n).Transactions() {
			txs = append(txs, tx.Hash())
		}
	}
	if len(txs) != 450 {
		t.Fatalf("%d transactions in blocks 1..%d, want 450", len(txs), last)
	}
	waitUntil(t, 90*time.Second, "the observer prunes the bodies of the blocks with the transfers", func() bool {
		return obs.Ledger().BodiesFrom() > last
	})
	head := obs.Ledger().Head().Number.Uint64()
	floor := obs.Ledger().BodiesFrom()
	if floor+keep+pruneBatchHeights < head || floor > head-keep {
		t.Fatalf("bodies kept from %d at head %d with a retention of %d", floor, head, keep)
	}

	// Headers, seals and recent blocks stay; pruned ones are an error
	// naming the retention over JSON-RPC.
	l := obs.Ledger()
	for n := uint64(1); n < floor; n++ {
		want := nodes[0].Ledger().HeaderByNumber(n).Hash()
		if h := l.HeaderByNumber(n); h == nil || h.Hash() != want || l.HeaderByHash(want) == nil || len(l.Seal(n)) == 0 {
			t.Fatalf("header or certificate of pruned block %d missing (%v)", n, h)
		}
		if l.BlockByNumber(n) != nil {
			t.Fatalf("block %d below the retention still read", n)
		}
	}
	pruned := last / 2
	for _, call := range []func() error{
		func() error { _, err := obs.client.BlockByNumber(ctx, new(big.Int).SetUint64(pruned)); return err },
		func() error {
			_, err := obs.client.BlockByHash(ctx, nodes[0].Ledger().HeaderByNumber(pruned).Hash())
			return err
		},
		func() error {
			var out []any
			return obs.client.Client().CallContext(ctx, &out, "eth_getBlockReceipts", hexNum(pruned))
		},
	} {
		err := call()
		if err == nil || !strings.Contains(err.Error(), "keeps those of the last 16 blocks (--history.bodies)") {
			t.Fatalf("a pruned block over JSON-RPC: %v, want the retention named", err)
		}
	}
	if _, err := obs.client.TransactionReceipt(ctx, txs[0]); !errors.Is(err, ethereum.NotFound) {
		t.Fatalf("receipt of a pruned transaction: %v, want none (its index entry is deleted)", err)
	}
	recent := head - 2
	if b, err := obs.client.BlockByNumber(ctx, new(big.Int).SetUint64(recent)); err != nil || b.Hash() != nodes[0].Ledger().HeaderByNumber(recent).Hash() {
		t.Fatalf("recent block %d on the observer: %v", recent, err)
	}
	if _, err := obs.Ledger().Receipts(recent); err != nil {
		t.Fatalf("receipts of recent block %d: %v", recent, err)
	}

	// Peers catching up get no pruned block from it (a validator serves them).
	req := consensus.ServeRequest{From: 1, Count: 10}
	if got := consensus.ServeFrom(obs.Chain(), req); len(got) != 0 {
		t.Fatalf("the observer serves %d pruned blocks to a peer", len(got))
	}
	if got := consensus.ServeFrom(nodes[1].Chain(), req); len(got) != 10 {
		t.Fatalf("a validator serves %d blocks of 10", len(got))
	}

	// No snapshot offered that it cannot back.
	waitUntil(t, 60*time.Second, "a snapshot older than the kept bodies", func() bool {
		s := obs.LatestSnapshot()
		return s > 0 && s+1 < obs.Ledger().BodiesFrom()
	})
	obs.snaps.mu.Lock()
	offered := obs.snaps.offeredLocked()
	obs.snaps.mu.Unlock()
	if offered != nil {
		t.Fatalf("the observer offers the snapshot of %d with bodies kept from %d", offered.height, obs.Ledger().BodiesFrom())
	}

	// Smaller on disk than a validator's store, both compacted.
	if err := nodes[0].Ledger().CompactBodies(head); err != nil {
		t.Fatal(err)
	}
	if err := l.CompactBodies(l.BodiesFrom()); err != nil {
		t.Fatal(err)
	}
	valSize, _ := nodes[0].Ledger().BodiesDiskUsage(last + 1)
	obsSize, _ := l.BodiesDiskUsage(last + 1)
	valAll, _ := nodes[0].Ledger().DiskSize()
	obsAll, _ := l.DiskSize()
	t.Logf("store tables holding blocks 1..%d: validator %d bytes, observer %d bytes (whole stores %d and %d bytes)", last, valSize, obsSize, valAll, obsAll)
	if obsSize*4 >= valSize {
		t.Fatalf("the observer's tables of the pruned blocks hold %d bytes, a validator's %d", obsSize, valSize)
	}

	// The store itself: no block, receipt or index record below the floor.
	obs.Stop() // the pruner has stopped: the floor stays
	floor = l.BodiesFrom()
	checkStoreBodies(t, homeDataDir(t, inits[4].Home), floor, last, txs)

	// Restarted, it keeps following, from the floor it recorded.
	obs = startHomeNode(t, inits[4].Home, "observer-restarted", observe)
	if obs.Ledger().BodiesFrom() != floor {
		t.Fatalf("bodies from %d after the restart, want %d", obs.Ledger().BodiesFrom(), floor)
	}
	sendTransfers(t, nodes[1], accts[0].Key, 5)
	target := nodes[1].Ledger().Head().Number.Uint64() + 5
	waitUntil(t, 60*time.Second, "the restarted observer follows", func() bool {
		return obs.Ledger().Head().Number.Uint64() >= target && obs.Ledger().BodiesFrom() > floor
	})
	agreeFrom(t, []*netNode{nodes[0], nodes[1], obs}, 1)

	// A validator is refused the retention, in one line naming why.
	nodes[3].Stop()
	hc, err := LoadHomeConfig(inits[3].Home)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := hc.NodeConfig(inits[3].Home, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	cfg.HistoryBodies = keep
	if nd, err := New(cfg); err == nil || !strings.Contains(err.Error(), "this node is a validator") {
		if nd != nil {
			nd.Stop()
		}
		t.Fatalf("a validator with history.bodies: %v", err)
	}
}

// checkStoreBodies opens a stopped node's pebble store directly and
// checks that the block and receipt records below floor and the index
// entries of txs (all in blocks 1..last, last < floor) are gone, and the
// records of floor..floor+3 are there.
func checkStoreBodies(t *testing.T, dataDir string, floor, last uint64, txs []common.Hash) {
	t.Helper()
	db, err := pebble.Open(filepath.Join(dataDir, "chaindata"), &pebble.Options{ReadOnly: true, Logger: quietPebble{}})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	has := func(k []byte) bool {
		v, closer, err := db.Get(k)
		if err == nil {
			closer.Close()
			return len(v) > 0
		}
		return false
	}
	num := func(prefix string, n uint64) []byte { return binary.BigEndian.AppendUint64([]byte(prefix), n) }
	for n := uint64(1); n < floor+4; n++ {
		block, receipts, header := has(num("cb", n)), has(num("cr", n)), has(num("ch", n))
		if n < floor && (block || receipts || !header) {
			t.Fatalf("pruned height %d in the store: block %v, receipts %v, header %v", n, block, receipts, header)
		}
		if n >= floor && (!block || !receipts) {
			t.Fatalf("kept height %d in the store: block %v, receipts %v", n, block, receipts)
		}
	}
	for _, h := range txs {
		if has(append([]byte("cx"), h[:]...)) {
			t.Fatalf("the index entry of transaction %s (blocks 1..%d) is still in the store", h, last)
		}
	}
}

func hexNum(n uint64) string { return "0x" + strconv.FormatUint(n, 16) }

type quietPebble struct{}

func (quietPebble) Infof(string, ...any)  {}
func (quietPebble) Errorf(string, ...any) {}
func (quietPebble) Fatalf(format string, args ...any) {
	panic("pebble: " + fmt.Sprintf(format, args...))
}
