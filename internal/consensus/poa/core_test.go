package poa

import (
	"bytes"
	"errors"
	"math/big"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/charter-ledger/charter/internal/consensus"
	"github.com/charter-ledger/charter/internal/consensus/simnet"
)

func ids(n int) []consensus.NodeID {
	out := make([]consensus.NodeID, n)
	for i := range out {
		out[i] = crypto.PubkeyToAddress(testKey(i).PublicKey)
	}
	return out
}

func testConfig(i, n int) Config {
	return Config{Key: testKey(i), Validators: ids(n), PeriodTicks: 1, TimeoutTicks: 3, BackoffTicks: 1, MaxTimeoutTicks: 20}
}

func TestSealRoundTrip(t *testing.T) {
	blk := types.NewBlockWithHeader(&types.Header{Number: big.NewInt(7), Difficulty: new(big.Int)})
	sb, err := Seal(blk, Ballot{9, 3}, testKey(1))
	if err != nil {
		t.Fatal(err)
	}
	signer, err := sb.Signer()
	if err != nil || signer != ids(2)[1] {
		t.Fatalf("signer %s err %v", signer, err)
	}
	bal, sig, err := ParseSeal(sb.Seal())
	if err != nil || bal != (Ballot{9, 3}) || !bytes.Equal(sig, sb.Sig) {
		t.Fatalf("ParseSeal: %v %x %v", bal, sig, err)
	}
	// The round is signed: the same signature at another round names
	// another signer (or none).
	other := sb
	other.Ballot.Round = 4
	if s, err := other.Signer(); err == nil && s == signer {
		t.Fatal("signature does not bind the round")
	}
	if _, _, err := ParseSeal(sb.Seal()[:10]); !errors.Is(err, ErrBadSeal) {
		t.Fatalf("short seal: %v", err)
	}
}

func TestBallotOrder(t *testing.T) {
	cases := []struct {
		a, b Ballot
		less bool
	}{
		{Ballot{1, 5}, Ballot{2, 0}, true},
		{Ballot{2, 0}, Ballot{2, 1}, true},
		{Ballot{2, 1}, Ballot{2, 1}, false},
		{Ballot{3, 0}, Ballot{2, 9}, false},
	}
	for _, c := range cases {
		if got := c.a.Less(c.b); got != c.less {
			t.Errorf("%v < %v = %v, want %v", c.a, c.b, got, c.less)
		}
	}
}

func TestSchedule(t *testing.T) {
	v := ids(5)
	var s schedule
	s.add(0, v[:3])
	s.add(10, v[2:])
	if s.leader(Ballot{4, 0}) != v[1] || s.leader(Ballot{4, 1}) != v[2] || s.leader(Ballot{4, 2}) != v[0] {
		t.Fatal("round robin at height 4 wrong")
	}
	if !s.member(9, v[0]) || s.member(10, v[0]) || !s.member(10, v[4]) {
		t.Fatal("membership across the change wrong")
	}
	if !s.changesAt(10) || s.changesAt(9) || s.changesAt(11) {
		t.Fatal("changesAt wrong")
	}
	if got := s.leader(Ballot{10, 0}); got != v[2+10%3] {
		t.Fatalf("leader at 10 = %s", got)
	}
	s.add(20, v[:1])
	s.add(15, v[1:2]) // replaces the later change
	if len(s.epochs) != 3 || s.at(25).from != 15 {
		t.Fatalf("add did not replace later changes: %+v", s.epochs)
	}
}

