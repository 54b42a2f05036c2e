package gateway

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"sync"
	"testing"

	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core"
	"github.com/ethereum/go-ethereum/core/state"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/event"
	"github.com/ethereum/go-ethereum/trie"
	"github.com/holiman/uint256"

	"github.com/charter-ledger/charter/internal/auth"
	"github.com/charter-ledger/charter/internal/chain"
	"github.com/charter-ledger/charter/internal/events"
	"github.com/charter-ledger/charter/internal/execution"
	"github.com/charter-ledger/charter/internal/rpc"
	"github.com/charter-ledger/charter/internal/system"
	"github.com/charter-ledger/charter/internal/txpool"
)

// Contracts of the fake chain's genesis.
var (
	// echoAddr returns its calldata after the selector: a function whose
	// outputs are its inputs returns its arguments.
	echoAddr = common.HexToAddress("0x00000000000000000000000000000000000EC40a")
	// revertAddr reverts with Error("nope").
	revertAddr = common.HexToAddress("0x00000000000000000000000000000000000c0de2")
	// customAddr reverts with the custom error Short(uint256,uint256).
	customAddr = common.HexToAddress("0x00000000000000000000000000000000000c0de3")
	// returnAddr returns returnData, whatever it is asked.
	returnAddr = common.HexToAddress("0x00000000000000000000000000000000000c0de4")
)

// echoCode: PUSH1 4 CALLDATASIZE SUB DUP1 PUSH1 4 PUSH1 0 CALLDATACOPY
// PUSH1 0 RETURN.
var echoCode = []byte{0x60, 0x04, 0x36, 0x03, 0x80, 0x60, 0x04, 0x60, 0x00, 0x37, 0x60, 0x00, 0xf3}

// codeReturning is code that copies data (after itself) into memory and
// ends with op (RETURN 0xf3 or REVERT 0xfd); data is at most 255 bytes.
func codeReturning(data []byte, op byte) []byte {
	const prefix = 12
	n := byte(len(data))
	code := []byte{0x60, n, 0x60, prefix, 0x60, 0x00, 0x39, 0x60, n, 0x60, 0x00, op}
	return append(code, data...)
}

// errorData is the ABI encoding of Error("nope").
func errorData() []byte {
	str, _ := abi.NewType("string", "", nil)
	packed, err := abi.Arguments{{Type: str}}.Pack("nope")
	if err != nil {
		panic(err)
	}
	return append([]byte{0x08, 0xc3, 0x79, 0xa0}, packed...)
}

// shortData is the encoding of the custom error Short(7, 9).
func shortData() []byte {
	u, _ := abi.NewType("uint256", "", nil)
	packed, err := abi.Arguments{{Type: u}, {Type: u}}.Pack(big.NewInt(7), big.NewInt(9))
	if err != nil {
		panic(err)
	}
	return append(crypto.Keccak256([]byte("Short(uint256,uint256)"))[:4], packed...)
}

// returnData is what returnAddr returns: a uint256[] whose two items...
// are the word 1 and the word 2 (offset 32, length 2).
var returnData = common.FromHex("0x" +
	"0000000000000000000000000000000000000000000000000000000000000020" +
	"0000000000000000000000000000000000000000000000000000000000000002" +
	"0000000000000000000000000000000000000000000000000000000000000001" +
	"0000000000000000000000000000000000000000000000000000000000000002")

// The fake chain's organizations and accounts.
const (
	devOrg  = chain.DevOrg // the development accounts, admins
	bankOrg = "bank"       // one writer account, weight 2
)

var bankWriter = common.HexToAddress("0x000000000000000000000000000000000000bA01")

// bankNode is a validator of the bank.
var bankNode = common.HexToAddress("0x000000000000000000000000000000000000b0de")

// fakeChain is an in-memory chain: blocks, receipts and a pool the test
// fills, state in an in-memory trie database, and go-ethereum's EVM
// (through the execution package) for calls.
type fakeChain struct {
	spec   *chain.Spec
	sdb    state.Database
	exec   *execution.Executor
	signer types.Signer
	dev    []chain.DevAccount

	mu        sync.Mutex
	blocks    []*types.Block
	receipts  []types.Receipts
	txIndex   map[common.Hash][2]int
	finalized *types.Header
	pool      []*types.Transaction
	sendErr   error // SendTx answers this when set
	sent      int   // SendTx calls
	// bodiesFrom, when above 0, makes the blocks 1..bodiesFrom-1 pruned
	// (an observer's --history.bodies): headers only.
	bodiesFrom uint64
}

