package raft

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	etcdraft "go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/charter-ledger/charter/internal/consensus"
)

// ChainReader is what NewCore reads of the committed chain to reconcile
// the raft log with it: the head, and the blocks the snapshot and the
// head's seal name. The core keeps no reference to it.
type ChainReader interface {
	Head() *types.Header
	BlockByNumber(number uint64) (*types.Block, []byte)
}

// Errors that stop the core. Once it returns one, every later call returns
// the same error and does nothing.
var (
	// ErrHalted wraps every reason the core stopped itself.
	ErrHalted = errors.New("raft engine halted")
	// ErrDeterminism means this node's execution or chain disagrees with
	// what the raft log committed: continuing could fork the chain.
	ErrDeterminism = errors.New("determinism broken")
)

// Core is the deterministic heart of the raft engine, a consensus.Core:
// etcd's RawNode, the block pipeline around it, and its Storage (the WAL).
// It reads no clock and no socket, never calls the node and starts no
// goroutine: the owner (the consensus Driver, or a simulator) feeds it
// ticks, peer messages, notifications and the answers to its requests,
// and carries out its consensus.Ready. Every input runs the core to
// quiescence: raft's Readys handled (the WAL written, synced when raft
// says so, before their messages join the Ready), one batch of committed
// entries applied (their blocks become Ready.Commits; the next batch
// waits for Advance), the next block asked for if due (Ready.Build; it is
// proposed when Built hands it back).
//
// The core tracks the chain itself: the head its commits lead to. The
// owner commits them in order before Advance, or halts; a snapshot names
// only positions whose commits were acknowledged.
//
// A Core is not goroutine-safe: one goroutine drives it.
type Core struct {
	cfg   Config
	self  consensus.NodeID
	id    uint64
	mem   *members
	store Storage
	log   *slog.Logger
	rn    *etcdraft.RawNode
	stats *counters

	// The chain as this core's commits make it: head (including commits
	// in a Ready not yet acknowledged), acked (the head as of the last
	// Advance), the hashes of recent heights, and the commits handed out
	// since the last Advance.
	head    *types.Header
	acked   *types.Header
	recent  map[uint64]common.Hash
	unacked int

	// Membership. conf[0] is the membership of the last snapshot, then one
	// point per configuration change raft delivered since (the last is
	// raft's current membership). sched holds the validator sets governance
	// decided; confIndex is the index of this leader's configuration change
	// until it is applied. role is this node's, for logging.
	conf      []confPoint
	sched     *schedule
	confIndex uint64
	role      string
	leftNoted bool // logged that this node leaves the validators

	// Raft role, as of the last Ready.
	lead     uint64
	isLeader bool
	term     uint64

	// Leader pipeline.
	termStart       uint64         // index of this leadership's first entry; propose once applied reaches it
	inflight        []*types.Block // proposed, not yet applied; each built on the previous (the first on head)
	poolDirty       bool           // Notify or a full block says transactions may wait
	ticksSinceBuild int
	building        bool   // a Build request is out
	buildID         uint64 // its ID
	buildTerm       uint64 // the term it was asked in

	ticksSinceForward int // follower: since pending transactions were last re-forwarded

	// Apply state. applied is the index the chain reflects (entries up to
	// it were applied or skipped); commitIndex is raft's commit.
	applied     uint64
	commitIndex uint64
	snapIndex   uint64
	sinceSnap   uint64 // bytes of entries applied since the last snapshot
	snapDue     bool   // a configuration change was applied: snapshot now

	catchup *catchup                           // non-nil while fetching blocks to reach a received snapshot
	serving map[consensus.NodeID]*blockRequest // block requests waiting for the owner's read (Served)

	rd        consensus.Ready
	dropped   error    // why the message of the current Step was dropped
	snapsSent []uint64 // MsgSnap targets to report after Advance
	fatal     error
}

