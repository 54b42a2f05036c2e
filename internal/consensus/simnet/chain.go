package simnet

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/trie"

	"github.com/charter-ledger/charter/internal/consensus"
)

// GenesisTime is the timestamp of the simulated genesis (seconds).
const GenesisTime = 1_700_000_000

// Genesis is the block every simulated chain starts from.
var Genesis = types.NewBlockWithHeader(&types.Header{
	Number:     new(big.Int),
	Difficulty: new(big.Int),
	Time:       GenesisTime,
	GasLimit:   30_000_000,
	Root:       common.HexToHash("0x5eed"),
	TxHash:     types.EmptyTxsHash,
})

// Bounds of a Chain.
const (
	// maxExec bounds the executed, uncommitted blocks a chain keeps.
	maxExec = 4096
	// maxPool bounds a chain's pool.
	maxPool = 1 << 16
)

// invalidMark ends the Extra of a block every chain refuses (MarkInvalid).
var invalidMark = []byte("invalid!")

// Chain is the one fake chain of the simulations: a deterministic
// consensus.Chain and consensus.Pool over real blocks whose transactions
// are unsigned legacy transactions (unique hashes, no EVM). Its
// "execution" is a hash chain: a block's state root is keccak(parent root,
// its transaction hashes), and a transaction already in the block's
// ancestry is invalid (a nonce used twice). So a block committed twice,
// built on a stale parent or carrying a transaction twice is refused by
// VerifyBlock and CommitBlock, as the real chain manager refuses it.
//
// A Chain builds on its committed head and on blocks it built or verified
// and has not committed (an execution cache), as the real one does.
// CommitBlock is durable; the pool and the execution cache are lost by
// Crash. A Chain is not goroutine-safe: the simulator drives it.
type Chain struct {
	self consensus.NodeID
	salt []byte
	// MaxTxs bounds the transactions of a block it builds.
	MaxTxs int
	// BadRoot makes this node's execution disagree with everyone's (a
	// determinism bug): its roots differ, so it refuses others' blocks.
	BadRoot bool
	// MarkInvalid makes the blocks this node builds invalid for every
	// chain (a Byzantine proposer).
	MarkInvalid bool

	blocks []*types.Block
	seals  [][]byte
	txAt   map[common.Hash]uint64 // committed tx -> height

	pool   []*types.Transaction
	inPool map[common.Hash]bool
	exec   map[common.Hash]*types.Block // built or verified, not committed
	built  uint64                       // blocks built, for distinct Extra
}

var (
	_ consensus.Chain = (*Chain)(nil)
	_ consensus.Pool  = (*Chain)(nil)
)

// NewChain returns the chain of node self at genesis. salt makes the
// blocks it builds differ from other nodes' (twins share self).
func NewChain(self consensus.NodeID, salt []byte, maxTxs int) *Chain {
	return &Chain{
		self:   self,
		salt:   append([]byte(nil), salt...),
		MaxTxs: maxTxs,
		blocks: []*types.Block{Genesis},
		seals:  [][]byte{nil},
		txAt:   make(map[common.Hash]uint64),
		inPool: make(map[common.Hash]bool),
		exec:   make(map[common.Hash]*types.Block),
	}
}

// Tx is the simulated transaction number n (a unique hash).
func Tx(n uint64) *types.Transaction {
	return types.NewTx(&types.LegacyTx{Nonce: n, Gas: 21000, GasPrice: new(big.Int), Value: new(big.Int)})
}

// Root is the state root of a block with txs on a parent whose root is
// parentRoot; bad gives a node's wrong execution.
func Root(parentRoot common.Hash, txs []*types.Transaction, bad bool) common.Hash {
	parts := [][]byte{parentRoot[:]}
	for _, tx := range txs {
		h := tx.Hash()
		parts = append(parts, h[:])
	}
	if bad {
		parts = append(parts, []byte("bug"))
	}
	return crypto.Keccak256Hash(parts...)
}

// MakeBlock builds a valid block on parent (for Byzantine nodes that
// forge one): the root follows Root, extra tells it apart.
func MakeBlock(parent *types.Header, proposer consensus.NodeID, ts uint64, txs []*types.Transaction, extra []byte) *types.Block {
	return makeBlock(parent, proposer, ts, txs, extra, false)
}

