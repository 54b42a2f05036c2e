package node

import (
	"context"
	"encoding/json"
	"math/big"
	"os"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/charter-ledger/charter/internal/chain"
	"github.com/charter-ledger/charter/internal/snapshot"
)

// startSnapshotNetwork runs n validators of engine whose nodes make a
// snapshot every `every` blocks, cut in the smallest chunks.
func startSnapshotNetwork(t *testing.T, engine string, n int, every uint64) []*netNode {
	t.Helper()
	return startSnapshotNetworkWith(t, engine, n, every, nil)
}

// startSnapshotNetworkWith is startSnapshotNetwork with the genesis's
// consensus.params (a soak reaches a large height sooner with a short
// block time).
func startSnapshotNetworkWith(t *testing.T, engine string, n int, every uint64, params json.RawMessage) []*netNode {
	t.Helper()
	dir := t.TempDir()
	_, inits, err := InitNetwork(InitOptions{Dir: dir, Validators: n, Engine: engine, DevAccounts: true, BlockTimeMs: 200, ConsensusParams: params,
		RPCPort: freePortBase(t, n), P2PPort: freePortBase(t, n), MetricsPort: freePortBase(t, n)})
	if err != nil {
		t.Fatal(err)
	}
	var nodes []*netNode
	for i, in := range inits {
		nodes = append(nodes, startHomeNode(t, in.Home, "node"+strconv.Itoa(i), func(c *Config) {
			c.Snapshots = SnapshotConfig{Every: every, Keep: 2, ChunkBytes: snapshot.MinChunkBytes}
		}))
	}
	waitUntil(t, 20*time.Second, "every node connected to every other", func() bool {
		for _, nd := range nodes {
			if nd.PeerCount() != n-1 {
				return false
			}
		}
		return true
	})
	return nodes
}

// fillState sends count transfers from dev account i to fresh addresses,
// so that the state spans several chunks.
func fillState(t *testing.T, nd *netNode, i, count int) {
	t.Helper()
	accts, _ := chain.DevAccounts(i + 1)
	key := accts[i].Key
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	signer := types.LatestSignerForChainID(big.NewInt(chain.DefaultChainID))
	nonce, err := nd.client.PendingNonceAt(ctx, accts[i].Address)
	if err != nil {
		t.Fatal(err)
	}
	var last common.Hash
	for k := 0; k < count; k++ {
		to := common.BigToAddress(big.NewInt(int64(0x5eed0000 + i*1_000_000 + k)))
		tx := types.MustSignNewTx(key, signer, &types.DynamicFeeTx{ChainID: big.NewInt(chain.DefaultChainID),
			Nonce: nonce + uint64(k), Gas: 21000, GasFeeCap: big.NewInt(1), To: &to, Value: big.NewInt(1)})
		if err := nd.client.SendTransaction(ctx, tx); err != nil {
			t.Fatal(err)
		}
		last = tx.Hash()
	}
	waitUntil(t, 120*time.Second, "receipt of the last transfer", func() bool {
		r, err := nd.client.TransactionReceipt(ctx, last)
		return err == nil && r.Status == types.ReceiptStatusSuccessful
	})
}

// waitSnapshots pushes blocks (a transfer at a time) until every node
// serves one newest snapshot of a height at least min, and returns it.
func waitSnapshots(t *testing.T, nodes []*netNode, min uint64) uint64 {
	t.Helper()
	deadline := time.Now().Add(120 * time.Second)
	for k := 0; ; k++ {
		h := nodes[0].LatestSnapshot()
		same := h >= min
		for _, nd := range nodes[1:] {
			same = same && nd.LatestSnapshot() == h
		}
		if same {
			return h
		}
		if time.Now().After(deadline) {
			t.Fatalf("no common snapshot at or above %d (node0 has %d)", min, h)
		}
		if nodes[0].Ledger().Head().Number.Uint64() < min+16 && k%10 == 0 {
			fillState(t, nodes[0], 3, 1)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// corruptChunksFrom makes the node peer serve every snapshot chunk with
// one bit flipped, until the test ends, and counts the chunks it served.
func corruptChunksFrom(t *testing.T, peer common.Address) *atomic.Int64 {
	t.Helper()
	served := new(atomic.Int64)
	snapServeHook = func(self common.Address, raw []byte) []byte {
		if self != peer {
			return raw
		}
		served.Add(1)
		bad := append([]byte(nil), raw...)
		bad[len(bad)/2] ^= 0x40
		return bad
	}
	t.Cleanup(func() { snapServeHook = nil })
	return served
}

// checkCorruptRefused fails unless the sync st was served chunks by the
// corrupt peer, refused them and refused that peer alone.
func checkCorruptRefused(t *testing.T, st *SyncStats, corrupt common.Address, served int64) {
	t.Helper()
	if served == 0 {
		t.Fatal("the corrupt peer was never asked for a chunk")
	}
	if st.Refused == 0 || len(st.BadPeers) != 1 || st.BadPeers[0] != corrupt {
		t.Fatalf("the corrupt peer served %d chunks but sync refused %d from %v", served, st.Refused, st.BadPeers)
	}
}

// TestStateSyncJoinsBFTWithACorruptPeer: a validator whose data directory
// is lost starts empty with sync snapshot, takes the peers' newest
// snapshot over the mTLS links while one peer serves corrupted chunks
// (refused, taken from the others), imports it and then agrees with the
// network on every later block.
func TestStateSyncJoinsBFTWithACorruptPeer(t *testing.T) {
	nodes := startSnapshotNetwork(t, "bft", 4, 8)
	corrupt := nodes[2].Self()
	served := corruptChunksFrom(t, corrupt)
	fillState(t, nodes[0], 0, 400)
	height := waitSnapshots(t, nodes[:3], nodes[0].Ledger().Head().Number.Uint64())

	home := nodes[3].home
	nodes[3].Stop()
	if err := os.RemoveAll(homeDataDir(t, home)); err != nil {
		t.Fatal(err)
	}
	joined := startHomeNode(t, home, "joined", func(c *Config) {
		c.Snapshots = SnapshotConfig{Sync: SyncSnapshot, SyncWait: 30 * time.Second}
	})
	st := joined.StateSync()
	if st == nil {
		t.Fatal("the node did not state sync")
	}
	t.Logf("state sync: %+v", *st)
	if st.Height < height || st.Chunks < 3 || st.Fetched != st.Chunks {
		t.Fatalf("synced %+v, want the snapshot of %d or later, every chunk fetched", *st, height)
	}
	checkCorruptRefused(t, st, corrupt, served.Load())
	if got := joined.Ledger().Head().Number.Uint64(); got != st.Height {
		t.Fatalf("head %d after sync, want %d", got, st.Height)
	}
	fillState(t, nodes[1], 1, 20)
	target := nodes[1].Ledger().Head().Number.Uint64()
	waitUntil(t, 60*time.Second, "the synced node reaches the others' head", func() bool {
		return joined.Ledger().Head().Number.Uint64() >= target
	})
	agreeFrom(t, []*netNode{nodes[0], nodes[1], nodes[2], joined}, st.Height)
}