func TestConfigValidate(t *testing.T) {
	good := testConfig(0, 3)
	cases := []struct {
		name  string
		edit  func(*Config)
		field string
	}{
		{"no key", func(c *Config) { c.Key = nil }, "Key"},
		{"no validators", func(c *Config) { c.Validators = nil }, "Validators"},
		{"duplicate", func(c *Config) { c.Validators = append(c.Validators, c.Validators[0]) }, "Validators"},
		{"lookahead", func(c *Config) { c.FinalityDepth = 5; c.Lookahead = 6 }, "Lookahead"},
		{"changes order", func(c *Config) {
			c.ValidatorChanges = []ValidatorChange{{From: 9, IDs: ids(2)}, {From: 9, IDs: ids(3)}}
		}, "ValidatorChanges"},
		{"timeouts", func(c *Config) { c.MaxTimeoutTicks = 2 }, "MaxTimeoutTicks"},
	}
	c := good
	if err := c.EnsureDefaults().Validate(); err != nil {
		t.Fatalf("good config: %v", err)
	}
	for _, tc := range cases {
		c := good
		tc.edit(&c)
		err := c.EnsureDefaults().Validate()
		if err == nil || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%s: error %v does not name %s", tc.name, err, tc.field)
		}
	}
	z := good
	z.FinalityDepth = ZeroFinalityDepth
	if z.EnsureDefaults(); z.FinalityDepth != 0 || z.Lookahead != 4 {
		t.Fatalf("ZeroFinalityDepth: depth %d lookahead %d", z.FinalityDepth, z.Lookahead)
	}
}

func TestStateEncoding(t *testing.T) {
	blk := types.NewBlockWithHeader(&types.Header{Number: big.NewInt(3), Difficulty: new(big.Int)})
	sb, _ := Seal(blk, Ballot{3, 1}, testKey(0))
	st := PersistentState{Promise: Ballot{4, 2}, Committed: BlockRef{3, Ballot{3, 1}, blk.Hash()}, Chain: []SealedBlock{sb}}
	got, err := DecodeState(EncodeState(st))
	if err != nil {
		t.Fatal(err)
	}
	if got.Promise != st.Promise || got.Committed != st.Committed || len(got.Chain) != 1 || got.Chain[0].Block.Hash() != blk.Hash() {
		t.Fatalf("round trip: %+v", got)
	}
	enc := EncodeState(st)
	enc[len(enc)-1] ^= 1
	if _, err := DecodeState(enc); !errors.Is(err, ErrCorruptState) {
		t.Fatalf("flipped bit: %v", err)
	}
	if _, err := DecodeState(enc[:20]); !errors.Is(err, ErrCorruptState) {
		t.Fatalf("truncated: %v", err)
	}

	// The driver keeps it in a durable.StateFile (see internal/durable's
	// tests for its crash model).
}

// cluster is a tiny hand-driven network of cores with instant delivery,
// for scripted tests.
type cluster struct {
	t     *testing.T
	cores []*Core
	apps  []*simnet.Chain
	leds  []*simnet.Chain
	drop  func(from, to int, payload []byte) bool
	fin   map[uint64]common.Hash
}

func newCluster(t *testing.T, n int, edit func(i int, c *Config)) *cluster {
	cl := &cluster{t: t, fin: map[uint64]common.Hash{}}
	g := testGenesis()
	for i := 0; i < n; i++ {
		cfg := testConfig(i, n)
		if edit != nil {
			edit(i, &cfg)
		}
		led := newChain(ids(n)[i])
		c, err := NewCore(cfg, g, nil, PersistentState{})
		if err != nil {
			t.Fatal(err)
		}
		cl.cores = append(cl.cores, c)
		cl.leds = append(cl.leds, led)
		cl.apps = append(cl.apps, led)
	}
	return cl
}

func (cl *cluster) index(id consensus.NodeID) int {
	for i, c := range cl.cores {
		if c.ID() == id {
			return i
		}
	}
	return -1
}

// settle runs every core's Ready until none has work.
func (cl *cluster) settle() {
	for round := 0; round < 1000; round++ {
		busy := false
		for i, c := range cl.cores {
			if !c.HasReady() {
				continue
			}
			busy = true
			rd := c.Ready()
			for _, sb := range rd.Commits {
				if err := cl.apps[i].CommitBlock(sb.Block, sb.Seal); err != nil {
					cl.t.Fatal(err)
				}
				if h, ok := cl.fin[sb.Block.NumberU64()]; ok && h != sb.Block.Hash() {
					cl.t.Fatalf("fork at %d", sb.Block.NumberU64())
				}
				cl.fin[sb.Block.NumberU64()] = sb.Block.Hash()
			}
			for _, m := range rd.Messages {
				for j, d := range cl.cores {
					if j == i || (!m.Broadcast && d.ID() != m.To) {
						continue
					}
					if cl.drop != nil && cl.drop(i, j, m.Payload) {
						continue
					}
					d.Step(c.ID(), m.Payload)
				}
			}
			c.Advance()
			for _, req := range rd.Serve {
				c.Served(req, consensus.ServeFrom(cl.leds[i], req))
			}
			if b := rd.Build; b != nil {
				blk, err := cl.apps[i].BuildBlock(b.Parent, 0, c.ID())
				c.Built(*b, blk, err)
			}
			for _, blk := range rd.Verify {
				c.Verified(blk.Hash(), cl.apps[i].VerifyBlock(blk))
			}
		}
		if !busy {
			return
		}
	}
	cl.t.Fatal("cluster does not settle")
}

