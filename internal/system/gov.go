package system

import (
	"fmt"
	"slices"
	"strconv"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/rlp"
)

// MaxMemoBytes bounds a proposal's memo.
const MaxMemoBytes = 1024

// CheckMemo refuses a memo longer than MaxMemoBytes.
func CheckMemo(memo string) error {
	if len(memo) > MaxMemoBytes {
		return reverts("memo of %d bytes, at most %d", len(memo), MaxMemoBytes)
	}
	return nil
}

// The governance contract's records, by key:
//
//	count         the number of proposals made (ids 1 to it)
//	prop/ID       a proposal (RLP of Proposal); its Args are kept apart,
//	              under args/ID, so that votes and status changes rewrite
//	              a small record (proposals made before keep them inline)
//	args/ID       a proposal's ABI-encoded arguments
//	open/ORG      the ids of an organization's open proposals (at most
//	              the maxOpenProposals parameter)
//	exp/H         the ids of the open proposals that expire at height H
//	sched/H       the ids of the passed proposals that execute at height H
//	retally       1 + the index (in OrgNames) of the next organization whose
//	              open proposals are to be counted again after the
//	              electorate changed; absent when none are
//	events, event/I  the audit trail
//
// The start of a block reads exp/H, sched/H and retally: its work is that
// of the proposals due at H (and of one organization's open proposals
// while a recount runs), never that of every open proposal.

func propKey(id uint64) string  { return "prop/" + strconv.FormatUint(id, 10) }
func argsKey(id uint64) string  { return "args/" + strconv.FormatUint(id, 10) }
func openKey(org string) string { return "open/" + org }
func expKey(h uint64) string    { return "exp/" + strconv.FormatUint(h, 10) }
func schedKey(h uint64) string  { return "sched/" + strconv.FormatUint(h, 10) }

const retallyKey = "retally"

// Proposal returns proposal id, with its arguments.
func (s *State) Proposal(id uint64) (Proposal, bool) {
	p, ok := s.proposalRecord(id)
	if ok && len(p.Args) == 0 {
		p.Args = s.gov.get(argsKey(id))
	}
	return p, ok
}

// proposalRecord returns proposal id as its record holds it: without
// its arguments unless it was made before they were kept apart.
func (s *State) proposalRecord(id uint64) (Proposal, bool) {
	p, ok := getRLP[Proposal](s.gov, propKey(id))
	if ok && p.Status == ProposalOpen && s.height > p.Expires && s.height != 0 {
		// Shown as expired as soon as it is; stored so at the next block.
		p.Status = ProposalExpired
	}
	return p, ok
}

// putProposal stores p's record; its arguments stay where they are.
func (s *State) putProposal(p Proposal) {
	if s.gov.has(argsKey(p.ID)) {
		p.Args = nil
	}
	putRLP(s.gov, propKey(p.ID), p)
}

// ProposalCount is the number of proposals made (ids 1 to it).
func (s *State) ProposalCount() uint64 { return s.gov.getUint("count") }

// OpenProposals lists the ids of org's open proposals, oldest first.
func (s *State) OpenProposals(org string) []uint64 {
	v, _ := getRLP[[]uint64](s.gov, openKey(org))
	return v
}

// addID appends id to the list of ids under key.
func (s *State) addID(key string, id uint64) {
	ids, _ := getRLP[[]uint64](s.gov, key)
	putRLP(s.gov, key, append(ids, id))
}

