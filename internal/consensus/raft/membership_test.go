package raft

import (
	"errors"
	"fmt"
	"math/rand"
	"os"
	"slices"
	"testing"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/charter-ledger/charter/internal/consensus"
	"github.com/charter-ledger/charter/internal/consensus/simnet"
)

// voterNodes are the node ids of the voters of a core's current membership
// (incoming config), sorted.
func voterNodes(c *Core) []consensus.NodeID {
	return idsToNodes(c, c.confNow().GetVoters())
}

func learnerNodes(c *Core) []consensus.NodeID {
	return idsToNodes(c, c.confNow().GetLearners())
}

func idsToNodes(c *Core, ids []uint64) []consensus.NodeID {
	var out []consensus.NodeID
	for _, id := range ids {
		n, ok := c.mem.node(id)
		if !ok {
			n = consensus.NodeID{0xff} // unknown: never equal to a real set
		}
		out = append(out, n)
	}
	slices.SortFunc(out, func(a, b consensus.NodeID) int { return a.Cmp(b) })
	return out
}

func sortedNodes(ids []consensus.NodeID) []consensus.NodeID {
	out := slices.Clone(ids)
	slices.SortFunc(out, func(a, b consensus.NodeID) int { return a.Cmp(b) })
	return out
}

// decide records a validator set decided by the block after the highest
// head, in force lead blocks later (an "epoch boundary"). The test must
// make that block (transactions).
func (c *cluster) decide(ids []consensus.NodeID, lead uint64) govChange {
	var top uint64
	for _, n := range c.nodes {
		top = max(top, n.chain.Height())
	}
	g := govChange{decideAt: top + 1, from: top + 1 + lead, ids: slices.Clone(ids)}
	c.gov = append(c.gov, g)
	c.logf("decide at %d: validators %v from %d", g.decideAt, short(ids), g.from)
	return g
}

// membershipIs reports whether every running member in nodes has the
// voters want (and no joint config).
func (c *cluster) membershipIs(nodes []*simNode, want []consensus.NodeID) bool {
	want = sortedNodes(want)
	for _, n := range nodes {
		if n.core() == nil {
			continue
		}
		cs := n.core().confNow()
		if len(cs.GetVotersOutgoing()) > 0 || !slices.Equal(voterNodes(n.core()), want) {
			return false
		}
	}
	return true
}

// TestMembershipChanges: a group of three validators (sometimes with a
// configured learner) adds a fourth voter that was not in the genesis
// (and promotes the learner), then removes one of the original voters
// (often the leader) and demotes the learner, as governance decides, under
// message drops, duplicates, delays and crashes with restarts. Checks: no
// two blocks at one height (throughout), every transaction committed
// exactly once, the membership reaches each decided set, the new node
// catches up and takes part, the removed node stops proposing, a node
// restarted after the changes comes back with the new membership, and
// the group keeps committing.
func TestMembershipChanges(t *testing.T) {
	restore := installSeededRand()
	defer restore()
	normal, soak := 40, 5000
	if raceEnabled {
		normal = 6
	}
	simnet.RunSeeds(t, normal, soak, func(seed int64) error {
		unbind := simRand.bind(seed)
		defer unbind()
		c, err := membershipRun(seed)
		if err != nil && c != nil {
			tail := c.s.Events()
			if len(tail) > 30 && os.Getenv("CHARTER_FULL_LOG") == "" {
				tail = tail[len(tail)-30:]
			}
			return fmt.Errorf("%w\nlast events:\n  %s", err, joinLines(tail))
		}
		return err
	})
}

