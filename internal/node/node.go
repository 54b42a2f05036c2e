// Package node assembles a Charter node: ledger, execution, transaction
// pool, consensus engine, events and the APIs. It is the one place that
// wires the parts; cmd/charter only parses flags and calls it.
package node

import (
	"crypto/ecdsa"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/state"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/charter-ledger/charter/internal/chain"
	"github.com/charter-ledger/charter/internal/consensus"
	"github.com/charter-ledger/charter/internal/events"
	"github.com/charter-ledger/charter/internal/execution"
	"github.com/charter-ledger/charter/internal/ledger"
	"github.com/charter-ledger/charter/internal/rpc"
	"github.com/charter-ledger/charter/internal/system"
	"github.com/charter-ledger/charter/internal/txpool"
)

// Config is everything a node needs; Validate checks it once.
type Config struct {
	DataDir string
	Spec    *chain.Spec
	// NodeKey is the node's secp256k1 key: its address is the node id and
	// the coinbase of the blocks it seals. Generated when nil (dev).
	NodeKey *ecdsa.PrivateKey
	// HTTPAddr is host:port of JSON-RPC over HTTP and WebSocket.
	HTTPAddr string
	// MetricsAddr is host:port of /metrics, /healthz and /readyz; "": none.
	MetricsAddr string
	// DevAccounts are unlocked: eth_accounts lists them and
	// eth_sendTransaction signs with them. Empty outside dev mode.
	DevAccounts []chain.DevAccount
	// ForceEmptyBlocks seals a block every block time even when idle.
	ForceEmptyBlocks bool
	// BlockTime overrides the spec's block time when non-zero.
	BlockTime time.Duration
	// Network links the node to its peers. Nil runs the node alone (the
	// solo engine); raft, bft and poa need it.
	Network *NetworkConfig
	// RPC bounds JSON-RPC clients and names the browser origins it
	// answers; zero fields take rpc.DefaultConfig's values.
	RPC    rpc.Config
	Logger *slog.Logger
}

func (c *Config) ensureDefaults() {
	c.RPC.EnsureDefaults()
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Validate reports the first field that is wrong.
func (c *Config) Validate() error {
	if c.DataDir == "" {
		return errors.New("config: data directory is required")
	}
	if c.Spec == nil {
		return errors.New("config: chain spec is required")
	}
	if c.HTTPAddr != "" {
		if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
			return fmt.Errorf("config: http address %q: %v", c.HTTPAddr, err)
		}
	}
	if err := c.RPC.Validate(); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if c.Spec.Consensus.Engine != "solo" && c.Network == nil {
		return fmt.Errorf("config: network: the %s engine needs a p2p network (listen address, peers, certificate)", c.Spec.Consensus.Engine)
	}
	if c.Network != nil {
		if err := c.Network.validate(); err != nil {
			return err
		}
	}
	return nil
}

// Node is one running Charter node.
type Node struct {
	cfg    Config
	log    *slog.Logger
	self   consensus.NodeID
	ledger *ledger.Ledger
	exec   *execution.Executor

	laterValidators []system.ValidatorChange // for the engine once it runs
	due             atomic.Pointer[dueCache] // governanceDue of the head
	pool            *txpool.Pool
	engine          consensus.Engine
	bus             events.Bus
	api             *apiServer
	net             *network // nil without peers
	ins             *instruments

	maxBlockTxs int          // bound of BuildBlock; 0: none
	halted      func() error // polled for an engine that stops itself

	cacheMu sync.Mutex
	cache   map[common.Hash]*execution.Result // executed, not yet committed
	stateMu sync.Mutex                        // copying a cached post-state vs committing it

	fatalOnce sync.Once
	fatal     chan error // a reason the node cannot go on
	stopOnce  sync.Once
	wg        sync.WaitGroup
	quit      chan struct{}
}

