package system

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/big"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/vm"
	"github.com/ethereum/go-ethereum/crypto"
)

// regCall sends a registry call from `from` as its own transaction would.
func (e *chainEVM) regCall(from common.Address, method string, args ...any) ([]byte, error) {
	e.t.Helper()
	return e.send(from, RegistryAddress, pack(e.t, &Registry, method, args...), 0)
}

// mustReg sends a registry call and fails the test unless it succeeds.
func (e *chainEVM) mustReg(from common.Address, method string, args ...any) []byte {
	e.t.Helper()
	ret, err := e.regCall(from, method, args...)
	if err != nil {
		reason, _ := abi.UnpackRevert(ret)
		e.t.Fatalf("%s by %s: %v %q", method, from.Hex(), err, reason)
	}
	return ret
}

// createGroup creates a group through the precompile and returns its id.
func (e *chainEVM) createGroup(from common.Address, id common.Hash, name, desc string, members ...string) common.Hash {
	e.t.Helper()
	ret := e.mustReg(from, "createGroup", [32]byte(id), name, desc, members)
	out, err := Registry.Unpack("createGroup", ret)
	if err != nil {
		e.t.Fatalf("createGroup returned %x: %v", ret, err)
	}
	return common.Hash(out[0].([32]byte))
}

// groupView is the registry's group(id) view, unpacked.
type groupView struct {
	Exists      bool
	Name        string
	Description string
	Creator     string
	Members     []string
	MembersHash [32]byte
	Status      uint8
	Created     uint64
	Changed     uint64
}

func (e *chainEVM) group(id common.Hash) groupView {
	e.t.Helper()
	var v groupView
	ret := e.mustReg(testAddr("caller", 1), "group", [32]byte(id))
	if err := Registry.UnpackIntoInterface(&v, "group", ret); err != nil {
		e.t.Fatalf("unpack group: %v", err)
	}
	return v
}

func (e *chainEVM) groupsOf(org string) []common.Hash {
	e.t.Helper()
	out := e.view(&Registry, "groupsOf", org)
	var ids []common.Hash
	for _, id := range out[0].([][32]byte) {
		ids = append(ids, id)
	}
	return ids
}

// encodeStrings is the ABI encoding of one string[], written out here by
// hand, independently of go-ethereum's encoder: the words a Solidity
// abi.encode(members) gives.
func encodeStrings(members []string) []byte {
	word := func(n int) []byte { w := make([]byte, 32); binary.BigEndian.PutUint64(w[24:], uint64(n)); return w }
	var head, tail []byte
	for _, m := range members {
		head = append(head, word(32*len(members)+len(tail))...)
		tail = append(tail, word(len(m))...)
		tail = append(tail, m...)
		if pad := len(m) % 32; pad != 0 {
			tail = append(tail, make([]byte, 32-pad)...)
		}
	}
	out := append(word(32), word(len(members))...)
	return append(append(out, head...), tail...)
}

func TestMembersHash(t *testing.T) {
	for _, members := range [][]string{{}, {"org1"}, {"org1", "org2"}, {"a", strings.Repeat("b", 64), "c d"}} {
		want := crypto.Keccak256Hash(encodeStrings(members))
		if got := MembersHash(members); got != want {
			t.Fatalf("MembersHash(%q) = %s, want keccak256 of the hand-encoded string[] %s", members, got.Hex(), want.Hex())
		}
	}
	// Order and repeats do not matter; case does (names are bytes).
	if MembersHash([]string{"org2", "org1", "org2"}) != MembersHash([]string{"org1", "org2"}) {
		t.Fatal("MembersHash depends on order or repeats")
	}
	if MembersHash([]string{"Org1"}) == MembersHash([]string{"org1"}) {
		t.Fatal("MembersHash ignores case")
	}
	// Sorted bytewise: "B" (0x42) before "a" (0x61).
	if MembersHash([]string{"a", "B"}) != crypto.Keccak256Hash(encodeStrings([]string{"B", "a"})) {
		t.Fatal("MembersHash does not sort bytewise")
	}
	// A pinned value, for other implementations to compare with.
	if got := MembersHash([]string{"org1", "org0"}).Hex(); got != membersHashOrg0Org1 {
		t.Fatalf("MembersHash(org0, org1) = %s, want %s", got, membersHashOrg0Org1)
	}
}

// membersHashOrg0Org1 is MembersHash of org0 and org1, as ethers v6
// computes it: keccak256(AbiCoder.defaultAbiCoder().encode(["string[]"],
// [["org0", "org1"]])).
const membersHashOrg0Org1 = "0x050833c902008f466d3d467446bec1c5e690817fa3648d536cf4f3078967ff58"

