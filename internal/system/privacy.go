package system

import (
	"fmt"
	"slices"

	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/rlp"
)

// What the public chain does for private transactions (docs/design/
// governance.md, "Private transactions"): the markers that order them,
// purges, auditor grants and the log of what was disclosed to auditors.
// The payloads themselves never reach the chain.
//
// Nodes as senders. A registered node's address (Node.ID, the address of
// its node key) may send transactions, paid from its own balance, but only
// calls of the registry's privacyNodeCalls (State.CheckSender and
// CheckTransaction refuse everything else; the registry refuses the other
// functions from a node too). In those calls the node acts for its
// organization: it must not be revoked, and its organization must be
// active.
//
// Who may do what, per group:
//
//   - privateMarker: a node, or an account holding write, of a member
//     organization; for a group that does not exist yet and whose members
//     are given, of one of them (a legacy group is created).
//   - purgeGroup: an admin of a member organization approves; the group
//     is purged when every member organization has approved (or at once by
//     the governance action PurgeGroup).
//   - grantAuditor, revokeAuditor: likewise, one approval per member
//     organization for the same (auditor, fromHeight); or the governance
//     actions GrantAuditor, RevokeAuditor.
//   - recordDisclosure: a node or an admin of a member organization, for
//     an auditor with a grant.
//
// A change of a group's members voids the approvals given so far (they
// were given by the members before the change).

// Bounds of the privacy calls.
const (
	// MaxGroupAuditors bounds the auditor grants of one group, and the
	// grants and revocations awaiting its members' approval.
	MaxGroupAuditors = 16
	// MaxDisclosureHashes bounds the payload hashes of one
	// recordDisclosure.
	MaxDisclosureHashes = 256
	// LegacyGroupDescription is the description of a group a marker
	// created (a privateFor transaction's legacy group).
	LegacyGroupDescription = "legacy"
)

// Gas of the privacy calls that every private transaction pays (markers)
// or every payload served to an auditor (disclosures): a fixed cost below
// a write's, the input by the word, and for a marker the bytes a group it
// creates would store; a disclosure pays per hash for its log, as the
// EVM's LOG2 of its size would cost.
const (
	gasPrivacyCall = 25_000
	gasDisclosure  = 3_000 // per payload hash
)

// privacyNodeCalls are the registry functions a node may send.
var privacyNodeCalls = map[string]bool{"privateMarker": true, "createGroup": true, "deleteGroup": true, "recordDisclosure": true}

// nodeRefusal is the error of anything else a node sends.
func nodeRefusal(node common.Address) error {
	return reverts("%s: node %s may only send privacy calls to the registry", ErrNotPermitted, node.Hex())
}

// IsNode reports whether addr is a registered node's address (revoked or
// not): such an address may send only privacy calls to the registry.
func (s *State) IsNode(addr common.Address) bool { return s.reg.has(nodeKey(addr)) }

// nodeOrg returns the organization caller is a node of: isNode is false
// when caller is no registered node; err says why a node may not act (it
// is revoked, or of no active organization).
func (s *State) nodeOrg(caller common.Address) (o Org, isNode bool, err error) {
	n, ok := s.Node(caller)
	if !ok {
		return Org{}, false, nil
	}
	if n.Revoked {
		return Org{}, true, reverts("node %s is revoked", caller.Hex())
	}
	if n.Org == "" {
		return Org{}, true, reverts("node %s belongs to no organization", caller.Hex())
	}
	o, ok = s.Org(n.Org)
	if !ok || o.Status != StatusActive {
		return Org{}, true, reverts("organization %s of node %s is %s", n.Org, caller.Hex(), o.Status)
	}
	return o, true, nil
}

// ---- legacy group ids ----

// javaHash is Java's Arrays.hashCode of b as signed bytes: h = 1, then
// h = 31*h + b for each byte, in int32 with wraparound.
func javaHash(b []byte) int32 {
	h := int32(1)
	for _, x := range b {
		h = 31*h + int32(int8(x))
	}
	return h
}

