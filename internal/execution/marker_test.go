package execution

import (
	"crypto/ecdsa"
	"fmt"
	"math/big"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/state"
	"github.com/ethereum/go-ethereum/core/tracing"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/holiman/uint256"

	"github.com/charter-ledger/charter/internal/chain"
	"github.com/charter-ledger/charter/internal/system"
)

// The rules of block execution for the markers of private transactions:
// markers of an existing group do not count against maxBlockGovTxs, at
// most system.MaxGroupMarkersPerBlock markers of one group go in a block,
// and a registered node sends nothing but the registry's privacy calls.

// Groups the marker tests create in their first block.
var (
	groupA = common.HexToHash("0xa0")
	groupB = common.HexToHash("0xb0")
)

// markerChain is a boundsChain whose organization also has a registered
// node (funded, so that it pays for its markers) and groups A and B, of
// that organization alone, created in block 1.
type markerChain struct {
	*boundsChain
	node *ecdsa.PrivateKey
}

func newMarkerChain(t *testing.T, writers int) *markerChain {
	t.Helper()
	ak, admin := key(t)
	nk, node := key(t)
	gs := &system.GenesisSpec{
		Accounts: []system.GenesisAccount{{Address: admin, Org: "bank", Roles: []string{"admin", "write"}}},
		Nodes:    []system.GenesisNode{{ID: node, Org: "bank"}},
	}
	bc := &boundsChain{admin: ak, nonces: map[*ecdsa.PrivateKey]uint64{}}
	for i := 0; i < writers; i++ {
		k, a := key(t)
		bc.writers = append(bc.writers, k)
		gs.Accounts = append(gs.Accounts, system.GenesisAccount{Address: a, Org: "bank", Roles: []string{"write"}})
	}
	bc.testChain = newTestChainWith(t, gs, func(st *state.StateDB) {
		st.SetBalance(node, uint256.MustFromBig(ether), tracing.BalanceChangeUnspecified)
	})
	bc.head, bc.st = bc.genesis, bc.state.Copy()
	c := &markerChain{boundsChain: bc, node: nk}
	if !system.Read(c.st).IsNode(node) {
		t.Fatalf("%s is not a registered node", node)
	}
	var txs []*types.Transaction
	for i, id := range []common.Hash{groupA, groupB} {
		data, err := system.Registry.Pack("createGroup", id, fmt.Sprintf("group%d", i), "", []string{"bank"})
		if err != nil {
			t.Fatal(err)
		}
		txs = append(txs, c.sign(t, c.admin, system.RegistryAddress, data))
	}
	succeeded(t, c.build(t, newPoolSource(c.exec.Signer(), txs...)))
	for _, id := range []common.Hash{groupA, groupB} {
		if _, ok := system.Read(c.st).Group(id); !ok {
			t.Fatalf("group %s was not created", id.Hex())
		}
	}
	return c
}

// markers signs n markers of group by k, each of a distinct payload, with
// no members listed (the group exists).
func (c *markerChain) markers(t *testing.T, k *ecdsa.PrivateKey, group common.Hash, n int) []*types.Transaction {
	t.Helper()
	txs := make([]*types.Transaction, n)
	for i := range txs {
		payload := crypto.Keccak256Hash(group[:], crypto.FromECDSAPub(&k.PublicKey), big.NewInt(int64(c.nonces[k])).Bytes())
		data, err := system.Registry.Pack("privateMarker", group, payload, []string{})
		if err != nil {
			t.Fatal(err)
		}
		txs[i] = c.sign(t, k, system.RegistryAddress, data)
		if !system.IsPrivateMarker(txs[i]) {
			t.Fatal("the packed marker is not a marker by system.IsPrivateMarker")
		}
	}
	return txs
}

