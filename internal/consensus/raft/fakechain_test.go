package raft

import (
	"bytes"
	crand "crypto/rand"
	"errors"
	"fmt"
	"io"
	"math/big"
	"math/rand"
	"runtime"
	"strconv"
	"sync"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/charter-ledger/charter/internal/consensus"
)

// fakeChain is a deterministic Host for simulations: real *types.Block
// values whose transactions are unsigned legacy transactions (unique
// hashes, no EVM). Its "execution" is a hash chain: a block's state root
// is keccak(parent root, tx hashes), and a transaction already in the
// block's ancestry is invalid (a nonce reused), so a block committed twice
// or built on a stale parent is caught by VerifyBlock or CommitBlock.
//
// The committed chain survives a crash (CommitBlock is durable); the pool
// and the cache of executed blocks do not.
type fakeChain struct {
	id     consensus.NodeID
	maxTxs int
	// badRoot makes this node's execution disagree (a determinism bug).
	badRoot bool

	blocks []*types.Block
	seals  [][]byte
	txAt   map[common.Hash]uint64 // committed tx -> height

	pool   []*types.Transaction
	inPool map[common.Hash]bool
	exec   map[common.Hash]*types.Block // built or verified, not necessarily committed

	onCommit func(node consensus.NodeID, b *types.Block)
}

var fakeGenesis = types.NewBlockWithHeader(&types.Header{
	Number:     new(big.Int),
	Difficulty: new(big.Int),
	Time:       1_700_000_000,
	GasLimit:   30_000_000,
	Root:       common.HexToHash("0x5eed"),
})

func newFakeChain(id consensus.NodeID, maxTxs int, onCommit func(consensus.NodeID, *types.Block)) *fakeChain {
	return &fakeChain{
		id:       id,
		maxTxs:   maxTxs,
		blocks:   []*types.Block{fakeGenesis},
		seals:    [][]byte{nil},
		txAt:     make(map[common.Hash]uint64),
		inPool:   make(map[common.Hash]bool),
		exec:     make(map[common.Hash]*types.Block),
		onCommit: onCommit,
	}
}

func fakeTx(n uint64) *types.Transaction {
	return types.NewTx(&types.LegacyTx{Nonce: n, Gas: 21000, GasPrice: new(big.Int), Value: new(big.Int)})
}

func (f *fakeChain) root(parentRoot common.Hash, txs []*types.Transaction) common.Hash {
	parts := [][]byte{parentRoot[:]}
	for _, tx := range txs {
		h := tx.Hash()
		parts = append(parts, h[:])
	}
	if f.badRoot {
		parts = append(parts, []byte("bug"))
	}
	return crypto.Keccak256Hash(parts...)
}

func txsHash(txs []*types.Transaction) common.Hash {
	var parts [][]byte
	for _, tx := range txs {
		h := tx.Hash()
		parts = append(parts, h[:])
	}
	return crypto.Keccak256Hash(parts...)
}

// crash drops what a process loses on power loss.
func (f *fakeChain) crash() {
	f.pool, f.inPool = nil, make(map[common.Hash]bool)
	f.exec = make(map[common.Hash]*types.Block)
}

// addTx admits a transaction to the pool; false if known or committed.
func (f *fakeChain) addTx(tx *types.Transaction) bool {
	h := tx.Hash()
	if f.inPool[h] {
		return false
	}
	if _, done := f.txAt[h]; done {
		return false
	}
	f.inPool[h] = true
	f.pool = append(f.pool, tx)
	return true
}

// state returns the block whose execution result is known, by hash.
func (f *fakeChain) state(h common.Hash) *types.Block {
	if b := f.exec[h]; b != nil {
		return b
	}
	if head := f.blocks[len(f.blocks)-1]; head.Hash() == h {
		return head
	}
	return nil
}

// ancestry returns the txs in the uncommitted blocks from b back to the
// committed chain; false if b does not lead there.
func (f *fakeChain) ancestry(b *types.Block) (map[common.Hash]bool, bool) {
	seen := make(map[common.Hash]bool)
	for {
		n := b.NumberU64()
		if n < uint64(len(f.blocks)) && f.blocks[n].Hash() == b.Hash() {
			return seen, true
		}
		for _, tx := range b.Transactions() {
			seen[tx.Hash()] = true
		}
		p := f.exec[b.ParentHash()]
		if p == nil {
			if head := f.blocks[len(f.blocks)-1]; head.Hash() == b.ParentHash() {
				return seen, true
			}
			return nil, false
		}
		b = p
	}
}

func (f *fakeChain) BuildBlock(parent *types.Header, ts uint64, proposer consensus.NodeID) (*types.Block, error) {
	pb := f.state(parent.Hash())
	if pb == nil {
		return nil, fmt.Errorf("build: unknown parent %d %s", parent.Number, parent.Hash())
	}
	seen, ok := f.ancestry(pb)
	if !ok {
		return nil, fmt.Errorf("build: parent %d not on the chain", parent.Number)
	}
	var txs []*types.Transaction
	for _, tx := range f.pool {
		if len(txs) == f.maxTxs {
			break
		}
		h := tx.Hash()
		if _, done := f.txAt[h]; done || seen[h] {
			continue
		}
		txs = append(txs, tx)
	}
	h := &types.Header{
		ParentHash: parent.Hash(),
		Number:     new(big.Int).Add(parent.Number, common.Big1),
		Difficulty: new(big.Int),
		Time:       max(ts, parent.Time),
		GasLimit:   parent.GasLimit,
		Coinbase:   proposer,
		Root:       f.root(parent.Root, txs),
		TxHash:     txsHash(txs),
	}
	b := types.NewBlockWithHeader(h).WithBody(types.Body{Transactions: txs})
	f.exec[b.Hash()] = b
	return b, nil
}

