package node

import (
	"context"
	"crypto/ecdsa"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/ethclient"

	"github.com/charter-ledger/charter/internal/chain"
	"github.com/charter-ledger/charter/internal/identity"
	"github.com/charter-ledger/charter/internal/rpc"
	"github.com/charter-ledger/charter/internal/system"
)

// TestObservers runs four validators and one observer of each leaderless
// engine in one process. The observer is a node of a read-tier
// organization: it follows every block with the same hashes, answers
// JSON-RPC, forwards the transactions sent to it, signs no consensus
// message, and the validators go on without it.
func TestObservers(t *testing.T) {
	for _, engine := range []string{"bft", "poa"} {
		t.Run(engine, func(t *testing.T) { testObserver(t, engine) })
	}
}

func testObserver(t *testing.T, engine string) {
	const vals = 4
	nodes := startNetworkObservers(t, engine, vals, 1)
	obs := nodes[vals]

	// The registry has it in the read tier, not in the validator set.
	reg, _, err := obs.registry()
	if err != nil {
		t.Fatal(err)
	}
	rn, ok := reg.Node(obs.Self())
	org, _ := reg.Org(rn.Org)
	if !ok || rn.Validator || rn.Org != ObserverOrg || org.Tier != system.TierRead {
		t.Fatalf("observer in the registry: %+v (listed %v), organization %+v", rn, ok, org)
	}
	if slices.Contains(reg.Validators(), obs.Self()) {
		t.Fatal("the observer is a validator")
	}
	waitUntil(t, 30*time.Second, "every node connected to every other", func() bool {
		for _, nd := range nodes {
			if nd.PeerCount() != vals {
				return false
			}
		}
		return true
	})

	// Transactions sent to the observer are committed.
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	accts, _ := chain.DevAccounts(2)
	signer := types.LatestSignerForChainID(big.NewInt(chain.DefaultChainID))
	to := common.HexToAddress("0x0B5E55")
	send := func(c interface {
		SendTransaction(context.Context, *types.Transaction) error
	}, from int, nonce uint64) common.Hash {
		tx := types.MustSignNewTx(accts[from].Key, signer, &types.DynamicFeeTx{ChainID: big.NewInt(chain.DefaultChainID),
			Nonce: nonce, Gas: 21000, GasFeeCap: big.NewInt(1), To: &to, Value: big.NewInt(1)})
		if err := c.SendTransaction(ctx, tx); err != nil {
			t.Fatal(err)
		}
		return tx.Hash()
	}
	var hashes []common.Hash
	for nonce := uint64(0); nonce < 5; nonce++ {
		hashes = append(hashes, send(obs.client, 0, nonce))
	}
	for _, nd := range nodes {
		for _, h := range hashes {
			waitUntil(t, 60*time.Second, "receipt of "+h.Hex()+" on every node", func() bool {
				r, err := nd.client.TransactionReceipt(ctx, h)
				return err == nil && r.Status == types.ReceiptStatusSuccessful
			})
		}
	}
	// It answers eth_blockNumber and eth_getBalance.
	bn, err := obs.client.BlockNumber(ctx)
	if err != nil || bn == 0 {
		t.Fatalf("eth_blockNumber on the observer: %d %v", bn, err)
	}
	if bal, err := obs.client.BalanceAt(ctx, to, nil); err != nil || bal.Int64() != int64(len(hashes)) {
		t.Fatalf("eth_getBalance on the observer: %v %v, want %d", bal, err, len(hashes))
	}
	// Same block at every height, up to a height every node reached.
	target := nodes[0].Chain().Head().Number.Uint64()
	waitUntil(t, 30*time.Second, "the observer at the validators' height", func() bool {
		return obs.Chain().Head().Number.Uint64() >= target
	})
	for h := uint64(1); h <= target; h++ {
		want := nodes[0].Ledger().HeaderByNumber(h).Hash()
		for i, nd := range nodes[1:] {
			if got := nd.Ledger().HeaderByNumber(h); got == nil || got.Hash() != want {
				t.Fatalf("block %d: node%d has %v, node0 %s", h, i+1, got, want)
			}
		}
	}

	// Confirmation levels on the observer: safe and finalized are the
	// committed head (every engine commits final blocks only); the
	// engine's own head at 0 confirmations is the committed head on bft,
	// and on poa a sealed block not final yet, above it.
	head := func(level any) rpc.HeadInfo {
		var h rpc.HeadInfo
		if err := obs.client.Client().CallContext(ctx, &h, "charter_head", level); err != nil {
			t.Fatalf("charter_head(%v): %v", level, err)
		}
		return h
	}
	for _, lvl := range []string{"latest", "safe", "finalized"} {
		before, _ := obs.client.BlockNumber(ctx)
		h := head(lvl)
		after, _ := obs.client.BlockNumber(ctx)
		if uint64(h.Number) < before || uint64(h.Number) > after || !h.Committed {
			t.Fatalf("charter_head(%s) = %+v, eth_blockNumber %d..%d", lvl, h, before, after)
		}
		if hd := obs.Ledger().HeaderByNumber(uint64(h.Number)); hd == nil || hd.Hash() != h.Hash {
			t.Fatalf("charter_head(%s) hash %s is not the block's", lvl, h.Hash)
		}
	}
	// The tags answer blocks and state this node holds (on poa the
	// engine's newest block is not committed here: a tag naming it would
	// answer no block and no state).
	for _, tag := range []string{"safe", "finalized"} {
		var blk map[string]any
		if err := obs.client.Client().CallContext(ctx, &blk, "eth_getBlockByNumber", tag, false); err != nil || blk == nil {
			t.Fatalf("eth_getBlockByNumber(%s) on the observer: %v %v", tag, blk, err)
		}
		var bal string
		if err := obs.client.Client().CallContext(ctx, &bal, "eth_getBalance", to, tag); err != nil || bal != "0x5" {
			t.Fatalf("eth_getBalance(%s) on the observer: %s %v", tag, bal, err)
		}
	}
	if engine == "poa" {
		waitUntil(t, 30*time.Second, "a sealed block above the committed head at 0 confirmations", func() bool {
			latest := obs.Ledger().Head().Number.Uint64()
			h := head(0)
			return !h.Committed && uint64(h.Number) > latest
		})
		// At FinalityDepth (2) confirmations the engine's block is the
		// committed head, give or take a block sealed or committed between
		// the two reads.
		h := head(2)
		if latest := obs.Ledger().Head().Number.Uint64(); uint64(h.Number) > latest+1 {
			t.Fatalf("charter_head(2) = %+v, committed head %d", h, latest)
		}
	} else {
		before := obs.Ledger().Head().Number.Uint64()
		if h := head("0x0"); uint64(h.Number) < before || !h.Committed {
			t.Fatalf("bft charter_head(0) = %+v, committed head %d", h, before)
		}
	}

	// The observer signed no consensus message.
	if engine == "bft" {
		for _, m := range obs.Engine().Stats().Messages {
			if m.MsgsOut > 0 && m.Type != "sync-request" {
				t.Fatalf("the observer sent %d %s messages", m.MsgsOut, m.Type)
			}
		}
	}

	if obs.Role() != RoleObserver || nodes[0].Role() != RoleValidator {
		t.Fatalf("roles: observer %s, node0 %s", obs.Role(), nodes[0].Role())
	}

	// Without the observer the validators go on.
	obs.Stop()
	stopped := nodes[0].Chain().Head().Number.Uint64()
	var late []common.Hash
	for nonce := uint64(0); nonce < 3; nonce++ {
		late = append(late, send(nodes[nonce].client, 1, nonce))
	}
	for _, nd := range nodes[:vals] {
		for _, h := range late {
			waitUntil(t, 60*time.Second, "transactions committed on every validator with the observer stopped", func() bool {
				r, err := nd.client.TransactionReceipt(ctx, h)
				return err == nil && r.Status == types.ReceiptStatusSuccessful && nd.Chain().Head().Number.Uint64() > stopped
			})
		}
	}

	waitUntil(t, 60*time.Second, "ten blocks without the observer", func() bool {
		return nodes[0].Chain().Head().Number.Uint64() >= stopped+10
	})

	// Restarted, the observer catches up on the certified blocks it
	// missed and says it is an observer.
	var logs syncBuffer
	back := startHome(t, obs.home, &logs)
	if n := logs.lines("Node started", "role=observer"); n != 1 {
		t.Fatalf("start line naming the observer role: %d", n)
	}
	target = nodes[0].Chain().Head().Number.Uint64()
	waitUntil(t, 60*time.Second, "the restarted observer at the validators' height", func() bool {
		return back.Chain().Head().Number.Uint64() >= target
	})
	for h := uint64(1); h <= target; h++ {
		if got, want := back.Ledger().HeaderByNumber(h).Hash(), nodes[0].Ledger().HeaderByNumber(h).Hash(); got != want {
			t.Fatalf("block %d after the restart: observer %s, node0 %s", h, got, want)
		}
	}
	for _, h := range late {
		if _, _, ok := back.Ledger().TxLookup(h); !ok {
			t.Fatalf("the restarted observer lacks %s", h)
		}
	}
}

