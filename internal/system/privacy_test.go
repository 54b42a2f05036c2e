package system

import (
	"encoding/base64"
	"math/big"
	"slices"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/holiman/uint256"
)

// ---- legacy group ids ----

func b64Keys(t *testing.T, keys ...string) [][]byte {
	t.Helper()
	var out [][]byte
	for _, k := range keys {
		b, err := base64.StdEncoding.DecodeString(k)
		if err != nil || len(b) != 32 {
			t.Fatalf("key %q: %v", k, err)
		}
		out = append(out, b)
	}
	return out
}

// The ids web3js-quorum's generatePrivacyGroup gives (the first computed
// with its code, the others from its test fixtures, src/test-utils/
// keySets.json, which Besu's derivation produced): order and repeats of
// the keys do not matter.
func TestLegacyGroupID(t *testing.T) {
	const (
		a  = "A1aVtMxLCUHmBVHXoZzzBgPbW/wj5axDpW9X8l91SGo="
		b  = "Ko2bVqD+nNlNYL5EE7y3IdOnviftjiizpjRt+HTuFBs="
		k1 = "7VInrT2gzFmqvtHthvpH5iLpvho038yf+dbiRHc1J1c="
		k2 = "a7QHylXGWx5jP35GbuyYXIvUVIjivbthxwBtxXZdpSg="
		k3 = "d9DBF78YVIYPHfZDSmS5IJ7KHZHqwXXP+HPGKaFN+yQ="
		k4 = "gQY5tAb6Sbl0hR+66x3eza781sfuZ9yYJSF6nrkX5F8="
		k5 = "0h0Y88tAXsV54I1FWApC19Dz6KuWgwk304G9jMQJFX0="
		k6 = "pSFaU7qK88pEA+li/IQT8WLKvO8W/2Aai8DumJp1/VM="
	)
	cases := []struct {
		want string
		keys []string
	}{
		{"DyAOiF/ynpc+JXa2YAGB0bCitSlOMNm+ShmB/7M6C4w=", []string{a, b}},
		{"DyAOiF/ynpc+JXa2YAGB0bCitSlOMNm+ShmB/7M6C4w=", []string{b, a, b}},
		{"/6jgG/B4Jxq2zsRxbL+TKSI08Hs7WrL5rMegufnNzPo=", []string{k1, k1, k2}},
		{"/6jgG/B4Jxq2zsRxbL+TKSI08Hs7WrL5rMegufnNzPo=", []string{k2, k1}},
		{"xQdJRZp0ejzJRqU6N3+EsFo+qTIcdWX50V6YTyvBepw=", []string{k3, k1}},
		{"0Xc7qHcnXB8viAOYsf1idOZ4Fsbh0rGP97uUelJfD4U=", []string{k2, k3}},
		{"rxoPS3eRYof+t4JAIGK0ODtqwOqzTUUO4ZT5MigDcms=", []string{k1, k4}},
		{"Lf5QppINAlDn6D2ebDXXbWTcbIDDqnlavvXYj2mBZKg=", []string{k4, k2}},
		{"2Wb26t5TjZEE8OfPuIKZyljmuZAnOTSi5Am0Ca3WOpo=", []string{k3, k4}},
		{"QeloF4G+RMAgx10EE/Vcr53wzUSpFsfGiWWLnYj3kOE=", []string{k1, k2, k3, k4}},
		{"QeloF4G+RMAgx10EE/Vcr53wzUSpFsfGiWWLnYj3kOE=", []string{k1, k4, k2, k3}},
		{"qF8accqKMtoTyFeMh6mfBAQdqUSy5z4PX9x3OQNOfuU=", []string{k1, k2, k3, k4, k5, k6}},
		{"qF8accqKMtoTyFeMh6mfBAQdqUSy5z4PX9x3OQNOfuU=", []string{k6, k5, k4, k3, k2, k1}},
	}
	for _, c := range cases {
		if got := GroupIDBase64(LegacyGroupID(b64Keys(t, c.keys...))); got != c.want {
			t.Errorf("LegacyGroupID(%v) = %s, want %s", c.keys, got, c.want)
		}
	}
	// Java's Arrays.hashCode of signed bytes, int32 wraparound.
	for _, c := range []struct {
		b    []byte
		want int32
	}{{nil, 1}, {[]byte{0}, 31}, {[]byte{0xff}, 30}, {[]byte{0x80}, 31 - 128}, {[]byte{1, 2}, (31+1)*31 + 2}, {bytesOf(0x7f, 32), javaHashSlow(bytesOf(0x7f, 32))}} {
		if got := javaHash(c.b); got != c.want {
			t.Errorf("javaHash(%x) = %d, want %d", c.b, got, c.want)
		}
	}
}

func bytesOf(b byte, n int) []byte { return []byte(strings.Repeat(string([]byte{b}), n)) }

