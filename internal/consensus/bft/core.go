package bft

import (
	"bytes"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/trie"

	"github.com/charter-ledger/charter/internal/consensus"
)

// Head names the last committed block.
type Head struct {
	Number uint64
	Hash   common.Hash
}

// The Ready of a bft core (consensus.Ready) holds:
//
//   - Commits: decided blocks, each with its seal (the encoded commit
//     certificate); at most one per Ready, since after a decision the core
//     holds every message until Advance;
//   - State: MarshalSavedState of the SavedState, whenever what this
//     validator signed, its round or its lock changed: saved before the
//     messages that carry the signatures leave;
//   - Messages, Build (a block for this validator's proposal), Verify (the
//     proposals of others), Serve (committed blocks for a peer that
//     catches up, sent back as sync blocks from Served).

// ErrPastHeight is returned by SetValidators for a change that would
// affect a height already in progress.
var ErrPastHeight = errors.New("bft: validator change for a height already in progress")

// ErrStateAhead is returned by NewCore when the saved state is for a
// height above head+1: the block store lost committed blocks.
var ErrStateAhead = errors.New("bft: saved state is ahead of the chain head")

type step uint8

const (
	stepNewHeight step = iota // waiting CommitWaitTicks before round 0
	stepPropose
	stepPrevote
	stepPrecommit
)

func (s step) String() string {
	return [...]string{"new-height", "propose", "prevote", "precommit"}[s]
}

type validity uint8

const (
	unknown validity = iota
	pending
	valid
	invalid
)

type blockInfo struct {
	block    *types.Block
	validity validity
}

type voteEntry struct {
	hash common.Hash
	sig  []byte
}

// voteSet holds the votes of one type in one round: the first vote of each
// validator (a second, different one is evidence, not a vote).
type voteSet struct {
	by    map[consensus.NodeID]voteEntry
	extra []voteEntry // mutCountEvery only
	count map[common.Hash]int
	total int
}

func newVoteSet() *voteSet {
	return &voteSet{by: make(map[consensus.NodeID]voteEntry), count: make(map[common.Hash]int)}
}

type roundState struct {
	proposal       *message                 // first proposal of the round's proposer
	proposals      map[common.Hash]*message // at most maxProposalsPerRound
	prevotes       *voteSet
	precommits     *voteSet
	lockDone       bool // the lock / valid-value rule fired in this round
	prevoteTimer   bool // the prevote timeout was scheduled
	precommitTimer bool // the precommit timeout was scheduled
}

const (
	maxProposalsPerRound = 2    // the first, and one conflicting (kept for its block)
	roundsAhead          = 4    // rounds above the current one whose votes are kept
	maxSeen              = 8192 // dedup set bound per height
	maxBlocksPerHeight   = 256
	maxRuleSteps         = 256
	maxPartials          = 4       // compact proposals waiting for transactions, per height
	maxTxCache           = 1 << 17 // notified transactions kept to rebuild compact proposals
	maxAnswersPerPeer    = 32      // transaction requests answered per peer and height
)

// partial is a compact proposal whose transactions are not all known.
type partial struct {
	m       *message // signature checked
	txs     []*types.Transaction
	missing int
	askedAt uint64
	full    bool // the full proposal was asked for
}

type candidate struct {
	round int64
	hash  common.Hash
}

// heightState is everything about the height in progress.
type heightState struct {
	height    uint64
	vals      *ValidatorSet
	validator bool
	quorum    int

	round int64
	step  step

	lockedRound int64
	lockedBlock *types.Block
	validRound  int64
	validBlock  *types.Block
	validJust   [][]byte

	rounds     map[int64]*roundState
	minRound   int64 // rounds below were pruned
	blocks     map[common.Hash]*blockInfo
	maxRound   map[consensus.NodeID]int64
	roundNoted bool // maxRound changed since the last round-skip check
	candidates []candidate

	newRoundAt, proposeAt, prevoteAt, precommitAt uint64 // tick deadlines, 0 = none
	building                                      bool
	// proposeWaited: the round's propose timeout was put off once, for
	// a proposal still being verified or completed (see Tick).
	proposeWaited bool

	// tm is the timing in force at this height.
	tm timing
	// Before round 0 while nothing waits (tm.emptyWait > 0): idle is set
	// once the commit wait is over; round 0 starts at idleUntil, or
	// earlier for work (see Config.EmptyBlockTicks). polling: a build of
	// round 0's proposer, asked every commit wait from pollAt, is out;
	// idleBlock is what it built.
	idle, work, polling bool
	idleUntil, pollAt   uint64
	idleBlock           *types.Block
	// early: as round 0's proposer, this node asked for its block during
	// the commit wait (at earlyAt, halfway through it), request buildID;
	// earlyBlock is what it built, proposed when round 0 starts.
	early      bool
	earlyAt    uint64
	earlyBlock *types.Block
	// began is the tick at which round 0 of this height started here
	// (valid when hasBegun): the next height's round 0 starts no earlier
	// than CommitWait after it (see startHeight).
	began    uint64
	hasBegun bool

	// What this validator signed at this height (wire form) and in which
	// round; restored from SavedState after a restart.
	ownProposal, ownPrevote, ownPrecommit []byte
	ownProposalRound, ownPrevoteRound     int64
	ownPrecommitRound                     int64
	// own keeps every message this validator signed at this height, by
	// round (within the rounds kept), for re-sending.
	own   map[int64]*[numMsgTypes][]byte
	oldRR int64 // round-robin over older rounds when re-sending

	partials map[common.Hash]*partial // compact proposals being completed
	answered map[consensus.NodeID]int // transaction requests answered, by peer
}

type buffered struct {
	from    consensus.NodeID
	height  uint64
	payload []byte
}

type evKey struct {
	who    consensus.NodeID
	typ    MsgType
	height uint64
	round  int64
}

// Core is the bft state machine for one node: Tendermint's algorithm
// (propose, prevote, precommit with locking and valid values; see
// docs/design/bft.md). It reads no clock, socket or file and starts no
// goroutine; it is not goroutine-safe: one goroutine calls all methods.
//
// Inputs: Step (a message from a peer), Tick (a unit of time), Propose (a
// block built for a BuildRequest), Verified (the result of verifying a
// block), SetValidators. Output: Ready, acknowledged with Advance.
type Core struct {
	cfg     Config
	self    consensus.NodeID
	signer  Signer
	recover Recoverer
	sched   schedule
	now     uint64
	head    Head
	parent  *types.Header // the header of head: the parent of the next block
	hs      *heightState

	future     []buffered
	futureBy   map[consensus.NodeID]int
	futureSeen map[common.Hash]struct{}
	replay     bool // future messages wait for Advance
	// holding: a decision is out in Ready and not yet applied (Advance);
	// messages wait in held meanwhile.
	holding bool
	held    []buffered

	seen map[common.Hash]struct{}

	syncHint  map[consensus.NodeID]uint64 // peers ahead of us, and the height they showed
	syncAt    uint64                      // tick of the last request
	syncUntil uint64                      // height after the batch last asked for
	syncWait  uint64                      // no request before this tick
	syncRR    uint64
	served    map[consensus.NodeID]uint64

	status       []byte
	statusHeight uint64
	statusRound  int64

	evidence    []Evidence
	evidenceKey map[evKey]struct{}

	stats    Stats
	rd       consensus.Ready
	dirty    bool
	buildID  uint64 // ID of the last build request
	lastSent uint64 // tick of the last broadcast: rebroadcast waits RebroadcastTicks after it

	// timings are the timings in force from a height on, ascending: the
	// config's from 0, then governance's changes.
	timings []timingEntry

	// txCache holds the transactions the pool notified (Config.Compact
	// or not: any proposal may come compact), at most maxTxCache, the
	// oldest replaced first (txRing).
	txCache map[common.Hash]*types.Transaction
	txRing  []common.Hash
	txPos   int
}

