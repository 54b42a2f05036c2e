package poa

import (
	"crypto/ecdsa"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/charter-ledger/charter/internal/consensus"
)

// Config configures one poa node. Durations of the protocol are counted in
// ticks: the core has no clock, the Driver ticks it every TickInterval.
//
// Every node of a chain must use the same Validators, FinalityDepth and
// Lookahead (they are chain parameters from the chain spec); the other
// fields are local.
type Config struct {
	// Key is the node key. Its address is the node id; if the id is one of
	// the validators, the node seals and votes. Required.
	Key *ecdsa.PrivateKey
	// Validators is the authority set from genesis, in sealing order:
	// height h is in turn for Validators[h % n]. Replace it later with
	// SetValidators. Required, without duplicates.
	Validators []consensus.NodeID

	// ValidatorChanges are the set changes governance decided before this
	// start, read from chain state by the node (the ones decided while
	// running come through SetValidators). Ascending From.
	ValidatorChanges []ValidatorChange
	// ParamChanges are the parameter changes (period, turn timeout)
	// governance decided before this start, ascending From; later ones
	// come through SetParams.
	ParamChanges []consensus.ParamChange

	// FinalityDepth is the number of sealed blocks a quorum-committed block
	// needs on top of it (in the node's chain, or verified and known to it)
	// before it is handed to Host.CommitBlock. Default 2. Zero is allowed: then a block is final
	// as soon as a quorum accepted it.
	FinalityDepth uint64
	// Lookahead bounds how far above its last final block a node accepts,
	// votes for or checks the seal of a block: a validator set change
	// decided in block g may take effect at height g+Lookahead+1 at the
	// earliest (see ActivationHeight). Default FinalityDepth+4; at least
	// FinalityDepth+2.
	Lookahead uint64

	// PeriodTicks is the block time: the in-turn sealer waits this long
	// after adopting the parent. Default 10.
	PeriodTicks uint64
	// TimeoutTicks is how long a validator waits, beyond the period, for
	// the sealer of the current round before voting for the next round
	// (the next authority in order). Default 20.
	TimeoutTicks uint64
	// BackoffTicks is added to the timeout for every further round at the
	// same height, so that slow networks converge. Default 10.
	BackoffTicks uint64
	// MaxTimeoutTicks caps the timeout. Default 600.
	MaxTimeoutTicks uint64
	// FetchIntervalTicks limits block requests to one per peer per this
	// many ticks. Default 2.
	FetchIntervalTicks uint64

	// MaxPendingBlocks bounds the blocks held above the final block
	// (all forks together). Default 512.
	MaxPendingBlocks int
	// MaxFetchBlocks bounds the blocks in one catch-up response. Default 64.
	MaxFetchBlocks int
	// MaxMessageBytes bounds a message, received (larger ones are dropped
	// before decoding) or sent (a catch-up answer holds the blocks that
	// fit). It must carry the largest block (consensus.MaxBlockBytes)
	// and not exceed the p2p frame bound. Default 10 MiB.
	MaxMessageBytes int

	// TickInterval is the real duration of one tick. Default 100ms.
	TickInterval time.Duration
	// InboxSize bounds the Driver's queue of received messages; messages
	// beyond it are dropped (peers retransmit). Default 4096.
	InboxSize int
	// Logger receives the engine's logs when consensus.Env has none.
	// Default slog.Default().
	Logger *slog.Logger

	// recoverFn recovers the signer of a seal; tests share a memo between
	// simulated nodes. Default recoverSigner.
	recoverFn func(hash common.Hash, sig []byte) (common.Address, error)
	// mutant weakens the core on purpose, to prove that the simulation
	// checkers catch an unsafe engine. Zero value: the real engine.
	mutant mutant
}

// ValidatorChange replaces the validator set from height From on.
type ValidatorChange struct {
	From uint64
	IDs  []consensus.NodeID
}

// mutant switches used only by tests.
type mutant struct {
	// depthOnly finalizes by depth alone, without the quorum rule.
	depthOnly bool
	// quorum, if > 0, replaces the majority quorum for sealing and commit.
	quorum int
}

func (m mutant) on() bool { return m.depthOnly || m.quorum > 0 }

// Defaults for Config.
const (
	DefaultFinalityDepth      = 2
	DefaultPeriodTicks        = 10
	DefaultTimeoutTicks       = 20
	DefaultBackoffTicks       = 10
	DefaultMaxTimeoutTicks    = 600
	DefaultFetchIntervalTicks = 2
	DefaultMaxPendingBlocks   = 512
	DefaultMaxFetchBlocks     = 64
	DefaultMaxMessageBytes    = 10 << 20 // the p2p layer's default frame bound
	DefaultTickInterval       = 100 * time.Millisecond
	DefaultInboxSize          = 4096
)

var errNoKey = errors.New("poa: Config.Key is required")

// blockMessageOverhead bounds what a message adds to a block it carries:
// kind, ballot, seal and RLP framing.
const blockMessageOverhead = 1 << 10

// ZeroFinalityDepth is the FinalityDepth value meaning "0 confirmations"
// (a plain 0 means "default").
const ZeroFinalityDepth = ^uint64(0)

