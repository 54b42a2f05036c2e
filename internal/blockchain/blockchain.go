// Package blockchain is Charter's chain manager: it builds, verifies and
// commits blocks for the consensus engine (it implements the chain part
// of consensus.Host), keeps the execution results of blocks executed and
// not yet committed (so that a block is executed once, and children of
// uncommitted blocks can be built and verified: poa, raft's pipeline),
// and publishes each commit, once it is durable, to its subscribers: the
// pool, governance's effects (validator changes, pool limits, the peer
// trust store), the event bus and the metrics are subscribers the node
// wires; the chain manager knows none of them.
//
// All methods are goroutine-safe.
package blockchain

import (
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/state"
	"github.com/ethereum/go-ethereum/core/types"
	"golang.org/x/sync/singleflight"

	"github.com/charter-ledger/charter/internal/chain"
	"github.com/charter-ledger/charter/internal/consensus"
	"github.com/charter-ledger/charter/internal/execution"
	"github.com/charter-ledger/charter/internal/ledger"
	"github.com/charter-ledger/charter/internal/system"
	"github.com/charter-ledger/charter/internal/txpool"
)

// Pool is what the chain manager needs of the transaction pool:
// *txpool.Pool satisfies it.
type Pool interface {
	// Pending returns up to limit executable transactions, by price and
	// nonce, for a block.
	Pending(limit int) *txpool.Source
	// Get returns a transaction the pool holds (its sender recovered), or
	// nil.
	Get(hash common.Hash) *types.Transaction
	// Reset moves the pool to a new head state, dropping drop.
	Reset(st txpool.StateReader, drop []*types.Transaction)
}

// Timings receives how long the chain's work took (the node's Prometheus
// histograms); nil fields are skipped.
type Timings struct {
	Build, Execution, Commit func(time.Duration)
}

// Config of a Chain.
type Config struct {
	Spec   *chain.Spec
	Ledger *ledger.Ledger
	Exec   *execution.Executor
	Pool   Pool
	// MaxBlockTxs bounds the transactions of a block BuildBlock makes;
	// 0: the gas limit alone.
	MaxBlockTxs int
	// PrefetchStateBytes is the size of the state's trie nodes on disk
	// (ledger.StateDiskBytes) from which blocks executed on a committed
	// parent run go-ethereum's trie prefetcher; 0:
	// DefaultPrefetchStateBytes; negative: every such block, whatever the
	// state's size.
	PrefetchStateBytes int64
	Timings            Timings
	Log                *slog.Logger
}

// DefaultPrefetchStateBytes is Config.PrefetchStateBytes's default. The
// prefetcher loads, on another goroutine, the trie nodes the state root
// will need; that pays when they must be read from a large store, and
// costs when they are at hand: on the 2-core machine of BENCHMARKS.md
// (2026-12-07) it took 10-14 % off the execution and commit of blocks of
// transfers on an empty state and with 100,000 accounts (10 MB of trie
// nodes, caches warm or cold), and added 29 % with 1,000,000 accounts
// and cold caches (97 MB).
const DefaultPrefetchStateBytes = 64 << 20

// Committed is what a commit wrote, handed to every subscriber.
type Committed struct {
	Block *types.Block
	// Receipts are the block's receipts as written, with every derived
	// field filled (block hash, indexes, log positions).
	Receipts types.Receipts
	Logs     []*types.Log
	// Effects are the governance decisions the block executed.
	Effects system.BlockEffects
	// Time is when the block became final on this node.
	Time time.Time
}

// Subscriber is told of every commit, in height order, after the block is
// durable: synchronously, on the committing goroutine (the engine's), in
// the order subscribers were added. It must be quick and must not commit;
// it may call the engine's SetValidators (governance does). An error is
// reported by CommitBlock (the engine halts: the node cannot go on
// consistently).
type Subscriber func(*Committed) error

// maxCachedResults bounds the executed, uncommitted blocks kept (their
// receipts and post-states). Beyond it results are not kept: a commit of
// such a block executes it again, and a child of it cannot be built.
const maxCachedResults = 1024

// Chain is the chain manager. Make it with New.
type Chain struct {
	cfg Config
	log *slog.Logger

	cacheMu sync.Mutex
	cache   map[common.Hash]*cached // executed, not yet committed
	// executing holds the executions of blocks under way, by hash: a
	// second caller for the same block (the commit of a block whose
	// verification is still running) waits for the first one's result
	// instead of executing the block again beside it.
	executing singleflight.Group
	stateMu   sync.Mutex // copying a cached post-state vs committing it

	commitMu sync.Mutex // one commit and its subscribers at a time
	subs     []Subscriber
	subsMu   sync.Mutex

	due atomic.Pointer[dueCache] // Due of the head
}