// New opens the ledger and assembles the node; Start runs it.
func New(cfg Config) (*Node, error) {
	cfg.ensureDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.NodeKey == nil {
		key, err := crypto.GenerateKey()
		if err != nil {
			return nil, err
		}
		cfg.NodeKey = key
	}
	n := &Node{
		cfg:   cfg,
		log:   cfg.Logger,
		self:  crypto.PubkeyToAddress(cfg.NodeKey.PublicKey),
		cache: make(map[common.Hash]*execution.Result),
		ins:   newInstruments(),
		fatal: make(chan error, 1),
		quit:  make(chan struct{}),
	}
	l, err := ledger.Open(cfg.DataDir, cfg.Spec, ledger.Options{}, cfg.Logger)
	if errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EWOULDBLOCK) {
		return nil, fmt.Errorf("data directory %s is in use by another process: is this node running already?", cfg.DataDir)
	}
	if err != nil {
		return nil, err
	}
	n.ledger = l
	n.exec = execution.New(cfg.Spec, l)
	headState, err := l.StateAt(l.Head().Root)
	if err != nil {
		l.Close()
		return nil, fmt.Errorf("open head state: %w", err)
	}
	n.pool = txpool.New(txpool.Config{
		ChainID:    cfg.Spec.Config.ChainID,
		MaxTxBytes: cfg.Spec.MaxTxBytes,
		TxGasLimit: uint64(cfg.Spec.TxGasLimit),
		BaseFee:    cfg.Spec.BaseFeeWei(),
		MinTip:     cfg.Spec.MinGasPriceWei(),
		Permit: func(st txpool.StateReader, from common.Address, tx *types.Transaction) error {
			return system.Read(st).CheckTransaction(from, tx)
		},
	}, n.exec.Signer(), headState)

	n.applyPoolLimits()
	blockTime := time.Duration(cfg.Spec.BlockTimeMs) * time.Millisecond
	if cfg.BlockTime > 0 {
		blockTime = cfg.BlockTime
	}
	engine, setup, err := n.newEngine(blockTime)
	if err != nil {
		l.Close()
		return nil, err
	}
	n.engine, n.maxBlockTxs, n.halted = engine, setup.maxBlockTxs, setup.halted
	n.laterValidators = setup.laterValidators
	if cfg.Network != nil {
		if n.net, err = newNetwork(n, cfg.Network, setup.members, setup.gossip); err != nil {
			l.Close()
			return nil, err
		}
	}
	n.api = newAPIServer(n)
	return n, nil
}

// Start runs the engine and the APIs.
func (n *Node) Start() error {
	// On failure, Stop undoes what started (every part's stop is safe
	// before its start), so the caller need not call it.
	if err := n.api.start(); err != nil {
		n.Stop()
		return err
	}
	if err := n.startMetrics(); err != nil {
		n.Stop()
		return err
	}
	ch := make(chan txpool.NewTxsEvent, 256)
	sub := n.pool.SubscribeNewTxs(ch)
	n.wg.Add(1)
	go n.newTxsLoop(ch, sub)
	if err := n.engine.Start(); err != nil {
		n.Stop()
		return fmt.Errorf("start engine: %w", err)
	}
	// Validator changes governance decided for heights after the next.
	n.applyValidatorChanges(n.ledger.Head().Number.Uint64(), n.laterValidators)
	if n.net != nil {
		if err := n.net.start(); err != nil {
			n.Stop()
			return err
		}
	}
	if n.halted != nil {
		n.wg.Add(1)
		go n.watchHalt()
	}
	head := n.ledger.Head()
	attrs := []any{"id", n.self, "chain", n.cfg.Spec.ChainID(), "engine", n.cfg.Spec.Consensus.Engine,
		"height", head.Number.Uint64(), "hash", head.Hash(), "rpc", n.api.addr()}
	if n.net != nil {
		attrs = append(attrs, "p2p", n.P2PAddr(), "peers", len(n.cfg.Network.Peers))
	}
	n.log.Info("Node started", attrs...)
	return nil
}

// newTxsLoop hands transactions that became pending to the engine and,
// for engines without a forwarding path of their own, to the peers. It
// coalesces the events waiting at once into one batch, so that a burst of
// single submissions becomes one gossip message.
func (n *Node) newTxsLoop(ch <-chan txpool.NewTxsEvent, sub interface{ Unsubscribe() }) {
	defer n.wg.Done()
	defer sub.Unsubscribe()
	for {
		var txs []*types.Transaction
		select {
		case ev := <-ch:
			txs = ev.Txs
		case <-n.quit:
			return
		}
	drain:
		for len(txs) < maxGossipTxs {
			select {
			case ev := <-ch:
				txs = append(txs, ev.Txs...)
			default:
				break drain
			}
		}
		now := time.Now()
		for _, tx := range txs {
			n.ins.m.Seen(tx.Hash(), now)
		}
		n.engine.Notify(txs)
		if n.net != nil && n.net.gossip {
			n.net.gossipTxs(txs)
		}
	}
}

