package system

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
)

// Privacy groups: sets of organizations that share private transactions.
// A group's existence, its members and their hash are public, kept here in
// the registry's storage; what the members say to each other is not (the
// privacy layer keeps it on the members' nodes).
//
// The registry's records of groups, by key:
//
//	group/ID      a group (RLP of storedGroup); ID is the 32 raw bytes
//	groupsof/ORG  the ids of the active groups ORG belongs to (RLP list; at
//	              most maxGroupsPerOrg when it joined the last): a group
//	              joined is appended, one left is replaced by the last
//	groupseq      the number of group ids derived so far
//	purgeok/ID    the member organizations that approved purging group ID
//	              (privacy.go)
//	grantok/ID    the auditor grants and revocations of group ID awaiting
//	              its members' approval (privacy.go)
//	auditors/ORG  the number of ORG's accounts holding the auditor role
//
// Who may do what:
//
//   - createGroup: an account holding write (effective: its organization
//     active, not frozen), or a node (not revoked, its organization
//     active), of an organization that is among the members; every other
//     member must be an active organization.
//   - addMembers, removeMember: an admin of any organization that is a
//     member of the group (the group is an arrangement among peers: no
//     member owns it). An admin may remove any member, its own
//     organization included; removing the last member deletes the group.
//     Either voids the pending approvals of a purge and of auditor grants.
//   - deleteGroup: an admin or a node of a member organization.
//   - privateMarker, purgeGroup, grantAuditor, revokeAuditor,
//     recordDisclosure: see privacy.go.
//   - A deleted group keeps its record (status deleted, the members it had
//     when deleted): its id is never used again, and it is no longer in its
//     members' groupsof lists.
//   - An organization that is suspended or exits stays in the member lists
//     of its groups: the list changes only by a member's transaction, which
//     emits an event, so that member nodes follow one log of changes. Its
//     nodes are refused by the transport anyway, and any member's admin may
//     remove it; views show which members are not active.
//
// Every change emits an event of ICharterRegistry with the group's id
// (GroupCreated, GroupMembersAdded, GroupMemberRemoved, GroupDeleted, and
// those of privacy.go).

// Bounds of privacy groups.
const (
	// ParamMaxGroupsPerOrg bounds the active groups one organization
	// belongs to (a chain parameter).
	ParamMaxGroupsPerOrg = "maxGroupsPerOrg"
	// DefaultMaxGroupsPerOrg is maxGroupsPerOrg while unset.
	DefaultMaxGroupsPerOrg = 64
	// MaxGroupMembers bounds the member organizations of one group.
	MaxGroupMembers = 32
	// MaxGroupNameBytes and MaxGroupDescriptionBytes bound a group's texts.
	MaxGroupNameBytes        = 64
	MaxGroupDescriptionBytes = 256
	// maxGroupIDAttempts bounds the ids createGroup derives until one is
	// free (only a caller-supplied id can take a derived one).
	maxGroupIDAttempts = 16
)

// GroupStatus is where a privacy group stands.
type GroupStatus uint8

// Group statuses. A deleted group is no longer used, but its members'
// nodes keep its payloads; a purged one has them deleted from every node
// (its record is kept).
const (
	GroupActive  GroupStatus = 1
	GroupDeleted GroupStatus = 2
	GroupPurged  GroupStatus = 3
)

func (s GroupStatus) String() string {
	switch s {
	case GroupActive:
		return "active"
	case GroupDeleted:
		return "deleted"
	case GroupPurged:
		return "purged"
	}
	return fmt.Sprintf("status(%d)", uint8(s))
}

// AuditorGrant is an auditor organization's read access to a group's
// payloads: those of the markers at heights From and later (privacy.go).
type AuditorGrant struct {
	Org  string
	From uint64
}

// Group is a privacy group.
type Group struct {
	ID          common.Hash
	Name        string
	Description string
	Creator     string   // organization of the account that created it
	Members     []string // member organizations, sorted (bytewise), unique
	MembersHash common.Hash
	Status      GroupStatus
	Created     uint64         // height
	Changed     uint64         // height of the last change (Created if none)
	Auditors    []AuditorGrant // in the order granted, at most MaxGroupAuditors
}

