package node

import (
	"context"
	"crypto/ecdsa"
	"io"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/charter-ledger/charter/internal/bench/token"
	"github.com/charter-ledger/charter/internal/chain"
	"github.com/charter-ledger/charter/internal/privacy"
	"github.com/charter-ledger/charter/internal/privacy/privtx"
	"github.com/charter-ledger/charter/internal/rpc"
)

// Fetch timing of the tests below: rounds of 1 s, 6 of them with their
// back-offs ≈ 10 s before a group halts. A group that held up the
// applier would hold up the others that long.
const (
	testFetchWait   = time.Second
	testFetchRounds = 6
	// promptly: well below the rounds' total.
	promptly = 4 * time.Second
)

// startPrivHome starts a node of an InitNetwork home with the fetch
// timing of the tests.
func startPrivHome(t *testing.T, home, name string) *Node {
	t.Helper()
	hc, err := LoadHomeConfig(home)
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})).With("test-node", name)
	}
	cfg, err := hc.NodeConfig(home, logger)
	if err != nil {
		t.Fatal(err)
	}
	nd, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if nd.priv == nil {
		t.Fatalf("%s has no privacy key", name)
	}
	nd.priv.fetch.wait, nd.priv.fetch.rounds = testFetchWait, testFetchRounds
	if err := nd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nd.Stop)
	return nd
}

