package bft

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/core/types"

	"github.com/charter-ledger/charter/internal/consensus"
	"github.com/charter-ledger/charter/internal/consensus/simnet"
)

func bftSpec(params string) consensus.Spec {
	return consensus.Spec{Engine: "bft", ChainID: 7, Validators: []consensus.NodeID{{1}, {2}, {3}, {4}}, Params: json.RawMessage(params)}
}

// Bad genesis parameters are refused, the error naming the field (and an
// unknown field by its name).
func TestParamsRefusedNamingTheField(t *testing.T) {
	for _, tc := range []struct{ params, want string }{
		{`{"timeoutVote":"5ms"}`, "consensus.params.timeoutVote: must be between 100ms and 30s, got 5ms"},
		{`{"timeoutPropose":"2m"}`, "consensus.params.timeoutPropose: must be between 100ms and 30s, got 2m0s"},
		{`{"timeoutGrowth":"1ms"}`, "consensus.params.timeoutGrowth: must be between 10ms and 30s, got 1ms"},
		{`{"blockTime":"0s"}`, "consensus.params.blockTime: must be between 10ms and 1h0m0s, got 0s"},
		{`{"emptyBlockPeriod":"50ms"}`, "consensus.params.emptyBlockPeriod: must be 0 or between 100ms and 24h0m0s, got 50ms"},
		{`{"emptyBlockPeriod":"1s","blockTime":"2s"}`, "consensus.params.emptyBlockPeriod: 1s is below blockTime 2s"},
		{`{"timeoutVote":500}`, `consensus.params.timeoutVote: want a duration string such as "500ms" or "2s", got 500`},
		{`{"timeoutVote":"fast"}`, `consensus.params.timeoutVote: want a duration such as "500ms" or "2s", got "fast"`},
		{`{"timeoutVotes":"1s","period":"1s"}`, `consensus.params: unknown field "period", "timeoutVotes": the bft engine takes timeoutPropose, timeoutVote, timeoutGrowth, blockTime, emptyBlockPeriod`},
		{`[1]`, `consensus.params: want a JSON object of the bft engine's parameters`},
	} {
		_, err := ConfigFromSpec(bftSpec(tc.params))
		if err == nil || !errors.Is(err, consensus.ErrBadParams) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want one with %q", tc.params, err, tc.want)
		}
		if _, _, err := FromSpec(bftSpec(tc.params), consensus.Env{}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("FromSpec %s: err = %v, want one with %q", tc.params, err, tc.want)
		}
	}
}

// Without parameters the engine runs with the constants it always had.
func TestParamsDefaultsUnchanged(t *testing.T) {
	for _, params := range []string{``, `null`, `{}`} {
		cfg, err := ConfigFromSpec(bftSpec(params))
		if err != nil {
			t.Fatalf("%q: %v", params, err)
		}
		cfg.ensureDefaults()
		want := EngineConfig{ChainID: 7, Validators: cfg.Validators}
		want.ensureDefaults()
		if cfg.ProposeTimeout != want.ProposeTimeout || cfg.PrevoteTimeout != want.PrevoteTimeout || cfg.PrecommitTimeout != want.PrecommitTimeout ||
			cfg.TimeoutDelta != want.TimeoutDelta || cfg.CommitWait != want.CommitWait || cfg.EmptyBlockPeriod != 0 || cfg.MaxTimeout != want.MaxTimeout {
			t.Fatalf("%q: config %+v, want the defaults %+v", params, cfg, want)
		}
		core, err := cfg.coreConfig(consensus.NodeID{1}, nil)
		if err != nil {
			t.Fatal(err)
		}
		// 2s, 500ms, 500ms, 500ms, 250ms at 50ms a tick.
		if tm := core.baseTiming(); tm != (timing{propose: 40, prevote: 10, precommit: 10, growth: 10, commitWait: 5}) {
			t.Fatalf("%q: timing %+v", params, tm)
		}
	}
}

