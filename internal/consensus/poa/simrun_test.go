package poa

import (
	"strings"
	"testing"

	"github.com/charter-ledger/charter/internal/consensus/simnet"
)

// TestSimulation runs the seeded simulation: 1,000 seeds per run (100
// under -race), 100,000 under CHARTER_SOAK=1, CHARTER_SEEDS=n for any
// count, from a random first seed each run (CHARTER_SEED_START=k from k);
// CHARTER_SEED=n replays one seed.
func TestSimulation(t *testing.T) {
	simnet.RunSeeds(t, simSeeds, 100000, func(seed int64) error { return runSeed(seed, nil) })
}

// TestSimulationRetimed runs the simulation with a governed change of the
// period and turn timeout taking effect at a height: safety, liveness and
// exactly-once hold across it, on nodes that crash and restart too.
func TestSimulationRetimed(t *testing.T) {
	simnet.RunSeeds(t, simSeeds/10, 10000, func(seed int64) error {
		return runSeed(seed, func(p *simParams) { p.retime = true })
	})
}

// TestMutantCaught shows the checkers can fail: a core that finalizes by
// depth alone (here depth 0: every adopted block is final) forks under
// partitions, and the safety checker must say so within a few seeds. The
// seeds are fixed (1..300), not a fresh range: this proves the checker,
// and must not depend on the luck of a draw.
func TestMutantCaught(t *testing.T) {
	for _, m := range []struct {
		name   string
		mutant mutant
		depth  uint64
	}{
		{"depth-only-0", mutant{depthOnly: true}, 0},
		{"quorum-1", mutant{quorum: 1}, 1},
	} {
		t.Run(m.name, func(t *testing.T) {
			for seed := int64(1); seed <= 300; seed++ {
				err := runSeed(seed, func(p *simParams) {
					p.mutant = m.mutant
					p.depth = m.depth
					p.partitions = true
					p.crashes = false
				})
				if err != nil && strings.Contains(err.Error(), "safety") {
					t.Logf("seed %d: checker caught the mutant: %s", seed, strings.SplitN(err.Error(), "\n", 2)[0])
					return
				}
			}
			t.Fatal("no seed exposed the mutant: the checker cannot fail")
		})
	}
}

// TestSimulationRegressions replays seeds that once failed, in the
// scenario they failed in (parameters added later set to their old
// values).
func TestSimulationRegressions(t *testing.T) {
	old := func(p *simParams) { p.churn, p.deadAfter = 1, false }
	for _, r := range []struct {
		seed   int64
		adjust func(*simParams)
		why    string
	}{
		{3242, old, "every tip at the lookahead limit, none committed: needs reseal and tip announcements"},
		{9689, old, "validators with different final heights, hence different limits, and a promise far above the tip"},
		{74400, nil, "a ballot of the new set must seal the old set's last height: needs a quorum of both"},
		{9001974, nil, "a validator that cannot adopt the blocks on top of its committed tip (sealed below its promise) must still count them as confirmations, or its lookahead limit stays below the others' ballots"},
		{28422784126, nil, "a validator whose tip sits at its lookahead limit, the votes that committed its blocks lost, must catch up from a validator voting one height above the limit"},
	} {
		if err := runSeed(r.seed, r.adjust); err != nil {
			t.Errorf("seed %d (%s): %v", r.seed, r.why, err)
		}
	}
}
