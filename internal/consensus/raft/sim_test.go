package raft

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/charter-ledger/charter/internal/consensus"
	"github.com/charter-ledger/charter/internal/consensus/simnet"
)

// Virtual time: one simnet unit is one millisecond; a raft tick is 10.
const (
	tickLen  = 10
	simEpoch = 1_700_000_000
)

func simTime(t uint64) time.Time {
	return time.Unix(simEpoch, 0).Add(time.Duration(t) * time.Millisecond)
}

// simNode is one simulated node: a raft core on the simnet harness (its
// chain, its disk that loses power).
type simNode struct {
	*simnet.Node
	id      consensus.NodeID
	chain   *simnet.Chain
	learner bool
	// wasLeader records that the node ever led (learners must not).
	wasLeader bool
}

// core is the node's raft core, nil while it is down.
func (n *simNode) core() *Core {
	if n.Node.Core == nil {
		return nil
	}
	return n.Node.Core.(*Core)
}

// cluster is a simulated network of raft cores on simnet.Sim.
type cluster struct {
	seed   int64
	s      *simnet.Sim
	rng    *rand.Rand
	net    *simnet.Network
	check  *simnet.Checker
	nodes  []*simNode
	byID   map[consensus.NodeID]*simNode
	byNode map[*simnet.Node]*simNode
	cfg    Config // shared part; each node gets a copy
	nextTx uint64
	// expectHalt lists nodes allowed to halt (determinism tests).
	expectHalt    map[consensus.NodeID]bool
	halted        map[consensus.NodeID]error
	leaderCrashes int
	target        uint64 // converge: height every node must reach (forced empty blocks)
	// totals accumulates the stats of cores that crashed; walLog counts
	// the WAL's warnings (torn tails repaired).
	totals Stats
	walLog countingHandler
	// gov lists the validator set changes "governance" decided (non-nil
	// in membership tests): each node gets them through SetValidators
	// when it commits the deciding block, and at start as the node does.
	gov []govChange
	// removed nodes left the raft group: they no longer follow the chain.
	removed map[consensus.NodeID]bool
	each    func(now uint64) error
	eachErr error
}

// govChange is a validator set decided by the block at height decideAt,
// in force from height from.
type govChange struct {
	decideAt, from uint64
	ids            []consensus.NodeID
}

// countingHandler is a slog handler that counts records at Warn and above.
type countingHandler struct{ warnings int }

func (h *countingHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }
func (h *countingHandler) Handle(context.Context, slog.Record) error {
	h.warnings++
	return nil
}
func (h *countingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *countingHandler) WithGroup(string) slog.Handler      { return h }

func addStats(a *Stats, b Stats) {
	a.LeaderChanges += b.LeaderChanges
	a.Proposals += b.Proposals
	a.CommittedBlocks += b.CommittedBlocks
	a.StaleEntries += b.StaleEntries
	a.Snapshots += b.Snapshots
	a.SnapshotsReceived += b.SnapshotsReceived
	a.BlocksFetched += b.BlocksFetched
	a.TxsForwarded += b.TxsForwarded
	a.Dropped += b.Dropped
	a.CommittedEntries += b.CommittedEntries
	for i := range a.Sent {
		a.Sent[i].Msgs += b.Sent[i].Msgs
		a.Sent[i].Bytes += b.Sent[i].Bytes
		a.Received[i].Msgs += b.Received[i].Msgs
		a.Received[i].Bytes += b.Received[i].Bytes
	}
}

// stats sums the counters of every core that ran in this cluster.
func (c *cluster) stats() Stats {
	s := c.totals
	for _, n := range c.nodes {
		if n.core() != nil {
			addStats(&s, n.core().Counters())
		}
	}
	return s
}

type clusterOpts struct {
	validators, learners int
	// extra nodes are in neither list: they start as non-members.
	extra  int
	faults simnet.Faults
	cfg    Config
	// gov turns on the governance schedule (see cluster.gov).
	gov bool
	// crashRate is the harness's power-loss rate (see simnet.Config).
	crashRate float64
}

