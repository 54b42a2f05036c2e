package bft

import (
	"fmt"
	"sort"
	"strings"
)

// describe is a one-line view of a core for failure reports.
func (c *Core) describe() string {
	hs := c.hs
	var b strings.Builder
	fmt.Fprintf(&b, "h=%d r=%d %s now=%d timers(nr=%d p=%d pv=%d pc=%d) locked=%d valid=%d validator=%v",
		hs.height, hs.round, hs.step, c.now, hs.newRoundAt, hs.proposeAt, hs.prevoteAt, hs.precommitAt, hs.lockedRound, hs.validRound, hs.validator)
	var rounds []int64
	for r := range hs.rounds {
		rounds = append(rounds, r)
	}
	sort.Slice(rounds, func(i, j int) bool { return rounds[i] < rounds[j] })
	for _, r := range rounds {
		rs := hs.rounds[r]
		fmt.Fprintf(&b, " [r%d prop=%v pv=%d pc=%d]", r, rs.proposal != nil, rs.prevotes.total, rs.precommits.total)
	}
	fmt.Fprintf(&b, " maxRound=%v future=%d hints=%d", len(hs.maxRound), len(c.future), len(c.syncHint))
	return b.String()
}