func (cl *cluster) tick(n int) {
	for k := 0; k < n; k++ {
		for _, c := range cl.cores {
			c.Tick()
		}
		cl.settle()
	}
}

func TestRoundRobinHappyPath(t *testing.T) {
	cl := newCluster(t, 4, nil)
	cl.settle()
	cl.tick(40)
	for i, c := range cl.cores {
		st := c.Status()
		if st.Final < 10 {
			t.Fatalf("node %d final %d after 40 ticks: %+v", i, st.Final, st)
		}
	}
	// In turn: with no faults, height h is sealed by validators[h % n] at round 0.
	led := cl.leds[0]
	v := ids(4)
	for h := 1; h < int(led.Height()+1); h++ {
		bal, _, _ := ParseSeal(sealAt(led, uint64(h)))
		if blockAt(led, uint64(h)).Coinbase() != v[h%4] || bal != (Ballot{uint64(h), 0}) {
			t.Fatalf("block %d sealed by %s at %v, want %s at %d/0", h, blockAt(led, uint64(h)).Coinbase(), bal, v[h%4], h)
		}
	}
	if got := cl.cores[0].Head(0); got.Header == nil || got.Header.Number.Uint64() != cl.cores[0].Status().Tip.Height {
		t.Fatalf("Head(0) = %+v", got)
	}
	if got := cl.cores[0].Head(1 << 40); got.Header != nil || got.Number != 0 || got.Latest {
		t.Fatalf("Head(huge) = %+v, want committed block 0", got)
	}
}

func TestSilentAuthoritySkipped(t *testing.T) {
	// Validator 2 never speaks: its heights go to validator 3 in round 1.
	cl := newCluster(t, 4, nil)
	cl.drop = func(from, to int, _ []byte) bool { return from == 2 || to == 2 }
	cl.settle()
	cl.tick(120)
	led := cl.leds[0]
	if int(led.Height()+1) < 10 {
		t.Fatalf("only %d blocks final with one silent authority", int(led.Height()+1))
	}
	v := ids(4)
	skipped := false
	for h := 1; h < int(led.Height()+1); h++ {
		bal, _, _ := ParseSeal(sealAt(led, uint64(h)))
		round := bal.Round
		if blockAt(led, uint64(h)).Coinbase() == v[2] {
			t.Fatalf("silent validator sealed %d", h)
		}
		if h%4 == 2 {
			if round == 0 {
				t.Fatalf("height %d sealed in turn without validator 2", h)
			}
			skipped = true
		}
	}
	if !skipped {
		t.Fatal("no out-of-turn block")
	}
}

func TestMinorityCannotFinalize(t *testing.T) {
	cl := newCluster(t, 5, nil)
	cl.settle()
	cl.tick(10)
	before := cl.cores[0].Status().Final
	// 0 and 1 cut off from 2, 3, 4: the minority must not move on.
	side := func(i int) bool { return i < 2 }
	cl.drop = func(from, to int, _ []byte) bool { return side(from) != side(to) }
	cl.tick(60)
	for i := 0; i < 2; i++ {
		if st := cl.cores[i].Status(); st.Final > before+2 {
			t.Fatalf("minority node %d finalized to %d (was %d)", i, st.Final, before)
		}
	}
	if st := cl.cores[2].Status(); st.Final < before+5 {
		t.Fatalf("majority stuck at %d", st.Final)
	}
	cl.drop = nil
	cl.tick(60)
	if a, b := cl.cores[0].Status().Final, cl.cores[4].Status().Final; a+3 < b {
		t.Fatalf("minority did not catch up: %d vs %d", a, b)
	}
}

