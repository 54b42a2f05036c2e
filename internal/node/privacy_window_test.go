package node

import (
	"context"
	"io"
	"log/slog"
	"math/big"
	"path/filepath"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/ethclient"

	"github.com/charter-ledger/charter/internal/bench/token"
	"github.com/charter-ledger/charter/internal/chain"
	"github.com/charter-ledger/charter/internal/identity"
	"github.com/charter-ledger/charter/internal/system"
)

// TestLateMemberReplaysPastStateWindow: nodes that keep the state of
// their last 4 blocks only; an organization added to a privacy group
// many blocks after the group began replays the group's history from its
// start, reading each old block's registry from the ledger's history of
// the system state, and reaches the other member's private state root.
func TestLateMemberReplaysPastStateWindow(t *testing.T) {
	const window = 4
	dir := t.TempDir()
	_, inits, err := InitNetwork(InitOptions{Dir: dir, Validators: 3, Orgs: 2, Engine: "raft", DevAccounts: true, BlockTimeMs: 200,
		RPCPort: freePortBase(t, 3), P2PPort: freePortBase(t, 3), MetricsPort: freePortBase(t, 3)})
	if err != nil {
		t.Fatal(err)
	}
	if inits[0].Org == inits[1].Org {
		t.Fatalf("want node0 and node1 in different organizations: %s %s", inits[0].Org, inits[1].Org)
	}
	nodes := make([]*Node, len(inits))
	for i, in := range inits {
		hc, err := LoadHomeConfig(in.Home)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := hc.NodeConfig(in.Home, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			t.Fatal(err)
		}
		cfg.StateHistory = window
		nd, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := nd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nd.Stop)
		nodes[i] = nd
	}
	n0, n1 := nodes[0], nodes[1]
	ctx := context.Background()
	waitUntil(t, 30*time.Second, "node0 and node1 connected", func() bool {
		return len(n0.priv.fetch.peersOf(mustMemo(t, n0), []string{inits[1].Org})) > 0
	})
	id0 := n0.PrivacyKey().Public().Identity()
	g, err := n0.priv.CreateGroup(ctx, [][]byte{id0[:]}, "alone-first", "")
	if err != nil {
		t.Fatal(err)
	}
	accts, err := chain.DevAccounts(1)
	if err != nil {
		t.Fatal(err)
	}
	alice := accts[0].Key
	bob := common.Address{0xb0, 0xb}
	send := func(nonce uint64, to *common.Address, data []byte) *types.Receipt {
		t.Helper()
		m, err := n0.priv.SendRaw(ctx, signPrivate(t, n0.PrivacyKey(), alice, g, nonce, to, data))
		if err != nil {
			t.Fatalf("SendRaw: %v", err)
		}
		r := receiptWithin(t, n0, m, 30*time.Second, "a private receipt on node0")
		if r.Status != types.ReceiptStatusSuccessful {
			t.Fatalf("private transaction %d: status %d, rejected %q", nonce, r.Status, r.Rejected)
		}
		return &types.Receipt{TxHash: m, ContractAddress: r.ContractAddress, BlockNumber: r.BlockNumber}
	}
	deploy := send(0, nil, token.DeployData(big.NewInt(1_000_000)))
	tok := deploy.ContractAddress
	first := send(1, &tok, token.TransferData(bob, big.NewInt(1)))
	// The chain moves well past node1's window of kept states.
	nonce := uint64(2)
	for ; n0.ledger.Head().Number.Uint64() < first.BlockNumber.Uint64()+3*window && nonce < 60; nonce++ {
		send(nonce, &tok, token.TransferData(bob, big.NewInt(1)))
	}
	if n0.ledger.Head().Number.Uint64() < first.BlockNumber.Uint64()+3*window {
		t.Fatalf("the chain did not move %d blocks past block %d", 3*window, first.BlockNumber)
	}
	if _, err := n1.ledger.StateAt(n1.ledger.HeaderByNumber(first.BlockNumber.Uint64()).Root); err == nil {
		t.Fatalf("node1 still keeps the state of block %d: the test does not reach past its window", first.BlockNumber)
	}

	// node1's organization joins the group: it is entitled to the whole
	// history, whose blocks' states it no longer keeps.
	admin, err := identity.LoadNodeKey(filepath.Join(dir, orgsDir, inits[0].Org, AdminAccountFile), nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := ethclient.Dial("http://" + n0.RPCAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	add, err := system.Registry.Pack("addMembers", [32]byte(g), []string{inits[1].Org})
	if err != nil {
		t.Fatal(err)
	}
	if r := sendOK(t, "addMembers", c, admin, system.RegistryAddress, add); r.Status != types.ReceiptStatusSuccessful {
		t.Fatalf("addMembers: status %d", r.Status)
	}
	for _, m := range []common.Hash{deploy.TxHash, first.TxHash} {
		r := receiptWithin(t, n1, m, 60*time.Second, "the group's history replayed on node1")
		if r.Status != types.ReceiptStatusSuccessful || r.Rejected != "" {
			t.Fatalf("node1: replayed %s: status %d, rejected %q", m, r.Status, r.Rejected)
		}
	}
	last := send(nonce, &tok, token.TransferData(bob, big.NewInt(1)))
	receiptWithin(t, n1, last.TxHash, 60*time.Second, "the group's next transfer on node1")
	number := last.BlockNumber.Uint64()
	r0, err0 := n0.priv.StateRoot(g, number)
	r1, err1 := n1.priv.StateRoot(g, number)
	if err0 != nil || err1 != nil || r0 != r1 || r0 == types.EmptyRootHash {
		t.Fatalf("the group's private state root at block %d: node0 %s (%v), node1 %s (%v)", number, r0, err0, r1, err1)
	}
}
