package raft

import (
	"errors"
	"fmt"
	"slices"
	"sync"

	etcdraft "go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/confchange"
	"go.etcd.io/raft/v3/raftpb"
	"go.etcd.io/raft/v3/tracker"

	"github.com/charter-ledger/charter/internal/consensus"
)

// Membership changes (see docs/design/raft.md, "Membership changes").
//
// Governance decides validator sets on chain; the node hands each decision
// to SetValidators(from, ids) on every node. The schedule keeps them. The
// leader, once its chain reaches from-1 (the set in force for the next
// block is ids), proposes the raft configuration change that makes ids the
// voters; every node applies committed configuration changes in log order.
// Nodes of a set decided for a later height that are not members yet join
// at once as learners, so that they have caught up when it takes effect;
// a new voter is always a caught-up learner first.

// ErrBadValidators is returned by SetValidators for an unusable set.
var ErrBadValidators = errors.New("raft: bad validator set")

// valChange is one decided validator set and the height it is in force
// from.
type valChange struct {
	from uint64
	ids  []consensus.NodeID
}

// schedule holds the decided validator sets, ascending by height. It is
// goroutine-safe: the node calls SetValidators from CommitBlock (on the
// engine goroutine) and at start (from another).
type schedule struct {
	mu      sync.Mutex
	changes []valChange
}

// set records that ids is the validator set from height from on. A
// decision replaces any earlier decided change for a height at or after
// from, as the registry does.
func (s *schedule) set(from uint64, ids []consensus.NodeID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.changes) > 0 && s.changes[len(s.changes)-1].from >= from {
		s.changes = s.changes[:len(s.changes)-1]
	}
	s.changes = append(s.changes, valChange{from: from, ids: slices.Clone(ids)})
}

// at returns the set in force at height h (nil if no decision covers it)
// and the sets decided for later heights.
func (s *schedule) at(h uint64) (cur []consensus.NodeID, later [][]consensus.NodeID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.changes {
		if c.from <= h {
			cur = c.ids
		} else {
			later = append(later, c.ids)
		}
	}
	return cur, later
}

// waiting reports whether a set is decided for a height after h.
func (s *schedule) waiting(h uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.changes) > 0 && s.changes[len(s.changes)-1].from > h
}

func checkValidatorSet(ids []consensus.NodeID) error {
	if len(ids) == 0 {
		return fmt.Errorf("%w: empty", ErrBadValidators)
	}
	if len(ids) > maxListedMembers {
		return fmt.Errorf("%w: %d validators, at most %d", ErrBadValidators, len(ids), maxListedMembers)
	}
	seen := make(map[consensus.NodeID]bool, len(ids))
	for i, id := range ids {
		if id == (consensus.NodeID{}) {
			return fmt.Errorf("%w: validator %d is the zero address", ErrBadValidators, i)
		}
		if seen[id] {
			return fmt.Errorf("%w: %s listed twice", ErrBadValidators, id)
		}
		seen[id] = true
	}
	return nil
}

// SetValidators records that governance made ids the validator set from
// height from on. Raft has no heights in its log: the leader proposes the
// configuration change once its chain reaches from-1 (see the package
// notes above). Goroutine-safe.
func (c *Core) SetValidators(from uint64, ids []consensus.NodeID) error {
	if err := checkValidatorSet(ids); err != nil {
		return err
	}
	c.sched.set(from, ids)
	return nil
}

// confPoint is the membership after the configuration changes up to index.
type confPoint struct {
	index uint64
	cs    *raftpb.ConfState
}

// confNow is raft's current membership (every committed configuration
// change delivered by raft is applied).
func (c *Core) confNow() *raftpb.ConfState { return c.conf[len(c.conf)-1].cs }

// confAt is the membership after the entries up to index: what a snapshot
// at that index holds.
func (c *Core) confAt(index uint64) *raftpb.ConfState {
	for i := len(c.conf) - 1; i > 0; i-- {
		if c.conf[i].index <= index {
			return c.conf[i].cs
		}
	}
	return c.conf[0].cs
}

// resetConf starts the membership history from a snapshot.
func (c *Core) resetConf(index uint64, cs *raftpb.ConfState, listed []consensus.NodeID) {
	for _, n := range listed {
		c.learnNode(n)
	}
	c.conf = []confPoint{{index: index, cs: cs}}
	c.noteSelf(cs, false)
}

// pruneConf forgets the history before index (a snapshot was taken there).
func (c *Core) pruneConf(index uint64) {
	i := len(c.conf) - 1
	for i > 0 && c.conf[i].index > index {
		i--
	}
	c.conf = c.conf[i:]
}