func TestParseGroupID(t *testing.T) {
	id := crypto.Keccak256Hash([]byte("g"))
	for _, s := range []string{id.Hex(), "0X" + strings.ToUpper(id.Hex()[2:]), GroupIDBase64(id), " " + GroupIDBase64(id) + "\n"} {
		if got, err := ParseGroupID(s); err != nil || got != id {
			t.Fatalf("ParseGroupID(%q) = %s, %v", s, got.Hex(), err)
		}
	}
	if b := GroupIDBase64(id); len(b) != 44 {
		t.Fatalf("base64 id %q of %d characters", b, len(b))
	}
	for _, s := range []string{"", "0x12", id.Hex() + "00", "0x" + strings.Repeat("zz", 32), "not base64!", GroupIDBase64(common.Hash{}) + "AAAA",
		"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=="} {
		if _, err := ParseGroupID(s); err == nil || !strings.Contains(err.Error(), "want 0x and 64 hex digits, or 44 characters of base64") {
			t.Fatalf("ParseGroupID(%q): %v", s, err)
		}
	}
}

// A group through the precompile, from its creation to its deletion:
// results, views, events, members hash and gas at each step.
func TestGroupLifecycle(t *testing.T) {
	f := newFixture(t)
	const h = 10
	e := f.evm(h)
	hashArg := func(members ...string) [32]byte { return MembersHash(members) }

	// createGroup by a writer of org1, for org1 and org2, id derived.
	logs := len(f.st.Logs())
	input := pack(t, &Registry, "createGroup", [32]byte{}, "trade", "bilateral trades", []string{"org2", "org1"})
	ret, err := e.send(writerOf(1), RegistryAddress, input, 0)
	if err != nil {
		reason, _ := abi.UnpackRevert(ret)
		t.Fatalf("createGroup: %v %q", err, reason)
	}
	// The texts, and each member's name and the id its list keeps.
	stored := len("trade") + len("bilateral trades") + len("org2") + 32 + len("org1") + 32
	if want := gasWrite + gasWord*uint64((len(input)+31)/32) + gasStoredByte*uint64(stored); e.used != want {
		t.Fatalf("createGroup used %d gas, want %d", e.used, want)
	}
	out, err := Registry.Unpack("createGroup", ret)
	if err != nil {
		t.Fatal(err)
	}
	id := common.Hash(out[0].([32]byte))
	if want := deriveGroupID(1, h, writerOf(1), "org1"); id != want {
		t.Fatalf("derived id %s, want %s", id.Hex(), want.Hex())
	}
	nl := f.newLogs(logs)
	if len(nl) != 1 {
		t.Fatalf("%d logs, want 1", len(nl))
	}
	wantLog(t, nl[0], RegistryAddress, &Registry, "GroupCreated", []common.Hash{id, addrTopic(writerOf(1))},
		"org1", "trade", []string{"org1", "org2"}, hashArg("org1", "org2"))
	want := groupView{true, "trade", "bilateral trades", "org1", []string{"org1", "org2"}, hashArg("org1", "org2"), uint8(GroupActive), h, h}
	if got := e.group(id); !reflect.DeepEqual(got, want) {
		t.Fatalf("group = %+v\nwant %+v", got, want)
	}
	for org, want := range map[string][]common.Hash{"org1": {id}, "org2": {id}, "org3": nil} {
		if got := e.groupsOf(org); !slices.Equal(got, want) {
			t.Fatalf("groupsOf(%s) = %v, want %v", org, got, want)
		}
	}
	g, ok := Read(f.st).Group(id)
	if !ok || g.ID != id || g.MembersHash != MembersHash(g.Members) || len(g.Auditors) != 0 {
		t.Fatalf("State.Group = %+v, %v", g, ok)
	}

	// addMembers by org2's admin, at a later height.
	e = f.evm(h + 1)
	logs = len(f.st.Logs())
	input = pack(t, &Registry, "addMembers", [32]byte(id), []string{"org4", "org3"})
	e.mustReg(adminOf(2), "addMembers", [32]byte(id), []string{"org4", "org3"})
	if want := gasWrite + gasWord*uint64((len(input)+31)/32) + gasStoredByte*(8+2*32); e.used != want {
		t.Fatalf("addMembers used %d gas, want %d", e.used, want)
	}
	nl = f.newLogs(logs)
	if len(nl) != 1 {
		t.Fatalf("%d logs, want 1", len(nl))
	}
	wantLog(t, nl[0], RegistryAddress, &Registry, "GroupMembersAdded", []common.Hash{id, addrTopic(adminOf(2))},
		"org2", []string{"org3", "org4"}, hashArg("org1", "org2", "org3", "org4"))
	if got := e.group(id); !slices.Equal(got.Members, []string{"org1", "org2", "org3", "org4"}) ||
		got.MembersHash != hashArg("org4", "org3", "org2", "org1") || got.Changed != h+1 || got.Created != h {
		t.Fatalf("group after addMembers %+v", got)
	}

	// removeMember: org3's admin takes org1 out.
	logs = len(f.st.Logs())
	e.mustReg(adminOf(3), "removeMember", [32]byte(id), "org1")
	nl = f.newLogs(logs)
	if len(nl) != 1 {
		t.Fatalf("%d logs, want 1", len(nl))
	}
	wantLog(t, nl[0], RegistryAddress, &Registry, "GroupMemberRemoved", []common.Hash{id, addrTopic(adminOf(3))},
		"org3", "org1", hashArg("org2", "org3", "org4"))
	if got := e.groupsOf("org1"); len(got) != 0 {
		t.Fatalf("groupsOf(org1) after its removal = %v", got)
	}
	// org1 is no member now: its admin can do nothing more with the group.
	ret, err = e.regCall(adminOf(1), "deleteGroup", [32]byte(id))
	wantCallRevert(t, ret, err, "organization org1 of "+adminOf(1).Hex()+" is not a member of group "+id.Hex())

	// deleteGroup by org4's admin: the record stays, with its members.
	logs = len(f.st.Logs())
	e.mustReg(adminOf(4), "deleteGroup", [32]byte(id))
	nl = f.newLogs(logs)
	if len(nl) != 1 {
		t.Fatalf("%d logs, want 1", len(nl))
	}
	wantLog(t, nl[0], RegistryAddress, &Registry, "GroupDeleted", []common.Hash{id, addrTopic(adminOf(4))}, "org4")
	want = groupView{true, "trade", "bilateral trades", "org1", []string{"org2", "org3", "org4"}, hashArg("org2", "org3", "org4"), uint8(GroupDeleted), h, h + 1}
	if got := e.group(id); !reflect.DeepEqual(got, want) {
		t.Fatalf("deleted group = %+v\nwant %+v", got, want)
	}
	for i := 1; i <= 4; i++ {
		if got := e.groupsOf(orgName(i)); len(got) != 0 {
			t.Fatalf("groupsOf(%s) after the deletion = %v", orgName(i), got)
		}
	}
	// A deleted group takes no more changes, and its id is not reused.
	for _, c := range []struct {
		method string
		args   []any
	}{
		{"addMembers", []any{[32]byte(id), []string{"org1"}}},
		{"removeMember", []any{[32]byte(id), "org2"}},
		{"deleteGroup", []any{[32]byte(id)}},
	} {
		ret, err := e.regCall(adminOf(2), c.method, c.args...)
		wantCallRevert(t, ret, err, "group "+id.Hex()+" is deleted")
	}
	ret, err = e.regCall(writerOf(2), "createGroup", [32]byte(id), "again", "", []string{"org2"})
	wantCallRevert(t, ret, err, "group "+id.Hex()+" exists already")

	// An unknown id: the view says it does not exist.
	if got := e.group(common.Hash{1}); got.Exists || got.Members == nil || len(got.Members) != 0 || got.Status != 0 {
		t.Fatalf("group(unknown) = %+v", got)
	}
	checkGroupInvariants(t, Read(f.st), []common.Hash{id}, 4)
}