// LegacyGroupID is the id of the privacy group of a privateFor-style
// private transaction, as web3js-quorum's generatePrivacyGroup and Besu
// derive it from the members' privacy identities (32-byte X25519 keys):
// each key once (its first occurrence), sorted ascending by Java's
// Arrays.hashCode of its bytes as signed int8 (javaHash), keys of equal
// hash in the order given (a stable sort, as JavaScript's); then
// keccak256 of the RLP list of the raw keys.
func LegacyGroupID(keys [][]byte) common.Hash {
	var uniq [][]byte
	for _, k := range keys {
		if !slices.ContainsFunc(uniq, func(u []byte) bool { return string(u) == string(k) }) {
			uniq = append(uniq, k)
		}
	}
	slices.SortStableFunc(uniq, func(a, b []byte) int {
		ha, hb := javaHash(a), javaHash(b)
		switch {
		case ha < hb:
			return -1
		case ha > hb:
			return 1
		}
		return 0
	})
	enc, err := rlp.EncodeToBytes(uniq)
	if err != nil {
		panic(fmt.Sprintf("system: encode privacy keys: %v", err))
	}
	return crypto.Keccak256Hash(enc)
}

// ---- markers ----

// PrivateMarker records a private transaction of group id whose envelope
// hashes to payloadHash, for caller: a node or an account holding write
// of a member organization. With members given and no group id, it first
// creates the legacy group of members (name "", description "legacy",
// creator the caller's organization), whose id must be LegacyGroupID of
// the members' privacy identities in the registry; with members given and
// group id existing, members are ignored. It returns the group, whether
// it was created, and the caller's organization.
func (s *State) PrivateMarker(caller common.Address, id, payloadHash common.Hash, members []string) (Group, bool, Org, error) {
	o, err := s.groupWriter(caller)
	if err != nil {
		return Group{}, false, Org{}, err
	}
	if payloadHash == (common.Hash{}) {
		return Group{}, false, Org{}, reverts("privateMarker: payloadHash is zero")
	}
	g, ok := s.Group(id)
	created := false
	if !ok {
		if len(members) == 0 {
			return Group{}, false, Org{}, reverts("no %s (give its members to create a legacy group)", groupText(id))
		}
		if g, err = s.createLegacyGroup(caller, o, id, members); err != nil {
			return Group{}, false, Org{}, err
		}
		created = true
	}
	switch {
	case g.Status != GroupActive:
		return Group{}, false, Org{}, reverts("privacy %s is %s", groupText(id), g.Status)
	case !slices.Contains(g.Members, o.Name):
		return Group{}, false, Org{}, reverts("organization %s of %s is not a member of %s", o.Name, caller.Hex(), groupText(id))
	}
	return g, created, o, nil
}

// createLegacyGroup creates group id of members for caller of
// organization o, checking id against the members' privacy keys.
func (s *State) createLegacyGroup(caller common.Address, o Org, id common.Hash, members []string) (Group, error) {
	if err := CheckGroupMembers(members); err != nil {
		return Group{}, err
	}
	if !slices.Contains(members, o.Name) {
		return Group{}, reverts("organization %s of %s must be a member of the group it creates", o.Name, caller.Hex())
	}
	sorted := sortedMembers(members)
	keys := make([][]byte, 0, len(sorted))
	for _, m := range sorted {
		if err := s.canJoin(m); err != nil {
			return Group{}, err
		}
		k := s.PrivacyKey(m)
		if k == nil {
			return Group{}, reverts("organization %s has no privacy key", m)
		}
		ident := k.Identity()
		keys = append(keys, ident[:])
	}
	if want := LegacyGroupID(keys); want != id {
		return Group{}, reverts("%s is not the legacy id of its members' privacy keys, which is %s", groupText(id), want.Hex())
	}
	g := Group{ID: id, Description: LegacyGroupDescription, Creator: o.Name, Members: sorted, MembersHash: MembersHash(sorted),
		Status: GroupActive, Created: s.height, Changed: s.height}
	s.putGroup(g)
	for _, m := range sorted {
		s.joinGroup(m, id)
	}
	return g, nil
}

// ---- approvals of members ----

func purgeOKKey(id common.Hash) string { return "purgeok/" + string(id[:]) }
func grantOKKey(id common.Hash) string { return "grantok/" + string(id[:]) }