func TestRejectsBadBlocks(t *testing.T) {
	cl := newCluster(t, 3, nil)
	cl.settle()
	c := cl.cores[0]
	g := testGenesis()
	app := newChain(ids(3)[1])
	blk, _ := app.BuildBlock(g.Header(), 1, ids(3)[1])

	// Sealed by a non-authority.
	outsider, _ := Seal(blk, Ballot{1, 0}, testKey(9))
	c.Step(ids(3)[2], encodeBlock(outsider))
	// Sealed by an authority, but not the one of its ballot (1/0 is validator 1's).
	wrong, _ := Seal(blk, Ballot{1, 0}, testKey(2))
	c.Step(ids(3)[2], encodeBlock(wrong))
	// Right sealer, round tampered after signing.
	good, _ := Seal(blk, Ballot{1, 0}, testKey(1))
	tampered := good
	tampered.Ballot.Round = 3 // validator 1 is also the authority of 1/3; the signature is not
	c.Step(ids(3)[2], encodeBlock(tampered))
	// A corrupted signature.
	bad := good
	bad.Sig = append([]byte(nil), good.Sig...)
	bad.Sig[5] ^= 0xff
	c.Step(ids(3)[2], encodeBlock(bad))
	if st := c.Counters(); st.BadSeals != 4 {
		t.Fatalf("BadSeals = %d, want 4 (%+v)", st.BadSeals, st)
	}
	if len(c.tree) != 0 {
		t.Fatalf("bad blocks stored: %d", len(c.tree))
	}
	c.Step(ids(3)[2], encodeBlock(good))
	if len(c.tree) != 1 {
		t.Fatal("good block not stored")
	}
	// Equivocation: a second block at the same ballot by the same authority.
	blk2, _ := app.BuildBlock(g.Header(), 2, ids(3)[1])
	twin, _ := Seal(blk2, Ballot{1, 0}, testKey(1))
	c.Step(ids(3)[2], encodeBlock(twin))
	if c.Counters().Equivocation != 1 {
		t.Fatalf("equivocation not detected: %+v", c.Counters())
	}
	// Garbage.
	c.Step(ids(3)[2], []byte{kindBlock, 1, 2, 3})
	c.Step(ids(3)[2], nil)
	if c.Counters().BadMessages != 2 {
		t.Fatalf("BadMessages = %d", c.Counters().BadMessages)
	}
}

func TestReplayedOldBlocksIgnored(t *testing.T) {
	cl := newCluster(t, 3, nil)
	var recorded [][]byte
	cl.drop = func(_, _ int, p []byte) bool {
		if p[0] == kindBlock && len(recorded) < 50 {
			recorded = append(recorded, p)
		}
		return false
	}
	cl.settle()
	cl.tick(40)
	c := cl.cores[0]
	before := c.Status()
	stale := c.Counters().Stale
	for _, p := range recorded {
		c.Step(ids(3)[1], p)
	}
	if after := c.Status(); after != before {
		t.Fatalf("replay changed the node: %+v -> %+v", before, after)
	}
	if c.Counters().Stale == stale {
		t.Fatal("replayed final blocks not counted as stale")
	}
}

func TestVotesFromNonAuthoritiesIgnored(t *testing.T) {
	cl := newCluster(t, 3, nil)
	cl.settle()
	c := cl.cores[0]
	// A non-authority claims a quorum for a far ballot led by node 0.
	for k := 0; k < 5; k++ {
		v := voteMsg{Height: 3, Round: 0, Tip: tipMsg{Height: 2, BallotH: 2, Hash: common.Hash{byte(k)}}}
		c.Step(crypto.PubkeyToAddress(testKey(10+k).PublicKey), encode(kindVote, v))
	}
	if len(c.tallies) != 0 || len(c.evidence) != 0 {
		t.Fatalf("non-authority votes counted: %d tallies %d evidence", len(c.tallies), len(c.evidence))
	}
}

