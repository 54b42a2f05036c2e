package poa

import (
	"bytes"
	"errors"
	"fmt"
	"sort"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/charter-ledger/charter/internal/consensus"
)

// Core is the poa state machine, a consensus.Core. It never reads a clock,
// a socket or a file and starts no goroutine: inputs are Step (a message),
// Tick (a unit of time), Built, Verified and Served (answers to its own
// requests) and SetValidators; outputs come out as consensus.Ready
// batches. Given the same inputs in the same order, two cores produce the
// same outputs.
//
// A Core is not goroutine-safe; one owner drives it (the consensus
// Driver, see New; or the simulator).
//
// The protocol is described in docs/design/poa.md. In short: a validator
// adopts the highest-ballot block it may, then votes for the next ballot
// naming that block as its tip; the authority of a ballot seals once a
// quorum (a majority) voted for it, on the highest tip among the votes; a
// block is committed once a quorum of validators named it as their tip, and
// final (handed to CommitBlock) once committed and FinalityDepth deep.
type Core struct {
	cfg   Config
	id    consensus.NodeID
	sched schedule

	// Persistent (in PersistentState).
	promise   Ballot
	committed BlockRef

	// The block tree: base is the final block; tree holds known blocks
	// above it (all forks); tip is the accepted block the node votes with.
	base *bnode
	tree map[common.Hash]*bnode
	tip  *bnode

	// ackedFinal is the final height the driver has acknowledged with
	// Advance: Commit up to it reached the host, so any SetValidators they
	// caused has been applied. The core acts only up to ackedFinal+Lookahead.
	ackedFinal uint64
	readyFinal uint64 // final height as of the last Ready
	// unacked are blocks handed out in Commit but not yet acknowledged:
	// the driver may crash before they reach the host, so they stay in
	// the persisted chain until Advance.
	unacked    []SealedBlock
	readyCount int // how many of unacked the last Ready carried

	now      uint64 // ticks since start
	idle     uint64 // ticks since the last progress (tip or promise change)
	tipSince uint64 // tick at which the tip last changed

	evidence      map[sealID]*evidence         // votes naming a tip: commit certificates
	tallies       map[Ballot]*tally            // votes for ballots this node seals
	lastVote      map[consensus.NodeID]voteMsg // highest-ballot vote seen from each validator
	myVote        *voteMsg
	announced     tipMsg                           // last tip announcement sent
	sealedAt      map[Ballot]common.Hash           // first sealing seen per ballot
	authFinal     *BlockRef                        // highest block an authority reported final
	building      *Ballot                          // the ballot of the outstanding build request
	buildID       uint64                           // its ID
	serveID       uint64                           // the last serve request's ID
	serving       map[consensus.NodeID]common.Hash // tip asked for by each peer whose fetch waits for final blocks
	buildFailedAt map[Ballot]uint64
	lastFetch     map[consensus.NodeID]uint64
	behind        consensus.NodeID // a peer known to hold blocks beyond our lookahead
	lastServe     map[consensus.NodeID]uint64

	sorted      []*bnode // tree by height then hash; nil when stale
	commitDirty bool     // evidence or tree changed since updateCommitted

	rd    consensus.Ready
	dirty bool // persistent state changed since the last Ready
	stats Stats

	// timings are the period and timeout in force from a height on,
	// ascending: the config's from 0, then governance's changes.
	timings []timing
}

type bnode struct {
	block  *types.Block
	hash   common.Hash
	parent common.Hash
	height uint64
	bal    Ballot           // highest ballot this block is known to be sealed at
	sig    []byte           // signature for bal
	from   consensus.NodeID // who sent it (asked again for missing parents)

	verified, verifying bool
}

func (n *bnode) ballot() Ballot { return n.bal }
func (n *bnode) ref() BlockRef  { return BlockRef{Height: n.height, Ballot: n.bal, Hash: n.hash} }
func (n *bnode) sealed() SealedBlock {
	return SealedBlock{Block: n.block, Ballot: n.bal, Sig: n.sig}
}
func (n *bnode) tipMsg() tipMsg {
	return tipMsg{Height: n.height, BallotH: n.bal.Height, BallotR: n.bal.Round, Hash: n.hash}
}

type sealID struct {
	hash common.Hash
	bal  Ballot
}

type evidence struct {
	height uint64
	voters map[consensus.NodeID]struct{}
}

type tally struct {
	votes map[consensus.NodeID]voteMsg
}

// ErrTooLate is returned by SetValidators for a height the node may
// already have acted on with the old set.
var ErrTooLate = errors.New("poa: validator change too late")