// NewCore returns a core that decides heights from head.Number+1 on. saved
// is what the node last stored from Ready.State (nil on first start); a
// saved state for an older height is ignored (the driver commits a
// decided block before it saves the state of the next height, so a crash
// in between leaves an older state: consensus.Ready).
func NewCore(cfg Config, header *types.Header, saved *SavedState) (*Core, error) {
	if header == nil {
		return nil, fmt.Errorf("%w: no head header", ErrBadConfig)
	}
	head := Head{Number: header.Number.Uint64(), Hash: header.Hash()}
	cfg.EnsureDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	vs, err := NewValidatorSet(cfg.Validators)
	if err != nil {
		return nil, err
	}
	c := &Core{
		cfg:         cfg,
		self:        cfg.Self,
		signer:      cfg.Signer,
		recover:     cfg.Recover,
		sched:       schedule{entries: []scheduleEntry{{from: 0, set: vs}}},
		head:        head,
		parent:      header,
		futureBy:    make(map[consensus.NodeID]int),
		futureSeen:  make(map[common.Hash]struct{}),
		seen:        make(map[common.Hash]struct{}),
		syncHint:    make(map[consensus.NodeID]uint64),
		served:      make(map[consensus.NodeID]uint64),
		evidenceKey: make(map[evKey]struct{}),
		timings:     []timingEntry{{from: 0, tm: cfg.baseTiming()}},
		txCache:     make(map[common.Hash]*types.Transaction),
	}
	for _, pc := range cfg.ParamChanges {
		c.timings = append(c.timings, timingEntry{from: pc.From, tm: cfg.timingWith(pc.Values)})
	}
	if saved != nil && saved.Height > head.Number+1 {
		return nil, fmt.Errorf("%w: state for height %d, head %d", ErrStateAhead, saved.Height, head.Number)
	}
	if saved != nil && saved.Height == head.Number+1 && c.signer != nil {
		if err := c.restore(saved); err != nil {
			return nil, err
		}
		return c, nil
	}
	c.startHeight()
	return c, nil
}

// restore resumes a height from saved state: same round, same lock, same
// signed messages (re-sent, never re-signed differently).
func (c *Core) restore(s *SavedState) error {
	c.newHeightState()
	hs := c.hs
	if s.LockedBlock != nil {
		hs.lockedRound, hs.lockedBlock = s.LockedRound, s.LockedBlock
		c.learnBlock(s.LockedBlock, valid)
	}
	if s.ValidBlock != nil {
		hs.validRound, hs.validBlock, hs.validJust = s.ValidRound, s.ValidBlock, s.ValidJustification
		c.learnBlock(s.ValidBlock, valid)
	}
	own := func(payload []byte, typ MsgType) (*message, error) {
		if payload == nil {
			return nil, nil
		}
		m, err := decodeMessage(payload)
		if err != nil || m.typ != typ || m.height != hs.height {
			return nil, fmt.Errorf("%w: own %s", ErrCorruptState, typ)
		}
		m.signer = c.self
		return m, nil
	}
	prop, err := own(s.Proposal, MsgProposal)
	if err != nil {
		return err
	}
	pv, err := own(s.Prevote, MsgPrevote)
	if err != nil {
		return err
	}
	pc, err := own(s.Precommit, MsgPrecommit)
	if err != nil {
		return err
	}
	round := s.Round
	for _, m := range []*message{prop, pv, pc} {
		if m != nil && m.round > round {
			round = m.round
		}
	}
	hs.round = round
	if prop != nil {
		hs.ownProposal, hs.ownProposalRound = s.Proposal, prop.round
		c.keepOwn(prop.round, MsgProposal, s.Proposal)
	}
	if pv != nil {
		hs.ownPrevote, hs.ownPrevoteRound = s.Prevote, pv.round
		c.keepOwn(pv.round, MsgPrevote, s.Prevote)
	}
	if pc != nil {
		hs.ownPrecommit, hs.ownPrecommitRound = s.Precommit, pc.round
		c.keepOwn(pc.round, MsgPrecommit, s.Precommit)
	}
	c.startRound(round)
	if prop != nil {
		c.learnBlock(prop.block, valid)
		c.addProposal(prop)
	}
	if pv != nil {
		c.addVote(pv)
		if pv.round == round {
			hs.step = stepPrevote
		}
	}
	if pc != nil {
		c.addVote(pc)
		if pc.round == round {
			hs.step = stepPrecommit
		}
	}
	c.dirty = true
	c.process()
	return nil
}

// Self is this node's id.
func (c *Core) Self() consensus.NodeID { return c.self }

// Height is the height in progress; Round its round.
func (c *Core) Height() uint64 { return c.hs.height }

// Round is the round in progress.
func (c *Core) Round() int64 { return c.hs.round }

// Tip is the last block this core committed (or started from).
func (c *Core) Tip() Head { return c.head }

// Validators returns the validator set of a height, as far as known now.
func (c *Core) Validators(height uint64) *ValidatorSet { return c.sched.at(height) }

// Counters returns the bft counters.
func (c *Core) Counters() Stats {
	s := c.stats
	s.Height, s.Round = c.hs.height, c.hs.round
	return s
}

// Stats implements consensus.Core.
func (c *Core) Stats() consensus.Stats {
	s := c.Counters()
	out := consensus.Stats{
		Height: s.Height, Round: s.Round,
		RoundChanges:   s.RoundChanges,
		DecidedInRound: s.CommitRounds,
		Dropped:        s.Dropped,
		CompactRebuilt: s.CompactRebuilt,
		CompactFetched: s.TxFetches,
		CompactFull:    s.FullFetches,
		Timeouts: []consensus.StepCount{{Step: "propose", Count: s.Timeouts[0]},
			{Step: "prevote", Count: s.Timeouts[1]}, {Step: "precommit", Count: s.Timeouts[2]},
			{Step: "propose_extended", Count: s.ProposeWaits}},
	}
	if c.hs != nil && c.hs.vals != nil {
		out.Validators = c.hs.vals.Size()
	}
	for typ := MsgType(1); int(typ) < numMsgTypes; typ++ {
		out.Messages = append(out.Messages, consensus.MessageStats{Type: typ.String(),
			MsgsIn: s.MsgsIn[typ], MsgsOut: s.MsgsOut[typ], BytesIn: s.BytesIn[typ], BytesOut: s.BytesOut[typ]})
	}
	return out
}

// Err implements consensus.Core: a broken invariant panics instead.
func (c *Core) Err() error { return nil }

// Notify implements consensus.Core. The round's proposer asks for a block
// when its round starts (and CommitWait paces heights); only a height
// held back while idle (Config.EmptyBlockTicks) starts its round 0 for
// transactions.
func (c *Core) Notify(txs []*types.Transaction) {
	hs := c.hs
	for _, tx := range txs {
		c.cacheTx(tx)
	}
	if len(txs) == 0 || hs.step != stepNewHeight {
		return
	}
	hs.work = true
	if hs.idle {
		c.startRound(0)
		c.process()
	}
}

// Head implements consensus.Core: bft blocks are final when committed.
func (c *Core) Head(uint64) consensus.HeadRef { return consensus.HeadRef{Latest: true} }

// Evidence returns the equivocations seen, oldest first (at most
// Config.MaxEvidence). The caller owns the slice.
func (c *Core) Evidence() []Evidence { return append([]Evidence(nil), c.evidence...) }

// SetValidators makes ids the validator set from height from on. The
// change must not touch the height in progress: from > Height(). A later
// call for the same or a lower from replaces pending changes at or after
// it. The node calls it when a block that decides a change is committed
// (before Advance), and again after a restart for changes not yet in force.
func (c *Core) SetValidators(from uint64, ids []consensus.NodeID) error {
	if from <= c.hs.height {
		return fmt.Errorf("%w: from %d, height %d in progress", ErrPastHeight, from, c.hs.height)
	}
	vs, err := NewValidatorSet(ids)
	if err != nil {
		return err
	}
	return c.sched.set(from, vs)
}

// HasReady reports whether Ready has anything.
func (c *Core) HasReady() bool { return !c.rd.Empty() || (c.dirty && c.signer != nil) }

// Ready returns the pending work and starts a new batch (see the notes on
// consensus.Ready above). An observer saves no state.
func (c *Core) Ready() consensus.Ready {
	rd := c.rd
	c.rd = consensus.Ready{}
	if c.dirty && c.signer != nil {
		b, err := MarshalSavedState(c.snapshot())
		if err != nil {
			// The core's own blocks and messages: a broken invariant.
			panic(fmt.Sprintf("bft: encode saved state: %v", err))
		}
		rd.State = b
	}
	c.dirty = false
	return rd
}