// EnsureDefaults fills unset fields with their defaults and returns cfg.
func (cfg *Config) EnsureDefaults() *Config {
	switch cfg.FinalityDepth {
	case 0:
		cfg.FinalityDepth = DefaultFinalityDepth
	case ZeroFinalityDepth:
		cfg.FinalityDepth = 0
	}
	if cfg.Lookahead == 0 {
		cfg.Lookahead = cfg.FinalityDepth + 4
	}
	if cfg.PeriodTicks == 0 {
		cfg.PeriodTicks = DefaultPeriodTicks
	}
	if cfg.TimeoutTicks == 0 {
		cfg.TimeoutTicks = DefaultTimeoutTicks
	}
	if cfg.BackoffTicks == 0 {
		cfg.BackoffTicks = DefaultBackoffTicks
	}
	if cfg.MaxTimeoutTicks == 0 {
		cfg.MaxTimeoutTicks = DefaultMaxTimeoutTicks
	}
	if cfg.FetchIntervalTicks == 0 {
		cfg.FetchIntervalTicks = DefaultFetchIntervalTicks
	}
	if cfg.MaxPendingBlocks == 0 {
		cfg.MaxPendingBlocks = DefaultMaxPendingBlocks
	}
	if cfg.MaxFetchBlocks == 0 {
		cfg.MaxFetchBlocks = DefaultMaxFetchBlocks
	}
	if cfg.MaxMessageBytes == 0 {
		cfg.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if cfg.TickInterval == 0 {
		cfg.TickInterval = DefaultTickInterval
	}
	if cfg.InboxSize == 0 {
		cfg.InboxSize = DefaultInboxSize
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.recoverFn == nil {
		cfg.recoverFn = recoverSigner
	}
	return cfg
}

// Validate reports the first inconsistent field, by name. Call it after
// EnsureDefaults.
func (cfg *Config) Validate() error {
	if cfg.Key == nil {
		return errNoKey
	}
	if err := validateSet(cfg.Validators); err != nil {
		return fmt.Errorf("poa: Config.Validators: %w", err)
	}
	for i, ch := range cfg.ValidatorChanges {
		if err := validateSet(ch.IDs); err != nil {
			return fmt.Errorf("poa: Config.ValidatorChanges[%d]: %w", i, err)
		}
		if ch.From == 0 || (i > 0 && ch.From <= cfg.ValidatorChanges[i-1].From) {
			return fmt.Errorf("poa: Config.ValidatorChanges[%d].From %d not ascending above 0", i, ch.From)
		}
	}
	for i, pc := range cfg.ParamChanges {
		if i > 0 && pc.From <= cfg.ParamChanges[i-1].From {
			return fmt.Errorf("poa: Config.ParamChanges[%d].From %d not ascending", i, pc.From)
		}
	}
	if len(cfg.ParamChanges) > maxTimings {
		return fmt.Errorf("poa: Config.ParamChanges: %d, at most %d", len(cfg.ParamChanges), maxTimings)
	}
	if cfg.Lookahead < cfg.FinalityDepth+2 {
		return fmt.Errorf("poa: Config.Lookahead %d must be at least FinalityDepth+2 = %d", cfg.Lookahead, cfg.FinalityDepth+2)
	}
	if cfg.MaxTimeoutTicks < cfg.PeriodTicks+cfg.TimeoutTicks {
		return fmt.Errorf("poa: Config.MaxTimeoutTicks %d below PeriodTicks+TimeoutTicks", cfg.MaxTimeoutTicks)
	}
	if cfg.MaxPendingBlocks < int(cfg.Lookahead)*2 {
		return fmt.Errorf("poa: Config.MaxPendingBlocks %d below 2*Lookahead", cfg.MaxPendingBlocks)
	}
	if cfg.MaxFetchBlocks < 1 {
		return fmt.Errorf("poa: Config.MaxFetchBlocks %d must be positive", cfg.MaxFetchBlocks)
	}
	if err := consensus.CheckMessageBound("poa: Config.MaxMessageBytes", cfg.MaxMessageBytes, blockMessageOverhead); err != nil {
		return err
	}
	if cfg.InboxSize < 1 {
		return fmt.Errorf("poa: Config.InboxSize %d must be positive", cfg.InboxSize)
	}
	return nil
}

// ID is the node id of the configured key.
func (cfg *Config) ID() consensus.NodeID { return crypto.PubkeyToAddress(cfg.Key.PublicKey) }

// ActivationHeight is the lowest height at which a validator set change
// decided in (executed as part of) block g may take effect, for a chain
// whose Lookahead is lookahead. Governance passes at least this to
// SetValidators on every node.
func ActivationHeight(g, lookahead uint64) uint64 { return g + lookahead + 1 }

func validateSet(ids []consensus.NodeID) error {
	if len(ids) == 0 {
		return errors.New("empty validator set")
	}
	seen := make(map[consensus.NodeID]bool, len(ids))
	for _, id := range ids {
		if id == (consensus.NodeID{}) {
			return errors.New("zero address in validator set")
		}
		if seen[id] {
			return fmt.Errorf("validator %s listed twice", id)
		}
		seen[id] = true
	}
	return nil
}
