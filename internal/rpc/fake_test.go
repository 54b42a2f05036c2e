package rpc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core"
	"github.com/ethereum/go-ethereum/core/state"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/event"
	gethrpc "github.com/ethereum/go-ethereum/rpc"
	"github.com/ethereum/go-ethereum/trie"
	"github.com/holiman/uint256"

	"github.com/charter-ledger/charter/internal/chain"
	"github.com/charter-ledger/charter/internal/events"
	"github.com/charter-ledger/charter/internal/execution"
	"github.com/charter-ledger/charter/internal/system"
	"github.com/charter-ledger/charter/internal/txpool"
)

// Contracts of the fake chain's genesis.
var (
	// returnAddr returns the 32-byte word 42.
	returnAddr = common.HexToAddress("0x00000000000000000000000000000000000c0de1")
	// revertAddr reverts with Error("nope").
	revertAddr = common.HexToAddress("0x00000000000000000000000000000000000c0de2")
	// loopAddr loops until its gas is gone.
	loopAddr = common.HexToAddress("0x00000000000000000000000000000000000c0de3")
)

// revertData is the ABI encoding of Error("nope").
func revertData() []byte {
	str, _ := abi.NewType("string", "", nil)
	packed, err := abi.Arguments{{Type: str}}.Pack("nope")
	if err != nil {
		panic(err)
	}
	return append([]byte{0x08, 0xc3, 0x79, 0xa0}, packed...)
}

// codeReturning returns code that copies data (after itself) into memory
// and ends with op (RETURN 0xf3 or REVERT 0xfd).
func codeReturning(data []byte, op byte) []byte {
	const prefix = 12
	n := byte(len(data))
	code := []byte{0x60, n, 0x60, prefix, 0x60, 0x00, 0x39, 0x60, n, 0x60, 0x00, op}
	return append(code, data...)
}

var (
	devOnce  sync.Once
	devAccts []chain.DevAccount
)

func testAccounts(t testing.TB) []chain.DevAccount {
	devOnce.Do(func() {
		var err error
		if devAccts, err = chain.DevAccounts(4); err != nil {
			panic(err)
		}
	})
	return devAccts
}

// fakeBackend is an in-memory chain: blocks, receipts and a pool the test
// fills by hand, state in an in-memory trie database, and go-ethereum's EVM
// (through the execution package, which holds no state) for calls.
type fakeBackend struct {
	spec   *chain.Spec
	sdb    state.Database
	exec   *execution.Executor
	signer types.Signer
	dev    []chain.DevAccount

	chainFeed event.Feed
	txFeed    event.Feed

	mu        sync.Mutex
	blocks    []*types.Block
	receipts  []types.Receipts
	txIndex   map[common.Hash][2]int
	finalized *types.Header
	pool      []*types.Transaction
	sendErr   error // SendTx answers this when set
	sendNoop  bool  // SendTx takes every transaction unchecked and keeps none (benchmarks)
	stateErr  error // StateAt answers this when set
	callHook  func(ctx context.Context) error
}

func newFake(t testing.TB) *fakeBackend {
	t.Helper()
	return newFakeWith(t, func(*chain.Spec) {})
}

