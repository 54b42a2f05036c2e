package simnet

import (
	"errors"
	"fmt"
	"io/fs"
	"math/rand"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/charter-ledger/charter/internal/consensus"
	"github.com/charter-ledger/charter/internal/durable"
)

// Sim is the one simulation harness: it drives any consensus.Core, one
// per node, over a seeded Network, each node with a Chain and a disk that
// loses power (durable.MemFS), exactly as the Driver would: the same
// consensus.Apply, the same build rule (consensus.BuildFor), the same
// state file. On top it gives every engine, for free:
//
//   - crashes with power loss: at any Ready step (between two commits,
//     before or after the state, before the messages), and in the middle
//     of a write to the disk (a power cut after the n-th write, which
//     leaves torn and lost writes); the node restarts from its disk and
//     its chain;
//   - partitions, drops, duplicates, delays and reordering (Network);
//   - Byzantine peers: twins (two nodes with one id), a hook that rewrites
//     what a node sends, and injection of forged messages;
//   - the checkers: safety (no two blocks final at one height, no node
//     going back), exactly-once of every acknowledged transaction
//     (Checker), and liveness helpers (Heal, RunUntil, Pending).
//
// Determinism: everything follows from Config.Seed (the one rand.Rand of
// the Network); nodes are visited in index order, and nothing reads the
// clock or starts a goroutine. A Sim is not goroutine-safe.
type Sim struct {
	cfg    Config
	Net    *Network
	Rand   *rand.Rand
	Check  *Checker
	Nodes  []*Node
	Ticks  uint64
	byAddr map[consensus.NodeID]*Node
	byID   map[consensus.NodeID][]*Node

	txs   map[common.Hash]*txState
	order []*types.Transaction // submitted, in order
	errs  []error
	log   []string
}

// Config describes a simulation.
type Config struct {
	Seed   int64
	Faults Faults
	// IDs are the consensus ids of the nodes, in order; an id given twice
	// runs as twins (two nodes, one key, one identity to their peers).
	IDs []consensus.NodeID
	// TickMs is the virtual time of one tick, in milliseconds (block
	// timestamps follow it). Default 10.
	TickMs uint64
	// MaxTxs bounds the transactions of a block. Default 8.
	MaxTxs int
	// StateFile is the path, on every node's disk, of the state file
	// Ready.State goes to (as the Driver's StateFile); "" for engines
	// that keep none.
	StateFile string
	// Open makes a node's core at start and at every restart, from its
	// saved state (nil if none), its Chain and its FS.
	Open func(n *Node, saved []byte) (consensus.Core, error)

	// CrashRate is the probability, at every Ready and every input, that
	// the node loses power during it: at a random Ready step, or at a
	// random write to its disk. 0: no crashes but those the test makes.
	CrashRate float64
	// SlowHost answers builds and verifications a few ticks later, a
	// third of the time (the worker is busy).
	SlowHost bool
	// WorkTicks, when set, is the virtual time building (WorkBuild) or
	// verifying (WorkVerify) a block of txs transactions takes on node n,
	// in ticks: the node's worker does one at a time and answers when it
	// is done, and with Pace its Pacer times it.
	WorkTicks func(n *Node, kind consensus.WorkKind, txs int) uint64
	// Pace makes every node cap a block built for a request with a
	// Budget with its Pacer, fed with the times of WorkTicks, as the
	// Driver does with measured times.
	Pace bool
	// LazyDrain carries out Ready work once per tick, not after every
	// message: inputs accumulate work before it is taken.
	LazyDrain bool

	// OnCommit runs after a node committed a block (engine checks such as
	// seals, governance decisions: SetValidators). An error is a failure.
	OnCommit func(n *Node, b *types.Block, seal []byte) error
	// Outbound lets a node misbehave: it sees every message a node's core
	// sends and returns true if it sent (or dropped) it itself, false to
	// send it as the core asked (Send).
	Outbound func(n *Node, m consensus.Message) bool
	// Inbound lets a node misbehave on receipt: it sees every message
	// delivered to a node and returns true if the core must not see it (a
	// Byzantine node that only overhears).
	Inbound func(n *Node, from consensus.NodeID, payload []byte) bool
	// EachTick runs at every tick after the deliveries, before the nodes
	// tick (workloads, Byzantine actions).
	EachTick func(s *Sim)
	// MayHalt reports whether a node may halt (a core error, a commit
	// refused) without failing the run (determinism tests); the node then
	// stays down.
	MayHalt func(n *Node, err error) bool
	// OnCrash runs just before a node goes down (to keep its counters).
	OnCrash func(n *Node)
	// RestartAfter, when not 0, restarts a node the harness crashed
	// (CrashRate) after 1..RestartAfter ticks.
	RestartAfter uint64
	// MaxDown bounds the nodes down at once through CrashRate; 0: no
	// bound.
	MaxDown int
}