// Advance tells the core that the last Ready was handled: its commits are
// applied, and the validator changes they decide were given to
// SetValidators. After a decision the core holds every message until
// then, so it never decides a height (nor starts the one after) before the
// node has applied the previous block: one decision per Ready.
func (c *Core) Advance() {
	c.holding = false
	if c.replay {
		c.replay = false
		c.replayFuture()
		c.process()
	}
	for len(c.held) > 0 && !c.holding {
		b := c.held[0]
		c.held = c.held[1:]
		if err := c.step(b.from, b.payload); err != nil && !errors.Is(err, ErrFuture) {
			c.stats.Dropped++
		}
		c.process()
	}
	if len(c.held) == 0 {
		c.held = nil
	}
}

func (c *Core) snapshot() *SavedState {
	hs := c.hs
	return &SavedState{
		Height: hs.height, Round: hs.round,
		LockedRound: hs.lockedRound, LockedBlock: hs.lockedBlock,
		ValidRound: hs.validRound, ValidBlock: hs.validBlock, ValidJustification: hs.validJust,
		Proposal: hs.ownProposal, Prevote: hs.ownPrevote, Precommit: hs.ownPrecommit,
	}
}

func (c *Core) quorum(vs *ValidatorSet) int {
	if c.cfg.mutation == mutQuorum2f {
		return 2 * vs.Faulty()
	}
	return vs.Quorum()
}

// ---- heights and rounds ----

func (c *Core) newHeightState() {
	h := c.head.Number + 1
	c.sched.prune(h)
	vs := c.sched.at(h)
	c.pruneTimings(h)
	c.hs = &heightState{
		tm:          c.timings[0].tm,
		height:      h,
		vals:        vs,
		validator:   c.signer != nil && vs.Contains(c.self),
		quorum:      c.quorum(vs),
		lockedRound: -1,
		validRound:  -1,
		rounds:      make(map[int64]*roundState),
		blocks:      make(map[common.Hash]*blockInfo),
		maxRound:    make(map[consensus.NodeID]int64),
		own:         make(map[int64]*[numMsgTypes][]byte),
		partials:    make(map[common.Hash]*partial),
		answered:    make(map[consensus.NodeID]int),
	}
	c.seen = make(map[common.Hash]struct{})
	for id, h := range c.syncHint {
		if h <= c.hs.height {
			delete(c.syncHint, id)
		}
	}
	c.replay = true
}

func (c *Core) startHeight() {
	// The block time counts from the start of the height just decided,
	// so that it overlaps that height's work (building, verifying, the
	// votes and the commit): when that work took longer, round 0 of the
	// next height starts at once. A height this node did not see begin
	// (the first after a start, or one decided by catch-up) waits the
	// whole block time from its decision.
	prev := c.hs
	c.newHeightState()
	c.dirty = true
	hs := c.hs
	wait := uint64(hs.tm.commitWait)
	if prev != nil && prev.hasBegun {
		wait = max(prev.began+wait, c.now) - c.now
	}
	if hs.tm.emptyWait > 0 {
		hs.idleUntil = c.now + uint64(hs.tm.emptyWait)
	}
	if wait == 0 && hs.tm.emptyWait == 0 {
		c.startRound(0)
		return
	}
	hs.step = stepNewHeight
	if hs.tm.emptyWait == 0 && hs.validator && hs.vals.Proposer(hs.height, 0) == c.self {
		// Build round 0's block while the commit wait runs: on the block
		// just decided, which the host executed when it verified or built
		// it. Only when a block is made at every height (an idle height's
		// poll uses the build requests otherwise). Not at once: halfway
		// through what is left of the wait, so that what arrives in its
		// first half joins this block instead of waiting a height more,
		// and the second half is for building.
		hs.earlyAt = c.now + wait/2
		if hs.earlyAt == c.now {
			c.buildEarly()
		}
	}
	hs.newRoundAt = c.now + wait
	if wait == 0 {
		c.endCommitWait()
	}
}

// buildEarly asks for round 0's block during the commit wait (see
// startHeight).
func (c *Core) buildEarly() {
	hs := c.hs
	hs.earlyAt = 0
	hs.early = true
	c.buildID++
	c.rd.Build = &consensus.BuildRequest{ID: c.buildID, Parent: c.parent, Empty: true, Budget: c.budget(0)}
}

// endCommitWait starts round 0 once the commit wait is over, unless the
// height waits for work (Config.EmptyBlockTicks): then it goes idle.
func (c *Core) endCommitWait() {
	hs := c.hs
	hs.newRoundAt = 0
	if hs.tm.emptyWait == 0 || hs.work || c.now >= hs.idleUntil || c.roundZeroStarted() {
		c.startRound(0)
		return
	}
	hs.idle = true
	hs.pollAt = c.now
	c.pollWork()
}

// roundZeroStarted reports that a peer is in round 0 of this height: its
// proposal or a vote of it arrived.
func (c *Core) roundZeroStarted() bool {
	rs := c.hs.rounds[0]
	return rs != nil && (rs.proposal != nil || rs.prevotes.total > 0 || rs.precommits.total > 0)
}

// pollWork asks the builder, as round 0's proposer of an idle height, for
// a block with transactions or governance work (an empty answer is nil),
// at most once per commit wait.
func (c *Core) pollWork() {
	hs := c.hs
	if !hs.idle || hs.polling || c.now < hs.pollAt || !hs.validator || hs.vals.Proposer(hs.height, 0) != c.self {
		return
	}
	hs.polling = true
	hs.pollAt = c.now + uint64(max(hs.tm.commitWait, 1))
	c.buildID++
	c.rd.Build = &consensus.BuildRequest{ID: c.buildID, Parent: c.parent, Budget: c.budget(0)}
}

// budget is the real time a proposal of round r has to be built and
// verified: the round's propose timeout (consensus.BuildRequest.Budget).
func (c *Core) budget(r int64) time.Duration {
	return time.Duration(c.timeout(c.hs.tm.propose, r)) * c.cfg.TickInterval
}

func (c *Core) timeout(base int, round int64) uint64 {
	t := int64(base) + round*int64(c.hs.tm.growth)
	if t > int64(max(c.cfg.MaxTimeoutTicks, base)) {
		t = int64(max(c.cfg.MaxTimeoutTicks, base))
	}
	return uint64(t)
}

// timingAt is the timing in force at height h.
func (c *Core) timingAt(h uint64) timing {
	tm := c.timings[0].tm
	for _, e := range c.timings {
		if e.from <= h {
			tm = e.tm
		}
	}
	return tm
}

// pruneTimings drops the timings no longer in force from height h on and
// leaves the one in force at h first.
func (c *Core) pruneTimings(h uint64) {
	i := 0
	for i+1 < len(c.timings) && c.timings[i+1].from <= h {
		i++
	}
	c.timings = c.timings[i:]
}

// SetParams makes the parameters governance set (by name, milliseconds;
// see Params) in force from height from on, over the config's. Like
// SetValidators, from must be above the height in progress; a later call
// for the same or a lower from replaces the changes at or after it.
func (c *Core) SetParams(from uint64, values map[string]uint64) error {
	if from <= c.hs.height {
		return fmt.Errorf("%w: parameters from %d, height %d in progress", ErrPastHeight, from, c.hs.height)
	}
	keep := c.timings[:0]
	for _, e := range c.timings {
		if e.from < from {
			keep = append(keep, e)
		}
	}
	if len(keep) >= maxTimings {
		return fmt.Errorf("bft: more than %d parameter changes pending", maxTimings)
	}
	c.timings = append(keep, timingEntry{from: from, tm: c.cfg.timingWith(values)})
	return nil
}

