package system

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"

	"github.com/charter-ledger/charter/internal/privacy"
)

func newPrivacyKey(t testing.TB) PrivacyKey {
	t.Helper()
	k, err := privacy.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k.Public().Bytes()
}

// wantPrivacyKey checks org's key in the registry and the lookup from its
// identity, through the state and through the registry's views.
func (f *fixture) wantPrivacyKey(h uint64, org string, want PrivacyKey) {
	f.t.Helper()
	s := Read(f.st)
	if got := s.PrivacyKey(org); !bytes.Equal(got, want) {
		f.t.Fatalf("privacy key of %s: %d bytes, want %d bytes (equal: %v)", org, len(got), len(want), bytes.Equal(got, want))
	}
	e := f.evm(h)
	got := e.view(&Registry, "privacyKey", org)
	wantKEM := want.KEM()
	if wantKEM == nil {
		wantKEM = []byte{}
	}
	if got[0] != (want != nil) || got[1] != [32]byte(want.Identity()) || !bytes.Equal(got[2].([]byte), wantKEM) {
		f.t.Fatalf("view privacyKey(%s) = %v, %x, %d bytes", org, got[0], got[1], len(got[2].([]byte)))
	}
	if want == nil {
		return
	}
	if o, ok := s.PrivacyKeyOrg(want.Identity()); !ok || o != org {
		f.t.Fatalf("PrivacyKeyOrg(%s) = %q, %v, want %s", want.Identity(), o, ok, org)
	}
	if got := e.view(&Registry, "privacyKeyOrg", [32]byte(want.Identity())); got[0] != true || got[1] != org {
		f.t.Fatalf("view privacyKeyOrg = %v, want true, %s", got, org)
	}
}

func (f *fixture) wantNoPrivacyKeyOrg(h uint64, k PrivacyKey) {
	f.t.Helper()
	if o, ok := Read(f.st).PrivacyKeyOrg(k.Identity()); ok {
		f.t.Fatalf("identity %s still leads to organization %s", k.Identity(), o)
	}
	if got := f.evm(h).view(&Registry, "privacyKeyOrg", [32]byte(k.Identity())); got[0] != false || got[1] != "" {
		f.t.Fatalf("view privacyKeyOrg of a key in force nowhere = %v", got)
	}
}

// TestGenesisPrivacyKeys: the genesis seeds the organizations' privacy
// keys and the lookups; an organization may have none; a bad or shared
// key is refused naming the field.
func TestGenesisPrivacyKeys(t *testing.T) {
	k1, k2 := newPrivacyKey(t), newPrivacyKey(t)
	orgs := []GenesisOrg{
		{Name: "a", Roots: goldenRootsPEM, PrivacyKey: k1},
		{Name: "b", Roots: goldenRootsPEM},
		{Name: "c", Roots: goldenRootsPEM, PrivacyKey: k2},
	}
	g, err := BuildGenesis(&GenesisSpec{}, orgs, []common.Address{nodeOf(1)})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, st: newStateDB(t), n: 3, gen: g}
	Seed(f.st, g)
	f.wantPrivacyKey(1, "a", k1)
	f.wantPrivacyKey(1, "b", nil)
	f.wantPrivacyKey(1, "c", k2)
	f.wantNoPrivacyKeyOrg(1, newPrivacyKey(t))

	bad := func(mut func(o []GenesisOrg), want string) {
		t.Helper()
		o := []GenesisOrg{{Name: "a", Roots: goldenRootsPEM, PrivacyKey: k1}, {Name: "b", Roots: goldenRootsPEM, PrivacyKey: k2}}
		mut(o)
		_, err := BuildGenesis(&GenesisSpec{}, o, []common.Address{nodeOf(1)})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("err %v, want %q", err, want)
		}
	}
	bad(func(o []GenesisOrg) { o[1].PrivacyKey = k1 }, "organizations[1].privacyKey: the key of organizations[0] already")
	bad(func(o []GenesisOrg) { o[1].PrivacyKey = k2[:100] }, "organizations[1].privacyKey: privacy key: invalid privacy public key: 100 bytes, want 1216")
	bad(func(o []GenesisOrg) { o[0].PrivacyKey = append(make([]byte, 32), k2[32:]...) }, "organizations[0].privacyKey: privacy key: invalid privacy public key: X25519 part is a point of small order")
}

// TestSetPrivacyKeyRotates: a SetPrivacyKey proposal, once enacted, sets
// an organization's key, and a second one rotates it: the old identity
// leads nowhere, the new one to the organization; other organizations
// keep theirs.
func TestSetPrivacyKeyRotates(t *testing.T) {
	f := newFixture(t)
	f.wantPrivacyKey(1, orgName(2), nil)
	first, second, other := newPrivacyKey(t), newPrivacyKey(t), newPrivacyKey(t)
	_, at, _ := f.enact(2, ActSetPrivacyKey, orgName(2), []byte(first))
	f.wantPrivacyKey(at+1, orgName(2), first)
	f.enact(at+1, ActSetPrivacyKey, orgName(3), []byte(other))
	_, at, _ = f.enact(at+2, ActSetPrivacyKey, orgName(2), []byte(second))
	f.wantPrivacyKey(at+1, orgName(2), second)
	f.wantNoPrivacyKeyOrg(at+1, first)
	f.wantPrivacyKey(at+1, orgName(3), other)
	// The proposal shows the key as base64 of its bytes.
	p := f.proposal(f.at(at).ProposalCount())
	args, err := DecodeArgs(p.Action, p.Args)
	if err != nil {
		t.Fatal(err)
	}
	j, err := ArgsJSON(args)
	if err != nil {
		t.Fatal(err)
	}
	txt, _ := second.MarshalText()
	if want := `{"org":"org2","key":"` + string(txt) + `"}`; string(j) != want {
		t.Fatalf("ArgsJSON = %s, want %s", j, want)
	}
}