// Node is one simulated node.
type Node struct {
	Index int
	// ID is the consensus id; Addr the network address (unique, twins
	// included).
	ID, Addr consensus.NodeID
	// Chain is its chain: the committed part survives crashes.
	Chain *Chain
	// FS is its disk: what was not synced is lost in a crash.
	FS *durable.MemFS
	// Core is nil while the node is down (crashed or halted).
	Core consensus.Core
	// Halted is why it halted, if it did (see Config.MayHalt).
	Halted error
	// Down keeps it down through Heal (a node that died for good).
	Down bool

	restartAt uint64 // tick of a scheduled restart (RestartAfter), 0: none

	sim   *Sim
	disk  *powerFS
	later []deferred // answers due at a later tick (SlowHost, WorkTicks)
	// Pacer caps the blocks it builds (Config.Pace).
	Pacer    consensus.Pacer
	busyTill uint64 // the worker is busy until this tick (WorkTicks)
	answers  []func(consensus.Core)
	notify   []*types.Transaction
}

type deferred struct {
	due uint64
	fn  func(consensus.Core)
}

type txState struct {
	committed bool
}

// Up reports whether the node runs.
func (n *Node) Up() bool { return n.Core != nil }

func (n *Node) String() string {
	return fmt.Sprintf("node %d (%s)", n.Index, n.ID.Hex()[:8])
}

// ErrPowerCut is the error of every write to a node's disk once its power
// is cut, until the node restarts.
var ErrPowerCut = errors.New("simnet: power cut")

// errCrashed stops the Ready of a node that lost power during it.
var errCrashed = errors.New("simnet: node lost power")