func (c *Core) startRound(r int64) {
	hs := c.hs
	hs.round, hs.step = r, stepPropose
	hs.newRoundAt, hs.prevoteAt, hs.precommitAt, hs.earlyAt = 0, 0, 0, 0
	if r == 0 && !hs.hasBegun {
		hs.began, hs.hasBegun = c.now, true
	}
	hs.proposeAt = c.now + c.timeout(hs.tm.propose, r)
	hs.proposeWaited = false
	// An idle height's poll, if out, is answered to no one.
	hs.building, hs.idle, hs.polling = false, false, false
	c.stats.Rounds++
	if r > 0 {
		c.stats.RoundChanges++
	}
	c.roundState(r)
	c.pruneRounds()
	if hs.validator && hs.vals.Proposer(hs.height, r) == c.self {
		switch {
		case hs.ownProposal != nil && hs.ownProposalRound == r:
			// Restarted after proposing in this round: send the same one.
			c.send(MsgProposal, hs.ownProposal)
		case hs.validBlock != nil:
			c.propose(hs.validBlock, hs.validRound, hs.validJust)
		case r == 0 && hs.idleBlock != nil:
			c.propose(hs.idleBlock, -1, nil)
		case r == 0 && hs.earlyBlock != nil:
			c.propose(hs.earlyBlock, -1, nil)
		case r == 0 && hs.early:
			hs.building = true // the early build, still out, answers
		default:
			hs.building = true
			c.buildID++
			c.rd.Build = &consensus.BuildRequest{ID: c.buildID, Parent: c.parent, Empty: true, Budget: c.budget(r)}
		}
	}
	c.sendStatus()
}

// roundState returns the state of round r, creating it if r is in the
// window kept in memory; nil otherwise.
func (c *Core) roundState(r int64) *roundState {
	hs := c.hs
	if rs := hs.rounds[r]; rs != nil {
		return rs
	}
	if r < hs.minRound || r > hs.round+roundsAhead {
		return nil
	}
	rs := &roundState{proposals: make(map[common.Hash]*message), prevotes: newVoteSet(), precommits: newVoteSet()}
	hs.rounds[r] = rs
	return rs
}

func (c *Core) pruneRounds() {
	hs := c.hs
	for len(hs.rounds) > c.cfg.MaxRoundsKept {
		oldest := hs.round
		for r := range hs.rounds {
			oldest = min(oldest, r)
		}
		delete(hs.rounds, oldest)
		hs.minRound = oldest + 1
		for r := range hs.own {
			if r < hs.minRound {
				delete(hs.own, r)
			}
		}
		keep := hs.candidates[:0]
		for _, cd := range hs.candidates {
			if cd.round >= hs.minRound {
				keep = append(keep, cd)
			}
		}
		hs.candidates = keep
	}
}

// ---- inputs ----

// Tick advances the core's time by one tick: timeouts, re-sending and
// catch-up requests happen here.
func (c *Core) Tick() {
	c.now++
	hs := c.hs
	if hs.step == stepNewHeight && hs.earlyAt != 0 && c.now >= hs.earlyAt {
		c.buildEarly()
	}
	if hs.step == stepNewHeight && hs.newRoundAt != 0 && c.now >= hs.newRoundAt {
		c.endCommitWait()
	}
	if hs.step == stepNewHeight && hs.idle {
		if c.now >= hs.idleUntil {
			c.startRound(0)
		} else {
			c.pollWork()
		}
	}
	if hs.step == stepPropose && hs.proposeAt != 0 && c.now >= hs.proposeAt {
		if !hs.proposeWaited && c.proposalUnderWay() {
			// The proposal came and its verification (or the fetch of
			// its missing transactions) is still running: a loaded
			// validator's verification may outlast the timeout the
			// proposer's block was capped for. Waiting once more costs
			// less than the round that a nil prevote would start; once,
			// so that a proposal that is never verified still ends the
			// round.
			hs.proposeWaited = true
			hs.proposeAt = c.now + c.timeout(hs.tm.propose, hs.round)
			c.stats.ProposeWaits++
		} else {
			hs.proposeAt = 0
			c.stats.Timeouts[0]++
			c.signVote(MsgPrevote, common.Hash{})
			hs.step = stepPrevote
		}
	}
	if hs.step == stepPrevote && hs.prevoteAt != 0 && c.now >= hs.prevoteAt {
		hs.prevoteAt = 0
		c.stats.Timeouts[1]++
		c.signVote(MsgPrecommit, common.Hash{})
		hs.step = stepPrecommit
	}
	if hs.precommitAt != 0 && c.now >= hs.precommitAt {
		hs.precommitAt = 0
		c.stats.Timeouts[2]++
		c.startRound(hs.round + 1)
	}
	if c.now >= c.lastSent+uint64(c.cfg.RebroadcastTicks) {
		c.rebroadcast()
	}
	c.fetchTimeouts()
	c.requestSync()
	c.process()
}

// Step takes one message from peer from. It returns nil if the message was
// used, or an error saying why it was dropped or kept for later (none is
// fatal; the node may count them).
func (c *Core) Step(from consensus.NodeID, payload []byte) error {
	typ := PeekType(payload)
	if int(typ) < numMsgTypes {
		c.stats.MsgsIn[typ]++
		c.stats.BytesIn[typ] += uint64(len(payload))
	}
	err := c.step(from, payload)
	if err != nil && !errors.Is(err, ErrFuture) {
		c.stats.Dropped++
	}
	c.process()
	return err
}

func (c *Core) step(from consensus.NodeID, payload []byte) error {
	if len(payload) > c.cfg.MaxMessageBytes {
		return fmt.Errorf("%w: %d bytes", ErrTooLarge, len(payload))
	}
	if c.holding {
		if len(c.held) >= c.cfg.MaxFutureMessages {
			c.stats.FutureDropped++
			return fmt.Errorf("%w: too many messages held until Advance", ErrIgnored)
		}
		c.held = append(c.held, buffered{from: from, payload: payload})
		return fmt.Errorf("%w: held until Advance", ErrFuture)
	}
	switch PeekType(payload) {
	case MsgSyncRequest:
		return c.onSyncRequest(from, payload)
	case MsgSyncBlock:
		return c.onSyncBlock(from, payload)
	}
	key := crypto.Keccak256Hash(payload)
	if _, dup := c.seen[key]; dup {
		c.stats.Duplicates++
		return ErrDuplicate
	}
	m, err := decodeMessage(payload)
	if err != nil {
		c.remember(key)
		return err
	}
	switch {
	case m.height < c.hs.height:
		c.stats.Stale++
		return fmt.Errorf("%w: %s for %d at %d", ErrStale, m.typ, m.height, c.hs.height)
	case m.height > c.hs.height:
		c.hint(from, m.height)
		c.buffer(from, m)
		return fmt.Errorf("%w: %s for %d at %d", ErrFuture, m.typ, m.height, c.hs.height)
	}
	// Validators send their messages to each other directly (the p2p
	// layer authenticates the sender; nothing is relayed), so a signed
	// message from a peer outside the set is dropped before any
	// signature work. The signer is checked below all the same. Not
	// remembered: the same bytes from a validator are still welcome.
	switch m.typ {
	case MsgTxRequest:
		// Unsigned, answered to any peer (observers too), at a bounded
		// rate; not remembered: a retry has the same bytes.
		return c.onTxRequest(from, m)
	case MsgTxResponse:
		return c.onTxResponse(m)
	}
	if !c.hs.vals.Contains(from) {
		c.stats.BadSignatures++
		return fmt.Errorf("%w: sent by %s", ErrNotValidator, from)
	}
	err = c.handle(m)
	// Remember the message unless it may become useful later (a round
	// outside the window now): re-sent copies are then dropped cheaply.
	if !errors.Is(err, ErrIgnored) {
		c.remember(key)
	}
	return err
}

func (c *Core) remember(key common.Hash) {
	if len(c.seen) >= maxSeen {
		c.seen = make(map[common.Hash]struct{})
	}
	c.seen[key] = struct{}{}
}

// verifySigner checks the signature of a message of the current height and
// that the signer is a validator of it.
func (c *Core) verifySigner(m *message) error {
	id, err := c.recover(m.digest(c.cfg.ChainID), m.sig)
	if err != nil {
		c.stats.BadSignatures++
		return err
	}
	if !c.hs.vals.Contains(id) {
		c.stats.BadSignatures++
		return fmt.Errorf("%w: %s", ErrNotValidator, id)
	}
	m.signer = id
	return nil
}

func (c *Core) handle(m *message) error {
	if err := c.verifySigner(m); err != nil {
		return err
	}
	c.noteRound(m.signer, m.round)
	switch m.typ {
	case MsgStatus:
		return nil
	case MsgPrevote, MsgPrecommit:
		if c.roundState(m.round) == nil {
			return fmt.Errorf("%w: %s for round %d outside [%d, %d]", ErrIgnored, m.typ, m.round, c.hs.minRound, c.hs.round+roundsAhead)
		}
		c.addVote(m)
		return nil
	case MsgProposal:
		return c.onProposal(m)
	case MsgCompactProposal:
		return c.onCompact(m)
	}
	return fmt.Errorf("%w: unexpected %s", ErrMalformed, m.typ)
}