// NewCore opens the raft state in store (bootstrapping it on first use)
// and reconciles it with the chain: the entry that committed the head
// block, named by its seal, is the applied index. chain is read here only.
func NewCore(cfg Config, self consensus.NodeID, chain ChainReader, store Storage, log *slog.Logger) (*Core, error) {
	cfg.EnsureDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	mem := newMembers(cfg.Validators, cfg.Learners)
	id, ok := mem.learn(self)
	if !ok {
		return nil, fmt.Errorf("%w: node %s has the raft id of another node", ErrInvalidConfig, self)
	}
	head := chain.Head()
	if head == nil {
		return nil, errors.New("raft: the chain has no head (genesis not loaded)")
	}
	c := &Core{
		cfg:     cfg,
		self:    self,
		id:      id,
		mem:     mem,
		store:   store,
		log:     log.With("engine", "raft", "node", self),
		stats:   new(counters),
		sched:   new(schedule),
		head:    head,
		acked:   head,
		recent:  map[uint64]common.Hash{head.Number.Uint64(): head.Hash()},
		serving: make(map[consensus.NodeID]*blockRequest),
	}
	if store.IsNew() {
		if err := c.bootstrap(head); err != nil {
			return nil, err
		}
	}
	if err := c.reconcile(chain, head); err != nil {
		return nil, err
	}
	rcfg := &etcdraft.Config{
		ID:            id,
		ElectionTick:  cfg.ElectionTicks,
		HeartbeatTick: cfg.HeartbeatTicks,
		Storage:       store,
		// Raft delivers the committed entries after the snapshot again,
		// so that it re-applies the configuration changes among them (its
		// membership starts from the snapshot's); the chain ignores what
		// it already applied (applied, from the seal).
		Applied:         c.snapIndex,
		MaxSizePerMsg:   cfg.MaxSizePerMsg,
		MaxInflightMsgs: cfg.MaxInflightMsgs,
		// Bounds what a leader without quorum accumulates.
		MaxUncommittedEntriesSize: uint64(cfg.PipelineDepth+1) * uint64(cfg.MaxMessageBytes),
		CheckQuorum:               true,
		PreVote:                   true,
		// Followers forward transactions, never raft proposals.
		DisableProposalForwarding: true,
		// A leader removed from the group steps down.
		StepDownOnRemoval: true,
		Logger:            raftLogger{c.log},
	}
	var err error
	if err = guard(func() error {
		c.rn, err = etcdraft.NewRawNode(rcfg)
		return err
	}); err != nil {
		return nil, fmt.Errorf("raft: start: %w", err)
	}
	st := c.rn.BasicStatus()
	c.term, c.lead = st.HardState.GetTerm(), st.Lead
	return c, nil
}

// bootstrap writes the initial raft state of a new node: a snapshot at
// index 1, term 1 holding the genesis membership and the genesis
// position, so that every node starts from the same log. A node that is
// not a genesis member starts so too, as a non-member: raft does not let
// it campaign, and the leader replicates to it once a configuration
// change adds it.
func (c *Core) bootstrap(head *types.Header) error {
	if head.Number.Sign() != 0 {
		return fmt.Errorf("raft: no raft state in the data folder but the chain is at height %d: restore the raft folder or start from an empty chain", head.Number)
	}
	snap := &raftpb.Snapshot{
		Data:     SnapshotData{Height: 0, Hash: head.Hash()}.encode(),
		Metadata: &raftpb.SnapshotMetadata{Index: new(uint64(1)), Term: new(uint64(1)), ConfState: c.mem.genesisConf()},
	}
	hs := &raftpb.HardState{Term: new(uint64(1)), Commit: new(uint64(1))}
	if err := c.store.Save(hs, nil, snap, true); err != nil {
		return fmt.Errorf("raft: bootstrap: %w", err)
	}
	return nil
}

// reconcile derives the applied index from the snapshot and the head's
// seal, checks them against each other, and raises raft's commit index
// to it if the last commit-only hard state was lost (it is written
// without sync).
func (c *Core) reconcile(chain ChainReader, head *types.Header) error {
	snap, err := c.store.Snapshot()
	if err != nil {
		return fmt.Errorf("raft: read snapshot: %w", err)
	}
	meta := snap.GetMetadata()
	sd, listed, err := decodeSnapshot(snap.GetData())
	if err != nil {
		return err
	}
	if len(meta.GetConfState().GetVoters()) == 0 {
		return fmt.Errorf("%w: the raft snapshot at index %d has no voters", ErrCorrupt, meta.GetIndex())
	}
	c.resetConf(meta.GetIndex(), meta.GetConfState(), listed)
	c.snapIndex = meta.GetIndex()
	c.applied = c.snapIndex
	last, _ := c.store.LastIndex()
	if head.Number.Uint64() < sd.Height {
		c.startCatchup(sd, c.snapIndex)
	} else {
		b, _ := chain.BlockByNumber(sd.Height)
		if b == nil || b.Hash() != sd.Hash {
			return fmt.Errorf("%w: %w: raft snapshot at index %d is block %d %s, the chain has another block there",
				ErrHalted, ErrDeterminism, c.snapIndex, sd.Height, sd.Hash)
		}
		c.recent[sd.Height] = sd.Hash
		_, seal := chain.BlockByNumber(head.Number.Uint64())
		if idx, term, ok := decodeSeal(seal); ok && idx > c.applied {
			if idx > last {
				return fmt.Errorf("raft: head block %d was committed by entry %d but the raft log ends at %d: the raft folder is older than the chain", head.Number, idx, last)
			}
			if t, err := c.store.Term(idx); err != nil || t != term {
				return fmt.Errorf("%w: %w: head block %d was committed by entry %d of term %d, the raft log has term %d there (%v)",
					ErrHalted, ErrDeterminism, head.Number, idx, term, t, err)
			}
			c.applied = idx
		}
	}
	hs, _, err := c.store.InitialState()
	if err != nil {
		return fmt.Errorf("raft: read hard state: %w", err)
	}
	c.commitIndex = hs.GetCommit()
	if c.commitIndex < c.applied {
		fixed := &raftpb.HardState{Term: new(hs.GetTerm()), Vote: new(hs.GetVote()), Commit: new(c.applied)}
		if err := c.store.Save(fixed, nil, nil, true); err != nil {
			return fmt.Errorf("raft: raise commit index: %w", err)
		}
		c.commitIndex = c.applied
	}
	// A configuration change the chain applied after the snapshot (the
	// node stopped before it took the snapshot the change calls for).
	if c.applied > c.snapIndex {
		ents, err := c.store.Entries(c.snapIndex+1, c.applied+1, math.MaxUint64)
		if err != nil {
			return fmt.Errorf("raft: read applied entries: %w", err)
		}
		c.snapDue = slices.ContainsFunc(ents, func(e *raftpb.Entry) bool { return e.GetType() != raftpb.EntryNormal })
	}
	return nil
}

