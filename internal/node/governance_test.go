package node

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethclient"

	"github.com/charter-ledger/charter/internal/chain"
	"github.com/charter-ledger/charter/internal/consensus/bft"
	"github.com/charter-ledger/charter/internal/identity"
	"github.com/charter-ledger/charter/internal/snapshot"
	"github.com/charter-ledger/charter/internal/system"
)

// sendTx signs and sends a call to `to`, and waits for its receipt. A
// pool rejection is returned as the error.
func sendTx(t *testing.T, c *ethclient.Client, key *ecdsa.PrivateKey, to common.Address, value *big.Int, data []byte) (*types.Receipt, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	from := crypto.PubkeyToAddress(key.PublicKey)
	nonce, err := c.PendingNonceAt(ctx, from)
	if err != nil {
		t.Fatal(err)
	}
	id, err := c.ChainID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := types.SignNewTx(key, types.LatestSignerForChainID(id), &types.DynamicFeeTx{
		ChainID: id, Nonce: nonce, To: &to, Value: value, Data: data, Gas: 2_000_000,
		GasFeeCap: big.NewInt(1_000_000_000), GasTipCap: big.NewInt(1),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SendTransaction(ctx, tx); err != nil {
		return nil, err
	}
	for {
		r, err := c.TransactionReceipt(ctx, tx.Hash())
		if err == nil {
			return r, nil
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no receipt for %s: %v", tx.Hash(), ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// sendOK is sendTx that must succeed.
func sendOK(t *testing.T, what string, c *ethclient.Client, key *ecdsa.PrivateKey, to common.Address, data []byte) *types.Receipt {
	t.Helper()
	r, err := sendTx(t, c, key, to, nil, data)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if r.Status != types.ReceiptStatusSuccessful {
		t.Fatalf("%s: transaction %s failed", what, r.TxHash)
	}
	return r
}

func govCall(t *testing.T, method string, args ...any) []byte {
	t.Helper()
	data, err := system.Governance.Pack(method, args...)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// propose sends a proposal and returns its id (from the ProposalCreated log).
func propose(t *testing.T, c *ethclient.Client, key *ecdsa.PrivateKey, a system.Action, args ...any) uint64 {
	t.Helper()
	enc, err := system.EncodeArgs(a, args...)
	if err != nil {
		t.Fatal(err)
	}
	r := sendOK(t, "propose "+a.String(), c, key, system.GovernanceAddress, govCall(t, "propose", uint8(a), enc, "test"))
	for _, l := range r.Logs {
		if l.Topics[0] == system.Governance.Events["ProposalCreated"].ID {
			return new(big.Int).SetBytes(l.Topics[1][:]).Uint64()
		}
	}
	t.Fatal("no ProposalCreated log")
	return 0
}

func proposalStatus(t *testing.T, n *Node, id uint64) system.ProposalStatus {
	t.Helper()
	reg, _, err := n.registry()
	if err != nil {
		t.Fatal(err)
	}
	p, _ := reg.Proposal(id)
	return p.Status
}

// TestGovernanceAdmitAndExit runs a 4-organization bft network in one
// process: a fifth organization and its validator are admitted by a
// 3-of-4 vote and its node validates after the epoch boundary; then an
// organization is voted out, its node is disconnected and its accounts
// are refused, while its blocks remain.
func TestGovernanceAdmitAndExit(t *testing.T) {
	if testing.Short() {
		t.Skip("network test")
	}
	engines := []string{"bft", "poa", "raft"}
	if raceEnabled {
		engines = engines[:1]
	}
	for _, engine := range engines {
		t.Run(engine, func(t *testing.T) { testAdmitAndExit(t, engine) })
	}
}

func testAdmitAndExit(t *testing.T, engine string) {
	nodes := startNetwork(t, engine, 4)
	dir := filepath.Dir(nodes[0].home)
	admin := make([]*ecdsa.PrivateKey, 4)
	for k := range admin {
		key, err := identity.LoadNodeKey(filepath.Join(dir, "orgs", "org"+itoa(k), AdminAccountFile), nil)
		if err != nil {
			t.Fatal(err)
		}
		admin[k] = key
	}
	c0 := nodes[0].client
	if engine != "raft" { // raft makes blocks only for transactions
		waitUntil(t, 20*time.Second, "first blocks", func() bool { return nodes[0].ledger.Head().Number.Uint64() >= 2 })
	}

	// An account without write is refused by the pool, naming the role.
	stranger, _ := crypto.GenerateKey()
	if _, err := sendTx(t, c0, stranger, common.Address{1}, nil, nil); err == nil || !strings.Contains(err.Error(), "lacks role write") {
		t.Fatalf("unlisted account: err = %v, want one naming role write", err)
	}

	// A fifth organization prepares its node.
	ports := freePortBase(t, 2)
	jr, err := Join(JoinOptions{Genesis: filepath.Join(dir, GenesisFile), Peers: filepath.Join(dir, PeersFile), Org: "org4",
		Dir: filepath.Join(dir, "org4"), RPCPort: ports, P2PPort: ports + 1})
	if err != nil {
		t.Fatal(err)
	}
	// Its admin needs gas: a development account of org0 sends some.
	devs, err := chain.DevAccounts(1)
	if err != nil {
		t.Fatal(err)
	}
	if r, err := sendTx(t, c0, devs[0].Key, jr.Admin, big.NewInt(1e18), nil); err != nil || r.Status != 1 {
		t.Fatalf("fund the new admin: %v", err)
	}
	roots, err := os.ReadFile(jr.Roots)
	if err != nil {
		t.Fatal(err)
	}
	pubText, err := os.ReadFile(jr.PrivacyKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	var privacyKey system.PrivacyKey
	if err := privacyKey.UnmarshalText(pubText); err != nil || privacyKey.Identity().String() != jr.PrivacyKey {
		t.Fatalf("join's privacy public key file %s: %v (identity %s, join says %s)", jr.PrivacyKeyFile, err, privacyKey.Identity(), jr.PrivacyKey)
	}
	id := propose(t, c0, admin[0], system.ActAddOrganization, "org4", string(roots), uint8(3), uint64(1),
		[]common.Address{jr.Admin}, []common.Address{jr.NodeID}, [][32]byte{jr.Fingerprint}, []common.Address{jr.NodeID}, []byte(privacyKey))
	for k := 0; k < 2; k++ {
		sendOK(t, "vote", nodes[k].client, admin[k], system.GovernanceAddress, govCall(t, "vote", id, true))
		if s := proposalStatus(t, nodes[0].Node, id); s != system.ProposalOpen {
			t.Fatalf("after %d of 4 votes the proposal is %s, want open", k+1, s)
		}
	}
	// A second vote of the same organization reverts.
	if r, err := sendTx(t, c0, admin[0], system.GovernanceAddress, nil, govCall(t, "vote", id, true)); err != nil || r.Status != types.ReceiptStatusFailed {
		t.Fatalf("double vote: receipt %v, err %v; want a failed transaction", r, err)
	}
	sendOK(t, "third vote", nodes[2].client, admin[2], system.GovernanceAddress, govCall(t, "vote", id, true))
	waitUntil(t, 20*time.Second, "admission executed", func() bool { return proposalStatus(t, nodes[0].Node, id) == system.ProposalExecuted })
	reg, _, _ := nodes[0].registry()
	if org, ok := reg.PrivacyKeyOrg(privacyKey.Identity()); !ok || org != "org4" {
		t.Fatalf("the admitted organization's privacy identity leads to %q (%v), want org4", org, ok)
	}
	changes := reg.ValidatorChanges()
	from := changes[len(changes)-1].From
	if !slices.Contains(changes[len(changes)-1].IDs, jr.NodeID) || from%10 != 0 {
		t.Fatalf("validator changes %+v: want one adding %s at an epoch boundary", changes, jr.NodeID)
	}

	// The new organization's node joins, syncs and validates after the boundary.
	hc, err := LoadHomeConfig(jr.Home)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := hc.NodeConfig(jr.Home, nodes[0].log)
	if err != nil {
		t.Fatal(err)
	}
	n4, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := n4.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n4.Stop)
	if engine == "raft" {
		// Five voters from the boundary on: a majority is three. With two
		// original validators stopped, a transaction commits only if the
		// new node votes.
		// The leader seals empty blocks up to the boundary, and proposes the
		// raft configuration change there.
		waitUntil(t, 60*time.Second, "the chain at the boundary", func() bool { return nodes[0].ledger.Head().Number.Uint64() >= from-1 })
		waitUntil(t, 60*time.Second, "the new node synced", func() bool { return n4.ledger.Head().Number.Uint64() >= from-1 })
		// The new node is added as a learner and promoted once it caught
		// up; until raft applied the promotion, two stopped voters of four
		// leave no majority (and none to promote it with).
		waitUntil(t, 60*time.Second, "the new node a voter", func() bool { return nodes[0].engine.Stats().Validators == 5 })
		nodes[1].Stop()
		nodes[2].Stop()
		waitUntil(t, 60*time.Second, "a transfer committed with two of the original four stopped", func() bool {
			r, err := sendTx(t, c0, devs[0].Key, common.Address{3}, big.NewInt(1), nil)
			return err == nil && r.Status == 1
		})
		return
	}
	var signedBy4 uint64
	waitUntil(t, 60*time.Second, "a block after the boundary signed by the new validator", func() bool {
		head := nodes[0].ledger.Head().Number.Uint64()
		for h := from; h <= head; h++ {
			b := nodes[0].ledger.BlockByNumber(h)
			if engine == "poa" {
				// An authority seals its turns: the block names its sealer.
				if b.Coinbase() == jr.NodeID {
					signedBy4 = h
					return true
				}
				continue
			}
			signers, err := bft.VerifyCertificate(nodes[0].cfg.Spec.ChainID(), reg.ValidatorsAt(h), h, b.Hash(), nodes[0].ledger.Seal(h))
			if err != nil {
				t.Fatalf("certificate of block %d: %v", h, err)
			}
			if slices.Contains(signers, jr.NodeID) {
				signedBy4 = h
				return true
			}
		}
		return false
	})
	t.Logf("the new validator signed block %d (set change at %d)", signedBy4, from)
	waitUntil(t, 30*time.Second, "the new node synced", func() bool {
		return n4.ledger.Head().Number.Uint64() >= signedBy4
	})
	if engine == "bft" {
		checkHandoverSnapshot(t, nodes[0].Node, from)
	}
	if engine == "poa" {
		// A view of the head (as a snapshot takes) leaves the states of
		// the heights below readable, which competing poa blocks build
		// on, and the chain goes on (below: the exit's votes are
		// confirmed on node 0).
		v, err := nodes[0].Ledger().ViewHead()
		if err != nil {
			t.Fatal(err)
		}
		if h := v.Height(); h > 1 {
			if _, err := nodes[0].Ledger().StateAt(nodes[0].ledger.HeaderByNumber(h - 1).Root); err != nil {
				t.Fatalf("after a view of %d, the state of %d: %v", h, h-1, err)
			}
		}
		v.Release()
	}
	// The joining node followed the chain through the decision: it keeps
	// the handover too.
	if hs, err := snapshot.LoadHandovers(n4.cfg.DataDir); err != nil || len(hs) != 1 {
		t.Fatalf("the new node keeps %d handovers (%v), want 1", len(hs), err)
	}

	// org3 is voted out: 4 of the 5 organizations.
	admin4, err := identity.LoadNodeKey(jr.AdminKey, nil)
	if err != nil {
		t.Fatal(err)
	}
	lastOf3 := nodes[3].ledger.Head().Number.Uint64()
	out := propose(t, c0, admin[0], system.ActRemoveOrganization, "org3")
	for _, v := range []struct {
		c   *ethclient.Client
		key *ecdsa.PrivateKey
	}{{c0, admin[0]}, {nodes[1].client, admin[1]}, {nodes[2].client, admin[2]}, {c0, admin4}} {
		sendOK(t, "exit vote", v.c, v.key, system.GovernanceAddress, govCall(t, "vote", out, true))
	}
	waitUntil(t, 20*time.Second, "exit executed", func() bool { return proposalStatus(t, nodes[0].Node, out) == system.ProposalExecuted })
	waitUntil(t, 30*time.Second, "org3's node disconnected", func() bool { return !peerConnected(nodes[0], nodes[3]) })
	if _, err := sendTx(t, c0, admin[3], system.GovernanceAddress, nil, govCall(t, "vote", out, true)); err == nil ||
		!strings.Contains(err.Error(), "not permitted") {
		t.Fatalf("exited organization's admin: err = %v, want not permitted", err)
	}
	// Its blocks remain: the chain below the exit is unchanged.
	if b := nodes[0].ledger.BlockByNumber(lastOf3); b == nil {
		t.Fatalf("block %d gone", lastOf3)
	}
}

func peerConnected(a, b *netNode) bool {
	id := crypto.PubkeyToAddress(b.cfg.NodeKey.PublicKey)
	for _, p := range a.net.tr.Peers() {
		if common.Address(p.ID) == id {
			return true
		}
	}
	return false
}

// TestGovernedParametersReachThePool: a parameter voted on a dev chain
// (one organization) bounds the pool once it executes; a dev chain seals
// the executing block by itself.
func TestGovernedParametersReachThePool(t *testing.T) {
	tn := startNode(t, t.TempDir())
	admin := tn.accts[0].Key
	id := propose(t, tn.client, admin, system.ActSetParameter, system.ParamMaxTxBytes, big.NewInt(2048))
	sendOK(t, "vote", tn.client, admin, system.GovernanceAddress, govCall(t, "vote", id, true))
	waitUntil(t, 10*time.Second, "the parameter executed without other transactions", func() bool {
		return proposalStatus(t, tn.Node, id) == system.ProposalExecuted
	})
	to := common.Address{7}
	nonce, _ := tn.client.PendingNonceAt(context.Background(), tn.accts[1].Address)
	big3k := tn.sign(t, tn.accts[1].Key, &types.DynamicFeeTx{ChainID: big.NewInt(1337), Nonce: nonce, Gas: 200_000,
		GasFeeCap: big.NewInt(1), To: &to, Data: make([]byte, 3000)})
	if err := tn.client.SendTransaction(context.Background(), big3k); err == nil || !strings.Contains(err.Error(), "oversized data: 3") || !strings.Contains(err.Error(), "limit 2048") {
		t.Fatalf("a 3,000-byte transaction after maxTxBytes 2048: err = %v", err)
	}
}

// checkHandoverSnapshot: after a validator set change in force from
// from, a snapshot of the head made by n carries the handover that anchors
// the new set in the genesis one, and an importer that knows only the
// genesis accepts it without a warning; without the handover, or with a
// handover whose seal is not the earlier set's, it is refused.
func checkHandoverSnapshot(t *testing.T, n *Node, from uint64) {
	t.Helper()
	hs, err := snapshot.LoadHandovers(n.cfg.DataDir)
	if err != nil || len(hs) != 1 {
		t.Fatalf("%d handovers kept (%v), want 1", len(hs), err)
	}
	view, err := n.Ledger().ViewHead()
	if err != nil {
		t.Fatal(err)
	}
	defer view.Release()
	if view.Height() < from {
		t.Fatalf("head %d below the change at %d", view.Height(), from)
	}
	var buf bytes.Buffer
	m, err := snapshot.Export(&buf, view, view.Height(), snapshot.ExportOptions{Attest: n.attest, Handovers: hs})
	if err != nil {
		t.Fatal(err)
	}
	trust := snapshot.TrustFromSpec(n.cfg.Spec, n.Ledger().Genesis().Hash())
	_, cert, err := snapshot.Certify(&m.Header, trust)
	if err != nil {
		t.Fatalf("a snapshot after the set change, with its handover: %v", err)
	}
	for _, w := range cert.Warnings {
		if strings.Contains(w, "changed since genesis") {
			t.Fatalf("warning for an anchored set: %s", w)
		}
	}
	if len(cert.Validators) != 5 {
		t.Fatalf("certified against %d validators, want the 5 in force", len(cert.Validators))
	}
	h := m.Header
	h.Handovers = nil
	if _, _, err := snapshot.Certify(&h, trust); !errors.Is(err, snapshot.ErrInvalid) || !strings.Contains(err.Error(), "no handover") {
		t.Fatalf("without its handover: %v, want refused", err)
	}
	h = m.Header
	bad := h.Handovers[0]
	bad.Seal = slices.Clone(bad.Seal)
	bad.Seal[len(bad.Seal)/2] ^= 0xff
	h.Handovers = []snapshot.Handover{bad}
	if _, _, err := snapshot.Certify(&h, trust); !errors.Is(err, snapshot.ErrInvalid) || !strings.Contains(err.Error(), "not anchored") {
		t.Fatalf("with a handover whose certificate is broken: %v, want refused", err)
	}
	// The handover of another block (the snapshot's own, whose state lists
	// the change but which the new set sealed) anchors nothing.
	own, err := snapshot.NewHandover(n.Ledger().HeaderByNumber(view.Height()), n.Ledger().Seal(view.Height()), view.NodeDatabase())
	if err != nil {
		t.Fatal(err)
	}
	h.Handovers = []snapshot.Handover{own}
	if _, _, err := snapshot.Certify(&h, trust); !errors.Is(err, snapshot.ErrInvalid) {
		t.Fatalf("with a handover from after the change: %v, want refused", err)
	}
}