// cacheTx keeps a notified transaction for compact proposals.
func (c *Core) cacheTx(tx *types.Transaction) {
	h := tx.Hash()
	if _, ok := c.txCache[h]; ok {
		return
	}
	if len(c.txRing) < maxTxCache {
		c.txRing = append(c.txRing, h)
	} else {
		delete(c.txCache, c.txRing[c.txPos])
		c.txRing[c.txPos] = h
		c.txPos = (c.txPos + 1) % maxTxCache
	}
	c.txCache[h] = tx
}

// onCompact takes a compact proposal whose signature was checked: the
// block is rebuilt from the transactions known here, or its missing
// transactions are asked of the proposer; the proposal counts only once
// its block is complete (until then the propose timeout runs).
func (c *Core) onCompact(m *message) error {
	hs := c.hs
	if m.signer != hs.vals.Proposer(hs.height, m.round) {
		return fmt.Errorf("%w: %s at round %d", ErrWrongLeader, m.signer, m.round)
	}
	rs := c.roundState(m.round)
	if rs == nil {
		return fmt.Errorf("%w: proposal for round %d outside [%d, %d]", ErrIgnored, m.round, hs.minRound, hs.round+roundsAhead)
	}
	if m.header.Number.Uint64() != hs.height {
		return fmt.Errorf("%w: proposal of block %d at height %d", ErrMalformed, m.header.Number.Uint64(), hs.height)
	}
	if rs.proposals[m.hash] != nil || hs.partials[m.hash] != nil {
		return nil // complete already, or being completed
	}
	if bi := hs.blocks[m.hash]; bi != nil {
		return c.completeCompact(m, bi.block.Transactions())
	}
	txs := make([]*types.Transaction, len(m.txHashes))
	var missing []uint64
	for i, h := range m.txHashes {
		if tx := c.txCache[h]; tx != nil {
			txs[i] = tx
		} else {
			missing = append(missing, uint64(i))
		}
	}
	if len(missing) == 0 {
		c.stats.CompactRebuilt++
		return c.completeCompact(m, txs)
	}
	if len(hs.partials) >= maxPartials {
		return fmt.Errorf("%w: %d compact proposals already wait for transactions", ErrIgnored, len(hs.partials))
	}
	p := &partial{m: m, txs: txs, missing: len(missing), askedAt: c.now}
	hs.partials[m.hash] = p
	c.stats.TxFetches++
	if len(missing) > MaxTxRequest {
		p.full = true
		c.stats.FullFetches++
		missing = nil
	}
	c.sendTo(m.signer, MsgTxRequest, encodeTxRequest(hs.height, m.round, m.hash, p.full, missing))
	return nil
}

// completeCompact makes the block of a compact proposal and takes the
// proposal as a full one (its body is checked against the header there).
func (c *Core) completeCompact(m *message, txs []*types.Transaction) error {
	delete(c.hs.partials, m.hash)
	full := *m
	full.typ = MsgProposal
	full.block = types.NewBlockWithHeader(m.header).WithBody(compactBody(m.header, txs))
	full.header, full.txHashes = nil, nil
	return c.onProposal(&full)
}

// fetchTimeouts asks for the full proposal of a compact one whose
// transactions did not all come in time, and asks again while the round
// lasts.
func (c *Core) fetchTimeouts() {
	hs := c.hs
	if len(hs.partials) == 0 {
		return
	}
	wait := uint64(max(2*c.cfg.SyncRetryTicks, 2))
	hashes := make([]common.Hash, 0, len(hs.partials))
	for h := range hs.partials {
		hashes = append(hashes, h)
	}
	sort.Slice(hashes, func(i, j int) bool { return bytes.Compare(hashes[i][:], hashes[j][:]) < 0 })
	for _, h := range hashes {
		p := hs.partials[h]
		if p.m.round < hs.minRound {
			delete(hs.partials, h)
			continue
		}
		if c.now-p.askedAt < wait {
			continue
		}
		if !p.full {
			c.stats.FullFetches++
		}
		p.full, p.askedAt = true, c.now
		c.sendTo(p.m.signer, MsgTxRequest, encodeTxRequest(hs.height, p.m.round, h, true, nil))
	}
}

// onTxRequest answers a peer's request for transactions of a block of
// this height known here, or for its full proposal.
func (c *Core) onTxRequest(from consensus.NodeID, m *message) error {
	hs := c.hs
	bi := hs.blocks[m.hash]
	if bi == nil {
		return fmt.Errorf("%w: transactions of unknown block %s", ErrIgnored, m.hash)
	}
	if _, ok := hs.answered[from]; !ok && len(hs.answered) >= 4*MaxValidators {
		return fmt.Errorf("%w: too many peers asking for transactions", ErrIgnored)
	}
	if hs.answered[from] >= maxAnswersPerPeer {
		return fmt.Errorf("%w: transaction request rate", ErrIgnored)
	}
	hs.answered[from]++
	if m.full {
		var prop *message
		if rs := hs.rounds[m.round]; rs != nil {
			prop = rs.proposals[m.hash]
		}
		if prop == nil {
			return fmt.Errorf("%w: no proposal of %s in round %d", ErrIgnored, m.hash, m.round)
		}
		c.sendTo(from, MsgProposal, encodeProposal(hs.height, prop.round, prop.validRound, bi.block, prop.just, prop.sig))
		return nil
	}
	txs := bi.block.Transactions()
	idx := make([]uint64, 0, len(m.indexes))
	out := make([]*types.Transaction, 0, len(m.indexes))
	for _, i := range m.indexes {
		if i < uint64(len(txs)) {
			idx = append(idx, i)
			out = append(out, txs[i])
		}
	}
	if len(out) == 0 {
		return fmt.Errorf("%w: no transaction of %s at the indexes asked", ErrIgnored, m.hash)
	}
	c.sendTo(from, MsgTxResponse, encodeTxResponse(hs.height, m.hash, idx, out))
	return nil
}

// onTxResponse fills a compact proposal with the transactions that match
// its hashes; the last one completes it.
func (c *Core) onTxResponse(m *message) error {
	p := c.hs.partials[m.hash]
	if p == nil {
		return fmt.Errorf("%w: transactions for no compact proposal", ErrIgnored)
	}
	for i, idx := range m.indexes {
		if idx >= uint64(len(p.txs)) || p.txs[idx] != nil || m.txs[i].Hash() != p.m.txHashes[idx] {
			continue
		}
		p.txs[idx] = m.txs[i]
		p.missing--
	}
	if p.missing > 0 {
		return nil
	}
	return c.completeCompact(p.m, p.txs)
}

func (c *Core) onProposal(m *message) error {
	hs := c.hs
	if m.signer != hs.vals.Proposer(hs.height, m.round) {
		return fmt.Errorf("%w: %s at round %d", ErrWrongLeader, m.signer, m.round)
	}
	if c.roundState(m.round) == nil {
		return fmt.Errorf("%w: proposal for round %d outside [%d, %d]", ErrIgnored, m.round, hs.minRound, hs.round+roundsAhead)
	}
	if m.block.NumberU64() != hs.height {
		return fmt.Errorf("%w: proposal of block %d at height %d", ErrMalformed, m.block.NumberU64(), hs.height)
	}
	if err := checkBody(m.block); err != nil {
		return err
	}
	delete(hs.partials, m.hash)
	if m.validRound >= 0 {
		// The justification proves a quorum prevoted the block in its
		// valid round; its votes count as received prevotes.
		votes, err := c.checkJustification(m)
		if err != nil {
			return err
		}
		for _, v := range votes {
			c.noteRound(v.signer, v.round)
			if c.roundState(v.round) != nil {
				c.addVote(v)
			}
		}
	}
	c.addProposal(m)
	return nil
}

