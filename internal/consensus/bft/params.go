package bft

import (
	"encoding/json"
	"time"

	"github.com/charter-ledger/charter/internal/consensus"
)

// The genesis parameters of bft (consensus.params when consensus.engine is
// "bft"), each optional, durations as Go duration strings ("500ms", "2s"):
//
//	timeoutPropose    how long a validator waits for the round's proposal
//	                  in round 0 (default 2s)
//	timeoutVote       how long it waits for the rest of the votes once a
//	                  quorum voted, prevotes and precommits alike, in
//	                  round 0 (default 500ms)
//	timeoutGrowth     added to both timeouts for every further round of a
//	                  height (default 500ms), up to 30s
//	blockTime         the least time between the first rounds of two
//	                  heights: the pace of blocks when little waits; a
//	                  height whose work takes longer is followed at once
//	                  (default 250ms)
//	emptyBlockPeriod  0 (the default): a block at every height, empty when
//	                  nothing waits, one per blockTime; above 0: while
//	                  nothing waits, an empty block only this long after
//	                  the previous block (at least blockTime), as Besu's
//	                  emptyblockperiodseconds
//
// Governance changes them with SetParameter under the names GovName below
// (bft.timeoutPropose, ...), in milliseconds, from an epoch boundary on.
var (
	ParamTimeoutPropose = consensus.DurationParam{Name: "timeoutPropose", GovName: "bft.timeoutPropose",
		Min: 100 * time.Millisecond, Max: 30 * time.Second, Default: DefaultProposeTimeout,
		Doc: "bft: wait for a round's proposal, in round 0 (milliseconds)"}
	ParamTimeoutVote = consensus.DurationParam{Name: "timeoutVote", GovName: "bft.timeoutVote",
		Min: 100 * time.Millisecond, Max: 30 * time.Second, Default: DefaultPrevoteTimeout,
		Doc: "bft: wait for the remaining votes once a quorum voted, in round 0 (milliseconds)"}
	ParamTimeoutGrowth = consensus.DurationParam{Name: "timeoutGrowth", GovName: "bft.timeoutGrowth",
		Min: 10 * time.Millisecond, Max: 30 * time.Second, Default: DefaultTimeoutDelta,
		Doc: "bft: added to the timeouts for every further round of a height (milliseconds)"}
	ParamBlockTime = consensus.DurationParam{Name: "blockTime", GovName: "bft.blockTime",
		Min: 10 * time.Millisecond, Max: time.Hour, Default: DefaultCommitWait,
		Doc: "bft: least time between the first rounds of two heights; a height that takes longer is followed at once (milliseconds)"}
	ParamEmptyBlockPeriod = consensus.DurationParam{Name: "emptyBlockPeriod", GovName: "bft.emptyBlockPeriod",
		Min: 100 * time.Millisecond, Max: 24 * time.Hour, ZeroOK: true,
		Doc: "bft: while idle, an empty block only this long after the previous one; 0: one every block time (milliseconds)"}
)

// Params lists the genesis parameters of bft, in order.
var Params = []consensus.DurationParam{ParamTimeoutPropose, ParamTimeoutVote, ParamTimeoutGrowth, ParamBlockTime, ParamEmptyBlockPeriod}

func paramNames() []string {
	out := make([]string, len(Params))
	for i, p := range Params {
		out[i] = p.Name
	}
	return out
}

// Timing is the tunable part of bft's configuration: the values of the
// genesis parameters (defaults where unset).
type Timing struct {
	TimeoutPropose, TimeoutVote, TimeoutGrowth time.Duration
	BlockTime, EmptyBlockPeriod                time.Duration
}

// DefaultTiming is the timing of a genesis without consensus.params.
func DefaultTiming() Timing {
	return Timing{TimeoutPropose: DefaultProposeTimeout, TimeoutVote: DefaultPrevoteTimeout, TimeoutGrowth: DefaultTimeoutDelta,
		BlockTime: DefaultCommitWait}
}