// nodeID is the id of simulated node i: 0x…0a01, 0x…0a02, …
func nodeID(i int) consensus.NodeID {
	return common.BytesToAddress([]byte{0x0a, byte(i + 1)})
}

func newCluster(seed int64, o clusterOpts) (*cluster, error) {
	var ids, vals, learners []consensus.NodeID
	for i := 0; i < o.validators+o.learners+o.extra; i++ {
		id := nodeID(i)
		ids = append(ids, id)
		if i < o.validators {
			vals = append(vals, id)
		} else if i < o.validators+o.learners {
			learners = append(learners, id)
		}
	}
	c := &cluster{
		seed:       seed,
		byID:       make(map[consensus.NodeID]*simNode),
		byNode:     make(map[*simnet.Node]*simNode),
		cfg:        o.cfg,
		expectHalt: make(map[consensus.NodeID]bool),
		halted:     make(map[consensus.NodeID]error),
		removed:    make(map[consensus.NodeID]bool),
	}
	if o.gov {
		c.gov = []govChange{}
	}
	c.cfg.Validators, c.cfg.Learners = vals, learners
	c.cfg.TickInterval = tickLen * time.Millisecond
	s, err := simnet.NewSim(simnet.Config{
		Seed:         seed,
		Faults:       o.faults,
		IDs:          ids,
		TickMs:       tickLen,
		MaxTxs:       c.cfg.MaxBlockTxs,
		CrashRate:    o.crashRate,
		RestartAfter: 10,
		MaxDown:      (len(ids) - 1) / 2,
		Open:         c.open,
		OnCommit:     c.onCommit,
		EachTick:     c.eachTick,
		OnCrash: func(n *simnet.Node) {
			sn := c.byNode[n]
			if sn.core().IsLeader() {
				c.leaderCrashes++
			}
			addStats(&c.totals, sn.core().Counters())
		},
		MayHalt: func(n *simnet.Node, err error) bool {
			if !c.expectHalt[n.ID] {
				return false
			}
			c.halted[n.ID] = err
			return true
		},
	})
	if err != nil {
		return nil, err
	}
	c.s, c.rng, c.net, c.check = s, s.Rand, s.Net, s.Check
	return c, nil
}

// open makes a node's core from its disk and chain (first start and every
// restart), as raft.New's Open does, then gives it the validator schedule
// as the node does.
func (c *cluster) open(n *simnet.Node, _ []byte) (consensus.Core, error) {
	sn := c.byNode[n]
	if sn == nil {
		sn = &simNode{Node: n, id: n.ID, chain: n.Chain}
		for _, l := range c.cfg.Learners {
			sn.learner = sn.learner || l == n.ID
		}
		c.nodes = append(c.nodes, sn)
		c.byID[n.ID] = sn
		c.byNode[n] = sn
	}
	store, err := OpenWAL(n.Disk(), "/raft", c.cfg.SegmentBytes, slog.New(&c.walLog))
	if err != nil {
		return nil, fmt.Errorf("open wal: %w", err)
	}
	cfg := c.cfg
	cfg.Validators = slices.Clone(c.cfg.Validators)
	cfg.Learners = slices.Clone(c.cfg.Learners)
	core, err := NewCore(cfg, n.ID, n.Chain, store, quietLog())
	if err != nil {
		return nil, err
	}
	if err := c.schedule(core, n.Chain.Height()); err != nil {
		return nil, err
	}
	return core, nil
}

func (c *cluster) logf(format string, args ...any) { c.s.Logf(format, args...) }

// onCommit: governance; the node learns a decision when it commits its
// block, from inside CommitBlock, as the real node does.
func (c *cluster) onCommit(n *simnet.Node, b *types.Block, _ []byte) error {
	for _, g := range c.gov {
		if g.decideAt == b.NumberU64() {
			if err := n.Core.SetValidators(g.from, g.ids); err != nil {
				return err
			}
		}
	}
	return nil
}