// cached is an executed block not yet committed, with the ledger's count
// of state writes (ledger.Ledger.Flushes) when it was executed: a later
// write makes its post-state unreadable, and it is executed again.
type cached struct {
	res     *execution.Result
	flushes uint64
}

// dueCache remembers Due's answer for one head.
type dueCache struct {
	head common.Hash
	due  bool
}

var _ consensus.Chain = (*Chain)(nil)

// New returns the chain manager over a ledger.
func New(cfg Config) (*Chain, error) {
	if cfg.Spec == nil || cfg.Ledger == nil || cfg.Exec == nil || cfg.Pool == nil {
		return nil, errors.New("blockchain: Config needs Spec, Ledger, Exec and Pool")
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.PrefetchStateBytes == 0 {
		cfg.PrefetchStateBytes = DefaultPrefetchStateBytes
	}
	cfg.Ledger.DeferFlushes() // Commit writes the head's state once the pool has moved to it
	return &Chain{cfg: cfg, log: cfg.Log, cache: make(map[common.Hash]*cached)}, nil
}

// SetMaxBlockTxs sets Config.MaxBlockTxs (the engine's bound, known once
// the engine is made); call it before the engine starts.
func (c *Chain) SetMaxBlockTxs(n int) { c.cfg.MaxBlockTxs = n }

// Subscribe adds a subscriber of every later commit (see Subscriber).
func (c *Chain) Subscribe(s Subscriber) {
	c.subsMu.Lock()
	defer c.subsMu.Unlock()
	c.subs = append(c.subs, s)
}

// Head is the last committed header.
func (c *Chain) Head() *types.Header { return c.cfg.Ledger.Head() }

// BlockByNumber returns a committed block and its seal.
func (c *Chain) BlockByNumber(number uint64) (*types.Block, []byte) {
	b := c.cfg.Ledger.BlockByNumber(number)
	if b == nil {
		return nil, nil
	}
	return b, c.cfg.Ledger.Seal(number)
}

// System reads the system contracts' state (registry, governance) of the
// committed head.
func (c *Chain) System() (*system.State, *types.Header, error) {
	head := c.cfg.Ledger.Head()
	st, err := c.cfg.Ledger.StateAt(head.Root)
	if err != nil {
		return nil, nil, err
	}
	return system.Read(st), head, nil
}

// Due reports whether governance has work at the start of the block
// after the head (a passed proposal to execute, an open one to expire),
// so that a sealer that only seals for transactions makes it.
func (c *Chain) Due() bool {
	head := c.cfg.Ledger.Head()
	if d := c.due.Load(); d != nil && d.head == head.Hash() {
		return d.due
	}
	st, err := c.cfg.Ledger.StateAt(head.Root)
	if err != nil {
		return false
	}
	due := system.Read(st).DueAt(head.Number.Uint64() + 1)
	c.due.Store(&dueCache{head: head.Hash(), due: due})
	return due
}

func (c *Chain) observe(f func(time.Duration), start time.Time) {
	if f != nil {
		f(time.Since(start))
	}
}

// BuildBlock executes pending transactions on parent: the committed head,
// or a block built or verified here and not committed yet (engines whose
// blocks become final later, such as poa, build on those).
func (c *Chain) BuildBlock(parent *types.Header, timestamp uint64, proposer consensus.NodeID) (*types.Block, error) {
	return c.BuildBlockMax(parent, timestamp, proposer, 0)
}

// BuildBlockMax is BuildBlock with at most maxTxs transactions (0: the
// bound of Config.MaxBlockTxs alone): an engine's pace, below the chain's
// rules.
func (c *Chain) BuildBlockMax(parent *types.Header, timestamp uint64, proposer consensus.NodeID, maxTxs int) (*types.Block, error) {
	defer c.cfg.Ledger.HoldStates()()
	st, exec, committed, err := c.parentState(parent.Hash(), parent.Number.Uint64())
	if err != nil {
		return nil, err
	}
	if committed && c.prefetches() {
		defer prefetch(st)()
	}
	header := chain.NewHeader(c.cfg.Spec, parent, proposer, timestamp)
	limit := c.cfg.MaxBlockTxs
	if maxTxs > 0 && (limit <= 0 || maxTxs < limit) {
		limit = maxTxs
	}
	var src execution.TxSource = c.cfg.Pool.Pending(limit)
	if !committed {
		// The pool still holds what the uncommitted ancestors included.
		src = &pastIncluded{src: src, st: st, signer: c.cfg.Exec.Signer()}
	}
	start := time.Now()
	res, err := exec.Build(header, st, src)
	c.observe(c.cfg.Timings.Build, start)
	c.observe(c.cfg.Timings.Execution, start)
	if err != nil {
		return nil, err
	}
	if len(res.Rejected) > 0 && committed {
		drop := make([]*types.Transaction, len(res.Rejected))
		for i, r := range res.Rejected {
			drop[i] = r.Tx
			c.log.Debug("Transaction dropped while building", "tx", r.Tx.Hash(), "err", r.Err)
		}
		// Rejected transactions cannot execute on the head; they leave the
		// pool now so the next build does not try them again.
		if headState, err := c.cfg.Ledger.StateAt(parent.Root); err == nil {
			c.cfg.Pool.Reset(headState, drop)
		}
	}
	c.remember(res)
	return res.Block, nil
}

// VerifyBlock executes a block built elsewhere and checks its header. A
// block committed already is valid without another execution: a
// verification queued behind the commit of its own block (the decision
// came first) costs nothing.
func (c *Chain) VerifyBlock(block *types.Block) error {
	if h := c.cfg.Ledger.HeaderByNumber(block.NumberU64()); h != nil && h.Hash() == block.Hash() {
		return nil
	}
	_, err := c.verified(block)
	return err
}

func (c *Chain) verified(block *types.Block) (*execution.Result, error) {
	defer c.cfg.Ledger.HoldStates()()
	return c.verifiedHeld(block)
}

// verifiedHeld is verified with the ledger's states held (HoldStates).
func (c *Chain) verifiedHeld(block *types.Block) (*execution.Result, error) {
	hash := block.Hash()
	if res := c.cached(hash); res != nil {
		return res, nil
	}
	v, err, _ := c.executing.Do(string(hash[:]), func() (any, error) {
		if res := c.cached(hash); res != nil {
			return res, nil // executed while this caller looked
		}
		return c.execute(block)
	})
	if err != nil {
		return nil, err
	}
	return v.(*execution.Result), nil
}

// execute executes block on its parent's state and remembers the result;
// the ledger's states are held.
func (c *Chain) execute(block *types.Block) (*execution.Result, error) {
	if block.NumberU64() == 0 {
		return nil, fmt.Errorf("%w 0: the genesis is not verified", execution.ErrInvalidBlock)
	}
	st, exec, committed, err := c.parentState(block.ParentHash(), block.NumberU64()-1)
	if err != nil {
		return nil, err
	}
	if committed && c.prefetches() {
		defer prefetch(st)()
	}
	parent := c.cfg.Ledger.HeaderByNumber(block.NumberU64() - 1)
	if parent == nil || parent.Hash() != block.ParentHash() {
		c.cacheMu.Lock()
		if r := c.cache[block.ParentHash()]; r != nil {
			parent = r.res.Block.Header()
		}
		c.cacheMu.Unlock()
	}
	if parent == nil || parent.Hash() != block.ParentHash() {
		return nil, fmt.Errorf("%w %d: parent %s is unknown", execution.ErrInvalidBlock, block.NumberU64(), block.ParentHash().TerminalString())
	}
	start := time.Now()
	res, err := exec.Apply(parent, c.withKnownSenders(block), st)
	c.observe(c.cfg.Timings.Execution, start)
	if err != nil {
		return nil, err
	}
	c.remember(res)
	return res, nil
}

// withKnownSenders returns block with the transactions the pool holds
// replaced by the pool's copies, whose senders are recovered already
// (same hash, same content: the block is the same), and the senders of
// the others recovered in parallel. Recovery is most of the cost of
// verifying a block of transfers.
func (c *Chain) withKnownSenders(block *types.Block) *types.Block {
	txs := block.Transactions()
	if len(txs) == 0 {
		return block
	}
	sub := make([]*types.Transaction, len(txs))
	var unknown []*types.Transaction
	for i, tx := range txs {
		if p := c.cfg.Pool.Get(tx.Hash()); p != nil {
			sub[i] = p
		} else {
			sub[i] = tx
			unknown = append(unknown, tx)
		}
	}
	if workers := min(runtime.GOMAXPROCS(0), len(unknown)/64); workers > 1 {
		signer := c.cfg.Exec.Signer()
		var wg sync.WaitGroup
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				for i := w; i < len(unknown); i += workers {
					types.Sender(signer, unknown[i]) // caches in the transaction; Apply reports errors
				}
			}(w)
		}
		wg.Wait()
	}
	if len(unknown) == len(txs) {
		return block
	}
	return block.WithBody(types.Body{Transactions: sub, Uncles: block.Uncles(), Withdrawals: block.Withdrawals()})
}

