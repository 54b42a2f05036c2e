package raft

import (
	"fmt"
	"math/big"
	"math/rand"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/charter-ledger/charter/internal/consensus"
	"github.com/charter-ledger/charter/internal/consensus/simnet"
)

func quietConfig() Config {
	cfg := Config{ElectionTicks: 10, HeartbeatTicks: 1, MaxBlockTxs: 10, BlockTime: 50 * time.Millisecond,
		SnapshotEntries: 16, CompactMargin: 4, SegmentBytes: 8 << 10, ForwardRetry: 300 * time.Millisecond}
	cfg.EnsureDefaults()
	return cfg
}

// runUntil runs the cluster until cond holds or the deadline passes.
func (c *cluster) runUntil(deadline uint64, cond func() bool, each func(now uint64) error) error {
	end := c.net.Now() + deadline
	err := c.run(end, func(now uint64) error {
		if cond() {
			return errStop
		}
		if each != nil {
			return each(now)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if !cond() {
		return fmt.Errorf("condition not reached within %d ms: %s", deadline, c.describe())
	}
	return nil
}

// submitEvery submits a transaction every period ms, at most count.
func (c *cluster) submitEvery(period uint64, count int, to func() *simNode) func(now uint64) error {
	return func(now uint64) error {
		if now%period != 0 || count == 0 {
			return nil
		}
		count--
		if n := to(); n != nil {
			return c.submit(n, c.newTx())
		}
		return nil
	}
}

func bound(t *testing.T, seed int64) func() {
	restore := installSeededRand()
	unbind := simRand.bind(seed)
	return func() { unbind(); restore() }
}

// A committed block entry that does not extend the head (built on an old
// parent, or a duplicate) is skipped by every node alike, and the chain
// goes on.
func TestStaleEntrySkipped(t *testing.T) {
	defer bound(t, 1)()
	c, err := newCluster(1, clusterOpts{validators: 3, faults: simnet.Faults{MinDelay: 1, MaxDelay: 3}, cfg: quietConfig()})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.runUntil(5000, func() bool { return c.leader() != nil && c.nodes[0].chain.Height() >= 3 && c.converged() },
		c.submitEvery(20, 20, func() *simNode { return c.nodes[0] })); err != nil {
		t.Fatal(err)
	}
	l := c.leader()
	head := l.chain.Head()
	stale := []*types.Block{
		// Built on the genesis, long buried.
		types.NewBlockWithHeader(&types.Header{ParentHash: simnet.Genesis.Hash(), Number: big.NewInt(1), Difficulty: new(big.Int), Time: simnet.GenesisTime + 1, Root: common.HexToHash("0xbad")}),
		// A duplicate of the head block.
		headBlock(l.chain),
		// The right number on a wrong parent.
		types.NewBlockWithHeader(&types.Header{ParentHash: common.HexToHash("0x1234"), Number: new(big.Int).Add(head.Number, common.Big1), Difficulty: new(big.Int), Time: simnet.GenesisTime + 1}),
	}
	for _, b := range stale {
		data, err := encodeBlockEntry(b)
		if err != nil {
			t.Fatal(err)
		}
		if err := l.core().rn.Propose(data); err != nil {
			t.Fatal(err)
		}
	}
	// Garbage committed by a (hypothetical) buggy leader is skipped too.
	if err := l.core().rn.Propose([]byte{0x01, 0xff, 0xfe}); err != nil {
		t.Fatal(err)
	}
	c.s.Input(l.Node, func(core consensus.Core) { core.Tick() })
	if err := c.s.Err(); err != nil {
		t.Fatal(err)
	}
	want := uint64(len(stale) + 1)
	if err := c.runUntil(3000, func() bool {
		for _, n := range c.nodes {
			if n.core().Counters().StaleEntries < want {
				return false
			}
		}
		return true
	}, nil); err != nil {
		t.Fatal(err)
	}
	// The chain goes on after the stale entries.
	h := head.Number.Uint64()
	if err := c.runUntil(5000, func() bool { return c.nodes[0].chain.Height() >= h+3 && c.converged() },
		c.submitEvery(20, 20, func() *simNode { return c.nodes[1] })); err != nil {
		t.Fatal(err)
	}
	if err := c.finalChecks(); err != nil {
		t.Fatal(err)
	}
}

// A node whose execution disagrees with a committed block halts with
// ErrDeterminism; the others go on.
func TestDeterminismBrokenHalts(t *testing.T) {
	defer bound(t, 2)()
	c, err := newCluster(2, clusterOpts{validators: 3, faults: simnet.Faults{MinDelay: 1, MaxDelay: 3}, cfg: quietConfig()})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.runUntil(5000, func() bool { return c.leader() != nil && c.nodes[0].chain.Height() >= 2 }, c.submitEvery(20, 20, func() *simNode { return c.nodes[0] })); err != nil {
		t.Fatal(err)
	}
	var bad *simNode
	for _, n := range c.nodes {
		if !n.core().IsLeader() {
			bad = n
			break
		}
	}
	bad.chain.BadRoot = true
	c.expectHalt[bad.id] = true
	if err := c.runUntil(5000, func() bool { return c.halted[bad.id] != nil }, c.submitEvery(20, 20, func() *simNode { return c.leader() })); err != nil {
		t.Fatal(err)
	}
	// Host.CommitBlock refused the committed block: the engine halts.
	if err := c.halted[bad.id]; err == nil || !strings.Contains(err.Error(), "commit block") || !strings.Contains(err.Error(), "state root") {
		t.Fatalf("halt reason %v, want the refused commit of a committed block", err)
	}
	if err := c.converge(10_000); err != nil {
		t.Fatal(err)
	}
	if err := c.finalChecks(); err != nil {
		t.Fatal(err)
	}
}

// A leader cut off with a minority cannot commit what the majority does
// not have, steps down, and after healing follows the new leader with no
// divergence; transactions given to either side end up in the chain once.
func TestPartitionedLeaderMinority(t *testing.T) {
	restore := installSeededRand()
	defer restore()
	normal, soak := 200, 20_000
	if raceEnabled {
		normal = 20
	}
	simnet.RunSeeds(t, normal, soak, func(seed int64) error {
		unbind := simRand.bind(seed)
		defer unbind()
		return partitionedLeader(seed)
	})
}

func partitionedLeader(seed int64) error {
	rng := rand.New(rand.NewSource(seed))
	cfg := randomConfig(rng)
	faults := simnet.Faults{DropRate: []float64{0, 0.02, 0.1}[rng.Intn(3)], DupRate: 0.05, MinDelay: 1, MaxDelay: uint64(2 + rng.Intn(15))}
	c, err := newCluster(seed, clusterOpts{validators: 5, learners: rng.Intn(2), faults: faults, cfg: cfg})
	if err != nil {
		return err
	}
	any := func() *simNode { up := c.up(); return up[c.rng.Intn(len(up))] }
	if err := c.runUntil(10_000, func() bool { return c.leader() != nil && c.nodes[0].chain.Height() >= 2 }, c.submitEvery(30, 20, any)); err != nil {
		return err
	}
	old := c.leader()
	minority := []consensus.NodeID{old.id}
	var rest []consensus.NodeID
	for _, n := range c.nodes {
		if n == old {
			continue
		}
		if len(minority) < 2 && !n.learner {
			minority = append(minority, n.id)
		} else {
			rest = append(rest, n.id)
		}
	}
	c.logf("partition %v | %v", short(minority), short(rest))
	// Blocks the old leader may still commit: those a quorum had acked
	// before the cut (at most its pipeline).
	limit := old.chain.Height() + uint64(c.cfg.PipelineDepth)
	majority := c.byID[rest[0]]
	c.partition(minority, rest)
	start := majority.chain.Height()
	var newLeader *simNode
	err = c.runUntil(20_000, func() bool {
		l := c.leader()
		if l != nil && l != old && majority.chain.Height() >= start+3 {
			newLeader = l
			return true
		}
		return false
	}, func(now uint64) error {
		if now%20 == 0 {
			if err := c.submit(old, c.newTx()); err != nil { // to the cut-off side
				return err
			}
			return c.submit(majority, c.newTx())
		}
		return nil
	})
	if err != nil {
		return err
	}
	// Let the old leader's side run a while longer: it must stay put.
	if err := c.run(c.net.Now()+uint64(4*c.cfg.ElectionTicks*tickLen), nil); err != nil {
		return err
	}
	if h := old.chain.Height(); h > limit {
		return fmt.Errorf("cut-off leader committed up to %d, beyond %d", h, limit)
	}
	if old.core().IsLeader() {
		return fmt.Errorf("cut-off leader did not step down")
	}
	_ = newLeader
	if err := c.converge(30_000); err != nil {
		return err
	}
	return c.finalChecks()
}

// Learners follow the chain and forward transactions but never vote or
// lead: with every validator but one down, nothing commits, even with
// learners up.
func TestLearnersDoNotVote(t *testing.T) {
	defer bound(t, 3)()
	c, err := newCluster(3, clusterOpts{validators: 3, learners: 2, faults: simnet.Faults{MinDelay: 1, MaxDelay: 3}, cfg: quietConfig()})
	if err != nil {
		t.Fatal(err)
	}
	learner := c.nodes[3]
	if err := c.runUntil(5000, func() bool { return c.nodes[0].chain.Height() >= 3 && c.converged() }, c.submitEvery(20, 20, func() *simNode { return learner })); err != nil {
		t.Fatal(err)
	}
	if learner.chain.Height() < 3 {
		t.Fatalf("learner at height %d", learner.chain.Height())
	}
	// Two validators down: one validator and two learners are no quorum.
	var kept *simNode
	for _, n := range c.nodes[:3] {
		if n.core().IsLeader() || kept != nil {
			c.crash(n)
		} else {
			kept = n
		}
	}
	if kept == nil {
		c.crash(c.nodes[1])
		kept = c.nodes[0]
	}
	h := kept.chain.Height()
	if err := c.run(c.net.Now()+3000, c.submitEvery(20, 20, func() *simNode { return learner })); err != nil {
		t.Fatal(err)
	}
	if kept.chain.Height() != h || learner.chain.Height() > h {
		t.Fatalf("committed without a validator quorum: %d -> %d", h, kept.chain.Height())
	}
	for _, n := range c.nodes[3:] {
		if n.wasLeader {
			t.Fatalf("learner %s led", name(n.id))
		}
	}
	if err := c.converge(20_000); err != nil {
		t.Fatal(err)
	}
	if err := c.finalChecks(); err != nil {
		t.Fatal(err)
	}
	if s := learner.core().Counters(); s.TxsForwarded == 0 {
		t.Fatal("learner forwarded no transactions")
	}
}

// A node restarted after missing more than the compaction margin catches
// up through a snapshot and block transfer.
func TestCatchUpBySnapshotAndBlockTransfer(t *testing.T) {
	defer bound(t, 4)()
	c, err := newCluster(4, clusterOpts{validators: 3, faults: simnet.Faults{MinDelay: 1, MaxDelay: 3}, cfg: quietConfig()})
	if err != nil {
		t.Fatal(err)
	}
	lag := c.nodes[2]
	if err := c.runUntil(5000, func() bool { return c.leader() != nil && c.leader() != lag }, nil); err != nil {
		t.Fatal(err)
	}
	c.crash(lag)
	h := lag.chain.Height()
	leader := c.leader()
	if err := c.runUntil(20_000, func() bool { return leader.chain.Height() >= h+3*c.cfg.SnapshotEntries },
		c.submitEvery(10, 10_000, func() *simNode { return leader })); err != nil {
		t.Fatal(err)
	}
	if err := c.restart(lag); err != nil {
		t.Fatal(err)
	}
	if err := c.converge(10_000); err != nil {
		t.Fatal(err)
	}
	s := lag.core().Counters()
	if s.SnapshotsReceived == 0 || s.BlocksFetched == 0 {
		t.Fatalf("lagging node caught up without snapshot and transfer: %+v", s)
	}
	if err := c.finalChecks(); err != nil {
		t.Fatal(err)
	}
}

// headBlock is a chain's committed head block.
func headBlock(ch *simnet.Chain) *types.Block {
	b, _ := ch.BlockByNumber(ch.Height())
	return b
}