// Self is this node's id.
func (c *Core) Self() consensus.NodeID { return c.self }

// Err is the error that halted the core, nil while it runs.
func (c *Core) Err() error { return c.fatal }

// Counters returns the counters so far. Safe from any goroutine.
func (c *Core) Counters() Stats { return c.stats.snapshot() }

// Stats implements consensus.Core.
func (c *Core) Stats() consensus.Stats {
	s := c.Counters()
	out := consensus.Stats{Height: c.head.Number.Uint64(), LeaderChanges: s.LeaderChanges, Dropped: s.Dropped}
	for t := MsgType(1); int(t) < numMsgTypes; t++ {
		out.Messages = append(out.Messages, consensus.MessageStats{Type: t.String(),
			MsgsIn: s.Received[t].Msgs, MsgsOut: s.Sent[t].Msgs, BytesIn: s.Received[t].Bytes, BytesOut: s.Sent[t].Bytes})
	}
	return out
}

// Head implements consensus.Core: raft blocks are final when committed.
func (c *Core) Head(uint64) consensus.HeadRef { return consensus.HeadRef{Latest: true} }

// Verified implements consensus.Core; raft asks for no verification (a
// committed entry's block is executed by Host.CommitBlock).
func (c *Core) Verified(common.Hash, error) {}

// Leader returns the node this core believes leads, and false if none.
func (c *Core) Leader() (consensus.NodeID, bool) { return c.mem.node(c.lead) }

// IsLeader reports whether this core leads.
func (c *Core) IsLeader() bool { return c.isLeader }

// Applied is the raft index the chain reflects.
func (c *Core) Applied() uint64 { return c.applied }

// CatchingUp reports whether the core is fetching blocks to reach a
// snapshot.
func (c *Core) CatchingUp() bool { return c.catchup != nil }

// HasReady implements consensus.Core.
func (c *Core) HasReady() bool { return c.fatal == nil && !c.rd.Empty() }

// Ready implements consensus.Core: the commits of the applied entries,
// the messages raft and the pipeline produced (the WAL already holds what
// they acknowledge), a build request, block reads to serve a peer,
// forwarded transactions for the pool, and a request for the pool's
// pending transactions (to forward them to a new leader).
func (c *Core) Ready() consensus.Ready {
	rd := c.rd
	c.rd = consensus.Ready{}
	return rd
}

// Advance implements consensus.Core: the commits handed out are durable.
// Then a snapshot may name them, and the next batch of committed entries
// is applied.
func (c *Core) Advance() {
	if c.fatal != nil {
		return
	}
	c.unacked = 0
	c.acked = c.head
	c.run(func() error { return c.maybeSnapshot() })
}

// Tick advances raft's logical clock by one tick.
func (c *Core) Tick() {
	if c.fatal != nil {
		return
	}
	c.run(func() error {
		c.rn.Tick()
		c.ticksSinceBuild++
		c.tickCatchup()
		if !c.isLeader {
			c.ticksSinceForward++
			if c.ticksSinceForward >= c.cfg.forwardTicks() {
				c.reforward()
			}
		}
		return nil
	})
}

// Notify tells the core that transactions wait in the local pool. The
// leader builds a block; any other member forwards the transactions to
// the leader it knows (or drops them if it knows none: the pool keeps
// them).
func (c *Core) Notify(txs []*types.Transaction) {
	if c.fatal != nil {
		return
	}
	c.run(func() error {
		if c.isLeader {
			c.poolDirty = true
			return nil
		}
		c.forward(txs)
		return nil
	})
}