func (c *Core) checkJustification(m *message) ([]*message, error) {
	hs := c.hs
	if len(m.just) > hs.vals.Size() {
		return nil, fmt.Errorf("%w: %d justification votes", ErrMalformed, len(m.just))
	}
	digest := Digest(c.cfg.ChainID, MsgPrevote, hs.height, m.validRound, m.hash, -1)
	seen := make(map[consensus.NodeID]bool, len(m.just))
	votes := make([]*message, 0, len(m.just))
	for _, sig := range m.just {
		id, err := c.recover(digest, sig)
		if err != nil || !hs.vals.Contains(id) || seen[id] {
			return nil, fmt.Errorf("%w: bad justification of round %d", ErrMalformed, m.validRound)
		}
		seen[id] = true
		votes = append(votes, &message{typ: MsgPrevote, height: hs.height, round: m.validRound, hash: m.hash, sig: sig, signer: id, validRound: -1})
	}
	if len(votes) < hs.quorum {
		return nil, fmt.Errorf("%w: justification of round %d has %d votes, quorum %d", ErrMalformed, m.validRound, len(votes), hs.quorum)
	}
	return votes, nil
}

func (c *Core) addProposal(m *message) {
	rs := c.roundState(m.round)
	if rs == nil {
		return
	}
	if first := rs.proposal; first != nil {
		if first.hash == m.hash && first.validRound == m.validRound {
			return
		}
		c.recordEvidence(m.signer, signedOf(first), signedOf(m))
		if len(rs.proposals) < maxProposalsPerRound && rs.proposals[m.hash] == nil {
			rs.proposals[m.hash] = m
			c.learnBlock(m.block, unknown)
		}
		return
	}
	rs.proposal = m
	rs.proposals[m.hash] = m
	c.learnBlock(m.block, unknown)
}

// learnBlock records a block of the current height. A block that does not
// extend the head is invalid without asking the host.
func (c *Core) learnBlock(b *types.Block, v validity) {
	hs := c.hs
	h := b.Hash()
	if bi := hs.blocks[h]; bi != nil {
		if v == valid {
			bi.validity = valid
		}
		return
	}
	if len(hs.blocks) >= maxBlocksPerHeight {
		return
	}
	if b.NumberU64() != hs.height || b.ParentHash() != c.head.Hash {
		v = invalid
	}
	hs.blocks[h] = &blockInfo{block: b, validity: v}
}

func (c *Core) noteRound(id consensus.NodeID, r int64) {
	hs := c.hs
	if prev, ok := hs.maxRound[id]; !ok || r > prev {
		hs.maxRound[id] = r
		if r > hs.round {
			hs.roundNoted = true
		}
	}
}

func (c *Core) addVote(m *message) {
	hs := c.hs
	rs := c.roundState(m.round)
	if rs == nil {
		return
	}
	vs := rs.prevotes
	if m.typ == MsgPrecommit {
		vs = rs.precommits
	}
	if prev, ok := vs.by[m.signer]; ok {
		if prev.hash != m.hash {
			first := Signed{Type: m.typ, Height: m.height, Round: m.round, Hash: prev.hash, ValidRound: -1, Sig: prev.sig}
			c.recordEvidence(m.signer, first, signedOf(m))
		}
		if c.cfg.mutation != mutCountEvery || bytes.Equal(prev.sig, m.sig) {
			return
		}
		vs.extra = append(vs.extra, voteEntry{hash: m.hash, sig: m.sig})
	} else {
		vs.by[m.signer] = voteEntry{hash: m.hash, sig: m.sig}
	}
	vs.count[m.hash]++
	vs.total++
	if m.typ == MsgPrecommit && m.hash != (common.Hash{}) && vs.count[m.hash] == hs.quorum {
		hs.candidates = append(hs.candidates, candidate{round: m.round, hash: m.hash})
	}
}

// sigsFor returns the signatures of the votes for hash, in validator order
// (extra votes of mutCountEvery last).
func (c *Core) sigsFor(vs *voteSet, hash common.Hash) [][]byte {
	var sigs [][]byte
	for _, id := range c.hs.vals.ids {
		if e, ok := vs.by[id]; ok && e.hash == hash {
			sigs = append(sigs, e.sig)
		}
	}
	for _, e := range vs.extra {
		if e.hash == hash {
			sigs = append(sigs, e.sig)
		}
	}
	return sigs
}

func (c *Core) recordEvidence(who consensus.NodeID, a, b Signed) {
	k := evKey{who: who, typ: a.Type, height: a.Height, round: a.Round}
	if _, ok := c.evidenceKey[k]; ok {
		return
	}
	if len(c.evidence) >= c.cfg.MaxEvidence {
		old := c.evidence[0]
		delete(c.evidenceKey, evKey{who: old.Validator, typ: old.First.Type, height: old.First.Height, round: old.First.Round})
		c.evidence = append(c.evidence[:0], c.evidence[1:]...)
	}
	c.evidenceKey[k] = struct{}{}
	c.evidence = append(c.evidence, Evidence{Validator: who, First: a, Second: b})
	c.stats.Equivocations++
}

// Built hands the core the block built for Ready.Build (or the error of
// building it). An answer to an older request (the round moved on) is
// ignored.
func (c *Core) Built(req consensus.BuildRequest, block *types.Block, err error) {
	hs := c.hs
	if req.ID == c.buildID && hs.polling {
		hs.polling = false
		if hs.step != stepNewHeight || err != nil || block == nil || block.NumberU64() != hs.height || block.ParentHash() != c.head.Hash {
			return
		}
		hs.idleBlock = block
		c.startRound(0)
		c.process()
		return
	}
	if req.ID == c.buildID && hs.early {
		hs.early = false
		if hs.step == stepNewHeight {
			if err == nil && block != nil && block.NumberU64() == hs.height && block.ParentHash() == c.head.Hash {
				hs.earlyBlock = block
			}
			return
		}
	}
	if req.ID != c.buildID || !hs.building || hs.step != stepPropose {
		return
	}
	hs.building = false
	if err != nil || block == nil || block.NumberU64() != hs.height || block.ParentHash() != c.head.Hash {
		return // the propose timeout moves the round on
	}
	c.propose(block, -1, nil)
	c.process()
}

// Served sends a peer that catches up the committed blocks the driver read
// for Ready.Serve, each as a sync block with its certificate.
func (c *Core) Served(req consensus.ServeRequest, blocks []consensus.SealedBlock) {
	for _, sb := range blocks {
		c.sendTo(req.To, MsgSyncBlock, EncodeSyncBlock(sb.Block, sb.Seal))
	}
}

// Verified gives the result of verifying a block of Ready.Verify.
func (c *Core) Verified(hash common.Hash, err error) {
	bi := c.hs.blocks[hash]
	if bi == nil || bi.validity != pending {
		return
	}
	if err != nil {
		bi.validity = invalid
	} else {
		bi.validity = valid
	}
	c.process()
}

// ---- signing ----

func (c *Core) sign(digest common.Hash) []byte {
	sig, err := c.signer.Sign(digest)
	if err != nil {
		// A key that cannot sign is a broken node, not a network fault.
		panic(fmt.Sprintf("bft: sign with node key: %v", err))
	}
	return sig
}

func (c *Core) propose(block *types.Block, validRound int64, just [][]byte) {
	hs := c.hs
	hash := block.Hash()
	if hs.ownProposal != nil && hs.ownProposalRound == hs.round {
		panic(fmt.Sprintf("bft: second proposal at height %d round %d", hs.height, hs.round))
	}
	sig := c.sign(Digest(c.cfg.ChainID, MsgProposal, hs.height, hs.round, hash, validRound))
	payload := encodeProposal(hs.height, hs.round, validRound, block, just, sig)
	// The state keeps the full form; the wire may carry the compact one
	// (the same signature), which is also what is re-sent.
	wire := payload
	if c.cfg.Compact && compactable(block) {
		wire = encodeCompactProposal(hs.height, hs.round, validRound, block, just, sig)
	}
	hs.ownProposal, hs.ownProposalRound = payload, hs.round
	c.keepOwn(hs.round, MsgProposal, wire)
	c.dirty = true
	c.send(PeekType(wire), wire)
	c.learnBlock(block, valid)
	c.addProposal(&message{typ: MsgProposal, height: hs.height, round: hs.round, hash: hash,
		validRound: validRound, block: block, just: just, sig: sig, signer: c.self, payload: payload})
}