// setRoles signs n registry calls by the admin, each giving a new account
// role read: registry calls that are not markers.
func (c *markerChain) setRoles(t *testing.T, n int) []*types.Transaction {
	t.Helper()
	txs := make([]*types.Transaction, n)
	for i := range txs {
		data, err := system.Registry.Pack("setAccountRoles", common.BigToAddress(big.NewInt(int64(0x10000+c.nonces[c.admin]))), uint32(system.RoleRead))
		if err != nil {
			t.Fatal(err)
		}
		txs[i] = c.sign(t, c.admin, system.RegistryAddress, data)
	}
	return txs
}

// succeeded fails t unless every transaction of res succeeded.
func succeeded(t *testing.T, res *Result) {
	t.Helper()
	for i, r := range res.Receipts {
		if r.Status != types.ReceiptStatusSuccessful {
			t.Fatalf("block %d: transaction %d failed", res.Block.NumberU64(), i)
		}
	}
}

// groupCounts counts the transactions of b by marker group; other
// transactions count under the zero hash.
func groupCounts(b *types.Block) map[common.Hash]int {
	n := map[common.Hash]int{}
	for _, tx := range b.Transactions() {
		g, _ := system.MarkerGroup(tx)
		n[g]++
	}
	return n
}

// Markers of an existing group, by a node or by a write account of a
// member organization, are outside the block's budget of governance
// calls: a block holds more of them than maxBlockGovTxs, while the other
// registry calls beside them stop at the budget, in Build and in Apply.
func TestMarkersOutsideGovernanceBudget(t *testing.T) {
	c := newMarkerChain(t, 1)
	budget := system.DefaultMaxBlockGovTxs
	if got := system.Read(c.st).BlockLimits().GovTxs; got != uint64(budget) {
		t.Fatalf("maxBlockGovTxs is %d, want the default %d", got, budget)
	}
	byNode := c.markers(t, c.node, groupA, budget+10)
	byWriter := c.markers(t, c.writers[0], groupA, budget+10)
	calls := c.setRoles(t, budget+5)
	// The calls first: they spend the budget before any marker is tried.
	txs := append(append(append([]*types.Transaction(nil), calls...), byNode...), byWriter...)

	// A block of all the markers and as many calls as the budget is valid.
	parent, parentState := c.head, c.st.Copy()
	full := append(append([]*types.Transaction(nil), calls[:budget]...), append(byNode, byWriter...)...)
	_, err := c.exec.Apply(parent, c.forge(full...), parentState.Copy())
	if err == nil || strings.Contains(err.Error(), "maxBlockGovTxs") || !strings.Contains(err.Error(), "gas used") {
		// The forged block has no post-state fields: it is refused at the
		// first of them (gas used), after every transaction ran.
		t.Fatalf("apply %d markers beside %d registry calls: err = %v, want every transaction to run", len(byNode)+len(byWriter), budget, err)
	}
	// One call more is invalid, wherever it stands among the markers.
	over := append(append([]*types.Transaction(nil), full...), calls[budget])
	_, err = c.exec.Apply(parent, c.forge(over...), parentState.Copy())
	want := fmt.Sprintf("call %d of a system contract, above maxBlockGovTxs %d", budget+1, budget)
	if err == nil || !strings.Contains(err.Error(), "invalid block") || !strings.Contains(err.Error(), want) {
		t.Fatalf("apply %d registry calls among markers: err = %v, want %q", budget+1, err, want)
	}

	src := newPoolSource(c.exec.Signer(), txs...)
	res := c.build(t, src) // another node accepts it
	succeeded(t, res)
	n := groupCounts(res.Block)
	if n[groupA] != len(byNode)+len(byWriter) || n[common.Hash{}] != budget {
		t.Fatalf("block took %d markers of %d and %d registry calls of %d, want every marker and %d calls",
			n[groupA], len(byNode)+len(byWriter), n[common.Hash{}], len(calls), budget)
	}
	for _, r := range res.Receipts[budget:] {
		if len(r.Logs) != 1 || r.Logs[0].Topics[0] != system.Registry.Events["PrivateMarker"].ID {
			t.Fatalf("a marker emitted %d logs, want its PrivateMarker event", len(r.Logs))
		}
	}
	if left := src.Pending(); len(left) != len(calls)-budget {
		t.Fatalf("%d transactions left pending, want the %d calls over the budget", len(left), len(calls)-budget)
	} else {
		succeeded(t, c.build(t, newPoolSource(c.exec.Signer(), left...)))
	}
}