func TestGroupRemoveLastMemberDeletes(t *testing.T) {
	f := newFixture(t)
	e := f.evm(5)
	id := e.createGroup(deployerOf(1), common.Hash{}, "solo", "", "org1")
	logs := len(f.st.Logs())
	e.mustReg(adminOf(1), "removeMember", [32]byte(id), "org1")
	nl := f.newLogs(logs)
	if len(nl) != 2 {
		t.Fatalf("%d logs, want 2", len(nl))
	}
	wantLog(t, nl[0], RegistryAddress, &Registry, "GroupMemberRemoved", []common.Hash{id, addrTopic(adminOf(1))}, "org1", "org1", [32]byte(MembersHash(nil)))
	wantLog(t, nl[1], RegistryAddress, &Registry, "GroupDeleted", []common.Hash{id, addrTopic(adminOf(1))}, "org1")
	if g := e.group(id); g.Status != uint8(GroupDeleted) || len(g.Members) != 0 {
		t.Fatalf("group after its last member left: %+v", g)
	}
	if ids := Read(f.st).GroupsOf("org1"); len(ids) != 0 {
		t.Fatalf("GroupsOf(org1) = %v", ids)
	}
}

// Every refusal, with its reason; none changes the state or logs.
func TestGroupRefusals(t *testing.T) {
	f := newFixture(t, withOrgs(5), withoutValidator(3))
	// org3 suspended, org4 exited, the cap at 2 groups an organization.
	f.enact(2, ActSetOrganization, "org3", uint8(TierValidate), uint64(1), uint8(StatusSuspended))
	f.enact(5, ActRemoveOrganization, "org4")
	f.enact(8, ActSetParameter, ParamMaxGroupsPerOrg, big.NewInt(2))
	const h = 20
	e := f.evm(h)
	id := e.createGroup(writerOf(1), common.Hash{}, "g1", "", "org1", "org2")
	supplied := common.HexToHash("0x" + strings.Repeat("5a", 32))
	e.createGroup(writerOf(5), supplied, "g2", "", "org5", "org2")
	// org2 is in 2 groups now, its cap.

	f.enact(h+1, ActFreeze, writerOf(5))
	e = f.evm(h + 10)

	long := strings.Repeat("n", 65)
	zero := [32]byte{}
	bigInput := append(slices.Clone(Registry.Methods["createGroup"].ID), make([]byte, groupCallMaxInput["createGroup"]+1)...)
	cases := []struct {
		name   string
		from   common.Address
		input  []byte
		reason string
	}{
		// createGroup: the caller.
		{"stranger", testAddr("stranger", 1), pack(t, &Registry, "createGroup", zero, "x", "", []string{"org1"}),
			testAddr("stranger", 1).Hex() + " is not an account of an organization"},
		{"reader", readerOf(1), pack(t, &Registry, "createGroup", zero, "x", "", []string{"org1"}),
			readerOf(1).Hex() + " lacks role write of organization org1"},
		{"admin without write", adminOf(1), pack(t, &Registry, "createGroup", zero, "x", "", []string{"org1"}),
			adminOf(1).Hex() + " lacks role write of organization org1"},
		{"suspended organization", writerOf(3), pack(t, &Registry, "createGroup", zero, "x", "", []string{"org3"}),
			"organization org3 of " + writerOf(3).Hex() + " is suspended"},
		{"frozen writer", writerOf(5), pack(t, &Registry, "createGroup", zero, "x", "", []string{"org5"}),
			writerOf(5).Hex() + " is frozen"},
		// createGroup: the arguments.
		{"long name", writerOf(1), pack(t, &Registry, "createGroup", zero, long, "", []string{"org1"}), "group name of 65 bytes, at most 64"},
		{"long description", writerOf(1), pack(t, &Registry, "createGroup", zero, "x", strings.Repeat("d", 257), []string{"org1"}),
			"group description of 257 bytes, at most 256"},
		{"control character", writerOf(1), pack(t, &Registry, "createGroup", zero, "a\nb", "", []string{"org1"}),
			`group name "a\nb": not UTF-8, or control characters`},
		{"bad UTF-8", writerOf(1), pack(t, &Registry, "createGroup", zero, "x", "\xff", []string{"org1"}), "group description: not UTF-8"},
		{"no members", writerOf(1), pack(t, &Registry, "createGroup", zero, "x", "", []string{}), "no member organizations"},
		{"33 members", writerOf(1), pack(t, &Registry, "createGroup", zero, "x", "", slices.Repeat([]string{"org1"}, 33)),
			"33 member organizations, at most 32"},
		{"listed twice", writerOf(1), pack(t, &Registry, "createGroup", zero, "x", "", []string{"org1", "org1"}), "organization org1 listed twice"},
		{"long member name", writerOf(1), pack(t, &Registry, "createGroup", zero, "x", "", []string{"org1", long}),
			`member organization "` + long + `": empty or longer than 64 bytes`},
		{"creator not a member", writerOf(1), pack(t, &Registry, "createGroup", zero, "x", "", []string{"org5"}),
			"organization org1 of " + writerOf(1).Hex() + " must be a member of the group it creates"},
		{"unknown member", writerOf(1), pack(t, &Registry, "createGroup", zero, "x", "", []string{"org1", "nope"}),
			"organization nope is not in the registry"},
		{"suspended member", writerOf(1), pack(t, &Registry, "createGroup", zero, "x", "", []string{"org1", "org3"}), "organization org3 is suspended"},
		{"exited member", writerOf(1), pack(t, &Registry, "createGroup", zero, "x", "", []string{"org4", "org1"}), "organization org4 is exited"},
		{"member at its cap", writerOf(1), pack(t, &Registry, "createGroup", zero, "x", "", []string{"org1", "org2"}),
			"organization org2 belongs to 2 groups, at most 2 (maxGroupsPerOrg)"},
		{"id taken", writerOf(1), pack(t, &Registry, "createGroup", [32]byte(supplied), "x", "", []string{"org1"}),
			"group " + supplied.Hex() + " exists already"},
		{"input over its bound", writerOf(1), bigInput,
			"createGroup: arguments of " + strconv.Itoa(len(bigInput)-4) + " bytes, at most " + strconv.Itoa(groupCallMaxInput["createGroup"])},
		// addMembers, removeMember, deleteGroup.
		{"add by a writer", writerOf(1), pack(t, &Registry, "addMembers", [32]byte(id), []string{"org5"}), writerOf(1).Hex() + " is not an organization admin"},
		{"add by a non-member", adminOf(5), pack(t, &Registry, "addMembers", [32]byte(id), []string{"org5"}),
			"organization org5 of " + adminOf(5).Hex() + " is not a member of group " + id.Hex()},
		{"add by a suspended member", adminOf(3), pack(t, &Registry, "addMembers", [32]byte(id), []string{"org5"}),
			"organization org3 of " + adminOf(3).Hex() + " is suspended"},
		{"add to an unknown group", adminOf(1), pack(t, &Registry, "addMembers", [32]byte{7}, []string{"org5"}),
			"no group " + common.Hash{7}.Hex()},
		{"add a member again", adminOf(1), pack(t, &Registry, "addMembers", [32]byte(id), []string{"org2"}),
			"organization org2 is a member of group " + id.Hex() + " already"},
		{"add nobody", adminOf(1), pack(t, &Registry, "addMembers", [32]byte(id), []string{}), "no member organizations"},
		{"add a suspended organization", adminOf(1), pack(t, &Registry, "addMembers", [32]byte(id), []string{"org3"}), "organization org3 is suspended"},
		{"add an exited organization", adminOf(1), pack(t, &Registry, "addMembers", [32]byte(id), []string{"org5", "org4"}), "organization org4 is exited"},
		{"remove a non-member", adminOf(1), pack(t, &Registry, "removeMember", [32]byte(id), "org5"),
			"organization org5 is not a member of group " + id.Hex()},
		{"remove by a non-member", adminOf(5), pack(t, &Registry, "removeMember", [32]byte(id), "org1"),
			"organization org5 of " + adminOf(5).Hex() + " is not a member of group " + id.Hex()},
		{"delete by a non-member", adminOf(5), pack(t, &Registry, "deleteGroup", [32]byte(id)),
			"organization org5 of " + adminOf(5).Hex() + " is not a member of group " + id.Hex()},
		{"delete an unknown group", adminOf(1), pack(t, &Registry, "deleteGroup", [32]byte{}), "no group " + common.Hash{}.Hex()},
	}
	root, nlogs := f.root(), len(f.st.Logs())
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ret, err := e.send(c.from, RegistryAddress, c.input, 0)
			wantCallRevert(t, ret, err, c.reason)
			if f.root() != root || len(f.st.Logs()) != nlogs {
				t.Fatal("a refused call changed the state or logged")
			}
		})
	}
	// The cap counts active groups: org2 leaving one frees a place.
	e.mustReg(adminOf(2), "removeMember", [32]byte(id), "org2")
	e.mustReg(adminOf(1), "addMembers", [32]byte(id), []string{"org2"})
	checkGroupInvariants(t, Read(f.st), []common.Hash{id, supplied}, 5)
}

