package poa

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/charter-ledger/charter/internal/consensus"
)

// The genesis parameters of poa (consensus.params when consensus.engine is
// "poa"), each optional, durations as Go duration strings ("500ms", "2s"):
//
//	period         the block time: the in-turn sealer waits this long after
//	               the parent (default: the genesis blockTimeMs)
//	turnTimeout    how long validators wait beyond the period for the
//	               in-turn sealer before the next one's turn (default 2s);
//	               every further round at a height adds 1s, up to 60s or
//	               period + turnTimeout if more
//	confirmations  the sealed blocks a quorum-accepted block needs on top
//	               of it before it is final (default 2, 0 to 5); a chain
//	               constant, not changeable by governance
//
// Governance changes period and turnTimeout with SetParameter under the
// names GovName below (poa.period, poa.turnTimeout), in milliseconds,
// from an epoch boundary on.
var (
	ParamPeriod = consensus.DurationParam{Name: "period", GovName: "poa.period",
		Min: DefaultTickInterval, Max: time.Hour,
		Doc: "poa: block time, the in-turn sealer's wait after the parent (milliseconds)"}
	ParamTurnTimeout = consensus.DurationParam{Name: "turnTimeout", GovName: "poa.turnTimeout",
		Min: DefaultTickInterval, Max: 10 * time.Minute, Default: DefaultTimeoutTicks * DefaultTickInterval,
		Doc: "poa: wait beyond the period for the in-turn sealer before the next one's turn (milliseconds)"}
)

// Params lists the governance-changeable genesis parameters of poa.
var Params = []consensus.DurationParam{ParamPeriod, ParamTurnTimeout}

// ParamConfirmations is the name of the finality depth parameter, and
// MaxConfirmations its largest value: a validator change takes effect at
// least 8 blocks after the block deciding it (internal/system), which
// bounds the lookahead, hence the depth.
const (
	ParamConfirmations = "confirmations"
	MaxConfirmations   = 5
)

// Timing is what a poa genesis tunes: the values of its parameters.
type Timing struct {
	Period, TurnTimeout time.Duration
	Confirmations       uint64
}

// ParseParams decodes and checks the poa section of a genesis; errors name
// the field. blockTime is the genesis block time, the default period.
func ParseParams(raw json.RawMessage, blockTime time.Duration) (Timing, error) {
	t := Timing{Period: max(blockTime, DefaultTickInterval), TurnTimeout: ParamTurnTimeout.Default, Confirmations: DefaultFinalityDepth}
	fields, err := consensus.DecodeParamObject("poa", raw, []string{ParamPeriod.Name, ParamTurnTimeout.Name, ParamConfirmations})
	if err != nil {
		return t, err
	}
	if d, ok, err := consensus.DecodeDuration(fields, ParamPeriod); err != nil {
		return t, err
	} else if ok {
		t.Period = d
	}
	if d, ok, err := consensus.DecodeDuration(fields, ParamTurnTimeout); err != nil {
		return t, err
	} else if ok {
		t.TurnTimeout = d
	}
	if n, ok, err := consensus.DecodeUint(fields, ParamConfirmations, MaxConfirmations); err != nil {
		return t, err
	} else if ok {
		t.Confirmations = n
	}
	return t, nil
}

// timing is the core's timing from a height on, in ticks.
type timing struct {
	from            uint64
	period, timeout uint64
}

// maxTimings bounds the timing changes kept.
const maxTimings = 256

// ticks converts d to whole ticks of the config, at least 1.
func (cfg *Config) ticks(d time.Duration) uint64 {
	return max(uint64(d/cfg.TickInterval), 1)
}

// timingWith is the config's timing with the values governance set (by
// GovName, in milliseconds) in place of its own.
func (cfg *Config) timingWith(from uint64, values map[string]uint64) timing {
	tm := timing{from: from, period: cfg.PeriodTicks, timeout: cfg.TimeoutTicks}
	if d, ok := consensus.GovDuration(values, ParamPeriod); ok {
		tm.period = cfg.ticks(d)
	}
	if d, ok := consensus.GovDuration(values, ParamTurnTimeout); ok {
		tm.timeout = cfg.ticks(d)
	}
	return tm
}

// timingAt is the timing in force at height h.
func (c *Core) timingAt(h uint64) timing {
	tm := c.timings[0]
	for _, e := range c.timings {
		if e.from <= h {
			tm = e
		}
	}
	return tm
}

// SetParams makes the parameters governance set (by GovName, in
// milliseconds; see Params) in force from height from on, over the
// config's. Like SetValidators, every node makes the same calls, and from
// must be beyond the heights this node may act on already.
func (c *Core) SetParams(from uint64, values map[string]uint64) error {
	if limit := c.ackedFinal + c.cfg.Lookahead; from <= limit {
		return fmt.Errorf("%w: parameters from height %d, this node may act up to %d", ErrTooLate, from, limit)
	}
	keep := c.timings[:0]
	for _, e := range c.timings {
		if e.from < from {
			keep = append(keep, e)
		}
	}
	if len(keep) >= maxTimings {
		return fmt.Errorf("poa: more than %d parameter changes pending", maxTimings)
	}
	c.timings = append(keep, c.cfg.timingWith(from, values))
	return nil
}

// pruneTimings drops the timings no longer in force at height h or above.
func (c *Core) pruneTimings(h uint64) {
	i := 0
	for i+1 < len(c.timings) && c.timings[i+1].from <= h {
		i++
	}
	c.timings = c.timings[i:]
}

// TimingAt is the period and turn timeout in force at height h (whole
// ticks times the tick interval), for h at or above the final block.
func (c *Core) TimingAt(h uint64) (period, turnTimeout time.Duration) {
	tm := c.timingAt(h)
	return time.Duration(tm.period) * c.cfg.TickInterval, time.Duration(tm.timeout) * c.cfg.TickInterval
}
