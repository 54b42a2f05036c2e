package bft

import (
	"crypto/ecdsa"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/charter-ledger/charter/internal/consensus"
)

// Defaults of EngineConfig.
const (
	DefaultTickInterval     = 50 * time.Millisecond
	DefaultProposeTimeout   = 2 * time.Second
	DefaultPrevoteTimeout   = 500 * time.Millisecond
	DefaultPrecommitTimeout = 500 * time.Millisecond
	DefaultTimeoutDelta     = 500 * time.Millisecond
	DefaultMaxTimeout       = 30 * time.Second
	DefaultCommitWait       = 250 * time.Millisecond
	DefaultRebroadcast      = 500 * time.Millisecond
	DefaultSyncRetry        = 250 * time.Millisecond
	DefaultMaxMessageBytes  = 10 << 20 // the p2p layer's default frame bound
	DefaultInboxSize        = 4096
	maxPendingWork          = 256
	maxReadyBatches         = 1024
	maxInboxBatch           = 64
)

// EngineConfig configures the bft Engine. Zero fields take the defaults.
type EngineConfig struct {
	// ChainID is signed into every message; it must be the chain's id.
	ChainID uint64
	// Key is the node key. Nil runs an observer: it follows the chain from
	// the votes it hears and from certificates, and never signs.
	Key *ecdsa.PrivateKey
	// Validators is the set in force for the height after the host's head
	// (the genesis set on a new chain). Changes go through SetValidators.
	Validators []consensus.NodeID
	// Storage keeps the validator's SavedState; required with a Key.
	Storage Storage

	// TickInterval is the core's unit of time; the durations below are
	// rounded up to whole ticks.
	TickInterval time.Duration
	// Round 0 timeouts of the three steps; each later round adds
	// TimeoutDelta to each, up to MaxTimeout.
	ProposeTimeout, PrevoteTimeout, PrecommitTimeout time.Duration
	TimeoutDelta, MaxTimeout                         time.Duration
	// CommitWait is the pause after each decision before the next height's
	// first round: the pace of blocks when little waits (Tendermint's
	// timeout_commit). It also lets late votes arrive.
	CommitWait time.Duration
	// Rebroadcast is the interval of re-sending this validator's messages.
	Rebroadcast time.Duration
	// SyncRetry is the least interval between catch-up requests.
	SyncRetry time.Duration
	// MaxMessageBytes bounds one message (a proposal carries a block).
	MaxMessageBytes int
	// InboxSize bounds the queue of received messages; beyond it messages
	// are dropped (peers re-send).
	InboxSize int
	// Now is the clock for block timestamps; nil means time.Now.
	Now func() time.Time

	mutation mutation
}