func membershipRun(seed int64) (*cluster, error) {
	rng := rand.New(rand.NewSource(seed))
	cfg := randomConfig(rng)
	learners := rng.Intn(2)
	faults := simnet.Faults{
		DropRate: []float64{0.02, 0.05, 0.1, 0.2}[rng.Intn(4)],
		DupRate:  0.02,
		MinDelay: 1,
		MaxDelay: uint64(2 + rng.Intn(20)),
	}
	c, err := newCluster(seed, clusterOpts{validators: 3, learners: learners, extra: 1, faults: faults, cfg: cfg, gov: true})
	if err != nil {
		return nil, err
	}
	orig := c.nodes[:3]
	newcomer := c.nodes[len(c.nodes)-1]
	var learner *simNode
	if learners > 0 {
		learner = c.nodes[3]
	}
	c.logf("membership: learners=%d faults=%+v depth=%d snap=%d margin=%d empty=%v",
		learners, faults, cfg.PipelineDepth, cfg.SnapshotEntries, cfg.CompactMargin, cfg.ForceEmpty)
	workload := func(now uint64) error {
		if now%40 == 0 {
			if act := c.active(); len(act) > 0 {
				return c.submit(act[c.rng.Intn(len(act))], c.newTx())
			}
		}
		return nil
	}
	// In the phases that follow, now and then: crash (power loss) and
	// restart one node at a time, or cut one off for a while (the
	// newcomer too: it must resume joining); sometimes crash points right
	// after acknowledgements.
	c.s.SetCrashRate([]float64{0, 0, 0.001}[rng.Intn(3)])
	var down *simNode
	chaos := func(now uint64) error {
		if err := workload(now); err != nil {
			return err
		}
		if now%700 != 0 {
			return nil
		}
		c.net.Heal()
		if down != nil {
			err := c.restart(down)
			down = nil
			return err
		}
		act := c.active()
		if len(act) == 0 {
			return nil
		}
		switch n := act[c.rng.Intn(len(act))]; c.rng.Intn(3) {
		case 0:
			down = n
			c.crash(n)
		case 1:
			c.logf("cut off %s", name(n.id))
			c.partition([]consensus.NodeID{n.id}, c.ids(slices.DeleteFunc(slices.Clone(c.nodes), func(x *simNode) bool { return x == n })))
		}
		return nil
	}
	heal := func() error {
		c.net.Heal()
		if down != nil {
			err := c.restart(down)
			down = nil
			return err
		}
		return nil
	}

	if err := c.runUntil(10_000, func() bool { return c.leader() != nil && c.nodes[0].chain.Height() >= 3 }, workload); err != nil {
		return c, err
	}
	if newcomer.core().role != "none" || isMember(newcomer.core().confNow(), newcomer.core().id) {
		return c, errors.New("the newcomer started as a member")
	}

	// 1. Add the newcomer as a voter (and promote the learner).
	set1 := c.ids(orig)
	set1 = append(set1, newcomer.id)
	if learner != nil {
		set1 = append(set1, learner.id)
		learner.learner = false // may lead from now on
	}
	g1 := c.decide(set1, uint64(8+c.rng.Intn(6)))
	if err := c.runUntil(60_000, func() bool {
		return c.membershipIs(c.nodes, set1) && newcomer.core() != nil && newcomer.chain.Height() >= g1.from
	}, chaos); err != nil {
		return c, fmt.Errorf("adding %s: %w", name(newcomer.id), err)
	}
	if err := heal(); err != nil {
		return c, err
	}
	// The newcomer takes part: it has the chain and commits new blocks.
	h := newcomer.chain.Height()
	if err := c.runUntil(20_000, func() bool { return newcomer.chain.Height() >= h+2 }, func(now uint64) error {
		if now%20 == 0 {
			return c.submit(newcomer, c.newTx())
		}
		return nil
	}); err != nil {
		return c, fmt.Errorf("newcomer after joining: %w", err)
	}

	// 2. Remove one original voter, the leader half of the time (and
	// demote the learner back).
	victim := orig[c.rng.Intn(3)]
	if l := c.leader(); l != nil && slices.Contains(orig, l) && c.rng.Intn(2) == 0 {
		victim = l
	}
	var set2 []consensus.NodeID
	for _, id := range c.ids(orig) {
		if id != victim.id {
			set2 = append(set2, id)
		}
	}
	set2 = append(set2, newcomer.id)
	rest := slices.DeleteFunc(slices.Clone(c.nodes), func(n *simNode) bool { return n == victim })
	g2 := c.decide(set2, uint64(8+c.rng.Intn(6)))
	// etcd raft does not tell a removed follower: the victim knows it
	// leaves once its chain reached the change's height (and then does
	// not campaign), or sees its removal if it led. One removed before its
	// chain got there cannot know.
	gone := func() bool {
		v := victim.core()
		return v != nil && (v.leaving() || !isMember(v.confNow(), v.id) || victim.chain.Height()+1 < g2.from)
	}
	if err := c.runUntil(60_000, func() bool { return c.membershipIs(rest, set2) && gone() }, chaos); err != nil {
		return c, fmt.Errorf("removing %s: %w", name(victim.id), err)
	}
	c.s.SetCrashRate(0)
	if err := heal(); err != nil {
		return c, err
	}
	for _, n := range c.nodes {
		if err := c.restart(n); err != nil {
			return c, err
		}
	}
	c.removed[victim.id] = true
	// The chain had reached the change's height before it was made.
	var top uint64
	for _, n := range rest {
		top = max(top, n.chain.Height())
	}
	if top+1 < g2.from {
		return c, fmt.Errorf("chain at %d: membership changed before height %d", top, g2.from)
	}
	// The removed node no longer proposes.
	proposals := victim.core().Counters().Proposals
	if err := c.run(c.net.Now()+2000, workload); err != nil {
		return c, err
	}
	if victim.core().IsLeader() || victim.core().Counters().Proposals != proposals {
		return c, fmt.Errorf("removed %s still leads or proposes", name(victim.id))
	}

	// 3. Restarts keep the new membership: the node reads it back from its
	// own raft state before hearing from anyone.
	if err := c.runUntil(20_000, func() bool { return c.membershipIs(rest, set2) }, workload); err != nil {
		return c, err
	}
	for _, n := range []*simNode{newcomer, rest[c.rng.Intn(len(rest))], victim} {
		c.crash(n)
		if err := c.restart(n); err != nil {
			return c, err
		}
		if n == victim {
			if !gone() {
				return c, fmt.Errorf("removed %s is a member again after a restart", name(n.id))
			}
		} else if !c.membershipIs([]*simNode{n}, set2) {
			return c, fmt.Errorf("%s restarted with voters %v, want %v", name(n.id), short(voterNodes(n.core())), short(set2))
		}
	}

	if err := c.converge(30_000); err != nil {
		return c, err
	}
	if !c.membershipIs(rest, set2) {
		return c, errors.New("membership changed again while converging")
	}
	if victim.core().IsLeader() {
		return c, errors.New("the removed node leads")
	}
	if learner != nil {
		for _, n := range rest {
			if !slices.Contains(learnerNodes(n.core()), learner.id) {
				return c, fmt.Errorf("%s: the configured learner %s is not a learner after leaving the validators: %v",
					name(n.id), name(learner.id), short(learnerNodes(n.core())))
			}
		}
	}
	return c, c.finalChecks()
}