func (t *Timing) field(name string) *time.Duration {
	switch name {
	case ParamTimeoutPropose.Name:
		return &t.TimeoutPropose
	case ParamTimeoutVote.Name:
		return &t.TimeoutVote
	case ParamTimeoutGrowth.Name:
		return &t.TimeoutGrowth
	case ParamBlockTime.Name:
		return &t.BlockTime
	case ParamEmptyBlockPeriod.Name:
		return &t.EmptyBlockPeriod
	}
	panic("bft: unknown parameter " + name)
}

// ParseParams decodes and checks the bft section of a genesis; errors name
// the field (consensus.params.timeoutVote: ...). Empty input gives the
// defaults.
func ParseParams(raw json.RawMessage) (Timing, error) {
	t := DefaultTiming()
	fields, err := consensus.DecodeParamObject("bft", raw, paramNames())
	if err != nil {
		return t, err
	}
	for _, p := range Params {
		d, ok, err := consensus.DecodeDuration(fields, p)
		if err != nil {
			return t, err
		}
		if ok {
			*t.field(p.Name) = d
		}
	}
	if t.EmptyBlockPeriod != 0 && t.EmptyBlockPeriod < t.BlockTime {
		return t, consensus.BadParams("consensus.params.emptyBlockPeriod: %v is below blockTime %v; give 0 or at least the block time", t.EmptyBlockPeriod, t.BlockTime)
	}
	return t, nil
}

// With returns t with the values governance set (by GovName, in
// milliseconds) in their place. Out-of-range values (governance refuses
// them) are clamped; an empty block period below the block time means
// the block time.
func (t Timing) With(values map[string]uint64) Timing {
	for _, p := range Params {
		if d, ok := consensus.GovDuration(values, p); ok {
			*t.field(p.Name) = d
		}
	}
	return t
}

// timing is the core's timing of one height, in ticks.
type timing struct {
	propose, prevote, precommit, growth, commitWait, emptyWait int
}

// baseTiming is the timing of the config (the genesis').
func (c *Config) baseTiming() timing {
	return timing{propose: c.ProposeTimeoutTicks, prevote: c.PrevoteTimeoutTicks, precommit: c.PrecommitTimeoutTicks,
		growth: c.TimeoutDeltaTicks, commitWait: c.CommitWaitTicks, emptyWait: c.EmptyBlockTicks}
}

// timingWith is the config's timing with the values governance set (by
// GovName, in milliseconds) in place of its own, at least one tick each
// (the commit wait and the empty block period may be 0).
func (c *Config) timingWith(values map[string]uint64) timing {
	tm := c.baseTiming()
	set := func(p consensus.DurationParam, dst ...*int) {
		d, ok := consensus.GovDuration(values, p)
		if !ok {
			return
		}
		n := int((d + c.TickInterval - 1) / c.TickInterval)
		for _, f := range dst {
			*f = n
		}
	}
	set(ParamTimeoutPropose, &tm.propose)
	set(ParamTimeoutVote, &tm.prevote, &tm.precommit)
	set(ParamTimeoutGrowth, &tm.growth)
	set(ParamBlockTime, &tm.commitWait)
	set(ParamEmptyBlockPeriod, &tm.emptyWait)
	tm.propose, tm.prevote, tm.precommit, tm.growth = max(tm.propose, 1), max(tm.prevote, 1), max(tm.precommit, 1), max(tm.growth, 1)
	return tm
}

// timingEntry is a timing in force from a height on.
type timingEntry struct {
	from uint64
	tm   timing
}

// maxTimings bounds the timing changes kept (governance decides few).
const maxTimings = 256

// TimingInForce is the height in progress and the timing in force at it
// (ticks times the tick interval; an empty block period below the block
// time reads as the block time).
func (c *Core) TimingInForce() (uint64, Timing) {
	tm, tick := c.hs.tm, c.cfg.TickInterval
	d := func(n int) time.Duration { return time.Duration(n) * tick }
	return c.hs.height, Timing{TimeoutPropose: d(tm.propose), TimeoutVote: d(tm.prevote), TimeoutGrowth: d(tm.growth),
		BlockTime: d(tm.commitWait), EmptyBlockPeriod: d(tm.emptyWait)}
}