// NewSim makes the nodes and starts their cores.
func NewSim(cfg Config) (*Sim, error) {
	if cfg.TickMs == 0 {
		cfg.TickMs = 10
	}
	if cfg.MaxTxs == 0 {
		cfg.MaxTxs = 8
	}
	if cfg.Open == nil || len(cfg.IDs) == 0 {
		return nil, errors.New("simnet: Config needs IDs and Open")
	}
	s := &Sim{
		cfg:    cfg,
		Check:  NewChecker(),
		byAddr: make(map[consensus.NodeID]*Node),
		byID:   make(map[consensus.NodeID][]*Node),
		txs:    make(map[common.Hash]*txState),
	}
	var addrs []consensus.NodeID
	for i, id := range cfg.IDs {
		addr := common.BytesToAddress([]byte{0xee, 0xee, byte(i >> 8), byte(i)})
		mem := durable.NewMemFS()
		n := &Node{Index: i, ID: id, Addr: addr, Chain: NewChain(id, addr[16:], cfg.MaxTxs), FS: mem, sim: s,
			disk: &powerFS{MemFS: mem, left: -1}}
		s.Nodes = append(s.Nodes, n)
		s.byAddr[addr] = n
		s.byID[id] = append(s.byID[id], n)
		addrs = append(addrs, addr)
	}
	s.Net = New(cfg.Seed, addrs, cfg.Faults)
	s.Rand = s.Net.Rand()
	for _, n := range s.Nodes {
		if err := s.start(n); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Disk is a node's FS as the core's stores must use it (it fails every
// write once a power cut is armed and due).
func (n *Node) Disk() durable.FS { return n.disk }

// ByID returns the nodes of a consensus id (two for twins).
func (s *Sim) ByID(id consensus.NodeID) []*Node { return s.byID[id] }

// Logf records an event; the last ones are printed with a failure.
func (s *Sim) Logf(format string, args ...any) {
	s.log = append(s.log, fmt.Sprintf("t=%d ", s.Ticks)+fmt.Sprintf(format, args...))
	if len(s.log) > 60 {
		s.log = s.log[len(s.log)-60:]
	}
}

// Events returns the last events recorded.
func (s *Sim) Events() []string { return append([]string(nil), s.log...) }

// Fail records a violation found by the test.
func (s *Sim) Fail(err error) {
	if len(s.errs) < 8 {
		s.errs = append(s.errs, err)
	}
}

// Err is the first violation: the test's, a node's, or the checker's.
func (s *Sim) Err() error {
	if len(s.errs) > 0 {
		return s.errs[0]
	}
	return s.Check.Err()
}

// Now is the virtual wall clock: block timestamps.
func (s *Sim) Now() time.Time {
	return time.Unix(GenesisTime, 0).Add(time.Duration(s.Ticks*s.cfg.TickMs) * time.Millisecond)
}

// start makes a node's core from its disk and chain.
func (s *Sim) start(n *Node) error {
	var saved []byte
	if s.cfg.StateFile != "" {
		b, err := (&durable.StateFile{FS: n.FS, Path: s.cfg.StateFile}).Load()
		if err != nil {
			return fmt.Errorf("%s: %w", n, err)
		}
		saved = b
	}
	core, err := s.cfg.Open(n, saved)
	if err != nil {
		return fmt.Errorf("%s: start: %w", n, err)
	}
	n.Core = core
	s.drain(n)
	return nil
}

// Crash cuts a node's power: its messages in flight to it are lost, its
// disk keeps only what was synced (torn and lost writes), its chain its
// committed blocks.
func (s *Sim) Crash(n *Node) {
	if n.Core == nil {
		return
	}
	s.Logf("crash %s", n)
	if s.cfg.OnCrash != nil {
		s.cfg.OnCrash(n)
	}
	s.Net.Crash(n.Addr)
	n.Core = nil
	n.later, n.answers, n.notify, n.busyTill = nil, nil, nil, 0
	n.Pacer = consensus.Pacer{}
	n.FS.Crash(s.Rand)
	n.disk.left = -1
	n.Chain.Crash()
}

// crashed is a crash the harness chose (CrashRate): the node restarts
// later if RestartAfter says so.
func (s *Sim) crashed(n *Node) {
	s.Crash(n)
	if s.cfg.RestartAfter > 0 {
		n.restartAt = s.Ticks + 1 + uint64(s.Rand.Int63n(int64(s.cfg.RestartAfter)))
	}
}

// mayCrash reports whether the harness may crash one more node now.
func (s *Sim) mayCrash() bool {
	if s.cfg.CrashRate == 0 {
		return false
	}
	if s.cfg.MaxDown == 0 {
		return true
	}
	down := 0
	for _, n := range s.Nodes {
		if n.Core == nil {
			down++
		}
	}
	return down < s.cfg.MaxDown
}

// SetEachTick changes Config.EachTick.
func (s *Sim) SetEachTick(fn func(*Sim)) { s.cfg.EachTick = fn }

// SetCrashRate changes Config.CrashRate from now on.
func (s *Sim) SetCrashRate(p float64) { s.cfg.CrashRate = p }

// Restart brings a crashed node back from its disk and chain.
func (s *Sim) Restart(n *Node) error {
	n.restartAt = 0
	if n.Core != nil || n.Halted != nil {
		return nil
	}
	s.Logf("restart %s", n)
	s.Net.Restart(n.Addr)
	return s.start(n)
}

// halt takes a node down for good after an error that is not a crash.
func (s *Sim) halt(n *Node, err error) {
	if n.Core == nil {
		return
	}
	if errors.Is(err, ErrPowerCut) || errors.Is(err, errCrashed) {
		s.crashed(n)
		return
	}
	if s.cfg.MayHalt == nil || !s.cfg.MayHalt(n, err) {
		s.Fail(fmt.Errorf("%s halted: %w", n, err))
	}
	s.Logf("halt %s: %v", n, err)
	n.Halted = err
	s.Net.Crash(n.Addr)
	n.Core = nil
	n.later, n.answers, n.notify, n.busyTill = nil, nil, nil, 0
	n.Pacer = consensus.Pacer{}
}

// Input runs fn on a node's core as an input (a test's own, such as a
// Tick), then carries out its work.
func (s *Sim) Input(n *Node, fn func(consensus.Core)) { s.input(n, fn, true) }

// input runs one input on a node's core, perhaps with its disk's power
// cut during it, and carries out its work (unless LazyDrain).
func (s *Sim) input(n *Node, fn func(consensus.Core), drain bool) {
	if n.Core == nil {
		return
	}
	s.arm(n)
	fn(n.Core)
	if n.Core == nil {
		return
	}
	if err := n.Core.Err(); err != nil {
		s.halt(n, err)
		return
	}
	n.disk.left = -1
	if drain {
		s.drain(n)
	}
}

// arm cuts a node's power at a random write during what follows, at
// CrashRate.
func (s *Sim) arm(n *Node) {
	if s.cfg.CrashRate > 0 && s.Rand.Float64() < s.cfg.CrashRate/2 && s.mayCrash() {
		n.disk.left = s.Rand.Intn(6)
	}
}

// drain carries out a node's Ready work until it has none, as the Driver
// does, with power losses at CrashRate; then the notifications and the
// answers it made (each an input of its own, after the Ready's Advance).
func (s *Sim) drain(n *Node) {
	for i := 0; n.Core != nil; i++ {
		if i > 100_000 {
			s.Fail(fmt.Errorf("%s: Ready never empties", n))
			return
		}
		switch {
		case n.Core.HasReady():
			s.apply(n)
		case len(n.notify) > 0:
			txs := n.notify
			n.notify = nil
			n.Core.Notify(txs)
		case len(n.answers) > 0:
			fn := n.answers[0]
			n.answers = n.answers[1:]
			fn(n.Core)
		default:
			return
		}
		if n.Core != nil {
			if err := n.Core.Err(); err != nil {
				s.halt(n, err)
			}
		}
	}
}

// apply carries out one Ready of a node.
func (s *Sim) apply(n *Node) {
	rd := n.Core.Ready()
	fx := &simEffects{s: s, n: n, commits: len(rd.Commits), crashAt: -1}
	if s.cfg.CrashRate > 0 && s.Rand.Float64() < s.cfg.CrashRate && s.mayCrash() {
		fx.crashAt = s.Rand.Intn(len(rd.Commits) + 3)
	}
	s.arm(n)
	err := consensus.Apply(rd, fx)
	n.disk.left = -1
	// Point commits+2: everything carried out, power lost before Advance
	// (what the messages acknowledged must be durable).
	if fx.at(fx.commits + 2) {
		s.crashed(n)
		return
	}
	if err != nil {
		s.halt(n, err)
		return
	}
	n.Core.Advance()
	for _, req := range fx.serve {
		n.Core.Served(req, consensus.ServeFrom(n.Chain, req))
	}
}

// simEffects carries out a Ready for the simulator (consensus.Apply's
// Effects), losing power at crash point crashAt: k < commits before
// commit k, commits before the state, commits+1 before the messages and
// requests, commits+2 after them; -1 never.
type simEffects struct {
	s       *Sim
	n       *Node
	commits int
	done    int // commits done
	crashAt int
	crashed bool
	serve   []consensus.ServeRequest
}

// at reports whether the node lost power by crash point p.
func (fx *simEffects) at(p int) bool {
	if !fx.crashed && fx.crashAt >= 0 && fx.crashAt <= p {
		fx.crashed = true
		fx.s.Logf("power loss of %s at Ready step %d", fx.n, fx.crashAt)
	}
	return fx.crashed
}

func (fx *simEffects) Commit(sb consensus.SealedBlock) error {
	if fx.at(fx.done) {
		return errCrashed
	}
	fx.done++
	s, n := fx.s, fx.n
	if err := n.Chain.CommitBlock(sb.Block, sb.Seal); err != nil {
		return err
	}
	b := sb.Block
	if err := s.Check.Finalized(n.Addr, b.NumberU64(), b.Hash()); err != nil {
		s.Fail(err)
	}
	hashes := make([]common.Hash, 0, len(b.Transactions()))
	for _, tx := range b.Transactions() {
		h := tx.Hash()
		hashes = append(hashes, h)
		if st := s.txs[h]; st != nil && !st.committed {
			st.committed = true
			s.Check.Acknowledge(h) // the client gets its receipt
		}
	}
	s.Check.Included(n.Addr, b.NumberU64(), hashes)
	if s.cfg.OnCommit != nil {
		if err := s.cfg.OnCommit(n, b, sb.Seal); err != nil {
			s.Fail(fmt.Errorf("%s: block %d: %w", n, b.NumberU64(), err))
		}
	}
	return nil
}

func (fx *simEffects) SaveState(state []byte) error {
	if fx.at(fx.commits) {
		return errCrashed
	}
	if fx.s.cfg.StateFile == "" {
		return errors.New("the core produced state but the simulation keeps no state file")
	}
	return (&durable.StateFile{FS: fx.n.disk, Path: fx.s.cfg.StateFile}).Save(state)
}

func (fx *simEffects) Send(m consensus.Message) {
	if fx.at(fx.commits + 1) {
		return
	}
	s, n := fx.s, fx.n
	if s.cfg.Outbound != nil && s.cfg.Outbound(n, m) {
		return
	}
	s.Send(n, m)
}

func (fx *simEffects) Build(req consensus.BuildRequest) {
	if fx.at(fx.commits + 1) {
		return
	}
	s, n := fx.s, fx.n
	if s.cfg.Pace && req.Budget > 0 {
		req.MaxTxs = n.Pacer.Cap(req.Budget)
	}
	b, err := consensus.BuildFor(n.Chain, n.Chain, n.ID, req, s.Now())
	fn := func(c consensus.Core) { c.Built(req, b, err) }
	if s.cfg.WorkTicks != nil && b != nil {
		s.work(n, consensus.WorkBuild, len(b.Transactions()), fn)
		return
	}
	s.answer(n, fn)
}

// work answers after the virtual time WorkTicks gives, once the node's
// worker is done with what it took before, and times it for the Pacer.
func (s *Sim) work(n *Node, kind consensus.WorkKind, txs int, fn func(consensus.Core)) {
	t := s.cfg.WorkTicks(n, kind, txs)
	n.Pacer.Observe(kind, txs, time.Duration(t*s.cfg.TickMs)*time.Millisecond)
	n.busyTill = max(n.busyTill, s.Ticks) + t
	if n.busyTill == s.Ticks {
		n.answers = append(n.answers, fn)
		return
	}
	n.later = append(n.later, deferred{due: n.busyTill, fn: fn})
}

func (fx *simEffects) Verify(b *types.Block) {
	if fx.at(fx.commits + 1) {
		return
	}
	s, n := fx.s, fx.n
	err := n.Chain.VerifyBlock(b)
	hash := b.Hash()
	fn := func(c consensus.Core) { c.Verified(hash, err) }
	if s.cfg.WorkTicks != nil {
		s.work(n, consensus.WorkVerify, len(b.Transactions()), fn)
		return
	}
	s.answer(n, fn)
}

func (fx *simEffects) Serve(req consensus.ServeRequest) {
	if !fx.at(fx.commits + 1) {
		fx.serve = append(fx.serve, req)
	}
}

func (fx *simEffects) AddTxs(raw [][]byte) {
	if fx.at(fx.commits + 1) {
		return
	}
	for _, r := range raw {
		tx := new(types.Transaction)
		if tx.UnmarshalBinary(r) == nil && fx.n.Chain.Add(tx) {
			fx.n.notify = append(fx.n.notify, tx)
		}
	}
}

func (fx *simEffects) WantTxs(max int) {
	if !fx.at(fx.commits + 1) {
		fx.n.notify = append(fx.n.notify, fx.n.Chain.PendingTxs(max)...)
	}
}

// answer hands a build or verification result to the core after the
// Ready: at once, or a few ticks later with SlowHost (a busy worker).
func (s *Sim) answer(n *Node, fn func(consensus.Core)) {
	if s.cfg.SlowHost && s.Rand.Intn(3) == 0 {
		n.later = append(n.later, deferred{due: s.Ticks + uint64(1+s.Rand.Intn(8)), fn: fn})
		return
	}
	n.answers = append(n.answers, fn)
}

// Send delivers what a node's core sends, honestly: a broadcast to every
// other node (a twin's sibling too), a message to every node of the id.
func (s *Sim) Send(from *Node, m consensus.Message) {
	if m.Broadcast {
		for _, to := range s.Nodes {
			if to != from {
				s.Net.Send(from.Addr, to.Addr, m.Payload)
			}
		}
		return
	}
	for _, to := range s.byID[m.To] {
		if to != from {
			s.Net.Send(from.Addr, to.Addr, m.Payload)
		}
	}
}

// Deliver hands a message to a node's core as if from a peer with
// consensus id from (an outsider's forged message, say).
func (s *Sim) Deliver(to *Node, from consensus.NodeID, payload []byte) {
	s.input(to, func(c consensus.Core) { _ = c.Step(from, payload) }, !s.cfg.LazyDrain)
}

// Step runs one tick: the deliveries due, EachTick, then every running
// node: its delayed answers due, a Tick, its Ready work.
func (s *Sim) Step() {
	s.Ticks++
	t := s.Ticks * s.cfg.TickMs
	for {
		d, ok := s.Net.NextUntil(t)
		if !ok {
			break
		}
		to := s.byAddr[d.To]
		from := d.From
		if src := s.byAddr[d.From]; src != nil {
			from = src.ID
		}
		payload := d.Payload
		if s.cfg.Inbound != nil && s.cfg.Inbound(to, from, payload) {
			continue
		}
		s.input(to, func(c consensus.Core) { _ = c.Step(from, payload) }, !s.cfg.LazyDrain)
	}
	s.Net.AdvanceTo(t)
	for _, n := range s.Nodes {
		if n.restartAt != 0 && n.restartAt <= s.Ticks {
			if err := s.Restart(n); err != nil {
				s.Fail(err)
			}
		}
	}
	if s.cfg.EachTick != nil {
		s.cfg.EachTick(s)
	}
	for _, n := range s.Nodes {
		if n.Core == nil {
			continue
		}
		keep := n.later[:0]
		for _, d := range n.later {
			if d.due <= s.Ticks {
				n.answers = append(n.answers, d.fn)
			} else {
				keep = append(keep, d)
			}
		}
		n.later = keep
		s.input(n, func(c consensus.Core) { c.Tick() }, true)
	}
}

// Submit gives a client transaction to the pools of the running nodes
// listed (as if the client's node gossiped it to them), and notifies
// their cores. It is acknowledged (Checker) when a node commits it.
func (s *Sim) Submit(tx *types.Transaction, to ...*Node) {
	if s.txs[tx.Hash()] == nil {
		s.txs[tx.Hash()] = &txState{}
		s.order = append(s.order, tx)
	}
	for _, n := range to {
		if n.Core != nil && n.Chain.Add(tx) {
			n.notify = append(n.notify, tx)
			s.drain(n)
		}
	}
}

// Pending lists the submitted transactions no node committed yet.
func (s *Sim) Pending() []*types.Transaction {
	var out []*types.Transaction
	for _, tx := range s.order {
		if !s.txs[tx.Hash()].committed {
			out = append(out, tx)
		}
	}
	return out
}

// Running lists the nodes that run, in order.
func (s *Sim) Running() []*Node {
	var out []*Node
	for _, n := range s.Nodes {
		if n.Core != nil {
			out = append(out, n)
		}
	}
	return out
}

// Partition splits the network into groups of nodes (see
// Network.Partition).
func (s *Sim) Partition(groups ...[]*Node) {
	addrs := make([][]consensus.NodeID, len(groups))
	for i, g := range groups {
		for _, n := range g {
			addrs[i] = append(addrs[i], n.Addr)
		}
	}
	s.Net.Partition(addrs...)
}

// Heal ends the chaos: the network whole with faults quiet, every node
// that is not Down or halted running again, no more power cuts.
func (s *Sim) Heal(quiet Faults) error {
	s.Logf("heal")
	s.cfg.CrashRate = 0
	s.Net.Heal()
	s.Net.SetFaults(quiet)
	for _, n := range s.Nodes {
		if !n.Down {
			if err := s.Restart(n); err != nil {
				return err
			}
		}
	}
	return nil
}

// RunUntil runs ticks until done reports true or limit ticks passed; it
// reports whether done did. Every resubmit ticks (0: never) the pending
// transactions go again to every running node, as clients resubmit to
// the endpoints they know.
func (s *Sim) RunUntil(limit, resubmit uint64, done func() bool) bool {
	end := s.Ticks + limit
	for s.Ticks < end {
		s.Step()
		if s.Err() != nil {
			return false
		}
		if done() {
			return true
		}
		if resubmit > 0 && s.Ticks%resubmit == 0 {
			up := s.Running()
			for _, tx := range s.Pending() {
				s.Submit(tx, up...)
			}
		}
	}
	return false
}

// MinHeight is the lowest committed height among nodes.
func (s *Sim) MinHeight(nodes []*Node) uint64 {
	var low uint64
	for i, n := range nodes {
		if h := n.Chain.Height(); i == 0 || h < low {
			low = h
		}
	}
	return low
}

// MaxHeight is the highest committed height of any node.
func (s *Sim) MaxHeight() uint64 {
	var high uint64
	for _, n := range s.Nodes {
		high = max(high, n.Chain.Height())
	}
	return high
}

// FinalCheck is the end of a run: no violation so far, and every
// acknowledged transaction exactly once in every chain that reaches it.
func (s *Sim) FinalCheck() error {
	if err := s.Err(); err != nil {
		return err
	}
	return s.Check.CheckExactlyOnce()
}

// powerFS is a node's disk as its stores see it: the MemFS, whose every
// write fails with ErrPowerCut once left reaches 0 (left < 0: never).
type powerFS struct {
	*durable.MemFS
	left int
}

func (p *powerFS) cut() error {
	if p.left < 0 {
		return nil
	}
	if p.left == 0 {
		return ErrPowerCut
	}
	p.left--
	return nil
}

func (p *powerFS) Create(name string, perm fs.FileMode) (durable.File, error) {
	if err := p.cut(); err != nil {
		return nil, err
	}
	f, err := p.MemFS.Create(name, perm)
	if err != nil {
		return nil, err
	}
	return &powerFile{File: f, p: p}, nil
}

func (p *powerFS) OpenAppend(name string) (durable.File, error) {
	f, err := p.MemFS.OpenAppend(name)
	if err != nil {
		return nil, err
	}
	return &powerFile{File: f, p: p}, nil
}

func (p *powerFS) OpenWrite(name string) (durable.File, error) {
	f, err := p.MemFS.OpenWrite(name)
	if err != nil {
		return nil, err
	}
	return &powerFile{File: f, p: p}, nil
}

func (p *powerFS) Rename(a, b string) error {
	if err := p.cut(); err != nil {
		return err
	}
	return p.MemFS.Rename(a, b)
}

func (p *powerFS) Remove(name string) error {
	if err := p.cut(); err != nil {
		return err
	}
	return p.MemFS.Remove(name)
}

func (p *powerFS) SyncDir(dir string) error {
	if err := p.cut(); err != nil {
		return err
	}
	return p.MemFS.SyncDir(dir)
}

type powerFile struct {
	durable.File
	p *powerFS
}

func (f *powerFile) Write(b []byte) (int, error) {
	if err := f.p.cut(); err != nil {
		return 0, err
	}
	return f.File.Write(b)
}

func (f *powerFile) WriteAt(b []byte, off int64) (int, error) {
	if err := f.p.cut(); err != nil {
		return 0, err
	}
	return f.File.WriteAt(b, off)
}

func (f *powerFile) Sync() error {
	if err := f.p.cut(); err != nil {
		return err
	}
	return f.File.Sync()
}

func (f *powerFile) Truncate(size int64) error {
	if err := f.p.cut(); err != nil {
		return err
	}
	return f.File.Truncate(size)
}