// A group holds at most MaxGroupMembers; addMembers says how many it
// would have.
func TestGroupMemberBound(t *testing.T) {
	f := newFixture(t, withOrgs(MaxGroupMembers+2))
	e := f.evm(3)
	var first []string
	for i := 1; i <= MaxGroupMembers-1; i++ {
		first = append(first, orgName(i))
	}
	id := e.createGroup(writerOf(1), common.Hash{}, "big", "", first...)
	in := pack(t, &Registry, "addMembers", [32]byte(id), []string{orgName(MaxGroupMembers), orgName(MaxGroupMembers + 1)})
	ret, err := e.send(adminOf(2), RegistryAddress, in, 0)
	wantCallRevert(t, ret, err, "group "+id.Hex()+" would have 33 members, at most 32")
	e.mustReg(adminOf(2), "addMembers", [32]byte(id), []string{orgName(MaxGroupMembers)})
	if g, _ := Read(f.st).Group(id); len(g.Members) != MaxGroupMembers {
		t.Fatalf("%d members", len(g.Members))
	}
	ret, err = e.regCall(adminOf(2), "addMembers", [32]byte(id), []string{orgName(MaxGroupMembers + 1)})
	wantCallRevert(t, ret, err, "group "+id.Hex()+" would have 33 members, at most 32")
	checkGroupInvariants(t, Read(f.st), []common.Hash{id}, MaxGroupMembers+2)
}