// NewCore makes a core on top of the last block handed to CommitBlock
// (base, with its seal; genesis has a nil seal) and the state persisted by
// an earlier run (zero for a fresh node). cfg must pass Validate after
// EnsureDefaults (NewCore calls both).
//
// The persisted state may be older than the base: the driver commits a
// Ready's blocks before it saves the Ready's state (consensus.Ready), so a
// crash in between leaves the new base and the state of the Ready before.
// Its blocks at or below the base are committed already; blocks above
// that do not extend the base are on a branch the committed block
// abandoned, which the node would leave anyway (adoptTip), so they are
// dropped. The promise is kept whatever the chain.
func NewCore(cfg Config, base *types.Block, baseSeal []byte, st PersistentState) (*Core, error) {
	cfg.EnsureDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if base == nil {
		return nil, errors.New("poa: no base block")
	}
	c := &Core{
		cfg:           cfg,
		id:            cfg.ID(),
		serving:       make(map[consensus.NodeID]common.Hash),
		tree:          make(map[common.Hash]*bnode),
		evidence:      make(map[sealID]*evidence),
		tallies:       make(map[Ballot]*tally),
		lastVote:      make(map[consensus.NodeID]voteMsg),
		sealedAt:      make(map[Ballot]common.Hash),
		buildFailedAt: make(map[Ballot]uint64),
		lastFetch:     make(map[consensus.NodeID]uint64),
		lastServe:     make(map[consensus.NodeID]uint64),
	}
	c.sched.add(0, cfg.Validators)
	for _, ch := range cfg.ValidatorChanges {
		c.sched.add(ch.From, ch.IDs)
	}
	c.timings = []timing{{from: 0, period: cfg.PeriodTicks, timeout: cfg.TimeoutTicks}}
	for _, pc := range cfg.ParamChanges {
		c.timings = append(c.timings, cfg.timingWith(pc.From, pc.Values))
	}
	c.base = &bnode{block: base, hash: base.Hash(), parent: base.ParentHash(), height: base.NumberU64(), verified: true}
	if baseSeal != nil {
		bal, sig, err := ParseSeal(baseSeal)
		if err != nil {
			return nil, fmt.Errorf("poa: seal of base block %d: %w", c.base.height, err)
		}
		c.base.bal, c.base.sig = bal, sig
	} else {
		c.base.bal = Ballot{Height: c.base.height}
	}
	c.tip = c.base
	c.ackedFinal, c.readyFinal = c.base.height, c.base.height
	c.promise = maxBallot(st.Promise, c.base.ballot())
	c.committed = c.base.ref()

	// Restore the accepted chain above the base. Blocks at or below the
	// base were committed before the crash; the rest must link up.
	parent := c.base
	for _, sb := range st.Chain {
		h := sb.Block.NumberU64()
		if h <= c.base.height {
			continue
		}
		if h != parent.height+1 || sb.Block.ParentHash() != parent.hash {
			break // a branch the committed chain abandoned (see above)
		}
		n := &bnode{block: sb.Block, hash: sb.Block.Hash(), parent: parent.hash, height: h, bal: sb.Ballot, sig: sb.Sig}
		c.addNode(n)
		c.sealedAt[n.ballot()] = n.hash
		parent = n
	}
	c.tip = parent
	c.promise = maxBallot(c.promise, c.tip.ballot())
	if st.Committed.Height > c.base.height {
		if n := c.tree[st.Committed.Hash]; n != nil && n.height == st.Committed.Height {
			c.committed = n.ref()
		}
	}
	c.reconcile()
	return c, nil
}

// ID is this node's id.
func (c *Core) ID() consensus.NodeID { return c.id }

// Counters returns the drop counters.
func (c *Core) Counters() Stats { return c.stats }

// Stats implements consensus.Core: the tip's height, the rounds that timed
// out, and every message dropped.
func (c *Core) Stats() consensus.Stats {
	s := c.stats
	return consensus.Stats{
		Height:       c.tip.height,
		Validators:   c.sched.size(c.tip.height + 1),
		RoundChanges: s.Timeouts,
		Timeouts:     []consensus.StepCount{{Step: "round", Count: s.Timeouts}},
		Dropped:      s.BadMessages + s.BadSeals + s.Equivocation + s.Stale + s.TooFar + s.Full + s.Orphans,
	}
}

// Err implements consensus.Core: a broken invariant panics instead.
func (c *Core) Err() error { return nil }

// Status returns the core's position.
func (c *Core) Status() Status {
	return Status{Tip: c.tip.ref(), Final: c.base.height, Committed: c.committed, Promise: c.promise}
}

// ---- inputs ----

// Tick advances the core's time by one tick.
func (c *Core) Tick() {
	c.now++
	c.idle++
	if c.idle >= c.timeout() {
		c.onTimeout()
	}
	if c.behind != (consensus.NodeID{}) {
		c.fetch(c.behind, common.Hash{}) // catching up: next batch
	}
	c.reconcile()
}

// Notify tells the core that transactions wait in the pool. Blocks are
// sealed every period whether or not transactions wait (confirmations
// need blocks on top), so there is nothing to do.
func (c *Core) Notify([]*types.Transaction) {}

// errSelf is Step's answer to a message from this node's own id.
var errSelf = errors.New("poa: message from this node's id")

// Step takes one message from a peer. Bad, stale and duplicate messages
// are dropped and counted in Counters; Step returns only decoding errors.
func (c *Core) Step(from consensus.NodeID, payload []byte) error {
	if from == c.id {
		return errSelf
	}
	m, err := decode(payload, c.cfg.MaxMessageBytes)
	if err != nil {
		c.stats.BadMessages++
		return err
	}
	switch {
	case m.block != nil:
		c.onBlock(from, *m.block)
	case m.vote != nil:
		c.onVote(from, *m.vote)
	case m.tip != nil:
		c.onTip(from, *m.tip)
	case m.fetch != nil:
		c.onFetch(from, *m.fetch)
	case m.blocks != nil:
		c.onBlocks(from, *m.blocks)
	}
	c.reconcile()
	return nil
}

// Built answers the build request of Ready (the block, or the error).
func (c *Core) Built(req consensus.BuildRequest, block *types.Block, err error) {
	if c.building == nil || req.ID != c.buildID {
		return
	}
	b := *c.building
	c.building = nil
	if err != nil || block == nil || block.NumberU64() != req.Parent.Number.Uint64()+1 || block.ParentHash() != req.Parent.Hash() {
		c.buildFailedAt[b] = c.now
		c.reconcile()
		return
	}
	// The ballot may have passed while the host was building.
	if b.Less(c.promise) || !c.tip.ballot().Less(b) || c.get(block.ParentHash()) == nil {
		c.reconcile()
		return
	}
	sb, err := Seal(block, b, c.cfg.Key)
	if err != nil {
		c.buildFailedAt[b] = c.now
		c.reconcile()
		return
	}
	n := c.tree[sb.Block.Hash()]
	if n == nil {
		n = &bnode{block: block, hash: block.Hash(), parent: block.ParentHash(), height: block.NumberU64()}
		c.addNode(n)
	}
	if n.bal.Less(b) {
		n.bal, n.sig = b, sb.Sig
	}
	n.verified = true
	c.sealedAt[b] = n.hash
	c.send(consensus.NodeID{}, encodeBlock(sb))
	c.reconcile() // adopts the new block: its ballot is the highest allowed
}