// TestReadTierOrganizationJoinsAsObserver: on a 4-organization bft
// network, an organization of the read tier is admitted by a 3-of-4 vote
// with a node and no validator; its node (a home from Join) connects,
// syncs from certified blocks, is an observer, and the transactions sent
// to it are committed; the validator set is unchanged.
func TestReadTierOrganizationJoinsAsObserver(t *testing.T) {
	if testing.Short() {
		t.Skip("network test")
	}
	nodes := startNetwork(t, "bft", 4)
	dir := filepath.Dir(nodes[0].home)
	admin := make([]*ecdsa.PrivateKey, 3)
	for k := range admin {
		key, err := identity.LoadNodeKey(filepath.Join(dir, "orgs", "org"+itoa(k), AdminAccountFile), nil)
		if err != nil {
			t.Fatal(err)
		}
		admin[k] = key
	}
	ports := freePortBase(t, 2)
	jr, err := Join(JoinOptions{Genesis: filepath.Join(dir, GenesisFile), Peers: filepath.Join(dir, PeersFile), Org: "auditor",
		Dir: filepath.Join(dir, "auditor"), RPCPort: ports, P2PPort: ports + 1})
	if err != nil {
		t.Fatal(err)
	}
	roots, err := os.ReadFile(jr.Roots)
	if err != nil {
		t.Fatal(err)
	}
	c0 := nodes[0].client
	id := propose(t, c0, admin[0], system.ActAddOrganization, "auditor", string(roots), uint8(system.TierRead), uint64(1),
		[]common.Address{jr.Admin}, []common.Address{jr.NodeID}, [][32]byte{jr.Fingerprint}, []common.Address{}, []byte{})
	for k := range admin {
		sendOK(t, "vote", nodes[k].client, admin[k], system.GovernanceAddress, govCall(t, "vote", id, true))
	}
	waitUntil(t, 30*time.Second, "admission executed", func() bool { return proposalStatus(t, nodes[0].Node, id) == system.ProposalExecuted })
	reg, _, _ := nodes[0].registry()
	if rn, ok := reg.Node(jr.NodeID); !ok || rn.Validator || rn.Org != "auditor" {
		t.Fatalf("the auditor's node in the registry: %+v (%v)", rn, ok)
	}
	if v := reg.Validators(); len(v) != 4 || slices.Contains(v, jr.NodeID) {
		t.Fatalf("validators after admitting a read-tier organization: %v", v)
	}

	var logs syncBuffer
	obs := startHome(t, jr.Home, &logs)
	if obs.Role() != RoleObserver {
		t.Fatalf("the auditor's node is a %s", obs.Role())
	}
	waitUntil(t, 30*time.Second, "the auditor's node connected to the validators", func() bool { return obs.PeerCount() == 4 })
	target := nodes[0].Chain().Head().Number.Uint64()
	waitUntil(t, 60*time.Second, "the auditor's node synced", func() bool { return obs.Chain().Head().Number.Uint64() >= target })
	for h := uint64(1); h <= target; h++ {
		if got, want := obs.Ledger().HeaderByNumber(h).Hash(), nodes[0].Ledger().HeaderByNumber(h).Hash(); got != want {
			t.Fatalf("block %d: auditor's node %s, node0 %s", h, got, want)
		}
	}
	oc, err := ethclient.Dial("http://" + obs.RPCAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer oc.Close()
	devs, _ := chain.DevAccounts(3)
	r, err := sendTx(t, oc, devs[2].Key, common.Address{0xa0}, big.NewInt(7), nil)
	if err != nil || r.Status != types.ReceiptStatusSuccessful {
		t.Fatalf("a transfer through the auditor's node: %v %v", r, err)
	}
	waitUntil(t, 30*time.Second, "the transfer on node0", func() bool {
		_, _, ok := nodes[0].Ledger().TxLookup(r.TxHash)
		return ok
	})
	if st := obs.Engine().Stats(); st.Validators != 4 {
		t.Fatalf("the auditor's node counts %d validators", st.Validators)
	}
	for _, m := range obs.Engine().Stats().Messages {
		if m.MsgsOut > 0 && m.Type != "sync-request" {
			t.Fatalf("the auditor's node sent %d %s messages", m.MsgsOut, m.Type)
		}
	}
}
