package node

import (
	"bytes"
	"fmt"
	"path/filepath"
	"time"

	"github.com/ethereum/go-ethereum/core/types"

	"github.com/charter-ledger/charter/internal/consensus"
	"github.com/charter-ledger/charter/internal/consensus/bft"
	"github.com/charter-ledger/charter/internal/consensus/poa"
	"github.com/charter-ledger/charter/internal/consensus/raft"
	"github.com/charter-ledger/charter/internal/consensus/solo"
	"github.com/charter-ledger/charter/internal/system"
)

// engineSetup is what newEngine decides besides the engine itself.
type engineSetup struct {
	members     []consensus.NodeID // nodes that may connect
	gossip      bool               // broadcast locally admitted transactions
	maxBlockTxs int                // BuildBlock's bound; 0: none
	// halted reports an engine that stopped itself (bft, poa); nil when
	// the engine calls back instead (raft's OnHalt).
	halted func() error
	// laterValidators are validator changes for heights after the next,
	// given to the engine once it runs.
	laterValidators []system.ValidatorChange
}

// newEngine makes the engine the genesis names. Engine state lives under
// DataDir next to the ledger's chaindata.
func (n *Node) newEngine(blockTime time.Duration) (consensus.Engine, engineSetup, error) {
	spec := n.cfg.Spec
	log := n.log // raft, bft and poa name themselves in their lines
	noParams := func() error {
		if p := bytes.TrimSpace(spec.Consensus.Params); len(p) > 0 && string(p) != "null" && string(p) != "{}" {
			return fmt.Errorf("genesis: consensus.params: the %s engine takes no parameters from the genesis yet", spec.Consensus.Engine)
		}
		return nil
	}
	switch spec.Consensus.Engine {
	case "solo":
		if n.cfg.Network != nil {
			return nil, engineSetup{}, fmt.Errorf("config: network: the solo engine runs one node alone; use raft, bft or poa for a network")
		}
		e := solo.New(solo.Config{
			BlockTime:  blockTime,
			ForceEmpty: n.cfg.ForceEmptyBlocks,
			Pending:    n.hasPending,
			Due:        n.governanceDue,
		}, n, log.With("engine", "solo"))
		return e, engineSetup{}, nil

	case "raft":
		cfg, err := raft.FromSpec(spec)
		if err != nil {
			return nil, engineSetup{}, fmt.Errorf("genesis: consensus: %w", err)
		}
		cfg.DataDir = filepath.Join(n.cfg.DataDir, "raft")
		cfg.Forward = n.forwarded
		cfg.Pending = n.hasPending
		cfg.Due = n.governanceDue
		cfg.PendingTxs = n.pendingTxs
		cfg.OnHalt = func(err error) { n.fail(fmt.Errorf("raft engine halted: %w", err)) }
		e, err := raft.New(cfg, n, log)
		if err != nil {
			return nil, engineSetup{}, err
		}
		// As for bft: the set in force after the head (raft's voters
		// follow it) now, later changes once the engine runs.
		current, later, err := n.validatorSchedule()
		if err != nil {
			return nil, engineSetup{}, err
		}
		if len(current) > 0 {
			if err := e.SetValidators(n.ledger.Head().Number.Uint64()+1, current); err != nil {
				return nil, engineSetup{}, err
			}
		}
		members := append(append([]consensus.NodeID(nil), cfg.Validators...), cfg.Learners...)
		return e, engineSetup{members: members, maxBlockTxs: cfg.MaxBlockTxs, laterValidators: later}, nil

	case "bft":
		if err := noParams(); err != nil {
			return nil, engineSetup{}, err
		}
		// The set in force after the head comes from the registry (the
		// genesis set until governance changes it); later changes are
		// handed over once the engine runs (see startEngine).
		current, later, err := n.validatorSchedule()
		if err != nil {
			return nil, engineSetup{}, err
		}
		e, err := bft.New(bft.EngineConfig{
			ChainID:    spec.ChainID(),
			Key:        n.cfg.NodeKey,
			Validators: current,
			Storage:    bft.NewFileStorage(filepath.Join(n.cfg.DataDir, "bft-state")),
		}, n, log)
		if err != nil {
			return nil, engineSetup{}, err
		}
		return e, engineSetup{members: spec.Consensus.Validators, gossip: true, halted: e.Err, laterValidators: later}, nil

	case "poa":
		if err := noParams(); err != nil {
			return nil, engineSetup{}, err
		}
		// The genesis set and every change governance decided since: poa
		// keeps the whole schedule (it checks seals of past heights).
		reg, _, err := n.registry()
		if err != nil {
			return nil, engineSetup{}, err
		}
		cfg := poa.Config{
			Key:        n.cfg.NodeKey,
			Validators: spec.Consensus.Validators,
			Logger:     n.log,
		}
		for _, c := range reg.ValidatorChanges() {
			if c.From > 0 {
				cfg.ValidatorChanges = append(cfg.ValidatorChanges, poa.ValidatorChange{From: c.From, IDs: c.IDs})
			}
		}
		// The block time of the genesis is the sealing period.
		cfg.TickInterval = poa.DefaultTickInterval
		cfg.PeriodTicks = uint64(max(blockTime/cfg.TickInterval, 1))
		e, err := poa.New(cfg, n, poa.FileStorage{Path: filepath.Join(n.cfg.DataDir, "poa-state")})
		if err != nil {
			return nil, engineSetup{}, err
		}
		return e, engineSetup{members: spec.Consensus.Validators, gossip: true, halted: e.Err}, nil
	}
	return nil, engineSetup{}, fmt.Errorf("consensus engine %q cannot run in this node", spec.Consensus.Engine)
}

// hasPending reports whether transactions wait in the pool.
func (n *Node) hasPending() bool { p, _ := n.pool.Stats(); return p > 0 }

// pendingTxs returns up to max pending transactions, oldest first (raft
// re-forwards them to a new leader).
func (n *Node) pendingTxs(max int) []*types.Transaction {
	src := n.pool.Pending(max)
	var out []*types.Transaction
	for tx := src.Peek(); tx != nil; tx = src.Peek() {
		out = append(out, tx)
		src.Shift()
	}
	return out
}

// forwarded takes the transactions a raft follower forwarded to this
// node as leader. It is called on the engine goroutine, so it only queues.
func (n *Node) forwarded(raw [][]byte) {
	if n.net != nil {
		n.net.enqueueRemote(raw)
	}
}
