// Package raft is Charter's crash-fault-tolerant consensus engine: a thin
// adapter over etcd's raft library (go.etcd.io/raft/v3, RawNode) in which
// every raft entry is one block.
//
// The package has two layers (see docs/design/raft.md):
//
//   - Core, a deterministic state machine: RawNode, the block pipeline
//     (the leader builds and proposes, every node verifies and commits
//     committed entries in order), block transfer for nodes behind a
//     snapshot, transaction forwarding, and the Storage it persists to.
//     It reads no clock and no socket; simulations drive many cores in one
//     goroutine.
//   - Engine, the driver implementing consensus.Engine: one goroutine that
//     owns the Core, turns a ticker into raft ticks, feeds it peer messages
//     and notifications from bounded queues, and sends what it produces
//     through the Host.
package raft

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/core/types"

	"github.com/charter-ledger/charter/internal/consensus"
)

// Engine is the raft consensus engine of one node.
type Engine struct {
	cfg  Config
	host consensus.Host
	log  *slog.Logger

	inbox  chan inbound
	notify chan []*types.Transaction
	stop   chan struct{}
	done   chan struct{}
	halted chan error

	mu struct {
		sync.Mutex
		started, stopped bool
		core             *Core
		store            Storage
	}
	stopOnce    sync.Once
	closeHalted sync.Once
	dropped     counters  // inbox overflow before the core exists or while it is busy
	sched       *schedule // validator sets decided by governance, shared with the core
}

type inbound struct {
	from    consensus.NodeID
	payload []byte
}

var _ consensus.Engine = (*Engine)(nil)

// New returns a raft engine for the node host.Self(). It validates the
// configuration; the WAL is opened by Start. A node that is neither a
// validator nor a learner of the genesis starts as a non-member: it waits
// until a configuration change adds it (see SetValidators), then catches
// up from the leader.
func New(cfg Config, env consensus.Env) (*Engine, error) {
	host, log := env.Host, env.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.DataDir == "" && env.Dir != "" {
		cfg.DataDir = filepath.Join(env.Dir, "raft")
	}
	if cfg.FS == nil {
		cfg.FS = env.FS
	}
	if cfg.Forward == nil {
		cfg.Forward = host.AddRemoteTxs
	}
	if cfg.Pending == nil {
		cfg.Pending = host.Pending
	}
	if cfg.Due == nil {
		cfg.Due = host.Due
	}
	if cfg.PendingTxs == nil {
		cfg.PendingTxs = host.PendingTxs
	}
	cfg.EnsureDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.DataDir == "" {
		return nil, fmt.Errorf("%w: DataDir is empty", ErrInvalidConfig)
	}
	return &Engine{
		sched:  new(schedule),
		cfg:    cfg,
		host:   host,
		log:    log,
		inbox:  make(chan inbound, cfg.InboxSize),
		notify: make(chan []*types.Transaction, 64),
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
		halted: make(chan error, 1),
	}, nil
}

// Start opens the WAL in DataDir, reconciles it with the chain and starts
// the engine goroutine.
func (e *Engine) Start() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.mu.started || e.mu.stopped {
		return errors.New("raft engine: Start called twice or after Stop")
	}
	store, err := OpenWAL(e.cfg.FS, e.cfg.DataDir, e.cfg.SegmentBytes, e.log)
	if err != nil {
		return err
	}
	core, err := NewCore(e.cfg, e.host.Self(), e.host, store, e.log)
	if err != nil {
		store.Close()
		return err
	}
	core.sched = e.sched
	e.mu.started, e.mu.core, e.mu.store = true, core, store
	go e.loop(core)
	return nil
}

// Notify tells the engine that transactions wait in the pool. It never
// blocks: when the queue is full the notification is dropped (the leader
// still finds them at the next block time).
func (e *Engine) Notify(txs []*types.Transaction) {
	select {
	case e.notify <- txs:
	default:
	}
}

