package system

import (
	"fmt"
	"slices"
	"strconv"

	"github.com/ethereum/go-ethereum/common"
)

const maxMemo = 1024

func propKey(id uint64) string { return "prop/" + strconv.FormatUint(id, 10) }

// Proposal returns proposal id.
func (s *State) Proposal(id uint64) (Proposal, bool) {
	p, ok := getRLP[Proposal](s.gov, propKey(id))
	if ok && p.Status == ProposalOpen && s.height > p.Expires && s.height != 0 {
		// Shown as expired as soon as it is; stored so at the next block.
		p.Status = ProposalExpired
	}
	return p, ok
}

// ProposalCount is the number of proposals made (ids 1 to it).
func (s *State) ProposalCount() uint64 { return s.gov.getUint("count") }

func (s *State) openIDs() []uint64 { v, _ := getRLP[[]uint64](s.gov, "open"); return v }

func (s *State) setOpen(ids []uint64) { putRLP(s.gov, "open", ids) }

func schedKey(h uint64) string { return "sched/" + strconv.FormatUint(h, 10) }

// Events returns the audit trail entries from index from (0-based), at
// most limit of them.
func (s *State) Events(from, limit uint64) []Event {
	n := s.gov.getUint("events")
	var out []Event
	for i := from; i < n && uint64(len(out)) < limit; i++ {
		if e, ok := getRLP[Event](s.gov, "event/"+strconv.FormatUint(i, 10)); ok {
			out = append(out, e)
		}
	}
	return out
}

// EventCount is the length of the audit trail.
func (s *State) EventCount() uint64 { return s.gov.getUint("events") }

func (s *State) record(e Event) {
	e.Height = s.height
	n := s.gov.getUint("events")
	putRLP(s.gov, "event/"+strconv.FormatUint(n, 10), e)
	s.gov.putUint("events", n+1)
}

// admin returns the active organization caller administers.
func (s *State) admin(caller common.Address) (Org, error) {
	a := s.rawAccount(caller)
	if a.Org == "" || a.Roles&RoleAdmin == 0 {
		return Org{}, reverts("%s is not an organization admin", caller.Hex())
	}
	o, ok := s.Org(a.Org)
	if !ok || o.Status != StatusActive {
		return Org{}, reverts("organization %s of %s is %s", a.Org, caller.Hex(), o.Status)
	}
	if a.Frozen {
		return Org{}, reverts("%s is frozen", caller.Hex())
	}
	return o, nil
}

// Propose records a proposal by caller. Its action is checked against the
// state now (it is checked again when it executes).
func (s *State) Propose(caller common.Address, a Action, args []byte, memo string) (uint64, error) {
	o, err := s.admin(caller)
	if err != nil {
		return 0, err
	}
	if _, ok := a.def(); !ok {
		return 0, reverts("unknown action %d (want 1 to %d)", a, numActions-1)
	}
	if len(memo) > maxMemo {
		return 0, reverts("memo of %d bytes, at most %d", len(memo), maxMemo)
	}
	vals, err := DecodeArgs(a, args)
	if err != nil {
		return 0, revert(err.Error())
	}
	if err := s.apply(a, vals, false); err != nil {
		return 0, err
	}
	rule := s.Policy().Rules[a.Class()]
	id := s.ProposalCount() + 1
	s.gov.putUint("count", id)
	p := Proposal{ID: id, Action: a, Args: args, Memo: memo, Proposer: caller, Org: o.Name,
		Created: s.height, Expires: s.height + rule.ExpiryBlocks, Status: ProposalOpen}
	putRLP(s.gov, propKey(id), p)
	s.setOpen(append(s.openIDs(), id))
	s.record(Event{Proposal: id, Kind: "proposed", Org: o.Name, Actor: caller, Detail: a.String() + ": " + memo})
	return id, nil
}

// Tally is the count of a proposal's votes against the current weights.
type Tally struct {
	Yes, No, Total uint64
	YesOrgs        int
	Undecided      uint64 // weight of active organizations that have not voted
	UndecidedOrgs  int
}

// Tally counts p's votes: only organizations active now count, with
// their current weight.
func (s *State) Tally(p *Proposal) Tally {
	var t Tally
	for _, o := range s.activeOrgs() {
		t.Total += o.Weight
		i := slices.IndexFunc(p.Votes, func(v Vote) bool { return v.Org == o.Name })
		switch {
		case i < 0:
			t.Undecided += o.Weight
			t.UndecidedOrgs++
		case p.Votes[i].Support:
			t.Yes += o.Weight
			t.YesOrgs++
		default:
			t.No += o.Weight
		}
	}
	return t
}