// Derived ids differ for every group, and one a caller has taken on
// purpose is skipped, not an obstacle.
func TestGroupDerivedIDs(t *testing.T) {
	f := newFixture(t)
	e := f.evm(7)
	a := e.createGroup(writerOf(1), common.Hash{}, "a", "", "org1")
	b := e.createGroup(writerOf(1), common.Hash{}, "b", "", "org1")
	if a == b || a != deriveGroupID(1, 7, writerOf(1), "org1") || b != deriveGroupID(2, 7, writerOf(1), "org1") {
		t.Fatalf("ids %s %s", a.Hex(), b.Hex())
	}
	// org2 takes the ids org1's next two groups would get.
	for seq := uint64(3); seq <= 4; seq++ {
		e.createGroup(writerOf(2), deriveGroupID(seq, 7, writerOf(1), "org1"), "squat", "", "org2")
	}
	c := e.createGroup(writerOf(1), common.Hash{}, "c", "", "org1")
	if c != deriveGroupID(5, 7, writerOf(1), "org1") {
		t.Fatalf("id %s, want the fifth derived", c.Hex())
	}
	if got := Read(f.st).GroupsOf("org1"); !slices.Equal(got, []common.Hash{a, b, c}) {
		t.Fatalf("GroupsOf(org1) = %v", got)
	}
	// maxGroupIDAttempts taken in a row: refused with a reason.
	for seq := uint64(6); seq < 6+maxGroupIDAttempts; seq++ {
		if _, err := f.at(7).CreateGroup(writerOf(2), deriveGroupID(seq, 7, writerOf(1), "org1"), "squat", "", []string{"org2"}); err != nil {
			t.Fatalf("squat %d: %v", seq, err)
		}
	}
	_, err := f.at(7).CreateGroup(writerOf(1), common.Hash{}, "d", "", []string{"org1"})
	wantRevert(t, err, "no free group id after 16 attempts: give one")
}

