package bft

import (
	"crypto/ecdsa"
	"fmt"
	"path/filepath"
	"time"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/charter-ledger/charter/internal/consensus"
	"github.com/charter-ledger/charter/internal/durable"
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
)

// EngineConfig configures the bft Engine. Zero fields take the defaults.
type EngineConfig struct {
	// ChainID is signed into every message; it must be the chain's id.
	ChainID uint64
	// Validators is the set in force for the height after the host's head
	// (the genesis set on a new chain). Changes go through SetValidators.
	Validators []consensus.NodeID

	// TickInterval is the core's unit of time; the durations below are
	// rounded up to whole ticks.
	TickInterval time.Duration
	// Round 0 timeouts of the three steps; each later round adds
	// TimeoutDelta to each, up to MaxTimeout.
	ProposeTimeout, PrevoteTimeout, PrecommitTimeout time.Duration
	TimeoutDelta, MaxTimeout                         time.Duration
	// CommitWait is the least time between the starts of round 0 of two
	// heights: the pace of blocks when little waits (Tendermint's
	// timeout_commit, counted from the height's start instead of its
	// decision, so that it overlaps the height's work: a height that
	// took longer is followed at once).
	CommitWait time.Duration
	// EmptyBlockPeriod, when above 0, makes an idle network seal an empty
	// block only this long after the previous block (see
	// Config.EmptyBlockTicks); 0 seals a block every CommitWait.
	EmptyBlockPeriod time.Duration
	// ParamChanges are the parameter changes governance decided before
	// the start (consensus.Spec.ParamChanges).
	ParamChanges []consensus.ParamChange
	// Rebroadcast is the interval of re-sending this validator's messages.
	Rebroadcast time.Duration
	// SyncRetry is the least interval between catch-up requests.
	SyncRetry time.Duration
	// MaxMessageBytes bounds one message (a proposal carries a block).
	MaxMessageBytes int
	// InboxSize bounds the queue of received messages; beyond it messages
	// are dropped (peers re-send).
	InboxSize int
	// FullProposals sends this validator's proposals with their whole
	// blocks; by default they are compact (Config.Compact).
	FullProposals bool

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
}

// coreConfig converts durations to ticks.
func (c *EngineConfig) coreConfig(self consensus.NodeID, key *ecdsa.PrivateKey) (Config, error) {
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
		EmptyBlockTicks:       ticks(c.EmptyBlockPeriod),
		TickInterval:          c.TickInterval,
		ParamChanges:          c.ParamChanges,
		RebroadcastTicks:      ticks(c.Rebroadcast),
		SyncRetryTicks:        ticks(c.SyncRetry),
		MaxMessageBytes:       c.MaxMessageBytes,
		Compact:               !c.FullProposals,
		mutation:              c.mutation,
	}
	if key != nil {
		cfg.Signer = NewKeySigner(key)
	}
	cfg.EnsureDefaults()
	return cfg, cfg.Validate()
}

// StateFileName is the validator's state file in consensus.Env.Dir.
const StateFileName = "bft-state"

// New returns the bft engine of the node env.Host: a Core run by the
// consensus Driver, which builds and verifies blocks on its worker so that
// executing a block never stops the counting of votes. env.Key is the
// node key; nil runs an observer, which follows the chain from the votes
// it hears and from certificates and never signs. A validator's
// SavedState lives in Env.Dir/bft-state.
func New(cfg EngineConfig, env consensus.Env) (consensus.Engine, error) {
	cfg.ensureDefaults()
	if env.Host == nil {
		return nil, fmt.Errorf("%w: New needs a host", ErrBadConfig)
	}
	self := env.Host.Self()
	if env.Key != nil && crypto.PubkeyToAddress(env.Key.PublicKey) != self {
		return nil, fmt.Errorf("%w: Key is for %s, host is %s", ErrBadConfig, crypto.PubkeyToAddress(env.Key.PublicKey), self)
	}
	coreCfg, err := cfg.coreConfig(self, env.Key)
	if err != nil {
		return nil, err
	}
	if env.FS == nil {
		env.FS = durable.OSFS{}
	}
	var state *durable.StateFile
	if env.Key != nil {
		state = &durable.StateFile{FS: env.FS, Path: filepath.Join(env.Dir, StateFileName)}
	}
	host := env.Host
	return consensus.NewDriver(consensus.DriverConfig{
		Name:            "bft",
		TickInterval:    cfg.TickInterval,
		InboxSize:       cfg.InboxSize,
		MaxMessageBytes: cfg.MaxMessageBytes,
		State:           state,
	}, env, func(saved []byte) (consensus.Core, error) {
		var st *SavedState
		if saved != nil {
			var err error
			if st, err = UnmarshalSavedState(saved); err != nil {
				return nil, fmt.Errorf("bft: %s: %w", StateFileName, err)
			}
		}
		return NewCore(coreCfg, host.Head(), st)
	})
}

// ConfigFromSpec is the EngineConfig of a genesis whose engine is bft:
// its chain id, the validator set in force after the head, the timing of
// consensus.params (see Params) and the parameter changes governance
// decided.
func ConfigFromSpec(spec consensus.Spec) (EngineConfig, error) {
	if spec.Engine != "bft" {
		return EngineConfig{}, fmt.Errorf("%w: genesis consensus engine is %q, not bft", ErrBadConfig, spec.Engine)
	}
	t, err := ParseParams(spec.Params)
	if err != nil {
		return EngineConfig{}, err
	}
	return EngineConfig{
		ChainID:          spec.ChainID,
		Validators:       spec.ValidatorsAt(spec.Head + 1),
		ProposeTimeout:   t.TimeoutPropose,
		PrevoteTimeout:   t.TimeoutVote,
		PrecommitTimeout: t.TimeoutVote,
		TimeoutDelta:     t.TimeoutGrowth,
		CommitWait:       t.BlockTime,
		EmptyBlockPeriod: t.EmptyBlockPeriod,
		ParamChanges:     spec.ParamChanges,
	}, nil
}

// FromSpec makes the bft engine a genesis names: the validator set in
// force after the head from the registry (the genesis set until
// governance changes it), and the later changes governance decided.
func FromSpec(spec consensus.Spec, env consensus.Env) (consensus.Engine, consensus.Profile, error) {
	cfg, err := ConfigFromSpec(spec)
	if err != nil {
		return nil, consensus.Profile{}, fmt.Errorf("genesis: %w", err)
	}
	e, err := New(cfg, env)
	if err != nil {
		return nil, consensus.Profile{}, err
	}
	for _, c := range spec.ChangesAfter(spec.Head + 1) {
		if err := e.SetValidators(c.From, c.IDs); err != nil {
			return nil, consensus.Profile{}, err
		}
	}
	return e, consensus.Profile{Members: spec.Validators, Gossip: true}, nil
}
