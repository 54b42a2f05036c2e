package consensus

import (
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum/core/types"

	"github.com/charter-ledger/charter/internal/durable"
)

// Bounds of the Driver.
const (
	// DefaultInboxSize bounds the peer messages waiting for the core;
	// beyond it messages are dropped (engines re-send).
	DefaultInboxSize = 4096
	// notifyQueue bounds the Notify batches waiting; beyond it a batch is
	// dropped (the core also looks at the pool every block time).
	notifyQueue = 64
	// maxInboxBatch is the most peer messages handed to the core under one
	// lock.
	maxInboxBatch = 64
	// maxPendingWork bounds the builds and verifications waiting for the
	// worker. A core has one build out at a time (a newer request replaces
	// a waiting one) and bounds the blocks it asks to verify (bft per
	// height, poa its pending blocks), so the bound is never reached by a
	// correct core; reaching it halts the engine. Work is never dropped: a
	// core waits for every answer.
	maxPendingWork = 4096
	// maxResults bounds the worker's answers waiting for the loop.
	maxResults = 16
	// maxEarlyChanges bounds the validator changes kept before Start.
	maxEarlyChanges = 1024
)

// DriverConfig configures a Driver.
type DriverConfig struct {
	// Name is the engine's name, in log lines and errors.
	Name string
	// TickInterval is the real duration of one Core.Tick.
	TickInterval time.Duration
	// InboxSize bounds the queue of peer messages; 0 means
	// DefaultInboxSize.
	InboxSize int
	// MaxMessageBytes bounds one peer message; larger ones are dropped
	// before the core sees them. 0: no bound here (the core checks).
	MaxMessageBytes int
	// State is where Ready.State is saved and where Start reads it back;
	// nil for an engine that keeps no state file.
	State *durable.StateFile
	// Close, if set, releases what Open acquired (raft's WAL); Stop calls
	// it once, after the goroutines ended.
	Close func() error
}

// Open makes the core at Start, from the state last saved (nil if none).
// It may read the host (its head, blocks) but keeps no reference to it in
// the core.
type Open func(saved []byte) (Core, error)

// Driver runs a Core: it implements Engine for every engine. One goroutine
// (the loop) owns the core: it feeds it ticks, peer messages and
// notifications from bounded queues, carries out each Ready (Apply) and
// acknowledges it (Advance). A second goroutine (the worker) builds and
// verifies blocks one at a time, so that executing a block never stops the
// loop from counting votes; its answers come back through the loop. The
// worker times its work (Pacer) and caps a block built for a request with
// a Budget to what the validators verify in time. A
// core error, a failed commit or save, or a panic halts the engine: one
// loud log line, the error on Done, nothing more done.
type Driver struct {
	cfg  DriverConfig
	host Host
	open Open
	log  *slog.Logger
	now  func() time.Time

	inbox   chan inbound
	notify  chan []*types.Transaction
	work    chan work
	results chan func(Core)
	stop    chan struct{}
	done    chan error
	wg      sync.WaitGroup

	// mu guards the core. The loop holds it only while it calls the core,
	// never while it calls the host, so the host may call SetValidators,
	// Head or Stats from inside CommitBlock.
	mu struct {
		sync.Mutex
		core             Core
		started, stopped bool
		early            []ValidatorChange // SetValidators before Start
	}
	// pacer caps the blocks built for a BuildRequest with a Budget by
	// the times the worker measured.
	pacer    Pacer
	haltOnce sync.Once
	stopOnce sync.Once
	dropped  atomic.Uint64 // messages refused before the core saw them
}

type inbound struct {
	from    NodeID
	payload []byte
}

type work struct {
	build  *BuildRequest
	verify *types.Block
	queued time.Time // when the core asked for it (debug log lines)
}

var _ Engine = (*Driver)(nil)

// NewDriver returns an engine that runs the core open makes at Start.
func NewDriver(cfg DriverConfig, env Env, open Open) (*Driver, error) {
	env.ensureDefaults()
	if env.Host == nil || open == nil {
		return nil, errors.New("consensus: NewDriver needs a host and an open function")
	}
	if cfg.TickInterval <= 0 {
		return nil, fmt.Errorf("%s: TickInterval %v must be positive", cfg.Name, cfg.TickInterval)
	}
	if cfg.InboxSize <= 0 {
		cfg.InboxSize = DefaultInboxSize
	}
	return &Driver{
		cfg:     cfg,
		host:    env.Host,
		open:    open,
		log:     env.Log.With("engine", cfg.Name),
		now:     env.Now,
		inbox:   make(chan inbound, cfg.InboxSize),
		notify:  make(chan []*types.Transaction, notifyQueue),
		work:    make(chan work),
		results: make(chan func(Core), maxResults),
		stop:    make(chan struct{}),
		done:    make(chan error, 1),
	}, nil
}

