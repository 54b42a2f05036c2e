// Package solo is the single-sealer engine of development chains: the one
// node seals a block as soon as transactions wait (and every BlockTime when
// governance has work due, or always with ForceEmpty), and every block is
// final when committed. It is a consensus.Core run by the consensus
// Driver, like every engine; it keeps no state of its own.
package solo

import (
	"errors"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/charter-ledger/charter/internal/consensus"
)

// Config of the solo engine.
type Config struct {
	// BlockTime is how often the sealer looks for waiting transactions
	// without being notified, and the interval of empty blocks when
	// ForceEmpty is set. Default 1s.
	BlockTime time.Duration
	// ForceEmpty seals a block every BlockTime even when nothing waits.
	ForceEmpty bool
}

// New returns a solo engine sealing through env.Host.
func New(cfg Config, env consensus.Env) (consensus.Engine, error) {
	if cfg.BlockTime <= 0 {
		cfg.BlockTime = time.Second
	}
	if env.Host == nil {
		return nil, errors.New("solo: New needs a host")
	}
	host := env.Host
	return consensus.NewDriver(consensus.DriverConfig{Name: "solo", TickInterval: cfg.BlockTime}, env,
		func([]byte) (consensus.Core, error) { return NewCore(cfg, host.Head()), nil })
}

// Core is the solo sealer's state machine: a tick or a notification asks
// for a block on the head; a block with transactions is committed and
// followed at once by the next request (what arrives while a block is
// sealed goes into the next one); an empty answer ends the run.
type Core struct {
	cfg      Config
	head     *types.Header
	seq      uint64 // ID of the last build request
	building bool
	again    bool // asked again while building
	againMT  bool // ... for an empty block
	rd       consensus.Ready
}

var _ consensus.Core = (*Core)(nil)

// NewCore returns a sealer on top of head. Each Tick is one BlockTime.
func NewCore(cfg Config, head *types.Header) *Core { return &Core{cfg: cfg, head: head} }

func (c *Core) build(empty bool) {
	if c.building {
		c.again, c.againMT = true, c.againMT || empty
		return
	}
	c.seq++
	c.building = true
	c.rd.Build = &consensus.BuildRequest{ID: c.seq, Parent: c.head, Empty: empty}
}

// Tick asks for a block every BlockTime: an empty one too with ForceEmpty
// (or, decided by the driver, when governance has work due).
func (c *Core) Tick() { c.build(c.cfg.ForceEmpty) }

// Notify asks for a block now.
func (c *Core) Notify([]*types.Transaction) { c.build(false) }

// Built commits the block, then asks again while blocks come out full of
// transactions.
func (c *Core) Built(req consensus.BuildRequest, b *types.Block, err error) {
	if !c.building || req.ID != c.seq {
		return
	}
	c.building = false
	again, empty := c.again, c.againMT
	c.again, c.againMT = false, false
	if err == nil && b != nil && b.ParentHash() == c.head.Hash() {
		c.rd.Commits = append(c.rd.Commits, consensus.SealedBlock{Block: b})
		c.head = b.Header()
		again = again || len(b.Transactions()) > 0
	}
	if again {
		c.build(empty)
	}
}

// Step drops everything: solo has no peers.
func (c *Core) Step(consensus.NodeID, []byte) error { return errors.New("solo: no peers") }

// Verified is never asked for.
func (c *Core) Verified(common.Hash, error) {}

// Served is never asked for.
func (c *Core) Served(consensus.ServeRequest, []consensus.SealedBlock) {}

// SetValidators accepts any set: the one node seals whatever the registry
// says (a development chain).
func (c *Core) SetValidators(uint64, []consensus.NodeID) error { return nil }

// HasReady implements consensus.Core.
func (c *Core) HasReady() bool { return !c.rd.Empty() }

// Ready implements consensus.Core.
func (c *Core) Ready() consensus.Ready {
	rd := c.rd
	c.rd = consensus.Ready{}
	return rd
}

// Advance implements consensus.Core.
func (c *Core) Advance() {}

// Head is the last committed block: solo blocks are final when committed.
func (c *Core) Head(uint64) consensus.HeadRef { return consensus.HeadRef{Latest: true} }

// Stats implements consensus.Core.
func (c *Core) Stats() consensus.Stats { return consensus.Stats{Height: c.head.Number.Uint64()} }

// Err implements consensus.Core: solo never stops itself.
func (c *Core) Err() error { return nil }

// FromSpec makes the solo engine of a development chain: it runs one node
// alone.
func FromSpec(spec consensus.Spec, env consensus.Env) (consensus.Engine, consensus.Profile, error) {
	if spec.Network {
		return nil, consensus.Profile{}, errors.New("config: network: the solo engine runs one node alone; use raft, bft or poa for a network")
	}
	e, err := New(Config{BlockTime: spec.BlockTime, ForceEmpty: spec.ForceEmpty}, env)
	return e, consensus.Profile{}, err
}