// removeID takes id out of the list under key, deleting an empty list.
func (s *State) removeID(key string, id uint64) {
	ids, _ := getRLP[[]uint64](s.gov, key)
	ids = slices.DeleteFunc(ids, func(x uint64) bool { return x == id })
	if len(ids) == 0 {
		s.gov.del(key)
		return
	}
	putRLP(s.gov, key, ids)
}

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
	if err := CheckMemo(memo); err != nil {
		return 0, err
	}
	open := s.OpenProposals(o.Name)
	if limit := s.MaxOpenProposals(); uint64(len(open)) >= limit {
		return 0, reverts("organization %s has %d open proposals, at most %d: cancel one or wait until one is decided", o.Name, len(open), limit)
	}
	act, err := DecodeArgs(a, args)
	if err != nil {
		return 0, revert(err.Error())
	}
	if err := act.Validate(); err != nil {
		return 0, err
	}
	if err := act.check(s); err != nil {
		return 0, err
	}
	rule := s.Policy().Rules[a.Class()]
	id := s.ProposalCount() + 1
	s.gov.putUint("count", id)
	p := Proposal{ID: id, Action: a, Memo: memo, Proposer: caller, Org: o.Name,
		Created: s.height, Expires: s.height + rule.ExpiryBlocks, Status: ProposalOpen}
	s.gov.put(argsKey(id), args)
	s.putProposal(p)
	putRLP(s.gov, openKey(o.Name), append(open, id))
	s.addID(expKey(p.Expires+1), id)
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
	p, ok := s.proposalRecord(id)
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
	s.putProposal(p)
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
		s.addID(schedKey(p.ActivatesAt), p.ID)
		s.closeOpen(p)
		s.record(Event{Proposal: p.ID, Kind: "passed", Detail: fmt.Sprintf("activates at height %d", p.ActivatesAt)})
	case hopeless:
		p.Status, p.Decided = ProposalRejected, s.height
		s.closeOpen(p)
		s.record(Event{Proposal: p.ID, Kind: "rejected"})
	}
}

// closeOpen takes p, decided, out of the open proposals' indexes.
func (s *State) closeOpen(p *Proposal) {
	s.removeID(openKey(p.Org), p.ID)
	s.removeID(expKey(p.Expires+1), p.ID)
}

// Cancel withdraws an open proposal; only an admin of its organization.
func (s *State) Cancel(caller common.Address, id uint64) error {
	o, err := s.admin(caller)
	if err != nil {
		return err
	}
	p, ok := s.proposalRecord(id)
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
	s.putProposal(p)
	s.closeOpen(&p)
	s.record(Event{Proposal: id, Kind: "cancelled", Org: o.Name, Actor: caller})
	return nil
}