// newFakeWith is newFake on a development spec that edit changes first.
func newFakeWith(t testing.TB, edit func(*chain.Spec)) *fakeBackend {
	t.Helper()
	spec, err := chain.DevSpec(1337, 1000)
	if err != nil {
		t.Fatal(err)
	}
	edit(spec)
	spec.Alloc[returnAddr] = types.Account{Code: codeReturning(common.LeftPadBytes([]byte{42}, 32), 0xf3), Balance: new(big.Int)}
	spec.Alloc[revertAddr] = types.Account{Code: codeReturning(revertData(), 0xfd), Balance: new(big.Int)}
	spec.Alloc[loopAddr] = types.Account{Code: []byte{0x5b, 0x60, 0x00, 0x56}, Balance: new(big.Int)} // JUMPDEST PUSH1 0 JUMP
	f := &fakeBackend{spec: spec, sdb: state.NewDatabaseForTesting(), txIndex: map[common.Hash][2]int{},
		signer: types.LatestSignerForChainID(spec.Config.ChainID)}
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

// addBlock appends a block holding txs, each with a successful receipt
// carrying the given logs (logs[i] for txs[i]; addresses and topics only),
// and publishes it.
func (f *fakeBackend) addBlock(txs []*types.Transaction, logs [][]*types.Log) *types.Block {
	f.mu.Lock()
	parent := f.blocks[len(f.blocks)-1].Header()
	h := chain.NewHeader(f.spec, parent, common.Address{0xc0}, parent.Time+1)
	h.Root = parent.Root
	receipts := make(types.Receipts, len(txs))
	var gas uint64
	for i, tx := range txs {
		gas += 21_000
		r := &types.Receipt{Type: tx.Type(), Status: types.ReceiptStatusSuccessful, CumulativeGasUsed: gas, GasUsed: 21_000,
			TxHash: tx.Hash(), EffectiveGasPrice: big.NewInt(1)}
		if i < len(logs) {
			r.Logs = logs[i]
		}
		r.Bloom = types.CreateBloom(r)
		receipts[i] = r
	}
	h.GasUsed = gas
	blk := types.NewBlock(h, &types.Body{Transactions: txs, Withdrawals: []*types.Withdrawal{}}, receipts, trie.NewStackTrie(nil))
	logIndex := uint(0)
	var all []*types.Log
	for i, r := range receipts {
		r.BlockHash, r.BlockNumber, r.TransactionIndex = blk.Hash(), blk.Number(), uint(i)
		for _, l := range r.Logs {
			l.BlockNumber, l.BlockHash, l.TxHash, l.TxIndex, l.Index = blk.NumberU64(), blk.Hash(), r.TxHash, uint(i), logIndex
			logIndex++
			all = append(all, l)
		}
		f.txIndex[r.TxHash] = [2]int{len(f.blocks), i}
	}
	f.blocks = append(f.blocks, blk)
	f.receipts = append(f.receipts, receipts)
	f.mu.Unlock()
	f.chainFeed.Send(events.ChainEvent{Block: blk, Receipts: receipts, Logs: all})
	return blk
}

// seal moves the pool's transactions into a new block.
func (f *fakeBackend) seal() *types.Block {
	f.mu.Lock()
	txs := f.pool
	f.pool = nil
	f.mu.Unlock()
	return f.addBlock(txs, nil)
}

func (f *fakeBackend) setFinalized(n uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.finalized = f.blocks[n].Header()
}

func (f *fakeBackend) ChainSpec() *chain.Spec { return f.spec }

func (f *fakeBackend) CurrentHeader() *types.Header {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.blocks[len(f.blocks)-1].Header()
}

func (f *fakeBackend) FinalizedHeader() *types.Header {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.finalized
}

func (f *fakeBackend) HeaderByNumber(n uint64) *types.Header {
	if b := f.BlockByNumber(n); b != nil {
		return b.Header()
	}
	return nil
}

func (f *fakeBackend) BlockByNumber(n uint64) *types.Block {
	f.mu.Lock()
	defer f.mu.Unlock()
	if n >= uint64(len(f.blocks)) {
		return nil
	}
	return f.blocks[n]
}

func (f *fakeBackend) BlockByHash(hash common.Hash) *types.Block {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, b := range f.blocks {
		if b.Hash() == hash {
			return b
		}
	}
	return nil
}

func (f *fakeBackend) GetReceipts(n uint64) (types.Receipts, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if n >= uint64(len(f.receipts)) {
		return nil, fmt.Errorf("no block %d", n)
	}
	return f.receipts[n], nil
}

func (f *fakeBackend) GetTransaction(hash common.Hash) (uint64, int, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	at, ok := f.txIndex[hash]
	return uint64(at[0]), at[1], ok
}

func (f *fakeBackend) StateAt(root common.Hash) (*state.StateDB, error) {
	f.mu.Lock()
	err := f.stateErr
	f.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return state.New(root, f.sdb)
}

func (f *fakeBackend) SendTx(tx *types.Transaction) error {
	if f.sendNoop {
		return nil
	}
	f.mu.Lock()
	if f.sendErr != nil {
		defer f.mu.Unlock()
		return f.sendErr
	}
	if _, err := types.Sender(f.signer, tx); err != nil {
		f.mu.Unlock()
		return fmt.Errorf("invalid sender: %v", err)
	}
	f.pool = append(f.pool, tx)
	f.mu.Unlock()
	f.txFeed.Send(txpool.NewTxsEvent{Txs: []*types.Transaction{tx}})
	return nil
}

func (f *fakeBackend) PoolNonce(addr common.Address) uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	var n uint64
	for _, tx := range f.pool {
		if from, _ := types.Sender(f.signer, tx); from == addr && tx.Nonce() >= n {
			n = tx.Nonce() + 1
		}
	}
	return n
}

