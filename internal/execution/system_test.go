package execution

import (
	"crypto/ecdsa"
	"math/big"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/state"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/params"
	"github.com/holiman/uint256"

	"github.com/charter-ledger/charter/internal/chain"
	"github.com/charter-ledger/charter/internal/system"
)

// listSource is a TxSource over a fixed list: a proposer that includes
// whatever it is given.
type listSource struct{ txs []*types.Transaction }

func (s *listSource) Peek() *types.Transaction {
	if len(s.txs) == 0 {
		return nil
	}
	return s.txs[0]
}
func (s *listSource) Shift() { s.txs = s.txs[1:] }
func (s *listSource) Skip()  { s.txs = s.txs[1:] }

type noHeaders struct{}

func (noHeaders) HeaderByNumber(uint64) *types.Header { return nil }

type testChain struct {
	spec    *chain.Spec
	exec    *Executor
	genesis *types.Header
	state   *state.StateDB
}

// newTestChain makes a one-organization solo chain whose governance
// section lists the given accounts, each funded.
func newTestChain(t *testing.T, accounts []system.GenesisAccount) *testChain {
	return newTestChainWith(t, &system.GenesisSpec{Accounts: accounts}, nil)
}

// newTestChainWith is newTestChain for the governance section gs; setup,
// if set, changes the genesis state (code, balances, marks) before its
// root is taken.
func newTestChainWith(t *testing.T, gs *system.GenesisSpec, setup func(st *state.StateDB)) *testChain {
	t.Helper()
	accounts := gs.Accounts
	spec := &chain.Spec{
		Config:        &params.ChainConfig{ChainID: big.NewInt(77)},
		Alloc:         types.GenesisAlloc{},
		Organizations: []chain.Organization{{Name: "bank", Tier: chain.TierValidate}},
		Governance:    gs,
	}
	raw, err := spec.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if spec, err = chain.ParseSpec(raw); err != nil {
		t.Fatal(err)
	}
	st, err := state.New(types.EmptyRootHash, state.NewDatabaseForTesting())
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range accounts {
		st.SetBalance(a.Address, uint256.NewInt(1e18), 0)
	}
	g, err := spec.SystemGenesis()
	if err != nil {
		t.Fatal(err)
	}
	system.Seed(st, g)
	if setup != nil {
		setup(st)
	}
	root := st.IntermediateRoot(spec.Config.Rules(common.Big0, true, 0))
	return &testChain{spec: spec, exec: New(spec, noHeaders{}), genesis: spec.GenesisHeader(root), state: st}
}

func (c *testChain) tx(t *testing.T, key *ecdsa.PrivateKey, nonce uint64, to common.Address, data []byte) *types.Transaction {
	t.Helper()
	value := big.NewInt(1)
	if system.IsSystem(to) {
		value = new(big.Int)
	}
	tx, err := types.SignNewTx(key, c.exec.Signer(), &types.DynamicFeeTx{ChainID: big.NewInt(77), Nonce: nonce, To: &to,
		Value: value, Data: data, Gas: 1_000_000, GasFeeCap: big.NewInt(10), GasTipCap: big.NewInt(1)})
	if err != nil {
		t.Fatal(err)
	}
	return tx
}

func key(t *testing.T) (*ecdsa.PrivateKey, common.Address) {
	k, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k, crypto.PubkeyToAddress(k.PublicKey)
}

