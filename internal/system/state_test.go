package system

import (
	"bytes"
	"errors"
	"fmt"
	"math/big"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/tracing"
)

// goldenRoot is the state root after the golden scenario. It is the
// on-chain format of the registry and governance: a change of this
// constant means a change of the on-chain format (keys, encodings, what
// is recorded), which existing chains cannot follow without an upgrade.
// Change it only on purpose.
const goldenRoot = "0x767488660f872bff5e04b6cf2944c9febaacd52ec416b467ea59fc0e05d578e6"

func TestGoldenStateRoot(t *testing.T) {
	f := newFixture(t)
	// Admins manage accounts.
	if err := f.at(1).SetAccountRoles(adminOf(1), testAddr("golden", 1), RoleRead|RoleWrite|RoleDeploy); err != nil {
		t.Fatal(err)
	}
	// A new organization joins.
	a := org5(goldenRootsPEM)
	f.begin(2)
	id := f.propose(2, 1, ActAddOrganization, a.vals()...)
	f.begin(3)
	f.vote(3, 1, id, true)
	f.vote(3, 2, id, false)
	f.vote(3, 3, id, true)
	wantStatus(t, f.vote(3, 4, id, true), ProposalPassed)
	if fx := f.begin(4); !slices.Equal(fx.Executed, []uint64{id}) {
		t.Fatalf("executed %v", fx.Executed)
	}
	// An account is frozen.
	id = f.propose(5, 2, ActFreeze, writerOf(3))
	f.passVotes(5, id)
	f.begin(6)
	// A proposal is cancelled, one rejected, one expires.
	id = f.propose(7, 2, ActSetParameter, ParamGasLimit, big.NewInt(50_000_000))
	if err := f.at(8).Cancel(adminOf(2), id); err != nil {
		t.Fatal(err)
	}
	id = f.propose(8, 3, ActRemoveValidator, nodeOf(1))
	wantStatus(t, f.vote(8, 1, id, false), ProposalOpen)
	wantStatus(t, f.vote(8, 2, id, false), ProposalRejected) // 0 + 3 of 5 < two thirds
	id = f.propose(9, 5, ActSetDefaultRoles, uint32(RoleRead))
	f.vote(9, 5, id, true)
	// Usage is counted.
	f.at(9).AddUsage("org1", Usage{Txs: 3, Gas: 63_000, StateBytes: 96})
	f.begin(10_010)
	if p := f.proposal(id); p.Status != ProposalExpired {
		t.Fatalf("last proposal %s, want expired", p.Status)
	}

	got := f.root().Hex()
	if got != goldenRoot {
		t.Fatalf("state root of the golden scenario\n got %s\nwant %s\n(a change of the on-chain format?)", got, goldenRoot)
	}
}

// ---- the key-value store ----

func TestStore(t *testing.T) {
	st := newStateDB(t)
	st.SetNonce(RegistryAddress, 1, tracing.NonceChangeGenesis)
	empty := st.IntermediateRoot(testRules)
	s := store{addr: RegistryAddress, r: st, w: st}
	other := store{addr: GovernanceAddress, r: st, w: st}

	if s.get("k") != nil || s.has("k") {
		t.Fatal("a missing record is there")
	}
	s.put("k", []byte{})
	if v := s.get("k"); v == nil || len(v) != 0 || !s.has("k") {
		t.Fatalf("empty record: %v %v", v, s.has("k"))
	}
	long := bytes.Repeat([]byte("0123456789"), 7) // 70 bytes: 3 data slots
	s.put("k", long)
	if v := s.get("k"); !bytes.Equal(v, long) {
		t.Fatalf("get = %q", v)
	}
	head := headSlot("k")
	if h := st.GetState(RegistryAddress, head); h != common.BigToHash(big.NewInt(71)) {
		t.Fatalf("head slot %x, want length+1 = 71", h)
	}
	if v := st.GetState(RegistryAddress, dataSlot(head, 2)); v != common.BytesToHash(append([]byte("456789"), make([]byte, 26)...)) {
		t.Fatalf("third data slot %x", v)
	}
	// Shrinking clears the slots the longer value used.
	s.put("k", []byte("short"))
	if v := s.get("k"); string(v) != "short" {
		t.Fatalf("get = %q", v)
	}
	for i := 1; i < 3; i++ {
		if v := st.GetState(RegistryAddress, dataSlot(head, i)); v != (common.Hash{}) {
			t.Fatalf("data slot %d left as %x", i, v)
		}
	}
	// Another key and another account do not interfere.
	s.put("k2", []byte("two"))
	if other.has("k") || string(s.get("k")) != "short" || string(s.get("k2")) != "two" {
		t.Fatal("keys interfere")
	}
	s.putUint("n", 1<<40+5)
	if v := s.getUint("n"); v != 1<<40+5 {
		t.Fatalf("getUint = %d", v)
	}
	if v := s.getUint("k"); v != 0 {
		t.Fatalf("getUint of a 5-byte record = %d, want 0", v)
	}
	if v := s.getUint("missing"); v != 0 {
		t.Fatalf("getUint of no record = %d", v)
	}
	// Deleting everything leaves the account's storage empty.
	s.put("k", long)
	for _, k := range []string{"k", "k2", "n"} {
		s.del(k)
		if s.has(k) || s.get(k) != nil {
			t.Fatalf("%s still there after del", k)
		}
	}
	if r := st.IntermediateRoot(testRules); r != empty {
		t.Fatalf("root %x after deleting every record, want %x", r, empty)
	}
}