func (c *EngineConfig) ensureDefaults() {
	def := func(p *time.Duration, v time.Duration) {
		if *p == 0 {
			*p = v
		}
	}
	def(&c.TickInterval, DefaultTickInterval)
	def(&c.ProposeTimeout, DefaultProposeTimeout)
	def(&c.PrevoteTimeout, DefaultPrevoteTimeout)
	def(&c.PrecommitTimeout, DefaultPrecommitTimeout)
	def(&c.TimeoutDelta, DefaultTimeoutDelta)
	def(&c.MaxTimeout, DefaultMaxTimeout)
	def(&c.CommitWait, DefaultCommitWait)
	def(&c.Rebroadcast, DefaultRebroadcast)
	def(&c.SyncRetry, DefaultSyncRetry)
	if c.MaxMessageBytes == 0 {
		c.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if c.InboxSize == 0 {
		c.InboxSize = DefaultInboxSize
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// coreConfig converts durations to ticks.
func (c *EngineConfig) coreConfig(self consensus.NodeID) (Config, error) {
	if c.TickInterval <= 0 {
		return Config{}, fmt.Errorf("%w: TickInterval: %v", ErrBadConfig, c.TickInterval)
	}
	ticks := func(d time.Duration) int {
		if d <= 0 {
			return 0
		}
		return int((d + c.TickInterval - 1) / c.TickInterval)
	}
	cfg := Config{
		ChainID:               c.ChainID,
		Self:                  self,
		Validators:            c.Validators,
		ProposeTimeoutTicks:   ticks(c.ProposeTimeout),
		PrevoteTimeoutTicks:   ticks(c.PrevoteTimeout),
		PrecommitTimeoutTicks: ticks(c.PrecommitTimeout),
		TimeoutDeltaTicks:     ticks(c.TimeoutDelta),
		MaxTimeoutTicks:       ticks(c.MaxTimeout),
		CommitWaitTicks:       ticks(c.CommitWait),
		RebroadcastTicks:      ticks(c.Rebroadcast),
		SyncRetryTicks:        ticks(c.SyncRetry),
		MaxMessageBytes:       c.MaxMessageBytes,
		mutation:              c.mutation,
	}
	if c.Key != nil {
		cfg.Signer = NewKeySigner(c.Key)
	}
	cfg.EnsureDefaults()
	return cfg, cfg.Validate()
}

// Engine is the bft consensus engine of one node: it drives a Core from
// one goroutine (the loop), turns a ticker into ticks, and does the Core's
// I/O through the Host and the Storage. A second goroutine (the worker)
// builds and verifies blocks, so that executing a block does not stop the
// loop from counting votes. All exported methods are goroutine-safe.
type Engine struct {
	cfg  EngineConfig
	host consensus.Host
	log  *slog.Logger

	inbox   chan inbound
	work    chan workItem
	results chan func(*Core)
	stop    chan struct{}
	done    sync.WaitGroup

	// mu guards the core. The loop holds it only while it calls the core,
	// never during Host or Storage calls, so the host may call
	// SetValidators from inside CommitBlock.
	mu struct {
		sync.Mutex
		core             *Core
		started, stopped bool
		err              error
	}
	stopOnce sync.Once
	dropped  atomic.Uint64 // messages refused before reaching the core
}

type inbound struct {
	from    consensus.NodeID
	payload []byte
}

type workItem struct {
	build  *BuildRequest
	verify *types.Block
}

var _ consensus.Engine = (*Engine)(nil)

// New returns a bft engine for host.Self(). It checks the configuration;
// Start loads the saved state and begins.
func New(cfg EngineConfig, host consensus.Host, log *slog.Logger) (*Engine, error) {
	cfg.ensureDefaults()
	if cfg.Key != nil && crypto.PubkeyToAddress(cfg.Key.PublicKey) != host.Self() {
		return nil, fmt.Errorf("%w: Key is for %s, host is %s", ErrBadConfig, crypto.PubkeyToAddress(cfg.Key.PublicKey), host.Self())
	}
	if cfg.Key != nil && cfg.Storage == nil {
		return nil, fmt.Errorf("%w: Storage: required for a validator", ErrBadConfig)
	}
	if _, err := cfg.coreConfig(host.Self()); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Engine{
		cfg:     cfg,
		host:    host,
		log:     log.With("engine", "bft"),
		inbox:   make(chan inbound, cfg.InboxSize),
		work:    make(chan workItem),
		results: make(chan func(*Core), 16),
		stop:    make(chan struct{}),
	}, nil
}

// Start creates the core from the host's head and the saved state, and
// starts the loop and the worker.
func (e *Engine) Start() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.mu.started || e.mu.stopped {
		return errors.New("bft engine: Start called twice or after Stop")
	}
	head := e.host.Head()
	if head == nil {
		return errors.New("bft engine: host has no head block")
	}
	var saved *SavedState
	if e.cfg.Storage != nil {
		s, err := e.cfg.Storage.Load()
		if err != nil {
			return err
		}
		saved = s
	}
	cfg, err := e.cfg.coreConfig(e.host.Self())
	if err != nil {
		return err
	}
	core, err := NewCore(cfg, Head{Number: head.Number.Uint64(), Hash: head.Hash()}, saved)
	if err != nil {
		return err
	}
	e.mu.core, e.mu.started = core, true
	e.done.Add(2)
	go e.loop()
	go e.worker()
	return nil
}

// Notify is accepted for the Engine contract. The round's proposer asks
// the host for a block when its round starts (and CommitWait paces
// heights), so there is nothing to wake.
func (e *Engine) Notify([]*types.Transaction) {}

// HandleMessage queues a peer's message. It never blocks: oversized
// messages, and messages beyond the inbox bound, are dropped (validators
// re-send). The engine keeps its own copy of payload.
func (e *Engine) HandleMessage(from consensus.NodeID, payload []byte) {
	if len(payload) == 0 || len(payload) > e.cfg.MaxMessageBytes {
		e.dropped.Add(1)
		return
	}
	select {
	case e.inbox <- inbound{from: from, payload: append([]byte(nil), payload...)}:
	default:
		e.dropped.Add(1)
	}
}

// Head is the last committed block: bft blocks are final when committed.
func (e *Engine) Head(uint64) *types.Header { return e.host.Head() }

// Stop ends the loop and the worker and waits for them (a block being
// built or verified is finished first).
func (e *Engine) Stop() {
	e.stopOnce.Do(func() {
		e.mu.Lock()
		e.mu.stopped = true
		e.mu.Unlock()
		close(e.stop)
	})
	e.done.Wait()
}

// Err is the error that halted the engine, nil while it runs normally.
func (e *Engine) Err() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.mu.err
}

// SetValidators makes ids the validator set from height from on; see
// Core.SetValidators. The node calls it when it commits a block that
// decides a change (it may do so from inside Host.CommitBlock), and after
// a restart for changes not yet in force. A change decided by block K can
// take effect at K+2 at the earliest.
func (e *Engine) SetValidators(from uint64, ids []consensus.NodeID) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.mu.core == nil {
		return errors.New("bft engine: not started")
	}
	return e.mu.core.SetValidators(from, ids)
}