// CheckAdminRoles refuses roles an admin may not set by itself (auditor,
// unknown bits): those need a proposal.
func CheckAdminRoles(roles Role) error {
	if roles&^(RoleRead|RoleWrite|RoleDeploy|RoleAdmin) != 0 {
		return reverts("roles %#x: an admin sets read 1, write 2, deploy 4, admin 8; auditor needs a proposal", uint32(roles))
	}
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
	if err := CheckAdminRoles(roles); err != nil {
		return err
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
// proposal to execute, an open one to expire, or a recount under way. It
// reads three slots however many proposals are open.
func (s *State) DueAt(h uint64) bool {
	return s.gov.has(schedKey(h)) || s.gov.has(expKey(h)) || s.gov.has(retallyKey)
}

// BlockEffects is what the start of a block changed that the node acts on.
type BlockEffects struct {
	// Executed proposals, in order.
	Executed []uint64
	// ValidatorChanges scheduled by them.
	ValidatorChanges []ValidatorChange
	// ParamChanges are the engine parameter changes they scheduled (each
	// with every engine parameter governance set, see ParamChange).
	ParamChanges []ParamChange
	// PurgedGroups are the privacy groups PurgeGroup actions purged: a
	// purge at the start of a block is in no transaction, so no
	// GroupPurged event tells of it.
	PurgedGroups []common.Hash
	// ContractChanges are the versions of the contract registry that
	// UpgradeContract recorded and DeprecateContract deprecated, as they
	// are after the action: like a purge, no event tells of them.
	ContractChanges []ContractRecord
}

// snapshotter is the part of the StateDB that lets an action that fails
// half way leave nothing behind.
type snapshotter interface {
	Snapshot() int
	RevertToSnapshot(int)
}

// BeginBlock runs at the start of every block: it expires the open
// proposals whose expiry this height is, executes the passed ones whose
// activation height this is, and goes on with a recount of open
// proposals when the electorate changed. st must be the writer the State
// was opened on. Its work is bounded by the proposals due at this height
// (plus one organization's open proposals during a recount), not by the
// number of open proposals.
func (s *State) BeginBlock(st StateWriter) BlockEffects {
	var fx BlockEffects
	if ids, _ := getRLP[[]uint64](s.gov, expKey(s.height)); len(ids) > 0 {
		s.gov.del(expKey(s.height))
		for _, id := range ids {
			p, ok := s.proposalRecord(id)
			if !ok || p.Status != ProposalExpired {
				continue
			}
			p.Decided = s.height
			s.putProposal(p)
			s.removeID(openKey(p.Org), id)
			s.record(Event{Proposal: id, Kind: "expired"})
		}
	}
	if ids, _ := getRLP[[]uint64](s.gov, schedKey(s.height)); len(ids) > 0 {
		s.gov.del(schedKey(s.height))
		before := s.electorate()
		for _, id := range ids {
			if s.execute(st, id, &fx) {
				fx.Executed = append(fx.Executed, id)
			}
		}
		// Membership or policy may have changed who counts and how much:
		// an open proposal whose votes now decide it is decided by the
		// recount, since nobody may be left to vote on it.
		if len(fx.Executed) > 0 && s.electorate() != before {
			s.gov.putUint(retallyKey, 1)
		}
	}
	s.retallyStep()
	return fx
}

// execute runs passed proposal id; false if it failed (it is marked so)
// or is not a passed proposal.
func (s *State) execute(st StateWriter, id uint64, fx *BlockEffects) bool {
	p, ok := s.proposalRecord(id)
	if !ok || p.Status != ProposalPassed {
		return false
	}
	before := s.Validators()
	snap, canRevert := st.(snapshotter)
	var rev int
	if canRevert {
		rev = snap.Snapshot()
	}
	args := p.Args
	if len(args) == 0 {
		args = s.gov.get(argsKey(id))
	}
	act, err := DecodeArgs(p.Action, args)
	if err == nil {
		err = act.Validate()
	}
	if err == nil {
		err = act.check(s)
	}
	if err != nil {
		if canRevert {
			snap.RevertToSnapshot(rev)
		}
		p.Status, p.Result = ProposalFailed, err.Error()
		s.putProposal(p)
		s.record(Event{Proposal: id, Kind: "failed", Detail: err.Error()})
		return false
	}
	act.apply(s)
	switch a := act.(type) {
	case PurgeGroup:
		fx.PurgedGroups = append(fx.PurgedGroups, common.Hash(a.Group))
	case UpgradeContract:
		r, _ := s.ContractByName(a.Name)
		fx.ContractChanges = append(fx.ContractChanges, r)
	case DeprecateContract:
		r, _ := s.ContractVersion(a.Name, a.Version)
		fx.ContractChanges = append(fx.ContractChanges, r)
	case SetParameter:
		if p, _ := paramSpec(a.Name); p.Engine != "" {
			changes := s.ParamChanges()
			fx.ParamChanges = append(fx.ParamChanges, changes[len(changes)-1])
		}
	}
	p.Status = ProposalExecuted
	s.putProposal(p)
	s.record(Event{Proposal: id, Kind: "executed", Detail: p.Action.String()})
	if !slices.Equal(before, s.Validators()) {
		changes := s.ValidatorChanges()
		fx.ValidatorChanges = append(fx.ValidatorChanges, changes[len(changes)-1])
	}
	return true
}

// electorate is what a tally depends on besides the votes: the active
// organizations with their weights, and the rules.
func (s *State) electorate() string {
	rules := s.Policy().Rules
	raw, err := rlp.EncodeToBytes([]any{s.activeOrgs(), rules[:]})
	if err != nil {
		panic(fmt.Sprintf("system: encode the electorate: %v", err))
	}
	return string(raw)
}

// retallyStep decides, against the electorate now, the open proposals of
// the next organization of the recount that has any; organizations with
// none cost one read each.
func (s *State) retallyStep() {
	next := s.gov.getUint(retallyKey)
	if next == 0 {
		return
	}
	names := s.OrgNames()
	for ; next <= uint64(len(names)); next++ {
		open := s.OpenProposals(names[next-1])
		if len(open) == 0 {
			continue
		}
		for _, id := range open {
			if p, ok := s.proposalRecord(id); ok && p.Status == ProposalOpen {
				s.decide(&p)
				if p.Status != ProposalOpen {
					s.putProposal(p)
				}
			}
		}
		next++
		break
	}
	if next > uint64(len(names)) {
		s.gov.del(retallyKey)
		return
	}
	s.gov.putUint(retallyKey, next)
}