// storedGroup is a group's record as stored (the id is its key).
type storedGroup struct {
	Name        string
	Description string
	Creator     string
	Members     []string
	MembersHash common.Hash
	Status      GroupStatus
	Created     uint64
	Changed     uint64
	Auditors    []AuditorGrant
}

var stringListArgs = func() abi.Arguments {
	t, err := abi.NewType("string[]", "", nil)
	if err != nil {
		panic(err)
	}
	return abi.Arguments{{Type: t}}
}()

// MembersHash is the hash of a member list that member nodes compare:
// keccak256 of the ABI encoding of the names as one string[], sorted
// bytewise ascending, each once. In Solidity,
// keccak256(abi.encode(members)) for the sorted string[] members; in
// ethers, keccak256(AbiCoder.defaultAbiCoder().encode(["string[]"],
// [members])). The order and repeats of members do not matter.
func MembersHash(members []string) common.Hash {
	packed, err := stringListArgs.Pack(sortedMembers(members))
	if err != nil {
		panic(fmt.Sprintf("system: encode group members: %v", err))
	}
	return crypto.Keccak256Hash(packed)
}

// sortedMembers returns a sorted copy of members without repeats.
func sortedMembers(members []string) []string {
	out := slices.Clone(members)
	slices.Sort(out)
	return slices.Compact(out)
}

// deriveGroupID is the id createGroup gives a group when its caller gives
// none: keccak256("charter.group" ‖ seq ‖ height ‖ caller ‖ org), seq and
// height as 8 bytes big-endian, caller its 20 bytes, org its name. seq is
// the chain's count of derived ids, so that no two are the same.
func deriveGroupID(seq, height uint64, caller common.Address, org string) common.Hash {
	b := make([]byte, 0, 13+8+8+20+len(org))
	b = append(b, "charter.group"...)
	b = binary.BigEndian.AppendUint64(b, seq)
	b = binary.BigEndian.AppendUint64(b, height)
	b = append(b, caller[:]...)
	b = append(b, org...)
	return crypto.Keccak256Hash(b)
}

// GroupIDBase64 is a group id as Besu's privacy API shows a
// privacyGroupId: standard base64 of the 32 bytes.
func GroupIDBase64(id common.Hash) string { return base64.StdEncoding.EncodeToString(id[:]) }

// ParseGroupID reads a group id: 0x and 64 hex digits, or the standard
// base64 of 32 bytes (Besu's privacyGroupId).
func ParseGroupID(s string) (common.Hash, error) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "0x") || strings.HasPrefix(s, "0X") {
		b, err := hexBytes(s[2:])
		if err != nil || len(b) != 32 {
			return common.Hash{}, fmt.Errorf("group id %q: want 0x and 64 hex digits, or 44 characters of base64", s)
		}
		return common.BytesToHash(b), nil
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(b) != 32 {
		return common.Hash{}, fmt.Errorf("group id %q: want 0x and 64 hex digits, or 44 characters of base64", s)
	}
	return common.BytesToHash(b), nil
}

func hexBytes(s string) ([]byte, error) {
	if len(s) != 64 {
		return nil, fmt.Errorf("want 64 hex digits")
	}
	return hex.DecodeString(s)
}

func groupKey(id common.Hash) string     { return "group/" + string(id[:]) }
func groupsOfKey(org string) string      { return "groupsof/" + org }
func groupText(id common.Hash) string    { return "group " + id.Hex() }
func groupIDArg(id common.Hash) [32]byte { return id }

const groupSeqKey = "groupseq"

// Group returns the privacy group id, deleted or not.
func (s *State) Group(id common.Hash) (Group, bool) {
	g, ok := getRLP[storedGroup](s.reg, groupKey(id))
	if !ok {
		return Group{}, false
	}
	return Group{ID: id, Name: g.Name, Description: g.Description, Creator: g.Creator, Members: g.Members,
		MembersHash: g.MembersHash, Status: g.Status, Created: g.Created, Changed: g.Changed, Auditors: g.Auditors}, true
}