// Start loads the saved state, makes the core and starts the loop and the
// worker.
func (d *Driver) Start() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.mu.started || d.mu.stopped {
		return fmt.Errorf("%s engine: Start called twice or after Stop", d.cfg.Name)
	}
	if d.host.Head() == nil {
		return fmt.Errorf("%s engine: the host has no head block", d.cfg.Name)
	}
	var saved []byte
	if d.cfg.State != nil {
		s, err := d.cfg.State.Load()
		if err != nil {
			return fmt.Errorf("%s engine: %w", d.cfg.Name, err)
		}
		saved = s
	}
	core, err := d.open(saved)
	if err != nil {
		return err
	}
	for _, c := range d.mu.early {
		if err := core.SetValidators(c.From, c.IDs); err != nil {
			return fmt.Errorf("%s engine: validator change for height %d: %w", d.cfg.Name, c.From, err)
		}
	}
	d.mu.early = nil
	d.mu.core, d.mu.started = core, true
	d.wg.Add(2)
	go d.loop()
	go d.worker()
	return nil
}

// Notify implements Engine.
func (d *Driver) Notify(txs []*types.Transaction) {
	select {
	case d.notify <- txs:
	default:
	}
}

// HandleMessage implements Engine.
func (d *Driver) HandleMessage(from NodeID, payload []byte) {
	if len(payload) == 0 || (d.cfg.MaxMessageBytes > 0 && len(payload) > d.cfg.MaxMessageBytes) {
		d.dropped.Add(1)
		return
	}
	select {
	case d.inbox <- inbound{from: from, payload: append([]byte(nil), payload...)}:
	default:
		d.dropped.Add(1)
	}
}

// Head implements Engine. The host is read without the core's lock, so a
// host may call it while holding its own.
func (d *Driver) Head(confirmations uint64) *types.Header {
	d.mu.Lock()
	var ref HeadRef
	if d.mu.core != nil {
		ref = d.mu.core.Head(confirmations)
	} else {
		ref.Latest = true
	}
	d.mu.Unlock()
	switch {
	case ref.Header != nil:
		return ref.Header
	case ref.Latest:
		return d.host.Head()
	}
	if b, _ := d.host.BlockByNumber(ref.Number); b != nil {
		return b.Header()
	}
	// The host lacks a block the core counts as committed (it must not):
	// answer the genesis rather than a block with fewer confirmations.
	if b, _ := d.host.BlockByNumber(0); b != nil {
		return b.Header()
	}
	return nil
}

// SetValidators implements Engine. Before Start the change is kept and
// given to the core when Start makes it (an error then fails Start).
func (d *Driver) SetValidators(from uint64, ids []NodeID) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.mu.core == nil {
		if d.mu.stopped || len(d.mu.early) >= maxEarlyChanges {
			return fmt.Errorf("%s engine: SetValidators after Stop, or too many before Start", d.cfg.Name)
		}
		d.mu.early = append(d.mu.early, ValidatorChange{From: from, IDs: append([]NodeID(nil), ids...)})
		return nil
	}
	return d.mu.core.SetValidators(from, ids)
}

// Stats implements Engine.
func (d *Driver) Stats() Stats {
	d.mu.Lock()
	var s Stats
	if d.mu.core != nil {
		s = d.mu.core.Stats()
	}
	d.mu.Unlock()
	s.Dropped += d.dropped.Load()
	s.BuildPerTx, s.VerifyPerTx, s.BlockCap = d.pacer.Estimate()
	return s
}

// Pacer is the driver's estimate of build and verify times (for
// metrics and tests).
func (d *Driver) Pacer() *Pacer { return &d.pacer }

// Done implements Engine.
func (d *Driver) Done() <-chan error { return d.done }

// Stop implements Engine: it ends the loop and the worker and waits for
// them (a block being built or verified is finished first).
func (d *Driver) Stop() {
	d.stopOnce.Do(func() {
		d.mu.Lock()
		d.mu.stopped = true
		d.mu.Unlock()
		close(d.stop)
		d.wg.Wait()
		if d.cfg.Close != nil {
			if err := d.cfg.Close(); err != nil {
				d.log.Warn("Closing the engine's store failed", "err", err)
			}
		}
		d.haltOnce.Do(func() {}) // no halt from now on
		close(d.done)
	})
}