// ---- genesis ----

func TestBuildGenesisOpenChain(t *testing.T) {
	vals := []common.Address{nodeOf(1), nodeOf(2)}
	g, err := BuildGenesis(nil, []GenesisOrg{{Name: "a", Tier: ""}}, vals)
	if err != nil {
		t.Fatal(err)
	}
	if g.Policy.DefaultRoles != OpenRoles || len(g.Accounts) != 0 {
		t.Fatalf("open chain policy %+v accounts %v", g.Policy, g.Accounts)
	}
	if want := []Org{{Name: "a", Tier: TierValidate, Weight: 1, Status: StatusActive}}; !reflect.DeepEqual(g.Orgs, want) {
		t.Fatalf("orgs %+v", g.Orgs)
	}
	if want := []Node{{ID: nodeOf(1), Validator: true}, {ID: nodeOf(2), Validator: true}}; !reflect.DeepEqual(g.Nodes, want) {
		t.Fatalf("nodes %+v", g.Nodes)
	}
	st := newStateDB(t)
	Seed(st, g)
	s := Read(st)
	if err := s.CheckTx(testAddr("anyone", 1), nil); err != nil {
		t.Fatalf("an open chain refuses a deployment: %v", err)
	}
	if err := s.CheckTx(testAddr("anyone", 1), &common.Address{1}); err != nil {
		t.Fatalf("an open chain refuses a transfer: %v", err)
	}
}

// A genesis validator that the governance section does not list under
// nodes (every validator of an open chain, the dev chain's sealer) has no
// organization; AllowedNode accepts it (the trust store vets it).
func TestAllowedNodeGenesisValidatorWithoutOrganization(t *testing.T) {
	for _, gs := range []*GenesisSpec{nil, {}} {
		g, err := BuildGenesis(gs, []GenesisOrg{{Name: "a"}}, []common.Address{nodeOf(1)})
		if err != nil {
			t.Fatal(err)
		}
		st := newStateDB(t)
		Seed(st, g)
		s := Read(st)
		if n, _ := s.Node(nodeOf(1)); n != (Node{ID: nodeOf(1), Validator: true}) {
			t.Fatalf("genesis validator %+v", n)
		}
		if err := s.AllowedNode(nodeOf(1), common.Hash{}); err != nil {
			t.Fatalf("the genesis validator is refused: %v", err)
		}
	}
}