// signPrivate signs a private transaction of the organization whose
// privacy key is pkey.
func signPrivate(t *testing.T, pkey *privacy.PrivateKey, key *ecdsa.PrivateKey, group common.Hash, nonce uint64, to *common.Address, data []byte) []byte {
	t.Helper()
	me := pkey.Public().Identity()
	tx := &privtx.Tx{Nonce: nonce, GasPrice: new(big.Int), Gas: 3_000_000, To: to, Value: new(big.Int), Data: data,
		PrivateFrom: me[:], PrivacyGroupID: group[:], Restriction: privtx.Restricted}
	if err := privtx.SignTx(tx, big.NewInt(1337), key); err != nil {
		t.Fatal(err)
	}
	raw, err := tx.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// receiptWithin waits for a marker's private receipt on n.
func receiptWithin(t *testing.T, n *Node, marker common.Hash, timeout time.Duration, what string) *rpc.PrivateReceipt {
	t.Helper()
	var r *rpc.PrivateReceipt
	waitUntil(t, timeout, what, func() bool {
		var err error
		r, err = n.priv.Receipt(marker)
		if err != nil {
			t.Fatal(err)
		}
		return r != nil
	})
	return r
}

// TestMissingPayloadWaitsAlone: a marker whose payload no node holds
// makes its group wait on every member's node, and only that group: the
// other group's private transactions of later blocks apply promptly. The
// waiting group then halts naming the payload; once a member node has the
// payload, a restart replays the group on both members' nodes to the
// same private state root.
func TestMissingPayloadWaitsAlone(t *testing.T) {
	dir := t.TempDir()
	spec, inits, err := InitNetwork(InitOptions{Dir: dir, Validators: 3, Orgs: 2, Engine: "raft", DevAccounts: true, BlockTimeMs: 200,
		RPCPort: freePortBase(t, 3), P2PPort: freePortBase(t, 3), MetricsPort: freePortBase(t, 3)})
	if err != nil {
		t.Fatal(err)
	}
	if inits[0].Org != inits[2].Org || inits[0].Org == inits[1].Org {
		t.Fatalf("want node0 and node2 in one organization, node1 in another: %s %s %s", inits[0].Org, inits[1].Org, inits[2].Org)
	}
	nodes := make([]*Node, len(inits))
	for i, in := range inits {
		nodes[i] = startPrivHome(t, in.Home, in.Name)
	}
	n0, n1 := nodes[0], nodes[1]
	ctx := context.Background()
	waitUntil(t, 30*time.Second, "node0 and node1 connected", func() bool {
		return len(n0.priv.fetch.peersOf(mustMemo(t, n0), []string{inits[1].Org})) > 0
	})
	pub0, pub1 := n0.PrivacyKey().Public(), n1.PrivacyKey().Public()
	id0, id1 := pub0.Identity(), pub1.Identity()
	newGroup := func(name string) common.Hash {
		t.Helper()
		g, err := n0.priv.CreateGroup(ctx, [][]byte{id0[:], id1[:]}, name, "")
		if err != nil {
			t.Fatalf("CreateGroup %s: %v", name, err)
		}
		return g
	}
	waits, goes := newGroup("waits"), newGroup("goes-on")
	accts, err := chain.DevAccounts(1)
	if err != nil {
		t.Fatal(err)
	}
	alice := accts[0].Key
	bob := common.Address{0xb0, 0xb}
	send := func(group common.Hash, nonce uint64, to *common.Address, data []byte) common.Hash {
		t.Helper()
		m, err := n0.priv.SendRaw(ctx, signPrivate(t, n0.PrivacyKey(), alice, group, nonce, to, data))
		if err != nil {
			t.Fatalf("SendRaw: %v", err)
		}
		return m
	}
	var tokens [2]common.Address
	for i, g := range []common.Hash{waits, goes} {
		r := receiptWithin(t, n1, send(g, 0, nil, token.DeployData(big.NewInt(1_000_000))), 30*time.Second, "the deployments on node1")
		if r.Status != types.ReceiptStatusSuccessful {
			t.Fatalf("deployment: status %d, rejected %q", r.Status, r.Rejected)
		}
		tokens[i] = r.ContractAddress
	}

	// A transfer sealed to both organizations whose payload no node keeps.
	raw := signPrivate(t, n0.PrivacyKey(), alice, waits, 1, &tokens[0], token.TransferData(bob, big.NewInt(7)))
	env, err := privacy.SealWith(spec.PrivacyScheme(), []*privacy.PublicKey{pub0, pub1}, raw)
	if err != nil {
		t.Fatal(err)
	}
	hash, err := privacy.ContentHash(env)
	if err != nil {
		t.Fatal(err)
	}
	payload := common.Hash(hash)
	lost, err := n0.priv.send.call(ctx, "privateMarker", true, [32]byte(waits), hash, []string{})
	if err != nil {
		t.Fatal(err)
	}
	var at uint64
	waitUntil(t, 30*time.Second, "the marker committed on node1", func() bool {
		number, _, ok := n1.ledger.TxLookup(lost)
		at = number
		return ok
	})

	// The other group's transactions of later blocks apply promptly on
	// every member's node.
	start := time.Now()
	later := send(goes, 1, &tokens[1], token.TransferData(bob, big.NewInt(5)))
	for i, n := range nodes {
		r := receiptWithin(t, n, later, promptly, "the other group's transfer, beside the waiting group, on node"+itoa(i))
		if r.Status != types.ReceiptStatusSuccessful {
			t.Fatalf("node%d: the other group's transfer: status %d, rejected %q", i, r.Status, r.Rejected)
		}
	}
	t.Logf("the other group's transfer applied on every node %s after it was sent", time.Since(start).Round(time.Millisecond))
	if n, _, _ := n1.ledger.TxLookup(later); n <= at {
		t.Fatalf("the other group's transfer is in block %d, not after the marker's %d", n, at)
	}

	// While the payload is looked for, the API says so.
	head := n1.ledger.Head().Number.Uint64()
	if _, err := n1.priv.StateRoot(waits, head); err == nil || !strings.Contains(err.Error(), "waiting: fetching payload "+payload.Hex()) {
		t.Fatalf("priv_debugGetStateRoot of the waiting group on node1: %v", err)
	}
	if g := gaugeValue(t, n1.ins.m.PrivacyWaiting); g != 1 {
		t.Fatalf("charter_privacy_groups_waiting on node1 is %v, want 1", g)
	}

	// The rounds exhausted, the group halts on the members' nodes, naming
	// the payload and its marker.
	for i, n := range nodes {
		waitUntil(t, 30*time.Second, "the group halted on node"+itoa(i), func() bool {
			_, err := n.priv.StateRoot(waits, head)
			return err != nil && strings.Contains(err.Error(), "halted")
		})
		_, err := n.priv.StateRoot(waits, head)
		for _, want := range []string{payload.Hex(), lost.Hex(), errFetchFailed.Error()} {
			if !strings.Contains(err.Error(), want) {
				t.Fatalf("node%d: the halted group's error %q does not say %q", i, err, want)
			}
		}
		if g := gaugeValue(t, n.ins.m.PrivacyWaiting); g != 0 {
			t.Fatalf("node%d: charter_privacy_groups_waiting is %v after the group halted", i, g)
		}
	}
	if r, _ := n1.priv.Receipt(lost); r != nil {
		t.Fatal("node1 has a receipt for the marker whose payload it never had")
	}

	// node0 gets the payload late (its sender's node, say, pushes it
	// again); a restart tries the group again from where it stopped: node0
	// from its own store, node1 from node0.
	if err := n0.priv.store.KeepPayload(waits, payload, env); err != nil {
		t.Fatal(err)
	}
	n0.Stop()
	n0 = startPrivHome(t, inits[0].Home, inits[0].Name)
	n1.Stop()
	n1 = startPrivHome(t, inits[1].Home, inits[1].Name)
	for i, n := range []*Node{n0, n1} {
		r := receiptWithin(t, n, lost, 30*time.Second, "the marker's private receipt after the restart on node"+itoa(i))
		if r.Status != types.ReceiptStatusSuccessful || r.Rejected != "" {
			t.Fatalf("node%d: the replayed transfer: status %d, rejected %q", i, r.Status, r.Rejected)
		}
	}
	// Both members' nodes reach the same private state root, and the group
	// goes on.
	next := send(waits, 2, &tokens[0], token.TransferData(bob, big.NewInt(1)))
	receiptWithin(t, n0, next, 30*time.Second, "the group's next transfer on node0")
	receiptWithin(t, n1, next, 30*time.Second, "the group's next transfer on node1")
	number, _, _ := n1.ledger.TxLookup(next)
	r0, err0 := n0.priv.StateRoot(waits, number)
	r1, err1 := n1.priv.StateRoot(waits, number)
	if err0 != nil || err1 != nil || r0 != r1 || r0 == types.EmptyRootHash {
		t.Fatalf("the group's private state root at block %d: node0 %s (%v), node1 %s (%v)", number, r0, err0, r1, err1)
	}
}

func mustMemo(t *testing.T, n *Node) *regMemo {
	t.Helper()
	m, err := n.priv.headMemo()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestClearBackfillsKeepsNewOnes: a replay asked for while a pass replays
// another group (a fetch that completed, a join) is not lost when the
// pass clears what it replayed: the next pass replays it.
func TestClearBackfillsKeepsNewOnes(t *testing.T) {
	pkey, err := privacy.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	pn := startPrivNode(t, t.TempDir(), pkey)
	me := pkey.Public().Identity()
	ctx := context.Background()
	var groups [2]common.Hash
	var blocks [2]uint64
	for i := range groups {
		if groups[i], err = pn.priv.CreateGroup(ctx, [][]byte{me[:]}, "g"+itoa(i), ""); err != nil {
			t.Fatal(err)
		}
		r := pn.privateReceipt(t, pn.sendPrivate(t, pn.accts[i].Key, groups[i], 0, nil, token.DeployData(big.NewInt(1))))
		blocks[i] = r.BlockNumber.Uint64()
	}
	a := &pn.priv.worker
	first, second := groups[0], groups[1]
	var (
		mu       sync.Mutex
		asked    bool
		replayed bool // second replayed after it was asked for
	)
	hook := func(number uint64, only map[common.Hash]bool) {
		mu.Lock()
		defer mu.Unlock()
		if only[first] && !asked {
			// While the pass replays the first group: a replay of the
			// second is asked for.
			asked = true
			a.scheduleReplay(second, blocks[1])
		} else if asked && only[second] && number == blocks[1] {
			replayed = true
		}
	}
	a.afterBlock.Store(&hook)
	defer a.afterBlock.Store(nil)
	a.scheduleReplay(first, blocks[0])
	a.poke()
	waitUntil(t, 15*time.Second, "the replay asked for during another replay done", func() bool {
		mu.Lock()
		defer mu.Unlock()
		if asked {
			a.poke()
		}
		return replayed
	})
	waitUntil(t, 15*time.Second, "the backfill files cleared", func() bool {
		entries, _ := os.ReadDir(filepath.Join(a.p.dir, backfillDir))
		return len(entries) == 0
	})
}

func gaugeValue(t *testing.T, g prometheus.Gauge) float64 {
	t.Helper()
	var m dto.Metric
	if err := g.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetGauge().GetValue()
}

// TestApplierLagGauge: charter_privacy_applier_lag_blocks says how far the
// private applier is behind the head: blocks committed while it is held
// show in it, and it returns to 0 once the applier has caught up.
func TestApplierLagGauge(t *testing.T) {
	pkey, err := privacy.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	pn := startPrivNode(t, t.TempDir(), pkey)
	a := &pn.priv.worker
	lag := pn.ins.m.PrivacyLag
	held := make(chan uint64, 1)
	release := make(chan struct{})
	var (
		once sync.Once
		mu   sync.Mutex
		seen []float64 // the gauge as each block after the held one was applied
	)
	hook := func(number uint64, only map[common.Hash]bool) {
		first := false
		once.Do(func() {
			first = true
			held <- number
			<-release
		})
		if !first {
			mu.Lock()
			seen = append(seen, gaugeValue(t, lag))
			mu.Unlock()
		}
	}
	a.afterBlock.Store(&hook)
	defer a.afterBlock.Store(nil)
	key := pn.accts[0].Key
	to := common.HexToAddress("0x1a9")
	send := func(nonce uint64) {
		t.Helper()
		tx := pn.sign(t, key, &types.DynamicFeeTx{ChainID: big.NewInt(1337), Nonce: nonce, Gas: 21000,
			GasFeeCap: big.NewInt(2e9), GasTipCap: big.NewInt(1), To: &to, Value: big.NewInt(1)})
		if err := pn.Pool().Add(tx); err != nil {
			t.Fatal(err)
		}
		from := crypto.PubkeyToAddress(key.PublicKey)
		waitUntil(t, 15*time.Second, "the transfer in a block", func() bool {
			st, err := pn.ledger.StateAt(pn.ledger.Head().Root)
			return err == nil && st.GetNonce(from) > nonce
		})
	}
	send(0)
	a.poke()
	var at uint64
	select {
	case at = <-held:
	case <-time.After(15 * time.Second):
		t.Fatal("the applier applied no block")
	}
	for nonce := uint64(1); nonce <= 3; nonce++ {
		send(nonce) // a block each, while the applier is held
	}
	head := pn.ledger.Head().Number.Uint64()
	close(release)
	a.poke()
	waitUntil(t, 15*time.Second, "the applier caught up and the gauge back at 0", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(seen) >= int(head-at) && gaugeValue(t, lag) == 0
	})
	mu.Lock()
	defer mu.Unlock()
	if top := slices.Max(seen); top < 2 {
		t.Fatalf("lag gauge at most %v while the applier caught up from block %d to %d", top, at, head)
	}
}