// signVote signs and sends this validator's vote of typ in the current
// round. Observers sign nothing. Signing two different votes for one
// (height, round, type) would be equivocation: it is a broken invariant.
func (c *Core) signVote(typ MsgType, hash common.Hash) {
	hs := c.hs
	if !hs.validator {
		return
	}
	own, ownRound := &hs.ownPrevote, &hs.ownPrevoteRound
	if typ == MsgPrecommit {
		own, ownRound = &hs.ownPrecommit, &hs.ownPrecommitRound
	}
	if *own != nil && *ownRound >= hs.round {
		panic(fmt.Sprintf("bft: second %s at height %d round %d (last in round %d)", typ, hs.height, hs.round, *ownRound))
	}
	sig := c.sign(Digest(c.cfg.ChainID, typ, hs.height, hs.round, hash, -1))
	payload := encodeVote(typ, hs.height, hs.round, hash, sig)
	*own, *ownRound = payload, hs.round
	c.keepOwn(hs.round, typ, payload)
	c.dirty = true
	c.send(typ, payload)
	c.addVote(&message{typ: typ, height: hs.height, round: hs.round, hash: hash, sig: sig, signer: c.self, validRound: -1, payload: payload})
}

func (c *Core) send(typ MsgType, payload []byte) {
	c.lastSent = c.now
	c.stats.MsgsOut[typ]++
	c.stats.BytesOut[typ] += uint64(len(payload))
	c.rd.Messages = append(c.rd.Messages, consensus.Message{Broadcast: true, Payload: payload})
}

func (c *Core) sendTo(to consensus.NodeID, typ MsgType, payload []byte) {
	c.stats.MsgsOut[typ]++
	c.stats.BytesOut[typ] += uint64(len(payload))
	c.rd.Messages = append(c.rd.Messages, consensus.Message{To: to, Payload: payload})
}

func (c *Core) sendStatus() {
	hs := c.hs
	if !hs.validator {
		return
	}
	if c.status == nil || c.statusRound != hs.round || c.statusHeight != hs.height {
		sig := c.sign(Digest(c.cfg.ChainID, MsgStatus, hs.height, hs.round, common.Hash{}, -1))
		c.status, c.statusHeight, c.statusRound = encodeStatus(hs.height, hs.round, sig), hs.height, hs.round
	}
	c.send(MsgStatus, c.status)
}

func (c *Core) keepOwn(round int64, typ MsgType, payload []byte) {
	hs := c.hs
	o := hs.own[round]
	if o == nil {
		o = new([numMsgTypes][]byte)
		hs.own[round] = o
	}
	o[typ] = payload
}

// rebroadcast re-sends what this validator signed at this height, and its
// status, once RebroadcastTicks passed without a broadcast: a validator
// that moves on sends new messages instead, so a height decided within
// the interval re-sends nothing (with 16 validators a re-sent proposal is
// 15 more copies of the block). Tendermint's liveness argument assumes
// that every message of a correct validator eventually arrives, whatever
// round the receiver is in; with lossy links that takes re-sending while
// a validator waits. Each time: all messages of the
// current and the previous round (peers are most often one round apart),
// and the votes of one older round in turn, so the cost per tick is
// bounded and every kept round comes back regularly.
func (c *Core) rebroadcast() {
	hs := c.hs
	if !hs.validator || hs.step == stepNewHeight {
		return
	}
	resend := func(r int64, proposal bool) {
		o := hs.own[r]
		if o == nil {
			return
		}
		for _, typ := range []MsgType{MsgProposal, MsgPrevote, MsgPrecommit} {
			if o[typ] != nil && (proposal || typ != MsgProposal) {
				c.send(typ, o[typ])
			}
		}
	}
	resend(hs.round, true)
	if hs.round > 0 {
		resend(hs.round-1, true)
	}
	if older := hs.round - 1 - hs.minRound; older > 0 {
		resend(hs.minRound+hs.oldRR%older, false)
		hs.oldRR++
	}
	c.sendStatus()
}

// ---- the rules ----

// process applies the algorithm's rules until none applies. Each rule
// moves the state forward (a step, a round, a height, or a once-per-round
// flag), so the loop ends; the bound is an assertion.
func (c *Core) process() {
	for i := 0; i < maxRuleSteps; i++ {
		if !c.applyRule() {
			return
		}
	}
	panic(fmt.Sprintf("bft: rules did not settle at height %d round %d", c.hs.height, c.hs.round))
}

func (c *Core) applyRule() bool {
	hs := c.hs
	if c.tryDecide() {
		return true
	}
	if c.tryRoundSkip() {
		return true
	}
	if hs.step == stepNewHeight {
		if hs.idle && c.roundZeroStarted() {
			c.startRound(0)
			return true
		}
		return false
	}
	rs := c.roundState(hs.round)
	if hs.step == stepPropose && c.tryPrevote(rs) {
		return true
	}
	if hs.step >= stepPrevote && !rs.lockDone && c.tryLock(rs) {
		return true
	}
	if hs.step == stepPrevote {
		if rs.prevotes.count[common.Hash{}] >= hs.quorum {
			c.signVote(MsgPrecommit, common.Hash{})
			hs.step = stepPrecommit
			return true
		}
		if !rs.prevoteTimer && rs.prevotes.total >= hs.quorum {
			rs.prevoteTimer = true
			hs.prevoteAt = c.now + c.timeout(hs.tm.prevote, hs.round)
			return true
		}
	}
	if !rs.precommitTimer && rs.precommits.total >= hs.quorum {
		rs.precommitTimer = true
		hs.precommitAt = c.now + c.timeout(hs.tm.precommit, hs.round)
		return true
	}
	return false
}

// tryDecide: a quorum of precommits for a block in any round, and the
// block known, decide it.
func (c *Core) tryDecide() bool {
	hs := c.hs
	if c.holding {
		return false
	}
	for _, cd := range hs.candidates {
		bi := hs.blocks[cd.hash]
		if bi == nil {
			continue
		}
		rs := hs.rounds[cd.round]
		seal := EncodeCertificate(Certificate{Round: cd.round, Sigs: c.sigsFor(rs.precommits, cd.hash)})
		c.decide(bi.block, seal, cd.round, false)
		return true
	}
	return false
}

// tryRoundSkip: messages of a weak quorum of validators from rounds above
// ours mean a correct validator is there: go to the highest such round.
func (c *Core) tryRoundSkip() bool {
	hs := c.hs
	if !hs.roundNoted {
		return false
	}
	hs.roundNoted = false
	weak := hs.vals.Weak()
	var ahead []int64
	for _, r := range hs.maxRound {
		if r > hs.round {
			ahead = append(ahead, r)
		}
	}
	if len(ahead) < weak {
		return false
	}
	sort.Slice(ahead, func(i, j int) bool { return ahead[i] > ahead[j] })
	c.stats.RoundSkips++
	c.startRound(ahead[weak-1])
	return true
}

// needValidity returns what is known of a block's validity, asking the
// node to verify it the first time.
func (c *Core) needValidity(bi *blockInfo) validity {
	if bi.validity == unknown {
		bi.validity = pending
		c.rd.Verify = append(c.rd.Verify, bi.block)
	}
	return bi.validity
}

// proposalUnderWay reports that the current round's proposal is here and
// its validity not yet known: being verified, or a compact proposal whose
// missing transactions are being fetched.
func (c *Core) proposalUnderWay() bool {
	hs := c.hs
	if rs := hs.rounds[hs.round]; rs != nil && rs.proposal != nil {
		if bi := hs.blocks[rs.proposal.hash]; bi != nil && bi.validity == pending {
			return true
		}
	}
	for _, p := range hs.partials {
		if p.m.round == hs.round {
			return true
		}
	}
	return false
}

// tryPrevote is the prevote rule of the propose step (lines 22 and 28 of
// the paper): prevote the round's proposal if it is valid and we are not
// locked on another block — or locked no later than the round in which a
// quorum prevoted the re-proposed block; otherwise prevote nil.
func (c *Core) tryPrevote(rs *roundState) bool {
	hs := c.hs
	p := rs.proposal
	if p == nil {
		return false
	}
	bi := hs.blocks[p.hash]
	if bi == nil {
		return false
	}
	v := c.needValidity(bi)
	if v == pending {
		return false
	}
	free := hs.lockedRound < 0 || hs.lockedBlock.Hash() == p.hash
	if p.validRound >= 0 {
		free = free || hs.lockedRound <= p.validRound
	}
	if c.cfg.mutation == mutNoLockCheck {
		free = true
	}
	hash := common.Hash{}
	if v == valid && free {
		hash = p.hash
	}
	c.signVote(MsgPrevote, hash)
	hs.step = stepPrevote
	return true
}

