package blockchain

import (
	"crypto/ecdsa"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/params"

	"github.com/charter-ledger/charter/internal/chain"
	"github.com/charter-ledger/charter/internal/execution"
	"github.com/charter-ledger/charter/internal/ledger"
	"github.com/charter-ledger/charter/internal/system"
	"github.com/charter-ledger/charter/internal/txpool"
)

type testChain struct {
	*Chain
	ledger *ledger.Ledger
	pool   *txpool.Pool
	signer types.Signer
}

var (
	testKey, _ = crypto.ToECDSA(crypto.Keccak256([]byte("charter blockchain test key")))
	testAddr   = crypto.PubkeyToAddress(testKey.PublicKey)
	proposer   = common.Address{0x99}
)

func testSpec(t *testing.T) *chain.Spec {
	spec, err := chain.DevSpec(1337, 1000)
	if err != nil {
		t.Fatal(err)
	}
	spec.Alloc[testAddr] = types.Account{Balance: new(big.Int).Mul(big.NewInt(100), big.NewInt(params.Ether))}
	return spec
}

func newTestChain(t *testing.T, spec *chain.Spec, opts ...execution.Options) *testChain {
	t.Helper()
	return newTestChainLedger(t, spec, ledger.Options{}, opts...)
}

func newTestChainLedger(t *testing.T, spec *chain.Spec, lopts ledger.Options, opts ...execution.Options) *testChain {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	l, err := ledger.Open(t.TempDir(), spec, lopts, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	exec := execution.New(spec, l)
	for _, o := range opts {
		exec = exec.WithOptions(o)
	}
	st, err := l.StateAt(l.Head().Root)
	if err != nil {
		t.Fatal(err)
	}
	pool := txpool.New(txpool.Config{
		ChainID: spec.Config.ChainID, MaxTxBytes: spec.MaxTxBytes, TxGasLimit: uint64(spec.TxGasLimit),
		BaseFee: spec.BaseFeeWei(), MinTip: spec.MinGasPriceWei(),
		Permit: func(st txpool.StateReader, from common.Address, tx *types.Transaction) error {
			return system.Read(st).CheckTx(from, tx.To())
		},
	}, exec.Signer(), st)
	c, err := New(Config{Spec: spec, Ledger: l, Exec: exec, Pool: pool, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	return &testChain{Chain: c, ledger: l, pool: pool, signer: exec.Signer()}
}

func (tc *testChain) transfer(t *testing.T, key *ecdsa.PrivateKey, nonce uint64) *types.Transaction {
	t.Helper()
	to := common.Address{0x42}
	tx := types.MustSignNewTx(key, tc.signer, &types.DynamicFeeTx{ChainID: big.NewInt(1337), Nonce: nonce, Gas: 21000,
		GasFeeCap: big.NewInt(params.GWei), GasTipCap: new(big.Int), To: &to, Value: big.NewInt(1)})
	if err := tc.pool.Add(tx); err != nil {
		t.Fatal(err)
	}
	return tx
}

// A commit hands its subscribers, in order, what it wrote: the receipts
// with their derived fields, the logs, the governance effects; and a
// subscriber's error comes back from CommitBlock after the others ran.
func TestCommitPublishesWhatItWrote(t *testing.T) {
	tc := newTestChain(t, testSpec(t))
	tx := tc.transfer(t, testKey, 0)
	b, err := tc.BuildBlock(tc.Head(), tc.Head().Time+1, proposer)
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Transactions()) != 1 {
		t.Fatalf("built a block of %d transactions", len(b.Transactions()))
	}
	var order []string
	var seen *Committed
	tc.Subscribe(func(c *Committed) error { order = append(order, "first"); seen = c; return nil })
	tc.Subscribe(func(*Committed) error { order = append(order, "second"); return errors.New("trust store full") })
	tc.Subscribe(func(*Committed) error { order = append(order, "third"); return nil })
	err = tc.CommitBlock(b, []byte("seal"))
	if err == nil || !strings.Contains(err.Error(), "trust store full") || !strings.Contains(err.Error(), "block 1") {
		t.Fatalf("subscriber error: %v", err)
	}
	if strings.Join(order, " ") != "first second third" {
		t.Fatalf("subscribers ran as %v", order)
	}
	if tc.Head().Hash() != b.Hash() {
		t.Fatal("the block is not the head after a subscriber's error")
	}
	if seen.Block.Hash() != b.Hash() || len(seen.Receipts) != 1 {
		t.Fatalf("published %+v", seen)
	}
	r := seen.Receipts[0]
	if r.TxHash != tx.Hash() || r.BlockHash != b.Hash() || r.BlockNumber.Uint64() != 1 || r.Status != types.ReceiptStatusSuccessful {
		t.Fatalf("receipt without its derived fields: %+v", r)
	}
	stored, err := tc.ledger.Receipts(1)
	if err != nil || stored[0].TxHash != r.TxHash || stored[0].CumulativeGasUsed != r.CumulativeGasUsed {
		t.Fatalf("the ledger holds other receipts: %v %v", stored, err)
	}
	if _, seal := tc.BlockByNumber(1); string(seal) != "seal" {
		t.Fatalf("seal %q", seal)
	}
	// A block that does not extend the head is refused, nothing published.
	order = nil
	if err := tc.CommitBlock(b, nil); err == nil || len(order) != 0 {
		t.Fatalf("second commit of block 1: %v, subscribers %v", err, order)
	}
}

// The execution cache: a child of a block built but not committed is
// built on that block's post-state, with the sender's next transactions
// (pastIncluded), and verified by another node that verified the parent;
// both commit in order.
func TestBuildOnUncommittedParent(t *testing.T) {
	spec := testSpec(t)
	a, b := newTestChain(t, spec), newTestChain(t, spec)
	a.transfer(t, testKey, 0)
	b1, err := a.BuildBlock(a.Head(), a.Head().Time+1, proposer)
	if err != nil {
		t.Fatal(err)
	}
	a.transfer(t, testKey, 1)
	b2, err := a.BuildBlock(b1.Header(), b1.Time()+1, proposer)
	if err != nil {
		t.Fatal(err)
	}
	if len(b2.Transactions()) != 1 || b2.Transactions()[0].Nonce() != 1 {
		t.Fatalf("block 2 on an uncommitted block 1: %d transactions", len(b2.Transactions()))
	}
	if err := b.VerifyBlock(b2); err == nil {
		t.Fatal("a block whose parent this node never executed verified")
	}
	for _, blk := range []*types.Block{b1, b2} {
		if err := b.VerifyBlock(blk); err != nil {
			t.Fatalf("verify block %d: %v", blk.NumberU64(), err)
		}
	}
	for _, c := range []*testChain{a, b} {
		for _, blk := range []*types.Block{b1, b2} {
			if err := c.CommitBlock(blk, nil); err != nil {
				t.Fatalf("commit block %d: %v", blk.NumberU64(), err)
			}
		}
	}
	if a.Head().Root != b.Head().Root || a.Head().Hash() != b2.Hash() {
		t.Fatal("the two nodes disagree after committing the same blocks")
	}
}

// A block whose header does not match its execution is refused by
// VerifyBlock and by CommitBlock.
func TestTamperedBlockRefused(t *testing.T) {
	spec := testSpec(t)
	a, b := newTestChain(t, spec), newTestChain(t, spec)
	a.transfer(t, testKey, 0)
	blk, err := a.BuildBlock(a.Head(), a.Head().Time+1, proposer)
	if err != nil {
		t.Fatal(err)
	}
	h := blk.Header()
	h.Root = common.Hash{1}
	bad := types.NewBlockWithHeader(h).WithBody(types.Body{Transactions: blk.Transactions()})
	if err := b.VerifyBlock(bad); !errors.Is(err, execution.ErrInvalidBlock) {
		t.Fatalf("verify a tampered root: %v", err)
	}
	if err := b.CommitBlock(bad, nil); err == nil || b.Head().Number.Uint64() != 0 {
		t.Fatalf("commit a tampered root: %v", err)
	}
}

// A node that verifies in parallel (the experimental option) agrees with
// the proposer, also on a block whose parent it executed and has not
// committed (the executor of that fork keeps the option), and refuses a
// tampered root.
func TestParallelVerify(t *testing.T) {
	spec := testSpec(t)
	a, b := newTestChain(t, spec), newTestChain(t, spec, execution.Options{Parallel: true, Workers: 2})
	if !b.cfg.Exec.Options().Parallel {
		t.Fatal("option not set")
	}
	a.transfer(t, testKey, 0)
	a.transfer(t, testKey, 1)
	b1, err := a.BuildBlock(a.Head(), a.Head().Time+1, proposer)
	if err != nil {
		t.Fatal(err)
	}
	a.transfer(t, testKey, 2)
	a.transfer(t, testKey, 3)
	b2, err := a.BuildBlock(b1.Header(), b1.Time()+1, proposer)
	if err != nil {
		t.Fatal(err)
	}
	if len(b1.Transactions()) != 2 || len(b2.Transactions()) != 2 {
		t.Fatalf("blocks of %d and %d transactions", len(b1.Transactions()), len(b2.Transactions()))
	}
	h := b2.Header()
	h.Root = common.Hash{1}
	bad := types.NewBlockWithHeader(h).WithBody(types.Body{Transactions: b2.Transactions()})
	for _, blk := range []*types.Block{b1, bad, b2} {
		err := b.VerifyBlock(blk)
		if blk == bad {
			if !errors.Is(err, execution.ErrInvalidBlock) {
				t.Fatalf("verify a tampered root: %v", err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("verify block %d: %v", blk.NumberU64(), err)
		}
	}
	for _, c := range []*testChain{a, b} {
		for _, blk := range []*types.Block{b1, b2} {
			if err := c.CommitBlock(blk, nil); err != nil {
				t.Fatalf("commit block %d: %v", blk.NumberU64(), err)
			}
		}
	}
	if a.Head().Root != b.Head().Root {
		t.Fatal("the two nodes disagree after committing the same blocks")
	}
}

// Due follows governance: nothing due on a fresh chain.
func TestDue(t *testing.T) {
	tc := newTestChain(t, testSpec(t))
	if tc.Due() {
		t.Fatal("governance work due on a fresh chain")
	}
}

// The trie prefetcher runs only from Config.PrefetchStateBytes of state
// on disk, and changes no block: a chain that prefetches on every block
// and one that does not (a small state under the default) build and
// verify the same blocks.
func TestPrefetchThreshold(t *testing.T) {
	build := func(threshold int64) (*testChain, []common.Hash) {
		tc := newTestChain(t, testSpec(t))
		if threshold != 0 {
			tc.cfg.PrefetchStateBytes = threshold
		}
		var hashes []common.Hash
		for h := uint64(0); h < 3; h++ {
			for i := uint64(0); i < 4; i++ {
				tc.transfer(t, testKey, 4*h+i)
			}
			b, err := tc.BuildBlock(tc.Head(), tc.Head().Time+1, proposer)
			if err != nil {
				t.Fatal(err)
			}
			if err := tc.VerifyBlock(b); err != nil {
				t.Fatal(err)
			}
			if err := tc.CommitBlock(b, nil); err != nil {
				t.Fatal(err)
			}
			hashes = append(hashes, b.Hash())
		}
		return tc, hashes
	}
	on, withPrefetch := build(-1)
	off, without := build(0)
	if !on.prefetches() || off.prefetches() {
		t.Fatalf("prefetches: %v when told to always, %v under the default on a small state", on.prefetches(), off.prefetches())
	}
	if !slices.Equal(withPrefetch, without) {
		t.Fatalf("blocks with the prefetcher %v, without %v", withPrefetch, without)
	}
}

// The ledger's periodic write of the head's state to disk merges the
// layers of every earlier height into the disk copy; a state of such a
// height still in use then reads zero values. The chain runs the write
// after the commit's subscribers (the pool has moved to the new head) and
// executes again a block executed on a state opened before it.
func TestStateWriteKeepsStatesInUse(t *testing.T) {
	spec := testSpec(t)
	keys := make([]*ecdsa.PrivateKey, 40)
	for i := range keys {
		keys[i], _ = crypto.ToECDSA(crypto.Keccak256([]byte{byte(i), 'f', 'l', 'u', 's', 'h'}))
		spec.Alloc[crypto.PubkeyToAddress(keys[i].PublicKey)] = types.Account{Balance: big.NewInt(params.Ether)}
	}
	tc := newTestChainLedger(t, spec, ledger.Options{StateHistory: 16, StateFlushHeights: 1})
	ref := newTestChain(t, spec)
	next := 0
	fresh := func() *ecdsa.PrivateKey { next++; return keys[next-1] }

	// A submission that arrives while a block commits reads the pool's
	// state of the previous head (the node's own subscriber moves the
	// pool after the others).
	var submit *ecdsa.PrivateKey
	var added error
	tc.Subscribe(func(*Committed) error {
		if submit != nil {
			added, submit = tc.pool.Add(tc.transfer1(submit, 0)), nil
		}
		return nil
	})
	tc.Subscribe(func(c *Committed) error {
		st, err := tc.ledger.StateAt(c.Block.Root())
		if err != nil {
			return err
		}
		tc.pool.Reset(st, nil)
		return nil
	})
	var blocks []*types.Block
	commit := func(b *types.Block) {
		t.Helper()
		if err := tc.CommitBlock(b, nil); err != nil {
			t.Fatalf("commit block %d: %v", b.NumberU64(), err)
		}
		if added != nil {
			t.Fatalf("a transfer of a funded sender submitted during the commit of block %d: %v", b.NumberU64(), added)
		}
		blocks = append(blocks, b)
	}
	// Each block is built on its uncommitted parent, with a transfer of a
	// sender no earlier block read, then the parent commits (and the
	// ledger writes its state to disk every so often).
	if err := tc.pool.Add(tc.transfer1(fresh(), 0)); err != nil {
		t.Fatal(err)
	}
	parent, err := tc.BuildBlock(tc.Head(), tc.Head().Time+1, proposer)
	if err != nil {
		t.Fatal(err)
	}
	start := tc.ledger.Flushes()
	for step := 0; step < 16; step++ {
		tx := tc.transfer1(fresh(), 0)
		if err := tc.pool.Add(tx); err != nil {
			t.Fatal(err)
		}
		child, err := tc.BuildBlock(parent.Header(), parent.Time()+1, proposer)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.ContainsFunc(child.Transactions(), func(in *types.Transaction) bool { return in.Hash() == tx.Hash() }) {
			t.Fatalf("block %d, built on the uncommitted block %d after %d writes of the state: the transfer of a funded sender is not in it",
				child.NumberU64(), parent.NumberU64(), tc.ledger.Flushes()-start)
		}
		submit = fresh()
		commit(parent)
		parent = child
	}
	commit(parent)
	if n := tc.ledger.Flushes() - start; n < 4 {
		t.Fatalf("the ledger wrote the state to disk %d times in 17 heights; the test tests little", n)
	}
	for _, b := range blocks {
		if err := ref.CommitBlock(b, nil); err != nil {
			t.Fatalf("another node commits block %d: %v", b.NumberU64(), err)
		}
	}
	if ref.Head().Root != tc.Head().Root {
		t.Fatal("another node reaches another state")
	}
	st, err := tc.ledger.StateAt(tc.Head().Root)
	if err != nil {
		t.Fatal(err)
	}
	included := 0
	for _, k := range keys[:next] {
		included += int(st.GetNonce(crypto.PubkeyToAddress(k.PublicKey)))
	}
	if pending, _ := tc.pool.Stats(); included+pending != next {
		t.Fatalf("%d of %d senders' transfers included, %d pending", included, next, pending)
	}
}

// transfer1 is transfer without adding to the pool.
func (tc *testChain) transfer1(key *ecdsa.PrivateKey, nonce uint64) *types.Transaction {
	to := common.Address{0x42}
	return types.MustSignNewTx(key, tc.signer, &types.DynamicFeeTx{ChainID: big.NewInt(1337), Nonce: nonce, Gas: 21000,
		GasFeeCap: big.NewInt(params.GWei), GasTipCap: new(big.Int), To: &to, Value: big.NewInt(1)})
}

// A block is executed once however its verifications and its commit
// meet: verifications running while it is committed share one execution
// with the commit, and a verification after the commit executes nothing.
func TestOneExecutionPerBlock(t *testing.T) {
	spec := testSpec(t)
	a, b := newTestChain(t, spec), newTestChain(t, spec)
	for n := range uint64(50) {
		a.transfer(t, testKey, n)
	}
	blk, err := a.BuildBlock(a.Head(), a.Head().Time+1, proposer)
	if err != nil || len(blk.Transactions()) != 50 {
		t.Fatalf("built %v: %v", blk, err)
	}
	var execs atomic.Int32
	b.cfg.Timings.Execution = func(time.Duration) { execs.Add(1) }
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := b.VerifyBlock(blk); err != nil {
				t.Error(err)
			}
		}()
	}
	if err := b.CommitBlock(blk, nil); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if n := execs.Load(); n != 1 {
		t.Fatalf("block executed %d times by four verifications and a commit", n)
	}
	if err := b.VerifyBlock(blk); err != nil {
		t.Fatal(err)
	}
	if n := execs.Load(); n != 1 {
		t.Fatalf("a verification of the committed block executed it again (%d executions)", n)
	}
}