// Verified answers a block of Ready.Verify.
func (c *Core) Verified(hash common.Hash, err error) {
	n := c.tree[hash]
	if n == nil {
		return
	}
	n.verifying = false
	if err != nil {
		c.stats.Invalid++
		c.removeSubtree(n)
	} else {
		n.verified = true
	}
	c.reconcile()
}

// SetValidators replaces the validator set from height from on. Every
// node must make the same calls (governance executes them in block
// processing) before acting at that height, which the core guarantees for
// from >= ActivationHeight(g, Lookahead) when called while block g is
// committed. It fails with ErrTooLate if this node may already have used
// the old set at from.
func (c *Core) SetValidators(from uint64, ids []consensus.NodeID) error {
	if err := validateSet(ids); err != nil {
		return fmt.Errorf("poa: SetValidators: %w", err)
	}
	if limit := c.ackedFinal + c.cfg.Lookahead; from <= limit {
		return fmt.Errorf("%w: height %d, this node may act up to %d", ErrTooLate, from, limit)
	}
	c.sched.add(from, ids)
	c.commitDirty = true
	return nil
}

// ---- outputs ----

// HasReady reports whether Ready has work.
func (c *Core) HasReady() bool { return c.dirty || !c.rd.Empty() }

// Ready takes the pending work: final blocks to commit, the state to save
// (EncodeState of PersistentState), messages, a build, verifications and
// catch-up reads. Call Advance once it was carried out.
func (c *Core) Ready() consensus.Ready {
	rd := c.rd
	c.rd = consensus.Ready{}
	if c.dirty {
		rd.State = EncodeState(c.persistent())
		c.dirty = false
	}
	c.readyFinal = c.base.height
	c.readyCount = len(c.unacked)
	return rd
}

// Advance acknowledges the last Ready.
func (c *Core) Advance() {
	if c.ackedFinal != c.readyFinal {
		c.commitDirty = true // evidence above the old lookahead now counts
	}
	c.ackedFinal = c.readyFinal
	c.pruneTimings(c.ackedFinal)
	c.unacked = append(c.unacked[:0], c.unacked[c.readyCount:]...)
	c.readyCount = 0
	c.reconcile()
}

func (c *Core) persistent() PersistentState {
	st := PersistentState{Promise: c.promise, Committed: c.committed}
	var chain []SealedBlock
	for n := c.tip; n != c.base && n != nil; n = c.tree[n.parent] {
		chain = append(chain, n.sealed())
	}
	st.Chain = append(st.Chain, c.unacked...)
	for i := len(chain) - 1; i >= 0; i-- {
		st.Chain = append(st.Chain, chain[i])
	}
	return st
}

// Head names the newest block with at least conf blocks on top of it in
// this node's chain: its header when the core holds it, else the number
// of the committed block for the driver to read (the genesis if the chain
// is shorter than conf).
func (c *Core) Head(conf uint64) consensus.HeadRef {
	h, n := c.headLocal(conf)
	return consensus.HeadRef{Header: h, Number: n}
}

func (c *Core) headLocal(conf uint64) (*types.Header, uint64) {
	target := uint64(0)
	if c.tip.height > conf {
		target = c.tip.height - conf
	}
	if target >= c.base.height {
		if n := c.ancestor(c.tip, target); n != nil {
			return n.block.Header(), 0
		}
	}
	// Final but possibly not yet written by the driver.
	for _, sb := range c.unacked {
		if sb.Block.NumberU64() == target {
			return sb.Block.Header(), 0
		}
	}
	return nil, target
}

// send queues a message; a zero to broadcasts it.
func (c *Core) send(to consensus.NodeID, payload []byte) {
	c.rd.Messages = append(c.rd.Messages, consensus.Message{To: to, Broadcast: to == (consensus.NodeID{}), Payload: payload})
}

// ---- tree helpers ----

func (c *Core) get(h common.Hash) *bnode {
	if h == c.base.hash {
		return c.base
	}
	return c.tree[h]
}

// ancestor walks from n down to height h; nil if a link is missing or h is
// out of range.
func (c *Core) ancestor(n *bnode, h uint64) *bnode {
	for n != nil && n.height > h {
		if n.height-1 < c.base.height {
			return nil
		}
		n = c.get(n.parent)
	}
	if n == nil || n.height != h {
		return nil
	}
	return n
}

func (c *Core) descends(n, anc *bnode) bool {
	return anc != nil && c.ancestor(n, anc.height) == anc
}

func (c *Core) connected(n *bnode) bool { return c.descends(n, c.base) }

func (c *Core) addNode(n *bnode) {
	c.tree[n.hash] = n
	c.sorted = nil
	c.commitDirty = true
}

func (c *Core) delNode(h common.Hash) {
	delete(c.tree, h)
	c.sorted = nil
}

// sortedNodes lists the tree by height, then hash, for deterministic scans.
// The slice is shared until the tree changes: callers that change the tree
// while iterating keep iterating the old slice, which is safe.
func (c *Core) sortedNodes() []*bnode {
	if c.sorted != nil {
		return c.sorted
	}
	ns := make([]*bnode, 0, len(c.tree))
	for _, n := range c.tree {
		ns = append(ns, n)
	}
	sort.Slice(ns, func(i, j int) bool {
		if ns[i].height != ns[j].height {
			return ns[i].height < ns[j].height
		}
		return bytes.Compare(ns[i].hash[:], ns[j].hash[:]) < 0
	})
	c.sorted = ns
	return ns
}