// PendingAuditorChange is a grant (or revocation) of an auditor's access
// to a group that some of its member organizations approved.
type PendingAuditorChange struct {
	Org      string
	From     uint64 // a grant's first height
	Revoke   bool
	Approved []string // member organizations, in the order they approved
}

// PurgeApprovals lists the member organizations that approved purging
// group id, in the order they did.
func (s *State) PurgeApprovals(id common.Hash) []string {
	v, _ := getRLP[[]string](s.reg, purgeOKKey(id))
	return v
}

// PendingAuditorChanges lists the auditor grants and revocations of group
// id awaiting approval, at most MaxGroupAuditors.
func (s *State) PendingAuditorChanges(id common.Hash) []PendingAuditorChange {
	v, _ := getRLP[[]PendingAuditorChange](s.reg, grantOKKey(id))
	return v
}

func (s *State) putPending(id common.Hash, p []PendingAuditorChange) {
	if len(p) == 0 {
		s.reg.del(grantOKKey(id))
		return
	}
	putRLP(s.reg, grantOKKey(id), p)
}

// clearApprovals voids the approvals of group id's purge and auditor
// changes: its members changed.
func (s *State) clearApprovals(id common.Hash) {
	s.reg.del(purgeOKKey(id))
	s.reg.del(grantOKKey(id))
}

// allApproved reports whether every member of g is in approved.
func allApproved(g Group, approved []string) bool {
	for _, m := range g.Members {
		if !slices.Contains(approved, m) {
			return false
		}
	}
	return true
}

// adminOfMember returns group id (active, or with deleted also a deleted
// one) and the organization whose admin caller is, a member of it.
func (s *State) adminOfMember(caller common.Address, id common.Hash, deleted bool) (Group, Org, error) {
	o, err := s.admin(caller)
	if err != nil {
		return Group{}, Org{}, err
	}
	g, ok := s.Group(id)
	switch {
	case !ok:
		return Group{}, Org{}, reverts("no %s", groupText(id))
	case g.Status == GroupPurged || (g.Status == GroupDeleted && !deleted):
		return Group{}, Org{}, reverts("%s is %s", groupText(id), g.Status)
	case !slices.Contains(g.Members, o.Name):
		return Group{}, Org{}, reverts("organization %s of %s is not a member of %s", o.Name, caller.Hex(), groupText(id))
	}
	return g, o, nil
}

// ---- purge ----

// ApprovePurge records that caller's organization, a member of group id
// (active or deleted), approves purging it; caller must be an admin of
// it. When every member organization has approved, the group is purged
// (purged reports it).
func (s *State) ApprovePurge(caller common.Address, id common.Hash) (g Group, o Org, purged bool, err error) {
	g, o, err = s.adminOfMember(caller, id, true)
	if err != nil {
		return Group{}, Org{}, false, err
	}
	approved := s.PurgeApprovals(id)
	if slices.Contains(approved, o.Name) {
		return Group{}, Org{}, false, reverts("organization %s approved the purge of %s already", o.Name, groupText(id))
	}
	approved = append(approved, o.Name)
	if allApproved(g, approved) {
		return s.purge(g), o, true, nil
	}
	putRLP(s.reg, purgeOKKey(id), approved)
	return g, o, false, nil
}

// purge marks g purged at this height: it leaves its members' lists of
// groups, its pending approvals are dropped, its record stays.
func (s *State) purge(g Group) Group {
	if g.Status == GroupActive {
		for _, m := range g.Members {
			s.leaveGroup(m, g.ID)
		}
	}
	g.Status, g.Changed = GroupPurged, s.height
	s.putGroup(g)
	s.clearApprovals(g.ID)
	return g
}

// ---- auditors ----

// auditorCountKey counts an organization's accounts that hold the auditor
// role (putAccount keeps it), so that a grant checks the grantee with one
// read, however many accounts it has.
func auditorCountKey(org string) string { return "auditors/" + org }

// AuditorAccounts is the number of org's accounts that hold the auditor
// role (frozen ones included).
func (s *State) AuditorAccounts(org string) uint64 { return s.reg.getUint(auditorCountKey(org)) }