func TestSetValidatorsTooLate(t *testing.T) {
	cl := newCluster(t, 3, nil)
	cl.settle()
	c := cl.cores[0]
	look := c.cfg.Lookahead
	if err := c.SetValidators(look, ids(2)); !errors.Is(err, ErrTooLate) {
		t.Fatalf("height within lookahead accepted: %v", err)
	}
	if err := c.SetValidators(ActivationHeight(0, look), ids(2)); err != nil {
		t.Fatalf("activation height rejected: %v", err)
	}
	if err := c.SetValidators(100, nil); err == nil {
		t.Fatal("empty set accepted")
	}
}

func TestSetValidatorsScripted(t *testing.T) {
	// 3 genesis validators; at height E node 0 leaves and node 3 joins.
	cl := newCluster(t, 4, func(i int, c *Config) { c.Validators = ids(3) })
	cl.settle()
	cl.tick(6)
	g := cl.cores[0].Status().Final
	e := ActivationHeight(g+5, cl.cores[0].cfg.Lookahead)
	for _, c := range cl.cores {
		if err := c.SetValidators(e, ids(4)[1:]); err != nil {
			t.Fatal(err)
		}
	}
	cl.tick(150)
	led := cl.leds[3]
	if led.Height()+1 < e+10 {
		t.Fatalf("chain stopped at %d around the change at %d", int(led.Height()+1)-1, e)
	}
	joined := false
	for h := e; h < led.Height()+1; h++ {
		switch blockAt(led, uint64(h)).Coinbase() {
		case ids(4)[0]:
			t.Fatalf("removed validator sealed %d", h)
		case ids(4)[3]:
			joined = true
		}
	}
	if !joined {
		t.Fatal("new validator never sealed")
	}
}

func TestRestartKeepsPromise(t *testing.T) {
	cl := newCluster(t, 3, nil)
	cl.settle()
	cl.tick(20)
	c := cl.cores[1]
	st := c.persistent()
	restarted, err := NewCore(c.cfg, headBlock(cl.leds[1]), sealAt(cl.leds[1], cl.leds[1].Height()), st)
	if err != nil {
		t.Fatal(err)
	}
	if restarted.promise.Less(c.promise) {
		t.Fatalf("promise went back: %v -> %v", c.promise, restarted.promise)
	}
	if restarted.Status().Tip != c.Status().Tip {
		t.Fatalf("tip lost: %+v vs %+v", restarted.Status().Tip, c.Status().Tip)
	}
	// A persisted chain that does not extend the ledger (a branch the
	// committed chain abandoned, saved before a crash that came between a
	// commit and the save after it) is dropped; the promise stays.
	st.Chain = st.Chain[1:]
	if len(st.Chain) > 0 {
		again, err := NewCore(c.cfg, headBlock(cl.leds[1]), sealAt(cl.leds[1], cl.leds[1].Height()), st)
		if err != nil {
			t.Fatal(err)
		}
		if tip := again.Status().Tip; tip.Height != cl.leds[1].Height() || again.promise != st.Promise {
			t.Fatalf("gapped chain: tip %+v promise %v, want the ledger head and promise %v", tip, again.promise, st.Promise)
		}
	}
}

func TestScheduleNextChange(t *testing.T) {
	var s schedule
	s.add(0, ids(3))
	s.add(10, ids(4))
	s.add(20, ids(2))
	for _, c := range []struct{ h, want uint64 }{{0, 10}, {9, 10}, {10, 20}, {19, 20}, {20, 0}, {99, 0}} {
		if got := s.nextChange(c.h); got != c.want {
			t.Errorf("nextChange(%d) = %d, want %d", c.h, got, c.want)
		}
	}
}