// watchHalt turns an engine that halted by itself into a node failure.
func (n *Node) watchHalt() {
	defer n.wg.Done()
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-n.quit:
			return
		case <-t.C:
			if err := n.halted(); err != nil {
				n.fail(fmt.Errorf("%s engine halted: %w", n.cfg.Spec.Consensus.Engine, err))
				return
			}
		}
	}
}

// Fatal delivers a reason the node cannot go on; the caller of Start
// should stop the node when it arrives.
func (n *Node) Fatal() <-chan error { return n.fatal }

func (n *Node) fail(err error) {
	n.fatalOnce.Do(func() { n.fatal <- err })
}

// Stop ends the engine and the APIs and closes the ledger. Everything
// committed stays.
func (n *Node) Stop() {
	n.stopOnce.Do(func() {
		if n.ins.srv != nil {
			n.ins.srv.Close()
		}
		n.api.stop()
		if n.net != nil {
			n.net.close() // no more peer messages
		}
		n.engine.Stop()
		close(n.quit)
		n.wg.Wait()
		if err := n.ledger.Close(); err != nil {
			n.log.Error("Closing the ledger failed", "err", err)
		}
	})
}

// RPCAddr is the address JSON-RPC listens on (useful with port 0).
func (n *Node) RPCAddr() string { return n.api.addr() }

// P2PAddr is the address the p2p transport listens on; "" without one.
func (n *Node) P2PAddr() string {
	if n.net == nil || n.net.tr.Addr() == nil {
		return ""
	}
	return n.net.tr.Addr().String()
}

// PeerCount is the number of connected peers.
func (n *Node) PeerCount() int {
	if n.net == nil {
		return 0
	}
	return n.net.peerCount()
}

// Ledger, Pool, Executor and Spec expose the parts to the APIs.
func (n *Node) Ledger() *ledger.Ledger          { return n.ledger }
func (n *Node) Pool() *txpool.Pool              { return n.pool }
func (n *Node) Executor() *execution.Executor   { return n.exec }
func (n *Node) Spec() *chain.Spec               { return n.cfg.Spec }
func (n *Node) Bus() *events.Bus                { return &n.bus }
func (n *Node) Engine() consensus.Engine        { return n.engine }
func (n *Node) DevAccounts() []chain.DevAccount { return n.cfg.DevAccounts }

// --- consensus.Host ---

// Self is the node id.
func (n *Node) Self() consensus.NodeID { return n.self }

// Head is the last committed header.
func (n *Node) Head() *types.Header { return n.ledger.Head() }

// BuildBlock executes pending transactions on parent: the committed head,
// or a block built or verified here and not committed yet (engines whose
// blocks become final later, such as poa, build on those).
func (n *Node) BuildBlock(parent *types.Header, timestamp uint64, proposer consensus.NodeID) (*types.Block, error) {
	st, exec, committed, err := n.parentState(parent.Hash(), parent.Number.Uint64())
	if err != nil {
		return nil, err
	}
	header := chain.NewHeader(n.cfg.Spec, parent, proposer, timestamp)
	var src execution.TxSource = n.pool.Pending(n.maxBlockTxs)
	if !committed {
		// The pool still holds what the uncommitted ancestors included.
		src = &pastIncluded{src: src, st: st, signer: n.exec.Signer()}
	}
	start := time.Now()
	res, err := exec.Build(header, st, src)
	n.ins.m.BlockBuild.Observe(time.Since(start).Seconds())
	n.ins.m.BlockExecution.Observe(time.Since(start).Seconds())
	if err != nil {
		return nil, err
	}
	if len(res.Rejected) > 0 && committed {
		drop := make([]*types.Transaction, len(res.Rejected))
		for i, r := range res.Rejected {
			drop[i] = r.Tx
			n.log.Debug("Transaction dropped while building", "tx", r.Tx.Hash(), "err", r.Err)
		}
		// Rejected transactions cannot execute on the head; they leave the
		// pool now so the next build does not try them again.
		if headState, err := n.ledger.StateAt(parent.Root); err == nil {
			n.pool.Reset(headState, drop)
		}
	}
	n.remember(res)
	return res.Block, nil
}

