package poa

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum/core/types"

	"github.com/charter-ledger/charter/internal/consensus"
)

// Engine is the poa consensus.Engine: it drives a Core with one goroutine,
// turns real time into ticks and does the core's I/O through the Host and
// a Storage.
//
//	e, err := poa.New(cfg, host, poa.FileStorage{Path: dir + "/poa-state"})
//	err = e.Start()
//	...
//	e.Stop()
//
// All methods are goroutine-safe. SetValidators may also be called from
// inside Host.CommitBlock (governance runs there).
type Engine struct {
	cfg   Config
	host  consensus.Host
	store Storage
	log   *slog.Logger

	inbox chan inMsg
	stop  chan struct{}
	done  chan struct{}

	mu struct {
		sync.Mutex
		core    *Core // owned by the loop; others touch it only under mu
		started bool
		stopped bool
		err     error // why the loop halted, if it did
	}
	dropped atomic.Uint64 // messages lost to a full inbox
}

type inMsg struct {
	from    consensus.NodeID
	payload []byte
}

// New checks cfg and makes an engine; Start begins consensus.
func New(cfg Config, host consensus.Host, store Storage) (*Engine, error) {
	cfg.EnsureDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if host == nil || store == nil {
		return nil, errors.New("poa: New needs a host and a storage")
	}
	if self := host.Self(); self != cfg.ID() {
		return nil, fmt.Errorf("poa: host is %s but Config.Key is %s", self, cfg.ID())
	}
	e := &Engine{
		cfg:   cfg,
		host:  host,
		store: store,
		log:   cfg.Logger.With("engine", "poa", "node", cfg.ID()),
		inbox: make(chan inMsg, cfg.InboxSize),
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
	}
	return e, nil
}

// Start loads the persisted state and the host's last committed block and
// starts the loop.
func (e *Engine) Start() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.mu.started {
		return errors.New("poa: engine already started")
	}
	head := e.host.Head()
	if head == nil {
		return errors.New("poa: host has no head block")
	}
	base, seal := e.host.BlockByNumber(head.Number.Uint64())
	if base == nil {
		return fmt.Errorf("poa: host has no block %d", head.Number.Uint64())
	}
	if head.Number.Sign() == 0 {
		seal = nil
	}
	st, _, err := e.store.Load()
	if err != nil {
		return err
	}
	core, err := NewCore(e.cfg, e.host, base, seal, st)
	if err != nil {
		return err
	}
	e.mu.core = core
	e.mu.started = true
	go e.run()
	return nil
}

// Stop ends the loop and waits for it.
func (e *Engine) Stop() {
	e.mu.Lock()
	if !e.mu.started || e.mu.stopped {
		e.mu.stopped = true
		e.mu.Unlock()
		return
	}
	e.mu.stopped = true
	e.mu.Unlock()
	close(e.stop)
	<-e.done
}

// Err reports why the engine halted by itself (storage or host failure, a
// broken invariant), nil while it runs.
func (e *Engine) Err() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.mu.err
}

// Notify implements consensus.Engine. Blocks are sealed every period
// anyway, so this is only a hint.
func (e *Engine) Notify([]*types.Transaction) {}

// HandleMessage implements consensus.Engine. It never blocks: when the
// inbox is full the message is dropped, as the network might have.
func (e *Engine) HandleMessage(from consensus.NodeID, payload []byte) {
	if len(payload) > e.cfg.MaxMessageBytes {
		return
	}
	select {
	case e.inbox <- inMsg{from, payload}:
	default:
		e.dropped.Add(1)
	}
}

// Head implements consensus.Engine. It reads the host without holding
// the engine's lock, so a host may call it while holding its own.
func (e *Engine) Head(confirmations uint64) *types.Header {
	e.mu.Lock()
	core := e.mu.core
	var (
		h        *types.Header
		n        uint64
		fallback *types.Header
	)
	if core != nil {
		h, n = core.headLocal(confirmations)
		fallback = core.base.block.Header()
	}
	e.mu.Unlock()
	switch {
	case core == nil:
		return e.host.Head()
	case h != nil:
		return h
	}
	return headFrom(e.host, n, fallback)
}