// javaHashSlow is Arrays.hashCode computed in int64 and cut to int32 at
// the end, as the wraparound arithmetic must agree.
func javaHashSlow(b []byte) int32 {
	h := int64(1)
	for _, x := range b {
		h = (31*h + int64(int8(x))) & 0xffffffff
	}
	return int32(uint32(h))
}

// ---- nodes as senders ----

func legacyTx(to *common.Address, data []byte) *types.Transaction {
	return types.NewTx(&types.LegacyTx{To: to, Data: data, Gas: 100_000})
}

func TestNodeSenderRules(t *testing.T) {
	f := newFixture(t, withDefaultRoles("read", "write", "deploy"), withoutValidator(2), withoutValidator(3))
	s := f.at(1)
	reg, gov, other := RegistryAddress, GovernanceAddress, common.Address{1}
	marker := pack(t, &Registry, "privateMarker", [32]byte{1}, [32]byte{2}, []string{})
	refused := "node " + nodeOf(1).Hex() + " may only send privacy calls to the registry"

	sender, err := s.CheckSender(nodeOf(1), &reg)
	if err != nil || !sender.Node || sender.Org != "org1" || sender.Roles != 0 || sender.MayDeploy() {
		t.Fatalf("CheckSender(node to registry) = %+v, %v", sender, err)
	}
	for _, name := range []string{"privateMarker", "createGroup", "deleteGroup", "recordDisclosure"} {
		data := Registry.Methods[name].ID
		if err := s.CheckTransaction(nodeOf(1), legacyTx(&reg, data)); err != nil {
			t.Errorf("CheckTransaction(node, %s): %v", name, err)
		}
	}
	// Anything else, though the default roles would let an unlisted
	// account send it.
	wantNotPermitted(t, s.CheckTx(nodeOf(1), &other), refused)
	wantNotPermitted(t, s.CheckTx(nodeOf(1), nil), refused)
	wantNotPermitted(t, s.CheckTx(nodeOf(1), &gov), refused)
	for _, data := range [][]byte{nil, {1, 2}, Registry.Methods["addMembers"].ID, Registry.Methods["setAccountRoles"].ID,
		Registry.Methods["purgeGroup"].ID, Registry.Methods["group"].ID, Governance.Methods["vote"].ID} {
		wantNotPermitted(t, s.CheckTransaction(nodeOf(1), legacyTx(&reg, data)), refused)
	}
	setCode := types.NewTx(&types.SetCodeTx{To: reg, Data: marker, Gas: 100_000})
	wantNotPermitted(t, s.CheckTransaction(nodeOf(1), setCode), refused)

	// A node whose organization is suspended, or that is revoked.
	f.enact(2, ActSetOrganization, "org2", uint8(TierValidate), uint64(1), uint8(StatusSuspended))
	f.enact(5, ActRemoveNode, nodeOf(3))
	s = f.at(10)
	wantNotPermitted(t, s.CheckTx(nodeOf(2), &reg), "organization org2 of node "+nodeOf(2).Hex()+" is suspended")
	wantNotPermitted(t, s.CheckTx(nodeOf(3), &reg), "node "+nodeOf(3).Hex()+" is revoked")

	// A node's key as the authority of another's EIP-7702 authorization.
	key, _ := crypto.GenerateKey()
	nodeAddr := crypto.PubkeyToAddress(key.PublicKey)
	Open(f.st, 10, 0).putNode(Node{ID: nodeAddr, Org: "org1"})
	auth, err := types.SignSetCode(key, types.SetCodeAuthorization{Address: common.Address{7}})
	if err != nil {
		t.Fatal(err)
	}
	s = f.at(10)
	s.reg.putUint("param/"+ParamSetCode, 1)
	wantNotPermitted(t, s.CheckAuthorizations([]types.SetCodeAuthorization{auth}),
		"authorization 0: authority "+nodeAddr.Hex()+" is a node, which may only send privacy calls to the registry")
}

// The registry refuses a node's other functions itself, whatever let the
// transaction in.
func TestRegistryRefusesNodeCalls(t *testing.T) {
	f := newFixture(t)
	e := f.evm(3)
	id := e.createGroup(nodeOf(1), common.Hash{}, "by node", "", "org1", "org2")
	if g := e.group(id); g.Creator != "org1" || !slices.Equal(g.Members, []string{"org1", "org2"}) {
		t.Fatalf("group created by a node: %+v", g)
	}
	refused := "not permitted: node " + nodeOf(1).Hex() + " may only send privacy calls to the registry"
	for _, c := range []struct {
		method string
		args   []any
	}{
		{"addMembers", []any{[32]byte(id), []string{"org3"}}},
		{"removeMember", []any{[32]byte(id), "org2"}},
		{"purgeGroup", []any{[32]byte(id)}},
		{"grantAuditor", []any{[32]byte(id), "org3", uint64(0)}},
		{"revokeAuditor", []any{[32]byte(id), "org3"}},
		{"setAccountRoles", []any{writerOf(1), uint32(RoleRead)}},
	} {
		ret, err := e.regCall(nodeOf(1), c.method, c.args...)
		wantCallRevert(t, ret, err, refused)
	}
	// createGroup by a node of an organization outside the members.
	ret, err := e.regCall(nodeOf(3), "createGroup", [32]byte{}, "x", "", []string{"org1"})
	wantCallRevert(t, ret, err, "organization org3 of "+nodeOf(3).Hex()+" must be a member of the group it creates")
	// deleteGroup: a node of a member, not of another organization.
	ret, err = e.regCall(nodeOf(3), "deleteGroup", [32]byte(id))
	wantCallRevert(t, ret, err, "organization org3 of "+nodeOf(3).Hex()+" is not a member of group "+id.Hex())
	logs := len(f.st.Logs())
	e.mustReg(nodeOf(2), "deleteGroup", [32]byte(id))
	wantLog(t, f.newLogs(logs)[0], RegistryAddress, &Registry, "GroupDeleted", []common.Hash{id, addrTopic(nodeOf(2))}, "org2")
}