// Evidence returns the equivocations this node has seen (see Evidence).
func (e *Engine) Evidence() []Evidence {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.mu.core == nil {
		return nil
	}
	return e.mu.core.Evidence()
}

// Stats returns the consensus counters. Dropped includes messages the
// engine refused before the core saw them (size, full inbox).
func (e *Engine) Stats() Stats {
	e.mu.Lock()
	defer e.mu.Unlock()
	var s Stats
	if e.mu.core != nil {
		s = e.mu.core.Stats()
	}
	s.Dropped += e.dropped.Load()
	return s
}

func (e *Engine) withCore(fn func(*Core)) {
	e.mu.Lock()
	defer e.mu.Unlock()
	fn(e.mu.core)
}

// halt stops the engine after an error it cannot continue from (a block
// that cannot be committed, a state that cannot be saved, a broken core
// invariant). It logs one loud line; the node decides what to do next.
func (e *Engine) halt(err error) {
	e.mu.Lock()
	if e.mu.err == nil {
		e.mu.err = err
	}
	e.mu.Unlock()
	e.log.Error("bft engine halted", "err", err)
}

func (e *Engine) loop() {
	defer e.done.Done()
	defer func() {
		if r := recover(); r != nil {
			// A broken invariant: we cannot know what we would sign next.
			e.halt(fmt.Errorf("bft core panic: %v\n%s", r, debug.Stack()))
		}
	}()
	ticker := time.NewTicker(e.cfg.TickInterval)
	defer ticker.Stop()
	var pending []workItem
	for {
		var workCh chan workItem
		var next workItem
		if len(pending) > 0 {
			workCh, next = e.work, pending[0]
		}
		select {
		case <-e.stop:
			return
		case <-ticker.C:
			e.withCore(func(c *Core) { c.Tick() })
		case in := <-e.inbox:
			e.withCore(func(c *Core) {
				c.Step(in.from, in.payload)
				for i := 1; i < maxInboxBatch; i++ {
					select {
					case in := <-e.inbox:
						c.Step(in.from, in.payload)
					default:
						return
					}
				}
			})
		case fn := <-e.results:
			e.withCore(fn)
		case workCh <- next:
			pending = pending[1:]
		}
		more, err := e.handleReady()
		if err != nil {
			e.halt(err)
			return
		}
		pending = append(pending, more...)
		if len(pending) > maxPendingWork {
			// The core asks again (or times out the round) if an answer
			// never comes.
			pending = pending[len(pending)-maxPendingWork:]
		}
	}
}

