package bft

import (
	"errors"
	"fmt"
	"time"

	"github.com/charter-ledger/charter/internal/consensus"
)

// Config of a Core. Times are counted in ticks: the core has no clock, and
// the Driver (or the simulator) calls Tick at a fixed interval.
type Config struct {
	// ChainID is inside every signed digest.
	ChainID uint64
	// Signer signs with this node's key. Nil makes an observer that
	// follows the chain but never votes.
	Signer Signer
	// Self is this node's id. Optional when Signer is set (then it must be
	// Signer.ID()); required for an observer without a key.
	Self consensus.NodeID
	// Validators is the set in force for the first height the core
	// decides (the head's number + 1) until a SetValidators change.
	Validators []consensus.NodeID
	// Recover checks signatures; nil means RecoverSigner.
	Recover Recoverer

	// Timeouts of the three steps in round 0; every later round adds
	// TimeoutDeltaTicks to each, up to MaxTimeoutTicks.
	ProposeTimeoutTicks   int
	PrevoteTimeoutTicks   int
	PrecommitTimeoutTicks int
	TimeoutDeltaTicks     int
	MaxTimeoutTicks       int
	// CommitWaitTicks is the least time between the starts of round 0 of
	// two heights (on this node): it paces blocks when there is little
	// to do, and overlaps the work of a height (build, verify, votes,
	// commit) instead of adding to it. A height this node did not see
	// begin waits it from the decision.
	CommitWaitTicks int
	// EmptyBlockTicks, when above 0, holds back a height's first round
	// while nothing waits: the round starts when this many ticks passed
	// since the height began (counted with CommitWaitTicks, so at least
	// that), or earlier when transactions are notified, when this node as
	// round 0's proposer finds work to build (it asks every
	// CommitWaitTicks), or when round 0's proposal or votes arrive. 0: the
	// round starts after CommitWaitTicks, and a block, empty or not, is
	// made at every height.
	EmptyBlockTicks int
	// TickInterval is the real duration of a tick, to convert the
	// parameters governance sets (milliseconds) to ticks. Default 50ms.
	TickInterval time.Duration
	// ParamChanges are the parameter changes governance decided before
	// the start, ascending by From; later ones come through SetParams.
	ParamChanges []consensus.ParamChange
	// RebroadcastTicks is the interval at which a validator re-sends its
	// messages of the current round and its status, which recovers from
	// lost messages.
	RebroadcastTicks int
	// SyncRetryTicks is the least interval between two catch-up requests.
	SyncRetryTicks int

	// MaxMessageBytes bounds a received message (a proposal carries a block).
	MaxMessageBytes int
	// MaxFutureMessages bounds the messages kept for the next height, in
	// total and per sending peer.
	MaxFutureMessages int
	MaxFuturePerPeer  int
	// MaxSyncBlocks is the most blocks served for one catch-up request.
	MaxSyncBlocks int
	// MaxRoundsKept bounds the rounds of one height kept in memory.
	MaxRoundsKept int
	// MaxEvidence bounds the equivocation records kept (oldest dropped).
	MaxEvidence int
	// Compact sends this validator's proposals as compact proposals: the
	// header and the transactions' hashes, the receivers rebuilding the
	// block from the transactions their pool notified (Notify) and asking
	// for the others. Receiving them needs nothing: every core takes both
	// forms.
	Compact bool

	mutation mutation // planted bugs, for tests of the test harness only
}

// mutation names a planted bug. The simulation tests build cores with them
// to prove that the checkers catch real consensus bugs.
type mutation uint8

const (
	mutNone        mutation = iota
	mutQuorum2f             // quorum of 2f instead of 2f+1
	mutNoLockCheck          // prevote a valid proposal whatever the lock
	mutCountEvery           // count every distinct vote message, not one per validator
)