// tryLock is the lock / valid-value rule (line 36): a quorum of prevotes
// in this round for a valid block we have. In the prevote step we lock on
// it and precommit it; in any later step we still remember it as the valid
// block, which a future proposer of ours re-proposes.
func (c *Core) tryLock(rs *roundState) bool {
	hs := c.hs
	var quorate []common.Hash
	for hash, n := range rs.prevotes.count {
		if n >= hs.quorum && hash != (common.Hash{}) {
			quorate = append(quorate, hash)
		}
	}
	// One hash at most, unless more than f validators are Byzantine.
	sort.Slice(quorate, func(i, j int) bool { return bytes.Compare(quorate[i][:], quorate[j][:]) < 0 })
	for _, hash := range quorate {
		bi := hs.blocks[hash]
		if bi == nil || c.needValidity(bi) != valid {
			continue
		}
		rs.lockDone = true
		if hs.step == stepPrevote {
			hs.lockedRound, hs.lockedBlock = hs.round, bi.block
			c.signVote(MsgPrecommit, hash)
			hs.step = stepPrecommit
		}
		hs.validRound, hs.validBlock = hs.round, bi.block
		hs.validJust = c.sigsFor(rs.prevotes, hash)
		c.dirty = true
		return true
	}
	return false
}

func (c *Core) decide(block *types.Block, seal []byte, round int64, synced bool) {
	c.rd.Commits = append(c.rd.Commits, consensus.SealedBlock{Block: block, Seal: seal})
	if synced {
		c.stats.Synced++
	} else {
		c.stats.Decided++
		// Peers one height ahead are normal right after a decision: give
		// consensus messages a chance before asking for blocks.
		c.syncWait = c.now + uint64(c.cfg.SyncRetryTicks)
	}
	c.stats.LastCommitRound = round
	c.stats.CommitRounds[min(round, RoundBuckets-1)]++
	c.head = Head{Number: block.NumberU64(), Hash: block.Hash()}
	c.parent = block.Header()
	c.holding = true
	c.startHeight()
}

// ---- future heights and catch-up ----

// hint notes that peer from is at a height above ours: it can serve the
// blocks we lack.
func (c *Core) hint(from consensus.NodeID, height uint64) {
	if height <= c.hs.height {
		return
	}
	if _, ok := c.syncHint[from]; !ok && len(c.syncHint) >= MaxValidators {
		return
	}
	if height > c.syncHint[from] {
		c.syncHint[from] = height
	}
}

func (c *Core) buffer(from consensus.NodeID, m *message) {
	if m.typ == MsgStatus || m.height != c.hs.height+1 {
		return
	}
	key := crypto.Keccak256Hash(m.payload)
	if _, dup := c.futureSeen[key]; dup {
		c.stats.Duplicates++
		return
	}
	if len(c.future) >= c.cfg.MaxFutureMessages || c.futureBy[from] >= c.cfg.MaxFuturePerPeer {
		c.stats.FutureDropped++
		return
	}
	c.stats.Buffered++
	c.future = append(c.future, buffered{from: from, height: m.height, payload: m.payload})
	c.futureBy[from]++
	c.futureSeen[key] = struct{}{}
}

func (c *Core) replayFuture() {
	old := c.future
	c.future = nil
	c.futureBy = make(map[consensus.NodeID]int)
	c.futureSeen = make(map[common.Hash]struct{})
	for _, b := range old {
		switch {
		case b.height == c.hs.height:
			if err := c.step(b.from, b.payload); err != nil && !errors.Is(err, ErrFuture) {
				c.stats.Dropped++
			}
		case b.height > c.hs.height:
			c.future = append(c.future, b)
			c.futureBy[b.from]++
		}
	}
}

// requestSync asks a peer known to be ahead for the blocks we lack, at
// most once per SyncRetryTicks; peers that hinted are asked in turn.
func (c *Core) requestSync() {
	if len(c.syncHint) == 0 || c.now < c.syncWait {
		return
	}
	if c.syncAt != 0 && c.now-c.syncAt < uint64(c.cfg.SyncRetryTicks) && c.hs.height < c.syncUntil {
		return // a batch is on its way
	}
	peers := make([]consensus.NodeID, 0, len(c.syncHint))
	for id, h := range c.syncHint {
		if h > c.hs.height {
			peers = append(peers, id)
		}
	}
	if len(peers) == 0 {
		return
	}
	sort.Slice(peers, func(i, j int) bool { return bytes.Compare(peers[i][:], peers[j][:]) < 0 })
	peer := peers[c.syncRR%uint64(len(peers))]
	c.syncRR++
	c.syncAt, c.syncUntil = c.now, c.hs.height+uint64(c.cfg.MaxSyncBlocks)
	c.stats.SyncRequests++
	c.sendTo(peer, MsgSyncRequest, EncodeSyncRequest(c.hs.height))
}

func (c *Core) onSyncRequest(from consensus.NodeID, payload []byte) error {
	m, err := decodeMessage(payload)
	if err != nil {
		return err
	}
	if m.height == 0 || m.height > c.head.Number {
		return fmt.Errorf("%w: sync from %d, head %d", ErrIgnored, m.height, c.head.Number)
	}
	gap := uint64(max(c.cfg.SyncRetryTicks/2, 1))
	if last, ok := c.served[from]; ok && c.now-last < gap {
		return fmt.Errorf("%w: sync request rate", ErrIgnored)
	}
	if len(c.served) >= 4*MaxValidators {
		c.served = make(map[consensus.NodeID]uint64)
	}
	c.served[from] = c.now
	c.stats.SyncServed++
	count := min(c.head.Number-m.height+1, uint64(c.cfg.MaxSyncBlocks))
	c.rd.Serve = append(c.rd.Serve, consensus.ServeRequest{To: from, From: m.height, Count: int(count)})
	return nil
}

func (c *Core) onSyncBlock(from consensus.NodeID, payload []byte) error {
	m, err := decodeMessage(payload)
	if err != nil {
		return err
	}
	hs := c.hs
	switch {
	case m.height < hs.height:
		c.stats.Stale++
		return fmt.Errorf("%w: sync block %d at %d", ErrStale, m.height, hs.height)
	case m.height > hs.height:
		c.hint(from, m.height)
		return fmt.Errorf("%w: sync block %d at %d", ErrIgnored, m.height, hs.height)
	}
	if m.block.ParentHash() != c.head.Hash {
		c.stats.BadSyncBlocks++
		return fmt.Errorf("%w: sync block %d does not extend head %s", ErrIgnored, m.height, c.head.Hash)
	}
	if err := checkBody(m.block); err != nil {
		c.stats.BadSyncBlocks++
		return err
	}
	if _, err := verifyCertificate(c.cfg.ChainID, hs.vals, hs.quorum, c.recover, m.height, m.hash, m.seal); err != nil {
		c.stats.BadSyncBlocks++
		return err
	}
	cert, _ := DecodeCertificate(m.seal)
	c.decide(m.block, m.seal, cert.Round, true)
	return nil
}

// checkBody checks that a block's body matches the roots in its header:
// signatures and certificates cover the header hash only.
func checkBody(b *types.Block) error {
	if types.DeriveSha(b.Transactions(), trie.NewStackTrie(nil)) != b.TxHash() {
		return fmt.Errorf("%w: transactions do not match the header", ErrMalformed)
	}
	if types.CalcUncleHash(b.Uncles()) != b.UncleHash() {
		return fmt.Errorf("%w: uncles do not match the header", ErrMalformed)
	}
	wh := b.Header().WithdrawalsHash
	switch {
	case wh == nil && b.Withdrawals() != nil:
		return fmt.Errorf("%w: withdrawals without a withdrawals root", ErrMalformed)
	case wh != nil && types.DeriveSha(b.Withdrawals(), trie.NewStackTrie(nil)) != *wh:
		return fmt.Errorf("%w: withdrawals do not match the header", ErrMalformed)
	}
	return nil
}