func (c *Core) learnNode(n consensus.NodeID) uint64 {
	id, ok := c.mem.learn(n)
	if !ok {
		c.log.Error("Two nodes have the same raft id; the second is ignored", "node", n, "raftID", fmt.Sprintf("%x", id))
	}
	return id
}

// confMembers lists every raft id of a membership, ascending.
func confMembers(cs *raftpb.ConfState) []uint64 {
	var out []uint64
	for _, set := range [][]uint64{cs.GetVoters(), cs.GetVotersOutgoing(), cs.GetLearners(), cs.GetLearnersNext()} {
		for _, id := range set {
			if !slices.Contains(out, id) {
				out = append(out, id)
			}
		}
	}
	slices.Sort(out)
	return out
}

func isMember(cs *raftpb.ConfState, id uint64) bool { return slices.Contains(confMembers(cs), id) }

func isVoter(cs *raftpb.ConfState, id uint64) bool {
	return slices.Contains(cs.GetVoters(), id) || slices.Contains(cs.GetVotersOutgoing(), id)
}

// peerIDs are the raft ids of the current members other than this node,
// ascending (the peers a catch-up asks for blocks).
func (c *Core) peerIDs() []uint64 {
	return slices.DeleteFunc(confMembers(c.confNow()), func(id uint64) bool { return id == c.id })
}

// listedMembers are the node ids of the non-genesis members of cs, for
// snapshot data.
func (c *Core) listedMembers(cs *raftpb.ConfState) []consensus.NodeID {
	var out []consensus.NodeID
	for _, id := range confMembers(cs) {
		if c.mem.inGenesis(id) {
			continue
		}
		if n, ok := c.mem.node(id); ok {
			out = append(out, n)
		} else {
			c.log.Warn("Snapshot without the node id of a member", "raftID", fmt.Sprintf("%x", id))
		}
	}
	return out
}

// noteSelf logs this node's role when a membership change alters it.
func (c *Core) noteSelf(cs *raftpb.ConfState, announce bool) {
	role := "none"
	switch {
	case isVoter(cs, c.id):
		role = "voter"
	case isMember(cs, c.id):
		role = "learner"
	}
	if role == c.role {
		return
	}
	prev := c.role
	c.role = role
	if !announce && prev == "" {
		if role == "none" {
			c.log.Info("This node is not a raft member yet: it waits for governance to add it", "raftID", fmt.Sprintf("%x", c.id))
		}
		return
	}
	switch role {
	case "none":
		c.log.Warn("This node was removed from the raft group: it no longer votes, proposes or follows blocks until it is added again")
	case "learner":
		c.log.Info("This node is now a raft learner: it follows blocks and does not vote")
	case "voter":
		c.log.Info("This node is now a raft voter")
	}
}

// leaving reports whether this node is out of the validator set in force
// for the next block and of every later decided set (and not a configured
// learner) while another voter of the current membership is in it: the
// leader is removing it. Such a node does not campaign (it sends no vote
// requests; it still votes and acknowledges while it is a voter). etcd
// raft does not tell a removed follower, which would otherwise campaign
// for ever (harmlessly: the members ignore it while they hear their
// leader, and its log is behind theirs).
func (c *Core) leaving() bool {
	cur, later := c.sched.at(c.head.Number.Uint64() + 1)
	if cur == nil || slices.Contains(cur, c.self) || slices.Contains(c.cfg.Learners, c.self) {
		return false
	}
	for _, set := range later {
		if slices.Contains(set, c.self) {
			return false
		}
	}
	for _, id := range c.confNow().GetVoters() {
		if n, ok := c.mem.node(id); ok && id != c.id && slices.Contains(cur, n) {
			return true
		}
	}
	return false
}

// decodeConfChange decodes a configuration change entry.
func decodeConfChange(e *raftpb.Entry) (raftpb.ConfChangeI, error) {
	switch e.GetType() {
	case raftpb.EntryConfChangeV2:
		cc := new(raftpb.ConfChangeV2)
		if err := peerProto.Unmarshal(e.GetData(), cc); err != nil {
			return nil, err
		}
		return cc, nil
	case raftpb.EntryConfChange:
		cc := new(raftpb.ConfChange)
		if err := peerProto.Unmarshal(e.GetData(), cc); err != nil {
			return nil, err
		}
		return cc, nil
	}
	return nil, fmt.Errorf("entry type %v is not a configuration change", e.GetType())
}