func (c *Core) removeSubtree(root *bnode) {
	for _, n := range c.sortedNodes() {
		if n == root || c.descends(n, root) {
			c.delNode(n.hash)
			if n == c.tip {
				// Only verified blocks become the tip, and verification does
				// not fail later; keep the invariant anyway.
				panic(fmt.Sprintf("poa: tip %d %s removed as invalid", n.height, n.hash))
			}
		}
	}
}

func (c *Core) limit() uint64 { return c.ackedFinal + c.cfg.Lookahead }

func (c *Core) quorum(h uint64) int {
	if c.cfg.mutant.quorum > 0 {
		return c.cfg.mutant.quorum
	}
	return c.sched.size(h)/2 + 1
}

// ---- messages ----

func (c *Core) onBlock(from consensus.NodeID, sb SealedBlock) bool {
	h := sb.Block.NumberU64()
	if h <= c.base.height {
		c.stats.Stale++
		return false
	}
	b := sb.Ballot
	if b.Height > c.limit() {
		// The seal cannot be checked before the validator set at the
		// ballot's height is known; the sender is ahead of us. Keep
		// asking it, a lookahead at a time (see Tick).
		c.stats.TooFar++
		c.catchUpFrom(from)
		return false
	}
	hash := sb.Block.Hash()
	signer, err := c.cfg.recoverFn(SealHash(hash, b), sb.Sig)
	if err != nil || signer != c.sched.leader(b) {
		c.stats.BadSeals++
		return false
	}
	if prev, ok := c.sealedAt[b]; ok && prev != hash {
		c.stats.Equivocation++
		return false
	} else if !ok && len(c.sealedAt) < c.maxEntries() {
		c.sealedAt[b] = hash
	}
	if n := c.tree[hash]; n != nil {
		c.resealed(n, sb)
		return true
	}
	if len(c.tree) >= c.cfg.MaxPendingBlocks {
		c.stats.Full++
		return false
	}
	parent := sb.Block.ParentHash()
	if h-1 == c.base.height && parent != c.base.hash {
		c.stats.Orphans++
		return false
	}
	c.addNode(&bnode{block: sb.Block, hash: hash, parent: parent, height: h, bal: b, sig: sb.Sig, from: from})
	if c.get(parent) == nil {
		c.fetch(from, parent)
	}
	return true
}

// resealed handles a known block sealed again at a later round (same
// content, a later ballot). Off the node's chain the later sealing simply
// replaces the earlier one. On the chain, the round is part of what the
// node accepted and names in its votes, so only the tip may move to the
// later sealing, and only as a fresh acceptance (at or above the promise).
func (c *Core) resealed(n *bnode, sb SealedBlock) {
	b := sb.Ballot
	if !n.bal.Less(b) {
		return
	}
	switch {
	case n == c.tip:
		if b.Less(c.promise) {
			return
		}
		c.promise = b
		c.dirty = true
	case c.descends(c.tip, n):
		return
	}
	n.bal, n.sig = b, sb.Sig
}

func (c *Core) onVote(from consensus.NodeID, v voteMsg) {
	b := v.ballot()
	// Commit evidence: the voter adopted the named tip.
	c.addEvidence(from, v.Tip)
	if b.Height <= c.limit() && c.elector(b.Height, from) {
		if prev, ok := c.lastVote[from]; !ok || prev.ballot().Less(b) {
			c.lastVote[from] = v
		}
		if c.sched.leader(b) == c.id && c.base.height < b.Height {
			t := c.tallies[b]
			if t == nil && len(c.tallies) < c.maxEntries() {
				t = &tally{votes: make(map[consensus.NodeID]voteMsg)}
				c.tallies[b] = t
			}
			if t != nil {
				t.votes[from] = v
			}
		}
	}
	if from == c.id {
		return
	}
	// Round change: another validator gave up on the round we are in and
	// moved to a later round at the same height. Follow it at once, so
	// that rounds stay in step across validators whose timers drift (in a
	// crash-fault setting one such vote is enough; a non-validator's votes
	// never get here).
	if b.Height == c.promise.Height && c.promise.Round < b.Round && c.elector(b.Height, from) && c.canVote(b) {
		c.vote(b)
	}
	// Catch up: the voter has a tip we lack, or is ahead of our lookahead.
	// A validator votes only within its own limit, so a vote above ours
	// means its driver acknowledged final blocks we lack; their catch-up
	// answer is the only way left to learn they are committed when the
	// votes that committed them are gone (simulation seed 28422784126:
	// the tips named since are above them, and a validator that named
	// them died). Waiting for a vote two heights above the limit leaves
	// a node whose tip sits at its limit, and the others voting one
	// height above it, stuck for good.
	if v.Tip.BallotH > c.limit() || b.Height > c.limit() {
		c.catchUpFrom(from)
	} else if v.Tip.Height > c.base.height && c.tip.ballot().Less(v.Tip.ballot()) {
		if n := c.get(v.Tip.Hash); n == nil || !c.connected(n) {
			c.fetch(from, v.Tip.Hash)
		}
	}
}