// Vote records caller's organization's vote on proposal id; the proposal
// passes or is rejected as soon as the votes decide it. It returns the
// proposal's status after the vote.
func (s *State) Vote(caller common.Address, id uint64, support bool) (ProposalStatus, error) {
	o, err := s.admin(caller)
	if err != nil {
		return 0, err
	}
	p, ok := s.Proposal(id)
	if !ok {
		return 0, reverts("no proposal %d", id)
	}
	if p.Status != ProposalOpen {
		return 0, reverts("proposal %d is %s", id, p.Status)
	}
	if p.voted(o.Name) {
		return 0, reverts("organization %s has voted on proposal %d already", o.Name, id)
	}
	p.Votes = append(p.Votes, Vote{Org: o.Name, Voter: caller, Support: support, Weight: o.Weight, Height: s.height})
	s.record(Event{Proposal: id, Kind: "voted", Org: o.Name, Actor: caller, Detail: map[bool]string{true: "yes", false: "no"}[support]})
	s.decide(&p)
	putRLP(s.gov, propKey(id), p)
	return p.Status, nil
}

// decide passes or rejects p if its votes settle it.
func (s *State) decide(p *Proposal) {
	rule := s.Policy().Rules[p.Action.Class()]
	t := s.Tally(p)
	// Approvals from organizations that have left cannot be given.
	rule.MinApprovals = min(rule.MinApprovals, uint64(len(s.activeOrgs())))
	passes := t.Yes*10000 >= rule.Threshold*t.Total && (t.Yes+t.No)*10000 >= rule.Quorum*t.Total &&
		uint64(t.YesOrgs) >= rule.MinApprovals && t.Total > 0
	hopeless := (t.Yes+t.Undecided)*10000 < rule.Threshold*t.Total || uint64(t.YesOrgs+t.UndecidedOrgs) < rule.MinApprovals
	switch {
	case passes:
		p.Status, p.Decided = ProposalPassed, s.height
		p.ActivatesAt = s.height + max(rule.Timelock, 1)
		ids, _ := getRLP[[]uint64](s.gov, schedKey(p.ActivatesAt))
		putRLP(s.gov, schedKey(p.ActivatesAt), append(ids, p.ID))
		s.closeOpen(p.ID)
		s.record(Event{Proposal: p.ID, Kind: "passed", Detail: fmt.Sprintf("activates at height %d", p.ActivatesAt)})
	case hopeless:
		p.Status, p.Decided = ProposalRejected, s.height
		s.closeOpen(p.ID)
		s.record(Event{Proposal: p.ID, Kind: "rejected"})
	}
}

func (s *State) closeOpen(id uint64) {
	s.setOpen(slices.DeleteFunc(s.openIDs(), func(x uint64) bool { return x == id }))
}

// Cancel withdraws an open proposal; only an admin of its organization.
func (s *State) Cancel(caller common.Address, id uint64) error {
	o, err := s.admin(caller)
	if err != nil {
		return err
	}
	p, ok := s.Proposal(id)
	if !ok {
		return reverts("no proposal %d", id)
	}
	if p.Status != ProposalOpen {
		return reverts("proposal %d is %s", id, p.Status)
	}
	if p.Org != o.Name {
		return reverts("proposal %d is organization %s's; only its admins may cancel it", id, p.Org)
	}
	p.Status, p.Decided = ProposalCancelled, s.height
	putRLP(s.gov, propKey(id), p)
	s.closeOpen(id)
	s.record(Event{Proposal: id, Kind: "cancelled", Org: o.Name, Actor: caller})
	return nil
}