// GroupsOf lists the ids of the active groups org belongs to: in the
// order it joined them until it leaves one, whose place the last one
// takes; at most the maxGroupsPerOrg in force when it joined the last
// (at most 256).
func (s *State) GroupsOf(org string) []common.Hash {
	v, _ := getRLP[[]common.Hash](s.reg, groupsOfKey(org))
	return v
}

// MaxGroupsPerOrg is the active groups one organization may belong to.
func (s *State) MaxGroupsPerOrg() uint64 {
	v, _ := s.ParamValue(ParamMaxGroupsPerOrg)
	return max(v, 1)
}

func (s *State) putGroup(g Group) {
	putRLP(s.reg, groupKey(g.ID), storedGroup{Name: g.Name, Description: g.Description, Creator: g.Creator, Members: g.Members,
		MembersHash: g.MembersHash, Status: g.Status, Created: g.Created, Changed: g.Changed, Auditors: g.Auditors})
}

func (s *State) joinGroup(org string, id common.Hash) {
	putRLP(s.reg, groupsOfKey(org), append(s.GroupsOf(org), id))
}

// leaveGroup takes id out of org's list by moving the last id into its
// place: a removal rewrites a few slots of the list, not all that follow.
func (s *State) leaveGroup(org string, id common.Hash) {
	ids := s.GroupsOf(org)
	i := slices.Index(ids, id)
	if i < 0 {
		return
	}
	ids[i] = ids[len(ids)-1]
	ids = ids[:len(ids)-1]
	if len(ids) == 0 {
		s.reg.del(groupsOfKey(org))
		return
	}
	putRLP(s.reg, groupsOfKey(org), ids)
}

// CheckGroupText refuses a group name or description over its bound, not
// UTF-8, or (a name) with control characters.
func CheckGroupText(name, description string) error {
	switch {
	case len(name) > MaxGroupNameBytes:
		return reverts("group name of %d bytes, at most %d", len(name), MaxGroupNameBytes)
	case len(description) > MaxGroupDescriptionBytes:
		return reverts("group description of %d bytes, at most %d", len(description), MaxGroupDescriptionBytes)
	case !utf8.ValidString(name) || strings.ContainsFunc(name, unicode.IsControl):
		return reverts("group name %q: not UTF-8, or control characters", name)
	case !utf8.ValidString(description):
		return reverts("group description: not UTF-8")
	}
	return nil
}

// CheckGroupMembers refuses a list of member organizations that is empty,
// longer than MaxGroupMembers, names one twice or has a name no
// organization could have.
func CheckGroupMembers(members []string) error {
	if len(members) == 0 {
		return reverts("no member organizations")
	}
	if len(members) > MaxGroupMembers {
		return reverts("%d member organizations, at most %d", len(members), MaxGroupMembers)
	}
	for i, m := range members {
		if m == "" || len(m) > maxNameBytes {
			return reverts("member organization %q: empty or longer than %d bytes", shortText(m), maxNameBytes)
		}
		if slices.Contains(members[:i], m) {
			return reverts("organization %s listed twice", m)
		}
	}
	return nil
}