// At most system.MaxGroupMarkersPerBlock markers of one group go in a
// block: Build leaves the markers over the bound for the next block, and
// takes the markers of another group beside them; Apply refuses a block
// with more, naming the bound.
func TestGroupMarkersPerBlock(t *testing.T) {
	const max = system.MaxGroupMarkersPerBlock
	c := newMarkerChain(t, 2)
	// Group A's markers come from the node and a writer, group B's from
	// another writer, after A's bound is reached.
	a := append(c.markers(t, c.node, groupA, max/2), c.markers(t, c.writers[0], groupA, max/2+1)...)
	b := c.markers(t, c.writers[1], groupB, 50)

	_, err := c.exec.Apply(c.head, c.forge(a...), c.st.Copy())
	want := fmt.Sprintf("marker %d of privacy group %s in the block, above %d", max+1, groupA.Hex(), max)
	if err == nil || !strings.Contains(err.Error(), "invalid block") || !strings.Contains(err.Error(), want) {
		t.Fatalf("apply a block of %d markers of one group: err = %v, want %q", len(a), err, want)
	}
	// At the bound, and with the other group beside it, the block is
	// valid as far as the markers go (it has no post-state fields).
	_, err = c.exec.Apply(c.head, c.forge(append(a[:max:max], b...)...), c.st.Copy())
	if err == nil || strings.Contains(err.Error(), "privacy group") || !strings.Contains(err.Error(), "gas used") {
		t.Fatalf("apply %d markers of group A and %d of group B: err = %v, want every transaction to run", max, len(b), err)
	}

	src := newPoolSource(c.exec.Signer(), append(append([]*types.Transaction(nil), a...), b...)...)
	res := c.build(t, src) // another node accepts it
	succeeded(t, res)
	if n := groupCounts(res.Block); n[groupA] != max || n[groupB] != len(b) || len(res.Block.Transactions()) != max+len(b) {
		t.Fatalf("block took %d markers of group A of %d, %d of group B of %d, %d transactions: want %d, %d",
			n[groupA], len(a), n[groupB], len(b), len(res.Block.Transactions()), max, len(b))
	}
	left := src.Pending()
	if len(left) != 1 || left[0].Hash() != a[len(a)-1].Hash() {
		t.Fatalf("%d transactions left pending, want group A's last marker", len(left))
	}
	next := c.build(t, newPoolSource(c.exec.Signer(), left...))
	succeeded(t, next)
	if len(next.Block.Transactions()) != 1 {
		t.Fatalf("the next block took %d transactions, want the marker that waited", len(next.Block.Transactions()))
	}
}