func (c *Chain) remember(res *execution.Result) {
	flushes := c.cfg.Ledger.Flushes() // constant while the states are held
	c.cacheMu.Lock()
	defer c.cacheMu.Unlock()
	if len(c.cache) < maxCachedResults {
		c.cache[res.Block.Hash()] = &cached{res: res, flushes: flushes}
	}
}

// cached returns the result of executing the block hash here, unless its
// post-state was opened before the ledger last wrote the head's state to
// disk (then it is dropped: its state can no longer be read). The
// ledger's states are held.
func (c *Chain) cached(hash common.Hash) *execution.Result {
	c.cacheMu.Lock()
	defer c.cacheMu.Unlock()
	e := c.cache[hash]
	if e == nil {
		return nil
	}
	if e.flushes != c.cfg.Ledger.Flushes() {
		delete(c.cache, hash)
		return nil
	}
	return e.res
}

// parentState returns a fresh state to execute a child of the block
// (hash, number) on, and an executor whose BLOCKHASH sees that block's
// own ancestry. The block is either committed, or executed here (built or
// verified) and still in the cache, above a chain of such blocks that
// reaches the committed chain. committed tells which.
func (c *Chain) parentState(hash common.Hash, number uint64) (st *state.StateDB, exec *execution.Executor, committed bool, err error) {
	if h := c.cfg.Ledger.HeaderByNumber(number); h != nil && h.Hash() == hash {
		st, err := c.cfg.Ledger.StateAt(h.Root)
		if err != nil {
			return nil, nil, false, fmt.Errorf("state of block %d: %w", number, err)
		}
		return st, c.cfg.Exec, true, nil
	}
	// A parent executed before the ledger wrote the head's state to disk
	// is executed again (its ancestors too, if they are in the same case).
	c.cacheMu.Lock()
	e := c.cache[hash]
	c.cacheMu.Unlock()
	if e != nil && e.flushes != c.cfg.Ledger.Flushes() {
		// verifiedHeld drops the stale result and executes the block again.
		if _, err := c.verifiedHeld(e.res.Block); err != nil {
			return nil, nil, false, fmt.Errorf("parent %d executed again: %w", number, err)
		}
	}
	c.cacheMu.Lock()
	defer c.cacheMu.Unlock()
	var res *execution.Result
	if e := c.cache[hash]; e != nil {
		res = e.res
	}
	if res == nil {
		return nil, nil, false, fmt.Errorf("%w %d: parent %s is neither committed nor executed here", execution.ErrInvalidBlock, number+1, hash.TerminalString())
	}
	// The uncommitted ancestors, down to a block whose parent is committed.
	above := make(map[uint64]*types.Header)
	for r := res; ; {
		h := r.Block.Header()
		above[h.Number.Uint64()] = h
		if p := c.cfg.Ledger.HeaderByNumber(h.Number.Uint64() - 1); p != nil && p.Hash() == h.ParentHash {
			break
		}
		e := c.cache[h.ParentHash]
		if e == nil || len(above) > maxCachedResults {
			return nil, nil, false, fmt.Errorf("%w %d: ancestor %s of parent %s is neither committed nor executed here",
				execution.ErrInvalidBlock, number+1, h.ParentHash.TerminalString(), hash.TerminalString())
		}
		r = e.res
	}
	// The parent's post-state is consumed when the parent commits; copy it
	// under stateMu so that the copy never races that commit.
	c.stateMu.Lock()
	st = res.State.Copy()
	c.stateMu.Unlock()
	return st, execution.New(c.cfg.Spec, forkHeaders{c.cfg.Ledger, above}).WithOptions(c.cfg.Exec.Options()), false, nil
}