// checkConfChange reports whether raft can apply cc on top of cs (etcd
// raft panics on an invalid change). Every node applies the same changes
// to the same memberships, so every node skips an invalid one alike.
func checkConfChange(cs *raftpb.ConfState, cc raftpb.ConfChangeI) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("invalid configuration change: %v", r)
		}
	}()
	trk := tracker.MakeProgressTracker(1, 0)
	cfg, prs, err := confchange.Restore(confchange.Changer{Tracker: trk, LastIndex: 1}, cs)
	if err != nil {
		return err
	}
	trk.Config, trk.Progress = cfg, prs
	chg := confchange.Changer{Tracker: trk, LastIndex: 1}
	v2 := cc.AsV2()
	if v2.LeaveJoint() {
		_, _, err = chg.LeaveJoint()
	} else if auto, joint := v2.EnterJoint(); joint {
		_, _, err = chg.EnterJoint(auto, v2.GetChanges()...)
	} else {
		_, _, err = chg.Simple(v2.GetChanges()...)
	}
	return err
}

// checkConfState reports whether raft can restore a membership (from a
// snapshot a peer sent).
func checkConfState(cs *raftpb.ConfState) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("invalid membership: %v", r)
		}
	}()
	if len(cs.GetVoters()) == 0 {
		return errors.New("membership without voters")
	}
	cfg, prs, err := confchange.Restore(confchange.Changer{Tracker: tracker.MakeProgressTracker(1, 0), LastIndex: 1}, cs)
	if err != nil {
		return err
	}
	// etcd raft panics when a membership does not restore to itself (learners
	// of a joint configuration named without the joint one, say).
	restored := tracker.MakeProgressTracker(1, 0)
	restored.Config, restored.Progress = cfg, prs
	if err := restored.ConfState().Equivalent(cs); err != nil {
		return fmt.Errorf("membership does not restore as sent: %w", err)
	}
	return nil
}

// applyConfEntry applies a committed configuration change to raft, in log
// order, when raft delivers it (before Advance, as etcd raft requires: it
// must not campaign or count votes with an unapplied change). The chain
// applies entries later, in its own batches; confAt keeps the membership
// of every index since the last snapshot for the snapshots it takes.
func (c *Core) applyConfEntry(e *raftpb.Entry) {
	cc, err := decodeConfChange(e)
	if err != nil {
		c.log.Error("Skipping an undecodable configuration change", "index", e.GetIndex(), "err", err)
		return
	}
	v2 := cc.AsV2()
	if listed, err := decodeNodeList(v2.GetContext()); err == nil {
		for _, n := range listed {
			c.learnNode(n)
		}
	}
	if err := checkConfChange(c.confNow(), cc); err != nil {
		c.log.Error("Skipping an invalid configuration change", "index", e.GetIndex(), "change", etcdraft.DescribeConfChange(cc), "err", err)
		return
	}
	cs := c.rn.ApplyConfChange(cc)
	c.conf = append(c.conf, confPoint{index: e.GetIndex(), cs: cs})
	c.stats.confChanges.Add(1)
	if c.confIndex != 0 && e.GetIndex() >= c.confIndex {
		c.confIndex = 0
	}
	for _, id := range confMembers(cs) {
		if _, ok := c.mem.node(id); !ok {
			c.log.Warn("Raft member without a known node id (it is addressed once it sends)", "raftID", fmt.Sprintf("%x", id))
		}
	}
	c.log.Info("Raft membership changed", "index", e.GetIndex(), "voters", c.names(cs.GetVoters()),
		"outgoing", c.names(cs.GetVotersOutgoing()), "learners", c.names(append(slices.Clone(cs.GetLearners()), cs.GetLearnersNext()...)))
	c.noteSelf(cs, true)
}

func (c *Core) names(ids []uint64) []string {
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if n, ok := c.mem.node(id); ok {
			out = append(out, n.Hex())
		} else {
			out = append(out, fmt.Sprintf("raft:%x", id))
		}
	}
	return out
}

// promoteSlack is how far (in entries) a learner's log may trail the
// commit index and still be promoted to voter.
const promoteSlack = 16

// caughtUp reports whether the leader sees the learner id replicating and
// close to the commit index.
func (c *Core) caughtUp(id uint64) bool {
	ok := false
	c.rn.WithProgress(func(pid uint64, _ etcdraft.ProgressType, pr tracker.Progress) {
		if pid == id {
			ok = pr.RecentActive && pr.State == tracker.StateReplicate && pr.Match+promoteSlack >= c.commitIndex
		}
	})
	return ok
}