// Step takes one engine message from a peer. Bad, oversized, misaddressed
// or unsolicited messages are dropped and counted, and the reason
// returned; a halt is reported by Err.
func (c *Core) Step(from consensus.NodeID, payload []byte) error {
	if c.fatal != nil {
		return c.fatal
	}
	c.dropped = nil
	c.run(func() error {
		t, body, err := openEnvelope(payload, c.cfg.MaxMessageBytes)
		if err != nil {
			c.drop(from, err)
			return nil
		}
		c.stats.recv(t, len(payload))
		if from == c.self {
			c.drop(from, errors.New("message from this node"))
			return nil
		}
		switch t {
		case MsgRaft:
			c.stepRaft(from, body)
		case MsgTxs:
			c.onTxs(from, body)
		case MsgBlockRequest:
			c.onBlockRequest(from, body)
		case MsgBlockResponse:
			return c.onBlockResponse(from, body)
		}
		return nil
	})
	return c.dropped
}

func (c *Core) drop(from consensus.NodeID, why error) {
	c.stats.dropped.Add(1)
	c.dropped = why
	c.log.Debug("Dropped raft engine message", "from", from, "err", why)
}

func (c *Core) stepRaft(from consensus.NodeID, body []byte) {
	m, err := decodeRaftMsg(body)
	if err != nil {
		c.drop(from, err)
		return
	}
	if _, known := raftpb.MessageType_name[int32(m.GetType())]; !known {
		c.drop(from, fmt.Errorf("unknown raft message type %d", m.GetType()))
		return
	}
	switch {
	case m.GetFrom() != c.mem.raftID(from):
		c.drop(from, fmt.Errorf("raft message from id %d sent by id %d", m.GetFrom(), c.mem.raftID(from)))
		return
	case m.GetTo() != c.id:
		c.drop(from, fmt.Errorf("raft message to id %d received by id %d", m.GetTo(), c.id))
		return
	case etcdraft.IsLocalMsg(m.GetType()) || m.GetType() == raftpb.MsgProp:
		c.drop(from, fmt.Errorf("raft message type %v is not accepted from peers", m.GetType()))
		return
	case m.GetTerm() == 0 && m.GetType() != raftpb.MsgReadIndex && m.GetType() != raftpb.MsgReadIndexResp:
		// Raft takes a message without a term for a local one (and panics
		// answering a vote request without one).
		c.drop(from, fmt.Errorf("raft message type %v without a term", m.GetType()))
		return
	}
	if err := c.checkRaftMsg(m); err != nil {
		c.drop(from, err)
		return
	}
	// The transport authenticated the sender and its raft id is derived
	// from its node id: remember the pair to answer it (a member added
	// since this node's last membership, or a leader a new node does not
	// know yet).
	c.learnNode(from)
	c.stats.raftRecv(m.GetType())
	if err := c.rn.Step(m); err != nil {
		c.log.Debug("Raft ignored a message", "from", from, "type", m.GetType(), "err", err)
	}
}

// checkRaftMsg rejects raft messages that no correct peer sends and on
// which etcd raft would panic (it trusts its transport): a commit index or
// an acknowledged index beyond this node's log, entries that are not a
// contiguous run after the message's index, a snapshot that is not a
// chain position or whose membership does not include this node (raft
// would ignore it). Configuration changes in entries are checked when
// applied. Called between settles, when raft's log is all in storage.
func (c *Core) checkRaftMsg(m *raftpb.Message) error {
	last, err := c.store.LastIndex()
	if err != nil {
		return err
	}
	switch m.GetType() {
	case raftpb.MsgHeartbeat:
		if m.GetCommit() > last {
			return fmt.Errorf("heartbeat commit %d beyond the log end %d", m.GetCommit(), last)
		}
	case raftpb.MsgAppResp:
		if !m.GetReject() && m.GetIndex() > last {
			return fmt.Errorf("append acknowledged up to %d beyond the log end %d", m.GetIndex(), last)
		}
	case raftpb.MsgApp:
		prevTerm := m.GetLogTerm()
		for i, e := range m.GetEntries() {
			switch {
			case e.GetIndex() != m.GetIndex()+1+uint64(i):
				return fmt.Errorf("append entry %d at position %d after index %d", e.GetIndex(), i, m.GetIndex())
			case e.GetTerm() < prevTerm || e.GetTerm() > m.GetTerm():
				return fmt.Errorf("append entry %d of term %d out of order", e.GetIndex(), e.GetTerm())
			case e.GetType() != raftpb.EntryNormal && e.GetType() != raftpb.EntryConfChangeV2:
				return fmt.Errorf("append entry %d has type %v", e.GetIndex(), e.GetType())
			}
			prevTerm = e.GetTerm()
		}
	case raftpb.MsgSnap:
		s := m.GetSnapshot()
		if s.GetMetadata().GetIndex() == 0 || s.GetMetadata().GetTerm() > m.GetTerm() {
			return fmt.Errorf("snapshot at index %d term %d", s.GetMetadata().GetIndex(), s.GetMetadata().GetTerm())
		}
		cs := s.GetMetadata().GetConfState()
		if err := checkConfState(cs); err != nil {
			return fmt.Errorf("snapshot: %w", err)
		}
		if !isMember(cs, c.id) {
			return fmt.Errorf("snapshot of a membership without this node")
		}
		sd, listed, err := decodeSnapshot(s.GetData())
		if err != nil {
			return err
		}
		for _, n := range listed {
			c.learnNode(n)
		}
		// Never install a position that contradicts the committed chain.
		if c.contradicts(sd) {
			c.log.Error("Refusing a raft snapshot that contradicts the chain", "height", sd.Height, "hash", sd.Hash)
			return fmt.Errorf("snapshot names block %d %s, the chain has another", sd.Height, sd.Hash)
		}
	}
	return nil
}