func (f *fakeChain) VerifyBlock(b *types.Block) error {
	if f.exec[b.Hash()] != nil {
		return nil // cached result (our own build or an earlier verify)
	}
	pb := f.state(b.ParentHash())
	if pb == nil {
		return fmt.Errorf("verify %d: unknown parent %s", b.NumberU64(), b.ParentHash())
	}
	if b.NumberU64() != pb.NumberU64()+1 {
		return fmt.Errorf("verify: number %d on parent %d", b.NumberU64(), pb.NumberU64())
	}
	seen, ok := f.ancestry(pb)
	if !ok {
		return fmt.Errorf("verify %d: parent not on the chain", b.NumberU64())
	}
	inBlock := make(map[common.Hash]bool)
	for _, tx := range b.Transactions() {
		h := tx.Hash()
		if _, done := f.txAt[h]; done || seen[h] || inBlock[h] {
			return fmt.Errorf("verify %d: tx %s already executed", b.NumberU64(), h)
		}
		inBlock[h] = true
	}
	if b.TxHash() != txsHash(b.Transactions()) {
		return fmt.Errorf("verify %d: tx hash mismatch", b.NumberU64())
	}
	if want := f.root(pb.Root(), b.Transactions()); b.Root() != want {
		return fmt.Errorf("verify %d: state root %s, execution gives %s", b.NumberU64(), b.Root(), want)
	}
	f.exec[b.Hash()] = b
	return nil
}

func (f *fakeChain) CommitBlock(b *types.Block, seal []byte) error {
	head := f.blocks[len(f.blocks)-1]
	if b.ParentHash() != head.Hash() || b.NumberU64() != head.NumberU64()+1 {
		return fmt.Errorf("commit %d: does not extend head %d", b.NumberU64(), head.NumberU64())
	}
	if f.exec[b.Hash()] == nil {
		return fmt.Errorf("commit %d: block was never executed", b.NumberU64())
	}
	f.blocks = append(f.blocks, b)
	f.seals = append(f.seals, append([]byte(nil), seal...))
	for _, tx := range b.Transactions() {
		f.txAt[tx.Hash()] = b.NumberU64()
	}
	if len(b.Transactions()) > 0 {
		kept := f.pool[:0]
		for _, tx := range f.pool {
			if _, done := f.txAt[tx.Hash()]; done {
				delete(f.inPool, tx.Hash())
				continue
			}
			kept = append(kept, tx)
		}
		f.pool = kept
	}
	// Forget executed blocks at or below the new head.
	for h, x := range f.exec {
		if x.NumberU64() <= b.NumberU64() {
			delete(f.exec, h)
		}
	}
	if f.onCommit != nil {
		f.onCommit(f.id, b)
	}
	return nil
}

func (f *fakeChain) Head() *types.Header { return f.blocks[len(f.blocks)-1].Header() }

func (f *fakeChain) BlockByNumber(n uint64) (*types.Block, []byte) {
	if n >= uint64(len(f.blocks)) {
		return nil, nil
	}
	return f.blocks[n], f.seals[n]
}

func (f *fakeChain) height() uint64 { return uint64(len(f.blocks) - 1) }

// seededRand replaces crypto/rand.Reader during simulations. etcd raft
// draws its randomized election timeout from crypto/rand (raft.go,
// lockedRand), which would make a seed unreplayable. Reads from a
// goroutine bound to a seed come from that seed's math/rand source; other
// goroutines get real randomness. Simulations of different seeds run on
// different goroutines (simnet.RunSeeds workers), each bound while it runs
// its seed.
type seededRand struct {
	mu       sync.Mutex
	bound    map[uint64]*rand.Rand
	fallback io.Reader
}

var simRand = &seededRand{bound: make(map[uint64]*rand.Rand)}

// installSeededRand swaps crypto/rand.Reader; the returned func restores it.
// Call it before starting worker goroutines.
func installSeededRand() (restore func()) {
	simRand.fallback = crand.Reader
	crand.Reader = simRand
	return func() { crand.Reader = simRand.fallback }
}

func (s *seededRand) bind(seed int64) (unbind func()) {
	id := goid()
	s.mu.Lock()
	s.bound[id] = rand.New(rand.NewSource(seed ^ 0x5eed))
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		delete(s.bound, id)
		s.mu.Unlock()
	}
}

func (s *seededRand) Read(p []byte) (int, error) {
	s.mu.Lock()
	r := s.bound[goid()]
	s.mu.Unlock()
	if r == nil {
		return s.fallback.Read(p)
	}
	return r.Read(p)
}

func goid() uint64 {
	var buf [64]byte
	n := runtime.Stack(buf[:], false)
	s := bytes.TrimPrefix(buf[:n], []byte("goroutine "))
	i := bytes.IndexByte(s, ' ')
	if i < 0 {
		panic(errors.New("cannot parse goroutine id"))
	}
	id, err := strconv.ParseUint(string(s[:i]), 10, 64)
	if err != nil {
		panic(err)
	}
	return id
}