// countAuditor keeps auditors/ORG as an account changes from old to new.
func (s *State) countAuditor(old, new Account) {
	was, is := old.Org != "" && old.Roles&RoleAuditor != 0, new.Org != "" && new.Roles&RoleAuditor != 0
	if was && (!is || old.Org != new.Org) {
		s.reg.putUint(auditorCountKey(old.Org), s.AuditorAccounts(old.Org)-1)
	}
	if is && (!was || old.Org != new.Org) {
		s.reg.putUint(auditorCountKey(new.Org), s.AuditorAccounts(new.Org)+1)
	}
}

// checkAuditor refuses org as an auditor of g: it must be an active
// organization, not a member, one of whose accounts holds the auditor
// role (which only governance grants: GrantRoles); and a new grant must
// fit MaxGroupAuditors.
func (s *State) checkAuditor(g Group, org string) error {
	o, ok := s.Org(org)
	switch {
	case !ok:
		return reverts("organization %s is not in the registry", shortText(org))
	case o.Status != StatusActive:
		return reverts("organization %s is %s", org, o.Status)
	case slices.Contains(g.Members, org):
		return reverts("organization %s is a member of %s: members see its payloads already", org, groupText(g.ID))
	case s.AuditorAccounts(org) == 0:
		return reverts("organization %s has no account with the auditor role (a GrantRoles proposal gives one)", org)
	}
	if !slices.ContainsFunc(g.Auditors, func(a AuditorGrant) bool { return a.Org == org }) && len(g.Auditors) >= MaxGroupAuditors {
		return reverts("%s has %d auditor grants, at most %d", groupText(g.ID), len(g.Auditors), MaxGroupAuditors)
	}
	return nil
}

// auditorGrant returns org's grant on g.
func auditorGrant(g Group, org string) (AuditorGrant, bool) {
	i := slices.IndexFunc(g.Auditors, func(a AuditorGrant) bool { return a.Org == org })
	if i < 0 {
		return AuditorGrant{}, false
	}
	return g.Auditors[i], true
}

// setAuditor grants org access to g's payloads from height from (a grant
// it had is replaced) and drops the changes of org awaiting approval.
func (s *State) setAuditor(g Group, org string, from uint64) Group {
	g.Auditors = slices.DeleteFunc(slices.Clone(g.Auditors), func(a AuditorGrant) bool { return a.Org == org })
	g.Auditors = append(g.Auditors, AuditorGrant{Org: org, From: from})
	g.Changed = s.height
	s.putGroup(g)
	s.dropPending(g.ID, org)
	return g
}

// removeAuditor takes org's grant on g away and drops the changes of org
// awaiting approval.
func (s *State) removeAuditor(g Group, org string) Group {
	g.Auditors = slices.DeleteFunc(slices.Clone(g.Auditors), func(a AuditorGrant) bool { return a.Org == org })
	if len(g.Auditors) == 0 {
		g.Auditors = nil
	}
	g.Changed = s.height
	s.putGroup(g)
	s.dropPending(g.ID, org)
	return g
}

func (s *State) dropPending(id common.Hash, org string) {
	p := s.PendingAuditorChanges(id)
	if i := slices.IndexFunc(p, func(c PendingAuditorChange) bool { return c.Org == org }); i >= 0 {
		s.putPending(id, slices.Delete(p, i, i+1))
	}
}

