package execution

import (
	"crypto/ecdsa"
	"fmt"
	"math/big"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/state"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/trie"

	"github.com/charter-ledger/charter/internal/chain"
	"github.com/charter-ledger/charter/internal/identity"
	"github.com/charter-ledger/charter/internal/system"
)

// The bounds of a block: its encoded size (maxBlockBytes) and its
// governance work (maxBlockGovTxs, maxBlockGovBytes), in Build and in
// Apply.

// poolSource is a TxSource as the pool gives one: transactions in arrival
// order, and Skip passes over the rest of the sender's. What it passes
// over stays pending (Pending), as in the pool.
type poolSource struct {
	txs     []*types.Transaction
	signer  types.Signer
	skipped map[common.Address]bool
	pending []*types.Transaction
}

func newPoolSource(signer types.Signer, txs ...*types.Transaction) *poolSource {
	return &poolSource{txs: txs, signer: signer, skipped: map[common.Address]bool{}}
}

func (s *poolSource) from(tx *types.Transaction) common.Address {
	a, _ := types.Sender(s.signer, tx)
	return a
}

func (s *poolSource) Peek() *types.Transaction {
	for len(s.txs) > 0 && s.skipped[s.from(s.txs[0])] {
		s.pending = append(s.pending, s.txs[0])
		s.txs = s.txs[1:]
	}
	if len(s.txs) == 0 {
		return nil
	}
	return s.txs[0]
}

func (s *poolSource) Shift() { s.txs = s.txs[1:] }

func (s *poolSource) Skip() {
	s.skipped[s.from(s.txs[0])] = true
	s.pending = append(s.pending, s.txs[0])
	s.txs = s.txs[1:]
}

// Pending is what the block left in the pool, in order.
func (s *poolSource) Pending() []*types.Transaction {
	for s.Peek() != nil {
		s.Skip()
	}
	return s.pending
}

// boundsChain is a one-organization chain with an admin and writers,
// whose head and state move as blocks are built on it.
type boundsChain struct {
	*testChain
	admin   *ecdsa.PrivateKey
	writers []*ecdsa.PrivateKey
	nonces  map[*ecdsa.PrivateKey]uint64
	head    *types.Header
	st      *state.StateDB
}

func newBoundsChain(t *testing.T, writers int) *boundsChain {
	t.Helper()
	ak, admin := key(t)
	gs := &system.GenesisSpec{MaxOpenProposals: 256, Accounts: []system.GenesisAccount{{Address: admin, Org: "bank", Roles: []string{"admin", "write"}}}}
	c := &boundsChain{admin: ak, nonces: map[*ecdsa.PrivateKey]uint64{}}
	for i := 0; i < writers; i++ {
		k, a := key(t)
		c.writers = append(c.writers, k)
		gs.Accounts = append(gs.Accounts, system.GenesisAccount{Address: a, Org: "bank", Roles: []string{"write"}})
	}
	c.testChain = newTestChainWith(t, gs, nil)
	c.head, c.st = c.genesis, c.state.Copy()
	return c
}

// sign signs the sender's next transaction, with gas for its data.
func (c *boundsChain) sign(t *testing.T, k *ecdsa.PrivateKey, to common.Address, data []byte) *types.Transaction {
	t.Helper()
	tx, err := types.SignNewTx(k, c.exec.Signer(), &types.DynamicFeeTx{ChainID: big.NewInt(77), Nonce: c.nonces[k], To: &to,
		Data: data, Gas: min(uint64(100_000+200*len(data)+40*len(data)), 1<<24), GasFeeCap: big.NewInt(10), GasTipCap: big.NewInt(1)})
	if err != nil {
		t.Fatal(err)
	}
	c.nonces[k]++
	return tx
}

// build builds the next block from src, checks that another node accepts
// it, and makes it the head.
func (c *boundsChain) build(t *testing.T, src TxSource) *Result {
	t.Helper()
	h := chain.NewHeader(c.spec, c.head, common.Address{}, c.head.Time+1)
	st := c.st.Copy()
	res, err := c.exec.Build(h, st, src)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Rejected) > 0 {
		t.Fatalf("block %d rejected %d transactions, the first because %v", res.Block.NumberU64(), len(res.Rejected), res.Rejected[0].Err)
	}
	if _, err := c.exec.Apply(c.head, res.Block, c.st.Copy()); err != nil {
		t.Fatalf("another node refuses block %d: %v", res.Block.NumberU64(), err)
	}
	c.head, c.st = res.Block.Header(), st
	return res
}