func TestBuildGenesisErrors(t *testing.T) {
	orgs := []GenesisOrg{{Name: "a", Tier: "validate"}, {Name: "r", Tier: "read"}}
	vals := []common.Address{nodeOf(1)}
	acct := func(addr common.Address, org string, roles ...string) GenesisAccount {
		return GenesisAccount{Address: addr, Org: org, Roles: roles}
	}
	cases := []struct {
		name string
		orgs []GenesisOrg
		gs   GenesisSpec
		vals []common.Address
		want string
	}{
		{"bad tier", []GenesisOrg{{Name: "a", Tier: "admin"}}, GenesisSpec{}, vals, `organizations[0].tier: unknown tier "admin" (want read, write, validate)`},
		{"bad weight", []GenesisOrg{{Name: "a"}, {Name: "b", Weight: 2_000_000}}, GenesisSpec{}, vals, "organizations[1].weight: weight 2000000 outside [1, 1000000]"},
		{"unknown class", orgs, GenesisSpec{Rules: map[string]Rule{"votes": {}}}, vals, "rules.votes: unknown class (want one of [membership validators roles certificates freeze parameters upgrade policy contracts privacy])"},
		{"bad rule", orgs, GenesisSpec{Rules: map[string]Rule{"roles": {Threshold: 0, ExpiryBlocks: 1, Timelock: 1}}}, vals, "roles: threshold 0 outside [1, 10000] basis points of the total weight"},
		{"lock-out", orgs, GenesisSpec{Rules: map[string]Rule{"freeze": {Threshold: 1, ExpiryBlocks: 1, Timelock: 1, MinApprovals: 3}}}, vals, "freeze: 3 approvals needed but only 2 organizations are active: nothing could pass"},
		{"epoch too long", orgs, GenesisSpec{EpochLength: 2_000_000}, vals, "epoch length 2000000 outside [1, 1000000]"},
		{"unknown default role", orgs, GenesisSpec{DefaultRoles: []string{"read", "boss"}}, vals, `defaultRoles: unknown role "boss" (want read, write, deploy, admin, auditor)`},
		{"default admin", orgs, GenesisSpec{DefaultRoles: []string{"admin"}}, vals, "default roles may not include admin"},
		{"account of no org", orgs, GenesisSpec{Accounts: []GenesisAccount{acct(adminOf(1), "x", "read")}}, vals, `accounts[0].org: "x" is not an organization of the genesis`},
		{"account bad role", orgs, GenesisSpec{Accounts: []GenesisAccount{acct(adminOf(1), "a", "root")}}, vals, `accounts[0].roles: unknown role "root" (want read, write, deploy, admin, auditor)`},
		{"account beyond tier", orgs, GenesisSpec{Accounts: []GenesisAccount{acct(adminOf(1), "r", "read", "write")}}, vals, "accounts[0].roles: organization r of tier read may not hold read,write"},
		{"account twice", orgs, GenesisSpec{Accounts: []GenesisAccount{acct(adminOf(1), "a", "read"), acct(adminOf(1), "r", "read")}}, vals, "accounts[1].address: zero, a system contract, or listed twice"},
		{"account system", orgs, GenesisSpec{Accounts: []GenesisAccount{acct(RegistryAddress, "a", "read")}}, vals, "accounts[0].address: zero, a system contract, or listed twice"},
		{"account zero", orgs, GenesisSpec{Accounts: []GenesisAccount{acct(common.Address{}, "a", "read")}}, vals, "accounts[0].address: zero, a system contract, or listed twice"},
		{"node of no org", orgs, GenesisSpec{Nodes: []GenesisNode{{ID: nodeOf(1), Org: "x"}}}, vals, `nodes[0].org: "x" is not an organization of the genesis`},
		{"node twice", orgs, GenesisSpec{Nodes: []GenesisNode{{ID: nodeOf(1), Org: "a"}, {ID: nodeOf(1), Org: "a"}}}, vals, "nodes[1].id: zero or listed twice"},
		{"node zero", orgs, GenesisSpec{Nodes: []GenesisNode{{Org: "a"}}}, vals, "nodes[0].id: zero or listed twice"},
		{"validator of a read org", orgs, GenesisSpec{Nodes: []GenesisNode{{ID: nodeOf(1), Org: "r"}}}, vals, "nodes[0]: validator of organization r of tier read"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			gs := c.gs
			_, err := BuildGenesis(&gs, c.orgs, c.vals)
			if err == nil || err.Error() != c.want {
				t.Fatalf("error %v\nwant %s", err, c.want)
			}
		})
	}
}