// VerifyBlock executes a block built elsewhere and checks its header.
func (n *Node) VerifyBlock(block *types.Block) error {
	_, err := n.verified(block)
	return err
}

func (n *Node) verified(block *types.Block) (*execution.Result, error) {
	hash := block.Hash()
	n.cacheMu.Lock()
	res := n.cache[hash]
	n.cacheMu.Unlock()
	if res != nil {
		return res, nil
	}
	if block.NumberU64() == 0 {
		return nil, fmt.Errorf("%w 0: the genesis is not verified", execution.ErrInvalidBlock)
	}
	st, exec, _, err := n.parentState(block.ParentHash(), block.NumberU64()-1)
	if err != nil {
		return nil, err
	}
	parent := n.ledger.HeaderByNumber(block.NumberU64() - 1)
	if parent == nil || parent.Hash() != block.ParentHash() {
		n.cacheMu.Lock()
		if r := n.cache[block.ParentHash()]; r != nil {
			parent = r.Block.Header()
		}
		n.cacheMu.Unlock()
	}
	if parent == nil || parent.Hash() != block.ParentHash() {
		return nil, fmt.Errorf("%w %d: parent %s is unknown", execution.ErrInvalidBlock, block.NumberU64(), block.ParentHash().TerminalString())
	}
	start := time.Now()
	res, err = exec.Apply(parent, n.withKnownSenders(block), st)
	n.ins.m.BlockExecution.Observe(time.Since(start).Seconds())
	if err != nil {
		return nil, err
	}
	n.remember(res)
	return res, nil
}