// TestConfirmationsCountUnadoptedBlocks replays, on one core, the stall of
// simulation seed 9001974 (see confirmedTop). Validator 0's tip is committed
// block 5; it promised ballot (9,2), so it cannot adopt blocks 6..9, sealed
// below that; validator 1, whose tip is block 9, votes at height 10. With
// the confirmations counted on the adopted chain alone, validator 0 stays
// final at 3, its lookahead limit at 3+6 = 9, and it can never join a
// ballot at height 10: with the third validator dead, no quorum again.
func TestConfirmationsCountUnadoptedBlocks(t *testing.T) {
	v := ids(3)
	g := testGenesis()
	led := newChain(v[0])
	c, err := NewCore(testConfig(0, 3), g, nil, PersistentState{})
	if err != nil {
		t.Fatal(err)
	}
	if c.cfg.FinalityDepth != 2 || c.cfg.Lookahead != 6 {
		t.Fatalf("depth %d lookahead %d, want the defaults 2 and 6", c.cfg.FinalityDepth, c.cfg.Lookahead)
	}
	app := led
	settle := func() {
		for i := 0; c.HasReady(); i++ {
			if i > 100 {
				t.Fatal("Ready does not settle")
			}
			rd := c.Ready()
			for _, sb := range rd.Commits {
				if err := app.CommitBlock(sb.Block, sb.Seal); err != nil {
					t.Fatal(err)
				}
			}
			c.Advance()
			if b := rd.Build; b != nil {
				t.Fatalf("validator 0 builds at %v: the script lets it seal nothing", *c.building)
			}
			for _, blk := range rd.Verify {
				c.Verified(blk.Hash(), app.VerifyBlock(blk))
			}
		}
	}
	// Blocks 1..9, each sealed by the authority of its ballot (never
	// validator 0: ballot (h, r) is validators[(h+r) % 3]'s).
	maker := newChain(v[1])
	parent := g.Header()
	blocks := map[uint64]SealedBlock{}
	rounds := []uint64{0, 0, 0, 1, 0, 0, 1, 0, 0, 1} // by height; 0 unused
	for h := uint64(1); h <= 9; h++ {
		bal := Ballot{h, rounds[h]}
		blk, err := maker.BuildBlock(parent, 0, c.sched.leader(bal))
		if err != nil {
			t.Fatal(err)
		}
		sb, err := Seal(blk, bal, testKey(int((h+rounds[h])%3)))
		if err != nil {
			t.Fatal(err)
		}
		blocks[h] = sb
		parent = blk.Header()
	}
	vote := func(from int, b Ballot, tip uint64) {
		sb := blocks[tip]
		c.Step(v[from], encode(kindVote, voteMsg{Height: b.Height, Round: b.Round, Tip: tipMsg{Height: tip, BallotH: sb.Ballot.Height, BallotR: sb.Ballot.Round, Hash: sb.Block.Hash()}}))
		settle()
	}
	timeoutUntil := func(want Ballot) {
		for i := 0; i < 60 && c.Status().Promise != want; i++ {
			c.Tick()
			settle()
		}
		if st := c.Status(); st.Promise != want {
			t.Fatalf("promise %v after 60 ticks, want %v (status %+v)", st.Promise, want, st)
		}
	}

	for h := uint64(1); h <= 5; h++ {
		c.Step(v[1], encodeBlock(blocks[h]))
		settle()
	}
	vote(1, Ballot{6, 1}, 5) // with validator 0's own vote: block 5 committed
	if st := c.Status(); st.Tip.Height != 5 || st.Committed.Height != 5 || st.Final != 3 {
		t.Fatalf("after block 5: %+v", st)
	}
	// Validator 1 votes for (9,2) (its ballot ran ahead); 0 joins it on
	// its timeout.
	vote(1, Ballot{9, 2}, 5)
	timeoutUntil(Ballot{9, 2})
	// Blocks 6..9 arrive, all sealed below (9,2): verified, not adopted.
	for h := uint64(6); h <= 9; h++ {
		c.Step(v[1], encodeBlock(blocks[h]))
		settle()
	}
	st := c.Status()
	if st.Tip.Height != 5 {
		t.Fatalf("adopted a block below its promise: %+v", st)
	}
	// Four sealed blocks stand on committed block 5: it is final.
	if st.Final != 5 {
		t.Fatalf("final %d with blocks 6..9 on top of committed block 5, want 5", st.Final)
	}
	// Validator 1 adopted block 9 and votes at height 10; validator 0 can
	// join it now (its limit is 5+6 = 11).
	vote(1, Ballot{10, 0}, 9)
	timeoutUntil(Ballot{10, 0})
}