// Leaving a group moves the last id of the organization's list into its
// place; the list stays a set of its active groups.
func TestGroupsOfAfterLeaving(t *testing.T) {
	f := newFixture(t)
	e := f.evm(2)
	var ids []common.Hash
	for _, n := range []string{"a", "b", "c", "d"} {
		ids = append(ids, e.createGroup(writerOf(1), common.Hash{}, n, "", "org1", "org2"))
	}
	e.mustReg(adminOf(2), "removeMember", [32]byte(ids[1]), "org1")
	if got, want := e.groupsOf("org1"), []common.Hash{ids[0], ids[3], ids[2]}; !slices.Equal(got, want) {
		t.Fatalf("groupsOf(org1) = %v, want %v", got, want)
	}
	e.mustReg(adminOf(2), "deleteGroup", [32]byte(ids[3]))
	if got, want := e.groupsOf("org1"), []common.Hash{ids[0], ids[2]}; !slices.Equal(got, want) {
		t.Fatalf("groupsOf(org1) = %v, want %v", got, want)
	}
	if got, want := e.groupsOf("org2"), []common.Hash{ids[0], ids[1], ids[2]}; !slices.Equal(got, want) {
		t.Fatalf("groupsOf(org2) = %v, want %v", got, want)
	}
	checkGroupInvariants(t, Read(f.st), ids, 4)
}

// An organization that exits stays in its groups until a member removes
// it; it can no longer act on them.
func TestGroupExitedMemberStays(t *testing.T) {
	f := newFixture(t)
	e := f.evm(2)
	id := e.createGroup(writerOf(1), common.Hash{}, "g", "", "org1", "org4")
	f.enact(3, ActRemoveOrganization, "org4")
	e = f.evm(10)
	if g := e.group(id); !slices.Equal(g.Members, []string{"org1", "org4"}) || g.Status != uint8(GroupActive) {
		t.Fatalf("group after org4 exited: %+v", g)
	}
	if got := e.groupsOf("org4"); !slices.Equal(got, []common.Hash{id}) {
		t.Fatalf("groupsOf(org4) = %v", got)
	}
	ret, err := e.regCall(adminOf(4), "removeMember", [32]byte(id), "org1")
	wantCallRevert(t, ret, err, adminOf(4).Hex()+" is not an organization admin") // its roles are gone
	e.mustReg(adminOf(1), "removeMember", [32]byte(id), "org4")
	if g := e.group(id); !slices.Equal(g.Members, []string{"org1"}) || g.MembersHash != [32]byte(MembersHash([]string{"org1"})) {
		t.Fatalf("group after org4's removal: %+v", g)
	}
}

// The on-chain format of groups: the stored bytes of a group, of the
// groupsof lists and of the id sequence after a fixed scenario. A change
// of this constant is a change of the format.
func TestGroupRecordGolden(t *testing.T) {
	f := newFixture(t)
	e := f.evm(3)
	a := e.createGroup(writerOf(1), common.Hash{}, "trade", "org1 and org2", "org2", "org1")
	b := e.createGroup(writerOf(2), common.HexToHash("0x01"), "all", "", "org1", "org2", "org3")
	e = f.evm(4)
	e.mustReg(adminOf(3), "addMembers", [32]byte(b), []string{"org4"})
	e.mustReg(adminOf(1), "removeMember", [32]byte(b), "org2")
	e.mustReg(adminOf(2), "deleteGroup", [32]byte(a))
	s := Read(f.st)
	var all []byte
	for _, key := range []string{groupKey(a), groupKey(b), groupsOfKey("org1"), groupsOfKey("org2"), groupsOfKey("org3"), groupsOfKey("org4"), groupSeqKey} {
		all = append(all, crypto.Keccak256(s.reg.get(key))...)
	}
	const golden = "0xbe858787ad589450c0d7f03ba627e2653074cf464d4627da2c19850e3300a95a"
	if got := crypto.Keccak256Hash(all).Hex(); got != golden {
		t.Fatalf("hash of the group records\n got %s\nwant %s\n(a change of the on-chain format?)", got, golden)
	}
}