func TestSeed(t *testing.T) {
	f := newFixture(t, withWeights(3, 1, 1, 1), withoutValidator(4), withDefaultRoles("read"),
		withRule("freeze", Rule{Threshold: 7000, Quorum: 100, ExpiryBlocks: 9, Timelock: 2, MinApprovals: 1}))
	for _, addr := range []common.Address{RegistryAddress, GovernanceAddress} {
		if code := f.st.GetCode(addr); !bytes.Equal(code, []byte{0xfe}) || f.st.GetNonce(addr) != 1 {
			t.Fatalf("system account %s: code %x nonce %d", addr.Hex(), code, f.st.GetNonce(addr))
		}
		if !IsSystem(addr) {
			t.Fatalf("IsSystem(%s) = false", addr.Hex())
		}
	}
	if IsSystem(common.Address{4}) {
		t.Fatal("IsSystem of an ordinary address")
	}
	s := Read(f.st)
	if !reflect.DeepEqual(s.Orgs(), f.gen.Orgs) || !slices.Equal(s.OrgNames(), []string{"org1", "org2", "org3", "org4"}) {
		t.Fatalf("orgs %+v", s.Orgs())
	}
	if s.Roots("org3") != goldenRootsPEM || s.Roots("nope") != "" {
		t.Fatal("roots not seeded")
	}
	if w := s.TotalWeight(); w != 6 {
		t.Fatalf("total weight %d", w)
	}
	for _, a := range f.gen.Accounts {
		if got := s.Account(a.Address); got != a {
			t.Fatalf("account %+v, want %+v", got, a)
		}
	}
	if got := s.Account(adminOf(2)); got.Roles != RoleAdmin {
		t.Fatalf("admin roles %s", got.Roles)
	}
	if !reflect.DeepEqual(s.Nodes(), f.gen.Nodes) {
		t.Fatalf("nodes %+v\nwant %+v", s.Nodes(), f.gen.Nodes)
	}
	vals := []common.Address{nodeOf(1), nodeOf(2), nodeOf(3)}
	if !slices.Equal(s.Validators(), vals) || !reflect.DeepEqual(s.ValidatorChanges(), []ValidatorChange{{From: 0, IDs: vals}}) {
		t.Fatalf("validators %v changes %+v", s.Validators(), s.ValidatorChanges())
	}
	if n, _ := s.Node(nodeOf(4)); n.Validator || n.Org != "org4" || n.Fingerprint != fpOf(4) {
		t.Fatalf("node 4 %+v", n)
	}
	p := s.Policy()
	want := DefaultPolicy()
	want.Rules[ClassFreeze] = Rule{Threshold: 7000, Quorum: 100, ExpiryBlocks: 9, Timelock: 2, MinApprovals: 1}
	want.DefaultRoles = RoleRead
	if !reflect.DeepEqual(p, want) || !reflect.DeepEqual(p, f.gen.Policy) {
		t.Fatalf("policy %+v\nwant %+v", p, want)
	}
	if s.Param(ParamEpochLength) != 10 || s.Param(ParamGasLimit) != 0 {
		t.Fatal("parameters")
	}
	if s.ProposalCount() != 0 || s.EventCount() != 0 || len(s.Upgrades()) != 0 || len(s.RevokedFingerprints()) != 0 {
		t.Fatal("a fresh chain has history")
	}
	if _, ok := s.Proposal(1); ok {
		t.Fatal("proposal 1 exists")
	}
}

func TestDefaultPolicyIsValid(t *testing.T) {
	p := DefaultPolicy()
	if err := p.check(2, NumClasses); err != nil {
		t.Fatal(err)
	}
	if err := p.check(1, NumClasses); err == nil || err.Error() != "certificates: 2 approvals needed but only 1 organizations are active: nothing could pass" {
		t.Fatalf("check(1) = %v", err)
	}
	p.EpochLength = 0
	if err := p.check(4, NumClasses); err == nil || err.Error() != "epoch length 0 outside [1, 1000000]" {
		t.Fatalf("epoch 0: %v", err)
	}
	p = DefaultPolicy()
	p.DefaultRoles = 1 << 7
	if err := p.check(4, NumClasses); err == nil || err.Error() != "default roles 0x80: unknown role bits" {
		t.Fatalf("unknown default role: %v", err)
	}
	p = DefaultPolicy()
	p.Rules[ClassUpgrade].Timelock = 100_000_001
	if err := p.check(4, NumClasses); err == nil || err.Error() != "upgrade: time-lock 100000001 blocks outside [1, 100000000]" {
		t.Fatalf("time-lock: %v", err)
	}
	p = DefaultPolicy()
	p.Rules[ClassParameters].ExpiryBlocks = 100_000_001
	if err := p.check(4, NumClasses); err == nil || err.Error() != "parameters: expiry 100000001 blocks outside [1, 100000000]" {
		t.Fatalf("expiry: %v", err)
	}
}

// ---- names ----