var _ rpc.Backend = (*fakeChain)(nil)

func newFake(t testing.TB) *fakeChain {
	t.Helper()
	spec, err := chain.DevSpec(1337, 1000)
	if err != nil {
		t.Fatal(err)
	}
	spec.Alloc[echoAddr] = types.Account{Code: echoCode, Balance: new(big.Int)}
	spec.Alloc[revertAddr] = types.Account{Code: codeReturning(errorData(), 0xfd), Balance: new(big.Int)}
	spec.Alloc[customAddr] = types.Account{Code: codeReturning(shortData(), 0xfd), Balance: new(big.Int)}
	spec.Alloc[returnAddr] = types.Account{Code: codeReturning(returnData, 0xf3), Balance: new(big.Int)}
	spec.Organizations = append(spec.Organizations, chain.Organization{Name: bankOrg, Tier: chain.TierWrite, Weight: 2})
	spec.Governance.Accounts = append(spec.Governance.Accounts, system.GenesisAccount{Address: bankWriter, Org: bankOrg, Roles: []string{"read", "write"}})
	spec.Governance.MaxOpenProposals = 64
	dev, err := chain.DevAccounts(4)
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeChain{spec: spec, sdb: state.NewDatabaseForTesting(), txIndex: map[common.Hash][2]int{},
		signer: types.LatestSignerForChainID(spec.Config.ChainID), dev: dev}
	f.exec = execution.New(spec, f)
	st, err := state.New(types.EmptyRootHash, f.sdb)
	if err != nil {
		t.Fatal(err)
	}
	for addr, acct := range spec.Alloc {
		if acct.Balance != nil {
			b, _ := uint256.FromBig(acct.Balance)
			st.SetBalance(addr, b, 0)
		}
		st.SetCode(addr, acct.Code, 0)
	}
	g, err := spec.SystemGenesis()
	if err != nil {
		t.Fatal(err)
	}
	g.Nodes = append(g.Nodes, system.Node{ID: bankNode, Org: bankOrg, Validator: true})
	g.Validators = append(g.Validators, bankNode)
	system.Seed(st, g)
	root, err := st.Commit(spec.Config.Rules(common.Big0, true, 0), 0)
	if err != nil {
		t.Fatal(err)
	}
	genesis := types.NewBlock(spec.GenesisHeader(root), &types.Body{Withdrawals: []*types.Withdrawal{}}, nil, trie.NewStackTrie(nil))
	f.blocks = []*types.Block{genesis}
	f.receipts = []types.Receipts{{}}
	return f
}

// addBlock appends a block holding txs, each with a receipt (logs[i] for
// txs[i]), on the state edit leaves (nil: the parent's).
func (f *fakeChain) addBlock(t testing.TB, txs []*types.Transaction, logs [][]*types.Log, edit func(st *state.StateDB, height, time uint64)) *types.Block {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	parent := f.blocks[len(f.blocks)-1].Header()
	h := chain.NewHeader(f.spec, parent, common.Address{0xc0}, parent.Time+1)
	h.Root = parent.Root
	if edit != nil {
		st, err := state.New(parent.Root, f.sdb)
		if err != nil {
			t.Fatal(err)
		}
		edit(st, h.Number.Uint64(), h.Time)
		if h.Root, err = st.Commit(f.spec.Config.Rules(h.Number, true, h.Time), h.Number.Uint64()); err != nil {
			t.Fatal(err)
		}
	}
	receipts := make(types.Receipts, len(txs))
	var gas uint64
	for i, tx := range txs {
		gas += 21_000
		r := &types.Receipt{Type: tx.Type(), Status: types.ReceiptStatusSuccessful, CumulativeGasUsed: gas, GasUsed: 21_000,
			TxHash: tx.Hash(), EffectiveGasPrice: big.NewInt(1_000_000_000)}
		if i < len(logs) {
			r.Logs = logs[i]
		}
		if tx.To() == nil {
			from, _ := types.Sender(f.signer, tx)
			r.ContractAddress = crypto.CreateAddress(from, tx.Nonce())
		}
		r.Bloom = types.CreateBloom(r)
		receipts[i] = r
	}
	h.GasUsed = gas
	blk := types.NewBlock(h, &types.Body{Transactions: txs, Withdrawals: []*types.Withdrawal{}}, receipts, trie.NewStackTrie(nil))
	logIndex := uint(0)
	for i, r := range receipts {
		r.BlockHash, r.BlockNumber, r.TransactionIndex = blk.Hash(), blk.Number(), uint(i)
		for _, l := range r.Logs {
			l.BlockNumber, l.BlockHash, l.TxHash, l.TxIndex, l.Index = blk.NumberU64(), blk.Hash(), r.TxHash, uint(i), logIndex
			logIndex++
		}
		f.txIndex[r.TxHash] = [2]int{len(f.blocks), i}
	}
	f.blocks = append(f.blocks, blk)
	f.receipts = append(f.receipts, receipts)
	return blk
}