// addEvidence records that validator from adopted block t.Hash (number
// t.Height) as sealed at t's ballot. Counted against the set at t.Height.
func (c *Core) addEvidence(from consensus.NodeID, t tipMsg) {
	height, hash := t.Height, t.Hash
	if height <= c.base.height || t.BallotH > c.limit() || !c.sched.member(height, from) {
		return
	}
	id := sealID{hash, t.ballot()}
	ev := c.evidence[id]
	if ev == nil && len(c.evidence) < c.maxEntries() {
		ev = &evidence{height: height, voters: make(map[consensus.NodeID]struct{})}
		c.evidence[id] = ev
	}
	if ev != nil && ev.height == height {
		if _, dup := ev.voters[from]; !dup {
			ev.voters[from] = struct{}{}
			c.commitDirty = true
		}
	}
}

func (c *Core) maxEntries() int { return 4 * c.cfg.MaxPendingBlocks }

func (c *Core) onFetch(from consensus.NodeID, f fetchMsg) {
	if last, ok := c.lastServe[from]; ok && last == c.now {
		return // one answer per peer per tick
	}
	c.lastServe[from] = c.now
	from1 := max64(f.From, 1)
	if from1 > c.ackedFinal {
		c.answerFetch(from, f.Tip, nil)
		return
	}
	// Final blocks are the host's: ask the driver to read them, answer in
	// Served. One outstanding read per peer (the rate limit above).
	if _, waiting := c.serving[from]; !waiting && len(c.serving) >= c.maxEntries() {
		return
	}
	c.serving[from] = f.Tip
	c.serveID++
	count := min(c.ackedFinal-from1+1, uint64(c.cfg.MaxFetchBlocks/2))
	c.rd.Serve = append(c.rd.Serve, consensus.ServeRequest{ID: c.serveID, To: from, From: from1, Count: int(count)})
}

// Served answers a fetch with the final blocks the driver read (see
// onFetch), then the chain above them.
func (c *Core) Served(req consensus.ServeRequest, blocks []consensus.SealedBlock) {
	tip, ok := c.serving[req.To]
	if !ok {
		return
	}
	delete(c.serving, req.To)
	c.answerFetch(req.To, tip, blocks)
	c.reconcile()
}

// answerFetch sends a peer final blocks (read from the host) and this
// node's chain above its final block, toward the tip it asked for.
func (c *Core) answerFetch(to consensus.NodeID, tip common.Hash, final []consensus.SealedBlock) {
	var resp blocksMsg
	max := c.cfg.MaxFetchBlocks
	// The answer holds the blocks that fit one message, at least one (the
	// largest block fits: Config.Validate).
	room := c.cfg.MaxMessageBytes - blockMessageOverhead
	fits := func(b *types.Block) bool {
		n := int(b.Size()) + blockMessageOverhead
		if len(resp.Final)+len(resp.Chain) > 0 && n > room {
			return false
		}
		room -= n
		return true
	}
	for _, fb := range final {
		if len(resp.Final) >= max/2 || fb.Block == nil || !fits(fb.Block) {
			break
		}
		bal, sig, err := ParseSeal(fb.Seal)
		if err != nil {
			break
		}
		resp.Final = append(resp.Final, toRLP1(SealedBlock{fb.Block, bal, sig}))
	}
	top := c.tip
	if n := c.tree[tip]; n != nil && c.connected(n) {
		top = n
	}
	var chain []*bnode
	for n := top; n != nil && n != c.base; n = c.tree[n.parent] {
		chain = append(chain, n)
	}
	for i := len(chain) - 1; i >= 0 && len(resp.Final)+len(resp.Chain) < max; i-- {
		n := chain[i]
		if !fits(n.block) {
			break
		}
		resp.Chain = append(resp.Chain, toRLP1(n.sealed()))
	}
	if len(resp.Final)+len(resp.Chain) > 0 {
		c.send(to, encode(kindBlocks, resp))
	}
}

func (c *Core) onBlocks(from consensus.NodeID, m blocksMsg) {
	if c.behind == from {
		c.behind = consensus.NodeID{} // set again below if still ahead
	}
	for _, s := range m.Final {
		sb, err := fromRLP(s)
		if err != nil {
			c.stats.BadMessages++
			return
		}
		h := sb.Block.NumberU64()
		if h <= c.base.height {
			continue
		}
		if !c.onBlock(from, sb) {
			break
		}
		// A validator's final block is final: validators are not
		// Byzantine (see docs/design/poa.md). Anyone else's is only a block.
		if c.sched.member(h, from) && (c.authFinal == nil || c.authFinal.Height < h) {
			r := BlockRef{Height: h, Ballot: sb.Ballot, Hash: sb.Block.Hash()}
			c.authFinal = &r
			c.commitDirty = true
		}
	}
	for _, s := range m.Chain {
		sb, err := fromRLP(s)
		if err != nil {
			c.stats.BadMessages++
			return
		}
		if sb.Block.NumberU64() <= c.base.height {
			continue
		}
		if !c.onBlock(from, sb) {
			break
		}
	}
}

// catchUpFrom notes that a validator is ahead of our lookahead and asks
// it for blocks; Tick keeps asking, a lookahead at a time, until its
// answers fit. Only validators are followed: anyone else may lie about
// being ahead.
func (c *Core) catchUpFrom(from consensus.NodeID) {
	if !c.sched.member(c.limit(), from) {
		return
	}
	c.behind = from
	c.fetch(from, common.Hash{})
}

// fetch asks a peer for the blocks we miss, at most once per interval.
func (c *Core) fetch(to consensus.NodeID, tip common.Hash) {
	if to == c.id {
		return
	}
	if last, ok := c.lastFetch[to]; ok && c.now < last+c.cfg.FetchIntervalTicks {
		return
	}
	c.lastFetch[to] = c.now
	c.send(to, encode(kindFetch, fetchMsg{From: c.base.height + 1, Tip: tip}))
}

// ---- time ----