// A registered node may send only the registry's privacy calls: a block
// carrying its transfer, its call of another registry function or of the
// governance contract, a privateMarker call sent to another address, or
// a contract creation, is invalid (the proposer leaves them out, and the
// pool refuses them), while its marker is valid.
func TestNodeSendsOnlyPrivacyCalls(t *testing.T) {
	c := newMarkerChain(t, 0)
	node := crypto.PubkeyToAddress(c.node.PublicKey)
	refusal := "not permitted: node " + node.Hex() + " may only send privacy calls to the registry"

	roles, err := system.Registry.Pack("setAccountRoles", common.Address{9}, uint32(system.RoleRead))
	if err != nil {
		t.Fatal(err)
	}
	vote, err := system.Governance.Pack("vote", uint64(1), true)
	if err != nil {
		t.Fatal(err)
	}
	marker, err := system.Registry.Pack("privateMarker", groupA, common.Hash{1}, []string{})
	if err != nil {
		t.Fatal(err)
	}
	// Each is the node's first transaction.
	first := func(to *common.Address, data []byte) *types.Transaction {
		tx, err := types.SignNewTx(c.node, c.exec.Signer(), &types.DynamicFeeTx{ChainID: big.NewInt(77), To: to,
			Data: data, Gas: 200_000, GasFeeCap: big.NewInt(10), GasTipCap: big.NewInt(1)})
		if err != nil {
			t.Fatal(err)
		}
		return tx
	}
	for name, tx := range map[string]*types.Transaction{
		"transfer":                         first(&common.Address{9}, nil),
		"setAccountRoles":                  first(&system.RegistryAddress, roles),
		"governance vote":                  first(&system.GovernanceAddress, vote),
		"privateMarker to another address": first(&forwarderAddr, marker),
		"privateMarker to governance":      first(&system.GovernanceAddress, marker),
		"creation":                         first(nil, marker),
	} {
		if err := system.Read(c.st).CheckTransaction(node, tx); err == nil || !strings.Contains(err.Error(), refusal) {
			t.Errorf("%s: pool: err = %v, want %q", name, err, refusal)
		}
		h := chain.NewHeader(c.spec, c.head, common.Address{}, c.head.Time+1)
		res, err := c.exec.Build(h, c.st.Copy(), newPoolSource(c.exec.Signer(), tx))
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Block.Transactions()) != 0 || len(res.Rejected) != 1 || !strings.Contains(res.Rejected[0].Err.Error(), refusal) {
			t.Errorf("%s: proposer: included %d, rejected %v, want it left out because %q", name, len(res.Block.Transactions()), res.Rejected, refusal)
		}
		_, err = c.exec.Apply(c.head, c.forge(tx), c.st.Copy())
		if err == nil || !strings.Contains(err.Error(), "invalid block") || !strings.Contains(err.Error(), refusal) {
			t.Errorf("%s: verifier: err = %v, want an invalid block because %q", name, err, refusal)
		}
	}

	// The node's marker is valid.
	res := c.build(t, newPoolSource(c.exec.Signer(), c.markers(t, c.node, groupA, 1)...))
	succeeded(t, res)
	if len(res.Block.Transactions()) != 1 || len(res.Receipts[0].Logs) != 1 {
		t.Fatalf("the node's marker: %d transactions in the block, %d logs", len(res.Block.Transactions()), len(res.Receipts[0].Logs))
	}
	if got := c.st.GetNonce(node); got != 1 {
		t.Fatalf("the node's nonce is %d after its marker, want 1", got)
	}
}

// Failed markers take no slot of their group: an account that fills a
// block with markers the registry refuses (here of a group that does not
// exist) does not keep the group's real markers out.
func TestFailedMarkersTakeNoSlot(t *testing.T) {
	const max = system.MaxGroupMarkersPerBlock
	c := newMarkerChain(t, 1)
	// A zero payload hash: the registry reverts every one of them.
	bad := make([]*types.Transaction, max+5)
	for i := range bad {
		data, err := system.Registry.Pack("privateMarker", groupA, common.Hash{}, []string{})
		if err != nil {
			t.Fatal(err)
		}
		bad[i] = c.sign(t, c.writers[0], system.RegistryAddress, data)
	}
	good := c.markers(t, c.node, groupA, 1)
	res := c.build(t, newPoolSource(c.exec.Signer(), append(bad, good...)...))
	if n := len(res.Block.Transactions()); n != len(bad)+1 {
		t.Fatalf("the block took %d transactions, want the %d failing markers and the real one", n, len(bad))
	}
	last := res.Receipts[len(res.Receipts)-1]
	if last.TxHash != good[0].Hash() || last.Status != types.ReceiptStatusSuccessful {
		t.Fatalf("the real marker: %s status %d, want %s status 1", last.TxHash, last.Status, good[0].Hash())
	}
	if res.Receipts[0].Status != types.ReceiptStatusFailed {
		t.Fatal("a marker with a zero payload hash succeeded: the test cannot tell anything")
	}
}