// checkGroupInvariants checks groups ids and the groupsof lists of org1
// to orgN: records decode, members sorted, unique, bounded, hashed as
// MembersHash; an active group is in each member's list once, a deleted
// one in none; every list holds only active groups of which the
// organization is a member.
func checkGroupInvariants(t testing.TB, s *State, ids []common.Hash, orgs int) {
	t.Helper()
	for _, id := range ids {
		g, ok := s.Group(id)
		if !ok {
			t.Fatalf("group %s has no record", id.Hex())
		}
		if !slices.IsSorted(g.Members) || len(slices.Compact(slices.Clone(g.Members))) != len(g.Members) || len(g.Members) > MaxGroupMembers {
			t.Fatalf("group %s members %q: not sorted, unique, bounded", id.Hex(), g.Members)
		}
		if g.MembersHash != MembersHash(g.Members) {
			t.Fatalf("group %s: stored members hash %s, recomputed %s", id.Hex(), g.MembersHash.Hex(), MembersHash(g.Members).Hex())
		}
		if g.Status != GroupActive && g.Status != GroupDeleted && g.Status != GroupPurged {
			t.Fatalf("group %s status %d", id.Hex(), g.Status)
		}
		if len(g.Auditors) > MaxGroupAuditors || slices.ContainsFunc(g.Auditors, func(a AuditorGrant) bool { return slices.Contains(g.Members, a.Org) }) {
			t.Fatalf("group %s auditors %+v: over the bound, or a member", id.Hex(), g.Auditors)
		}
		// Approvals are of current members, and none outlive a purge.
		approved := s.PurgeApprovals(id)
		for _, p := range s.PendingAuditorChanges(id) {
			approved = append(approved, p.Approved...)
		}
		for _, o := range approved {
			if !slices.Contains(g.Members, o) || g.Status == GroupPurged {
				t.Fatalf("group %s (%s, members %q) has an approval of %s", id.Hex(), g.Status, g.Members, o)
			}
		}
		if len(s.PendingAuditorChanges(id)) > MaxGroupAuditors {
			t.Fatalf("group %s has %d pending auditor changes", id.Hex(), len(s.PendingAuditorChanges(id)))
		}
		if g.Status == GroupActive && len(g.Members) == 0 {
			t.Fatalf("active group %s without members", id.Hex())
		}
		for i := 1; i <= orgs; i++ {
			n := 0
			for _, x := range s.GroupsOf(orgName(i)) {
				if x == id {
					n++
				}
			}
			want := 0
			if g.Status == GroupActive && slices.Contains(g.Members, orgName(i)) {
				want = 1
			}
			if n != want {
				t.Fatalf("group %s (%s, members %q) is %d times in groupsOf(%s), want %d", id.Hex(), g.Status, g.Members, n, orgName(i), want)
			}
		}
	}
	for i := 1; i <= orgs; i++ {
		for _, x := range s.GroupsOf(orgName(i)) {
			if !slices.Contains(ids, x) {
				t.Fatalf("groupsOf(%s) lists %s, a group not made in this test", orgName(i), x.Hex())
			}
		}
	}
}

// copy is a fixture of its own over a copy of f's state, for t.
func (f *fixture) copy(t testing.TB) *fixture {
	return &fixture{t: t, st: f.st.Copy(), n: f.n, gen: f.gen}
}

// groupMethods are the registry's group functions, in a fixed order: the
// fuzzers pick one by its index.
var groupMethods = []string{"createGroup", "addMembers", "removeMember", "deleteGroup", "group", "groupsOf",
	"privateMarker", "purgeGroup", "grantAuditor", "revokeAuditor", "recordDisclosure", "groupAuditors", "purgeApprovals"}

// FuzzGroupCalls calls the group functions of the registry through a real
// EVM with arbitrary arguments, from a writer, an admin or a stranger. A
// call never panics; it succeeds with outputs that unpack and events of
// the ABI, or reverts with a reason and changes nothing, or runs out of
// gas with nothing changed; the groups' invariants hold after it.
func FuzzGroupCalls(f *testing.F) {
	id := [32]byte(deriveGroupID(1, 1, writerOf(1), "org1"))
	seeds := []struct {
		m    uint8
		args []any
	}{
		{0, []any{[32]byte{}, "g", "d", []string{"org1", "org2"}}},
		{0, []any{[32]byte{9}, "", "", []string{"org1"}}},
		{0, []any{[32]byte{}, "g", "", []string{"org3", "org1", "org3"}}},
		{1, []any{id, []string{"org3", "org4"}}},
		{1, []any{id, []string{"org2"}}},
		{2, []any{id, "org2"}},
		{2, []any{id, "org1"}},
		{3, []any{id}},
		{4, []any{id}},
		{5, []any{"org1"}},
		{6, []any{id, [32]byte{1}, []string{}}},
		{6, []any{[32]byte{2}, [32]byte{1}, []string{"org1", "org2"}}},
		{7, []any{id}},
		{8, []any{id, "org3", uint64(5)}},
		{9, []any{id, "org3"}},
		{10, []any{id, "org3", [][32]byte{{1}, {2}}}},
		{11, []any{id}},
		{12, []any{id}},
	}
	for _, s := range seeds {
		in, err := Registry.Methods[groupMethods[s.m]].Inputs.Pack(s.args...)
		if err != nil {
			f.Fatal(err)
		}
		for caller := uint8(0); caller < 4; caller++ {
			f.Add(s.m, in, caller)
		}
	}
	f.Add(uint8(0), []byte{}, uint8(0))
	f.Add(uint8(1), bytes.Repeat([]byte{0xff}, 96), uint8(1))
	// The state every call starts from: the fixture with a group of org1
	// and org2 to find, made once and copied for each call.
	base := newFixture(f)
	base.evm(1).createGroup(writerOf(1), common.Hash{}, "seed", "", "org1", "org2")
	Open(base.st, 1, 0).putAccount(Account{Address: readerOf(3), Org: "org3", Roles: RoleRead | RoleAuditor}) // an auditor to grant
	base.root()
	f.Fuzz(func(t *testing.T, sel uint8, input []byte, caller uint8) {
		fx := base.copy(t)
		e := fx.evm(1)
		name := groupMethods[int(sel)%len(groupMethods)]
		m := Registry.Methods[name]
		var from common.Address
		switch org := int(caller/4%4) + 1; caller % 4 {
		case 0:
			from = writerOf(org)
		case 1:
			from = adminOf(org)
		case 2:
			from = nodeOf(org)
		default:
			from = testAddr("stranger", org)
		}
		before, logs := fx.root(), len(fx.st.Logs())
		ret, err := e.send(from, RegistryAddress, append(slices.Clone(m.ID), input...), 0)
		switch {
		case err == nil:
			if _, uerr := m.Outputs.Unpack(ret); uerr != nil && len(m.Outputs) > 0 {
				t.Fatalf("%s returned %x, which does not unpack: %v", name, ret, uerr)
			}
			if m.IsConstant() && (fx.root() != before || len(fx.st.Logs()) != logs) {
				t.Fatalf("view %s changed the state", name)
			}
			for _, l := range fx.st.Logs()[logs:] {
				checkSystemLog(t, l.Address, l.Topics, l.Data)
				if l.Address != RegistryAddress || len(l.Topics) < 2 || len(l.Topics) > 3 {
					t.Fatalf("%s logged %+v", name, l)
				}
			}
		case errors.Is(err, vm.ErrExecutionReverted):
			reason, uerr := abi.UnpackRevert(ret)
			if uerr != nil || strings.TrimSpace(reason) == "" {
				t.Fatalf("revert without a reason: %x (%v)", ret, uerr)
			}
			if fx.root() != before || len(fx.st.Logs()) != logs {
				t.Fatalf("reverted call (%s) changed the state", reason)
			}
		case errors.Is(err, vm.ErrOutOfGas):
			if fx.root() != before {
				t.Fatal("call out of gas changed the state")
			}
		default:
			t.Fatalf("call failed with %v, neither a revert nor out of gas", err)
		}
		// Every group there is: the seed's and any this call made.
		ids := []common.Hash{deriveGroupID(1, 1, writerOf(1), "org1")}
		for i := 1; i <= 4; i++ {
			for _, x := range Read(fx.st).GroupsOf(orgName(i)) {
				if !slices.Contains(ids, x) {
					ids = append(ids, x)
				}
			}
		}
		checkGroupInvariants(t, Read(fx.st), ids, 4)
	})
}