func TestNames(t *testing.T) {
	if s := Role(0).String(); s != "none" {
		t.Fatal(s)
	}
	if s := (RoleRead | RoleAdmin | RoleAuditor).String(); s != "read,admin,auditor" {
		t.Fatal(s)
	}
	if n := Role(0).Names(); n == nil || len(n) != 0 {
		t.Fatalf("Names of none = %#v", n)
	}
	r, err := ParseRoles([]string{" Write", "READ", "deploy"})
	if err != nil || r != RoleRead|RoleWrite|RoleDeploy {
		t.Fatalf("ParseRoles = %s, %v", r, err)
	}
	if r, err := ParseRoles(nil); err != nil || r != 0 {
		t.Fatalf("ParseRoles(nil) = %s, %v", r, err)
	}
	if _, err := ParseRoles([]string{"read", "owner"}); err == nil || err.Error() != `unknown role "owner" (want read, write, deploy, admin, auditor)` {
		t.Fatalf("ParseRoles(owner): %v", err)
	}
	for s, want := range map[string]Tier{"read": TierRead, " Write ": TierWrite, "validate": TierValidate, "": TierValidate} {
		if got, err := ParseTier(s); err != nil || got != want {
			t.Fatalf("ParseTier(%q) = %s, %v", s, got, err)
		}
	}
	if _, err := ParseTier("root"); err == nil || err.Error() != `unknown tier "root" (want read, write, validate)` {
		t.Fatalf("ParseTier(root): %v", err)
	}
	names := map[fmt.Stringer]string{
		TierRead: "read", TierWrite: "write", TierValidate: "validate", Tier(9): "tier(9)",
		StatusActive: "active", StatusSuspended: "suspended", StatusExited: "exited", Status(0): "status(0)",
		ClassMembership: "membership", ClassPolicy: "policy", ClassContracts: "contracts", ClassPrivacy: "privacy", Class(10): "class(10)",
		ProposalOpen: "open", ProposalPassed: "passed", ProposalExecuted: "executed", ProposalRejected: "rejected",
		ProposalExpired: "expired", ProposalCancelled: "cancelled", ProposalFailed: "failed", ProposalStatus(0): "status(0)",
		ActAddOrganization: "AddOrganization", ActSetDefaultRoles: "SetDefaultRoles", ActSetFactory: "SetFactory", Action(0): "action(0)", Action(99): "action(99)",
	}
	for v, want := range names {
		if got := v.String(); got != want {
			t.Errorf("%T(%v).String() = %q, want %q", v, v, got, want)
		}
	}
}

func TestParseAction(t *testing.T) {
	for a := Action(1); a < numActions; a++ {
		for _, s := range []string{a.String(), strings.ToLower(a.String()), strings.ToUpper(a.String())} {
			if got, err := ParseAction(s); err != nil || got != a {
				t.Fatalf("ParseAction(%q) = %d, %v", s, got, err)
			}
		}
	}
	if _, err := ParseAction("Dissolve"); err == nil || err.Error() != `unknown action "Dissolve"` {
		t.Fatalf("ParseAction(Dissolve): %v", err)
	}
	// The doc comment says "by name (case-insensitive) or number".
	if got, err := ParseAction("16"); err != nil || got != ActSetRule {
		t.Fatalf("ParseAction does not accept a number as documented: %v", err)
	}
}

func TestActionArgsAndClasses(t *testing.T) {
	if got := ActionArgs(ActSetRule); !slices.Equal(got, []string{"class uint8", "threshold uint64", "quorum uint64", "expiryBlocks uint64", "timelock uint64", "minApprovals uint64"}) {
		t.Fatalf("ActionArgs(SetRule) = %v", got)
	}
	if ActionArgs(0) != nil || ActionArgs(numActions) != nil {
		t.Fatal("ActionArgs of an unknown action")
	}
	want := map[Action]Class{
		ActAddOrganization: ClassMembership, ActRemoveOrganization: ClassMembership, ActSetOrganization: ClassMembership,
		ActAddNode: ClassMembership, ActRemoveNode: ClassMembership, ActAddValidator: ClassValidators, ActRemoveValidator: ClassValidators,
		ActGrantRoles: ClassRoles, ActRevokeRoles: ClassRoles, ActRevokeCertificate: ClassCertificates, ActRotateCA: ClassCertificates,
		ActFreeze: ClassFreeze, ActUnfreeze: ClassFreeze, ActSetParameter: ClassParameters, ActScheduleUpgrade: ClassUpgrade,
		ActSetRule: ClassPolicy, ActSetDefaultRoles: ClassPolicy, ActSetFactory: ClassContracts,
		ActSetPrivacyKey: ClassCertificates, ActPurgeGroup: ClassPrivacy, ActGrantAuditor: ClassPrivacy, ActRevokeAuditor: ClassPrivacy,
		ActUpgradeContract: ClassContracts, ActDeprecateContract: ClassContracts,
	}
	if len(want) != int(numActions)-1 {
		t.Fatalf("%d actions listed, %d defined", len(want), numActions-1)
	}
	for a, c := range want {
		if a.Class() != c {
			t.Errorf("%s is of class %s, want %s", a, a.Class(), c)
		}
	}
	if Action(0).Class() != NumClasses {
		t.Fatal("class of an unknown action")
	}
}