func (c *Core) timeout() uint64 {
	tm := c.timingAt(c.promise.Height)
	limit := max(c.cfg.MaxTimeoutTicks, tm.period+tm.timeout)
	t := tm.period + tm.timeout + c.promise.Round*c.cfg.BackoffTicks
	if c.promise.Round > limit || t > limit {
		t = limit
	}
	return t
}

// onTimeout moves a validator to the next ballot: the highest one another
// validator already voted for, if it may vote for it (so that everyone
// converges on one ballot), else the next height if it may, else the next
// round at its promise's height (the next authority in order).
func (c *Core) onTimeout() {
	c.idle = 0
	c.stats.Timeouts++
	next := c.nextBallot()
	if !c.canVote(next) && next.Height > c.promise.Height {
		// The next height is beyond the lookahead: try the next round
		// at the current one (the tip may be sealed again there).
		next = Ballot{c.promise.Height, c.promise.Round + 1}
	}
	for _, id := range sortedIDs(c.lastVote) {
		if b := c.lastVote[id].ballot(); next.Less(b) && c.canVote(b) {
			next = b
		}
	}
	switch {
	case c.canVote(next):
		c.vote(next)
	case c.myVote != nil && c.tip.ballot().Less(c.myVote.ballot()):
		c.send(consensus.NodeID{}, encode(kindVote, *c.myVote)) // retransmit
	default:
		c.announce()
	}
	// Ask again for the parents of blocks that do not link up yet
	// (an answer may have been lost or cut at the lookahead).
	for _, n := range c.sortedNodes() {
		if c.get(n.parent) == nil && n.from != (consensus.NodeID{}) {
			c.fetch(n.from, n.parent)
			break
		}
	}
	// Ask the validator with the highest tip for what we miss.
	var best *voteMsg
	for _, id := range sortedIDs(c.lastVote) {
		v := c.lastVote[id]
		if id != c.id && c.tip.ballot().Less(v.Tip.ballot()) && (best == nil || best.Tip.ballot().Less(v.Tip.ballot())) {
			vv := v
			best = &vv
		}
	}
	if best != nil {
		for _, id := range sortedIDs(c.lastVote) {
			if c.lastVote[id] == *best {
				c.fetch(id, best.Tip.Hash)
				break
			}
		}
	}
}

// ---- voting ----

// canVote: the ballot is above the promise, its height within the
// lookahead, and this node's vote counts there.
func (c *Core) canVote(b Ballot) bool {
	if b.Round >= maxRound || !c.promise.Less(b) || b.Height > c.limit() {
		return false
	}
	return c.elector(b.Height, c.id)
}

// nextBallot is the ballot a validator moves to after adopting a tip or
// when a round times out: the next height in turn if that is above the
// promise, else the next round at the promise's height.
func (c *Core) nextBallot() Ballot {
	if b := (Ballot{c.tip.height + 1, 0}); c.promise.Less(b) {
		return b
	}
	return Ballot{c.promise.Height, c.promise.Round + 1}
}

// announce tells the other nodes which tip this validator adopted when it
// cannot vote for the next height (its tip is at the lookahead limit): the
// announcement is commit evidence without a promise.
func (c *Core) announce() {
	if c.tip == c.base || c.tip.height <= c.base.height || !c.sched.member(c.tip.height, c.id) {
		return
	}
	m := c.tip.tipMsg()
	c.announced = m
	c.send(consensus.NodeID{}, encode(kindTip, m))
	c.onTip(c.id, m)
}

func (c *Core) onTip(from consensus.NodeID, m tipMsg) {
	c.addEvidence(from, m)
	if from != c.id && m.Height > c.base.height && m.BallotH <= c.limit() && c.get(m.Hash) == nil {
		c.fetch(from, m.Hash)
	}
}

func (c *Core) vote(b Ballot) {
	c.promise = b
	c.dirty = true
	c.idle = 0
	v := voteMsg{Height: b.Height, Round: b.Round, Tip: c.tip.tipMsg()}
	c.myVote = &v
	c.send(consensus.NodeID{}, encode(kindVote, v))
	c.onVote(c.id, v)
}

// ---- the step after every input ----

func (c *Core) reconcile() {
	c.scheduleVerify()
	c.updateCommitted()
	c.adoptTip()
	c.finalize()
	if next := (Ballot{c.tip.height + 1, 0}); c.promise.Less(next) {
		// Just adopted a tip: vote for the next height in turn, or say
		// what we adopted if that height is beyond the lookahead.
		if c.canVote(next) {
			c.vote(next)
		} else if c.announced != c.tip.tipMsg() {
			c.announce()
		}
	}
	c.trySeal()
}

func (c *Core) scheduleVerify() {
	for _, n := range c.sortedNodes() {
		if n.verified || n.verifying || n.height > c.limit() {
			continue
		}
		if p := c.get(n.parent); p != nil && p.verified {
			n.verifying = true
			c.rd.Verify = append(c.rd.Verify, n.block)
		}
	}
}

// updateCommitted raises the committed block to the highest block a quorum
// named as its tip (or an authority reported final).
func (c *Core) updateCommitted() {
	if !c.commitDirty {
		return
	}
	c.commitDirty = false
	var best *bnode
	consider := func(n *bnode) {
		if n == nil || n.height <= c.committed.Height || !c.connected(n) {
			return
		}
		if best != nil && best.height >= n.height {
			if best.height == n.height && best != n && !c.cfg.mutant.on() {
				panic(fmt.Sprintf("poa: safety violated: blocks %s and %s both committed at height %d", best.hash, n.hash, n.height))
			}
			return
		}
		best = n
	}
	for _, id := range sortedSealIDs(c.evidence) {
		ev := c.evidence[id]
		if ev.height <= c.committed.Height {
			continue
		}
		count := 0
		for v := range ev.voters {
			if c.sched.member(ev.height, v) {
				count++
			}
		}
		if count >= c.quorum(ev.height) {
			consider(c.tree[id.hash])
		}
	}
	if c.authFinal != nil {
		consider(c.tree[c.authFinal.Hash])
	}
	if best == nil {
		return
	}
	if cur := c.get(c.committed.Hash); cur != nil && !c.descends(best, cur) {
		if c.cfg.mutant.on() {
			return
		}
		panic(fmt.Sprintf("poa: safety violated: committed %d %s does not extend committed %d %s",
			best.height, best.hash, c.committed.Height, c.committed.Hash))
	}
	c.committed = best.ref()
	c.dirty = true
}