// ---- markers ----

// withKeys gives org1 to orgN privacy keys and returns their identities.
func (f *fixture) withKeys(n int) map[string][]byte {
	f.t.Helper()
	out := map[string][]byte{}
	for i := 1; i <= n; i++ {
		k := newPrivacyKey(f.t)
		Open(f.st, 0, 0).setPrivacyKey(orgName(i), k)
		id := k.Identity()
		out[orgName(i)] = id[:]
	}
	return out
}

func TestPrivateMarker(t *testing.T) {
	f := newFixture(t)
	keys := f.withKeys(3)
	e := f.evm(5)
	id := e.createGroup(writerOf(1), common.Hash{}, "trade", "", "org1", "org2")
	payload := crypto.Keccak256Hash([]byte("envelope"))

	// By a node of a member: one event, the fixed gas.
	logs := len(f.st.Logs())
	input := pack(t, &Registry, "privateMarker", [32]byte(id), [32]byte(payload), []string{})
	if ret, err := e.send(nodeOf(2), RegistryAddress, input, 0); err != nil {
		reason, _ := abi.UnpackRevert(ret)
		t.Fatalf("privateMarker: %v %q", err, reason)
	}
	if want := gasPrivacyCall + gasWord*uint64((len(input)+31)/32); e.used != want {
		t.Fatalf("privateMarker used %d gas, want %d", e.used, want)
	}
	nl := f.newLogs(logs)
	if len(nl) != 1 {
		t.Fatalf("%d logs", len(nl))
	}
	wantLog(t, nl[0], RegistryAddress, &Registry, "PrivateMarker", []common.Hash{id}, [32]byte(payload), "org2")
	// By a writer of a member; members of an existing group are ignored.
	logs = len(f.st.Logs())
	e.mustReg(writerOf(1), "privateMarker", [32]byte(id), [32]byte(payload), []string{"org1", "org3"})
	if nl := f.newLogs(logs); len(nl) != 1 {
		t.Fatalf("%d logs for a marker of an existing group with members", len(nl))
	}
	if g := e.group(id); !slices.Equal(g.Members, []string{"org1", "org2"}) {
		t.Fatalf("members changed: %v", g.Members)
	}

	for _, c := range []struct {
		from    common.Address
		group   common.Hash
		payload common.Hash
		members []string
		want    string
	}{
		{readerOf(1), id, payload, nil, readerOf(1).Hex() + " lacks role write of organization org1"},
		{adminOf(1), id, payload, nil, adminOf(1).Hex() + " lacks role write of organization org1"},
		{nodeOf(3), id, payload, nil, "organization org3 of " + nodeOf(3).Hex() + " is not a member of group " + id.Hex()},
		{writerOf(3), id, payload, nil, "organization org3 of " + writerOf(3).Hex() + " is not a member of group " + id.Hex()},
		{testAddr("stranger", 1), id, payload, nil, testAddr("stranger", 1).Hex() + " is not an account of an organization"},
		{nodeOf(1), id, common.Hash{}, nil, "privateMarker: payloadHash is zero"},
		{nodeOf(1), common.Hash{9}, payload, nil, "no group " + common.Hash{9}.Hex() + " (give its members to create a legacy group)"},
	} {
		ret, err := e.regCall(c.from, "privateMarker", [32]byte(c.group), [32]byte(c.payload), nonNilStrings(c.members))
		wantCallRevert(t, ret, err, c.want)
	}

	// A legacy group: its id from the members' privacy keys.
	legacy := LegacyGroupID([][]byte{keys["org3"], keys["org1"]})
	members := []string{"org3", "org1"}
	ret, err := e.regCall(nodeOf(1), "privateMarker", [32]byte(common.Hash{7}), [32]byte(payload), members)
	wantCallRevert(t, ret, err, "group "+common.Hash{7}.Hex()+" is not the legacy id of its members' privacy keys, which is "+legacy.Hex())
	ret, err = e.regCall(nodeOf(2), "privateMarker", [32]byte(legacy), [32]byte(payload), members)
	wantCallRevert(t, ret, err, "organization org2 of "+nodeOf(2).Hex()+" must be a member of the group it creates")
	noKey := LegacyGroupID([][]byte{keys["org1"]})
	ret, err = e.regCall(nodeOf(1), "privateMarker", [32]byte(noKey), [32]byte(payload), []string{"org1", "org4"})
	wantCallRevert(t, ret, err, "organization org4 has no privacy key")
	ret, err = e.regCall(nodeOf(1), "privateMarker", [32]byte(noKey), [32]byte(payload), []string{"org1", "org1"})
	wantCallRevert(t, ret, err, "organization org1 listed twice")

	logs = len(f.st.Logs())
	input = pack(t, &Registry, "privateMarker", [32]byte(legacy), [32]byte(payload), members)
	if ret, err := e.send(nodeOf(1), RegistryAddress, input, 0); err != nil {
		reason, _ := abi.UnpackRevert(ret)
		t.Fatalf("legacy privateMarker: %v %q", err, reason)
	}
	if want := gasPrivacyCall + gasWord*uint64((len(input)+31)/32) + gasStoredByte*uint64(2*(4+32)); e.used != want {
		t.Fatalf("legacy privateMarker used %d gas, want %d", e.used, want)
	}
	nl = f.newLogs(logs)
	if len(nl) != 2 {
		t.Fatalf("%d logs, want GroupCreated and PrivateMarker", len(nl))
	}
	wantLog(t, nl[0], RegistryAddress, &Registry, "GroupCreated", []common.Hash{legacy, addrTopic(nodeOf(1))},
		"org1", "", []string{"org1", "org3"}, [32]byte(MembersHash(members)))
	wantLog(t, nl[1], RegistryAddress, &Registry, "PrivateMarker", []common.Hash{legacy}, [32]byte(payload), "org1")
	want := groupView{true, "", "legacy", "org1", []string{"org1", "org3"}, MembersHash(members), uint8(GroupActive), 5, 5}
	if got := e.group(legacy); !slicesEqualView(got, want) {
		t.Fatalf("legacy group %+v\nwant %+v", got, want)
	}
	if !slices.Contains(e.groupsOf("org3"), legacy) {
		t.Fatal("legacy group not in org3's list")
	}
	// The next marker of it needs no members.
	e.mustReg(nodeOf(3), "privateMarker", [32]byte(legacy), [32]byte(payload), []string{})

	// Deleted and purged groups refuse markers.
	e.mustReg(adminOf(1), "deleteGroup", [32]byte(id))
	ret, err = e.regCall(nodeOf(1), "privateMarker", [32]byte(id), [32]byte(payload), []string{})
	wantCallRevert(t, ret, err, "privacy group "+id.Hex()+" is deleted")
	f.enact(6, ActPurgeGroup, [32]byte(legacy))
	e = f.evm(20)
	ret, err = e.regCall(nodeOf(1), "privateMarker", [32]byte(legacy), [32]byte(payload), members)
	wantCallRevert(t, ret, err, "privacy group "+legacy.Hex()+" is purged")
}