// handleReady does the core's I/O in the order Ready prescribes, and
// returns the build and verify work for the worker.
func (e *Engine) handleReady() ([]workItem, error) {
	var work []workItem
	for i := 0; i < maxReadyBatches; i++ {
		var rd Ready
		var has bool
		e.withCore(func(c *Core) {
			if has = c.HasReady(); has {
				rd = c.Ready()
			}
		})
		if !has {
			return work, nil
		}
		for _, cm := range rd.Commits {
			if err := e.host.CommitBlock(cm.Block, cm.Seal); err != nil {
				return nil, fmt.Errorf("commit block %d %s: %w", cm.Block.NumberU64(), cm.Block.Hash(), err)
			}
			e.log.Debug("committed", "height", cm.Block.NumberU64(), "hash", cm.Block.Hash(), "round", cm.Round, "synced", cm.Synced, "txs", len(cm.Block.Transactions()))
		}
		if rd.State != nil && e.cfg.Storage != nil {
			if err := e.cfg.Storage.Save(rd.State); err != nil {
				return nil, fmt.Errorf("save consensus state at height %d: %w", rd.State.Height, err)
			}
		}
		for _, m := range rd.Messages {
			if m.Broadcast {
				e.host.Broadcast(m.Payload)
			} else {
				e.host.Send(m.To, m.Payload)
			}
		}
		for _, s := range rd.Serve {
			for h := s.From; h < s.From+uint64(s.Count); h++ {
				b, seal := e.host.BlockByNumber(h)
				if b == nil {
					break
				}
				e.host.Send(s.To, EncodeSyncBlock(b, seal))
			}
		}
		if rd.Build != nil {
			work = append(work, workItem{build: rd.Build})
		}
		for _, b := range rd.Verify {
			work = append(work, workItem{verify: b})
		}
		e.withCore(func(c *Core) { c.Advance() })
	}
	return nil, fmt.Errorf("bft core produced more than %d Ready batches in a row", maxReadyBatches)
}

// worker builds and verifies blocks, one at a time, and hands each answer
// back to the loop.
func (e *Engine) worker() {
	defer e.done.Done()
	for {
		var w workItem
		select {
		case <-e.stop:
			return
		case w = <-e.work:
		}
		var fn func(*Core)
		switch {
		case w.build != nil:
			br := *w.build
			b, err := e.build(br)
			if err != nil {
				e.log.Warn("build block failed", "height", br.Height, "round", br.Round, "err", err)
			}
			fn = func(c *Core) { c.Propose(br.Height, br.Round, b, err) }
		case w.verify != nil:
			b := w.verify
			err := e.host.VerifyBlock(b)
			if err != nil {
				e.log.Info("proposed block is invalid", "height", b.NumberU64(), "hash", b.Hash(), "err", err)
			}
			hash := b.Hash()
			fn = func(c *Core) { c.Verified(hash, err) }
		}
		select {
		case <-e.stop:
			return
		case e.results <- fn:
		}
	}
}

func (e *Engine) build(br BuildRequest) (*types.Block, error) {
	parent := e.host.Head()
	if parent == nil || parent.Hash() != br.Parent {
		return nil, fmt.Errorf("head moved: want parent %s", br.Parent)
	}
	// Timestamps never go back; sub-second blocks share a second.
	ts := uint64(max(e.cfg.Now().Unix(), 0))
	ts = max(ts, parent.Time)
	return e.host.BuildBlock(parent, ts, e.host.Self())
}