func TestEncodeDecodeArgs(t *testing.T) {
	args, err := EncodeArgs(ActAddNode, "org1", nodeOf(1), [32]byte{9}, true)
	if err != nil {
		t.Fatal(err)
	}
	m, err := DecodeArgs(ActAddNode, args)
	if err != nil {
		t.Fatal(err)
	}
	want := AddNode{Org: "org1", ID: nodeOf(1), Fingerprint: common.Hash{9}, Validator: true}
	if !reflect.DeepEqual(m, want) {
		t.Fatalf("DecodeArgs = %#v", m)
	}
	if _, err := EncodeArgs(0, "x"); err == nil || err.Error() != "unknown action 0" {
		t.Fatalf("EncodeArgs(0): %v", err)
	}
	if _, err := DecodeArgs(numActions, args); err == nil || err.Error() != fmt.Sprintf("unknown action %d", numActions) {
		t.Fatalf("DecodeArgs(%d): %v", numActions, err)
	}
	if _, err := EncodeArgs(ActAddNode, "org1"); err == nil {
		t.Fatal("EncodeArgs with too few values")
	}
	// Each action's arguments round-trip through the canonical encoding.
	for a := Action(1); a < numActions; a++ {
		d, _ := a.def()
		vals := make([]any, len(d.args))
		for i, arg := range d.args {
			vals[i] = reflect.New(arg.Type.GetType()).Elem().Interface()
			if _, ok := vals[i].(*big.Int); ok { // uint256: a nil *big.Int does not pack
				vals[i] = big.NewInt(1)
			}
		}
		enc, err := EncodeArgs(a, vals...)
		if err != nil {
			t.Fatalf("EncodeArgs(%s, zero values): %v", a, err)
		}
		if _, err := DecodeArgs(a, enc); err != nil {
			t.Fatalf("DecodeArgs(%s) of its own encoding: %v", a, err)
		}
	}
}

// ---- permissions ----

func wantNotPermitted(t *testing.T, err error, want string) {
	t.Helper()
	if !errors.Is(err, ErrNotPermitted) || err.Error() != "not permitted: "+want {
		t.Fatalf("CheckTx = %v\nwant not permitted: %s", err, want)
	}
}