func makeBlock(parent *types.Header, proposer consensus.NodeID, ts uint64, txs []*types.Transaction, extra []byte, bad bool) *types.Block {
	h := &types.Header{
		ParentHash: parent.Hash(),
		Number:     new(big.Int).Add(parent.Number, common.Big1),
		Difficulty: new(big.Int),
		Time:       max(ts, parent.Time),
		GasLimit:   parent.GasLimit,
		Coinbase:   proposer,
		Root:       Root(parent.Root, txs, bad),
		Extra:      extra,
	}
	return types.NewBlock(h, &types.Body{Transactions: txs}, nil, trie.NewStackTrie(nil))
}

// Crash drops what a process loses on power loss: the pool and the
// execution cache.
func (c *Chain) Crash() {
	c.pool, c.inPool = nil, make(map[common.Hash]bool)
	c.exec = make(map[common.Hash]*types.Block)
}

// Add admits a transaction to the pool; false if known, committed or the
// pool is full.
func (c *Chain) Add(tx *types.Transaction) bool {
	h := tx.Hash()
	if c.inPool[h] || len(c.pool) >= maxPool {
		return false
	}
	if _, done := c.txAt[h]; done {
		return false
	}
	c.inPool[h] = true
	c.pool = append(c.pool, tx)
	return true
}

// Height is the committed head's number.
func (c *Chain) Height() uint64 { return uint64(len(c.blocks) - 1) }

// Committed reports the height at which tx was committed.
func (c *Chain) Committed(tx common.Hash) (uint64, bool) {
	h, ok := c.txAt[tx]
	return h, ok
}

// PoolSize is the number of transactions waiting.
func (c *Chain) PoolSize() int { return len(c.pool) }

// state is the block, by hash, whose execution result is known: a block
// executed here or the committed head.
func (c *Chain) state(h common.Hash) *types.Block {
	if b := c.exec[h]; b != nil {
		return b
	}
	if head := c.blocks[len(c.blocks)-1]; head.Hash() == h {
		return head
	}
	return nil
}

// ancestry is the set of transactions in the uncommitted blocks from b
// back to the committed chain; false if b does not lead there.
func (c *Chain) ancestry(b *types.Block) (map[common.Hash]bool, bool) {
	seen := make(map[common.Hash]bool)
	for i := 0; i <= maxExec; i++ {
		n := b.NumberU64()
		if n < uint64(len(c.blocks)) && c.blocks[n].Hash() == b.Hash() {
			return seen, true
		}
		for _, tx := range b.Transactions() {
			seen[tx.Hash()] = true
		}
		p := c.exec[b.ParentHash()]
		if p == nil {
			if head := c.blocks[len(c.blocks)-1]; head.Hash() == b.ParentHash() {
				return seen, true
			}
			return nil, false
		}
		b = p
	}
	return nil, false
}

func (c *Chain) remember(b *types.Block) {
	if len(c.exec) < maxExec {
		c.exec[b.Hash()] = b
	}
}

// BuildBlock implements consensus.Chain.
func (c *Chain) BuildBlock(parent *types.Header, ts uint64, proposer consensus.NodeID) (*types.Block, error) {
	return c.BuildBlockMax(parent, ts, proposer, 0)
}

// BuildBlockMax implements consensus.MaxTxsBuilder: BuildBlock with at
// most maxTxs transactions (0: MaxTxs alone).
func (c *Chain) BuildBlockMax(parent *types.Header, ts uint64, proposer consensus.NodeID, maxTxs int) (*types.Block, error) {
	limit := c.MaxTxs
	if maxTxs > 0 && maxTxs < limit {
		limit = maxTxs
	}
	pb := c.state(parent.Hash())
	if pb == nil {
		return nil, fmt.Errorf("build: unknown parent %d %s", parent.Number, parent.Hash())
	}
	seen, ok := c.ancestry(pb)
	if !ok {
		return nil, fmt.Errorf("build: parent %d not on the chain", parent.Number)
	}
	var txs []*types.Transaction
	for _, tx := range c.pool {
		if len(txs) == limit {
			break
		}
		h := tx.Hash()
		if _, done := c.txAt[h]; done || seen[h] {
			continue
		}
		txs = append(txs, tx)
	}
	c.built++
	extra := binary.BigEndian.AppendUint64(append([]byte(nil), c.salt...), c.built)
	if c.MarkInvalid {
		extra = append(extra, invalidMark...)
	}
	b := makeBlock(pb.Header(), proposer, ts, txs, extra, c.BadRoot)
	c.remember(b)
	return b, nil
}