// run executes an input under a panic guard (etcd raft panics on a broken
// invariant, and so does MemoryStorage) and then runs the core to
// quiescence.
func (c *Core) run(input func() error) error {
	err := guard(func() error {
		if err := input(); err != nil {
			return err
		}
		return c.settle()
	})
	if err != nil {
		if !errors.Is(err, ErrHalted) {
			err = fmt.Errorf("%w: %w", ErrHalted, err)
		}
		c.fatal = err
		c.log.Error("Raft engine halted", "err", err)
	}
	return c.fatal
}

func guard(f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("raft: panic: %v", r)
		}
	}()
	return f()
}

// maxSettleRounds bounds the loop of settle. Each round handles Readys,
// applies at most one batch of entries (once per call) or asks for a
// block; the pipeline depth bounds proposals, so the loop ends well before
// this. Reaching it is a programmer error.
const maxSettleRounds = 1 << 16

// applyBatch is the most committed entries one Ready carries. More wait
// for its Advance, so that a node replaying many blocks still answers
// heartbeats between batches.
const applyBatch = 64

// recentHashes bounds the heights whose hashes the core remembers to
// check snapshots against the chain.
const recentHashes = 4096

// commit hands a block to the owner to commit and moves the core's head.
func (c *Core) commit(b *types.Block, seal []byte) {
	c.rd.Commits = append(c.rd.Commits, consensus.SealedBlock{Block: b, Seal: seal})
	c.unacked++
	c.head = b.Header()
	n := b.NumberU64()
	c.recent[n] = b.Hash()
	if n >= recentHashes {
		delete(c.recent, n-recentHashes)
	}
}

// contradicts reports whether a snapshot names, at a height this node's
// chain has reached, a block other than the chain's (checked for the
// heights whose hashes the core remembers).
func (c *Core) contradicts(sd SnapshotData) bool {
	if sd.Height > c.head.Number.Uint64() {
		return false
	}
	h, known := c.recent[sd.Height]
	return known && h != sd.Hash
}

// settle handles Readys, applies one batch of committed entries and
// proposes until nothing is left to do but applying further batches.
func (c *Core) settle() error {
	appliedBatch := false
	for round := 0; ; round++ {
		if round == maxSettleRounds {
			return errors.New("raft: settle loop did not converge")
		}
		progressed := false
		for c.rn.HasReady() {
			if err := c.handleReady(); err != nil {
				return err
			}
			progressed = true
		}
		if !appliedBatch {
			applied, err := c.applyCommitted()
			if err != nil {
				return err
			}
			appliedBatch, progressed = applied, progressed || applied
		}
		changed, err := c.maybeProposeConf()
		if err != nil {
			return err
		}
		proposed, err := c.maybePropose()
		if err != nil {
			return err
		}
		if !progressed && !proposed && !changed {
			return nil
		}
	}
}

