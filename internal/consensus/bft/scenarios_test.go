package bft

import (
	"fmt"
	"math/rand"
	"sync/atomic"
	"testing"

	"github.com/charter-ledger/charter/internal/consensus"
	"github.com/charter-ledger/charter/internal/consensus/simnet"
)

// Seed counts: normal `go test` run, and CHARTER_SOAK=1. CHARTER_SEED=n
// replays one seed; CHARTER_SEEDS=n overrides the count. Ranges start at
// a random seed each run, CHARTER_SEED_START=k at k (simnet.Seeds).
func seeds(normal, soak int) (int, int) {
	if raceEnabled {
		return max(normal/20, 10), soak
	}
	return normal, soak
}

var quiet = simnet.Faults{DropRate: 0.02, MinDelay: 1, MaxDelay: 20}

func randomFaults(r *rand.Rand) simnet.Faults {
	min := uint64(1 + r.Intn(5))
	return simnet.Faults{
		DropRate: r.Float64() * 0.25,
		DupRate:  r.Float64() * 0.2,
		MinDelay: min,
		MaxDelay: min + uint64(r.Intn(80)),
	}
}

func TestSimSmoke(t *testing.T) {
	w := newWorld(1, simConfig{validators: 4, observers: 1, checkSeals: true, commitWait: 5, faults: simnet.Faults{MinDelay: 1, MaxDelay: 20}})
	for i := 0; i < 300; i++ {
		if i%10 == 0 {
			w.submit()
		}
		w.step()
	}
	if err := w.finalCheck(); err != nil {
		t.Fatal(err)
	}
	if h := w.s.MinHeight(w.s.Nodes); h < 10 {
		t.Fatalf("min height %d after 3 s", h)
	}
	st := w.nodes[0].core().Counters()
	if st.Decided == 0 || st.MsgsOut[MsgPrevote] == 0 || st.BytesIn[MsgProposal] == 0 {
		t.Fatalf("stats not counted: %+v", st)
	}
}

// runFaults: drops, duplicates, delays and reordering, partitions and
// healing, crashes and restarts (also between the steps of a Ready), a
// slow host, an observer; then heal and check liveness, safety and
// exactly-once.
func runFaults(seed int64) error {
	r := rand.New(rand.NewSource(seed))
	cfg := simConfig{
		validators: 4 + r.Intn(4),
		observers:  1,
		faults:     randomFaults(r),
		checkSeals: true,
		commitWait: 2 + r.Intn(8),
		slowHost:   r.Intn(2) == 0,
		lazyDrain:  r.Intn(2) == 0,
		crashes:    true,
	}
	cfg.compact = r.Intn(2) == 0
	w := newWorld(seed, cfg)
	w.chaos(300, cfg.validators)
	if err := w.err(); err != nil {
		return err
	}
	if err := w.heal(quiet, 3000); err != nil {
		return err
	}
	return w.finalCheck()
}

func TestSimNetworkFaults(t *testing.T) {
	n, soak := seeds(1000, 100_000)
	simnet.RunSeeds(t, n, soak, runFaults)
}

// runByzantine: up to f validators misbehave (equivocate, stay silent,
// propose invalid blocks, replay old messages of anyone, re-sign their
// votes), a non-validator key sends signed junk, over a faulty network
// with crashes of honest nodes.
func runByzantine(seed int64) error {
	r := rand.New(rand.NewSource(seed))
	n := []int{4, 5, 7}[r.Intn(3)]
	f := (n - 1) / 3
	cfg := simConfig{
		validators: n,
		observers:  1,
		outsider:   true,
		faults:     randomFaults(r),
		checkSeals: true,
		commitWait: 2 + r.Intn(8),
		slowHost:   r.Intn(2) == 0,
		crashes:    r.Intn(2) == 0,
		byz:        make([]byzKind, n),
	}
	cfg.compact = r.Intn(2) == 0
	for _, i := range r.Perm(n)[:f] {
		cfg.byz[i] = byzKind(1 + r.Intn(int(numByzKinds)-1))
	}
	w := newWorld(seed, cfg)
	w.chaos(300, 1)
	if err := w.err(); err != nil {
		return err
	}
	if err := w.heal(quiet, 4000); err != nil {
		return fmt.Errorf("byzantine %v: %w", cfg.byz, err)
	}
	if err := w.finalCheck(); err != nil {
		return err
	}
	return w.checkEvidence()
}

// checkEvidence: honest nodes record only real equivocations, and every
// record verifies.
func (w *world) checkEvidence() error {
	for _, n := range w.nodes {
		if n.core() == nil || !n.honest() {
			continue
		}
		for _, ev := range n.core().Evidence() {
			if err := ev.Verify(simChainID); err != nil {
				return fmt.Errorf("%s: evidence does not verify: %v", n, err)
			}
			for _, m := range w.byID[ev.Validator] {
				if m.honest() {
					return fmt.Errorf("%s: evidence against honest %s: %v", n, m, ev)
				}
			}
		}
	}
	return nil
}