// TestBlockValidationEnforcesRoles: a block whose proposer included a
// transfer by an account without `write` is invalid on a node that
// checks it, whoever built it.
func TestBlockValidationEnforcesRoles(t *testing.T) {
	k, addr := key(t)
	// The proposer's view: the account may write.
	lenient := newTestChain(t, []system.GenesisAccount{{Address: addr, Org: "bank", Roles: []string{"write"}}})
	header := chain.NewHeader(lenient.spec, lenient.genesis, common.Address{}, 1)
	res, err := lenient.exec.Build(header, lenient.state.Copy(), &listSource{[]*types.Transaction{lenient.tx(t, k, 0, common.Address{9}, nil)}})
	if err != nil || len(res.Block.Transactions()) != 1 {
		t.Fatalf("build: %v, %d transactions", err, len(res.Block.Transactions()))
	}
	// The same genesis but for the account's roles: it has only read.
	strict := newTestChain(t, []system.GenesisAccount{{Address: addr, Org: "bank", Roles: []string{"read"}}})
	_, err = strict.exec.Apply(lenient.genesis, res.Block, strict.state.Copy())
	if err == nil || !strings.Contains(err.Error(), "not permitted: account "+addr.Hex()+" lacks role write") {
		t.Fatalf("apply: err = %v, want an invalid block naming role write", err)
	}
	// Building on the strict state leaves the transaction out, with why.
	header = chain.NewHeader(strict.spec, strict.genesis, common.Address{}, 1)
	res, err = strict.exec.Build(header, strict.state.Copy(), &listSource{[]*types.Transaction{strict.tx(t, k, 0, common.Address{9}, nil)}})
	if err != nil || len(res.Block.Transactions()) != 0 || len(res.Rejected) != 1 || !strings.Contains(res.Rejected[0].Err.Error(), "lacks role write") {
		t.Fatalf("build on strict: %v, rejected %+v", err, res.Rejected)
	}
	// A creation needs deploy.
	creation, _ := types.SignNewTx(k, strict.exec.Signer(), &types.DynamicFeeTx{ChainID: big.NewInt(77), Gas: 100_000, GasFeeCap: big.NewInt(10), Data: []byte{0}})
	res, _ = lenient.exec.Build(chain.NewHeader(lenient.spec, lenient.genesis, common.Address{}, 1), lenient.state.Copy(), &listSource{[]*types.Transaction{creation}})
	if len(res.Rejected) != 1 || !strings.Contains(res.Rejected[0].Err.Error(), "lacks role deploy") {
		t.Fatalf("creation without deploy: rejected %+v", res.Rejected)
	}
}

// TestFrozenAccountCannotMoveFunds freezes an account by a proposal that
// passes in block 1 and executes at the start of block 2; its transfer is
// then left out of blocks and makes a block that carries it invalid.
func TestFrozenAccountCannotMoveFunds(t *testing.T) {
	ak, admin := key(t)
	uk, user := key(t)
	c := newTestChain(t, []system.GenesisAccount{
		{Address: admin, Org: "bank", Roles: []string{"admin"}},
		{Address: user, Org: "bank", Roles: []string{"write"}},
	})
	args, err := system.EncodeArgs(system.ActFreeze, user)
	if err != nil {
		t.Fatal(err)
	}
	propose, _ := system.Governance.Pack("propose", uint8(system.ActFreeze), args, "freeze")
	vote, _ := system.Governance.Pack("vote", uint64(1), true)
	st := c.state.Copy()
	h1 := chain.NewHeader(c.spec, c.genesis, common.Address{}, 1)
	res, err := c.exec.Build(h1, st, &listSource{[]*types.Transaction{
		c.tx(t, ak, 0, system.GovernanceAddress, propose), c.tx(t, ak, 1, system.GovernanceAddress, vote), c.tx(t, uk, 0, common.Address{9}, nil)}})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res.Receipts {
		if r.Status != 1 {
			t.Fatalf("block 1 transaction %d failed (rejected: %+v)", i, res.Rejected)
		}
	}
	if n := len(res.Receipts[1].Logs); n != 2 {
		t.Fatalf("vote emitted %d logs, want VoteCast and ProposalPassed", n)
	}
	// Block 1 verifies on another node.
	if _, err := c.exec.Apply(c.genesis, res.Block, c.state.Copy()); err != nil {
		t.Fatalf("apply block 1: %v", err)
	}
	h2 := chain.NewHeader(c.spec, res.Block.Header(), common.Address{}, 2)
	res2, err := c.exec.Build(h2, st, &listSource{[]*types.Transaction{c.tx(t, uk, 1, common.Address{9}, nil)}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res2.Block.Transactions()) != 0 || len(res2.Rejected) != 1 || !strings.Contains(res2.Rejected[0].Err.Error(), "is frozen") {
		t.Fatalf("frozen account's transfer: included %d, rejected %+v", len(res2.Block.Transactions()), res2.Rejected)
	}
	if !system.Read(st).Account(user).Frozen {
		t.Fatal("the account is not frozen after block 2 began")
	}
	// Usage of block 1 was metered for the organization.
	if u := system.Read(st).Usage("bank", 0); u.Txs != 3 || u.Gas == 0 || u.StateBytes == 0 {
		t.Fatalf("usage of bank: %+v, want 3 transactions with gas and state bytes", u)
	}
}