// handleReady follows the RawNode contract: persist hard state, entries
// and snapshot (synced when raft says so, and always with a snapshot),
// then queue the messages, then Advance.
func (c *Core) handleReady() error {
	rd := c.rn.Ready()
	snap := rd.Snapshot
	if etcdraft.IsEmptySnap(snap) {
		snap = nil
	}
	// A configuration change is applied below, now: the commit index that
	// covers it must survive a crash, so that raft applies it again at
	// restart (a commit-only hard state is otherwise not synced).
	confCommitted := slices.ContainsFunc(rd.CommittedEntries, func(e *raftpb.Entry) bool {
		return e.GetType() == raftpb.EntryConfChange || e.GetType() == raftpb.EntryConfChangeV2
	})
	hs := rd.HardState
	if confCommitted && etcdraft.IsEmptyHardState(hs) {
		// The commit index came with an earlier Ready, maybe not synced:
		// write it again, synced.
		if cur, _, err := c.store.InitialState(); err == nil {
			hs = cur
		}
	}
	if err := c.store.Save(hs, rd.Entries, snap, rd.MustSync || snap != nil || confCommitted); err != nil {
		return err
	}
	if !etcdraft.IsEmptyHardState(rd.HardState) {
		c.commitIndex = max(c.commitIndex, rd.HardState.GetCommit())
	}
	if err := c.updateRole(); err != nil {
		return err
	}
	if snap != nil {
		if err := c.onSnapshot(snap); err != nil {
			return err
		}
	}
	for _, m := range rd.Messages {
		c.sendRaft(m)
	}
	if confCommitted {
		for _, e := range rd.CommittedEntries {
			if e.GetType() == raftpb.EntryConfChange || e.GetType() == raftpb.EntryConfChangeV2 {
				c.applyConfEntry(e)
			}
		}
	}
	c.rn.Advance(rd)
	for _, id := range c.snapsSent {
		// Our snapshots are a few bytes and go in one message: it is
		// "finished" once handed to the transport. If it is lost, the
		// follower stays behind and raft probes and sends it again.
		c.rn.ReportSnapshot(id, etcdraft.SnapshotFinish)
	}
	c.snapsSent = c.snapsSent[:0]
	return nil
}

// updateRole notes leadership changes. A new leadership (this node, a new
// term) starts with an empty pipeline and waits until the entries of
// earlier terms are applied, so that it builds on the true head.
func (c *Core) updateRole() error {
	st := c.rn.BasicStatus()
	term := st.HardState.GetTerm()
	isLeader := st.RaftState == etcdraft.StateLeader
	if st.Lead != c.lead {
		c.stats.leaderChanges.Add(1)
		if n, ok := c.mem.node(st.Lead); ok {
			c.log.Info("Raft leader changed", "leader", n, "term", term)
		} else {
			c.log.Info("Raft leader lost", "term", term)
		}
	}
	newLeadership := isLeader && (!c.isLeader || term != c.term)
	if (c.isLeader && !isLeader) || newLeadership {
		c.inflight = nil
		c.confIndex = 0
	}
	if newLeadership {
		last, err := c.store.LastIndex()
		if err != nil {
			return err
		}
		c.termStart = last
		c.poolDirty = true
		c.ticksSinceBuild = 0
	}
	leaderChanged := st.Lead != c.lead
	c.lead, c.isLeader, c.term = st.Lead, isLeader, term
	if leaderChanged && !isLeader {
		c.reforward()
	}
	return nil
}

// reforward asks for the pool's pending transactions (Ready.WantTxs), to
// forward them to the leader again when they come back through Notify.
func (c *Core) reforward() {
	c.ticksSinceForward = 0
	if c.lead == 0 || c.lead == c.id {
		return
	}
	c.rd.WantTxs = c.cfg.MaxBlockTxs
}

func (c *Core) sendRaft(m *raftpb.Message) {
	to, ok := c.mem.node(m.GetTo())
	if !ok {
		c.log.Warn("Raft addressed an unknown id", "id", m.GetTo())
		return
	}
	payload, err := encodeRaftMsg(m)
	if err != nil {
		c.log.Error("Cannot encode a raft message", "err", err)
		return
	}
	if len(payload) > c.cfg.MaxMessageBytes {
		c.log.Error("Raft message over the size limit not sent", "type", m.GetType(), "bytes", len(payload))
		if m.GetType() == raftpb.MsgApp {
			c.rn.ReportUnreachable(m.GetTo())
		}
		return
	}
	if t := m.GetType(); (t == raftpb.MsgPreVote || t == raftpb.MsgVote) && c.leaving() {
		if !c.leftNoted {
			c.leftNoted = true
			c.log.Warn("This node is not in the decided validator set: it no longer campaigns, and leaves the raft group when the leader removes it")
		}
		return
	}
	if m.GetType() == raftpb.MsgSnap {
		c.snapsSent = append(c.snapsSent, m.GetTo())
	}
	c.stats.raftSent(m.GetType())
	c.send(to, MsgRaft, payload)
}

func (c *Core) send(to consensus.NodeID, t MsgType, payload []byte) {
	c.stats.sent(t, len(payload))
	c.rd.Messages = append(c.rd.Messages, consensus.Message{To: to, Payload: payload})
}