// SetValidators replaces the validator set from height from on. See
// Core.SetValidators for the rule every node must follow.
func (e *Engine) SetValidators(from uint64, ids []consensus.NodeID) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.mu.core == nil {
		return errors.New("poa: SetValidators before Start")
	}
	return e.mu.core.SetValidators(from, ids)
}

// Status returns the core's position.
func (e *Engine) Status() Status {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.mu.core == nil {
		return Status{}
	}
	return e.mu.core.Status()
}

// EngineStats are the core's drop counters plus the adapter's own, for
// metrics.
type EngineStats struct {
	Stats
	InboxDropped uint64 // messages lost to a full inbox
}

// Stats returns the counters.
func (e *Engine) Stats() EngineStats {
	e.mu.Lock()
	defer e.mu.Unlock()
	var st EngineStats
	if e.mu.core != nil {
		st.Stats = e.mu.core.Stats()
	}
	st.InboxDropped = e.dropped.Load()
	return st
}

func (e *Engine) run() {
	defer close(e.done)
	defer func() {
		// A broken invariant halts the engine with one loud line; it
		// cannot know what it would sign next (STYLE.md §6).
		if r := recover(); r != nil {
			e.halt(fmt.Errorf("poa: halted: %v", r))
		}
	}()
	ticker := time.NewTicker(e.cfg.TickInterval)
	defer ticker.Stop()
	for {
		if err := e.drain(); err != nil {
			e.halt(err)
			return
		}
		select {
		case <-e.stop:
			return
		case <-ticker.C:
			e.withCore(func(c *Core) { c.Tick() })
		case m := <-e.inbox:
			e.withCore(func(c *Core) { c.Step(m.from, m.payload) })
		}
	}
}

func (e *Engine) halt(err error) {
	e.log.Error("poa engine halted", "err", err)
	e.mu.Lock()
	e.mu.err = err
	e.mu.Unlock()
}

func (e *Engine) withCore(f func(*Core)) {
	e.mu.Lock()
	defer e.mu.Unlock()
	f(e.mu.core)
}

// maxDrain bounds the Ready batches handled between two inputs.
const maxDrain = 64

// drain does the core's I/O until it has none: persist, commit, send,
// Advance, then build and verify. The lock is not held during I/O, so
// Host.CommitBlock may call SetValidators or Head.
func (e *Engine) drain() error {
	for i := 0; i < maxDrain; i++ {
		var rd Ready
		has := false
		e.withCore(func(c *Core) {
			if has = c.HasReady(); has {
				rd = c.Ready()
			}
		})
		if !has {
			return nil
		}
		if rd.State != nil {
			if err := e.store.Save(*rd.State); err != nil {
				return err
			}
		}
		for _, sb := range rd.Commit {
			if err := e.host.CommitBlock(sb.Block, sb.Seal()); err != nil {
				return fmt.Errorf("poa: commit block %d: %w", sb.Block.NumberU64(), err)
			}
		}
		for _, m := range rd.Messages {
			if m.Broadcast() {
				e.host.Broadcast(m.Payload)
			} else {
				e.host.Send(m.To, m.Payload)
			}
		}
		e.withCore(func(c *Core) { c.Advance() })
		if b := rd.Build; b != nil {
			ts := uint64(time.Now().Unix())
			if ts < b.Parent.Time {
				ts = b.Parent.Time
			}
			block, err := e.host.BuildBlock(b.Parent, ts, e.cfg.ID())
			if err != nil {
				e.log.Warn("build block failed", "ballot", b.Ballot, "err", err)
			}
			e.withCore(func(c *Core) { c.BuildDone(*b, block, err) })
		}
		for _, blk := range rd.Verify {
			err := e.host.VerifyBlock(blk)
			if err != nil {
				e.log.Warn("block rejected", "height", blk.NumberU64(), "hash", blk.Hash(), "err", err)
			}
			e.withCore(func(c *Core) { c.VerifyDone(blk.Hash(), err) })
		}
	}
	return nil
}
