package poa

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/charter-ledger/charter/internal/consensus"
	"github.com/charter-ledger/charter/internal/durable"
)

// StateFileName is the engine's state file in consensus.Env.Dir.
const StateFileName = "poa-state"

// New returns the poa engine of the node env.Host: a Core run by the
// consensus Driver, its PersistentState in Env.Dir/poa-state. cfg.Key
// defaults to env.Key; the node id must be the host's.
//
//	e, err := poa.New(cfg, consensus.Env{Host: node, Key: key, Dir: dataDir})
func New(cfg Config, env consensus.Env) (consensus.Engine, error) {
	if cfg.Key == nil {
		cfg.Key = env.Key
	}
	cfg.EnsureDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if env.Host == nil {
		return nil, errors.New("poa: New needs a host")
	}
	if self := env.Host.Self(); self != cfg.ID() {
		return nil, fmt.Errorf("poa: host is %s but Config.Key is %s", self, cfg.ID())
	}
	if env.FS == nil {
		env.FS = durable.OSFS{}
	}
	if env.Log == nil {
		env.Log = cfg.Logger
	}
	host := env.Host
	return consensus.NewDriver(consensus.DriverConfig{
		Name:            "poa",
		TickInterval:    cfg.TickInterval,
		InboxSize:       cfg.InboxSize,
		MaxMessageBytes: cfg.MaxMessageBytes,
		State:           &durable.StateFile{FS: env.FS, Path: filepath.Join(env.Dir, StateFileName)},
	}, env, func(saved []byte) (consensus.Core, error) {
		head := host.Head()
		base, seal := host.BlockByNumber(head.Number.Uint64())
		if base == nil {
			return nil, fmt.Errorf("poa: host has no block %d", head.Number.Uint64())
		}
		if head.Number.Sign() == 0 {
			seal = nil
		}
		var st PersistentState
		if saved != nil {
			var err error
			if st, err = DecodeState(saved); err != nil {
				return nil, fmt.Errorf("poa: %s: %w", StateFileName, err)
			}
		}
		return NewCore(cfg, base, seal, st)
	})
}

// ConfigFromSpec is the network-wide part of a Config from a genesis whose
// engine is poa: the genesis authorities and every change governance
// decided since (poa keeps the whole schedule: it checks seals of heights
// in its lookahead), the timing of consensus.params (see Params; the
// period defaults to the genesis block time) and governance's parameter
// changes. The node-local fields (Key, Logger) are left zero.
func ConfigFromSpec(spec consensus.Spec) (Config, error) {
	if spec.Engine != "poa" {
		return Config{}, fmt.Errorf("poa: genesis consensus engine is %q, not poa", spec.Engine)
	}
	t, err := ParseParams(spec.Params, spec.BlockTime)
	if err != nil {
		return Config{}, err
	}
	cfg := Config{
		Validators:    spec.Validators,
		TickInterval:  DefaultTickInterval,
		FinalityDepth: t.Confirmations,
		ParamChanges:  spec.ParamChanges,
	}
	if t.Confirmations == 0 {
		cfg.FinalityDepth = ZeroFinalityDepth
	}
	// A validator change takes effect 8 blocks after its decision at the
	// earliest (internal/system): the lookahead stays at most 7.
	cfg.Lookahead = min(t.Confirmations+4, 7)
	for _, c := range spec.Changes {
		if c.From > 0 {
			cfg.ValidatorChanges = append(cfg.ValidatorChanges, ValidatorChange{From: c.From, IDs: c.IDs})
		}
	}
	cfg.PeriodTicks = cfg.ticks(t.Period)
	cfg.TimeoutTicks = cfg.ticks(t.TurnTimeout)
	cfg.MaxTimeoutTicks = max(DefaultMaxTimeoutTicks, cfg.PeriodTicks+cfg.TimeoutTicks)
	return cfg, nil
}

// FromSpec makes the poa engine a genesis names (see ConfigFromSpec).
func FromSpec(spec consensus.Spec, env consensus.Env) (consensus.Engine, consensus.Profile, error) {
	cfg, err := ConfigFromSpec(spec)
	if err != nil {
		return nil, consensus.Profile{}, fmt.Errorf("genesis: %w", err)
	}
	cfg.Key, cfg.Logger = env.Key, env.Log
	e, err := New(cfg, env)
	if err != nil {
		return nil, consensus.Profile{}, err
	}
	return e, consensus.Profile{Members: spec.Validators, Gossip: true}, nil
}