// schedule hands a (re)started core the validator sets as the node does
// after a restart: the set in force after its head, and the sets decided
// for later heights (consensus.Spec: raft's FromSpec).
func (c *cluster) schedule(core *Core, head uint64) error {
	if c.gov == nil {
		return nil
	}
	cur := c.cfg.Validators
	var later []govChange
	for _, g := range c.gov {
		switch {
		case g.decideAt > head:
		case g.from <= head+1:
			cur = g.ids
		default:
			later = append(later, g)
		}
	}
	if err := core.SetValidators(head+1, cur); err != nil {
		return err
	}
	for _, g := range later {
		if err := core.SetValidators(g.from, g.ids); err != nil {
			return err
		}
	}
	return nil
}

func (c *cluster) crash(n *simNode) { c.s.Crash(n.Node) }

// partition splits the network into groups of nodes, by consensus id.
func (c *cluster) partition(groups ...[]consensus.NodeID) {
	var gs [][]*simnet.Node
	for _, g := range groups {
		var nodes []*simnet.Node
		for _, id := range g {
			nodes = append(nodes, c.byID[id].Node)
		}
		gs = append(gs, nodes)
	}
	c.s.Partition(gs...)
}

func (c *cluster) restart(n *simNode) error { return c.s.Restart(n.Node) }

// submit gives a transaction to a node's pool, as a client would.
func (c *cluster) submit(n *simNode, tx *types.Transaction) error {
	c.s.Submit(tx, n.Node)
	return c.s.Err()
}

func (c *cluster) newTx() *types.Transaction {
	c.nextTx++
	return simnet.Tx(c.nextTx)
}

// errStop, returned by the callback of run, ends the run early.
var errStop = errors.New("stop")

func (c *cluster) eachTick(*simnet.Sim) {
	if c.each == nil || c.eachErr != nil {
		return
	}
	c.eachErr = c.each(c.net.Now())
}

// run advances virtual time to end, delivering messages and ticking every
// running node; every tick calls each (may be nil) after the deliveries.
func (c *cluster) run(end uint64, each func(now uint64) error) error {
	c.each, c.eachErr = each, nil
	defer func() { c.each = nil }()
	for (c.s.Ticks+1)*tickLen <= end {
		c.s.Step()
		for _, n := range c.nodes {
			if core := n.core(); core != nil && core.IsLeader() {
				n.wasLeader = true
			}
		}
		if c.eachErr == errStop {
			return nil
		}
		if c.eachErr != nil {
			return c.eachErr
		}
		if err := c.s.Err(); err != nil {
			return err
		}
	}
	return nil
}

func (c *cluster) up() []*simNode {
	var out []*simNode
	for _, n := range c.nodes {
		if n.core() != nil {
			out = append(out, n)
		}
	}
	return out
}

// active are the running nodes that are still in the raft group.
func (c *cluster) active() []*simNode {
	return slices.DeleteFunc(c.up(), func(n *simNode) bool { return c.removed[n.id] })
}

func (c *cluster) leader() *simNode {
	for _, n := range c.nodes {
		if core := n.core(); core != nil && core.IsLeader() {
			return n
		}
	}
	return nil
}

func (c *cluster) ids(nodes []*simNode) []consensus.NodeID {
	var out []consensus.NodeID
	for _, n := range nodes {
		out = append(out, n.id)
	}
	return out
}

// pendingTxs are the submitted transactions no node committed yet.
func (c *cluster) pendingTxs() []*types.Transaction { return c.s.Pending() }