// forge is a block of txs on the head that a proposer made whatever the
// bounds; its post-state fields are empty, as Apply refuses it before it
// gets to them.
func (c *boundsChain) forge(txs ...*types.Transaction) *types.Block {
	h := chain.NewHeader(c.spec, c.head, common.Address{}, c.head.Time+1)
	return types.NewBlock(h, &types.Body{Transactions: txs, Withdrawals: []*types.Withdrawal{}}, nil, trie.NewStackTrie(nil))
}

// enact passes a parameter in one block (the admin's organization is the
// only one); it is in force from the next block on.
func (c *boundsChain) enact(t *testing.T, name string, value uint64) {
	t.Helper()
	args, err := system.EncodeArgs(system.ActSetParameter, name, new(big.Int).SetUint64(value))
	if err != nil {
		t.Fatal(err)
	}
	propose, _ := system.Governance.Pack("propose", uint8(system.ActSetParameter), args, "")
	id := system.Read(c.st).ProposalCount() + 1
	vote, _ := system.Governance.Pack("vote", id, true)
	res := c.build(t, newPoolSource(c.exec.Signer(), c.sign(t, c.admin, system.GovernanceAddress, propose), c.sign(t, c.admin, system.GovernanceAddress, vote)))
	for i, r := range res.Receipts {
		if r.Status != types.ReceiptStatusSuccessful {
			t.Fatalf("setting %s: transaction %d failed", name, i)
		}
	}
}

// bigData is n non-zero bytes.
func bigData(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i%251) + 1
	}
	return b
}

// A burst of large transactions fills a block up to maxBlockBytes and no
// further: the rest wait in the pool for the next block, and the small
// transfers that came after the burst still fit the room left.
func TestBuildStopsAtMaxBlockBytes(t *testing.T) {
	const big, small = 40, 4
	c := newBoundsChain(t, big+small)
	data := bigData(120 << 10)
	var txs []*types.Transaction
	for _, k := range c.writers[:big] {
		txs = append(txs, c.sign(t, k, common.Address{9}, data))
	}
	for _, k := range c.writers[big:] {
		txs = append(txs, c.sign(t, k, common.Address{9}, nil))
	}
	src := newPoolSource(c.exec.Signer(), txs...)
	res := c.build(t, src)
	limit := uint64(system.DefaultMaxBlockBytes)
	size, n := res.Block.Size(), len(res.Block.Transactions())
	if size > limit {
		t.Fatalf("block of %d bytes, above maxBlockBytes %d", size, limit)
	}
	if room := limit - size; room > txs[0].Size()+system.BlockFramingBytes {
		t.Errorf("block of %d bytes leaves %d bytes, room for another large transaction", size, room)
	}
	left := src.Pending()
	if n+len(left) != len(txs) || n < small+1 || len(left) == 0 {
		t.Fatalf("%d transactions included, %d left pending, of %d", n, len(left), len(txs))
	}
	for _, tx := range left {
		if len(tx.Data()) == 0 {
			t.Errorf("a small transfer was left behind the burst")
		}
	}
	for _, tx := range txs[big:] {
		if !includes(res.Block, tx) {
			t.Errorf("small transfer %s not in the block", tx.Hash().TerminalString())
		}
	}
	t.Logf("block of %d bytes: %d transactions, %d left pending", size, n, len(left))
	// The next blocks take what waited, each within the bound.
	for blocks := 0; len(left) > 0; blocks++ {
		if blocks > len(txs) {
			t.Fatalf("%d transactions never went in", len(left))
		}
		src := newPoolSource(c.exec.Signer(), left...)
		next := c.build(t, src)
		if got := len(next.Block.Transactions()); got == 0 || next.Block.Size() > limit {
			t.Fatalf("block %d: %d transactions, %d bytes (bound %d), of the %d that waited", next.Block.NumberU64(), got, next.Block.Size(), limit, len(left))
		}
		left = src.Pending()
	}
}

func includes(b *types.Block, tx *types.Transaction) bool {
	for _, x := range b.Transactions() {
		if x.Hash() == tx.Hash() {
			return true
		}
	}
	return false
}