func TestParamsFromGenesis(t *testing.T) {
	cfg, err := ConfigFromSpec(bftSpec(`{"timeoutPropose":"3s","timeoutVote":"1s","timeoutGrowth":"250ms","blockTime":"1s","emptyBlockPeriod":"10s"}`))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ProposeTimeout != 3*time.Second || cfg.PrevoteTimeout != time.Second || cfg.PrecommitTimeout != time.Second ||
		cfg.TimeoutDelta != 250*time.Millisecond || cfg.CommitWait != time.Second || cfg.EmptyBlockPeriod != 10*time.Second {
		t.Fatalf("config %+v", cfg)
	}
	cfg.ensureDefaults()
	core, err := cfg.coreConfig(consensus.NodeID{1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if tm := core.baseTiming(); tm != (timing{propose: 60, prevote: 20, precommit: 20, growth: 5, commitWait: 20, emptyWait: 200}) {
		t.Fatalf("timing %+v", tm)
	}
	// Governance's values (milliseconds) replace those they name.
	tm := core.timingWith(map[string]uint64{"bft.timeoutVote": 2000, "bft.emptyBlockPeriod": 0, "poa.period": 5})
	if tm != (timing{propose: 60, prevote: 40, precommit: 40, growth: 5, commitWait: 20, emptyWait: 0}) {
		t.Fatalf("timing with governance's values %+v", tm)
	}
}

// A parameter change governance decided in block 3 for height 8 is in
// force on every node from height 8 exactly, also on nodes that crash and
// restart (they get it with their config, as from the registry).
func TestSimParamChangeAtHeight(t *testing.T) {
	values := map[string]uint64{"bft.timeoutPropose": 500, "bft.timeoutVote": 200, "bft.blockTime": 30}
	for seed := int64(1); seed <= 3; seed++ {
		w := newWorld(seed, simConfig{validators: 4, observers: 1, commitWait: 5, crashes: seed == 3,
			faults: simnet.Faults{MinDelay: 1, MaxDelay: 10}, params: &paramChange{decideAt: 3, from: 8, values: values}})
		cfg := w.coreConfig(w.nodes[0], 0)
		cfg.EnsureDefaults()
		base := cfg.baseTiming()
		changed := cfg.timingWith(values)
		if changed == base || changed.propose != 50 || changed.prevote != 20 || changed.commitWait != 3 {
			t.Fatalf("changed timing %+v, base %+v", changed, base)
		}
		seen := map[bool]bool{}
		for i := 0; i < 20_000 && w.s.MinHeight(w.s.Nodes) < 12; i++ {
			if i%20 == 0 {
				w.submit()
			}
			if i%50 == 0 {
				// Crashed nodes restart, as the comment above says.
				for _, n := range w.nodes {
					if err := w.s.Restart(n.Node); err != nil {
						t.Fatalf("seed %d: %v", seed, err)
					}
				}
			}
			w.step()
			for _, n := range w.nodes {
				c := n.core()
				if c == nil {
					continue
				}
				want := base
				if c.hs.height >= 8 {
					want = changed
				}
				if c.hs.tm != want {
					t.Fatalf("seed %d: %s at height %d has timing %+v, want %+v", seed, n, c.hs.height, c.hs.tm, want)
				}
				seen[c.hs.height >= 8] = true
			}
		}
		if err := w.finalCheck(); err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		if h := w.s.MinHeight(w.s.Nodes); h < 12 || !seen[false] || !seen[true] {
			t.Fatalf("seed %d: min height %d, saw before %v after %v", seed, h, seen[false], seen[true])
		}
	}
}

// With an empty block period, an idle network makes a block only every
// period; a transaction is still sealed at once; without one (the
// default) a block follows every commit wait.
func TestSimEmptyBlockPeriod(t *testing.T) {
	for _, slow := range []bool{false, true} {
		testSimEmptyBlockPeriod(t, slow)
	}
}

// testSimEmptyBlockPeriod runs the test; slowHost answers builds after a
// few ticks, so that transactions come while the proposer's poll is out.
func testSimEmptyBlockPeriod(t *testing.T, slowHost bool) {
	const commitWait, emptyWait, delay = 5, 150, 5
	gaps := func(w *world, n *simnet.Node, from int) []uint64 {
		ticks := w.commitTicks[n]
		var out []uint64
		for i := max(from, 1); i < len(ticks); i++ {
			out = append(out, ticks[i]-ticks[i-1])
		}
		return out
	}
	// The default: a block at every height.
	w := newWorld(1, simConfig{validators: 4, commitWait: commitWait, faults: simnet.Faults{MinDelay: 1, MaxDelay: delay}})
	for i := 0; i < 2000 && w.s.MinHeight(w.s.Nodes) < 10; i++ {
		w.step()
	}
	if h := w.s.MinHeight(w.s.Nodes); h < 10 {
		t.Fatalf("without an empty block period, min height %d after %d ticks", h, w.tick())
	}
	for _, g := range gaps(w, w.nodes[0].Node, 2) {
		if g >= emptyWait/2 {
			t.Fatalf("without an empty block period, blocks %d ticks apart", g)
		}
	}

	w = newWorld(1, simConfig{validators: 4, observers: 1, commitWait: commitWait, emptyWait: emptyWait,
		faults: simnet.Faults{MinDelay: 1, MaxDelay: delay}, slowHost: slowHost})
	for i := 0; i < 20_000 && w.s.MinHeight(w.s.Nodes) < 6; i++ {
		w.step()
	}
	if h := w.s.MinHeight(w.s.Nodes); h < 6 {
		t.Fatalf("idle with an empty block period, min height %d after %d ticks", h, w.tick())
	}
	for _, n := range w.s.Nodes {
		// Each block waits the period from the decision of the previous
		// one (a node decides up to a message delay after another), and
		// then takes a round.
		for i, g := range gaps(w, n, 2) {
			if g < emptyWait-delay || g > emptyWait+60 {
				t.Fatalf("node %d: idle blocks %d and %d are %d ticks apart, want about %d", n.Index, i+2, i+3, g, emptyWait)
			}
		}
	}
	if len(w.s.Pending()) != 0 {
		t.Fatal("transactions pending in an idle network")
	}
	// A transaction does not wait for the period.
	h0 := w.s.MinHeight(w.s.Nodes)
	for i := 0; i < 30; i++ { // a little into the idle wait
		w.step()
	}
	w.submit()
	start := w.tick()
	for w.tick() < start+emptyWait && len(w.s.Pending()) > 0 {
		w.step()
	}
	if len(w.s.Pending()) > 0 || w.tick()-start > 60 {
		t.Fatalf("slow host %v: a transaction took %d ticks to commit (pending %d); the empty block period is %d", slowHost, w.tick()-start, len(w.s.Pending()), emptyWait)
	}
	if err := w.finalCheck(); err != nil {
		t.Fatal(err)
	}
	if h := w.s.MaxHeight(); h != h0+1 && h != h0+2 {
		t.Fatalf("height %d after one transaction from %d", h, h0)
	}
}

// idleFixture is a core of 4 validators with an empty block period of 100
// ticks and a commit wait of 2, that is (proposer) or is not round 0's
// proposer of height 1.
func idleFixture(t *testing.T, proposer bool) *fixture {
	f := newFixture(t, 4, 0, nil)
	p := slices.Index(f.ids, f.proposer(1, 0))
	if !proposer {
		p = (p + 1) % 4
	}
	f = newFixture(t, 4, p, func(c *Config) { c.CommitWaitTicks, c.EmptyBlockTicks = 2, 100 })
	f.ready()
	return f
}

func (f *fixture) ticks(n int) consensus.Ready {
	var all consensus.Ready
	for i := 0; i < n; i++ {
		f.core.Tick()
		rd := f.drain()
		all.Messages = append(all.Messages, rd.Messages...)
		if rd.Build != nil {
			all.Build = rd.Build
		}
	}
	return all
}

func TestCoreIdleHeight(t *testing.T) {
	tx := []*types.Transaction{types.NewTx(&types.LegacyTx{Nonce: 1})}
	t.Run("proposer polls and proposes what it finds", func(t *testing.T) {
		f := idleFixture(t, true)
		rd := f.ticks(2)
		if rd.Build == nil || rd.Build.Empty || f.core.hs.step != stepNewHeight || !f.core.hs.idle {
			t.Fatalf("after the commit wait: build %+v, step %s, idle %v", rd.Build, f.core.hs.step, f.core.hs.idle)
		}
		poll := *rd.Build
		if rd := f.ticks(10); rd.Build != nil || len(sent(t, rd.Messages, MsgProposal)) != 0 {
			t.Fatalf("a second poll or a proposal while the first poll is out: %+v", rd)
		}
		f.core.Built(poll, nil, nil) // nothing to do
		rd = f.ticks(2)
		if rd.Build == nil || rd.Build.Empty || rd.Build.ID == poll.ID {
			t.Fatalf("no new poll a commit wait later: %+v", rd.Build)
		}
		b := f.block(1)
		f.core.Built(*rd.Build, b, nil)
		props := sent(t, f.drain().Messages, MsgProposal)
		if len(props) != 1 || props[0].hash != b.Hash() || props[0].round != 0 || f.core.hs.step == stepNewHeight {
			t.Fatalf("the block the poll found was not proposed in round 0: %+v", props)
		}
	})
	t.Run("transactions while the poll is out", func(t *testing.T) {
		f := idleFixture(t, true)
		poll := *f.ticks(2).Build
		f.core.Notify(tx)
		rd := f.ready()
		if rd.Build == nil || !rd.Build.Empty || f.core.hs.step != stepPropose {
			t.Fatalf("Notify while idle: build %+v, step %s", rd.Build, f.core.hs.step)
		}
		f.core.Built(poll, f.block(2), nil) // late: the round asked again
		b := f.block(3)
		f.core.Built(*rd.Build, b, nil)
		if props := sent(t, f.drain().Messages, MsgProposal); len(props) != 1 || props[0].hash != b.Hash() {
			t.Fatalf("proposals %+v, want the round's block", props)
		}
	})
	t.Run("a peer's proposal ends the wait", func(t *testing.T) {
		f := idleFixture(t, false)
		if rd := f.ticks(5); rd.Build != nil || !f.core.hs.idle {
			t.Fatalf("a validator not in turn polls (%+v) or is not idle", rd.Build)
		}
		b := f.block(4)
		f.mustStep(f.proposer(1, 0), f.proposal(f.proposer(1, 0), 1, 0, -1, b, nil))
		votes := sent(t, f.drain().Messages, MsgPrevote)
		if len(votes) != 1 || votes[0].hash != b.Hash() {
			t.Fatalf("prevotes %+v, want one for the proposal", votes)
		}
	})
	t.Run("the period ends the wait", func(t *testing.T) {
		f := idleFixture(t, false)
		f.ticks(99)
		if f.core.hs.step != stepNewHeight {
			t.Fatalf("round 0 started before the period: step %s", f.core.hs.step)
		}
		f.ticks(1)
		if f.core.hs.step != stepPropose || f.core.hs.round != 0 {
			t.Fatalf("at the period: step %s round %d", f.core.hs.step, f.core.hs.round)
		}
	})
}