// TestCatchUpFromVoteAboveLimit replays, on one core, the stall of
// simulation seed 28422784126. Validator 3 of 4 holds blocks 1..10 and
// adopted block 10, but only blocks up to 4 were committed in its view:
// the votes naming 5..9 from a third validator were lost, and that
// validator died. So it is final at 4, its lookahead limit is 4+6 = 10,
// its tip sits at the limit and it cannot vote at height 11. Validator 0,
// final at 9, votes at height 11 naming block 10, which nobody else will
// name (the fourth validator promised above it). Validator 3 must take
// that vote as a sign that validator 0 is ahead and fetch its final
// blocks: no vote left will ever commit blocks 5..9 in its view.
func TestCatchUpFromVoteAboveLimit(t *testing.T) {
	v := ids(4)
	g := testGenesis()
	c, err := NewCore(testConfig(3, 4), g, nil, PersistentState{})
	if err != nil {
		t.Fatal(err)
	}
	if c.cfg.FinalityDepth != 2 || c.cfg.Lookahead != 6 {
		t.Fatalf("depth %d lookahead %d, want the defaults 2 and 6", c.cfg.FinalityDepth, c.cfg.Lookahead)
	}
	app := newChain(v[3])
	var sent []consensus.Message
	settle := func() {
		for i := 0; c.HasReady(); i++ {
			if i > 100 {
				t.Fatal("Ready does not settle")
			}
			rd := c.Ready()
			for _, sb := range rd.Commits {
				if err := app.CommitBlock(sb.Block, sb.Seal); err != nil {
					t.Fatal(err)
				}
			}
			sent = append(sent, rd.Messages...)
			c.Advance()
			if b := rd.Build; b != nil {
				t.Fatalf("validator 3 builds: the script lets it seal nothing")
			}
			for _, blk := range rd.Verify {
				c.Verified(blk.Hash(), app.VerifyBlock(blk))
			}
		}
	}
	maker := newChain(v[0])
	parent := g.Header()
	blocks := map[uint64]SealedBlock{}
	for h := uint64(1); h <= 10; h++ {
		bal := Ballot{h, 0}
		if h%4 == 3 {
			bal.Round = 1 // validator 3's turn: the next one sealed it
		}
		blk, err := maker.BuildBlock(parent, 0, c.sched.leader(bal))
		if err != nil {
			t.Fatal(err)
		}
		sb, err := Seal(blk, bal, testKey(int((h+bal.Round)%4)))
		if err != nil {
			t.Fatal(err)
		}
		blocks[h] = sb
		parent = blk.Header()
	}
	tip := func(h uint64) []byte {
		sb := blocks[h]
		return encode(kindTip, tipMsg{Height: h, BallotH: sb.Ballot.Height, BallotR: sb.Ballot.Round, Hash: sb.Block.Hash()})
	}
	for h := uint64(1); h <= 10; h++ {
		c.Step(v[0], encodeBlock(blocks[h]))
		settle()
		if h <= 9 {
			c.Step(v[0], tip(h))
		}
		if h <= 4 {
			c.Step(v[1], tip(h))
		}
		settle()
	}
	st := c.Status()
	if st.Tip.Height != 10 || st.Committed.Height != 4 || st.Final != 4 {
		t.Fatalf("before the vote: %+v, want tip 10, committed and final 4", st)
	}
	// Validator 0 votes at height 11, one above validator 3's limit.
	sent = nil
	c.Step(v[0], encode(kindVote, voteMsg{Height: 11, Round: 0, Tip: tipMsg{Height: 10, BallotH: 10, Hash: blocks[10].Block.Hash()}}))
	settle()
	asked := false
	for _, m := range sent {
		if m.To == v[0] && len(m.Payload) > 0 && m.Payload[0] == kindFetch {
			asked = true
		}
	}
	if !asked {
		t.Fatalf("a vote above the lookahead limit did not make validator 3 fetch from the voter (sent %d messages)", len(sent))
	}
	// Validator 0 answers with its final blocks 5..9: validator 3 takes
	// them as committed, finalizes up to 8 (depth 2 under tip 10), and
	// may now vote at height 11.
	var final []sealedRLP
	for h := uint64(5); h <= 9; h++ {
		final = append(final, toRLP1(blocks[h]))
	}
	c.Step(v[0], encode(kindBlocks, blocksMsg{Final: final}))
	settle()
	if st := c.Status(); st.Committed.Height != 9 || st.Final != 8 || st.Promise.Height != 11 {
		t.Fatalf("after validator 0's final blocks: %+v, want committed 9, final 8, a vote at height 11", st)
	}
}