// ApproveAuditor records caller's organization's approval of granting
// org access to group id's payloads from height from (revoke false), or
// of revoking its grant (revoke true, from 0); caller must be an admin of
// a member organization of the active group. An approval of another
// change for org than the one awaiting approval starts that change over.
// When every member organization approved the same change, it takes
// effect: done reports it, and change is what took effect.
func (s *State) ApproveAuditor(caller common.Address, id common.Hash, org string, from uint64, revoke bool) (g Group, o Org, change PendingAuditorChange, done bool, err error) {
	fail := func(err error) (Group, Org, PendingAuditorChange, bool, error) {
		return Group{}, Org{}, PendingAuditorChange{}, false, err
	}
	if g, o, err = s.adminOfMember(caller, id, false); err != nil {
		return fail(err)
	}
	if revoke {
		if _, ok := auditorGrant(g, org); !ok {
			return fail(reverts("organization %s has no auditor grant for %s", shortText(org), groupText(id)))
		}
	} else {
		if err := s.checkAuditor(g, org); err != nil {
			return fail(err)
		}
		if a, ok := auditorGrant(g, org); ok && a.From == from {
			return fail(reverts("organization %s has an auditor grant for %s from height %d already", org, groupText(id), from))
		}
	}
	pending := s.PendingAuditorChanges(id)
	i := slices.IndexFunc(pending, func(c PendingAuditorChange) bool { return c.Org == org })
	switch {
	case i >= 0 && (pending[i].From != from || pending[i].Revoke != revoke):
		pending[i] = PendingAuditorChange{Org: org, From: from, Revoke: revoke}
	case i >= 0 && slices.Contains(pending[i].Approved, o.Name):
		return fail(reverts("organization %s approved this auditor change of %s for %s already", o.Name, groupText(id), org))
	case i < 0:
		if len(pending) >= MaxGroupAuditors {
			return fail(reverts("%s has %d auditor changes awaiting approval, at most %d", groupText(id), len(pending), MaxGroupAuditors))
		}
		pending = append(pending, PendingAuditorChange{Org: org, From: from, Revoke: revoke})
		i = len(pending) - 1
	}
	pending[i].Approved = append(pending[i].Approved, o.Name)
	change = pending[i]
	if !allApproved(g, change.Approved) {
		s.putPending(id, pending)
		return g, o, change, false, nil
	}
	s.putPending(id, slices.Delete(pending, i, i+1))
	if revoke {
		return s.removeAuditor(g, org), o, change, true, nil
	}
	return s.setAuditor(g, org, from), o, change, true, nil
}

// ---- disclosures ----

// RecordDisclosure checks that caller, a node or an admin of a member
// organization of group id (active or deleted), may record that it served
// the payloads of hashes to auditor, which has a grant; it returns the
// caller's organization. The chain keeps no record: the events are the
// log.
func (s *State) RecordDisclosure(caller common.Address, id common.Hash, auditor string, hashes []common.Hash) (Org, error) {
	o, isNode, err := s.nodeOrg(caller)
	if !isNode {
		o, err = s.admin(caller)
	}
	if err != nil {
		return Org{}, err
	}
	if len(hashes) == 0 || len(hashes) > MaxDisclosureHashes {
		return Org{}, reverts("recordDisclosure: %d payload hashes, want 1 to %d", len(hashes), MaxDisclosureHashes)
	}
	for i, h := range hashes {
		if h == (common.Hash{}) {
			return Org{}, reverts("recordDisclosure: payload hash %d is zero", i)
		}
	}
	g, ok := s.Group(id)
	switch {
	case !ok:
		return Org{}, reverts("no %s", groupText(id))
	case g.Status == GroupPurged:
		return Org{}, reverts("privacy %s is purged", groupText(id))
	case !slices.Contains(g.Members, o.Name):
		return Org{}, reverts("organization %s of %s is not a member of %s", o.Name, caller.Hex(), groupText(id))
	}
	if _, ok := auditorGrant(g, auditor); !ok {
		return Org{}, reverts("organization %s has no auditor grant for %s", shortText(auditor), groupText(id))
	}
	return o, nil
}

// ---- the registry's functions ----

// privacyGas is the gas of privateMarker and recordDisclosure (ok false
// for other functions): see gasPrivacyCall. Arguments that do not decode
// count as none (the call reverts).
func privacyGas(m *abi.Method, data []byte) (uint64, bool) {
	words := uint64(len(data)+4+31) / 32
	switch m.Name {
	case "privateMarker":
		return gasPrivacyCall + gasWord*words + gasStoredByte*storedBytes(m, data), true
	case "recordDisclosure":
		var n uint64
		if checkGroupInput(m.Name, data) == nil {
			if vals, err := m.Inputs.Unpack(data); err == nil && len(vals) == 3 {
				if hashes, ok := vals[2].([][32]byte); ok {
					n = uint64(len(hashes))
				}
			}
		}
		return gasPrivacyCall + gasWord*words + gasDisclosure*n, true
	}
	return 0, false
}