// WithCore runs fn with the core under its lock (nil before Start), for
// an engine's own read-only queries (raft's leader, bft's evidence).
func (d *Driver) WithCore(fn func(Core)) {
	d.mu.Lock()
	defer d.mu.Unlock()
	fn(d.mu.core)
}

func (d *Driver) withCore(fn func(Core)) {
	d.mu.Lock()
	defer d.mu.Unlock()
	fn(d.mu.core)
}

// halt stops the engine after an error it cannot continue from. It logs
// one loud line; the node decides what to do (it stops).
func (d *Driver) halt(err error) {
	d.haltOnce.Do(func() {
		d.log.Error("Consensus engine halted", "err", err)
		d.done <- fmt.Errorf("%s engine halted: %w", d.cfg.Name, err)
	})
}

// closed is a channel that is always ready: the loop selects on it when
// the core has Ready work, so that waiting inputs and that work alternate.
var closed = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

func (d *Driver) loop() {
	defer d.wg.Done()
	defer func() {
		if r := recover(); r != nil {
			// A broken invariant: the core cannot know what it would sign next.
			d.halt(fmt.Errorf("panic: %v\n%s", r, debug.Stack()))
		}
	}()
	ticker := time.NewTicker(d.cfg.TickInterval)
	defer ticker.Stop()
	var pending []work
	for {
		var (
			hasReady bool
			err      error
		)
		d.withCore(func(c Core) { hasReady, err = c.HasReady(), c.Err() })
		if err != nil {
			d.halt(err)
			return
		}
		var readyCh <-chan struct{}
		if hasReady {
			readyCh = closed
		}
		var workCh chan work
		var next work
		if len(pending) > 0 {
			workCh, next = d.work, pending[0]
		}
		select {
		case <-d.stop:
			return
		case <-ticker.C:
			d.withCore(func(c Core) { c.Tick() })
		case in := <-d.inbox:
			d.withCore(func(c Core) {
				_ = c.Step(in.from, in.payload)
				for i := 1; i < maxInboxBatch; i++ {
					select {
					case in := <-d.inbox:
						_ = c.Step(in.from, in.payload)
					default:
						return
					}
				}
			})
		case txs := <-d.notify:
			d.withCore(func(c Core) { c.Notify(txs) })
		case fn := <-d.results:
			d.withCore(fn)
		case workCh <- next:
			pending = pending[1:]
		case <-readyCh:
		}
		more, err := d.handleReady()
		if err != nil {
			d.halt(err)
			return
		}
		if pending, err = queueWork(pending, more); err != nil {
			d.halt(err)
			return
		}
	}
}

// queueWork adds a Ready's builds and verifications to the worker's queue:
// a build replaces a build still waiting (the core answers only its last
// request), a block already waiting to be verified is not queued twice.
func queueWork(pending, more []work) ([]work, error) {
	for _, w := range more {
		replaced := false
		for i, p := range pending {
			if (w.build != nil && p.build != nil) || (w.verify != nil && p.verify != nil && p.verify.Hash() == w.verify.Hash()) {
				pending[i], replaced = w, true
				break
			}
		}
		if !replaced {
			pending = append(pending, w)
		}
	}
	if len(pending) > maxPendingWork {
		return nil, fmt.Errorf("the core asked for more than %d builds and verifications at once", maxPendingWork)
	}
	return pending, nil
}

// handleReady carries out one Ready, if the core has one, and returns the
// builds and verifications for the worker.
func (d *Driver) handleReady() ([]work, error) {
	var (
		rd   Ready
		has  bool
		cerr error
	)
	d.withCore(func(c Core) {
		if cerr = c.Err(); cerr == nil && c.HasReady() {
			rd, has = c.Ready(), true
		}
	})
	if cerr != nil {
		return nil, cerr
	}
	if !has {
		return nil, nil
	}
	fx := &driverEffects{d: d}
	if err := Apply(rd, fx); err != nil {
		return nil, err
	}
	// Reads for the requests happen before the lock is taken again.
	served := make([][]SealedBlock, len(fx.serve))
	for i, s := range fx.serve {
		served[i] = ServeFrom(d.host, s)
	}
	var txs []*types.Transaction
	if fx.wantTxs > 0 {
		txs = d.host.PendingTxs(fx.wantTxs)
	}
	d.withCore(func(c Core) {
		c.Advance()
		for i, s := range fx.serve {
			c.Served(s, served[i])
		}
		if len(txs) > 0 {
			c.Notify(txs)
		}
	})
	return fx.work, nil
}