// prefetch starts go-ethereum's trie prefetcher on st, a state opened
// from a committed root (the prefetcher assumes one: the accounts of an
// uncommitted state have no committed origin to read from). While the
// block's transactions run, another goroutine loads the trie nodes on the
// paths of the accounts they change, which computing the state root then
// needs; with a large state most are not in memory. The root computation
// takes over the loaded trie and ends the prefetcher; the returned stop
// ends it when execution fails before. It changes no result, only when
// the nodes are read.
func prefetch(st *state.StateDB) (stop func()) {
	st.StartPrefetcher("charter", nil)
	return st.StopPrefetcher
}

// prefetches tells whether a block executed now on a committed parent
// runs the trie prefetcher: when the state's trie nodes on disk reach
// Config.PrefetchStateBytes (or their size is unknown). Below it they are
// in the caches or quickly read, and the prefetcher only takes the other
// core from admission and adds its bookkeeping to every transaction.
func (c *Chain) prefetches() bool {
	if c.cfg.PrefetchStateBytes < 0 {
		return true
	}
	n, err := c.cfg.Ledger.StateDiskBytes()
	return err != nil || n >= uint64(c.cfg.PrefetchStateBytes)
}

// pastIncluded is a transaction source for a block built on an
// uncommitted parent: it passes over each sender's transactions whose
// nonce the state being built on has used already (the parent's branch
// holds them), so the block takes the sender's next ones instead of
// refusing the sender altogether.
type pastIncluded struct {
	src    execution.TxSource
	st     *state.StateDB // the block's state as it is built
	signer types.Signer
}