// shortText cuts s for an error message.
func shortText(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

// groupWriter returns the organization whose write role caller holds, or
// whose node caller is.
func (s *State) groupWriter(caller common.Address) (Org, error) {
	if o, isNode, err := s.nodeOrg(caller); isNode {
		return o, err
	}
	a := s.rawAccount(caller)
	if a.Org == "" {
		return Org{}, reverts("%s is not an account of an organization", caller.Hex())
	}
	o, ok := s.Org(a.Org)
	if !ok || o.Status != StatusActive {
		return Org{}, reverts("organization %s of %s is %s", a.Org, caller.Hex(), o.Status)
	}
	if a.Frozen {
		return Org{}, reverts("%s is frozen", caller.Hex())
	}
	if s.EffectiveRoles(a)&RoleWrite == 0 {
		return Org{}, reverts("%s lacks role write of organization %s", caller.Hex(), o.Name)
	}
	return o, nil
}

// canJoin refuses an organization that may not join a group now: not an
// active organization, or in as many groups as it may be.
func (s *State) canJoin(org string) error {
	o, ok := s.Org(org)
	switch {
	case !ok:
		return reverts("organization %s is not in the registry", org)
	case o.Status != StatusActive:
		return reverts("organization %s is %s", org, o.Status)
	}
	if n, limit := uint64(len(s.GroupsOf(org))), s.MaxGroupsPerOrg(); n >= limit {
		return reverts("organization %s belongs to %d groups, at most %d (%s)", org, n, limit, ParamMaxGroupsPerOrg)
	}
	return nil
}

// memberGroup returns active group id, and the organization whose admin
// (or, if nodes, whose node) caller is, which must be one of its members.
func (s *State) memberGroup(caller common.Address, id common.Hash, nodes bool) (Group, Org, error) {
	o, isNode, err := s.nodeOrg(caller)
	if !isNode {
		o, err = s.admin(caller)
	} else if err == nil && !nodes {
		err = nodeRefusal(caller)
	}
	if err != nil {
		return Group{}, Org{}, err
	}
	g, ok := s.Group(id)
	switch {
	case !ok:
		return Group{}, Org{}, reverts("no %s", groupText(id))
	case g.Status != GroupActive:
		return Group{}, Org{}, reverts("%s is %s", groupText(id), g.Status)
	case !slices.Contains(g.Members, o.Name):
		return Group{}, Org{}, reverts("organization %s of %s is not a member of %s", o.Name, caller.Hex(), groupText(id))
	}
	return g, o, nil
}

// CreateGroup creates a privacy group for caller, an account holding write
// (or a node) of an organization among members. id zero: one is derived
// (deriveGroupID); otherwise it must not be taken, by a group active or
// deleted.
func (s *State) CreateGroup(caller common.Address, id common.Hash, name, description string, members []string) (Group, error) {
	o, err := s.groupWriter(caller)
	if err != nil {
		return Group{}, err
	}
	if err := CheckGroupText(name, description); err != nil {
		return Group{}, err
	}
	if err := CheckGroupMembers(members); err != nil {
		return Group{}, err
	}
	if !slices.Contains(members, o.Name) {
		return Group{}, reverts("organization %s of %s must be a member of the group it creates", o.Name, caller.Hex())
	}
	sorted := sortedMembers(members)
	for _, m := range sorted {
		if err := s.canJoin(m); err != nil {
			return Group{}, err
		}
	}
	if id == (common.Hash{}) {
		seq := s.reg.getUint(groupSeqKey)
		for i := 0; ; i++ {
			if i == maxGroupIDAttempts {
				return Group{}, reverts("no free group id after %d attempts: give one", maxGroupIDAttempts)
			}
			seq++
			if id = deriveGroupID(seq, s.height, caller, o.Name); !s.reg.has(groupKey(id)) {
				break
			}
		}
		s.reg.putUint(groupSeqKey, seq)
	} else if s.reg.has(groupKey(id)) {
		return Group{}, reverts("%s exists already", groupText(id))
	}
	g := Group{ID: id, Name: name, Description: description, Creator: o.Name, Members: sorted,
		MembersHash: MembersHash(sorted), Status: GroupActive, Created: s.height, Changed: s.height}
	s.putGroup(g)
	for _, m := range sorted {
		s.joinGroup(m, id)
	}
	return g, nil
}

// AddGroupMembers adds organizations to group id, for caller, an admin
// of one of its members. It returns the group and the organizations
// added, sorted.
func (s *State) AddGroupMembers(caller common.Address, id common.Hash, members []string) (Group, []string, error) {
	g, _, err := s.memberGroup(caller, id, false)
	if err != nil {
		return Group{}, nil, err
	}
	if err := CheckGroupMembers(members); err != nil {
		return Group{}, nil, err
	}
	if n := len(g.Members) + len(members); n > MaxGroupMembers {
		return Group{}, nil, reverts("%s would have %d members, at most %d", groupText(id), n, MaxGroupMembers)
	}
	added := sortedMembers(members)
	for _, m := range added {
		if slices.Contains(g.Members, m) {
			return Group{}, nil, reverts("organization %s is a member of %s already", m, groupText(id))
		}
		if err := s.canJoin(m); err != nil {
			return Group{}, nil, err
		}
	}
	g.Members = sortedMembers(append(slices.Clone(g.Members), added...))
	g.MembersHash, g.Changed = MembersHash(g.Members), s.height
	s.putGroup(g)
	s.clearApprovals(id)
	for _, m := range added {
		s.joinGroup(m, id)
	}
	return g, added, nil
}

// RemoveGroupMember takes organization member out of group id, for
// caller, an admin of one of its members (member itself, or another).
// Taking out the last member deletes the group; deleted reports it.
func (s *State) RemoveGroupMember(caller common.Address, id common.Hash, member string) (g Group, deleted bool, err error) {
	g, _, err = s.memberGroup(caller, id, false)
	if err != nil {
		return Group{}, false, err
	}
	if len(member) > maxNameBytes {
		return Group{}, false, reverts("member organization %q: longer than %d bytes", shortText(member), maxNameBytes)
	}
	if !slices.Contains(g.Members, member) {
		return Group{}, false, reverts("organization %s is not a member of %s", member, groupText(id))
	}
	g.Members = slices.DeleteFunc(slices.Clone(g.Members), func(m string) bool { return m == member })
	g.MembersHash, g.Changed = MembersHash(g.Members), s.height
	if len(g.Members) == 0 {
		g.Status = GroupDeleted
	}
	s.putGroup(g)
	s.clearApprovals(id)
	s.leaveGroup(member, id)
	return g, g.Status == GroupDeleted, nil
}

// DeleteGroup deletes group id, for caller, an admin or a node of one of
// its members. The record stays, with the members it had.
func (s *State) DeleteGroup(caller common.Address, id common.Hash) (Group, error) {
	g, _, err := s.deleteGroup(caller, id)
	return g, err
}

// deleteGroup is DeleteGroup that also returns the caller's organization.
func (s *State) deleteGroup(caller common.Address, id common.Hash) (Group, Org, error) {
	g, o, err := s.memberGroup(caller, id, true)
	if err != nil {
		return Group{}, Org{}, err
	}
	g.Status, g.Changed = GroupDeleted, s.height
	s.putGroup(g)
	for _, m := range g.Members {
		s.leaveGroup(m, id)
	}
	return g, o, nil
}

// ---- the registry's functions of groups ----

// Sizes of ABI encodings: a dynamic string of at most n bytes (its head
// word, length word and data), and a list of at most k such strings.
func abiStringBytes(n int) int     { return 32 + 32 + (n+31)/32*32 }
func abiStringsBytes(k, n int) int { return 32 + 32 + k*abiStringBytes(n) }

// groupCallMaxInput holds the registry's functions of privacy groups,
// with the size of the largest encoding of their arguments within their
// bounds: a larger input is refused before it is decoded.
var groupCallMaxInput = map[string]int{
	"createGroup":  32 + abiStringBytes(MaxGroupNameBytes) + abiStringBytes(MaxGroupDescriptionBytes) + abiStringsBytes(MaxGroupMembers, maxNameBytes),
	"addMembers":   32 + abiStringsBytes(MaxGroupMembers, maxNameBytes),
	"removeMember": 32 + abiStringBytes(maxNameBytes),
	"deleteGroup":  32,
	"group":        32,
	"groupsOf":     abiStringBytes(maxNameBytes),
	// privacy.go
	"privateMarker":    32 + 32 + abiStringsBytes(MaxGroupMembers, maxNameBytes),
	"purgeGroup":       32,
	"grantAuditor":     32 + abiStringBytes(maxNameBytes) + 32,
	"revokeAuditor":    32 + abiStringBytes(maxNameBytes),
	"recordDisclosure": 32 + abiStringBytes(maxNameBytes) + 32 + 32 + 32*MaxDisclosureHashes,
	"groupAuditors":    32,
	"purgeApprovals":   32,
}

// checkGroupInput refuses the input of a group function larger than its
// arguments' bounds allow; other functions pass.
func checkGroupInput(name string, data []byte) error {
	if n, ok := groupCallMaxInput[name]; ok && len(data) > n {
		return reverts("%s: arguments of %d bytes, at most %d", name, len(data), n)
	}
	return nil
}

func isGroupCall(name string) bool { _, ok := groupCallMaxInput[name]; return ok }

func (p *precompile) groupView(st *State, name string, args in) ([]any, error) {
	switch name {
	case "group":
		var a struct{ ID common.Hash }
		if err := args.into(&a); err != nil {
			return nil, err
		}
		g, ok := st.Group(a.ID)
		members := g.Members
		if members == nil {
			members = []string{}
		}
		return []any{ok, g.Name, g.Description, g.Creator, members, groupIDArg(g.MembersHash), uint8(g.Status), g.Created, g.Changed}, nil
	case "groupsOf":
		var a struct{ Org string }
		if err := args.into(&a); err != nil {
			return nil, err
		}
		ids := st.GroupsOf(a.Org)
		out := make([][32]byte, len(ids))
		for i, id := range ids {
			out[i] = id
		}
		return []any{out}, nil
	}
	return privacyView(st, name, args)
}

func (p *precompile) groupWrite(st *State, from common.Address, name string, args in) ([]any, []*types.Log, error) {
	r := &Registry
	by := common.BytesToHash(from[:])
	switch name {
	case "createGroup":
		var a struct {
			ID          common.Hash
			Name        string
			Description string
			Members     []string
		}
		if err := args.into(&a); err != nil {
			return nil, nil, err
		}
		g, err := st.CreateGroup(from, a.ID, a.Name, a.Description, a.Members)
		if err != nil {
			return nil, nil, err
		}
		l, err := event(r, "GroupCreated", []common.Hash{g.ID, by}, g.Creator, g.Name, g.Members, groupIDArg(g.MembersHash))
		return []any{groupIDArg(g.ID)}, []*types.Log{l}, err
	case "addMembers":
		var a struct {
			ID      common.Hash
			Members []string
		}
		if err := args.into(&a); err != nil {
			return nil, nil, err
		}
		g, added, err := st.AddGroupMembers(from, a.ID, a.Members)
		if err != nil {
			return nil, nil, err
		}
		l, err := event(r, "GroupMembersAdded", []common.Hash{g.ID, by}, st.rawAccount(from).Org, added, groupIDArg(g.MembersHash))
		return nil, []*types.Log{l}, err
	case "removeMember":
		var a struct {
			ID     common.Hash
			Member string
		}
		if err := args.into(&a); err != nil {
			return nil, nil, err
		}
		g, deleted, err := st.RemoveGroupMember(from, a.ID, a.Member)
		if err != nil {
			return nil, nil, err
		}
		org := st.rawAccount(from).Org
		l, err := event(r, "GroupMemberRemoved", []common.Hash{g.ID, by}, org, a.Member, groupIDArg(g.MembersHash))
		logs := []*types.Log{l}
		if err == nil && deleted {
			l, err = event(r, "GroupDeleted", []common.Hash{g.ID, by}, org)
			logs = append(logs, l)
		}
		return nil, logs, err
	case "deleteGroup":
		var a struct{ ID common.Hash }
		if err := args.into(&a); err != nil {
			return nil, nil, err
		}
		g, o, err := st.deleteGroup(from, a.ID)
		if err != nil {
			return nil, nil, err
		}
		l, err := event(r, "GroupDeleted", []common.Hash{g.ID, by}, o.Name)
		return nil, []*types.Log{l}, err
	}
	return p.privacyWrite(st, from, name, args)
}