// adoptTip makes the tip the highest-ballot verified block the node may
// accept: at or above its promise, extending the committed block, within
// the lookahead. If the tip does not extend the committed block (a node
// that fell behind), it moves to the committed block first.
func (c *Core) adoptTip() {
	com := c.get(c.committed.Hash)
	best := c.tip
	if com != nil && !c.descends(best, com) {
		best = com
	}
	for _, n := range c.sortedNodes() {
		if !n.verified || n.height > c.limit() || n.ballot().Less(c.promise) || !best.ballot().Less(n.ballot()) {
			continue
		}
		if (com != nil && !c.descends(n, com)) || !c.connected(n) {
			continue
		}
		best = n
	}
	if best == c.tip {
		return
	}
	if !c.descends(best, c.tip) {
		c.stats.Reorgs++
	}
	c.tip = best
	c.tipSince = c.now
	c.idle = 0
	c.promise = maxBallot(c.promise, best.ballot())
	c.dirty = true
}

// finalize hands out, in order, the blocks that are committed and have
// FinalityDepth sealed blocks on top of them (see confirmedTop).
func (c *Core) finalize() {
	d := c.cfg.FinalityDepth
	top := c.confirmedTop()
	if top < d {
		return
	}
	target := top - d
	if !c.cfg.mutant.depthOnly && c.committed.Height < target {
		target = c.committed.Height
	}
	if target <= c.base.height {
		return
	}
	var path []*bnode
	for n := c.ancestor(c.tip, target); n != nil && n != c.base; n = c.get(n.parent) {
		path = append(path, n)
	}
	moved := false
	for i := len(path) - 1; i >= 0; i-- {
		n := path[i]
		if !n.verified {
			break
		}
		sb := n.sealed()
		c.rd.Commits = append(c.rd.Commits, consensus.SealedBlock{Block: sb.Block, Seal: sb.Seal()})
		c.unacked = append(c.unacked, n.sealed())
		c.base = n
		c.delNode(n.hash)
		moved = true
	}
	if !moved {
		return
	}
	if c.committed.Height < c.base.height {
		c.committed = c.base.ref() // depth-only mutant
	}
	c.dirty = true
	c.prune()
}

// confirmedTop is the height up to which the committed block's
// confirmations are counted: the tip's height, or higher when a verified
// block on top of the committed block is known but not adopted.
//
// Counting only the adopted chain loses liveness (simulation seed 9001974,
// 3 authorities, one dead after healing, depth 2, lookahead 6). Validator A
// adopted block 25, and it was committed. A promised ballot (29,2) by
// joining B's vote at that ballot. B sealed block 29 at (29,2) on its
// tip 28 and adopted it, but A got that block only after its timeout had
// raised its promise to (29,3). From then on A could adopt none of blocks
// 26..29 (all sealed below its promise): its tip stayed at 25, so its
// final block at 25-2 = 23, so its lookahead limit at 23+6 = 29. B,
// final at 25 and limit 31, voted at height 30. A could not vote at height
// 30 (beyond its limit), B could not vote at height 29 (below its
// promise), and with the third authority dead no ballot could gather a
// quorum again. Nothing was wrong with A's promise or B's ballots; the
// depth rule alone held A's limit down. Blocks 26..29 are sealed by
// authorities on top of committed block 25, which is all the depth rule
// asks ("FinalityDepth blocks on top"); whether this node could adopt
// them does not matter. Counted here, A finalizes 24 and 25, its limit
// rises to 31, it joins B's ballot at height 30 and the chain moves on.
// Safety is unchanged: only committed blocks become final.
func (c *Core) confirmedTop() uint64 {
	top := c.tip.height
	if c.cfg.mutant.depthOnly || top >= c.committed.Height+c.cfg.FinalityDepth {
		return top
	}
	com := c.get(c.committed.Hash)
	if com == nil {
		return top
	}
	ns := c.sortedNodes()
	for i := len(ns) - 1; i >= 0 && ns[i].height > top; i-- {
		if n := ns[i]; n.verified && c.descends(n, com) {
			return n.height
		}
	}
	return top
}

// prune drops what lies at or below the final block, and forks of it.
func (c *Core) prune() {
	for _, n := range c.sortedNodes() {
		if n.height <= c.base.height {
			c.delNode(n.hash)
			continue
		}
		if a := c.ancestorLoose(n, c.base.height+1); a != nil && a.parent != c.base.hash {
			c.delNode(n.hash)
		}
	}
	for id, ev := range c.evidence {
		if ev.height <= c.base.height {
			delete(c.evidence, id)
		}
	}
	for b := range c.tallies {
		if b.Height <= c.base.height {
			delete(c.tallies, b)
		}
	}
	for b := range c.sealedAt {
		if b.Height <= c.base.height {
			delete(c.sealedAt, b)
		}
	}
	for b := range c.buildFailedAt {
		if b.Height <= c.base.height {
			delete(c.buildFailedAt, b)
		}
	}
	if c.authFinal != nil && c.authFinal.Height <= c.base.height {
		c.authFinal = nil
	}
}