// maybeProposeConf proposes, on a leader whose chain reflects every
// committed entry, the configuration change toward the decided validator
// set, one at a time: the next once the previous one is applied.
func (c *Core) maybeProposeConf() (bool, error) {
	if !c.isLeader || c.catchup != nil || c.applied < c.termStart || c.applied < c.commitIndex {
		return false, nil
	}
	if c.confIndex != 0 && c.applied < c.confIndex {
		return false, nil // ours is in flight
	}
	cs := c.confNow()
	if len(cs.GetVotersOutgoing()) > 0 || !isVoter(cs, c.id) {
		return false, nil // joint: raft leaves it by itself
	}
	cur, later := c.sched.at(c.head.Number.Uint64() + 1)
	if cur == nil {
		return false, nil
	}
	changes, listed := c.confDiff(cs, cur, later)
	if len(changes) == 0 {
		return false, nil
	}
	cc := &raftpb.ConfChangeV2{Changes: changes, Context: encodeNodeList(listed)}
	if err := checkConfChange(cs, cc); err != nil {
		c.log.Error("Not proposing an invalid configuration change", "change", etcdraft.DescribeConfChange(cc), "err", err)
		return false, nil
	}
	last, err := c.store.LastIndex()
	if err != nil {
		return false, err
	}
	if err := c.rn.ProposeConfChange(cc); err != nil {
		c.log.Debug("Raft dropped a configuration change", "err", err)
		return false, nil
	}
	// Raft may turn it into an empty entry (a change it still considers
	// pending); either way nothing is proposed again before it is applied.
	c.confIndex = last + 1
	c.log.Info("Proposed a raft membership change", "change", etcdraft.DescribeConfChange(cc), "index", c.confIndex)
	return true, nil
}

// confDiff computes the changes from cs toward: the voters cur, the
// configured learners that are not in cur, and, as learners, the nodes of
// later sets that are not members yet. New voters are added as learners
// and promoted once caught up. Voters leave (or become learners, if they
// are configured learners or in a later set) unless no voter would remain.
// listed are the node ids the changes name outside the genesis.
func (c *Core) confDiff(cs *raftpb.ConfState, cur []consensus.NodeID, later [][]consensus.NodeID) ([]*raftpb.ConfChangeSingle, []consensus.NodeID) {
	var (
		changes []*raftpb.ConfChangeSingle
		listed  []consensus.NodeID
		want    = make(map[uint64]bool)
	)
	add := func(t raftpb.ConfChangeType, id uint64) {
		changes = append(changes, &raftpb.ConfChangeSingle{Type: t.Enum(), NodeId: new(id)})
		if n, ok := c.mem.node(id); ok && !c.mem.inGenesis(id) && !slices.Contains(listed, n) {
			listed = append(listed, n)
		}
	}
	resolve := func(n consensus.NodeID) (uint64, bool) {
		id, ok := c.mem.learn(n)
		if !ok {
			c.log.Error("Cannot add a node whose raft id another node holds", "node", n)
		}
		return id, ok
	}
	voters := 0
	for _, n := range cur {
		id, ok := resolve(n)
		if !ok {
			return nil, nil
		}
		want[id] = true
		switch {
		case slices.Contains(cs.GetVoters(), id):
			voters++
		case slices.Contains(cs.GetLearners(), id):
			if c.caughtUp(id) {
				add(raftpb.ConfChangeAddNode, id)
				voters++
			}
		default:
			add(raftpb.ConfChangeAddLearnerNode, id)
		}
	}
	var learners []consensus.NodeID
	learners = append(learners, c.cfg.Learners...)
	for _, set := range later {
		learners = append(learners, set...)
	}
	var demote []uint64
	for _, n := range learners {
		id, ok := resolve(n)
		if !ok {
			return nil, nil
		}
		if want[id] {
			continue
		}
		want[id] = true
		switch {
		case slices.Contains(cs.GetLearners(), id):
		case slices.Contains(cs.GetVoters(), id):
			demote = append(demote, id)
		default:
			add(raftpb.ConfChangeAddLearnerNode, id)
		}
	}
	var remove []uint64
	for _, id := range confMembers(cs) {
		if !want[id] {
			remove = append(remove, id)
		}
	}
	// Voters leave only if one remains (new voters still catching up as
	// learners do not count).
	if voters > 0 {
		for _, id := range demote {
			add(raftpb.ConfChangeAddLearnerNode, id)
		}
		for _, id := range remove {
			add(raftpb.ConfChangeRemoveNode, id)
		}
	} else {
		for _, id := range remove {
			if !slices.Contains(cs.GetVoters(), id) {
				add(raftpb.ConfChangeRemoveNode, id)
			}
		}
	}
	return changes, listed
}