func TestSimByzantine(t *testing.T) {
	n, soak := seeds(400, 50_000)
	simnet.RunSeeds(t, n, soak, runByzantine)
}

// Every Byzantine behaviour on its own, to know each one is exercised.
func TestSimByzantineKinds(t *testing.T) {
	for k := byzSilent; k < numByzKinds; k++ {
		t.Run(k.String(), func(t *testing.T) {
			n, soak := seeds(40, 5_000)
			simnet.RunSeeds(t, n, soak, func(seed int64) error {
				cfg := simConfig{validators: 4, observers: 1, outsider: true, checkSeals: true, commitWait: 3,
					faults: simnet.Faults{DropRate: 0.05, DupRate: 0.05, MinDelay: 1, MaxDelay: 30}, byz: []byzKind{0, k}}
				w := newWorld(seed, cfg)
				w.chaos(300, 0)
				if err := w.heal(quiet, 4000); err != nil {
					return err
				}
				if err := w.finalCheck(); err != nil {
					return err
				}
				if k == byzEquivoc {
					found := false
					for _, n := range w.nodes {
						found = found || (n.honest() && len(n.core().Evidence()) > 0)
					}
					if !found {
						return fmt.Errorf("no honest node recorded evidence of the equivocating validator")
					}
				}
				return w.checkEvidence()
			})
		})
	}
}

// runSetChange: validator 0 leaves and validator 4 (a non-voting node
// until then) joins, decided by block 3 and in force from block 6, under
// faults and crashes; the chain must go on well past the change.
func runSetChange(seed int64) error {
	r := rand.New(rand.NewSource(seed))
	cfg := simConfig{
		validators: 4,
		observers:  1,
		faults:     randomFaults(r),
		checkSeals: true,
		commitWait: 2 + r.Intn(5),
		crashes:    r.Intn(2) == 0,
		setChange:  &setChange{decideAt: 3, from: 6, newSet: []int{1, 2, 3, 4}},
	}
	w := newWorld(seed, cfg)
	w.minTarget = 12
	w.chaos(200, 1)
	if err := w.err(); err != nil {
		return err
	}
	if err := w.heal(quiet, 4000); err != nil {
		return err
	}
	if err := w.finalCheck(); err != nil {
		return err
	}
	// Heights from 6 on carry certificates of the new set (checkSeals).
	// The joining validator takes part: it votes, now or soon.
	joined := w.byID[keyID(simKeys[4])][0]
	for end := w.tick() + 1000; joined.votes == 0 && w.tick() < end; {
		w.step()
	}
	if joined.votes == 0 {
		return fmt.Errorf("the joining validator never voted")
	}
	return w.finalCheck()
}

func TestSimValidatorSetChange(t *testing.T) {
	n, soak := seeds(100, 10_000)
	simnet.RunSeeds(t, n, soak, runSetChange)
}

// ---- Twins ----

// runTwins runs n validators of which twins have two copies (same key),
// under partitions that always separate the copies of a twin; it returns
// the first safety or exactly-once violation. twinByz is what the twins do
// besides running two honest cores (honest, or byzResign: also re-send
// their votes with fresh signatures).
func runTwins(seed int64, n, twins int, mut mutation, twinByz byzKind) error {
	_, err := runTwinsHeight(seed, n, twins, mut, twinByz)
	return err
}

// runTwinsHeight is runTwins that also returns the highest height decided.
func runTwinsHeight(seed int64, n, twins int, mut mutation, twinByz byzKind) (uint64, error) {
	w := twinsWorld(seed, n, twins, mut, twinByz)
	return w.maxHeight(), w.finalCheck()
}

// twinsWorld runs the Twins schedule and returns the world; it stops at
// the first violation (w.err()).
func twinsWorld(seed int64, n, twins int, mut mutation, twinByz byzKind) *world {
	r := rand.New(rand.NewSource(seed))
	byz := make([]byzKind, twins)
	for i := range byz {
		byz[i] = twinByz
	}
	cfg := simConfig{
		byz:        byz,
		validators: n,
		twins:      twins,
		faults:     simnet.Faults{DropRate: r.Float64() * 0.1, MinDelay: 1, MaxDelay: uint64(5 + r.Intn(40))},
		checkSeals: mut == mutNone,
		commitWait: 1 + r.Intn(4),
		mutation:   mut,
	}
	w := newWorld(seed, cfg)
	next := uint64(0)
	for w.tick() < 500 {
		if w.tick() >= next {
			next = w.tick() + uint64(10+w.rng.Intn(60))
			if w.rng.Intn(5) == 0 {
				w.net.Heal()
			} else {
				w.twinsPartition(2 + w.rng.Intn(2))
			}
		}
		if w.rng.Intn(10) == 0 {
			w.submit()
		}
		w.step()
		if w.err() != nil {
			break
		}
	}
	return w
}

