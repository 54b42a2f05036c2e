// Package solo is the single-sealer engine of development chains: the one
// node seals a block as soon as transactions wait, and every block is final
// when committed.
package solo

import (
	"log/slog"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/core/types"

	"github.com/charter-ledger/charter/internal/consensus"
)

// Config of the solo engine.
type Config struct {
	// BlockTime is how often the sealer looks for waiting transactions
	// without being notified, and the interval of empty blocks when
	// ForceEmpty is set.
	BlockTime time.Duration
	// ForceEmpty seals a block every BlockTime even when nothing waits.
	ForceEmpty bool
	// Pending reports whether transactions wait; nil means never.
	Pending func() bool
	// Due reports whether the next block has work of its own even if no
	// transaction waits (a governance decision executes at its start);
	// checked every BlockTime. Nil means never.
	Due func() bool
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Engine is the solo sealer.
type Engine struct {
	cfg   Config
	host  consensus.Host
	log   *slog.Logger
	wake  chan struct{}
	stop  chan struct{}
	done  chan struct{}
	start sync.Once
	once  sync.Once
}

var _ consensus.Engine = (*Engine)(nil)

// New returns a solo engine sealing through host.
func New(cfg Config, host consensus.Host, log *slog.Logger) *Engine {
	if cfg.BlockTime <= 0 {
		cfg.BlockTime = time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Due == nil {
		cfg.Due = func() bool { return false }
	}
	if cfg.Pending == nil {
		cfg.Pending = func() bool { return false }
	}
	return &Engine{cfg: cfg, host: host, log: log, wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
}

// Start begins sealing.
func (e *Engine) Start() error {
	e.start.Do(func() { go e.loop() })
	return nil
}

// Notify wakes the sealer; it never blocks.
func (e *Engine) Notify([]*types.Transaction) {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// HandleMessage drops everything: solo has no peers.
func (e *Engine) HandleMessage(consensus.NodeID, []byte) {}

// Head is the last committed block: solo blocks are final when committed.
func (e *Engine) Head(uint64) *types.Header { return e.host.Head() }

// Stop ends sealing; a block being sealed is finished first.
func (e *Engine) Stop() {
	e.once.Do(func() { close(e.stop) })
	// An engine never started has no loop to wait for.
	e.start.Do(func() { close(e.done) })
	<-e.done
}

func (e *Engine) loop() {
	defer close(e.done)
	ticker := time.NewTicker(e.cfg.BlockTime)
	defer ticker.Stop()
	for {
		force := false
		select {
		case <-e.stop:
			return
		case <-e.wake:
		case <-ticker.C:
			force = e.cfg.ForceEmpty || e.cfg.Due()
		}
		// Seal back to back while transactions wait: what arrives while a
		// block is sealed goes into the next one.
		for force || e.cfg.Pending() {
			select {
			case <-e.stop:
				return
			default:
			}
			if !e.seal(force) {
				break
			}
			force = false
		}
	}
}

// seal builds and commits one block; it reports whether a block was made.
func (e *Engine) seal(force bool) bool {
	parent := e.host.Head()
	ts := uint64(e.cfg.Now().Unix())
	block, err := e.host.BuildBlock(parent, ts, e.host.Self())
	if err != nil {
		e.log.Error("Cannot build block", "height", parent.Number.Uint64()+1, "err", err)
		return false
	}
	if len(block.Transactions()) == 0 && !force {
		return false
	}
	if err := e.host.CommitBlock(block, nil); err != nil {
		e.log.Error("Cannot commit block", "height", block.NumberU64(), "err", err)
		return false
	}
	return true
}