// applyCommitted applies committed entries in order, reading them from
// storage (where they are durable), up to a bounded batch per Ready: the
// next batch waits for the Advance of the commits of this one. It waits
// while a catch-up is in progress: the chain must first reach the
// snapshot the log continues from.
func (c *Core) applyCommitted() (bool, error) {
	if c.catchup != nil || c.unacked > 0 {
		return false, nil
	}
	if c.applied >= c.commitIndex {
		if c.snapDue { // a configuration change before a restart
			return false, c.maybeSnapshot()
		}
		return false, nil
	}
	hi := min(c.commitIndex, c.applied+applyBatch)
	ents, err := c.store.Entries(c.applied+1, hi+1, c.cfg.MaxSizePerMsg)
	if err != nil {
		return false, fmt.Errorf("read committed entries [%d, %d]: %w", c.applied+1, hi, err)
	}
	for _, e := range ents {
		if e.GetIndex() != c.applied+1 {
			return false, fmt.Errorf("storage returned entry %d, want %d", e.GetIndex(), c.applied+1)
		}
		if err := c.applyEntry(e); err != nil {
			return false, err
		}
		c.applied = e.GetIndex()
		c.sinceSnap += uint64(len(e.GetData()))
		c.stats.committedEntries.Add(1)
	}
	if err := c.maybeSnapshot(); err != nil {
		return false, err
	}
	return len(ents) > 0, nil
}

// applyEntry applies one committed entry. The rule, the same on every
// node because every node applies the same entries to the same chain: a
// block entry is committed if it extends the head (its parent is the head
// and its number the next), otherwise it is stale and skipped. Stale
// entries are the blocks a deposed leader proposed on a head that moved
// on, and duplicates. A committed block that does not execute on this
// node (Host.CommitBlock refuses it) means this node's execution disagrees
// with the log: the owner halts.
func (c *Core) applyEntry(e *raftpb.Entry) error {
	if e.GetType() != raftpb.EntryNormal {
		// Raft applied it when it delivered it (applyConfEntry). Take a
		// snapshot here, so that a node the change adds can install the
		// leader's newest snapshot (raft refuses one without itself).
		c.snapDue = true
		return nil
	}
	if len(e.GetData()) == 0 {
		return nil // a new leader's empty entry
	}
	block, err := decodeBlockEntry(e.GetData())
	if err != nil {
		// Every node sees the same bytes and skips them alike.
		c.log.Error("Skipping an undecodable committed entry", "index", e.GetIndex(), "err", err)
		c.stats.staleEntries.Add(1)
		return nil
	}
	head := c.head
	if block.NumberU64() != head.Number.Uint64()+1 || block.ParentHash() != head.Hash() {
		c.stats.staleEntries.Add(1)
		c.log.Debug("Skipping a stale block entry", "index", e.GetIndex(), "number", block.NumberU64(), "head", head.Number)
		c.afterApply(block, false)
		return nil
	}
	c.commit(block, encodeSeal(e.GetIndex(), e.GetTerm()))
	c.stats.committedBlocks.Add(1)
	c.afterApply(block, true)
	return nil
}

// afterApply keeps the pipeline consistent with the chain: the first
// in-flight block leaves when it commits; if another block took its
// height, or it went stale, the whole pipeline is void.
func (c *Core) afterApply(b *types.Block, committed bool) {
	if len(c.inflight) == 0 {
		return
	}
	first := c.inflight[0]
	switch {
	case committed && first.Hash() == b.Hash():
		c.inflight = c.inflight[1:]
	case committed && first.NumberU64() <= b.NumberU64():
		c.inflight = nil
	case !committed && slices.ContainsFunc(c.inflight, func(x *types.Block) bool { return x.Hash() == b.Hash() }):
		c.inflight = nil
	}
}

// maybeSnapshot records a snapshot of the applied position every
// SnapshotEntries entries and compacts the log behind it, keeping
// CompactMargin entries for followers slightly behind. It names only a
// position whose commits the owner acknowledged: a snapshot is durable at
// once, and a crash must never leave one ahead of the chain.
func (c *Core) maybeSnapshot() error {
	if c.unacked > 0 {
		return nil
	}
	if !c.snapDue && c.applied < c.snapIndex+c.cfg.SnapshotEntries && c.sinceSnap < c.cfg.SnapshotBytes {
		return nil
	}
	if c.applied == c.snapIndex {
		return nil
	}
	head := c.acked
	cs := c.confAt(c.applied)
	data := encodeSnapshot(SnapshotData{Height: head.Number.Uint64(), Hash: head.Hash()}, c.listedMembers(cs))
	first, _ := c.store.FirstIndex()
	compactTo := first - 1
	if c.applied > c.cfg.CompactMargin {
		compactTo = max(compactTo, c.applied-c.cfg.CompactMargin)
	}
	if err := c.store.Compact(c.applied, cs, data, compactTo); err != nil {
		return err
	}
	c.pruneConf(c.applied)
	c.snapIndex, c.sinceSnap, c.snapDue = c.applied, 0, false
	c.stats.snapshots.Add(1)
	return nil
}