// twinsPartition splits the nodes into groups at random, the two copies of
// a twin always in different groups.
func (w *world) twinsPartition(groups int) {
	g := make([][]*simnet.Node, groups)
	placed := map[consensus.NodeID]int{}
	for _, n := range w.nodes {
		i := w.rng.Intn(groups)
		if prev, ok := placed[n.id]; ok && i == prev {
			i = (i + 1 + w.rng.Intn(groups-1)) % groups
		}
		placed[n.id] = i
		g[i] = append(g[i], n.Node)
	}
	w.s.Partition(g...)
}

func TestTwins(t *testing.T) {
	for _, c := range []struct {
		n, twins, seeds int
		byz             byzKind
	}{{4, 1, 300, honest}, {7, 2, 150, honest}, {4, 1, 100, byzResign}} {
		t.Run(fmt.Sprintf("n%d_twins%d_%s", c.n, c.twins, c.byz), func(t *testing.T) {
			n, soak := seeds(c.seeds, 20_000)
			var runs, progressed atomic.Int64
			simnet.RunSeeds(t, n, soak, func(seed int64) error {
				h, err := runTwinsHeight(seed, c.n, c.twins, mutNone, c.byz)
				runs.Add(1)
				if h >= 3 {
					progressed.Add(1)
				}
				return err
			})
			// Runs that decide nothing prove nothing: most must decide.
			if p := progressed.Load(); p*10 < runs.Load()*8 {
				t.Fatalf("only %d of %d runs decided 3 heights or more", p, runs.Load())
			}
			t.Logf("%d of %d runs decided 3 heights or more", progressed.Load(), runs.Load())
		})
	}
}

// findViolation runs seeds 1..limit in order and returns the first that
// fails, or an error if none does.
func findViolation(limit int, run func(int64) error) (int64, error, error) {
	for seed := int64(1); seed <= int64(limit); seed++ {
		if err := run(seed); err != nil {
			return seed, err, nil
		}
	}
	return 0, nil, fmt.Errorf("no violation in %d seeds", limit)
}

// TestTwinsControl proves the checker can fail: with Byzantine weight
// above a third (n=4, two twins), the same harness must find a fork.
func TestTwinsControl(t *testing.T) {
	seed, violation, err := findViolation(200, func(seed int64) error { return runTwins(seed, 4, 2, mutNone, honest) })
	if err != nil {
		t.Fatalf("control: %v: the harness cannot see a fork", err)
	}
	t.Logf("control: seed %d: %v", seed, violation)
}

// TestMutantsCaught plants bugs in the core and checks that the harness
// that passes the correct core catches each of them.
func TestMutantsCaught(t *testing.T) {
	for _, c := range []struct {
		name  string
		mut   mutation
		limit int
		run   func(seed int64, mut mutation) error
	}{
		{"quorum-2f", mutQuorum2f, 200, func(seed int64, mut mutation) error { return runTwins(seed, 4, 1, mut, honest) }},
		{"no-lock-check", mutNoLockCheck, 2000, func(seed int64, mut mutation) error { return runTwins(seed, 4, 1, mut, honest) }},
		{"count-every-vote", mutCountEvery, 500, func(seed int64, mut mutation) error { return runTwins(seed, 4, 1, mut, byzResign) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			seed, violation, err := findViolation(c.limit, func(seed int64) error { return c.run(seed, c.mut) })
			if err != nil {
				t.Fatalf("mutant %s survived: %v", c.name, err)
			}
			t.Logf("mutant %s caught at seed %d: %v", c.name, seed, violation)
		})
	}
}

// runPaced: a backlog of transactions and a host that takes 1 ms per
// transaction to build a block and as long to verify one (the propose
// timeout is 300 ms). Unpaced, the proposer puts the whole backlog in a
// block that nobody verifies before the timeout: rounds fail, the backlog
// grows. Paced (consensus.Pacer), blocks fit in the timeout once the
// first ones were timed. It returns the round changes of the honest
// validators after the warm-up (the first warmup heights) and the least
// height reached.
func runPaced(seed int64, pace bool) (changes, height uint64, err error) {
	const warmup, ticks = 4, 1500
	w := newWorld(seed, simConfig{
		validators: 4,
		faults:     simnet.Faults{MinDelay: 1, MaxDelay: 5},
		checkSeals: true,
		commitWait: 2,
		maxTxs:     1 << 14,
		pace:       pace,
		workTicks:  func(_ consensus.WorkKind, txs int) uint64 { return uint64(txs / 10) },
	})
	roundChanges := func() uint64 {
		var n uint64
		for _, v := range w.nodes {
			if c := v.core(); c != nil {
				n += c.Counters().RoundChanges
			}
		}
		return n
	}
	for i := 0; i < 1500; i++ {
		w.submit()
	}
	var base uint64
	warm := false
	for tick := 0; tick < ticks; tick++ {
		if tick%2 == 0 {
			w.submit() // 50 transactions a second
		}
		w.step()
		if err := w.err(); err != nil {
			return 0, 0, err
		}
		if !warm && w.s.MinHeight(w.s.Nodes) >= warmup {
			warm, base = true, roundChanges()
		}
	}
	height = w.s.MinHeight(w.s.Nodes)
	if !warm {
		// Not even past the warm-up: every round change counts.
		return roundChanges(), height, fmt.Errorf("paced %v: height %d after %d ticks, want at least %d", pace, height, ticks, warmup)
	}
	return roundChanges() - base, height, w.finalCheck()
}