// TestAddOrganizationWithPrivacyKey: an organization admitted with a key
// has it from its admission; one admitted without has none.
func TestAddOrganizationWithPrivacyKey(t *testing.T) {
	f := newFixture(t)
	k := newPrivacyKey(t)
	a := org5(goldenRootsPEM)
	a.privacyKey = k
	_, at, _ := f.enact(2, ActAddOrganization, a.vals()...)
	f.wantPrivacyKey(at+1, "org5", k)

	g := newFixture(t)
	_, at, _ = g.enact(2, ActAddOrganization, org5(goldenRootsPEM).vals()...)
	g.wantPrivacyKey(at+1, "org5", nil)
}

// TestPrivacyKeyRefusals: a malformed key is refused when proposed, with
// the words of the privacy package; a key in force elsewhere, the key in
// force, and an organization that is not a member are refused by the
// state check.
func TestPrivacyKeyRefusals(t *testing.T) {
	f := newFixture(t)
	k := newPrivacyKey(t)
	_, at, _ := f.enact(2, ActSetPrivacyKey, orgName(1), []byte(k))
	h := at + 1
	propose := func(a Action, vals ...any) error {
		_, err := f.at(h).Propose(adminOf(1), a, f.args(a, vals...), "")
		return err
	}
	lowOrder := append(make([]byte, 32), k[32:]...)
	unreduced := append(bytes.Clone(k[:32]), bytes.Repeat([]byte{0xff}, privacy.KEMKeySize)...)
	for _, c := range []struct {
		name string
		key  []byte
		want string
	}{
		{"empty", []byte{}, "privacy key: invalid privacy public key: 0 bytes, want 1216 (X25519 32 and ML-KEM-768 1184)"},
		{"short", k[:1215], "privacy key: invalid privacy public key: 1215 bytes, want 1216 (X25519 32 and ML-KEM-768 1184)"},
		{"small order", lowOrder, "privacy key: invalid privacy public key: X25519 part is a point of small order"},
		{"ml-kem not reduced", unreduced, "privacy key: invalid privacy public key: ML-KEM-768 part: "},
	} {
		wantRevertPrefix(t, propose(ActSetPrivacyKey, orgName(2), c.key), c.want)
		a := org5(goldenRootsPEM)
		a.privacyKey = c.key
		if len(c.key) > 0 { // an empty key admits an organization without one
			wantRevertPrefix(t, propose(ActAddOrganization, a.vals()...), c.want)
		}
	}
	wantRevert(t, propose(ActSetPrivacyKey, orgName(2), make([]byte, 1217)), "SetPrivacyKey: key of 1217 bytes, at most 1216")
	wantRevert(t, propose(ActSetPrivacyKey, orgName(2), []byte(k)),
		"privacy key "+k.Identity().String()+" is organization org1's; generate a new one")
	wantRevert(t, propose(ActSetPrivacyKey, orgName(1), []byte(k)),
		"organization org1 has privacy key "+k.Identity().String()+" already")
	wantRevert(t, propose(ActSetPrivacyKey, "org9", []byte(newPrivacyKey(t))), "organization org9 is not a member")
	a := org5(goldenRootsPEM)
	a.privacyKey = k
	wantRevert(t, propose(ActAddOrganization, a.vals()...), "privacy key "+k.Identity().String()+" is organization org1's; generate a new one")
}

// TestPrivacyKeyText: the text form round-trips, reads a public key file,
// and refuses what is not a key.
func TestPrivacyKeyText(t *testing.T) {
	k, err := privacy.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	want := PrivacyKey(k.Public().Bytes())
	txt, _ := want.MarshalText()
	for _, in := range [][]byte{txt, k.Public().EncodePEM()} {
		var got PrivacyKey
		if err := got.UnmarshalText(in); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("UnmarshalText(%.20q): %v", in, err)
		}
	}
	var none PrivacyKey
	if err := none.UnmarshalText(nil); err != nil || none != nil {
		t.Fatalf("empty text: %v, %x", err, none)
	}
	if err := none.UnmarshalText([]byte("AAAA")); err == nil || !strings.Contains(err.Error(), "invalid privacy public key") {
		t.Fatalf("3 bytes of base64: %v", err)
	}
	j, _ := json.Marshal(SetPrivacyKey{Org: "a", Key: want})
	if !strings.Contains(string(j), string(txt)) {
		t.Fatalf("JSON %s does not hold the key as base64", j)
	}
}