// VerifyBlock implements consensus.Chain.
func (c *Chain) VerifyBlock(b *types.Block) error {
	if c.exec[b.Hash()] != nil {
		return nil // cached: built or verified here
	}
	pb := c.state(b.ParentHash())
	if pb == nil {
		return fmt.Errorf("verify %d: unknown parent %s", b.NumberU64(), b.ParentHash())
	}
	if b.NumberU64() != pb.NumberU64()+1 {
		return fmt.Errorf("verify: number %d on parent %d", b.NumberU64(), pb.NumberU64())
	}
	if extra := b.Extra(); len(extra) >= len(invalidMark) && string(extra[len(extra)-len(invalidMark):]) == string(invalidMark) {
		return errors.New("verify: an invalid block")
	}
	if b.Time() < pb.Time() {
		return fmt.Errorf("verify %d: time goes back", b.NumberU64())
	}
	seen, ok := c.ancestry(pb)
	if !ok {
		return fmt.Errorf("verify %d: parent not on the chain", b.NumberU64())
	}
	inBlock := make(map[common.Hash]bool)
	for _, tx := range b.Transactions() {
		h := tx.Hash()
		if _, done := c.txAt[h]; done || seen[h] || inBlock[h] {
			return fmt.Errorf("verify %d: tx %s already executed", b.NumberU64(), h)
		}
		inBlock[h] = true
	}
	if want := Root(pb.Root(), b.Transactions(), c.BadRoot); b.Root() != want {
		return fmt.Errorf("verify %d: state root %s, execution gives %s", b.NumberU64(), b.Root(), want)
	}
	c.remember(b)
	return nil
}

// CommitBlock implements consensus.Chain: a block not executed here is
// verified first.
func (c *Chain) CommitBlock(b *types.Block, seal []byte) error {
	head := c.blocks[len(c.blocks)-1]
	if b.ParentHash() != head.Hash() || b.NumberU64() != head.NumberU64()+1 {
		return fmt.Errorf("commit %d: does not extend head %d", b.NumberU64(), head.NumberU64())
	}
	if err := c.VerifyBlock(b); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	c.blocks = append(c.blocks, b)
	c.seals = append(c.seals, append([]byte(nil), seal...))
	for _, tx := range b.Transactions() {
		c.txAt[tx.Hash()] = b.NumberU64()
	}
	if len(b.Transactions()) > 0 {
		kept := c.pool[:0]
		for _, tx := range c.pool {
			if _, done := c.txAt[tx.Hash()]; done {
				delete(c.inPool, tx.Hash())
				continue
			}
			kept = append(kept, tx)
		}
		c.pool = kept
	}
	for h, x := range c.exec {
		if x.NumberU64() <= b.NumberU64() {
			delete(c.exec, h)
		}
	}
	return nil
}

// Head implements consensus.Chain.
func (c *Chain) Head() *types.Header { return c.blocks[len(c.blocks)-1].Header() }

// BlockByNumber implements consensus.Chain.
func (c *Chain) BlockByNumber(n uint64) (*types.Block, []byte) {
	if n >= uint64(len(c.blocks)) {
		return nil, nil
	}
	return c.blocks[n], c.seals[n]
}

// Due implements consensus.Chain: simulated chains have no governance.
func (c *Chain) Due() bool { return false }

// Pending implements consensus.Pool.
func (c *Chain) Pending() bool { return len(c.pool) > 0 }

// PendingTxs implements consensus.Pool.
func (c *Chain) PendingTxs(max int) []*types.Transaction {
	return append([]*types.Transaction(nil), c.pool[:min(max, len(c.pool))]...)
}

// AddRemoteTxs implements consensus.Pool (the simulator admits forwarded
// transactions with Add, to notify the core of the new ones).
func (c *Chain) AddRemoteTxs(raw [][]byte) {
	for _, r := range raw {
		tx := new(types.Transaction)
		if tx.UnmarshalBinary(r) == nil {
			c.Add(tx)
		}
	}
}