// A block above maxBlockBytes is invalid, whoever built it; the bound
// follows the parameter as governance sets it.
func TestApplyRefusesOversizedBlock(t *testing.T) {
	c := newBoundsChain(t, 40)
	data := bigData(120 << 10)
	var txs []*types.Transaction
	for _, k := range c.writers {
		txs = append(txs, c.sign(t, k, common.Address{9}, data))
	}
	b := c.forge(txs...)
	if b.Size() <= system.DefaultMaxBlockBytes {
		t.Fatalf("forged block of %d bytes is not above the bound", b.Size())
	}
	_, err := c.exec.Apply(c.head, b, c.st.Copy())
	want := fmt.Sprintf("%d bytes encoded, above maxBlockBytes %d", b.Size(), system.DefaultMaxBlockBytes)
	if err == nil || !strings.Contains(err.Error(), "invalid block") || !strings.Contains(err.Error(), want) {
		t.Fatalf("apply: err = %v, want an invalid block: %q", err, want)
	}

	// Governance lowers the bound: a block of three such transactions,
	// valid before, is invalid after.
	c.enact(t, system.ParamMaxBlockBytes, 256<<10)
	three := c.forge(txs[:3]...)
	_, err = c.exec.Apply(c.head, three, c.st.Copy())
	if err == nil || !strings.Contains(err.Error(), "above maxBlockBytes 262144") {
		t.Fatalf("apply under the lowered bound: err = %v, want above maxBlockBytes 262144", err)
	}
	src := newPoolSource(c.exec.Signer(), txs[:3]...)
	res := c.build(t, src)
	if n := len(res.Block.Transactions()); n != 2 || len(src.Pending()) != 1 {
		t.Fatalf("under the lowered bound the block took %d of 3 transactions of %d bytes", n, txs[0].Size())
	}
}

// A transaction larger than any block can be (the pool's maxTxBytes comes
// from the genesis, the block's bound from governance) is rejected, with
// the bound named, rather than kept for a block that never comes.
func TestBuildRejectsTransactionThatFitsNoBlock(t *testing.T) {
	c := newBoundsChain(t, 1)
	c.enact(t, system.ParamMaxBlockBytes, 256<<10)
	// Zero bytes are the cheapest calldata: 256 KB fit the gas limit.
	tx := c.sign(t, c.writers[0], common.Address{9}, make([]byte, 256<<10))
	h := chain.NewHeader(c.spec, c.head, common.Address{}, c.head.Time+1)
	c.spec.MaxTxBytes = 1 << 20 // the pool's bound; the block's is lower
	res, err := c.exec.Build(h, c.st.Copy(), newPoolSource(c.exec.Signer(), tx))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Rejected) != 1 || !strings.Contains(res.Rejected[0].Err.Error(), "fits no block: maxBlockBytes 262144") {
		t.Fatalf("rejected %v, want the transaction rejected as fitting no block", res.Rejected)
	}
}

// floodRoots are n distinct CA certificates in PEM.
func floodRoots(t *testing.T, n int) string {
	t.Helper()
	var b strings.Builder
	for i := 0; i < n; i++ {
		ca, err := identity.NewRootCA(fmt.Sprintf("flood%d", i), identity.CAOptions{})
		if err != nil {
			t.Fatal(err)
		}
		b.Write(identity.EncodeCertsPEM(ca.Cert))
	}
	return b.String()
}

// proposals signs n proposals by the admin to add an organization with
// the given roots and a full memo: each stores several KB.
func (c *boundsChain) proposals(t *testing.T, n int, roots string) []*types.Transaction {
	t.Helper()
	var txs []*types.Transaction
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("new%d-%d", c.nonces[c.admin], i)
		args, err := system.EncodeArgs(system.ActAddOrganization, name, roots, uint8(system.TierWrite), uint64(1),
			[]common.Address{common.BigToAddress(big.NewInt(int64(1000 + c.nonces[c.admin])))}, []common.Address{}, [][32]byte{}, []common.Address{}, []byte{})
		if err != nil {
			t.Fatal(err)
		}
		data, _ := system.Governance.Pack("propose", uint8(system.ActAddOrganization), args, strings.Repeat("m", 1024))
		txs = append(txs, c.sign(t, c.admin, system.GovernanceAddress, data))
	}
	return txs
}