// HandleMessage queues a peer's message for the engine goroutine. It never
// blocks: oversized messages and messages beyond the inbox bound are
// dropped (raft retransmits). The engine keeps payload: the caller must
// not modify it afterwards.
func (e *Engine) HandleMessage(from consensus.NodeID, payload []byte) {
	if len(payload) > e.cfg.MaxMessageBytes {
		e.dropped.dropped.Add(1)
		return
	}
	select {
	case e.inbox <- inbound{from, payload}:
	default:
		e.dropped.dropped.Add(1)
	}
}

// SetValidators records that governance made ids the validator set from
// height from on; the raft voters become ids (configured learners not in
// ids stay or become learners, other members leave the group). Raft has no
// heights in its log: the leader proposes the change once its chain
// reaches from-1, nodes not yet members join first as learners (at once,
// for a set decided for later), and new voters are promoted when caught
// up. The node calls it from CommitBlock of the deciding block, and at
// start for the set in force and the later decided ones. Goroutine-safe;
// may be called before Start.
func (e *Engine) SetValidators(from uint64, ids []consensus.NodeID) error {
	if err := checkValidatorSet(ids); err != nil {
		return err
	}
	e.sched.set(from, ids)
	return nil
}

// Head is the last committed block: raft blocks are final when committed.
func (e *Engine) Head(uint64) *types.Header { return e.host.Head() }

// Counters returns the engine's counters.
func (e *Engine) Counters() Stats {
	e.mu.Lock()
	core := e.mu.core
	e.mu.Unlock()
	var s Stats
	if core != nil {
		s = core.Counters()
	}
	s.Dropped += e.dropped.dropped.Load()
	return s
}

// Stats implements consensus.Engine.
func (e *Engine) Stats() consensus.Stats {
	s := e.Counters()
	out := consensus.Stats{LeaderChanges: s.LeaderChanges, Dropped: s.Dropped}
	for t := MsgType(1); int(t) < numMsgTypes; t++ {
		out.Messages = append(out.Messages, consensus.MessageStats{Type: t.String(),
			MsgsIn: s.Received[t].Msgs, MsgsOut: s.Sent[t].Msgs, BytesIn: s.Received[t].Bytes, BytesOut: s.Sent[t].Bytes})
	}
	return out
}

// Done implements consensus.Engine.
func (e *Engine) Done() <-chan error { return e.halted }

// Stop ends the engine goroutine and closes the WAL. Blocks already
// committed stay.
func (e *Engine) Stop() {
	e.stopOnce.Do(func() { close(e.stop) })
	e.mu.Lock()
	started := e.mu.started
	e.mu.stopped = true
	store := e.mu.store
	e.mu.Unlock()
	if !started {
		e.closeHalted.Do(func() { close(e.halted) })
		return
	}
	<-e.done
	e.closeHalted.Do(func() { close(e.halted) })
	if err := store.Close(); err != nil {
		e.log.Warn("Closing the raft WAL failed", "err", err)
	}
}

// loop is the engine goroutine, the only one that touches the core.
func (e *Engine) loop(core *Core) {
	defer close(e.done)
	ticker := time.NewTicker(e.cfg.TickInterval)
	defer ticker.Stop()
	e.flush(core)
	for {
		var err error
		if core.HasWork() {
			// Entries wait to be applied: take any input first, else apply
			// the next batch.
			select {
			case <-e.stop:
				return
			case now := <-ticker.C:
				err = core.Tick(now)
			case in := <-e.inbox:
				err = core.Step(in.from, in.payload)
			case txs := <-e.notify:
				err = core.Notify(txs)
			default:
				err = core.Process()
			}
		} else {
			select {
			case <-e.stop:
				return
			case now := <-ticker.C:
				err = core.Tick(now)
			case in := <-e.inbox:
				err = core.Step(in.from, in.payload)
			case txs := <-e.notify:
				err = core.Notify(txs)
			}
		}
		e.flush(core)
		if err != nil {
			// The core logged the reason; it does nothing from now on.
			e.halted <- fmt.Errorf("raft engine halted: %w", err)
			if e.cfg.OnHalt != nil {
				e.cfg.OnHalt(err)
			}
			<-e.stop
			return
		}
	}
}

// flush sends the core's messages. Host.Send is best effort and must not
// block for long.
func (e *Engine) flush(core *Core) {
	for _, m := range core.TakeMessages() {
		e.host.Send(m.To, m.Payload)
	}
}