// ancestorLoose walks down through the tree only (not the base) to height h.
func (c *Core) ancestorLoose(n *bnode, h uint64) *bnode {
	for n != nil && n.height > h {
		n = c.tree[n.parent]
	}
	if n == nil || n.height != h {
		return nil
	}
	return n
}

// trySeal seals for the highest ballot this node is the authority of and
// a quorum voted for.
func (c *Core) trySeal() {
	if c.building != nil {
		return
	}
	ballots := make([]Ballot, 0, len(c.tallies))
	for b := range c.tallies {
		ballots = append(ballots, b)
	}
	sort.Slice(ballots, func(i, j int) bool { return ballots[j].Less(ballots[i]) })
	for _, b := range ballots {
		if b.Less(c.promise) || !c.tip.ballot().Less(b) {
			delete(c.tallies, b) // can never be sealed here any more
			continue
		}
		if b.Height > c.limit() {
			continue
		}
		if at, failed := c.buildFailedAt[b]; failed && c.now <= at {
			continue
		}
		chosen, from, ok := c.sealChoice(b)
		if !ok {
			continue
		}
		if chosen == nil {
			c.fetch(from, c.tallies[b].votes[from].Tip.Hash)
			continue
		}
		if !chosen.verified || !c.connected(chosen) {
			continue
		}
		if com := c.get(c.committed.Hash); com != nil && !c.descends(chosen, com) {
			continue
		}
		// Build on the chosen tip if the new block fits under the ballot
		// and the lookahead, else seal the chosen block again.
		x := chosen.height + 1
		if x > b.Height || x > c.limit() {
			if !c.quorumFor(b, chosen.height) {
				continue
			}
			c.reseal(chosen, b)
			return
		}
		if !c.quorumFor(b, x) {
			continue
		}
		if b.Round == 0 && c.now < c.tipSince+c.timingAt(x).period {
			return // in turn: wait for the block time
		}
		bb := b
		c.building = &bb
		c.buildID++
		c.rd.Build = &consensus.BuildRequest{ID: c.buildID, Parent: chosen.block.Header(), Empty: true}
		return
	}
}

// reseal seals an existing block again at ballot b (Paxos: the highest
// value a quorum reported is proposed again at the new ballot). It happens
// when validators whose tips are at b's height vote for b, which they do
// only when they cannot vote for the next height.
func (c *Core) reseal(n *bnode, b Ballot) {
	sb, err := Seal(n.block, b, c.cfg.Key)
	if err != nil {
		c.buildFailedAt[b] = c.now
		return
	}
	c.sealedAt[b] = n.hash
	c.resealed(n, sb)
	c.send(consensus.NodeID{}, encodeBlock(sb))
	c.adoptTip()
}

// sealChoice picks what ballot b seals: the highest tip (by ballot) among
// its votes, once a quorum of b's set voted. chosen is nil if that tip is
// unknown here (from names a voter that has it).
func (c *Core) sealChoice(b Ballot) (chosen *bnode, from consensus.NodeID, ok bool) {
	t := c.tallies[b]
	var (
		count   int
		best    tipMsg
		bestID  consensus.NodeID
		haveAny bool
	)
	for _, id := range sortedIDs(t.votes) {
		v := t.votes[id]
		if c.sched.member(b.Height, id) {
			count++
		}
		tb := v.Tip.ballot()
		if !haveAny || best.ballot().Less(tb) || (best.ballot() == tb && bytes.Compare(v.Tip.Hash[:], best.Hash[:]) < 0) {
			best, bestID, haveAny = v.Tip, id, true
		}
	}
	if count < c.quorum(b.Height) {
		return nil, from, false
	}
	return c.get(best.Hash), bestID, true
}

// quorumFor checks the extra conditions for sealing, at ballot b, a block
// at height x <= b.Height: the votes must hold a quorum of every validator
// set in force between x and b.Height, and, when x is the first height of
// a new set, of the set before it too (joint consensus). So every ballot's
// quorum intersects the quorum that committed any block at a height it
// seals at or spans, and the first block of a new set extends every block
// the old set committed. (Votes come only from b's set and the one before
// it, so a ballot spanning two set changes cannot seal; it times out.)
func (c *Core) quorumFor(b Ballot, x uint64) bool {
	lo := x
	if c.sched.changesAt(x) {
		lo = x - 1
	}
	votes := c.tallies[b].votes
	for h := lo; ; {
		e := c.sched.at(h)
		n := 0
		for id := range votes {
			if _, ok := e.index[id]; ok {
				n++
			}
		}
		if n < c.quorum(h) {
			return false
		}
		next := c.sched.nextChange(h)
		if next == 0 || next > b.Height {
			return true
		}
		h = next
	}
}

// elector reports whether id's vote for a ballot at height h counts: it
// is a validator at h, or of the set before h's (whose quorum the first
// block of h's set needs).
func (c *Core) elector(h uint64, id consensus.NodeID) bool {
	if c.sched.member(h, id) {
		return true
	}
	st := c.sched.start(h)
	return st > 0 && c.sched.member(st-1, id)
}

func sortedIDs[V any](m map[consensus.NodeID]V) []consensus.NodeID {
	ids := make([]consensus.NodeID, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return bytes.Compare(ids[i][:], ids[j][:]) < 0 })
	return ids
}

func sortedSealIDs(m map[sealID]*evidence) []sealID {
	ids := make([]sealID, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool {
		if c := bytes.Compare(ids[i].hash[:], ids[j].hash[:]); c != 0 {
			return c < 0
		}
		return ids[i].bal.Less(ids[j].bal)
	})
	return ids
}

func max64(a, b uint64) uint64 {
	if a > b {
		return a
	}
	return b
}