// A validator set decided for a later height waits for the chain: the
// leader seals empty blocks to reach it, and the new node joins as a
// learner at once, becoming a voter only at that height.
func TestMembershipWaitsForHeight(t *testing.T) {
	defer bound(t, 7)()
	c, err := newCluster(7, clusterOpts{validators: 3, extra: 1, faults: simnet.Faults{MinDelay: 1, MaxDelay: 3}, cfg: quietConfig(), gov: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.runUntil(5000, func() bool { return c.leader() != nil && c.nodes[0].chain.Height() >= 2 },
		c.submitEvery(20, 50, func() *simNode { return c.nodes[0] })); err != nil {
		t.Fatal(err)
	}
	newcomer := c.nodes[3]
	set := append(c.ids(c.nodes[:3]), newcomer.id)
	g := c.decide(set, 30)
	// Transactions until the deciding block; then the empty blocks to the
	// boundary come from the pending change alone.
	if err := c.runUntil(5000, func() bool {
		return slices.Contains(learnerNodes(c.nodes[0].core()), newcomer.id)
	}, func(now uint64) error {
		if now%20 == 0 && c.nodes[0].chain.Height() < g.decideAt {
			return c.submit(c.nodes[0], c.newTx())
		}
		return nil
	}); err != nil {
		t.Fatalf("newcomer not a learner ahead of the change: %v", err)
	}
	if h := c.nodes[0].chain.Height(); h+1 >= g.from {
		t.Fatalf("chain at %d already reached %d", h, g.from)
	}
	if err := c.runUntil(20_000, func() bool { return c.membershipIs(c.nodes, set) }, nil); err != nil {
		t.Fatal(err)
	}
	for _, n := range c.nodes {
		if n.chain.Height()+1 < g.from {
			t.Fatalf("%s at height %d is a voter set for %d", name(n.id), n.chain.Height(), g.from)
		}
	}
	// With nothing waiting, the chain stops again (no endless empty blocks).
	h := c.nodes[0].chain.Height()
	if err := c.run(c.net.Now()+3000, nil); err != nil {
		t.Fatal(err)
	}
	if c.nodes[0].chain.Height() > h+2 {
		t.Fatalf("chain went on from %d to %d with nothing to do", h, c.nodes[0].chain.Height())
	}
	if err := c.converge(10_000); err != nil {
		t.Fatal(err)
	}
	if err := c.finalChecks(); err != nil {
		t.Fatal(err)
	}
}

func TestScheduleAndValidation(t *testing.T) {
	var s schedule
	a, b, d := nodeID(0), nodeID(1), nodeID(2)
	s.set(1, []consensus.NodeID{a})
	s.set(10, []consensus.NodeID{a, b})
	s.set(20, []consensus.NodeID{b})
	if cur, later := s.at(5); !slices.Equal(cur, []consensus.NodeID{a}) || len(later) != 2 || !s.waiting(5) {
		t.Fatalf("at 5: %v %v", cur, later)
	}
	// A later decision for an earlier height replaces the pending ones.
	s.set(15, []consensus.NodeID{d})
	if cur, later := s.at(16); !slices.Equal(cur, []consensus.NodeID{d}) || len(later) != 0 || s.waiting(16) {
		t.Fatalf("at 16: %v %v", cur, later)
	}
	for _, bad := range [][]consensus.NodeID{nil, {a, a}, {{}}} {
		if err := checkValidatorSet(bad); !errors.Is(err, ErrBadValidators) {
			t.Errorf("set %v: %v", bad, err)
		}
	}
	// Raft ids: genesis positions, derived ids (top bit set) for others.
	m := newMembers([]consensus.NodeID{a, b}, []consensus.NodeID{d})
	if m.raftID(a) != 1 || m.raftID(d) != 3 || m.raftID(nodeID(7))>>63 != 1 || m.raftID(nodeID(7)) != derivedRaftID(nodeID(7)) {
		t.Fatal("raft ids")
	}
	if _, ok := m.node(m.raftID(nodeID(7))); ok {
		t.Fatal("unknown node resolved")
	}
	if id, ok := m.learn(nodeID(7)); !ok || id != derivedRaftID(nodeID(7)) {
		t.Fatal("learn")
	}
	if n, ok := m.node(derivedRaftID(nodeID(7))); !ok || n != nodeID(7) {
		t.Fatal("learned node not resolved")
	}
	// Invalid changes are recognized instead of panicking raft.
	cs := &raftpb.ConfState{Voters: []uint64{1}}
	rm := &raftpb.ConfChangeV2{Changes: []*raftpb.ConfChangeSingle{{Type: raftpb.ConfChangeRemoveNode.Enum(), NodeId: new(uint64(1))}}}
	if err := checkConfChange(cs, rm); err == nil {
		t.Fatal("removing the last voter accepted")
	}
	if err := checkConfChange(cs, &raftpb.ConfChangeV2{}); err == nil {
		t.Fatal("leaving a joint config that is not joint accepted")
	}
	add := &raftpb.ConfChangeV2{Changes: []*raftpb.ConfChangeSingle{{Type: raftpb.ConfChangeAddLearnerNode.Enum(), NodeId: new(uint64(9))}}}
	if err := checkConfChange(cs, add); err != nil {
		t.Fatal(err)
	}
}

// A single validator is replaced by a node outside the genesis: the new
// node joins as a learner, then one joint change promotes it and removes
// the old leader, which steps down; the new node leads alone.
func TestMembershipReplacesSoleValidator(t *testing.T) {
	defer bound(t, 11)()
	c, err := newCluster(11, clusterOpts{validators: 1, extra: 1, faults: simnet.Faults{DropRate: 0.05, MinDelay: 1, MaxDelay: 5}, cfg: quietConfig(), gov: true})
	if err != nil {
		t.Fatal(err)
	}
	old, newcomer := c.nodes[0], c.nodes[1]
	if err := c.runUntil(5000, func() bool { return old.core().IsLeader() && old.chain.Height() >= 2 },
		c.submitEvery(20, 50, func() *simNode { return old })); err != nil {
		t.Fatal(err)
	}
	set := []consensus.NodeID{newcomer.id}
	g := c.decide(set, 10)
	if err := c.runUntil(20_000, func() bool {
		return c.membershipIs([]*simNode{newcomer}, set) && newcomer.core().IsLeader() && old.chain.Height() >= g.decideAt
	}, c.submitEvery(20, 20, func() *simNode { return old })); err != nil {
		t.Fatal(err)
	}
	if old.core().IsLeader() || !old.core().leaving() && isMember(old.core().confNow(), old.core().id) {
		t.Fatal("the replaced validator still leads or stays")
	}
	c.removed[old.id] = true
	h := newcomer.chain.Height()
	if err := c.runUntil(5000, func() bool { return newcomer.chain.Height() >= h+3 },
		c.submitEvery(20, 50, func() *simNode { return newcomer })); err != nil {
		t.Fatal(err)
	}
	if err := c.converge(10_000); err != nil {
		t.Fatal(err)
	}
	if err := c.finalChecks(); err != nil {
		t.Fatal(err)
	}
}