func nonNilStrings(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func slicesEqualView(a, b groupView) bool {
	return a.Exists == b.Exists && a.Name == b.Name && a.Description == b.Description && a.Creator == b.Creator &&
		slices.Equal(a.Members, b.Members) && a.MembersHash == b.MembersHash && a.Status == b.Status && a.Created == b.Created && a.Changed == b.Changed
}

// ---- purge ----

func TestPurgeByMembers(t *testing.T) {
	f := newFixture(t)
	e := f.evm(5)
	id := e.createGroup(writerOf(1), common.Hash{}, "g", "", "org1", "org2", "org3")
	approve := func(org int) []*types.Log {
		t.Helper()
		logs := len(f.st.Logs())
		e.mustReg(adminOf(org), "purgeGroup", [32]byte(id))
		nl := f.newLogs(logs)
		wantLog(t, nl[0], RegistryAddress, &Registry, "GroupPurgeApproved", []common.Hash{id, addrTopic(adminOf(org))}, orgName(org))
		return nl
	}
	approvals := func() []string { return e.view(&Registry, "purgeApprovals", [32]byte(id))[0].([]string) }

	if nl := approve(1); len(nl) != 1 {
		t.Fatalf("%d logs after one approval", len(nl))
	}
	ret, err := e.regCall(adminOf(1), "purgeGroup", [32]byte(id))
	wantCallRevert(t, ret, err, "organization org1 approved the purge of group "+id.Hex()+" already")
	for _, c := range []struct {
		from common.Address
		want string
	}{
		{writerOf(2), writerOf(2).Hex() + " is not an organization admin"},
		{adminOf(4), "organization org4 of " + adminOf(4).Hex() + " is not a member of group " + id.Hex()},
	} {
		ret, err := e.regCall(c.from, "purgeGroup", [32]byte(id))
		wantCallRevert(t, ret, err, c.want)
	}
	approve(2)
	if got := approvals(); !slices.Equal(got, []string{"org1", "org2"}) {
		t.Fatalf("approvals %v", got)
	}
	// A change of members voids them.
	e.mustReg(adminOf(3), "addMembers", [32]byte(id), []string{"org4"})
	if got := approvals(); len(got) != 0 {
		t.Fatalf("approvals after a member joined: %v", got)
	}
	for _, org := range []int{4, 2, 1} {
		if nl := approve(org); len(nl) != 1 {
			t.Fatalf("purged before every member approved")
		}
	}
	e = f.evm(7)
	nl := approve(3)
	if len(nl) != 2 {
		t.Fatalf("%d logs after the last approval", len(nl))
	}
	wantLog(t, nl[1], RegistryAddress, &Registry, "GroupPurged", []common.Hash{id}, uint64(7))
	g := e.group(id)
	if g.Status != uint8(GroupPurged) || g.Changed != 7 || len(g.Members) != 4 {
		t.Fatalf("purged group %+v", g)
	}
	if len(approvals()) != 0 || Read(f.st).reg.has(purgeOKKey(id)) {
		t.Fatal("approvals kept after the purge")
	}
	for i := 1; i <= 4; i++ {
		if slices.Contains(e.groupsOf(orgName(i)), id) {
			t.Fatalf("purged group in %s's list", orgName(i))
		}
	}
	// No more changes, grants or purges.
	for _, c := range []struct {
		method string
		args   []any
	}{
		{"addMembers", []any{[32]byte(id), []string{"org2"}}},
		{"removeMember", []any{[32]byte(id), "org2"}},
		{"deleteGroup", []any{[32]byte(id)}},
		{"purgeGroup", []any{[32]byte(id)}},
		{"grantAuditor", []any{[32]byte(id), "org5", uint64(1)}},
	} {
		ret, err := e.regCall(adminOf(1), c.method, c.args...)
		wantCallRevert(t, ret, err, "group "+id.Hex()+" is purged")
	}
	checkGroupInvariants(t, Read(f.st), []common.Hash{id}, 4)

	// A deleted group may be purged too; one member's approval is all.
	solo := e.createGroup(writerOf(2), common.Hash{}, "solo", "", "org2")
	e.mustReg(adminOf(2), "deleteGroup", [32]byte(solo))
	e.mustReg(adminOf(2), "purgeGroup", [32]byte(solo))
	if g := e.group(solo); g.Status != uint8(GroupPurged) {
		t.Fatalf("deleted group after its purge: %+v", g)
	}
}

func TestPurgeByGovernance(t *testing.T) {
	f := newFixture(t)
	e := f.evm(1)
	id := e.createGroup(writerOf(1), common.Hash{}, "g", "", "org1", "org2")
	e.mustReg(adminOf(1), "purgeGroup", [32]byte(id))
	_, at, fx := f.enact(2, ActPurgeGroup, [32]byte(id))
	if !slices.Equal(fx.PurgedGroups, []common.Hash{id}) {
		t.Fatalf("effects %+v", fx)
	}
	g, _ := Read(f.st).Group(id)
	if g.Status != GroupPurged || g.Changed != at || len(Read(f.st).PurgeApprovals(id)) != 0 || len(Read(f.st).GroupsOf("org1")) != 0 {
		t.Fatalf("group after PurgeGroup: %+v", g)
	}
	_, err := f.at(at+1).Propose(adminOf(1), ActPurgeGroup, f.args(ActPurgeGroup, [32]byte(id)), "")
	wantRevert(t, err, "group "+id.Hex()+" is purged already")
	_, err = f.at(at+1).Propose(adminOf(1), ActPurgeGroup, f.args(ActPurgeGroup, [32]byte{5}), "")
	wantRevert(t, err, "no group "+common.Hash{5}.Hex())
	_, err = f.at(at+1).Propose(adminOf(1), ActPurgeGroup, f.args(ActPurgeGroup, [32]byte{}), "")
	wantRevert(t, err, "group id is zero")
	if c := ActPurgeGroup.Class(); c != ClassPrivacy {
		t.Fatalf("PurgeGroup of class %s", c)
	}
}

// ---- auditors ----

// withAuditor gives org's reader the auditor role, by proposal at h, and
// returns the height after.
func (f *fixture) withAuditor(h uint64, org int) uint64 {
	f.t.Helper()
	_, at, _ := f.enact(h, ActGrantRoles, readerOf(org), orgName(org), uint32(RoleRead|RoleAuditor))
	if n := Read(f.st).AuditorAccounts(orgName(org)); n != 1 {
		f.t.Fatalf("%s has %d auditor accounts", orgName(org), n)
	}
	return at + 1
}

func TestAuditorGrantsByMembers(t *testing.T) {
	f := newFixture(t)
	h := f.withAuditor(1, 4)
	e := f.evm(h)
	id := e.createGroup(writerOf(1), common.Hash{}, "g", "", "org1", "org2")
	auditors := func() ([]string, []uint64) {
		out := e.view(&Registry, "groupAuditors", [32]byte(id))
		return out[0].([]string), out[1].([]uint64)
	}
	approve := func(org int, method string, args ...any) []*types.Log {
		t.Helper()
		logs := len(f.st.Logs())
		e.mustReg(adminOf(org), method, append([]any{[32]byte(id)}, args...)...)
		return f.newLogs(logs)
	}

	// Refusals.
	for _, c := range []struct {
		from common.Address
		org  string
		want string
	}{
		{adminOf(1), "org3", "organization org3 has no account with the auditor role (a GrantRoles proposal gives one)"},
		{adminOf(1), "org2", "organization org2 is a member of group " + id.Hex() + ": members see its payloads already"},
		{adminOf(1), "nope", "organization nope is not in the registry"},
		{adminOf(3), "org4", "organization org3 of " + adminOf(3).Hex() + " is not a member of group " + id.Hex()},
		{writerOf(1), "org4", writerOf(1).Hex() + " is not an organization admin"},
	} {
		ret, err := e.regCall(c.from, "grantAuditor", [32]byte(id), c.org, uint64(3))
		wantCallRevert(t, ret, err, c.want)
	}
	ret, err := e.regCall(adminOf(1), "revokeAuditor", [32]byte(id), "org4")
	wantCallRevert(t, ret, err, "organization org4 has no auditor grant for group "+id.Hex())

	nl := approve(1, "grantAuditor", "org4", uint64(3))
	if len(nl) != 1 {
		t.Fatalf("%d logs after one approval", len(nl))
	}
	wantLog(t, nl[0], RegistryAddress, &Registry, "AuditorChangeApproved", []common.Hash{id, addrTopic(adminOf(1))}, "org1", "org4", uint64(3), false)
	ret, err = e.regCall(adminOf(1), "grantAuditor", [32]byte(id), "org4", uint64(3))
	wantCallRevert(t, ret, err, "organization org1 approved this auditor change of group "+id.Hex()+" for org4 already")
	// Another height starts over: org1's approval of height 3 is void.
	approve(2, "grantAuditor", "org4", uint64(4))
	if p := Read(f.st).PendingAuditorChanges(id); len(p) != 1 || p[0].From != 4 || !slices.Equal(p[0].Approved, []string{"org2"}) {
		t.Fatalf("pending %+v", p)
	}
	nl = approve(1, "grantAuditor", "org4", uint64(4))
	if len(nl) != 2 {
		t.Fatalf("%d logs after the last approval", len(nl))
	}
	wantLog(t, nl[1], RegistryAddress, &Registry, "AuditorGranted", []common.Hash{id}, "org4", uint64(4))
	if orgs, from := auditors(); !slices.Equal(orgs, []string{"org4"}) || !slices.Equal(from, []uint64{4}) {
		t.Fatalf("auditors %v from %v", orgs, from)
	}
	if g, _ := Read(f.st).Group(id); !slices.Equal(g.Auditors, []AuditorGrant{{Org: "org4", From: 4}}) || len(Read(f.st).PendingAuditorChanges(id)) != 0 {
		t.Fatalf("group %+v", g)
	}
	ret, err = e.regCall(adminOf(1), "grantAuditor", [32]byte(id), "org4", uint64(4))
	wantCallRevert(t, ret, err, "organization org4 has an auditor grant for group "+id.Hex()+" from height 4 already")

	// A revocation awaiting approval is void when the members change.
	approve(1, "revokeAuditor", "org4")
	e.mustReg(adminOf(2), "addMembers", [32]byte(id), []string{"org3"})
	if p := Read(f.st).PendingAuditorChanges(id); len(p) != 0 {
		t.Fatalf("pending after a member joined: %+v", p)
	}
	approve(1, "revokeAuditor", "org4")
	approve(3, "revokeAuditor", "org4")
	nl = approve(2, "revokeAuditor", "org4")
	wantLog(t, nl[0], RegistryAddress, &Registry, "AuditorChangeApproved", []common.Hash{id, addrTopic(adminOf(2))}, "org2", "org4", uint64(0), true)
	wantLog(t, nl[1], RegistryAddress, &Registry, "AuditorRevoked", []common.Hash{id}, "org4")
	if orgs, _ := auditors(); len(orgs) != 0 {
		t.Fatalf("auditors after the revocation: %v", orgs)
	}

	// Losing its last auditor account, an organization may not be granted.
	_, at, _ := f.enact(h+1, ActRevokeRoles, readerOf(4), uint32(RoleAuditor))
	if n := Read(f.st).AuditorAccounts("org4"); n != 0 {
		t.Fatalf("org4 has %d auditor accounts after the revocation", n)
	}
	e = f.evm(at + 1)
	ret, err = e.regCall(adminOf(1), "grantAuditor", [32]byte(id), "org4", uint64(0))
	wantCallRevert(t, ret, err, "organization org4 has no account with the auditor role (a GrantRoles proposal gives one)")
}

func TestAuditorGrantsByGovernance(t *testing.T) {
	f := newFixture(t)
	h := f.withAuditor(1, 3)
	e := f.evm(h)
	id := e.createGroup(writerOf(1), common.Hash{}, "g", "", "org1", "org2")
	e.mustReg(adminOf(1), "grantAuditor", [32]byte(id), "org3", uint64(1))
	_, at, _ := f.enact(h+1, ActGrantAuditor, [32]byte(id), "org3", uint64(9))
	g, _ := Read(f.st).Group(id)
	if !slices.Equal(g.Auditors, []AuditorGrant{{Org: "org3", From: 9}}) || g.Changed != at || len(Read(f.st).PendingAuditorChanges(id)) != 0 {
		t.Fatalf("group after GrantAuditor: %+v", g)
	}
	_, err := f.at(at+1).Propose(adminOf(1), ActGrantAuditor, f.args(ActGrantAuditor, [32]byte(id), "org2", uint64(1)), "")
	wantRevert(t, err, "organization org2 is a member of group "+id.Hex()+": members see its payloads already")
	_, err = f.at(at+1).Propose(adminOf(1), ActGrantAuditor, f.args(ActGrantAuditor, [32]byte(id), "org3", uint64(9)), "")
	wantRevert(t, err, "organization org3 has an auditor grant for group "+id.Hex()+" from height 9 already")
	_, at, _ = f.enact(at+1, ActRevokeAuditor, [32]byte(id), "org3")
	if g, _ := Read(f.st).Group(id); len(g.Auditors) != 0 {
		t.Fatalf("group after RevokeAuditor: %+v", g)
	}
	_, err = f.at(at+1).Propose(adminOf(1), ActRevokeAuditor, f.args(ActRevokeAuditor, [32]byte(id), "org3"), "")
	wantRevert(t, err, "organization org3 has no auditor grant for group "+id.Hex())
}

func TestAuditorGrantBounds(t *testing.T) {
	f := newFixture(t, withOrgs(2))
	s := f.at(1)
	id := common.Hash{1}
	s.putGroup(Group{ID: id, Members: []string{"org1"}, MembersHash: MembersHash([]string{"org1"}), Status: GroupActive})
	for i := 0; i < MaxGroupAuditors+1; i++ {
		org := "aud" + strconvItoa(i)
		s.putOrg(Org{Name: org, Tier: TierRead, Weight: 1, Status: StatusActive})
		s.putAccount(Account{Address: testAddr("aud", i), Org: org, Roles: RoleAuditor})
	}
	for i := 0; i < MaxGroupAuditors; i++ {
		if _, _, _, done, err := s.ApproveAuditor(adminOf(1), id, "aud"+strconvItoa(i), 1, false); err != nil || !done {
			t.Fatalf("grant %d: %v %v", i, done, err)
		}
	}
	_, _, _, _, err := s.ApproveAuditor(adminOf(1), id, "aud"+strconvItoa(MaxGroupAuditors), 1, false)
	wantRevert(t, err, "group "+id.Hex()+" has 16 auditor grants, at most 16")
	// A grant to an auditor granted already replaces it.
	if _, _, _, done, err := s.ApproveAuditor(adminOf(1), id, "aud0", 7, false); err != nil || !done {
		t.Fatalf("new height for aud0: %v", err)
	}
	g, _ := s.Group(id)
	if len(g.Auditors) != MaxGroupAuditors || g.Auditors[len(g.Auditors)-1] != (AuditorGrant{Org: "aud0", From: 7}) {
		t.Fatalf("auditors %+v", g.Auditors)
	}
	// Pending changes are bounded too: a group of two members.
	s.putGroup(Group{ID: common.Hash{2}, Members: []string{"org1", "org2"}, MembersHash: MembersHash([]string{"org1", "org2"}), Status: GroupActive})
	for i := 0; i < MaxGroupAuditors; i++ {
		if _, _, _, done, err := s.ApproveAuditor(adminOf(1), common.Hash{2}, "aud"+strconvItoa(i), 1, false); err != nil || done {
			t.Fatalf("pending %d: %v %v", i, done, err)
		}
	}
	_, _, _, _, err = s.ApproveAuditor(adminOf(1), common.Hash{2}, "aud"+strconvItoa(MaxGroupAuditors), 1, false)
	wantRevert(t, err, "group "+common.Hash{2}.Hex()+" has 16 auditor changes awaiting approval, at most 16")
}

func strconvItoa(i int) string { return big.NewInt(int64(i)).String() }

// ---- disclosures ----

func TestRecordDisclosure(t *testing.T) {
	f := newFixture(t)
	h := f.withAuditor(1, 4)
	e := f.evm(h)
	id := e.createGroup(writerOf(1), common.Hash{}, "g", "", "org1", "org2")
	hashes := [][32]byte{crypto.Keccak256Hash([]byte("a")), crypto.Keccak256Hash([]byte("b"))}
	ret, err := e.regCall(nodeOf(1), "recordDisclosure", [32]byte(id), "org4", hashes)
	wantCallRevert(t, ret, err, "organization org4 has no auditor grant for group "+id.Hex())
	e.mustReg(adminOf(1), "grantAuditor", [32]byte(id), "org4", uint64(0))
	e.mustReg(adminOf(2), "grantAuditor", [32]byte(id), "org4", uint64(0))

	logs := len(f.st.Logs())
	input := pack(t, &Registry, "recordDisclosure", [32]byte(id), "org4", hashes)
	if ret, err := e.send(nodeOf(2), RegistryAddress, input, 0); err != nil {
		reason, _ := abi.UnpackRevert(ret)
		t.Fatalf("recordDisclosure: %v %q", err, reason)
	}
	if want := gasPrivacyCall + gasWord*uint64((len(input)+31)/32) + 2*gasDisclosure; e.used != want {
		t.Fatalf("recordDisclosure used %d gas, want %d", e.used, want)
	}
	nl := f.newLogs(logs)
	if len(nl) != 2 {
		t.Fatalf("%d logs", len(nl))
	}
	for i, l := range nl {
		wantLog(t, l, RegistryAddress, &Registry, "Disclosed", []common.Hash{id}, "org4", hashes[i], "org2")
	}
	e.mustReg(adminOf(1), "recordDisclosure", [32]byte(id), "org4", hashes[:1])

	many := make([][32]byte, MaxDisclosureHashes)
	for i := range many {
		many[i] = crypto.Keccak256Hash([]byte{byte(i), byte(i >> 8)})
	}
	e.mustReg(nodeOf(1), "recordDisclosure", [32]byte(id), "org4", many)
	over := append(slices.Clone(many), many[0])
	far := append(slices.Clone(over), many[:40]...)
	maxIn := groupCallMaxInput["recordDisclosure"]
	for _, c := range []struct {
		from   common.Address
		hashes [][32]byte
		want   string
	}{
		{writerOf(1), hashes, writerOf(1).Hex() + " is not an organization admin"},
		{nodeOf(3), hashes, "organization org3 of " + nodeOf(3).Hex() + " is not a member of group " + id.Hex()},
		{nodeOf(1), [][32]byte{}, "recordDisclosure: 0 payload hashes, want 1 to 256"},
		{nodeOf(1), [][32]byte{hashes[0], {}}, "recordDisclosure: payload hash 1 is zero"},
		{nodeOf(1), over, "recordDisclosure: 257 payload hashes, want 1 to 256"},
		{nodeOf(1), far, "recordDisclosure: arguments of " + itoaTest(len(pack(t, &Registry, "recordDisclosure", [32]byte(id), "org4", far))-4) + " bytes, at most " + itoaTest(maxIn)},
	} {
		ret, err := e.regCall(c.from, "recordDisclosure", [32]byte(id), "org4", c.hashes)
		wantCallRevert(t, ret, err, c.want)
	}
	// A deleted group's payloads may still be served; a purged one's not.
	e.mustReg(adminOf(2), "deleteGroup", [32]byte(id))
	e.mustReg(nodeOf(1), "recordDisclosure", [32]byte(id), "org4", hashes)
	e.mustReg(adminOf(1), "purgeGroup", [32]byte(id))
	e.mustReg(adminOf(2), "purgeGroup", [32]byte(id))
	ret, err = e.regCall(nodeOf(1), "recordDisclosure", [32]byte(id), "org4", hashes)
	wantCallRevert(t, ret, err, "privacy group "+id.Hex()+" is purged")
}

func itoaTest(i int) string { return strconvItoa(i) }

// Views are free for anyone; a write refused before it runs changes
// nothing and leaves no log (the gas of a malformed marker is the base).
func TestPrivacyCallsMalformed(t *testing.T) {
	f := newFixture(t)
	e := f.evm(1)
	root, logs := f.root(), len(f.st.Logs())
	m := Registry.Methods["privateMarker"]
	if g, ok := privacyGas(&m, []byte{1, 2, 3}); !ok || g != gasPrivacyCall+gasWord*1 {
		t.Fatalf("gas of a malformed marker %d", g)
	}
	for _, name := range []string{"privateMarker", "purgeGroup", "grantAuditor", "revokeAuditor", "recordDisclosure"} {
		data := append(slices.Clone(Registry.Methods[name].ID), 0xff)
		ret, err := e.raw(nodeOf(1), RegistryAddress, data, uint256.NewInt(0))
		if err == nil {
			t.Fatalf("%s with malformed arguments succeeded: %x", name, ret)
		}
	}
	if f.root() != root || len(f.st.Logs()) != logs {
		t.Fatal("refused calls changed the state")
	}
}