func TestCheckTx(t *testing.T) {
	f := newFixture(t)
	to := testAddr("contract", 1)
	s := f.at(1)
	// Roles.
	if err := s.CheckTx(writerOf(1), &to); err != nil {
		t.Fatalf("writer: %v", err)
	}
	if err := s.CheckTx(deployerOf(1), nil); err != nil {
		t.Fatalf("deployer: %v", err)
	}
	wantNotPermitted(t, s.CheckTx(readerOf(1), &to), "account "+readerOf(1).Hex()+" lacks role write")
	wantNotPermitted(t, s.CheckTx(writerOf(1), nil), "account "+writerOf(1).Hex()+" lacks role deploy")
	wantNotPermitted(t, s.CheckTx(adminOf(1), &to), "account "+adminOf(1).Hex()+" lacks role write")
	// The system contracts: writers and admins.
	for _, sys := range []common.Address{RegistryAddress, GovernanceAddress} {
		if err := s.CheckTx(adminOf(1), &sys); err != nil {
			t.Fatalf("admin to %s: %v", sys.Hex(), err)
		}
		if err := s.CheckTx(writerOf(1), &sys); err != nil {
			t.Fatalf("writer to %s: %v", sys.Hex(), err)
		}
		wantNotPermitted(t, s.CheckTx(readerOf(1), &sys), "account "+readerOf(1).Hex()+" lacks role write or admin")
	}
	// Unlisted accounts have the default roles: none here.
	stranger := testAddr("stranger", 1)
	wantNotPermitted(t, s.CheckTx(stranger, &to), "account "+stranger.Hex()+" lacks role write")
	wantNotPermitted(t, s.CheckTx(stranger, nil), "account "+stranger.Hex()+" lacks role deploy")
	if a := s.Account(stranger); a != (Account{Address: stranger}) || s.EffectiveRoles(a) != 0 {
		t.Fatalf("unlisted account %+v", a)
	}

	// Freezes: of the sender, of the recipient.
	f.enact(10, ActFreeze, writerOf(2))
	f.enact(20, ActFreeze, to)
	s = f.at(30)
	wantNotPermitted(t, s.CheckTx(writerOf(2), &common.Address{1}), "account "+writerOf(2).Hex()+" is frozen")
	wantNotPermitted(t, s.CheckTx(writerOf(2), &GovernanceAddress), "account "+writerOf(2).Hex()+" is frozen")
	wantNotPermitted(t, s.CheckTx(writerOf(1), &to), to.Hex()+" is frozen")
	if err := s.CheckTx(deployerOf(1), nil); err != nil {
		t.Fatalf("deploying is not sending to a frozen contract: %v", err)
	}
	if a := s.Account(to); !a.Frozen || a.Org != "" || a.Roles != 0 {
		t.Fatalf("frozen contract's record %+v", a)
	}
	frozen := func() uint64 { return Read(f.st).reg.getUint(frozenCountKey) }
	if n := frozen(); n != 2 {
		t.Fatalf("frozen count %d, want 2", n)
	}
	if l := Read(f.st).Frozen(); !slices.Equal(l, []common.Address{writerOf(2), to}) {
		t.Fatalf("Frozen() = %v", l)
	}
	f.enact(30, ActUnfreeze, to)
	if n := frozen(); n != 1 {
		t.Fatalf("frozen count %d after an Unfreeze, want 1", n)
	}
	s = f.at(40)
	if err := s.CheckTx(writerOf(1), &to); err != nil {
		t.Fatalf("after Unfreeze: %v", err)
	}
	// Another account is still frozen: sending to it is still refused.
	wantNotPermitted(t, s.CheckTx(writerOf(1), &[]common.Address{writerOf(2)}[0]), writerOf(2).Hex()+" is frozen")
	f.enact(40, ActUnfreeze, writerOf(2))
	s = f.at(50)
	if err := s.CheckTx(writerOf(1), &[]common.Address{writerOf(2)}[0]); err != nil {
		t.Fatalf("to an unfrozen account: %v", err)
	}
	if err := s.CheckTx(writerOf(2), &to); err != nil {
		t.Fatalf("from an unfrozen account: %v", err)
	}
	if n := frozen(); n != 0 {
		t.Fatalf("frozen count %d with nothing frozen", n)
	}
	if l := Read(f.st).Frozen(); len(l) != 0 {
		t.Fatalf("Frozen() = %v with nothing frozen", l)
	}
}

func TestCheckTxDefaultRoles(t *testing.T) {
	f := newFixture(t, withDefaultRoles("read", "write"))
	stranger := testAddr("stranger", 1)
	s := f.at(1)
	if a := s.Account(stranger); a != (Account{Address: stranger, Roles: RoleRead | RoleWrite}) {
		t.Fatalf("unlisted account %+v", a)
	}
	if err := s.CheckTx(stranger, &common.Address{1}); err != nil {
		t.Fatalf("unlisted account with default write: %v", err)
	}
	if err := s.CheckTx(stranger, &GovernanceAddress); err != nil {
		t.Fatalf("unlisted account to the system contracts: %v", err)
	}
	wantNotPermitted(t, s.CheckTx(stranger, nil), "account "+stranger.Hex()+" lacks role deploy")
	// Listed accounts have their own roles, not the default ones.
	wantNotPermitted(t, s.CheckTx(readerOf(1), &common.Address{1}), "account "+readerOf(1).Hex()+" lacks role write")
	// A frozen unlisted account keeps the default roles but is refused.
	f.enact(10, ActFreeze, stranger)
	s = f.at(20)
	if a := s.Account(stranger); a.Roles != RoleRead|RoleWrite || !a.Frozen {
		t.Fatalf("frozen unlisted account %+v", a)
	}
	wantNotPermitted(t, s.CheckTx(stranger, &common.Address{1}), "account "+stranger.Hex()+" is frozen")
}