// seal moves the pool's transactions into a new block.
func (f *fakeChain) seal(t testing.TB) *types.Block {
	f.mu.Lock()
	txs := f.pool
	f.pool = nil
	f.mu.Unlock()
	return f.addBlock(t, txs, nil, nil)
}

func (f *fakeChain) setFinalized(n uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.finalized = f.blocks[n].Header()
}

func (f *fakeChain) ChainSpec() *chain.Spec { return f.spec }

func (f *fakeChain) CurrentHeader() *types.Header {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.blocks[len(f.blocks)-1].Header()
}

func (f *fakeChain) FinalizedHeader() *types.Header {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.finalized
}

func (f *fakeChain) HeaderByNumber(n uint64) *types.Header {
	if b := f.BlockByNumber(n); b != nil {
		return b.Header()
	}
	return nil
}

func (f *fakeChain) BlockByNumber(n uint64) *types.Block {
	f.mu.Lock()
	defer f.mu.Unlock()
	if n >= uint64(len(f.blocks)) || f.prunedLocked(n) {
		return nil
	}
	return f.blocks[n]
}

func (f *fakeChain) BlockByHash(hash common.Hash) *types.Block {
	f.mu.Lock()
	defer f.mu.Unlock()
	for n, b := range f.blocks {
		if b.Hash() == hash && !f.prunedLocked(uint64(n)) {
			return b
		}
	}
	return nil
}

func (f *fakeChain) GetReceipts(n uint64) (types.Receipts, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if n >= uint64(len(f.receipts)) {
		return nil, fmt.Errorf("no block %d", n)
	}
	return f.receipts[n], nil
}

func (f *fakeChain) GetTransaction(hash common.Hash) (uint64, int, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	at, found := f.txIndex[hash]
	return uint64(at[0]), at[1], found
}

func (f *fakeChain) StateAt(root common.Hash) (*state.StateDB, error) { return state.New(root, f.sdb) }

func (f *fakeChain) SendTx(tx *types.Transaction) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sent++
	if f.sendErr != nil {
		return f.sendErr
	}
	if _, err := types.Sender(f.signer, tx); err != nil {
		return fmt.Errorf("%w: %v", txpool.ErrInvalidSender, err)
	}
	for _, p := range f.pool {
		if p.Hash() == tx.Hash() {
			return txpool.ErrAlreadyKnown
		}
	}
	f.pool = append(f.pool, tx)
	return nil
}

func (f *fakeChain) sends() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.sent
}

func (f *fakeChain) setSendErr(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sendErr = err
}

func (f *fakeChain) PoolNonce(addr common.Address) uint64 { return 0 }

func (f *fakeChain) PoolTransaction(hash common.Hash) *types.Transaction {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, tx := range f.pool {
		if tx.Hash() == hash {
			return tx
		}
	}
	return nil
}

func (f *fakeChain) PoolStats() (int, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.pool), 0
}

func (f *fakeChain) PoolContent() (map[common.Address][]*types.Transaction, map[common.Address][]*types.Transaction) {
	return nil, nil
}

func (f *fakeChain) Call(ctx context.Context, h *types.Header, st *state.StateDB, msg *core.Message) (*core.ExecutionResult, error) {
	return f.exec.Call(ctx, h, st, msg)
}