func (f *fakeBackend) PoolTransaction(hash common.Hash) *types.Transaction {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, tx := range f.pool {
		if tx.Hash() == hash {
			return tx
		}
	}
	return nil
}

func (f *fakeBackend) PoolStats() (int, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.pool), 0
}

func (f *fakeBackend) PoolContent() (map[common.Address][]*types.Transaction, map[common.Address][]*types.Transaction) {
	f.mu.Lock()
	defer f.mu.Unlock()
	pending := map[common.Address][]*types.Transaction{}
	for _, tx := range f.pool {
		from, _ := types.Sender(f.signer, tx)
		pending[from] = append(pending[from], tx)
	}
	return pending, map[common.Address][]*types.Transaction{}
}

func (f *fakeBackend) Call(ctx context.Context, h *types.Header, st *state.StateDB, msg *core.Message) (*core.ExecutionResult, error) {
	if f.callHook != nil {
		if err := f.callHook(ctx); err != nil {
			return nil, err
		}
	}
	return f.exec.Call(ctx, h, st, msg)
}

func (f *fakeBackend) EstimateGas(ctx context.Context, h *types.Header, st *state.StateDB, msg *core.Message, gasCap uint64) (uint64, *core.ExecutionResult, error) {
	gas, res, err := f.exec.EstimateGas(ctx, h, st, msg, gasCap)
	if errors.Is(err, execution.ErrGasCapReached) {
		err = fmt.Errorf("%w (%d)", ErrGasCapReached, gasCap)
	}
	return gas, res, err
}

func (f *fakeBackend) SubscribeChainEvent(ch chan<- events.ChainEvent) event.Subscription {
	return f.chainFeed.Subscribe(ch)
}

func (f *fakeBackend) SubscribeNewTxsEvent(ch chan<- txpool.NewTxsEvent) event.Subscription {
	return f.txFeed.Subscribe(ch)
}

func (f *fakeBackend) DevAccounts() []chain.DevAccount { return f.dev }

var _ Backend = (*fakeBackend)(nil)

// testServer is a Server over a fake, serving on 127.0.0.1.
type testServer struct {
	*Server
	fake *fakeBackend
	addr string
	http *gethrpc.Client
}

// serve starts a server over f with cfg (zero fields: defaults).
func serve(t testing.TB, f *fakeBackend, cfg Config) *testServer {
	t.Helper()
	srv, err := NewServer(f, cfg, func() int { return 3 }, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	c, err := gethrpc.Dial("http://" + ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Close()
		srv.Stop()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return &testServer{Server: srv, fake: f, addr: ln.Addr().String(), http: c}
}

// ws dials a WebSocket client, closed at the end of the test.
func (ts *testServer) ws(t testing.TB) *gethrpc.Client {
	t.Helper()
	c, err := gethrpc.Dial("ws://" + ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// rpcError asserts that err is a JSON-RPC error with code and a message
// containing want.
func rpcError(t testing.TB, err error, code int, want string) {
	t.Helper()
	var e gethrpc.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T), want JSON-RPC error %d %q", err, err, code, want)
	}
	if e.ErrorCode() != code || !containsFold(err.Error(), want) {
		t.Fatalf("error %d %q, want %d containing %q", e.ErrorCode(), err.Error(), code, want)
	}
}

func containsFold(s, sub string) bool {
	return strings.Contains(strings.ToLower(s), strings.ToLower(sub))
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, d)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// signedTransfer signs a transfer from the i-th test account.
func signedTransfer(t testing.TB, i int, nonce uint64) *types.Transaction {
	t.Helper()
	acct := testAccounts(t)[i]
	tx, err := types.SignNewTx(acct.Key, types.LatestSignerForChainID(big.NewInt(1337)), &types.DynamicFeeTx{
		ChainID: big.NewInt(1337), Nonce: nonce, Gas: 21_000, GasFeeCap: big.NewInt(2), GasTipCap: big.NewInt(1),
		To: &common.Address{0xaa}, Value: big.NewInt(1)})
	if err != nil {
		t.Fatal(err)
	}
	return tx
}

// HeaderByHash and BodyKept: a fake holds every block it has whole.
func (f *fakeBackend) HeaderByHash(hash common.Hash) *types.Header {
	if b := f.BlockByHash(hash); b != nil {
		return b.Header()
	}
	return nil
}
func (f *fakeBackend) BodyKept(uint64) error { return nil }