func TestCheckTxTierAndStatus(t *testing.T) {
	f := newFixture(t, withTiers("validate", "validate", "validate", "write"), withoutValidator(4))
	if err := f.at(1).CheckTx(deployerOf(4), nil); err != nil {
		t.Fatalf("deployer of a write-tier organization: %v", err)
	}
	// Down to tier read: write and deploy stop applying.
	f.enact(10, ActSetOrganization, "org4", uint8(TierRead), uint64(1), uint8(StatusActive))
	s := f.at(20)
	if a := s.Account(writerOf(4)); a.Roles != RoleRead|RoleWrite || s.EffectiveRoles(a) != RoleRead {
		t.Fatalf("writer of a read-tier org: %+v effective %s", a, s.EffectiveRoles(a))
	}
	wantNotPermitted(t, s.CheckTx(writerOf(4), &common.Address{1}), "account "+writerOf(4).Hex()+" lacks role write")
	wantNotPermitted(t, s.CheckTx(deployerOf(4), nil), "account "+deployerOf(4).Hex()+" lacks role deploy")
	if err := s.CheckTx(adminOf(4), &GovernanceAddress); err != nil {
		t.Fatalf("admin of a read-tier org to governance: %v", err)
	}
	// Suspended: nothing.
	f.enact(20, ActSetOrganization, "org4", uint8(TierWrite), uint64(1), uint8(StatusSuspended))
	s = f.at(30)
	for _, a := range []common.Address{adminOf(4), writerOf(4), deployerOf(4)} {
		if r := s.EffectiveRoles(s.Account(a)); r != 0 {
			t.Fatalf("effective roles %s in a suspended org", r)
		}
		wantNotPermitted(t, s.CheckTx(a, &GovernanceAddress), "organization org4 of account "+a.Hex()+" is suspended")
	}
	// Reactivated: back.
	f.enact(30, ActSetOrganization, "org4", uint8(TierWrite), uint64(1), uint8(StatusActive))
	if err := f.at(40).CheckTx(deployerOf(4), nil); err != nil {
		t.Fatalf("after reactivation: %v", err)
	}
}

func TestAllowedNode(t *testing.T) {
	f := newFixture(t)
	s := f.at(1)
	if err := s.AllowedNode(nodeOf(1), fpOf(1)); err != nil {
		t.Fatal(err)
	}
	if err := s.AllowedNode(nodeOf(1), common.Hash{}); err != nil {
		t.Fatal(err)
	}
	unknown := testAddr("node", 99)
	if err := s.AllowedNode(unknown, common.Hash{}); err == nil || err.Error() != "node "+unknown.Hex()+" is not in the registry" {
		t.Fatalf("unknown node: %v", err)
	}
	if err := s.AllowedNode(nodeOf(1), fpOf(2)); err == nil || err.Error() != "node "+nodeOf(1).Hex()+" presents a certificate other than the registered one" {
		t.Fatalf("other certificate: %v", err)
	}
	// A revoked certificate is refused, whoever presents it.
	f.enact(10, ActRevokeCertificate, [32]byte{0xee})
	s = f.at(20)
	if err := s.AllowedNode(nodeOf(1), common.Hash{0xee}); err == nil || err.Error() != fmt.Sprintf("certificate %x of node %s is revoked", common.Hash{0xee}.Bytes()[:8], nodeOf(1).Hex()) {
		t.Fatalf("revoked certificate: %v", err)
	}
	if err := s.AllowedNode(nodeOf(1), fpOf(1)); err != nil {
		t.Fatalf("the node's own certificate: %v", err)
	}
	f.enact(20, ActRemoveNode, nodeOf(2))
	if err := f.at(30).AllowedNode(nodeOf(2), common.Hash{}); err == nil || err.Error() != "node "+nodeOf(2).Hex()+" is revoked" {
		t.Fatalf("removed node: %v", err)
	}
}

func TestUsage(t *testing.T) {
	f := newFixture(t)
	day := blockTime(10) / 86400
	f.at(10).AddUsage("org1", Usage{Txs: 1, Gas: 21_000, StateBytes: 0})
	f.at(11).AddUsage("org1", Usage{Txs: 2, Gas: 50_000, StateBytes: 64})
	f.at(11).AddUsage("org2", Usage{Txs: 5})
	next := Open(f.st, 12, (day+1)*86400)
	next.AddUsage("org1", Usage{Txs: 7})
	s := Read(f.st)
	if u := s.Usage("org1", day); u != (Usage{Txs: 3, Gas: 71_000, StateBytes: 64}) {
		t.Fatalf("org1 day %d: %+v", day, u)
	}
	if u := s.Usage("org1", day+1); u != (Usage{Txs: 7}) {
		t.Fatalf("org1 day %d: %+v", day+1, u)
	}
	if u := s.Usage("org2", day); u != (Usage{Txs: 5}) {
		t.Fatalf("org2: %+v", u)
	}
	if u := s.Usage("org3", day); u != (Usage{}) {
		t.Fatalf("org3: %+v", u)
	}
}

func TestHeight(t *testing.T) {
	f := newFixture(t)
	if h := f.at(42).Height(); h != 42 {
		t.Fatalf("Height %d", h)
	}
	if h := Read(f.st).Height(); h != 0 {
		t.Fatalf("Read().Height %d", h)
	}
}