func privacyView(st *State, name string, args in) ([]any, error) {
	var a struct{ ID common.Hash }
	if err := args.into(&a); err != nil {
		return nil, err
	}
	switch name {
	case "groupAuditors":
		g, _ := st.Group(a.ID)
		orgs, from := make([]string, len(g.Auditors)), make([]uint64, len(g.Auditors))
		for i, x := range g.Auditors {
			orgs[i], from[i] = x.Org, x.From
		}
		return []any{orgs, from}, nil
	case "purgeApprovals":
		v := st.PurgeApprovals(a.ID)
		if v == nil {
			v = []string{}
		}
		return []any{v}, nil
	}
	return nil, fmt.Errorf("%s is not implemented", name)
}

func (p *precompile) privacyWrite(st *State, from common.Address, name string, args in) ([]any, []*types.Log, error) {
	r := &Registry
	by := common.BytesToHash(from[:])
	switch name {
	case "privateMarker":
		var a struct {
			Group       common.Hash
			PayloadHash common.Hash
			Members     []string
		}
		if err := args.into(&a); err != nil {
			return nil, nil, err
		}
		g, created, o, err := st.PrivateMarker(from, a.Group, a.PayloadHash, a.Members)
		if err != nil {
			return nil, nil, err
		}
		var logs []*types.Log
		if created {
			l, err := event(r, "GroupCreated", []common.Hash{g.ID, by}, g.Creator, g.Name, g.Members, groupIDArg(g.MembersHash))
			if err != nil {
				return nil, nil, err
			}
			logs = append(logs, l)
		}
		l, err := event(r, "PrivateMarker", []common.Hash{g.ID}, groupIDArg(a.PayloadHash), o.Name)
		return nil, append(logs, l), err
	case "purgeGroup":
		var a struct{ ID common.Hash }
		if err := args.into(&a); err != nil {
			return nil, nil, err
		}
		g, o, purged, err := st.ApprovePurge(from, a.ID)
		if err != nil {
			return nil, nil, err
		}
		l, err := event(r, "GroupPurgeApproved", []common.Hash{g.ID, by}, o.Name)
		logs := []*types.Log{l}
		if err == nil && purged {
			l, err = event(r, "GroupPurged", []common.Hash{g.ID}, g.Changed)
			logs = append(logs, l)
		}
		return nil, logs, err
	case "grantAuditor", "revokeAuditor":
		var a struct {
			ID         common.Hash
			Org        string
			FromHeight uint64
		}
		if err := args.into(&a); err != nil {
			return nil, nil, err
		}
		revoke := name == "revokeAuditor"
		g, o, c, done, err := st.ApproveAuditor(from, a.ID, a.Org, a.FromHeight, revoke)
		if err != nil {
			return nil, nil, err
		}
		l, err := event(r, "AuditorChangeApproved", []common.Hash{g.ID, by}, o.Name, c.Org, c.From, c.Revoke)
		logs := []*types.Log{l}
		if err == nil && done {
			if revoke {
				l, err = event(r, "AuditorRevoked", []common.Hash{g.ID}, c.Org)
			} else {
				l, err = event(r, "AuditorGranted", []common.Hash{g.ID}, c.Org, c.From)
			}
			logs = append(logs, l)
		}
		return nil, logs, err
	case "recordDisclosure":
		var a struct {
			Group         common.Hash
			Auditor       string
			PayloadHashes []common.Hash
		}
		if err := args.into(&a); err != nil {
			return nil, nil, err
		}
		o, err := st.RecordDisclosure(from, a.Group, a.Auditor, a.PayloadHashes)
		if err != nil {
			return nil, nil, err
		}
		logs := make([]*types.Log, len(a.PayloadHashes))
		for i, h := range a.PayloadHashes {
			if logs[i], err = event(r, "Disclosed", []common.Hash{a.Group}, a.Auditor, groupIDArg(h), o.Name); err != nil {
				return nil, nil, err
			}
		}
		return nil, logs, nil
	}
	return nil, nil, fmt.Errorf("%s is not implemented", name)
}

// ---- governance actions ----

// GroupID is a privacy group's id as an action's argument: its text is 0x
// and 64 hex digits, or Besu's base64 privacyGroupId (ParseGroupID).
type GroupID common.Hash