// maybePropose asks for the next block (Ready.Build) when this node
// leads, its chain is current, the pipeline has room, no build is out,
// and transactions may wait (Notify, a full block) or the block time has
// passed. The block is proposed when Built hands it back.
func (c *Core) maybePropose() (bool, error) {
	if !c.isLeader || c.catchup != nil || c.building || c.applied < c.termStart || c.applied < c.commitIndex {
		return false, nil
	}
	if len(c.inflight) >= c.cfg.PipelineDepth {
		return false, nil
	}
	due := c.ticksSinceBuild >= c.cfg.blockTicks()
	// While a validator set waits for its height, empty blocks take the
	// chain there (at most an epoch and the lead of blocks). (Governance
	// work due at the next height is the owner's to see: Host.Due.)
	forceEmpty := due && (c.cfg.ForceEmpty || c.sched.waiting(c.head.Number.Uint64()+1))
	if !c.poolDirty && !due {
		return false, nil
	}
	parent := c.head
	if n := len(c.inflight); n > 0 {
		parent = c.inflight[n-1].Header()
	}
	c.poolDirty = false
	c.ticksSinceBuild = 0
	c.building, c.buildTerm = true, c.term
	c.buildID++
	c.rd.Build = &consensus.BuildRequest{ID: c.buildID, Parent: parent, Empty: forceEmpty}
	return true, nil
}

// Built proposes the block built for the last Ready.Build, if this node
// still leads in the same term and the block extends the pipeline; nil
// (nothing to build) or an error proposes nothing.
func (c *Core) Built(req consensus.BuildRequest, block *types.Block, err error) {
	if c.fatal != nil || !c.building || req.ID != c.buildID {
		return
	}
	c.building = false
	c.run(func() error {
		if err != nil || block == nil || !c.isLeader || c.term != c.buildTerm {
			return nil
		}
		parent := c.head
		if n := len(c.inflight); n > 0 {
			parent = c.inflight[n-1].Header()
		}
		if block.ParentHash() != parent.Hash() || block.NumberU64() != parent.Number.Uint64()+1 {
			return nil // the chain or the pipeline moved while it was built
		}
		if len(block.Transactions()) >= c.cfg.MaxBlockTxs {
			c.poolDirty = true // a full block: more may wait
		}
		data, err := encodeBlockEntry(block)
		if err != nil {
			c.log.Error("Cannot encode a block", "err", err)
			return nil
		}
		if len(data) > c.cfg.maxEntryBytes() {
			c.log.Error("Built block is over the message size limit; not proposed (lower MaxBlockTxs or raise MaxMessageBytes)",
				"height", block.NumberU64(), "bytes", len(data), "limit", c.cfg.maxEntryBytes())
			return nil
		}
		if err := c.rn.Propose(data); err != nil {
			c.stats.proposalsDropped.Add(1)
			c.log.Debug("Raft dropped a proposal", "height", block.NumberU64(), "err", err)
			return nil
		}
		c.inflight = append(c.inflight, block)
		c.stats.proposals.Add(1)
		return nil
	})
}

// forward sends transactions to the leader, in batches bounded by count
// and size. Transactions too large for a message are left to the pool's
// gossip.
func (c *Core) forward(txs []*types.Transaction) {
	to, ok := c.mem.node(c.lead)
	if !ok || c.lead == c.id || len(txs) == 0 {
		return
	}
	limit := c.cfg.MaxMessageBytes - entryOverhead
	var (
		batch [][]byte
		size  int
	)
	flush := func() {
		if len(batch) == 0 {
			return
		}
		payload, err := encodeTxs(batch)
		if err != nil {
			c.log.Error("Cannot encode forwarded transactions", "err", err)
		} else {
			c.stats.txsForwarded.Add(uint64(len(batch)))
			c.send(to, MsgTxs, payload)
		}
		batch, size = nil, 0
	}
	for _, tx := range txs {
		raw, err := tx.MarshalBinary()
		if err != nil || len(raw) > limit {
			continue
		}
		if len(batch) == c.cfg.MaxBlockTxs || size+len(raw)+8 > limit {
			flush()
		}
		batch = append(batch, raw)
		size += len(raw) + 8
	}
	flush()
}

// onTxs hands forwarded transactions to the local pool through Forward.
// A node that no longer leads still accepts them: its pool keeps them
// and it re-forwards them on Notify.
func (c *Core) onTxs(from consensus.NodeID, body []byte) {
	raw, err := decodeTxs(body, c.cfg.MaxBlockTxs)
	if err != nil {
		c.drop(from, err)
		return
	}
	c.stats.txsReceived.Add(uint64(len(raw)))
	if len(raw) > 0 {
		c.rd.Txs = append(c.rd.Txs, raw...)
	}
	if c.isLeader {
		c.poolDirty = true
	}
}
