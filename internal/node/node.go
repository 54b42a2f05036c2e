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
	"runtime/debug"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/charter-ledger/charter/internal/blockchain"
	"github.com/charter-ledger/charter/internal/chain"
	"github.com/charter-ledger/charter/internal/chaindata"
	"github.com/charter-ledger/charter/internal/consensus"
	"github.com/charter-ledger/charter/internal/console"
	"github.com/charter-ledger/charter/internal/events"
	"github.com/charter-ledger/charter/internal/execution"
	"github.com/charter-ledger/charter/internal/index"
	"github.com/charter-ledger/charter/internal/ledger"
	"github.com/charter-ledger/charter/internal/p2p"
	"github.com/charter-ledger/charter/internal/privacy"
	"github.com/charter-ledger/charter/internal/rpc"
	"github.com/charter-ledger/charter/internal/streams"
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
	// PrivacyKey is the organization's privacy key, read from
	// PrivacyKeyFile; nil: the node takes no part in private transactions.
	// New refuses one the registry at the head knows as another.
	PrivacyKey     *privacy.PrivateKey
	PrivacyKeyFile string
	// API is how clients authenticate to HTTPAddr (the home config's api
	// section, validated); nil: open, plain HTTP, as charter dev serves.
	// TLS uses Network.Certificate.
	API *HomeAPI
	// Index turns on the SQL index of final blocks; nil: none.
	Index *IndexConfig
	// Execution tunes block execution: Parallel verification of others'
	// blocks is experimental and off by default (charter node
	// --experimental.parallel-verify).
	Execution execution.Options
	// StateHistory is how many past blocks' state the ledger keeps
	// (ledger.Options.StateHistory: 0 as the data directory records,
	// ledger.StateArchive every block's).
	StateHistory uint64
	// HistoryBodies, when above 0, keeps the bodies and receipts of the
	// last HistoryBodies blocks only (history.go; observers of bft and
	// poa only, at least MinHistoryBodies).
	HistoryBodies uint64
	// Org is the organization the node belongs to (its certificate's O);
	// "" on charter dev.
	Org string
	// Home is the node's home folder (config.json, genesis, keys), which
	// a backup holds besides the data; "" on charter dev.
	Home string
	// Name is the node's name in its home config; "" on charter dev.
	Name string
	// Snapshots are the snapshots the node makes for its peers and how
	// it starts on an empty data directory (state sync).
	Snapshots SnapshotConfig
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
	if err := c.Snapshots.validate(); err != nil {
		return err
	}
	if c.API != nil {
		if err := c.API.validate(); err != nil {
			return fmt.Errorf("config: %w", err)
		}
		if c.API.TLS && (c.Network == nil || len(c.Network.Certificate.Certificate) == 0) {
			return errors.New("config: api.tls needs the node's certificate (tlsCert, tlsKey)")
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
	chain  *blockchain.Chain
	pool   *txpool.Pool
	txIdx  *txIndex // peer transactions and committed hashes, by hash
	engine consensus.Engine
	bus    events.Bus
	// heads wakes the readers of final blocks (indexer, event streams);
	// contracts is the contract registry as of the head.
	heads     chaindata.Heads
	contracts *registryContracts
	index     *index.Index // the SQL index; nil when off
	streams   *streams.Manager
	api       *apiServer
	net       *network        // nil without peers
	priv      *privacyService // nil without a privacy key
	ins       *instruments
	history   *console.History // the console's charts' last hour (console_node.go)

	indexDelay *indexDelay // charter_index_delay_seconds; nil when no index
	backup     backupState // the backup under way or last made (backup.go)

	fatalOnce sync.Once
	fatal     chan error // a reason the node cannot go on
	stopOnce  sync.Once
	wg        sync.WaitGroup
	quit      chan struct{}

	snaps  *snapshotStore // nil without a network
	synced *SyncStats     // the state sync New did; nil if none
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
		cfg:     cfg,
		log:     cfg.Logger,
		self:    crypto.PubkeyToAddress(cfg.NodeKey.PublicKey),
		ins:     newInstruments(),
		history: console.NewHistory(console.HistorySize),
		fatal:   make(chan error, 1),
		quit:    make(chan struct{}),
	}
	synced, err := stateSync(cfg, cfg.Logger)
	if err != nil {
		return nil, err
	}
	n.synced = synced
	storeMB, stateMB := ledgerCacheMB(debug.SetMemoryLimit(-1))
	l, err := ledger.Open(cfg.DataDir, cfg.Spec, ledger.Options{
		CacheMB:      storeMB,
		TrieCacheMB:  stateMB,
		StateHistory: cfg.StateHistory,
		BodyHistory:  cfg.HistoryBodies,
		Forks:        cfg.Spec.Consensus.Engine == "poa", // blocks final only after confirmations
		Replay:       LedgerReplay(cfg.Spec),
	}, cfg.Logger)
	if errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EWOULDBLOCK) {
		return nil, fmt.Errorf("data directory %s is in use by another process: is this node running already?", cfg.DataDir)
	}
	if err != nil {
		return nil, err
	}
	n.ledger = l
	n.exec = execution.New(cfg.Spec, l).WithOptions(cfg.Execution)
	headState, err := l.StateAt(l.Head().Root)
	if err != nil {
		l.Close()
		return nil, fmt.Errorf("open head state: %w", err)
	}
	if err := n.checkPrivacyKey(headState); err != nil {
		l.Close()
		return nil, err
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
	m := n.ins.m
	n.txIdx = newTxIndex(peerTxMemory, peerTxBytes)
	n.chain, err = blockchain.New(blockchain.Config{
		Spec:   cfg.Spec,
		Ledger: l,
		Exec:   n.exec,
		Pool:   knownTxs{Pool: n.pool, idx: n.txIdx, signer: n.exec.Signer()},
		Log:    cfg.Logger,
		Timings: blockchain.Timings{
			Build:     func(d time.Duration) { m.BlockBuild.Observe(d.Seconds()) },
			Execution: func(d time.Duration) { m.BlockExecution.Observe(d.Seconds()) },
			Commit:    func(d time.Duration) { m.BlockCommit.Observe(d.Seconds()) },
		},
	})
	if err != nil {
		l.Close()
		return nil, err
	}
	if err := n.validateHistoryBodies(); err != nil {
		l.Close()
		return nil, err
	}
	n.applyPoolLimits()
	blockTime := time.Duration(cfg.Spec.BlockTimeMs) * time.Millisecond
	if cfg.BlockTime > 0 {
		blockTime = cfg.BlockTime
	}
	engine, profile, err := n.newEngine(blockTime)
	if err != nil {
		l.Close()
		return nil, err
	}
	n.engine = engine
	n.chain.SetMaxBlockTxs(profile.MaxBlockTxs)
	// What follows a commit, in this order: the metrics, the pool moves to
	// the new head, governance's decisions take effect (the engine's
	// validator set, the pool's limits, the peers' trust), subscribers of
	// the event bus hear of the block.
	n.chain.Subscribe(n.recordCommit)
	n.chain.Subscribe(n.resetPool)
	n.chain.Subscribe(n.indexCommit)
	n.chain.Subscribe(n.applyGovernance)
	n.chain.Subscribe(n.publishCommit)
	n.contracts = newRegistryContracts(n.chain.System, n.log)
	if n.priv, err = newPrivacy(n); err != nil {
		l.Close()
		return nil, err
	}
	if n.priv != nil {
		n.chain.Subscribe(n.priv.worker.onCommit)
	}
	if cfg.Network != nil {
		if n.net, err = newNetwork(n, cfg.Network, profile.Members, profile.Gossip); err != nil {
			n.closePrivacy()
			l.Close()
			return nil, err
		}
		if n.priv != nil {
			n.priv.fetch.register(n.net.tr)
		}
		if n.snaps, err = openSnapshotStore(n, cfg.Snapshots); err != nil {
			n.closePrivacy()
			l.Close()
			return nil, err
		}
		n.net.tr.Handle(msgSnapRequest, func(from p2p.NodeID, payload []byte) { n.snaps.handleRequest(n.net.tr, from, payload) })
		n.chain.Subscribe(n.snaps.onCommit)
	}
	if err := n.openIndex(); err != nil {
		n.closePrivacy()
		l.Close()
		return nil, err
	}
	if err := n.openStreams(); err != nil {
		if n.index != nil {
			n.index.Close()
		}
		n.closePrivacy()
		l.Close()
		return nil, err
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
	if n.net != nil {
		if err := n.net.start(); err != nil {
			n.Stop()
			return err
		}
	}
	if n.priv != nil {
		if err := n.priv.start(); err != nil {
			n.Stop()
			return err
		}
		n.wg.Add(1)
		go n.priv.fetch.loop()
	}
	n.wg.Add(1)
	go n.watchHalt()
	n.wg.Add(1)
	go n.consoleLoop()
	if n.cfg.HistoryBodies > 0 {
		n.wg.Add(1)
		go n.pruneBodies()
	}
	if n.index != nil {
		n.wg.Add(1)
		go n.runIndex()
	}
	// Each stream reads final blocks in its own goroutine, woken by
	// n.heads; nothing on the commit path waits for one.
	n.streams.Start()
	head := n.ledger.Head()
	attrs := []any{"id", n.self, "chain", n.cfg.Spec.ChainID(), "engine", n.cfg.Spec.Consensus.Engine,
		"role", n.Role(), "height", head.Number.Uint64(), "hash", head.Hash(), "rpc", n.api.addr()}
	if n.net != nil {
		attrs = append(attrs, "p2p", n.P2PAddr(), "peers", len(n.cfg.Network.Peers))
	}
	n.log.Info("Node started", attrs...)
	return nil
}

// newTxsLoop hands transactions that became pending to the engine and,
// for engines without a forwarding path of their own, to the peers. It
// coalesces the events waiting at once into one batch for the engine, and
// holds gossip back for up to gossipLinger so that a stream of single
// submissions (one client request a transaction) leaves as a few gossip
// messages rather than one message, one frame per peer and one admission
// batch at each peer for every transaction.
func (n *Node) newTxsLoop(ch <-chan txpool.NewTxsEvent, sub interface{ Unsubscribe() }) {
	defer n.wg.Done()
	defer sub.Unsubscribe()
	gossip := n.net != nil && n.net.gossip
	var (
		pending []*types.Transaction // admitted here, not gossiped yet
		timer   *time.Timer
		flushC  <-chan time.Time
	)
	flush := func() {
		if timer != nil {
			timer.Stop()
			timer, flushC = nil, nil
		}
		if len(pending) > 0 {
			n.net.gossipTxs(pending)
			pending = nil
		}
	}
	for {
		var txs []*types.Transaction
		select {
		case ev := <-ch:
			txs = ev.Txs
		case <-flushC:
			timer, flushC = nil, nil
			flush()
			continue
		case <-n.quit:
			if timer != nil {
				timer.Stop()
			}
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
		if !gossip {
			continue
		}
		pending = append(pending, txs...)
		switch {
		case len(pending) >= maxGossipTxs || n.net.linger <= 0:
			flush()
		case timer == nil:
			timer = time.NewTimer(n.net.linger)
			flushC = timer.C
		}
	}
}

// watchHalt turns an engine that halted by itself into a node failure.
func (n *Node) watchHalt() {
	defer n.wg.Done()
	select {
	case <-n.quit:
	case err, halted := <-n.engine.Done():
		if halted {
			n.fail(err)
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
		if n.snaps != nil {
			n.snaps.close() // an export in progress stops
		}
		close(n.quit)
		n.wg.Wait()
		n.closePrivacy()
		// The streams read the ledger: they stop before it closes, each
		// with the cursor of its last accepted batch on disk.
		n.streams.Stop()
		if n.index != nil {
			n.index.Close()
		}
		if err := n.ledger.Close(); err != nil {
			n.log.Error("Closing the ledger failed", "err", err)
		}
	})
}

func (n *Node) closePrivacy() {
	if n.priv != nil {
		n.priv.close()
	}
}

// Node roles (Role).
const (
	RoleValidator = "validator"
	RoleObserver  = "observer"
)

// Role is RoleValidator when this node is in the validator set in force
// after its committed head (always on solo), else RoleObserver: it
// follows the chain, serves its APIs and forwards the transactions it
// receives, and never votes (a raft learner; on bft and poa a node that
// checks the validators' certificates or seals). A node of a read-tier
// organization is always an observer; one of a validate-tier
// organization becomes a validator when governance adds it to the set.
func (n *Node) Role() string {
	spec := n.cfg.Spec
	if spec.Consensus.Engine == "solo" {
		return RoleValidator
	}
	set := spec.Consensus.Validators
	if reg, head, err := n.registry(); err == nil {
		if v := reg.ValidatorsAt(head.Number.Uint64() + 1); len(v) > 0 {
			set = v
		}
	}
	if slices.Contains(set, n.self) {
		return RoleValidator
	}
	return RoleObserver
}

// Self is the node id: the address of its node key.
func (n *Node) Self() consensus.NodeID { return n.self }

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

// Ledger, Chain, Pool, Executor and Spec expose the parts to the APIs.
func (n *Node) Ledger() *ledger.Ledger          { return n.ledger }
func (n *Node) Chain() *blockchain.Chain        { return n.chain }
func (n *Node) Pool() *txpool.Pool              { return n.pool }
func (n *Node) Executor() *execution.Executor   { return n.exec }
func (n *Node) Spec() *chain.Spec               { return n.cfg.Spec }
func (n *Node) Bus() *events.Bus                { return &n.bus }
func (n *Node) Engine() consensus.Engine        { return n.engine }
func (n *Node) DevAccounts() []chain.DevAccount { return n.cfg.DevAccounts }

// recordCommit is the commit's subscriber that feeds the metrics.
func (n *Node) recordCommit(c *blockchain.Committed) error {
	hashes := make([][32]byte, len(c.Block.Transactions()))
	for i, tx := range c.Block.Transactions() {
		hashes[i] = tx.Hash()
	}
	m := n.ins.m
	m.Final(hashes, c.Time)
	m.Height.Set(float64(c.Block.NumberU64()))
	m.TxCommitted.Add(float64(len(hashes)))
	m.BlocksCommitted.Inc()
	n.ins.committed(c.Time)
	return nil
}

// resetPool is the commit's subscriber that moves the pool to the new
// head: what the block included leaves it, what became executable is
// promoted.
func (n *Node) resetPool(c *blockchain.Committed) error {
	headState, err := n.ledger.StateAt(c.Block.Root())
	if err != nil {
		err = fmt.Errorf("open state of committed block %d: %w", c.Block.NumberU64(), err)
		n.fail(err)
		return err
	}
	n.pool.Reset(headState, nil)
	return nil
}

// indexCommit marks the committed block's transactions in the index of
// peer transactions: copies that arrive from peers later are dropped
// without recovering their senders.
func (n *Node) indexCommit(c *blockchain.Committed) error {
	n.txIdx.markCommitted(c.Block.Transactions())
	return nil
}

// publishCommit is the commit's subscriber that tells the event bus
// (JSON-RPC subscriptions, filters) with the receipts just written.
func (n *Node) publishCommit(c *blockchain.Committed) error {
	n.markCommit(c.Block.NumberU64())
	n.bus.PublishChain(events.ChainEvent{Block: c.Block, Receipts: c.Receipts, Logs: c.Logs})
	n.heads.Notify()
	return nil
}