// MarshalText writes the id as 0x and 64 hex digits.
func (id GroupID) MarshalText() ([]byte, error) { return []byte(common.Hash(id).Hex()), nil }

// UnmarshalText reads an id as ParseGroupID does.
func (id *GroupID) UnmarshalText(b []byte) error {
	h, err := ParseGroupID(string(b))
	*id = GroupID(h)
	return err
}

func (id GroupID) check() error {
	if id == (GroupID{}) {
		return reverts("group id is zero")
	}
	return nil
}

// PurgeGroup purges a privacy group at once, without its members'
// approvals: a legal order.
type PurgeGroup struct {
	Group GroupID `abi:"group" meta:"ID" help:"the group: 0x and 64 hex digits, or its base64 privacyGroupId"`
}

func (PurgeGroup) Action() Action    { return ActPurgeGroup }
func (a PurgeGroup) Validate() error { return a.Group.check() }

func (a PurgeGroup) check(s *State) error {
	g, ok := s.Group(common.Hash(a.Group))
	switch {
	case !ok:
		return reverts("no %s", groupText(common.Hash(a.Group)))
	case g.Status == GroupPurged:
		return reverts("%s is purged already", groupText(g.ID))
	}
	return nil
}

func (a PurgeGroup) apply(s *State) {
	g, _ := s.Group(common.Hash(a.Group))
	s.purge(g)
}

// GrantAuditor grants an auditor organization access to a group's
// payloads from a height on, without the members' approvals.
type GrantAuditor struct {
	Group      GroupID `abi:"group" meta:"ID" help:"the group: 0x and 64 hex digits, or its base64 privacyGroupId"`
	Org        string  `abi:"org" max:"64" meta:"ORG" help:"the auditor organization (one of its accounts holds the auditor role; not a member)"`
	FromHeight uint64  `abi:"fromHeight" flag:"from" meta:"HEIGHT" help:"the first height of the markers whose payloads it may read"`
}

func (GrantAuditor) Action() Action { return ActGrantAuditor }

func (a GrantAuditor) Validate() error {
	if err := checkBounds(a); err != nil {
		return err
	}
	if err := checkOrgName(a.Org); err != nil {
		return err
	}
	return a.Group.check()
}

func (a GrantAuditor) check(s *State) error {
	g, ok := s.Group(common.Hash(a.Group))
	switch {
	case !ok:
		return reverts("no %s", groupText(common.Hash(a.Group)))
	case g.Status != GroupActive:
		return reverts("%s is %s", groupText(g.ID), g.Status)
	}
	if x, ok := auditorGrant(g, a.Org); ok && x.From == a.FromHeight {
		return reverts("organization %s has an auditor grant for %s from height %d already", a.Org, groupText(g.ID), a.FromHeight)
	}
	return s.checkAuditor(g, a.Org)
}

func (a GrantAuditor) apply(s *State) {
	g, _ := s.Group(common.Hash(a.Group))
	s.setAuditor(g, a.Org, a.FromHeight)
}

// RevokeAuditor takes an auditor organization's access to a group's
// payloads away, without the members' approvals.
type RevokeAuditor struct {
	Group GroupID `abi:"group" meta:"ID" help:"the group: 0x and 64 hex digits, or its base64 privacyGroupId"`
	Org   string  `abi:"org" max:"64" meta:"ORG" help:"the auditor organization"`
}

func (RevokeAuditor) Action() Action { return ActRevokeAuditor }

func (a RevokeAuditor) Validate() error {
	if err := checkBounds(a); err != nil {
		return err
	}
	if err := checkOrgName(a.Org); err != nil {
		return err
	}
	return a.Group.check()
}

func (a RevokeAuditor) check(s *State) error {
	g, ok := s.Group(common.Hash(a.Group))
	if !ok {
		return reverts("no %s", groupText(common.Hash(a.Group)))
	}
	if _, ok := auditorGrant(g, a.Org); !ok {
		return reverts("organization %s has no auditor grant for %s", a.Org, groupText(g.ID))
	}
	return nil
}

func (a RevokeAuditor) apply(s *State) {
	g, _ := s.Group(common.Hash(a.Group))
	s.removeAuditor(g, a.Org)
}