// A burst of proposals is taken up to the block's governance budget of
// storage written; the rest wait for later blocks, and the transfers that
// came after the burst are in the first block.
func TestGovernanceBytesBudgetInBuild(t *testing.T) {
	c := newBoundsChain(t, 4)
	props := c.proposals(t, 20, floodRoots(t, 8))
	var transfers []*types.Transaction
	for _, k := range c.writers {
		transfers = append(transfers, c.sign(t, k, common.Address{9}, nil))
	}
	src := newPoolSource(c.exec.Signer(), append(append([]*types.Transaction(nil), props...), transfers...)...)
	res := c.build(t, src)
	var taken int
	for i, r := range res.Receipts {
		if r.Status != types.ReceiptStatusSuccessful {
			t.Fatalf("transaction %d failed", i)
		}
		if callsSystem(res.Block.Transactions()[i]) {
			taken++
		}
	}
	for _, tx := range transfers {
		if !includes(res.Block, tx) {
			t.Errorf("transfer %s waits behind the proposals", tx.Hash().TerminalString())
		}
	}
	if taken == 0 || taken == len(props) {
		t.Fatalf("%d of %d proposals taken: the budget did not bound the block", taken, len(props))
	}
	if left := src.Pending(); len(left) != len(props)-taken {
		t.Fatalf("%d transactions left pending, want the %d proposals not taken", len(left), len(props)-taken)
	}
	written := system.Read(c.st).ProposalCount()
	t.Logf("block 1 took %d of %d proposals of %d bytes each (%d proposals stored)", taken, len(props), props[0].Size(), written)
	// Later blocks take the rest, a budget's worth each.
	rest := props[taken:]
	for blocks := 0; len(rest) > 0; blocks++ {
		if blocks > len(props) {
			t.Fatal("the proposals left never went in")
		}
		src := newPoolSource(c.exec.Signer(), rest...)
		res := c.build(t, src)
		if len(res.Block.Transactions()) == 0 {
			t.Fatalf("block %d took none of the %d proposals that wait", res.Block.NumberU64(), len(rest))
		}
		rest = src.Pending()
	}
}

// A block over the governance budget is invalid: more system-contract
// storage written than maxBlockGovBytes (beyond its first such
// transaction), or more system calls than maxBlockGovTxs.
func TestGovernanceBudgetInApply(t *testing.T) {
	c := newBoundsChain(t, 0)
	props := c.proposals(t, 20, floodRoots(t, 8))
	_, err := c.exec.Apply(c.head, c.forge(props...), c.st.Copy())
	if err == nil || !strings.Contains(err.Error(), "invalid block") || !strings.Contains(err.Error(), fmt.Sprintf("above maxBlockGovBytes %d", system.DefaultMaxBlockGovBytes)) {
		t.Fatalf("apply a block of %d proposals: err = %v, want invalid: above maxBlockGovBytes", len(props), err)
	}

	// Votes for a proposal that does not exist revert and write nothing;
	// only their number bounds them. (The proposals above were never in a
	// block: the votes take their nonces.)
	c.nonces[c.admin] = 0
	vote, _ := system.Governance.Pack("vote", uint64(999), true)
	var votes []*types.Transaction
	for i := 0; i <= system.DefaultMaxBlockGovTxs; i++ {
		votes = append(votes, c.sign(t, c.admin, system.GovernanceAddress, vote))
	}
	_, err = c.exec.Apply(c.head, c.forge(votes...), c.st.Copy())
	want := fmt.Sprintf("call %d of a system contract, above maxBlockGovTxs %d", system.DefaultMaxBlockGovTxs+1, system.DefaultMaxBlockGovTxs)
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("apply a block of %d system calls: err = %v, want %q", len(votes), err, want)
	}
	// Build takes the bound's worth; the others wait.
	src := newPoolSource(c.exec.Signer(), votes...)
	res := c.build(t, src)
	if n := len(res.Block.Transactions()); n != system.DefaultMaxBlockGovTxs || len(src.Pending()) != 1 {
		t.Fatalf("block took %d system calls of %d, want %d", n, len(votes), system.DefaultMaxBlockGovTxs)
	}
}

// The first transaction of a block that writes governance state is taken
// whatever it writes, so that a budget set below one proposal's storage
// delays proposals but never shuts governance out.
func TestGovernanceBudgetTakesTheFirstWriter(t *testing.T) {
	c := newBoundsChain(t, 0)
	c.enact(t, system.ParamMaxBlockGovBytes, 1<<10)
	props := c.proposals(t, 3, floodRoots(t, 2))
	for i := range props {
		src := newPoolSource(c.exec.Signer(), props[i:]...)
		res := c.build(t, src)
		if n := len(res.Block.Transactions()); n != 1 || res.Receipts[0].Status != types.ReceiptStatusSuccessful {
			t.Fatalf("block %d took %d proposals, want the first of those waiting", res.Block.NumberU64(), n)
		}
	}
}