// SetAccountRoles is an organization admin's own management of its
// accounts: roles read, write, deploy and admin, within its tier, on
// accounts of its organization or of none.
func (s *State) SetAccountRoles(caller, account common.Address, roles Role) error {
	o, err := s.admin(caller)
	if err != nil {
		return err
	}
	if roles&^(RoleRead|RoleWrite|RoleDeploy|RoleAdmin) != 0 {
		return reverts("roles %#x: an admin sets read 1, write 2, deploy 4, admin 8; auditor needs a proposal", uint32(roles))
	}
	if account == (common.Address{}) || IsSystem(account) {
		return reverts("account %s: not an account", account.Hex())
	}
	cur := s.rawAccount(account)
	if cur.Org != "" && cur.Org != o.Name {
		return reverts("account %s belongs to organization %s", account.Hex(), cur.Org)
	}
	if !o.Tier.allows(roles) {
		return reverts("organization %s of tier %s may not hold %s", o.Name, o.Tier, roles)
	}
	if account == caller && roles&RoleAdmin == 0 && s.adminCount(o.Name) == 1 {
		return reverts("%s is the last admin of %s", caller.Hex(), o.Name)
	}
	cur.Org = o.Name
	cur.Roles = roles | cur.Roles&RoleAuditor
	s.putAccount(cur)
	s.record(Event{Kind: "roles", Org: o.Name, Actor: caller, Detail: fmt.Sprintf("%s: %s", account.Hex(), cur.Roles)})
	return nil
}

func (s *State) adminCount(org string) int {
	n := 0
	for _, a := range s.OrgAccounts(org) {
		if s.rawAccount(a).Roles&RoleAdmin != 0 {
			n++
		}
	}
	return n
}

// DueAt reports whether BeginBlock has work at height h: a passed
// proposal to execute or an open one past its expiry.
func (s *State) DueAt(h uint64) bool {
	if s.gov.has(schedKey(h)) {
		return true
	}
	for _, id := range s.openIDs() {
		if p, ok := getRLP[Proposal](s.gov, propKey(id)); ok && h > p.Expires {
			return true
		}
	}
	return false
}

// BlockEffects is what the start of a block changed that the node acts on.
type BlockEffects struct {
	// Executed proposals, in order.
	Executed []uint64
	// ValidatorChanges scheduled by them.
	ValidatorChanges []ValidatorChange
}

// snapshotter is the part of the StateDB that lets an action that fails
// half way leave nothing behind.
type snapshotter interface {
	Snapshot() int
	RevertToSnapshot(int)
}

// BeginBlock runs at the start of every block: it expires open proposals
// past their expiry and executes the passed ones whose activation height
// this is. st must be the writer the State was opened on.
func (s *State) BeginBlock(st StateWriter) BlockEffects {
	var fx BlockEffects
	for _, id := range s.openIDs() {
		p, ok := getRLP[Proposal](s.gov, propKey(id))
		if ok && s.height > p.Expires {
			p.Status, p.Decided = ProposalExpired, s.height
			putRLP(s.gov, propKey(id), p)
			s.closeOpen(id)
			s.record(Event{Proposal: id, Kind: "expired"})
		}
	}
	ids, _ := getRLP[[]uint64](s.gov, schedKey(s.height))
	if len(ids) == 0 {
		return fx
	}
	s.gov.del(schedKey(s.height))
	for _, id := range ids {
		p, ok := getRLP[Proposal](s.gov, propKey(id))
		if !ok || p.Status != ProposalPassed {
			continue
		}
		before := s.Validators()
		snap, canRevert := st.(snapshotter)
		var rev int
		if canRevert {
			rev = snap.Snapshot()
		}
		vals, err := DecodeArgs(p.Action, p.Args)
		if err == nil {
			if err = s.apply(p.Action, vals, false); err == nil {
				err = s.apply(p.Action, vals, true)
			}
		}
		if err != nil {
			if canRevert {
				snap.RevertToSnapshot(rev)
			}
			p.Status, p.Result = ProposalFailed, err.Error()
			putRLP(s.gov, propKey(id), p)
			s.record(Event{Proposal: id, Kind: "failed", Detail: err.Error()})
			continue
		}
		p.Status = ProposalExecuted
		putRLP(s.gov, propKey(id), p)
		s.record(Event{Proposal: id, Kind: "executed", Detail: p.Action.String()})
		fx.Executed = append(fx.Executed, id)
		if !slices.Equal(before, s.Validators()) {
			changes := s.ValidatorChanges()
			fx.ValidatorChanges = append(fx.ValidatorChanges, changes[len(changes)-1])
		}
	}
	// Membership or policy may have changed who counts and how much: an
	// open proposal whose votes now decide it is decided here, since
	// nobody may be left to vote on it.
	if len(fx.Executed) > 0 {
		for _, id := range s.openIDs() {
			if p, ok := getRLP[Proposal](s.gov, propKey(id)); ok && p.Status == ProposalOpen {
				s.decide(&p)
				if p.Status != ProposalOpen {
					putRLP(s.gov, propKey(id), p)
				}
			}
		}
	}
	return fx
}
