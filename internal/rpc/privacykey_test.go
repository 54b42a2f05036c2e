package rpc

import (
	"testing"

	"github.com/charter-ledger/charter/internal/chain"
	"github.com/charter-ledger/charter/internal/privacy"
)

// TestMembersShowPrivacyKeys: charter_members shows an organization's
// privacy identity and ML-KEM key as base64, and empty strings for one
// without a key.
func TestMembersShowPrivacyKeys(t *testing.T) {
	k, err := privacy.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	pub := k.Public()
	f := newFakeWith(t, func(s *chain.Spec) {
		s.Organizations[0].PrivacyKey, s.Organizations[0].PrivacyKEM = pub.Identity().String(), pub.KEMString()
		s.Organizations = append(s.Organizations, chain.Organization{Name: "other"})
	})
	ts := serve(t, f, Config{})
	var m Members
	if err := ts.http.Call(&m, "charter_members"); err != nil {
		t.Fatal(err)
	}
	got := map[string][2]string{}
	for _, o := range m.Organizations {
		got[o.Name] = [2]string{o.PrivacyKey, o.PrivacyKEM}
	}
	if got[chain.DevOrg] != [2]string{pub.Identity().String(), pub.KEMString()} {
		t.Fatalf("dev organization's privacy key %q, want %q", got[chain.DevOrg], [2]string{pub.Identity().String(), pub.KEMString()[:20] + "..."})
	}
	if o, ok := got["other"]; !ok || o != [2]string{} {
		t.Fatalf("organization without a key: %q (listed: %v)", o, ok)
	}
}
