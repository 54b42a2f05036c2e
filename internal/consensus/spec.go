package consensus

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"time"
)

// ValidatorChange is a validator set governance decided: IDs from height
// From on.
type ValidatorChange struct {
	From uint64
	IDs  []NodeID
}

// Spec is what the node knows, at start, that an engine is made from: the
// consensus section of the genesis, the node's own options, and the
// validator changes governance decided up to the committed head. Every
// engine package has FromSpec(Spec, Env) (Engine, Profile, error), and
// internal/consensus/engines picks one by Engine.
type Spec struct {
	// Engine names the engine: "solo", "raft", "bft", "poa".
	Engine string
	// ChainID is the chain's id (signed into bft messages).
	ChainID uint64
	// Validators is the genesis validator set.
	Validators []NodeID
	// Params is the engine's section of the genesis (consensus.params).
	Params json.RawMessage
	// BlockTime is the pace of blocks (the genesis block time, or the
	// node's override).
	BlockTime time.Duration
	// ForceEmpty seals a block every block time even when idle (solo,
	// raft).
	ForceEmpty bool
	// Changes are the validator sets governance decided, ascending by
	// From (the registry's; a change From 0 is the genesis set).
	Changes []ValidatorChange
	// ParamChanges are the engine parameters governance decided,
	// ascending by From (see ParamChange).
	ParamChanges []ParamChange
	// Head is the number of the committed head.
	Head uint64
	// Network reports that the node has peers (every engine but solo
	// needs them).
	Network bool
}

// ValidatorsAt is the validator set in force at height h: the last change
// from h or before, else the genesis set.
func (s *Spec) ValidatorsAt(h uint64) []NodeID {
	set := s.Validators
	for _, c := range s.Changes {
		if c.From <= h {
			set = c.IDs
		}
	}
	return slices.Clone(set)
}

// ChangesAfter lists the changes in force from a height above h.
func (s *Spec) ChangesAfter(h uint64) []ValidatorChange {
	var out []ValidatorChange
	for _, c := range s.Changes {
		if c.From > h {
			out = append(out, ValidatorChange{From: c.From, IDs: slices.Clone(c.IDs)})
		}
	}
	return out
}

// NoParams is the error of an engine that takes no parameters from the
// genesis when Params holds some.
func (s *Spec) NoParams() error {
	if p := bytes.TrimSpace(s.Params); len(p) > 0 && string(p) != "null" && string(p) != "{}" {
		return fmt.Errorf("genesis: consensus.params: the %s engine takes no parameters from the genesis yet", s.Engine)
	}
	return nil
}

// Profile is what the node needs to know about an engine it made, to wire
// it.
type Profile struct {
	// Members are the nodes that may connect besides those the registry
	// lists (the genesis validators, raft's learners).
	Members []NodeID
	// Gossip: the node broadcasts the transactions its clients submit
	// (leaderless engines; raft forwards to its leader instead).
	Gossip bool
	// MaxBlockTxs bounds the transactions of a block the node builds; 0:
	// the gas limit alone.
	MaxBlockTxs int
}