// FuzzGroupOps runs a sequence of group operations that the fuzzer's
// bytes choose (create, add, remove, delete; by writers and admins of
// five organizations, one of them suspended midway) on the state, and
// checks the invariants after each; the same sequence run twice gives
// the same state root.
func FuzzGroupOps(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 1, 0x21, 2, 0x13, 3, 0x40})
	f.Add([]byte{0, 0x1f, 0, 0x2f, 0, 0x3f, 1, 0x11, 2, 0x22, 4, 0, 3, 0x33})
	f.Add(bytes.Repeat([]byte{0, 0xff, 1, 0x12}, 8))
	base := newFixture(f, withOrgs(5), withoutValidator(3))
	f.Fuzz(func(t *testing.T, ops []byte) {
		if len(ops) > 64 {
			ops = ops[:64]
		}
		run := func() common.Hash {
			fx := base.copy(t)
			var ids []common.Hash
			h := uint64(1)
			for i := 0; i+1 < len(ops); i += 2 {
				op, arg := ops[i]%5, ops[i+1]
				s := fx.at(h)
				org := int(arg%5) + 1
				// A member set from the bits of arg, with the caller's org.
				var members []string
				for k := 1; k <= 5; k++ {
					if arg&(1<<(k-1)) != 0 || k == org {
						members = append(members, orgName(k))
					}
				}
				pick := func() common.Hash {
					if len(ids) == 0 {
						return common.Hash{}
					}
					return ids[int(arg>>4)%len(ids)]
				}
				var err error
				switch op {
				case 0:
					var g Group
					if g, err = s.CreateGroup(writerOf(org), common.Hash{}, "g", "", members); err == nil {
						ids = append(ids, g.ID)
					}
				case 1:
					_, _, err = s.AddGroupMembers(adminOf(org), pick(), []string{orgName(int(arg>>3)%5 + 1)})
				case 2:
					_, _, err = s.RemoveGroupMember(adminOf(org), pick(), orgName(int(arg>>3)%5+1))
				case 3:
					_, err = s.DeleteGroup(adminOf(org), pick())
				case 4:
					if h < 100 {
						fx.enact(h, ActSetOrganization, "org3", uint8(TierValidate), uint64(1), uint8(StatusSuspended))
						h = 100
					}
				}
				if err != nil {
					var r revert
					if !errors.As(err, &r) || r == "" {
						t.Fatalf("op %d: %v (%T), not a revert with a reason", op, err, err)
					}
				}
				checkGroupInvariants(t, Read(fx.st), ids, 5)
				for k := 1; k <= 5; k++ {
					if n := len(Read(fx.st).GroupsOf(orgName(k))); n > DefaultMaxGroupsPerOrg {
						t.Fatalf("%s in %d groups", orgName(k), n)
					}
				}
				h++
			}
			return fx.root()
		}
		if a, b := run(), run(); a != b {
			t.Fatalf("the same operations give state root %s, then %s", a.Hex(), b.Hex())
		}
	})
}