// withKnownSenders returns block with the transactions this node's pool
// holds replaced by the pool's copies, whose senders are recovered already
// (same hash, same content: the block is the same), and the senders of
// the others recovered in parallel. Recovery is most of the cost of
// verifying a block of transfers.
func (n *Node) withKnownSenders(block *types.Block) *types.Block {
	txs := block.Transactions()
	if len(txs) == 0 {
		return block
	}
	sub := make([]*types.Transaction, len(txs))
	var unknown []*types.Transaction
	for i, tx := range txs {
		if p := n.pool.Get(tx.Hash()); p != nil {
			sub[i] = p
		} else {
			sub[i] = tx
			unknown = append(unknown, tx)
		}
	}
	if workers := min(runtime.GOMAXPROCS(0), len(unknown)/64); workers > 1 {
		signer := n.exec.Signer()
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

// maxCachedResults bounds the executed, uncommitted blocks kept (their
// receipts and post-states). Beyond it results are not kept: a commit of
// such a block executes it again, and a child of it cannot be built.
const maxCachedResults = 1024

func (n *Node) remember(res *execution.Result) {
	n.cacheMu.Lock()
	defer n.cacheMu.Unlock()
	if len(n.cache) < maxCachedResults {
		n.cache[res.Block.Hash()] = res
	}
}

// parentState returns a fresh state to execute a child of the block
// (hash, number) on, and an executor whose BLOCKHASH sees that block's
// own ancestry. The block is either committed, or executed here (built or
// verified) and still in the cache, above a chain of such blocks that
// reaches the committed chain. committed tells which.
func (n *Node) parentState(hash common.Hash, number uint64) (st *state.StateDB, exec *execution.Executor, committed bool, err error) {
	if h := n.ledger.HeaderByNumber(number); h != nil && h.Hash() == hash {
		st, err := n.ledger.StateAt(h.Root)
		if err != nil {
			return nil, nil, false, fmt.Errorf("state of block %d: %w", number, err)
		}
		return st, n.exec, true, nil
	}
	n.cacheMu.Lock()
	defer n.cacheMu.Unlock()
	res := n.cache[hash]
	if res == nil {
		return nil, nil, false, fmt.Errorf("%w %d: parent %s is neither committed nor executed here", execution.ErrInvalidBlock, number+1, hash.TerminalString())
	}
	// The uncommitted ancestors, down to a block whose parent is committed.
	above := make(map[uint64]*types.Header)
	for r := res; ; {
		h := r.Block.Header()
		above[h.Number.Uint64()] = h
		if p := n.ledger.HeaderByNumber(h.Number.Uint64() - 1); p != nil && p.Hash() == h.ParentHash {
			break
		}
		if r = n.cache[h.ParentHash]; r == nil || len(above) > maxCachedResults {
			return nil, nil, false, fmt.Errorf("%w %d: ancestor %s of parent %s is neither committed nor executed here",
				execution.ErrInvalidBlock, number+1, h.ParentHash.TerminalString(), hash.TerminalString())
		}
	}
	// The parent's post-state is consumed when the parent commits; copy it
	// under stateMu so that the copy never races that commit.
	n.stateMu.Lock()
	st = res.State.Copy()
	n.stateMu.Unlock()
	return st, execution.New(n.cfg.Spec, forkHeaders{n.ledger, above}), false, nil
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

// CommitBlock writes a block durably, then updates the pool and publishes
// the block. A block that cannot be written stops the node: its engine
// cannot know what it would sign next.
func (n *Node) CommitBlock(block *types.Block, seal []byte) error {
	res, err := n.verified(block)
	if err != nil {
		return err
	}
	start := time.Now()
	n.stateMu.Lock()
	err = n.ledger.Commit(block, res.Receipts, res.State, seal)
	n.stateMu.Unlock()
	n.ins.m.BlockCommit.Observe(time.Since(start).Seconds())
	if err != nil {
		n.fail(fmt.Errorf("commit block %d: %w", block.NumberU64(), err))
		return err
	}
	now := time.Now()
	n.cacheMu.Lock()
	for h, r := range n.cache {
		if r.Block.NumberU64() <= block.NumberU64() {
			delete(n.cache, h)
		}
	}
	n.ins.lastCommit = now
	n.cacheMu.Unlock()
	hashes := make([][32]byte, len(block.Transactions()))
	for i, tx := range block.Transactions() {
		hashes[i] = tx.Hash()
	}
	n.ins.m.Final(hashes, now)
	n.ins.m.Height.Set(float64(block.NumberU64()))
	n.ins.m.TxCommitted.Add(float64(len(hashes)))
	n.ins.m.BlocksCommitted.Inc()
	headState, err := n.ledger.StateAt(block.Root())
	if err != nil {
		n.fail(fmt.Errorf("open state of committed block %d: %w", block.NumberU64(), err))
		return err
	}
	n.pool.Reset(headState, nil)
	n.applyValidatorChanges(block.NumberU64(), res.Effects.ValidatorChanges)
	if len(res.Effects.Executed) > 0 {
		n.applyPoolLimits()
		if n.net != nil {
			if err := n.net.syncTrust(); err != nil {
				n.log.Warn("The registry's organizations do not all fit the trust store", "err", err)
			}
		}
	}
	receipts, err := n.ledger.Receipts(block.NumberU64())
	if err != nil {
		n.fail(err)
		return err
	}
	var logs []*types.Log
	for _, r := range receipts {
		logs = append(logs, r.Logs...)
	}
	n.bus.PublishChain(events.ChainEvent{Block: block, Receipts: receipts, Logs: logs})
	n.log.Debug("Block committed", "height", block.NumberU64(), "txs", len(block.Transactions()), "gas", block.GasUsed())
	return nil
}

// BlockByNumber returns a committed block and its seal.
func (n *Node) BlockByNumber(number uint64) (*types.Block, []byte) {
	b := n.ledger.BlockByNumber(number)
	if b == nil {
		return nil, nil
	}
	return b, n.ledger.Seal(number)
}

// Send delivers an engine message to one peer; it never blocks (the
// transport queues or drops). A node without peers has nobody to send to.
func (n *Node) Send(to consensus.NodeID, payload []byte) {
	if n.net != nil {
		n.net.send(to, payload)
	}
}

// Broadcast delivers an engine message to every connected peer.
func (n *Node) Broadcast(payload []byte) {
	if n.net != nil {
		n.net.broadcast(payload)
	}
}

var _ consensus.Host = (*Node)(nil)