// EnsureDefaults fills zero fields with defaults meant for a 50 ms tick.
func (c *Config) EnsureDefaults() {
	def := func(p *int, v int) {
		if *p == 0 {
			*p = v
		}
	}
	def(&c.ProposeTimeoutTicks, 20)
	def(&c.PrevoteTimeoutTicks, 10)
	def(&c.PrecommitTimeoutTicks, 10)
	def(&c.TimeoutDeltaTicks, 10)
	def(&c.MaxTimeoutTicks, 600)
	def(&c.RebroadcastTicks, 10)
	def(&c.SyncRetryTicks, 5)
	def(&c.MaxMessageBytes, 32<<20)
	def(&c.MaxFutureMessages, 1024)
	def(&c.MaxFuturePerPeer, 64)
	def(&c.MaxSyncBlocks, 16)
	def(&c.MaxRoundsKept, 64)
	def(&c.MaxEvidence, 1024)
	if c.TickInterval <= 0 {
		c.TickInterval = DefaultTickInterval
	}
	if c.Recover == nil {
		c.Recover = RecoverSigner
	}
	if c.Signer != nil && c.Self == (consensus.NodeID{}) {
		c.Self = c.Signer.ID()
	}
}

// ErrBadConfig is wrapped by every Validate error.
var ErrBadConfig = errors.New("bft: invalid config")

// Validate checks the config after EnsureDefaults; errors name the field.
func (c *Config) Validate() error {
	bad := func(field, format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrBadConfig, field, fmt.Sprintf(format, args...))
	}
	if c.ChainID == 0 {
		return bad("ChainID", "required")
	}
	if c.Self == (consensus.NodeID{}) {
		return bad("Self", "required without a Signer")
	}
	if c.Signer != nil && c.Signer.ID() != c.Self {
		return bad("Self", "%s is not the signer's id %s", c.Self, c.Signer.ID())
	}
	if _, err := NewValidatorSet(c.Validators); err != nil {
		return bad("Validators", "%v", err)
	}
	for name, v := range map[string]int{
		"ProposeTimeoutTicks": c.ProposeTimeoutTicks, "PrevoteTimeoutTicks": c.PrevoteTimeoutTicks,
		"PrecommitTimeoutTicks": c.PrecommitTimeoutTicks, "TimeoutDeltaTicks": c.TimeoutDeltaTicks,
		"MaxTimeoutTicks": c.MaxTimeoutTicks, "RebroadcastTicks": c.RebroadcastTicks,
		"SyncRetryTicks": c.SyncRetryTicks, "MaxMessageBytes": c.MaxMessageBytes,
		"MaxFutureMessages": c.MaxFutureMessages, "MaxFuturePerPeer": c.MaxFuturePerPeer,
		"MaxSyncBlocks": c.MaxSyncBlocks, "MaxRoundsKept": c.MaxRoundsKept, "MaxEvidence": c.MaxEvidence,
	} {
		if v < 1 {
			return bad(name, "%d, want at least 1", v)
		}
	}
	if c.CommitWaitTicks < 0 {
		return bad("CommitWaitTicks", "%d is negative", c.CommitWaitTicks)
	}
	if c.EmptyBlockTicks < 0 {
		return bad("EmptyBlockTicks", "%d is negative", c.EmptyBlockTicks)
	}
	for i, pc := range c.ParamChanges {
		if i > 0 && pc.From <= c.ParamChanges[i-1].From {
			return bad(fmt.Sprintf("ParamChanges[%d].From", i), "%d not ascending", pc.From)
		}
	}
	if len(c.ParamChanges) > maxTimings {
		return bad("ParamChanges", "%d, at most %d", len(c.ParamChanges), maxTimings)
	}
	if c.MaxTimeoutTicks < c.ProposeTimeoutTicks || c.MaxTimeoutTicks < c.PrevoteTimeoutTicks || c.MaxTimeoutTicks < c.PrecommitTimeoutTicks {
		return bad("MaxTimeoutTicks", "%d is below a base timeout", c.MaxTimeoutTicks)
	}
	if c.MaxRoundsKept < roundsAhead+2 {
		return bad("MaxRoundsKept", "%d, want at least %d", c.MaxRoundsKept, roundsAhead+2)
	}
	if err := consensus.CheckMessageBound("MaxMessageBytes", c.MaxMessageBytes, blockMessageOverhead); err != nil {
		return fmt.Errorf("%w: %v", ErrBadConfig, err)
	}
	return nil
}

// blockMessageOverhead bounds what a message that carries a block adds to
// it: a proposal's fields, signature and justification (the prevotes of a
// quorum), or a catch-up block's commit certificate (the precommits of up
// to MaxValidators), with their RLP framing.
const blockMessageOverhead = MaxValidators*(65+3) + 1<<10