// converge heals everything and runs until every live node has the same
// head and every submitted transaction is committed, or the deadline.
// Clients resubmit pending transactions now and then, as real ones do.
func (c *cluster) converge(deadline uint64) error {
	f := c.net.Faults()
	if err := c.s.Heal(simnet.Faults{MinDelay: 1, MaxDelay: max(1, min(f.MaxDelay, 10))}); err != nil {
		return err
	}
	// Every live node must pass the highest block any node had at healing
	// time; without forced empty blocks, heads must also come to rest equal.
	var target uint64
	for _, n := range c.nodes {
		target = max(target, n.chain.Height())
	}
	target++
	if !c.cfg.ForceEmpty {
		target = 0
	}
	c.target = target
	end := c.net.Now() + deadline
	err := c.run(end, func(now uint64) error {
		if c.converged() {
			return errStop
		}
		if now%500 == 0 {
			up := c.active()
			for _, tx := range c.pendingTxs() {
				if err := c.submit(up[c.rng.Intn(len(up))], tx); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if !c.converged() {
		return fmt.Errorf("liveness: no convergence %d ms after healing: %s", deadline, c.describe())
	}
	return nil
}

func (c *cluster) expectHaltOrHalted(n *simNode) bool {
	_, h := c.halted[n.id]
	return h
}

func (c *cluster) converged() bool {
	if len(c.pendingTxs()) > 0 {
		return false
	}
	var head common.Hash
	first := true
	for _, n := range c.nodes {
		if n.core() == nil || c.removed[n.id] {
			continue
		}
		if c.cfg.ForceEmpty {
			if n.chain.Height() < c.target {
				return false
			}
			continue
		}
		h := n.chain.Head().Hash()
		if first {
			head, first = h, false
		} else if h != head {
			return false
		}
	}
	return true
}

func (c *cluster) describe() string {
	s := fmt.Sprintf("pending txs %d;", len(c.pendingTxs()))
	for _, n := range c.nodes {
		state := "down"
		if core := n.core(); core != nil {
			state = fmt.Sprintf("leader=%v lead=%v applied=%d commit=%d catchup=%v", core.IsLeader(), core.lead, core.applied, core.commitIndex, core.CatchingUp())
		}
		s += fmt.Sprintf(" [%s h=%d pool=%d %s]", name(n.id), n.chain.Height(), n.chain.PoolSize(), state)
	}
	return s
}

// finalChecks: safety and exactly-once over the run, identical chains.
func (c *cluster) finalChecks() error {
	if err := c.s.FinalCheck(); err != nil {
		return err
	}
	var ref *simNode
	for _, n := range c.nodes {
		if c.expectHaltOrHalted(n) {
			continue
		}
		if n.learner && n.wasLeader {
			return fmt.Errorf("learner %s became leader", n.id)
		}
		if ref == nil {
			ref = n
			continue
		}
		// converge checked equal heads; blocks may have been added since.
		for h := uint64(0); h <= min(n.chain.Height(), ref.chain.Height()); h++ {
			a, _ := n.chain.BlockByNumber(h)
			b, _ := ref.chain.BlockByNumber(h)
			if a.Hash() != b.Hash() {
				return fmt.Errorf("fork at %d between %s and %s", h, ref.id, n.id)
			}
		}
	}
	return nil
}

// randomConfig draws engine parameters that exercise snapshots, compaction,
// WAL rotation, pipelining and block limits.
func randomConfig(rng *rand.Rand) Config {
	cfg := Config{
		ElectionTicks:   10,
		HeartbeatTicks:  1 + rng.Intn(3),
		BlockTime:       time.Duration(30+rng.Intn(200)) * time.Millisecond,
		ForceEmpty:      rng.Intn(3) == 0,
		MaxBlockTxs:     1 + rng.Intn(20),
		PipelineDepth:   1 + rng.Intn(3),
		SnapshotEntries: uint64(4 + rng.Intn(60)),
		SnapshotBytes:   uint64(1<<10 + rng.Intn(64<<10)),
		CompactMargin:   uint64(rng.Intn(12)),
		SegmentBytes:    int64(2<<10 + rng.Intn(64<<10)),
		MaxSizePerMsg:   uint64(1<<10 + rng.Intn(16<<10)),
		MaxInflightMsgs: 4 + rng.Intn(60),
		ForwardRetry:    time.Duration(200+rng.Intn(2000)) * time.Millisecond,
	}
	cfg.EnsureDefaults()
	return cfg
}

func simSeeds() (normal, soak int) {
	if raceEnabled {
		return 60, 1000
	}
	return 1000, 100_000
}

// TestSimulation is the main seeded simulation: random cluster shape,
// engine parameters and network faults; a chaos phase of partitions
// (including a leader cut off with a minority), crashes with power loss
// and restarts, under a client workload; then healing. Checks: no fork,
// every acknowledged transaction in every chain exactly once, identical
// chains, learners never lead, every transaction committed after healing.
func TestSimulation(t *testing.T) {
	restore := installSeededRand()
	defer restore()
	normal, soak := simSeeds()
	var cov coverage
	simnet.RunSeeds(t, normal, soak, func(seed int64) error {
		unbind := simRand.bind(seed)
		defer unbind()
		c, err := runChaos(seed)
		if err != nil && c != nil {
			tail := c.s.Events()
			if len(tail) > 30 {
				tail = tail[len(tail)-30:]
			}
			return fmt.Errorf("%w\nlast events:\n  %s", err, joinLines(tail))
		}
		if err == nil {
			cov.add(c)
		}
		return err
	})
	t.Logf("coverage: %s", cov.String())
	if cov.seeds >= 500 {
		// The scenarios must keep reaching the paths they exist to test.
		// (Stale entries are rare by design: a new leader first applies
		// its predecessors' entries; TestStaleEntrySkipped covers them.)
		for name, n := range map[string]int{
			"snapshot installs": cov.snapInstalls, "block transfers": cov.transfers,
			"torn WAL tails": cov.torn, "leader crashes": cov.leaderCrashes,
		} {
			if n == 0 {
				t.Errorf("no seed exercised %s", name)
			}
		}
	}
}

// coverage counts, over seeds, how often the simulation reached the paths
// it exists to test.
type coverage struct {
	mu                                                         sync.Mutex
	seeds, snapInstalls, transfers, stale, torn, leaderCrashes int
	blocks, leaderChanges                                      uint64
}

func (v *coverage) add(c *cluster) {
	s := c.stats()
	v.mu.Lock()
	defer v.mu.Unlock()
	v.seeds++
	v.blocks += s.CommittedBlocks + s.BlocksFetched
	v.leaderChanges += s.LeaderChanges
	count := func(cond bool, n *int) {
		if cond {
			*n++
		}
	}
	count(s.SnapshotsReceived > 0, &v.snapInstalls)
	count(s.BlocksFetched > 0, &v.transfers)
	count(s.StaleEntries > 0, &v.stale)
	count(c.walLog.warnings > 0, &v.torn)
	count(c.leaderCrashes > 0, &v.leaderCrashes)
}

func (v *coverage) String() string {
	return fmt.Sprintf("%d seeds; seeds with snapshot installs %d, block transfers %d, stale entries %d, torn WAL tails repaired %d, leader crashes %d; %d blocks committed, %d leader changes",
		v.seeds, v.snapInstalls, v.transfers, v.stale, v.torn, v.leaderCrashes, v.blocks, v.leaderChanges)
}

func joinLines(s []string) string {
	out := ""
	for i, l := range s {
		if i > 0 {
			out += "\n  "
		}
		out += l
	}
	return out
}

func runChaos(seed int64) (*cluster, error) {
	rng := rand.New(rand.NewSource(seed))
	validators := []int{1, 3, 3, 3, 5, 5}[rng.Intn(6)]
	learners := []int{0, 0, 1, 2}[rng.Intn(4)]
	faults := simnet.Faults{
		DropRate: []float64{0, 0.01, 0.05, 0.15, 0.3}[rng.Intn(5)],
		DupRate:  []float64{0, 0.02, 0.1}[rng.Intn(3)],
		MinDelay: uint64(rng.Intn(4)),
	}
	faults.MaxDelay = faults.MinDelay + uint64(rng.Intn(40))
	crashRate := []float64{0, 0, 0.001, 0.01}[rng.Intn(4)]
	c, err := newCluster(seed, clusterOpts{validators: validators, learners: learners, faults: faults, cfg: randomConfig(rng), crashRate: crashRate})
	if err != nil {
		return nil, err
	}
	c.logf("cluster v=%d l=%d crash rate %v faults=%+v cfg: hb=%d block=%v empty=%v maxtxs=%d depth=%d snap=%d margin=%d seg=%d",
		validators, learners, crashRate, faults, c.cfg.HeartbeatTicks, c.cfg.BlockTime, c.cfg.ForceEmpty, c.cfg.MaxBlockTxs,
		c.cfg.PipelineDepth, c.cfg.SnapshotEntries, c.cfg.CompactMargin, c.cfg.SegmentBytes)

	chaosEnd := uint64(1500 + c.rng.Intn(2500))
	nextEvent := uint64(300 + c.rng.Intn(300))
	err = c.run(chaosEnd, func(now uint64) error {
		// Workload: a transaction now and then, to a random live node.
		if c.rng.Intn(4) == 0 {
			if up := c.up(); len(up) > 0 {
				if err := c.submit(up[c.rng.Intn(len(up))], c.newTx()); err != nil {
					return err
				}
			}
		}
		if now < nextEvent {
			return nil
		}
		nextEvent = now + uint64(100+c.rng.Intn(500))
		return c.fault()
	})
	if err != nil {
		return c, err
	}
	before := c.check.MinHeight(c.ids(c.nodes))
	if err := c.converge(30_000); err != nil {
		return c, err
	}
	_ = before
	return c, c.finalChecks()
}

// fault applies one random fault.
func (c *cluster) fault() error {
	switch k := c.rng.Intn(10); {
	case k < 2: // random split
		var a, b []consensus.NodeID
		for _, n := range c.nodes {
			if c.rng.Intn(2) == 0 {
				a = append(a, n.id)
			} else {
				b = append(b, n.id)
			}
		}
		c.logf("partition %v | %v", short(a), short(b))
		c.partition(a, b)
	case k < 4: // the leader and at most a minority cut off
		l := c.leader()
		if l == nil {
			return nil
		}
		minority := []consensus.NodeID{l.id}
		var rest []consensus.NodeID
		for _, n := range c.nodes {
			if n == l {
				continue
			}
			if len(minority) < len(c.cfg.Validators)/2 && c.rng.Intn(2) == 0 {
				minority = append(minority, n.id)
			} else {
				rest = append(rest, n.id)
			}
		}
		c.logf("partition leader side %v | %v", short(minority), short(rest))
		c.partition(minority, rest)
	case k < 6:
		c.logf("heal")
		c.net.Heal()
	case k < 8: // crash a node, keeping at most half of them down
		down := len(c.nodes) - len(c.up())
		if down*2 >= len(c.nodes) {
			return nil
		}
		up := c.up()
		n := up[c.rng.Intn(len(up))]
		if l := c.leader(); l != nil && c.rng.Intn(2) == 0 {
			n = l
		}
		c.crash(n)
	default:
		for _, n := range c.nodes {
			if n.core() == nil {
				return c.restart(n)
			}
		}
	}
	return nil
}

func name(id consensus.NodeID) string { return fmt.Sprintf("n%d", id[19]) }

func short(ids []consensus.NodeID) []string {
	var out []string
	for _, id := range ids {
		out = append(out, name(id))
	}
	return out
}

// A seed replays exactly: the same events, the same chains, the same
// message counts. This guards the simulation itself (and the seeded
// crypto/rand that etcd raft's election timeouts draw from).
func TestSimulationReplays(t *testing.T) {
	restore := installSeededRand()
	defer restore()
	seeds, err := simnet.Seeds(5, 5)
	if err != nil {
		t.Fatal(err)
	}
	for _, seed := range seeds {
		var runs [2]string
		for i := range runs {
			unbind := simRand.bind(seed)
			c, err := runChaos(seed)
			unbind()
			if err != nil {
				t.Fatalf("seed %d: %v", seed, err)
			}
			s := c.stats()
			runs[i] = fmt.Sprintf("%s|%v|%d|%d|%+v", joinLines(c.s.Events()), c.nodes[0].chain.Head().Hash(), c.net.Now(), c.net.Stats().Delivered, s.Sent)
		}
		if runs[0] != runs[1] {
			t.Fatalf("seed %d does not replay:\n%s\n---\n%s", seed, runs[0], runs[1])
		}
	}
}