func TestSimPacedProposals(t *testing.T) {
	n := 4
	if raceEnabled {
		n = 2
	}
	simnet.RunSeeds(t, n, 500, func(seed int64) error {
		changes, height, err := runPaced(seed, true)
		if err != nil {
			return err
		}
		if changes > 0 || height < 15 {
			return fmt.Errorf("paced: %d round changes after the warm-up, height %d (want none, and at least 15)", changes, height)
		}
		return nil
	})
}

// TestSimUnpacedControl shows that runPaced can fail: without the pacer
// the same load changes rounds after the warm-up.
func TestSimUnpacedControl(t *testing.T) {
	for seed := int64(1); seed <= 2; seed++ {
		changes, height, err := runPaced(seed, false)
		if changes == 0 {
			t.Fatalf("seed %d: no round change without the pacer (height %d, %v): the scenario does not load the host", seed, height, err)
		}
		t.Logf("seed %d: unpaced, %d round changes, height %d (%v)", seed, changes, height, err)
	}
}

// runCompact: validators send compact proposals over a faulty network
// with crashes; each transaction reaches only some validators, so
// receivers fetch what they miss from the proposer. With phantom, one
// validator proposes compact blocks of transactions nobody has and never
// answers: its rounds fail and the chain goes on. It returns the fetches
// of the honest nodes.
func runCompact(seed int64, phantom bool) (rebuilt, fetches, full uint64, err error) {
	r := rand.New(rand.NewSource(seed))
	n := 4 + r.Intn(4)
	cfg := simConfig{
		validators:    n,
		observers:     1,
		faults:        randomFaults(r),
		checkSeals:    true,
		commitWait:    2 + r.Intn(8),
		slowHost:      r.Intn(2) == 0,
		crashes:       r.Intn(2) == 0,
		compact:       true,
		partialSubmit: 0.5 + 0.5*r.Float64(),
		byz:           make([]byzKind, n),
	}
	if phantom {
		cfg.byz[r.Intn(n)] = byzPhantom
	}
	w := newWorld(seed, cfg)
	count := func(v *simNode) {
		if c := v.core(); c != nil && v.honest() {
			s := c.Counters()
			rebuilt, fetches, full = rebuilt+s.CompactRebuilt, fetches+s.TxFetches, full+s.FullFetches
		}
	}
	w.s.SetEachTick(func(*simnet.Sim) {
		w.eachTick(nil)
		if !w.calm && w.rng.Intn(3) == 0 {
			w.submit()
		}
	})
	w.chaos(300, 1)
	if err := w.err(); err != nil {
		return 0, 0, 0, err
	}
	if err := w.heal(quiet, 4000); err != nil {
		return 0, 0, 0, fmt.Errorf("compact, byzantine %v: %w", cfg.byz, err)
	}
	for _, v := range w.nodes {
		count(v)
	}
	return rebuilt, fetches, full, w.finalCheck()
}

func TestSimCompactProposals(t *testing.T) {
	n, soak := seeds(200, 20_000)
	var rebuilt, fetches atomic.Uint64
	simnet.RunSeeds(t, n, soak, func(seed int64) error {
		r, f, _, err := runCompact(seed, false)
		rebuilt.Add(r)
		fetches.Add(f)
		return err
	})
	if rebuilt.Load() == 0 || fetches.Load() == 0 {
		t.Fatalf("compact proposals rebuilt %d, with fetches %d: both paths should run", rebuilt.Load(), fetches.Load())
	}
}

func TestSimCompactPhantomProposer(t *testing.T) {
	n, soak := seeds(100, 10_000)
	var full atomic.Uint64
	simnet.RunSeeds(t, n, soak, func(seed int64) error {
		_, _, f, err := runCompact(seed, true)
		full.Add(f)
		return err
	})
	if full.Load() == 0 {
		t.Fatal("no full proposal asked for: the phantom proposer was never waited for")
	}
}