// driverEffects is Apply's Effects for the Driver: commits and state now,
// builds and verifications queued for the worker, reads after the Ready.
type driverEffects struct {
	d       *Driver
	work    []work
	serve   []ServeRequest
	wantTxs int
}

func (fx *driverEffects) Commit(sb SealedBlock) error {
	start := time.Now()
	if err := fx.d.host.CommitBlock(sb.Block, sb.Seal); err != nil {
		return err
	}
	fx.d.log.Debug("Committed", "height", sb.Block.NumberU64(), "hash", sb.Block.Hash(), "txs", len(sb.Block.Transactions()),
		"took", time.Since(start))
	return nil
}

func (fx *driverEffects) SaveState(state []byte) error {
	if fx.d.cfg.State == nil {
		return errors.New("the engine keeps no state file but its core produced state")
	}
	start := time.Now()
	if err := fx.d.cfg.State.Save(state); err != nil {
		return err
	}
	// Every vote waits for its save: a disk that holds one up for long
	// stalls the height (and may change the round).
	if took := time.Since(start); took >= slowStateSave {
		fx.d.log.Warn("Saving the consensus state was slow", "took", took, "bytes", len(state))
	}
	return nil
}

// slowStateSave is how long a state save may take before it is logged.
const slowStateSave = time.Second

func (fx *driverEffects) Send(m Message) {
	if m.Broadcast {
		fx.d.host.Broadcast(m.Payload)
	} else {
		fx.d.host.Send(m.To, m.Payload)
	}
}

func (fx *driverEffects) Build(req BuildRequest) {
	fx.work = append(fx.work, work{build: &req, queued: time.Now()})
}
func (fx *driverEffects) Verify(b *types.Block) {
	fx.work = append(fx.work, work{verify: b, queued: time.Now()})
}
func (fx *driverEffects) Serve(req ServeRequest) { fx.serve = append(fx.serve, req) }
func (fx *driverEffects) AddTxs(raw [][]byte)    { fx.d.host.AddRemoteTxs(raw) }
func (fx *driverEffects) WantTxs(max int)        { fx.wantTxs = max }

// worker builds and verifies blocks, one at a time, and hands each answer
// back to the loop.
func (d *Driver) worker() {
	defer d.wg.Done()
	defer func() {
		if r := recover(); r != nil {
			d.halt(fmt.Errorf("panic building or verifying a block: %v\n%s", r, debug.Stack()))
		}
	}()
	for {
		var w work
		select {
		case <-d.stop:
			return
		case w = <-d.work:
		}
		var fn func(Core)
		switch {
		case w.build != nil:
			req := *w.build
			if req.Budget > 0 {
				req.MaxTxs = d.pacer.Cap(req.Budget)
			}
			start := time.Now()
			b, err := BuildFor(d.host, d.host, d.host.Self(), req, d.now())
			if err != nil {
				d.log.Warn("Cannot build a block", "height", req.Parent.Number.Uint64()+1, "err", err)
			} else if b != nil {
				took := time.Since(start)
				d.pacer.Observe(WorkBuild, len(b.Transactions()), took)
				d.log.Debug("Built", "height", b.NumberU64(), "txs", len(b.Transactions()), "cap", req.MaxTxs,
					"waited", start.Sub(w.queued), "took", took)
				if req.MaxTxs > 0 && len(b.Transactions()) >= req.MaxTxs {
					d.log.Debug("Block capped to what validators verify in time", "height", b.NumberU64(),
						"txs", len(b.Transactions()), "budget", req.Budget, "build", took)
				}
			}
			fn = func(c Core) { c.Built(req, b, err) }
		case w.verify != nil:
			b := w.verify
			start := time.Now()
			err := d.host.VerifyBlock(b)
			if err != nil {
				d.log.Info("A proposed block is invalid", "height", b.NumberU64(), "hash", b.Hash(), "err", err)
			} else {
				took := time.Since(start)
				d.pacer.Observe(WorkVerify, len(b.Transactions()), took)
				d.log.Debug("Verified", "height", b.NumberU64(), "txs", len(b.Transactions()),
					"waited", start.Sub(w.queued), "took", took)
			}
			hash := b.Hash()
			fn = func(c Core) { c.Verified(hash, err) }
		}
		select {
		case <-d.stop:
			return
		case d.results <- fn:
		}
	}
}