func (f *fakeChain) EstimateGas(ctx context.Context, h *types.Header, st *state.StateDB, msg *core.Message, gasCap uint64) (uint64, *core.ExecutionResult, error) {
	return f.exec.EstimateGas(ctx, h, st, msg, gasCap)
}

func (f *fakeChain) SubscribeChainEvent(ch chan<- events.ChainEvent) event.Subscription {
	return event.NewSubscription(func(quit <-chan struct{}) error { <-quit; return nil })
}

func (f *fakeChain) SubscribeNewTxsEvent(ch chan<- txpool.NewTxsEvent) event.Subscription {
	return event.NewSubscription(func(quit <-chan struct{}) error { <-quit; return nil })
}

func (f *fakeChain) DevAccounts() []chain.DevAccount { return f.dev }

// transfer signs a transfer of 1 wei from dev account i with nonce.
func (f *fakeChain) transfer(t testing.TB, i int, nonce uint64) *types.Transaction {
	t.Helper()
	tx, err := types.SignNewTx(f.dev[i].Key, f.signer, &types.DynamicFeeTx{
		ChainID: f.spec.Config.ChainID, Nonce: nonce, Gas: 21_000, GasFeeCap: big.NewInt(2_000_000_000),
		GasTipCap: big.NewInt(1), To: &common.Address{0xaa}, Value: big.NewInt(1)})
	if err != nil {
		t.Fatal(err)
	}
	return tx
}

// propose adds a block in which dev account 0 proposes to set parameter
// name to value.
func (f *fakeChain) propose(t testing.TB, name string, value int64) {
	t.Helper()
	args, err := system.EncodeArgs(system.ActSetParameter, name, big.NewInt(value))
	if err != nil {
		t.Fatal(err)
	}
	f.addBlock(t, nil, nil, func(st *state.StateDB, height, time uint64) {
		if _, err := system.Open(st, height, time).Propose(f.dev[0].Address, system.ActSetParameter, args, fmt.Sprintf("%s to %d", name, value)); err != nil {
			t.Fatalf("propose: %v", err)
		}
	})
}

// fakeSender is a Sender that records what it is asked; block, when
// set, holds each Send until it is closed.
type fakeSender struct {
	mu    sync.Mutex
	reqs  []TxRequest
	keys  []string
	err   error
	block chan struct{}
	began chan struct{} // receives once per Send that began
}

func (s *fakeSender) Send(ctx context.Context, keyID string, caller *auth.Identity, tx TxRequest) (common.Hash, error) {
	if s.began != nil {
		s.began <- struct{}{}
	}
	if s.block != nil {
		select {
		case <-s.block:
		case <-ctx.Done():
			return common.Hash{}, ctx.Err()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return common.Hash{}, s.err
	}
	if keyID == "missing" {
		return common.Hash{}, fmt.Errorf("key %q: %w", keyID, ErrUnknownKey)
	}
	if keyID == "foreign" {
		return common.Hash{}, fmt.Errorf("key %q belongs to another organization: %w", keyID, ErrKeyDenied)
	}
	s.reqs = append(s.reqs, tx)
	s.keys = append(s.keys, keyID)
	return crypto.Keccak256Hash([]byte(fmt.Sprintf("%s/%d", keyID, len(s.reqs)))), nil
}

func (s *fakeSender) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.reqs)
}

// registry is a ContractABIs of fixed names.
type registry map[string]struct {
	addr common.Address
	abi  string
}

func (r registry) Lookup(name string) (common.Address, []byte, bool) {
	e, found := r[name]
	return e.addr, []byte(e.abi), found
}

var errBoom = errors.New("boom")

// HeaderByHash finds every block's header, pruned or not.
func (f *fakeChain) HeaderByHash(hash common.Hash) *types.Header {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, b := range f.blocks {
		if b.Hash() == hash {
			return b.Header()
		}
	}
	return nil
}

// BodyKept says that the blocks below bodiesFrom are pruned.
func (f *fakeChain) BodyKept(n uint64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.prunedLocked(n) {
		return fmt.Errorf("the body and receipts of block %d are not kept: this node keeps those of the last 16 blocks (--history.bodies), from block %d", n, f.bodiesFrom)
	}
	return nil
}

func (f *fakeChain) prunedLocked(n uint64) bool { return n > 0 && n < f.bodiesFrom }