func (p *pastIncluded) Peek() *types.Transaction {
	for tx := p.src.Peek(); tx != nil; tx = p.src.Peek() {
		from, err := types.Sender(p.signer, tx) // cached by the pool
		if err != nil || tx.Nonce() >= p.st.GetNonce(from) {
			return tx
		}
		p.src.Shift()
	}
	return nil
}

func (p *pastIncluded) Shift() { p.src.Shift() }
func (p *pastIncluded) Skip()  { p.src.Skip() }

// forkHeaders answers header lookups by number along one uncommitted
// branch above the committed chain.
type forkHeaders struct {
	committed execution.HeaderReader
	above     map[uint64]*types.Header
}

func (f forkHeaders) HeaderByNumber(number uint64) *types.Header {
	if h := f.above[number]; h != nil {
		return h
	}
	return f.committed.HeaderByNumber(number)
}

// CommitBlock implements consensus.Chain: Commit, for the engine.
func (c *Chain) CommitBlock(block *types.Block, seal []byte) error {
	_, err := c.Commit(block, seal)
	return err
}

// Commit makes a block final: it executes it unless it was built or
// verified here, writes block, receipts, state and seal in one synced
// batch (ledger.Ledger.Commit), drops the execution results at or below
// its height, and hands what it wrote to every subscriber. A block that
// cannot be written is an error and nothing is published; a subscriber's
// error is returned after the others ran (the block stays committed).
func (c *Chain) Commit(block *types.Block, seal []byte) (*Committed, error) {
	c.commitMu.Lock()
	defer c.commitMu.Unlock()
	res, err := c.verified(block)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	c.stateMu.Lock()
	err = c.cfg.Ledger.Commit(block, res.Receipts, res.State, seal)
	c.stateMu.Unlock()
	c.observe(c.cfg.Timings.Commit, start)
	if err != nil {
		return nil, fmt.Errorf("commit block %d: %w", block.NumberU64(), err)
	}
	now := time.Now()
	c.cacheMu.Lock()
	for h, r := range c.cache {
		if r.res.Block.NumberU64() <= block.NumberU64() {
			delete(c.cache, h)
		}
	}
	c.cacheMu.Unlock()
	// The ledger filled the derived fields of the receipts it wrote; read
	// them back only if it could not (it then reports why).
	receipts := res.Receipts
	if len(receipts) > 0 && receipts[0].BlockHash != block.Hash() {
		if receipts, err = c.cfg.Ledger.Receipts(block.NumberU64()); err != nil {
			return nil, fmt.Errorf("receipts of committed block %d: %w", block.NumberU64(), err)
		}
	}
	var logs []*types.Log
	for _, r := range receipts {
		logs = append(logs, r.Logs...)
	}
	cm := &Committed{Block: block, Receipts: receipts, Logs: logs, Effects: res.Effects, Time: now}
	c.log.Debug("Block committed", "height", block.NumberU64(), "txs", len(block.Transactions()), "gas", block.GasUsed())
	c.subsMu.Lock()
	subs := append([]Subscriber(nil), c.subs...)
	c.subsMu.Unlock()
	var errs []error
	for _, s := range subs {
		if err := s(cm); err != nil {
			errs = append(errs, err)
		}
	}
	// The pool reads the new head now: a periodic write of the state to
	// disk (which makes the states below the head unreadable) may run.
	c.cfg.Ledger.FlushIfDue()
	if err := errors.Join(errs...); err != nil {
		return cm, fmt.Errorf("after the commit of block %d: %w", block.NumberU64(), err)
	}
	return cm, nil
}
